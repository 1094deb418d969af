//! The command line: the commands and their options.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// Operate a sessile durable session store's directory.
///
/// `inspect` and `verify` read the directory without taking its lock, so they work while a
/// server runs. The other commands open the store as a server would, and refuse while
/// another process holds the lock.
#[derive(Debug, Parser)]
#[command(name = "sessile", version)]
pub(crate) struct Cli {
    /// Print the result as JSON (one object; `export` prints JSON lines either way).
    #[arg(long, global = true)]
    pub(crate) json: bool,
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Format versions, files (sizes, sequence ranges), sessions, expiries, the lock; read-only.
    Inspect {
        /// The store's directory.
        dir: PathBuf,
    },
    /// Check every checksum; exit 0 when clean, 1 listing each problem's file and offset.
    Verify {
        /// The store's directory.
        dir: PathBuf,
    },
    /// Offline: take a snapshot and remove the log it covers.
    Compact {
        /// The store's directory.
        dir: PathBuf,
        /// Snapshots to keep: 1 removes the whole log before the new snapshot; 2 keeps the
        /// previous snapshot and the log from its cut, as a fallback.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=2))]
        keep_snapshots: u8,
    },
    /// Offline: open with salvage, keeping every intact record of a corrupt log and moving
    /// the damaged segments aside; prints what was kept and moved.
    Salvage {
        /// The store's directory.
        dir: PathBuf,
    },
    /// Offline: print every live session as a JSON line `{"id": …, "session": …}`.
    Export {
        /// The store's directory.
        dir: PathBuf,
    },
    /// Offline: store every session of a file of JSON lines (as `export` writes them; `-`
    /// reads standard input). Sessions already expired are skipped.
    Import {
        /// The store's directory (created if missing).
        dir: PathBuf,
        /// The JSON lines.
        file: PathBuf,
    },
    /// Offline: copy every live session into Redis, in connect-redis's format, with its
    /// remaining time to live.
    Migrate {
        /// The store's directory.
        dir: PathBuf,
        /// The Redis server, `redis://host[:port][/db]`.
        #[arg(long = "redis", value_name = "URL")]
        url: String,
        /// The key prefix (connect-redis's default).
        #[arg(long, default_value = "sess:")]
        prefix: String,
        /// The time to live, in seconds, of sessions whose cookie has no `expires` (a
        /// browser-session cookie), as connect-redis gives them.
        #[arg(long, default_value_t = 86_400)]
        default_ttl: u64,
    },
    /// Measure stores side by side: calls per second, p50/p99/p99.9 latency and memory per
    /// session of each store in each workload, one process per measurement (see
    /// `sessile::bench`).
    Bench(crate::bench::BenchArgs),
    /// Offline: print one session's express JSON.
    Get {
        /// The store's directory.
        dir: PathBuf,
        /// The session id (not the signed cookie value).
        id: String,
    },
    /// Offline: remove one session.
    Destroy {
        /// The store's directory.
        dir: PathBuf,
        /// The session id (not the signed cookie value).
        id: String,
    },
}
