//! `sessile bench`: stores measured side by side with `sessile::bench`, one process per
//! (store, workload) so that every memory figure starts from a fresh heap.

use std::path::PathBuf;
use std::process::{Command, ExitCode, Stdio};
use std::time::Duration;

use clap::{Args, ValueEnum};
use serde::{Deserialize, Serialize};
use sessile::bench::{Config, Limit, Workers, Workload};

use crate::error::Failure;
use crate::output::{bar, print_json, say};

mod chart;
mod stores;
mod table;
mod ts_memory;

pub(crate) use stores::StoreSpec;

/// How the workers run (`--workers-as`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum WorkersAs {
    /// One tokio task per worker, on a runtime with `--threads` threads.
    Tasks,
    /// One OS thread per worker, each with a runtime of its own.
    Threads,
}

/// The options of `sessile bench`.
#[derive(Debug, Clone, Args)]
pub(crate) struct BenchArgs {
    /// A store to measure (repeat for several): `memory`, `durable:always`,
    /// `durable:everysec`, `durable:never` (in a temporary directory), `redis://…`,
    /// `rediss://…` (with the `tls` feature), `ts-memory` (tower-sessions' MemoryStore).
    /// Default: memory, durable:everysec and ts-memory.
    #[arg(long = "store", value_name = "STORE")]
    pub(crate) stores: Vec<StoreSpec>,
    /// A workload (repeat for several): read-heavy (90 % get, 9 % update, 1 % create),
    /// write-heavy (50/50), touch-only, churn (create, destroy), new-visitor-flood (create).
    /// Default: all.
    #[arg(long = "workload", value_name = "WORKLOAD")]
    pub(crate) workloads: Vec<Workload>,
    /// The size of each session's fields, in bytes of JSON.
    #[arg(long = "payload", value_name = "BYTES", default_value_t = 197)]
    pub(crate) payload: usize,
    /// Workers making calls at once.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..))]
    pub(crate) threads: u16,
    /// Workers as tokio tasks on a multi-thread runtime, or as threads of their own.
    #[arg(long, value_enum, default_value_t = WorkersAs::Tasks)]
    pub(crate) workers_as: WorkersAs,
    /// Timed seconds per store and workload (`3`, `0.5`, `250ms`).
    #[arg(long, value_name = "SECONDS", default_value = "3", value_parser = parse_duration)]
    pub(crate) duration: Duration,
    /// Sessions stored before each timed run (what gets, updates and touches pick from).
    #[arg(long, default_value_t = 100_000)]
    pub(crate) sessions: u64,
    /// Also draw throughput and latency per store into this SVG file.
    #[arg(long, value_name = "FILE.svg")]
    pub(crate) chart: Option<PathBuf>,
    /// Internal: measure one store and workload in this process and print it as JSON.
    #[arg(long, hide = true)]
    pub(crate) cell: bool,
}

/// `3`, `0.5`, `3s`, `250ms`.
fn parse_duration(s: &str) -> Result<Duration, String> {
    let (num, scale) = if let Some(ms) = s.strip_suffix("ms") {
        (ms, 1e-3)
    } else {
        (s.strip_suffix('s').unwrap_or(s), 1.0)
    };
    let secs: f64 = num
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is no duration (3, 0.5, 3s, 250ms)"))?;
    Duration::try_from_secs_f64(secs * scale).map_err(|e| format!("{s:?}: {e}"))
}

/// What one store did in one workload: one row of the table.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Cell {
    pub(crate) store: String,
    pub(crate) workload: String,
    pub(crate) threads: u16,
    pub(crate) payload_bytes: usize,
    pub(crate) sessions: u64,
    pub(crate) ops: u64,
    pub(crate) elapsed_s: f64,
    pub(crate) ops_per_sec: f64,
    pub(crate) p50_ns: u64,
    pub(crate) p99_ns: u64,
    pub(crate) p999_ns: u64,
    pub(crate) max_ns: u64,
    pub(crate) errors: u64,
    pub(crate) misses: u64,
    pub(crate) bytes_per_session: Option<u64>,
    pub(crate) first_error: Option<String>,
}

/// The whole run, as `--json` prints it.
#[derive(Debug, Serialize)]
struct Run<'a> {
    payload_bytes: usize,
    threads: u16,
    workers_as: &'static str,
    duration_s: f64,
    sessions: u64,
    results: &'a [Cell],
}

