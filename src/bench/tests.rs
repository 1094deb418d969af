//! The driver's own checks: the mixes, the limits, fresh data, errors, memory.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;

use super::*;
use crate::record::{Changes, CookieRecord, Record};
use crate::store::Applied;
use crate::EmbeddedStore;

/// An embedded store that notes every call and every written payload, and can fail.
#[derive(Default)]
struct Noting {
    inner: EmbeddedStore,
    calls: Mutex<BTreeMap<&'static str, u64>>,
    written: Mutex<Vec<String>>,
    fail_gets: bool,
}

impl Noting {
    fn note(&self, call: &'static str) {
        *self.calls.lock().unwrap().entry(call).or_default() += 1;
    }

    fn count(&self, call: &'static str) -> u64 {
        self.calls.lock().unwrap().get(call).copied().unwrap_or(0)
    }
}

#[async_trait]
impl SessionStore for Noting {
    async fn get(&self, sid: &str) -> Result<Option<Record>, StoreError> {
        self.note("get");
        if self.fail_gets {
            return Err(StoreError::Unavailable("down".into()));
        }
        self.inner.get(sid).await
    }
    async fn set(&self, sid: &str, record: &Record) -> Result<(), StoreError> {
        self.note("set");
        self.written
            .lock()
            .unwrap()
            .push(record.data.as_str().to_owned());
        self.inner.set(sid, record).await
    }
    async fn create(&self, sid: &str, record: &Record) -> Result<Created, StoreError> {
        self.note("create");
        self.written
            .lock()
            .unwrap()
            .push(record.data.as_str().to_owned());
        self.inner.create(sid, record).await
    }
    async fn apply(&self, sid: &str, changes: &Changes) -> Result<Applied, StoreError> {
        self.note("apply");
        self.inner.apply(sid, changes).await
    }
    async fn destroy(&self, sid: &str) -> Result<(), StoreError> {
        self.note("destroy");
        self.inner.destroy(sid).await
    }
    async fn touch(&self, sid: &str, cookie: &CookieRecord) -> Result<(), StoreError> {
        self.note("touch");
        self.inner.touch(sid, cookie).await
    }
    async fn all(&self) -> Result<std::collections::BTreeMap<String, Record>, StoreError> {
        self.inner.all().await
    }
    async fn clear(&self) -> Result<(), StoreError> {
        self.inner.clear().await
    }
    async fn len(&self) -> Result<usize, StoreError> {
        self.inner.len().await
    }
}

fn ops(workload: Workload, n: u64, preload: u64) -> Config {
    Config {
        workload,
        limit: Limit::Ops(n),
        preload,
        ..Config::default()
    }
}

async fn run_noting(config: &Config) -> (Arc<Noting>, Report) {
    let store = Arc::new(Noting::default());
    let report = run(store.clone(), config).await.expect("run");
    (store, report)
}

#[tokio::test]
async fn read_heavy_is_ninety_nine_and_one_percent() {
    let (store, report) = run_noting(&ops(Workload::ReadHeavy, 100_000, 1_000)).await;
    assert_eq!((report.ops, report.errors, report.misses), (100_000, 0, 0));
    let sets = store.count("set") - 1_000; // the preload's
    let (gets, creates) = (store.count("get"), store.count("create"));
    assert_eq!(gets + sets + creates, 100_000);
    assert!((89_000..91_000).contains(&gets), "{gets}");
    assert!((8_500..9_500).contains(&sets), "{sets}");
    assert!((700..1_300).contains(&creates), "{creates}");
    assert_eq!(store.inner.len().await.unwrap() as u64, 1_000 + creates);
}

#[tokio::test]
async fn write_heavy_is_half_gets_half_updates() {
    let (store, report) = run_noting(&ops(Workload::WriteHeavy, 20_000, 100)).await;
    assert_eq!(report.ops, 20_000);
    let (gets, sets) = (store.count("get"), store.count("set") - 100);
    assert_eq!(gets + sets, 20_000);
    assert!((9_500..10_500).contains(&gets), "{gets}");
    assert_eq!(store.count("create"), 0);
}

#[tokio::test]
async fn touch_only_touches_and_churn_leaves_nothing_behind() {
    let (store, _) = run_noting(&ops(Workload::TouchOnly, 5_000, 10)).await;
    assert_eq!(store.count("touch"), 5_000);
    assert_eq!(store.count("get"), 0);

    // An odd count cuts the churn between a create and its destroy.
    let (store, report) = run_noting(&ops(Workload::Churn, 5_001, 0)).await;
    assert_eq!(report.ops, 5_001);
    assert_eq!(
        (store.count("create"), store.count("destroy")),
        (2_501, 2_501)
    );
    assert_eq!(store.inner.len().await.unwrap(), 0);
}

