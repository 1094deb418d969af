//! `sessile`: the operator CLI of sessile's durable session store. See the README, "Operating
//! it: the CLI", and `sessile --help`.
//!
//! Exit status: 0 done; 1 the command's own negative answer (`verify` found problems, `get`
//! or `destroy` found no such session); 2 an error; 3 another process holds the lock.

use std::process::ExitCode;

use clap::Parser;

mod args;
mod bench;
mod error;
mod offline;
mod output;
mod read;
mod transfer;

use args::{Cli, Command};
use error::Failure;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("sessile: {e}");
            e.exit_code()
        }
    }
}

fn run(cli: Cli) -> Result<ExitCode, Failure> {
    let json = cli.json;
    match &cli.command {
        Command::Inspect { dir } => read::inspect(dir, json),
        Command::Bench(args) => bench::bench(args, json),
        Command::Verify { dir } => read::verify(dir, json),
        Command::Compact {
            dir,
            keep_snapshots,
        } => offline::compact(dir, *keep_snapshots, json),
        Command::Salvage { dir } => offline::salvage(dir, json),
        Command::Get { dir, id } => offline::get(dir, id, json),
        Command::Destroy { dir, id } => offline::destroy(dir, id, json),
        Command::Import { dir, file } => transfer::import(dir, file, json),
        Command::Export { dir } => transfer::export(&runtime()?, dir, json),
        Command::Migrate {
            dir,
            url,
            prefix,
            default_ttl,
        } => {
            let m = transfer::Migrate {
                dir,
                url,
                prefix,
                default_ttl: *default_ttl,
            };
            transfer::migrate(&runtime()?, &m, json)
        }
    }
}

/// The runtime of the store's async calls and of the Redis client: one thread.
fn runtime() -> Result<tokio::runtime::Runtime, Failure> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::because("starting the runtime", e))
}
