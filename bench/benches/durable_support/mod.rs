//! Helpers of `benches/durable.rs`: the data set, a small random number generator, the
//! latency recorder of the snapshot-while-serving run, directory sizes, the knobs read from
//! the environment, and the summary read back from criterion's estimates.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub mod recovery;

use sessile::{CookieRecord, Data, Record, SameSite};

/// Environment knobs (documented at the top of `benches/durable.rs` and in BENCHMARKS.md).
pub struct Knobs {
    /// `DURABLE_SESSIONS`: sessions in every store (default 1,000,000).
    pub sessions: usize,
    /// `DURABLE_DIR`: where the store directories are made (default the system temp dir).
    pub parent: PathBuf,
    /// `DURABLE_SECS`: criterion's measurement time of the throughput runs (default 3 s).
    pub secs: u64,
    /// `DURABLE_WRITERS`: tasks in flight under `Always` (default 128).
    pub writers: usize,
}

fn env_num<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.replace('_', "").parse().ok())
        .unwrap_or(default)
}

impl Knobs {
    pub fn from_env() -> Knobs {
        Knobs {
            sessions: env_num("DURABLE_SESSIONS", 1_000_000usize).max(1000),
            parent: std::env::var_os("DURABLE_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(std::env::temp_dir),
            secs: env_num("DURABLE_SECS", 3u64).max(1),
            writers: env_num("DURABLE_WRITERS", 128usize).max(1),
        }
    }
}

/// Bytes of session data (compact JSON) per session; with the 32-byte id, 200 bytes.
pub const DATA_BYTES: usize = 168;

/// Pre-built sessions: session `i` has the id [`Dataset::id`]`(i)` and `records[i]`.
pub struct Dataset {
    pub records: Vec<Record>,
}

/// Writes in the throughput runs use this many pre-built records (so a record is in cache,
/// as the one a handler just built is); their sessions are uniform over all of them.
pub const HOT_RECORDS: usize = 1024;

/// A session id, made on the spot from its number (as a request brings it).
pub struct Sid([u8; 32]);

impl Sid {
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

impl Dataset {
    /// `n` sessions of a 32-character id and 168 bytes of JSON data, with an express cookie
    /// (`maxAge` one day, httpOnly, `sameSite: "lax"`, path `/`).
    pub fn new(n: usize) -> Dataset {
        let now = sessile::clock::now_ms();
        let path: Arc<str> = Arc::from("/");
        let mut records = Vec::with_capacity(n);
        for i in 0..n as u64 {
            let (a, b) = (splitmix(2 * i), splitmix(2 * i + 1));
            let mut data = format!(
                r#"{{"userId":{i},"name":"user-{i:07}","roles":["reader","writer"],"csrf":"{b:016x}{a:016x}","cart":[{},{}],"theme":"dark""#,
                a % 1000,
                b % 1000
            );
            let pad = DATA_BYTES.saturating_sub(data.len() + 9);
            data.push_str(",\"p\":\"");
            data.extend(std::iter::repeat_n('x', pad));
            data.push_str("\"}");
            let data = Data::from_json_text(&data).expect("valid JSON");
            records.push(Record {
                cookie: CookieRecord {
                    original_max_age: Some(86_400_000),
                    expires: Some(now + 86_400_000),
                    secure: None,
                    http_only: true,
                    domain: None,
                    path: path.clone(),
                    same_site: Some(SameSite::Lax),
                    partitioned: None,
                    priority: None,
                },
                data,
            });
        }
        Dataset { records }
    }

    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// The id of session `i`: 32 hex digits.
    pub fn id(i: usize) -> Sid {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let (a, b) = (splitmix(2 * i as u64), splitmix(2 * i as u64 + 1));
        let mut out = [0u8; 32];
        for k in 0..16 {
            out[k] = HEX[(a >> (60 - 4 * k) & 15) as usize];
            out[16 + k] = HEX[(b >> (60 - 4 * k) & 15) as usize];
        }
        Sid(out)
    }

    /// A write to a uniformly random session, with one of the hot records.
    pub fn pick(&self, rng: &mut Rng) -> (Sid, &Record) {
        let i = rng.below(self.len());
        (Self::id(i), &self.records[i % HOT_RECORDS.min(self.len())])
    }

