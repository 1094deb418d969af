//! The stores `sessile bench` can measure, named on the command line.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use sessile::{EmbeddedStore, FsyncPolicy, SessionStore};

use crate::error::Failure;

/// The key prefix of the sessions a bench writes to Redis (cleared after each run).
const REDIS_PREFIX: &str = "sessile-bench:";

/// A store named by `--store`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum StoreSpec {
    /// `memory`: the embedded store in memory.
    Memory,
    /// `durable:<policy>`: the embedded store in a temporary directory.
    Durable(Policy),
    /// `redis://…` or `rediss://…`: a Redis server.
    Redis(String),
    /// `ts-memory`: tower-sessions' MemoryStore, the reference.
    TsMemory,
}

/// The fsync policies of the embedded store's builder, by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Policy {
    Always,
    EverySec,
    Never,
}

impl Policy {
    const ALL: [(Policy, &'static str); 3] = [
        (Policy::Always, "always"),
        (Policy::EverySec, "everysec"),
        (Policy::Never, "never"),
    ];

    fn name(self) -> &'static str {
        Policy::ALL
            .iter()
            .find(|(p, _)| *p == self)
            .map_or("?", |(_, n)| n)
    }

    fn fsync(self) -> FsyncPolicy {
        match self {
            Policy::Always => FsyncPolicy::Always,
            Policy::EverySec => FsyncPolicy::EverySec,
            Policy::Never => FsyncPolicy::Never,
        }
    }
}

impl FromStr for StoreSpec {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        if let Some(policy) = s.strip_prefix("durable:") {
            return Policy::ALL
                .iter()
                .find(|(_, n)| *n == policy)
                .map(|(p, _)| StoreSpec::Durable(*p))
                .ok_or_else(|| {
                    format!("no fsync policy {policy:?} (durable:always, durable:everysec, durable:never)")
                });
        }
        if s.starts_with("redis://") || s.starts_with("rediss://") {
            return Ok(StoreSpec::Redis(s.to_owned()));
        }
        match s {
            "memory" => Ok(StoreSpec::Memory),
            "durable" => Ok(StoreSpec::Durable(Policy::EverySec)),
            "ts-memory" => Ok(StoreSpec::TsMemory),
            _ => Err(format!(
                "no store {s:?} (memory, durable:always|everysec|never, redis://…, rediss://…, ts-memory)"
            )),
        }
    }
}

impl fmt::Display for StoreSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreSpec::Memory => f.write_str("memory"),
            StoreSpec::Durable(p) => write!(f, "durable:{}", p.name()),
            StoreSpec::Redis(url) => f.write_str(url),
            StoreSpec::TsMemory => f.write_str("ts-memory"),
        }
    }
}

impl StoreSpec {
    /// How the store is named in the table and the chart (a Redis URL without its password).
    pub(crate) fn label(&self) -> String {
        match self {
            StoreSpec::Redis(url) => {
                let (scheme, rest) = url.split_once("://").unwrap_or(("redis", url));
                let rest = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
                format!("{scheme}://{rest}")
            }
            other => other.to_string(),
        }
    }

    /// Whether the store's data lives in this process (its memory can be measured).
    pub(crate) fn in_process(&self) -> bool {
        !matches!(self, StoreSpec::Redis(_))
    }

    /// Opens the store, empty.
    pub(crate) async fn open(&self) -> Result<Opened, Failure> {
        Ok(match self {
            StoreSpec::Memory => Opened::plain(Arc::new(EmbeddedStore::new())),
            StoreSpec::Durable(policy) => {
                let dir = TempDir::new()?;
                let store = EmbeddedStore::builder()
                    .fsync(policy.fsync())
                    .open(&dir.0)?;
                Opened {
                    store: Arc::new(store),
                    redis: false,
                    _dir: Some(dir),
                }
            }
            StoreSpec::Redis(url) => {
                let store = sessile::RedisStore::builder(url.clone())
                    .prefix(REDIS_PREFIX)
                    .build()
                    .await?;
                store.clear().await?;
                Opened {
                    store: Arc::new(store),
                    redis: true,
                    _dir: None,
                }
            }
            StoreSpec::TsMemory => Opened::plain(Arc::new(super::ts_memory::TsMemory::default())),
        })
    }
}

/// An open store, and what it lives in.
pub(crate) struct Opened {
    pub(crate) store: Arc<dyn SessionStore>,
    redis: bool,
    _dir: Option<TempDir>,
}

impl Opened {
    fn plain(store: Arc<dyn SessionStore>) -> Opened {
        Opened {
            store,
            redis: false,
            _dir: None,
        }
    }

    /// Removes what the run left in a shared store (Redis, under the bench's prefix).
    pub(crate) async fn clean(&self) -> Result<(), Failure> {
        if self.redis {
            self.store.clear().await?;
        }
        Ok(())
    }
}

/// A directory removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Result<TempDir, Failure> {
        static N: AtomicU64 = AtomicU64::new(0);
        let path = std::env::temp_dir().join(format!(
            "sessile-bench-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&path)
            .map_err(|e| Failure::because(format!("creating {}", path.display()), e))?;
        Ok(TempDir(path))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_names_parse_and_print_back() {
        for name in [
            "memory",
            "durable:always",
            "durable:everysec",
            "durable:never",
            "redis://127.0.0.1:6379/",
            "rediss://h:6380/1",
            "ts-memory",
        ] {
            assert_eq!(name.parse::<StoreSpec>().unwrap().to_string(), name);
        }
        assert!("durable:sometimes".parse::<StoreSpec>().is_err());
        assert!("mongo".parse::<StoreSpec>().is_err());
    }

    #[test]
    fn a_redis_label_hides_the_password() {
        let spec: StoreSpec = "redis://user:secret@h:6379/0".parse().unwrap();
        assert_eq!(spec.label(), "redis://h:6379/0");
        assert!(!spec.in_process());
    }
}