#[tokio::test]
async fn a_new_visitor_flood_creates_new_sessions_only() {
    let (store, report) = run_noting(&ops(Workload::NewVisitorFlood, 3_000, 0)).await;
    assert_eq!((report.ops, report.errors), (3_000, 0));
    assert_eq!(store.count("create"), 3_000);
    assert_eq!(store.inner.len().await.unwrap(), 3_000);
}

#[tokio::test]
async fn every_write_carries_new_data_of_the_payload_size() {
    let config = Config {
        payload_bytes: 500,
        ..ops(Workload::WriteHeavy, 4_000, 50)
    };
    let (store, _) = run_noting(&config).await;
    let written = store.written.lock().unwrap();
    assert!(written.len() > 1_000);
    assert!(written.iter().all(|w| w.len() == 500));
    let distinct: HashSet<&String> = written.iter().collect();
    assert_eq!(distinct.len(), written.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_share_an_op_count_exactly_as_tasks_or_threads() {
    for workers in [Workers::Tasks(3), Workers::Threads(3)] {
        let config = Config {
            workers,
            ..ops(Workload::NewVisitorFlood, 1_000, 0)
        };
        let (store, report) = run_noting(&config).await;
        assert_eq!(report.ops, 1_000);
        // Distinct ids across workers: every create made a new session.
        assert_eq!(store.inner.len().await.unwrap(), 1_000, "{workers:?}");
        assert_eq!(report.workers, workers);
    }
}

#[tokio::test]
async fn a_duration_limit_stops_the_run() {
    let config = Config {
        limit: Limit::Duration(Duration::from_millis(30)),
        preload: 10,
        ..Config::default()
    };
    let (_, report) = run_noting(&config).await;
    assert!(report.ops > 0);
    assert!(report.elapsed >= Duration::from_millis(30));
}

#[tokio::test]
async fn errors_are_counted_and_the_first_is_kept() {
    let store = Arc::new(Noting {
        fail_gets: true,
        ..Noting::default()
    });
    let report = run(store, &ops(Workload::WriteHeavy, 1_000, 10))
        .await
        .expect("run");
    assert!(
        report.errors > 400 && report.errors < 600,
        "{}",
        report.errors
    );
    assert!(report.first_error.unwrap().contains("down"));
}

#[tokio::test]
async fn a_lost_session_is_a_miss() {
    struct Forgetful(EmbeddedStore);
    #[async_trait]
    impl SessionStore for Forgetful {
        async fn get(&self, _: &str) -> Result<Option<Record>, StoreError> {
            Ok(None)
        }
        async fn set(&self, sid: &str, r: &Record) -> Result<(), StoreError> {
            self.0.set(sid, r).await
        }
        async fn create(&self, sid: &str, r: &Record) -> Result<Created, StoreError> {
            self.0.create(sid, r).await
        }
        async fn apply(&self, sid: &str, c: &Changes) -> Result<Applied, StoreError> {
            self.0.apply(sid, c).await
        }
        async fn destroy(&self, sid: &str) -> Result<(), StoreError> {
            self.0.destroy(sid).await
        }
        async fn touch(&self, sid: &str, c: &CookieRecord) -> Result<(), StoreError> {
            self.0.touch(sid, c).await
        }
        async fn all(&self) -> Result<std::collections::BTreeMap<String, Record>, StoreError> {
            self.0.all().await
        }
        async fn clear(&self) -> Result<(), StoreError> {
            self.0.clear().await
        }
        async fn len(&self) -> Result<usize, StoreError> {
            self.0.len().await
        }
    }
    let report = run(
        Arc::new(Forgetful(EmbeddedStore::new())),
        &ops(Workload::WriteHeavy, 1_000, 10),
    )
    .await
    .expect("run");
    assert!(report.misses > 400, "{}", report.misses);
}

#[tokio::test]
async fn workloads_that_read_need_a_preload() {
    for w in Workload::ALL {
        let r = run(Arc::new(EmbeddedStore::new()), &ops(w, 10, 0)).await;
        assert_eq!(
            matches!(r, Err(BenchError::NoSessions(_))),
            w.needs_sessions(),
            "{w}"
        );
    }
}

#[tokio::test]
async fn memory_is_reported_only_when_asked_and_measurable() {
    let mut config = ops(Workload::Churn, 10, 20_000);
    let report = run(Arc::new(EmbeddedStore::new()), &config)
        .await
        .expect("run");
    assert_eq!(
        report.bytes_per_session.is_some(),
        cfg!(target_os = "linux")
    );
    config.measure_memory = false;
    let report = run(Arc::new(EmbeddedStore::new()), &config)
        .await
        .expect("run");
    assert_eq!(report.bytes_per_session, None);
}

#[test]
fn workload_names_round_trip() {
    for w in Workload::ALL {
        assert_eq!(w.name().parse::<Workload>().unwrap(), w);
        assert_eq!(w.name().replace('-', "_").parse::<Workload>().unwrap(), w);
    }
    assert!(matches!(
        "reads".parse::<Workload>(),
        Err(BenchError::UnknownWorkload(_))
    ));
}
