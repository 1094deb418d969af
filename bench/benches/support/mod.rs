//! Helpers shared by the benchmarks (`compare`, `hot_paths`): deterministic session ids and
//! payloads, the cookie the layer would store, a fast random number generator, and the
//! process's memory figures from `/proc/self/status`.
//!
//! Ids are made from an index by hashing, so a worker never reads an id table (that would
//! cost every store the same cache miss and hide their own). Every helper here is cheap and
//! costs every store the same.

#![allow(dead_code)]

use std::sync::Arc;

use sessile::{CookieRecord, Data, Record};

/// Length of a session id, as `sessile::id::generate` makes them (24 bytes, base64url).
pub const ID_LEN: usize = 32;

/// Length of the JSON payload (the session's fields) of every benchmark session.
pub const PAYLOAD_LEN: usize = 197;

/// One day, the `maxAge` of the benchmark sessions, in milliseconds.
pub const MAX_AGE_MS: i64 = 86_400_000;

/// wyrand: a small, fast, good-enough generator for picking ids uniformly.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        Rng(seed ^ 0x9E37_79B9_7F4A_7C15)
    }

    /// The next 64 random bits.
    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0xA076_1D64_78BD_642F);
        let t = (self.0 as u128).wrapping_mul((self.0 ^ 0xE703_7ED1_A0B4_28DB) as u128);
        ((t >> 64) as u64) ^ (t as u64)
    }

    /// Uniform in `0..n` (Lemire's multiply-shift; the bias is below 2^-32 for our `n`).
    #[inline]
    pub fn below(&mut self, n: u64) -> u64 {
        ((self.next_u64() as u128 * n as u128) >> 64) as u64
    }
}

#[inline]
fn mix(mut x: u64) -> u64 {
    // splitmix64's finaliser.
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

const B64URL: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// The session id number `i`: 32 base64url characters, as random-looking as the real ones
/// and the same for every store and every process.
#[derive(Clone, Copy)]
pub struct Id([u8; ID_LEN]);

impl Id {
    /// Id number `i`.
    #[inline]
    pub fn of(i: u64) -> Self {
        let words = [mix(i), mix(i ^ 0x5555_5555_5555_5555), mix(!i)];
        let mut bytes = [0u8; 24];
        for (k, w) in words.iter().enumerate() {
            bytes[k * 8..k * 8 + 8].copy_from_slice(&w.to_le_bytes());
        }
        let mut out = [0u8; ID_LEN];
        for (chunk, dst) in bytes.chunks_exact(3).zip(out.chunks_exact_mut(4)) {
            let n = (chunk[0] as u32) << 16 | (chunk[1] as u32) << 8 | chunk[2] as u32;
            dst[0] = B64URL[(n >> 18) as usize & 63];
            dst[1] = B64URL[(n >> 12) as usize & 63];
            dst[2] = B64URL[(n >> 6) as usize & 63];
            dst[3] = B64URL[n as usize & 63];
        }
        Id(out)
    }

    /// The id as text.
    #[inline]
    pub fn as_str(&self) -> &str {
        // Only base64url characters were written.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

/// A session payload of exactly [`PAYLOAD_LEN`] bytes of JSON object text, distinct for
/// every `i` (a user, a counter, a CSRF token, a cart and preferences).
pub fn payload_text(i: u64) -> String {
    let token = Id::of(i ^ 0xC5F5_A1D0);
    let mut s = format!(
        r#"{{"user":"user{:08}","views":{},"csrf":"{}","cart":[101,202,303],"prefs":{{"theme":"dark","lang":"en-GB"}},"note":""#,
        i % 100_000_000,
        i % 1000,
        token.as_str()
    );
    let pad = PAYLOAD_LEN.saturating_sub(s.len() + 2);
    s.extend(std::iter::repeat_n('x', pad));
    s.push_str("\"}");
    debug_assert_eq!(s.len(), PAYLOAD_LEN, "{s}");
    s
}

/// [`payload_text`] as session data.
pub fn payload(i: u64) -> Data {
    Data::from_json_text(&payload_text(i)).expect("the payload is a JSON object")
}

/// The cookie record the layer stores for a session with `maxAge` one day: its `path` is one
/// `Arc<str>` shared by every session, as the layer shares its options' path.
pub fn cookie_template() -> CookieRecord {
    let mut c = CookieRecord {
        original_max_age: Some(MAX_AGE_MS),
        http_only: true,
        path: shared_path(),
        ..CookieRecord::default()
    };
    c.expires = Some(sessile::clock::now_ms() + MAX_AGE_MS);
    c
}

/// The one `Arc<str>` path of every benchmark cookie.
pub fn shared_path() -> Arc<str> {
    static PATH: std::sync::OnceLock<Arc<str>> = std::sync::OnceLock::new();
    PATH.get_or_init(|| Arc::from("/")).clone()
}

/// A whole record with payload `i`.
pub fn record(i: u64) -> Record {
    Record {
        cookie: cookie_template(),
        data: payload(i),
    }
}

/// Memory figures of this process, in bytes, from `/proc/self/status`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Mem {
    /// `VmRSS`: resident now.
    pub rss: u64,
    /// `VmHWM`: the peak resident size.
    pub hwm: u64,
    /// `RssAnon`: anonymous memory resident now (the heap, without mapped files).
    pub anon: u64,
}

/// Reads [`Mem`] for `pid` (`None`: this process). All zero where `/proc` is missing.
pub fn mem_of(pid: Option<u32>) -> Mem {
    let path = match pid {
        Some(p) => format!("/proc/{p}/status"),
        None => "/proc/self/status".to_owned(),
    };
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| {
                rest.trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse::<u64>()
                    .ok()
            })
            .map_or(0, |kb| kb * 1024)
    };
    Mem {
        rss: field("VmRSS:"),
        hwm: field("VmHWM:"),
        anon: field("RssAnon:"),
    }
}