    /// Live data when every session is stored: ids and data bytes (every record's data has
    /// the same length).
    pub fn live_bytes(&self) -> u64 {
        self.records
            .iter()
            .map(|r| (32 + r.data.len()) as u64)
            .sum()
    }
}

fn splitmix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// xorshift64*: uniform indexes without a dependency.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(splitmix(seed) | 1)
    }

    /// Uniform in `0..n`.
    pub fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let x = self.0.wrapping_mul(0x2545_f491_4f6c_dd1d);
        ((x as u128 * n as u128) >> 64) as usize
    }
}

/// Histogram resolution and range of [`Latencies`].
const BUCKET_NS: u64 = 100;
const BUCKETS: usize = 200_000; // 100 ns buckets up to 20 ms; the max is kept exactly

/// Latencies of single operations.
pub struct Latencies {
    counts: Vec<u64>,
    pub n: u64,
    pub max_ns: u64,
    pub busy_ns: u64,
}

impl Default for Latencies {
    fn default() -> Self {
        Latencies {
            counts: vec![0; BUCKETS],
            n: 0,
            max_ns: 0,
            busy_ns: 0,
        }
    }
}

impl Latencies {
    pub fn record(&mut self, ns: u64) {
        let b = ((ns / BUCKET_NS) as usize).min(BUCKETS - 1);
        self.counts[b] += 1;
        self.n += 1;
        self.busy_ns += ns;
        self.max_ns = self.max_ns.max(ns);
    }

    /// The latency at quantile `q` (upper edge of its bucket), in ns.
    pub fn quantile(&self, q: f64) -> u64 {
        if self.n == 0 {
            return 0;
        }
        let rank = ((self.n as f64) * q).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (i, c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return ((i as u64 + 1) * BUCKET_NS).min(self.max_ns);
            }
        }
        self.max_ns
    }

    /// How many operations took longer than `ns`.
    pub fn over(&self, ns: u64) -> u64 {
        let from = ((ns / BUCKET_NS) as usize + 1).min(BUCKETS - 1);
        self.counts[from..].iter().sum()
    }
}

/// A write that took long, for lining up with the snapshot's phases.
#[derive(Clone, Copy)]
pub struct Stall {
    /// When the write started, from the run's epoch.
    pub at: Duration,
    pub took: Duration,
}

/// Bytes allocated on disk by the files of `dir` (what `du` counts) and their apparent size,
/// grouped by kind: log segments, snapshots, other.
#[derive(Default, Debug, Clone, Copy)]
pub struct DiskUse {
    pub wal: u64,
    pub snap: u64,
    pub other: u64,
    pub files_wal: usize,
    pub files_snap: usize,
}

impl DiskUse {
    pub fn of(dir: &Path) -> DiskUse {
        use std::os::unix::fs::MetadataExt;
        let mut d = DiskUse::default();
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let Ok(m) = e.metadata() else { continue };
            let bytes = m.blocks() * 512;
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with("wal-") {
                d.wal += bytes;
                d.files_wal += 1;
            } else if name.starts_with("snap-") {
                d.snap += bytes;
                d.files_snap += 1;
            } else {
                d.other += bytes;
            }
        }
        d
    }

    pub fn total(&self) -> u64 {
        self.wal + self.snap + self.other
    }
}

