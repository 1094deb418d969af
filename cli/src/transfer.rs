//! Sessions in and out of the store: `export` (JSON lines), `import`, and `migrate` into
//! Redis in connect-redis's format. Offline: the store is opened with its lock.

use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Read, Write};
use std::path::Path;
use std::process::ExitCode;

use serde::Deserialize;
use serde_json::json;
use sessile::{Record, RedisStore, SessionStore};

use crate::error::Failure;
use crate::offline::{builder, open_existing};
use crate::output::{bar, print_json, say, stdout_failed};

/// One exported session: `{"id": …, "session": <express's JSON>}`, the session's JSON as the
/// store holds it (what express-session and connect-redis store).
pub(crate) fn line(id: &str, record: &Record) -> String {
    // A string always serialises.
    let id = serde_json::to_string(id).unwrap_or_default();
    format!("{{\"id\":{id},\"session\":{}}}", record.to_json())
}

/// A line of an import file.
#[derive(Deserialize)]
struct Line<'a> {
    id: String,
    #[serde(borrow)]
    session: &'a serde_json::value::RawValue,
}

/// Every live session of the store in `dir`, by id.
fn live_sessions(
    rt: &tokio::runtime::Runtime,
    dir: &Path,
) -> Result<std::collections::BTreeMap<String, Record>, Failure> {
    let store = open_existing(dir, builder())?;
    Ok(rt.block_on(store.all())?)
}

/// `sessile export DIR`: JSON lines on stdout.
pub(crate) fn export(
    rt: &tokio::runtime::Runtime,
    dir: &Path,
    json: bool,
) -> Result<ExitCode, Failure> {
    let sessions = live_sessions(rt, dir)?;
    let pb = bar(Some(sessions.len() as u64), false, json).with_message("exporting");
    let mut out = BufWriter::new(io::stdout().lock());
    for (i, (id, record)) in sessions.iter().enumerate() {
        if let Err(e) = writeln!(out, "{}", line(id, record)) {
            stdout_failed(&e);
        }
        if i % 1024 == 0 {
            pb.set_position(i as u64);
        }
    }
    if let Err(e) = out.flush() {
        stdout_failed(&e);
    }
    pb.finish_and_clear();
    Ok(ExitCode::SUCCESS)
}

/// `sessile import DIR FILE`: stores every session of the JSON lines; expired ones skipped.
pub(crate) fn import(dir: &Path, file: &Path, json: bool) -> Result<ExitCode, Failure> {
    let (input, len): (Box<dyn Read>, u64) = if file == Path::new("-") {
        (Box::new(io::stdin().lock()), 0)
    } else {
        let f = File::open(file).map_err(|e| Failure::because(file.display(), e))?;
        let len = f.metadata().map(|m| m.len()).unwrap_or(0);
        (Box::new(f), len)
    };
    let store = builder().open(dir)?;
    let pb = bar(Some(len).filter(|&l| l > 0), true, json).with_message("importing");
    let now = sessile::clock::now_ms();
    let (mut imported, mut expired, mut read) = (0u64, 0u64, 0u64);
    for (n, text) in BufReader::new(input).lines().enumerate() {
        let text = text.map_err(|e| Failure::because(file.display(), e))?;
        read += text.len() as u64 + 1;
        if text.trim().is_empty() {
            continue;
        }
        let at = |e: &dyn std::fmt::Display| {
            Failure::Other(format!("{} line {}: {e}", file.display(), n + 1))
        };
        let l: Line<'_> = serde_json::from_str(&text).map_err(|e| at(&e))?;
        let record = Record::from_json(l.session.get()).map_err(|e| at(&e))?;
        if record.cookie.is_expired_at(now) {
            expired += 1;
            continue;
        }
        store.set_now(&l.id, &record).map_err(|e| at(&e))?;
        imported += 1;
        if imported % 1024 == 0 {
            pb.set_position(read);
        }
    }
    store.flush()?;
    drop(store);
    pb.finish_and_clear();
    if json {
        print_json(&json!({ "imported": imported, "expired": expired }));
    } else {
        say!("imported {imported} sessions ({expired} already expired, skipped)");
    }
    Ok(ExitCode::SUCCESS)
}

/// What `migrate` is told.
pub(crate) struct Migrate<'a> {
    pub(crate) dir: &'a Path,
    pub(crate) url: &'a str,
    pub(crate) prefix: &'a str,
    pub(crate) default_ttl: u64,
}

/// `sessile migrate DIR --redis URL`: every live session into Redis, with its remaining time
/// to live (connect-redis's: until the cookie's `expires`, or `default_ttl` without one).
pub(crate) fn migrate(
    rt: &tokio::runtime::Runtime,
    m: &Migrate<'_>,
    json: bool,
) -> Result<ExitCode, Failure> {
    let sessions = live_sessions(rt, m.dir)?;
    let redis = rt
        .block_on(
            RedisStore::builder(m.url)
                .prefix(m.prefix)
                .default_ttl(std::time::Duration::from_secs(m.default_ttl))
                .build(),
        )
        .map_err(|e| Failure::because(format!("Redis at {}", m.url), e))?;
    let pb = bar(Some(sessions.len() as u64), false, json).with_message("migrating");
    let (mut copied, mut expired, mut default_ttl) = (0u64, 0u64, 0u64);
    for (id, record) in &sessions {
        if record.cookie.is_expired_at(sessile::clock::now_ms()) {
            expired += 1;
            continue;
        }
        rt.block_on(redis.set(id, record)).map_err(|e| {
            let done = format!("after {copied} of {} sessions", sessions.len());
            Failure::because(format!("writing {} ({done})", redis.key(id)), e)
        })?;
        copied += 1;
        default_ttl += u64::from(record.cookie.expires.is_none());
        if copied % 256 == 0 {
            pb.set_position(copied);
        }
    }
    pb.finish_and_clear();
    if json {
        print_json(&json!({
            "sessions": sessions.len(),
            "copied": copied,
            "expired": expired,
            "default_ttl": default_ttl,
            "prefix": m.prefix,
        }));
    } else {
        say!(
            "copied {copied} of {} sessions to {} under {:?} ({default_ttl} without expires got \
             the default TTL of {} s; {expired} expired meanwhile, skipped)",
            sessions.len(),
            m.url,
            m.prefix,
            m.default_ttl
        );
    }
    Ok(ExitCode::SUCCESS)
}