/// An environment knob: a comma-separated list, or `default` when unset or empty.
pub fn env_list(name: &str, default: &[&str]) -> Vec<String> {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => v
            .split(',')
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .collect(),
        _ => default.iter().map(|s| (*s).to_owned()).collect(),
    }
}

/// An environment knob holding a number (`_` separators allowed), or `default`.
pub fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.replace('_', "").trim().parse().ok())
        .unwrap_or(default)
}

/// Parses a count such as `100000`, `100k` or `1M`.
pub fn parse_count(s: &str) -> Option<u64> {
    let s = s.trim().replace('_', "");
    let (num, mul) = match s.chars().last()? {
        'k' | 'K' => (&s[..s.len() - 1], 1_000),
        'm' | 'M' => (&s[..s.len() - 1], 1_000_000),
        _ => (&s[..], 1),
    };
    num.parse::<u64>().ok().map(|n| n * mul)
}

/// `1000000` as `1M`, `100000` as `100k`.
pub fn short_count(n: u64) -> String {
    if n >= 1_000_000 && n.is_multiple_of(1_000_000) {
        format!("{}M", n / 1_000_000)
    } else if n >= 1000 && n.is_multiple_of(1000) {
        format!("{}k", n / 1000)
    } else {
        n.to_string()
    }
}

/// The `n`-quantile (0..=1) of sorted samples.
pub fn quantile(sorted: &[u32], q: f64) -> u32 {
    if sorted.is_empty() {
        return 0;
    }
    let i = ((sorted.len() - 1) as f64 * q).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Nanoseconds as a short human figure.
pub fn fmt_ns(ns: f64) -> String {
    if ns >= 1e6 {
        format!("{:.1} ms", ns / 1e6)
    } else if ns >= 1e3 {
        format!("{:.2} µs", ns / 1e3)
    } else {
        format!("{ns:.0} ns")
    }
}

/// Operations per second as a short human figure.
pub fn fmt_rate(per_s: f64) -> String {
    if per_s >= 1e6 {
        format!("{:.2} M/s", per_s / 1e6)
    } else if per_s >= 1e3 {
        format!("{:.1} k/s", per_s / 1e3)
    } else {
        format!("{per_s:.0} /s")
    }
}

/// The machine, for the tables' header: CPU model and number of CPUs.
pub fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|r| r.trim_start_matches([' ', '\t', ':']).trim().to_owned())
        .unwrap_or_else(|| "unknown CPU".into());
    let n = std::thread::available_parallelism().map_or(1, |n| n.get());
    format!("{model}, {n} CPUs")
}

/// This thread's time on a CPU and time spent runnable but waiting for one, in ns
/// (`/proc/thread-self/schedstat`); zeros where that file is missing. The wait shows how
/// much other processes took the CPUs from a measurement.
pub fn thread_sched_ns() -> (u64, u64) {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").unwrap_or_default();
    let mut f = text
        .split_whitespace()
        .map(|x| x.parse::<u64>().unwrap_or(0));
    (f.next().unwrap_or(0), f.next().unwrap_or(0))
}

/// The load average over the last minute (`/proc/loadavg`).
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|t| t.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "?".into())
}

/// The shortest span measured in CPU time by [`Timer::elapsed`].
pub const CPU_CLOCK_MIN: std::time::Duration = std::time::Duration::from_millis(50);

/// A stopwatch reading both the wall clock and this thread's CPU time.
#[derive(Debug, Clone, Copy)]
pub struct Timer {
    wall: std::time::Instant,
    cpu_ns: u64,
}

impl Timer {
    /// Starts both clocks.
    pub fn start() -> Self {
        Timer {
            cpu_ns: thread_sched_ns().0,
            wall: std::time::Instant::now(),
        }
    }

    /// Wall time since the start.
    pub fn wall(&self) -> std::time::Duration {
        self.wall.elapsed()
    }

    /// This thread's CPU time since the start (the thread that started the timer must read
    /// it).
    pub fn cpu(&self) -> std::time::Duration {
        std::time::Duration::from_nanos(thread_sched_ns().0.saturating_sub(self.cpu_ns))
    }

    /// Wall time, or CPU time when `cpu` is set. The kernel counts CPU time in scheduler
    /// ticks (4 ms here), so spans under [`CPU_CLOCK_MIN`] are given in wall time.
    pub fn elapsed(&self, cpu: bool) -> std::time::Duration {
        let wall = self.wall();
        if cpu && wall >= CPU_CLOCK_MIN {
            self.cpu()
        } else {
            wall
        }
    }
}

/// The `name=value` of the session cookie a first request to `/views` of `app` sets.
pub fn first_cookie(rt: &tokio::runtime::Runtime, app: &axum::Router, path: &str) -> String {
    use tower::ServiceExt as _;
    let req = http::Request::get(path)
        .body(axum::body::Body::empty())
        .expect("request");
    let res = rt.block_on(app.clone().oneshot(req)).expect("response");
    res.headers()
        .get(http::header::SET_COOKIE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .expect("a session cookie")
        .to_owned()
}

/// The `/read` route's handler: reads the `views` field.
pub async fn read(session: sessile::Session) -> String {
    let n: u64 = session.get("views").ok().flatten().unwrap_or(0);
    n.to_string()
}

/// The `/views` route's handler: counts the request in the `views` field.
pub async fn views(session: sessile::Session) -> String {
    let n: u64 = session.get("views").ok().flatten().unwrap_or(0) + 1;
    let _ = session.insert("views", n);
    n.to_string()
}