/// Whether a snapshot is being written in `dir` (a `*.tmp` file exists).
pub fn snapshot_in_progress(dir: &Path) -> bool {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .any(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
}

/// Removes a directory tree when dropped.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(parent: &Path, name: &str) -> TempDir {
        let p = parent.join(format!("sessile-durable-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        TempDir(p)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Where criterion writes its estimates, found as criterion finds it: `CRITERION_HOME`,
/// `CARGO_TARGET_DIR/criterion`, the target directory `cargo metadata` names (under
/// `cargo bench`), else `target/criterion`.
pub fn criterion_home() -> PathBuf {
    if let Some(h) = std::env::var_os("CRITERION_HOME") {
        return PathBuf::from(h);
    }
    if let Some(t) = std::env::var_os("CARGO_TARGET_DIR") {
        return PathBuf::from(t).join("criterion");
    }
    let metadata = std::env::var_os("CARGO").and_then(|cargo| {
        let out = std::process::Command::new(cargo)
            .args(["metadata", "--format-version", "1", "--no-deps"])
            .output()
            .ok()?;
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
        Some(PathBuf::from(v["target_directory"].as_str()?).join("criterion"))
    });
    metadata.unwrap_or_else(|| PathBuf::from("target/criterion"))
}

/// This thread's time on a CPU and time waiting for one (runnable but not running), in ns,
/// from `/proc/thread-self/schedstat`; zeros where it is not available.
pub fn sched_times() -> (u64, u64) {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").unwrap_or_default();
    let mut it = text
        .split_whitespace()
        .map(|x| x.parse::<u64>().unwrap_or(0));
    (it.next().unwrap_or(0), it.next().unwrap_or(0))
}

/// Operations, thread wall time and time spent waiting for a CPU, summed over the threads
/// of one benchmark: on a shared machine, `ops / ((wall - wait) / threads)` estimates the
/// rate with a CPU per thread.
#[derive(Default, Clone, Copy, Debug)]
pub struct CpuWait {
    pub ops: u64,
    pub threads: u64,
    pub wall_ns: u64,
    pub wait_ns: u64,
    /// Time on a CPU (filled where the blocked time is wanted).
    pub run_ns: u64,
}

impl CpuWait {
    pub fn add(&mut self, o: CpuWait) {
        self.ops += o.ops;
        self.threads = self.threads.max(o.threads);
        self.wall_ns += o.wall_ns;
        self.wait_ns += o.wait_ns;
        self.run_ns += o.run_ns;
    }

    /// Time neither running nor waiting for a CPU: asleep on a lock or on I/O.
    pub fn blocked_ns(&self) -> u64 {
        self.wall_ns.saturating_sub(self.wait_ns + self.run_ns)
    }

    /// The share of thread time spent waiting for a CPU.
    pub fn wait_share(&self) -> f64 {
        self.wait_ns as f64 / self.wall_ns.max(1) as f64
    }

    /// Operations per second, wall clock.
    pub fn rate(&self) -> f64 {
        let wall = self.wall_ns as f64 / self.threads.max(1) as f64;
        self.ops as f64 / (wall / 1e9).max(1e-12)
    }

    /// Operations per second had no thread waited for a CPU.
    pub fn rate_without_wait(&self) -> f64 {
        let busy = self.wall_ns.saturating_sub(self.wait_ns) as f64 / self.threads.max(1) as f64;
        self.ops as f64 / (busy / 1e9).max(1e-12)
    }
}

/// The median time per iteration (ns) criterion estimated for `id` (`group/function[/param]`).
pub fn median_ns(id: &str) -> Option<f64> {
    let path = criterion_home().join(id).join("new/estimates.json");
    let text = std::fs::read_to_string(path).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    v["median"]["point_estimate"].as_f64()
}

/// Runs `f`, retrying while the store directory is still locked (a background thread of the
/// dropped store may hold the last reference for a moment).
pub fn retry_locked<T>(mut f: impl FnMut() -> Result<T, sessile::StoreError>) -> T {
    let start = Instant::now();
    loop {
        match f() {
            Ok(t) => return t,
            Err(e)
                if start.elapsed() < Duration::from_secs(5) && e.to_string().contains("locked") =>
            {
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(e) => panic!("opening the store: {e}"),
        }
    }
}

pub fn fmt_bytes(b: u64) -> String {
    format!("{:.1} MiB", b as f64 / (1 << 20) as f64)
}

pub fn fmt_rate(per_s: f64) -> String {
    if per_s >= 1e6 {
        format!("{:.2}M/s", per_s / 1e6)
    } else if per_s >= 1e3 {
        format!("{:.1}k/s", per_s / 1e3)
    } else {
        format!("{per_s:.0}/s")
    }
}

pub fn fmt_ns(ns: f64) -> String {
    if ns >= 1e9 {
        format!("{:.2} s", ns / 1e9)
    } else if ns >= 1e6 {
        format!("{:.1} ms", ns / 1e6)
    } else if ns >= 1e3 {
        format!("{:.1} µs", ns / 1e3)
    } else {
        format!("{ns:.0} ns")
    }
}