/// `sessile bench`.
pub(crate) fn bench(args: &BenchArgs, json: bool) -> Result<ExitCode, Failure> {
    if args.cell {
        let cell = one_cell(args)?;
        print_json(&serde_json::to_value(&cell).map_err(|e| Failure::because("json", e))?);
        return Ok(ExitCode::SUCCESS);
    }
    let stores = if args.stores.is_empty() {
        vec![
            StoreSpec::Memory,
            StoreSpec::Durable(stores::Policy::EverySec),
            StoreSpec::TsMemory,
        ]
    } else {
        args.stores.clone()
    };
    let workloads = if args.workloads.is_empty() {
        Workload::ALL.to_vec()
    } else {
        args.workloads.clone()
    };
    let pb = bar(Some((stores.len() * workloads.len()) as u64), false, json);
    pb.enable_steady_tick(Duration::from_millis(200));
    let mut cells = Vec::new();
    for store in &stores {
        for &workload in &workloads {
            pb.set_message(format!("{} {workload}", store.label()));
            cells.push(child_cell(args, store, workload)?);
            pb.inc(1);
        }
    }
    pb.finish_and_clear();
    if let Some(path) = &args.chart {
        chart::write(path, &cells, args)?;
    }
    if json {
        let run = Run {
            payload_bytes: args.payload,
            threads: args.threads,
            workers_as: match args.workers_as {
                WorkersAs::Tasks => "tasks",
                WorkersAs::Threads => "threads",
            },
            duration_s: args.duration.as_secs_f64(),
            sessions: args.sessions,
            results: &cells,
        };
        print_json(&serde_json::to_value(&run).map_err(|e| Failure::because("json", e))?);
    } else {
        for line in table::render(&cells) {
            say!("{line}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Runs one (store, workload) in a new process of this binary and reads its row.
fn child_cell(args: &BenchArgs, store: &StoreSpec, workload: Workload) -> Result<Cell, Failure> {
    let exe = std::env::current_exe().map_err(|e| Failure::because("finding this program", e))?;
    let workers_as = match args.workers_as {
        WorkersAs::Tasks => "tasks",
        WorkersAs::Threads => "threads",
    };
    let out = Command::new(exe)
        .args(["bench", "--cell", "--json", "--store"])
        .arg(store.to_string())
        .args(["--workload", workload.name(), "--payload"])
        .arg(args.payload.to_string())
        .arg("--threads")
        .arg(args.threads.to_string())
        .args(["--workers-as", workers_as, "--duration"])
        .arg(format!("{}", args.duration.as_secs_f64()))
        .arg("--sessions")
        .arg(args.sessions.to_string())
        .stdin(Stdio::null())
        .output()
        .map_err(|e| Failure::because("starting a measurement", e))?;
    if !out.status.success() {
        let why = String::from_utf8_lossy(&out.stderr);
        return Err(Failure::Other(format!(
            "{} {workload}: {}",
            store.label(),
            why.trim().trim_start_matches("sessile: ")
        )));
    }
    serde_json::from_slice(&out.stdout).map_err(|e| {
        Failure::because(
            format!("{} {workload}: reading the result", store.label()),
            e,
        )
    })
}

/// Measures the one store and workload of `args` in this process.
fn one_cell(args: &BenchArgs) -> Result<Cell, Failure> {
    let (Some(spec), Some(&workload)) = (args.stores.first(), args.workloads.first()) else {
        return Err(Failure::Other(
            "--cell needs one --store and one --workload".into(),
        ));
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(usize::from(args.threads))
        .enable_all()
        .build()
        .map_err(|e| Failure::because("starting the runtime", e))?;
    let threads = usize::from(args.threads);
    let config = Config {
        workload,
        payload_bytes: args.payload,
        workers: match args.workers_as {
            WorkersAs::Tasks => Workers::Tasks(threads),
            WorkersAs::Threads => Workers::Threads(threads),
        },
        limit: Limit::Duration(args.duration),
        preload: if workload.needs_sessions() {
            args.sessions.max(1)
        } else {
            args.sessions
        },
        measure_memory: spec.in_process(),
    };
    runtime.block_on(async {
        let opened = spec.open().await?;
        let report = sessile::bench::run(opened.store.clone(), &config)
            .await
            .map_err(|e| Failure::because(spec.label(), e))?;
        opened.clean().await?;
        Ok(Cell {
            store: spec.label(),
            workload: workload.name().to_owned(),
            threads: args.threads,
            payload_bytes: args.payload,
            sessions: report.preloaded,
            ops: report.ops,
            elapsed_s: report.elapsed.as_secs_f64(),
            ops_per_sec: report.ops_per_sec(),
            p50_ns: nanos(report.latency.p50),
            p99_ns: nanos(report.latency.p99),
            p999_ns: nanos(report.latency.p999),
            max_ns: nanos(report.latency.max),
            errors: report.errors,
            misses: report.misses,
            bytes_per_session: report.bytes_per_session,
            first_error: report.first_error,
        })
    })
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_in_seconds_or_milliseconds() {
        assert_eq!(parse_duration("3").unwrap(), Duration::from_secs(3));
        assert_eq!(parse_duration("0.5").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("2s").unwrap(), Duration::from_secs(2));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("-1").is_err());
    }
}
