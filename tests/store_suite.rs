//! The store conformance suite (`sessile::store::suite`) against every store of this crate.

use std::sync::Arc;

use sessile::store::suite;
use sessile::{EmbeddedStore, Record, SessionStore};

#[tokio::test]
async fn embedded_store_default_passes_the_whole_suite() {
    let store = EmbeddedStore::new();
    if let Err(failure) = suite::run_destructive(&store).await {
        panic!("{failure}");
    }
}

#[tokio::test]
async fn embedded_store_with_one_shard_passes_the_whole_suite() {
    let store = EmbeddedStore::builder().shards(1).build();
    if let Err(failure) = suite::run_destructive(&store).await {
        panic!("{failure}");
    }
}

#[tokio::test]
async fn embedded_store_without_sweeper_passes_the_whole_suite() {
    // Expired entries are then only hidden by reads and freed by writes.
    let store = EmbeddedStore::builder().sweep_interval(None).build();
    if let Err(failure) = suite::run_destructive(&store).await {
        panic!("{failure}");
    }
}

/// The durable store, under each fsync policy, then the same directory reopened.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn durable_embedded_store_passes_the_whole_suite_and_keeps_it_across_a_restart() {
    use sessile::FsyncPolicy;
    for policy in [
        FsyncPolicy::Always,
        FsyncPolicy::EverySec,
        FsyncPolicy::Never,
    ] {
        let dir = std::env::temp_dir().join(format!(
            "sessile-suite-{}",
            sessile::id::generate().unwrap()
        ));
        let open = || {
            EmbeddedStore::builder()
                .fsync(policy)
                .segment_size(64 << 10)
                .open(&dir)
                .unwrap()
        };
        let store = open();
        if let Err(failure) = suite::run_destructive(&store).await {
            panic!("{policy:?}: {failure}");
        }
        let mut kept = Record::default();
        kept.cookie.set_max_age(Some(60_000));
        store.set("kept", &kept).await.unwrap();
        drop(store);
        let store = open();
        assert!(store.get("kept").await.unwrap().is_some(), "{policy:?}");
        if let Err(failure) = suite::run(&store).await {
            panic!("{policy:?} after a restart: {failure}");
        }
        drop(store);
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// The non-destructive suite leaves other data alone and cleans up after itself, so it can
/// run against a store that is in use.
#[tokio::test]
async fn the_suite_leaves_other_sessions_alone_and_cleans_up() {
    let store = EmbeddedStore::new();
    let mut others = Vec::new();
    for i in 0..100 {
        let id = format!("app-session-{i}");
        let record: Record = serde_json::from_str(&format!(
            r#"{{"cookie":{{"originalMaxAge":null}},"n":{i}}}"#
        ))
        .unwrap();
        store.set(&id, &record).await.unwrap();
        others.push((id, record));
    }
    suite::run(&store).await.unwrap();
    assert_eq!(store.len().await.unwrap(), others.len());
    assert_eq!(
        store.usage().0,
        others.len(),
        "the suite left records behind"
    );
    let all = store.all().await.unwrap();
    assert_eq!(all.len(), others.len());
    for (id, record) in &others {
        assert_eq!(all.get(id), Some(record));
    }
}

/// The suite runs through a trait object, from spawned tasks on a multi-thread runtime
/// (its futures are `Send`), and several runs share one store at once: only the `len`
/// checks assume a quiet store, so the concurrent runs here are of the checks without them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_suite_runs_concurrently_through_a_trait_object() {
    let store: Arc<dyn SessionStore> = Arc::new(EmbeddedStore::new());
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let s = &*store;
            suite::check_get_missing(s).await?;
            suite::check_set_get(s).await?;
            suite::check_set_replaces(s).await?;
            suite::check_destroy(s).await?;
            suite::check_touch(s).await?;
            suite::check_apply(s).await?;
            suite::check_apply_missing(s).await?;
            suite::check_concurrent_apply(s).await?;
            suite::check_large_values(s).await?;
            suite::check_odd_ids(s).await
        }));
    }
    for task in tasks {
        if let Err(failure) = task.await.unwrap() {
            panic!("{failure}");
        }
    }
    assert_eq!(store.len().await.unwrap(), 0);
    // And the whole suite through the trait object.
    suite::run_destructive(&*store).await.unwrap();
}

/// A store with one deliberate fault, to show the suite catches it.
mod faulty {
    use async_trait::async_trait;
    use sessile::StoreError;
    use sessile::{
        Applied, Changes, CookieRecord, Created, Data, EmbeddedStore, Record, SessionStore,
    };
    use std::collections::BTreeMap;

    pub enum Fault {
        /// `set` merges the new fields into the old record instead of replacing it.
        MergeOnSet,
        /// `apply` reads, yields, then writes the whole record: a lost-update race.
        RacyApply,
        /// `touch` creates a missing record.
        TouchCreates,
        /// `create` is a `get`, a yield, then a `set`: racing creates all win.
        RacyCreate,
    }

    pub struct Faulty(pub EmbeddedStore, pub Fault);

    #[async_trait]
    impl SessionStore for Faulty {
        async fn get(&self, sid: &str) -> Result<Option<Record>, StoreError> {
            self.0.get(sid).await
        }
        async fn set(&self, sid: &str, record: &Record) -> Result<(), StoreError> {
            let Fault::MergeOnSet = self.1 else {
                return self.0.set(sid, record).await;
            };
            let mut merged = match self.0.get(sid).await? {
                Some(old) => old.data.to_map()?,
                None => Default::default(),
            };
            merged.extend(record.data.to_map()?);
            let merged = Record {
                cookie: record.cookie.clone(),
                data: Data::from_map(&merged),
            };
            self.0.set(sid, &merged).await
        }
        async fn create(&self, sid: &str, record: &Record) -> Result<Created, StoreError> {
            let Fault::RacyCreate = self.1 else {
                return self.0.create(sid, record).await;
            };
            if self.0.get(sid).await?.is_some() {
                return Ok(Created::Exists);
            }
            tokio::task::yield_now().await;
            self.0.set(sid, record).await?;
            Ok(Created::Created)
        }
        async fn apply(&self, sid: &str, changes: &Changes) -> Result<Applied, StoreError> {
            let Fault::RacyApply = self.1 else {
                return self.0.apply(sid, changes).await;
            };
            let Some(old) = self.0.get(sid).await? else {
                return Ok(Applied::Missing);
            };
            tokio::task::yield_now().await;
            let record = Record {
                cookie: changes.cookie.clone(),
                data: changes.apply_to_data(&old.data)?,
            };
            self.0.set(sid, &record).await?;
            Ok(Applied::Applied)
        }
        async fn destroy(&self, sid: &str) -> Result<(), StoreError> {
            self.0.destroy(sid).await
        }
        async fn touch(&self, sid: &str, cookie: &CookieRecord) -> Result<(), StoreError> {
            if let Fault::TouchCreates = self.1 {
                if self.0.get(sid).await?.is_none() {
                    let record = Record {
                        cookie: cookie.clone(),
                        data: Data::empty(),
                    };
                    return self.0.set(sid, &record).await;
                }
            }
            self.0.touch(sid, cookie).await
        }
        async fn all(&self) -> Result<BTreeMap<String, Record>, StoreError> {
            self.0.all().await
        }
        async fn clear(&self) -> Result<(), StoreError> {
            self.0.clear().await
        }
        async fn len(&self) -> Result<usize, StoreError> {
            self.0.len().await
        }
    }
}

/// The suite really fails, naming the check, on stores that break the contract.
#[tokio::test]
async fn the_suite_catches_broken_stores() {
    use faulty::{Fault, Faulty};
    for (fault, check) in [
        (Fault::MergeOnSet, "set_replaces"),
        (Fault::TouchCreates, "touch"),
        (Fault::RacyApply, "concurrent_apply"),
        (Fault::RacyCreate, "create"),
    ] {
        let failure = suite::run(&Faulty(EmbeddedStore::new(), fault))
            .await
            .expect_err("a broken store must fail the suite");
        assert_eq!(failure.check(), check, "{failure}");
        assert!(failure.to_string().contains(check), "{failure}");
    }
}

/// A plain `Mutex<BTreeMap>` store written from the trait's documentation alone: the suite
/// is not tailored to the embedded store. With expiry ignored it must fail.
mod reference {
    use async_trait::async_trait;
    use sessile::{Applied, Changes, CookieRecord, Created, Record, SessionStore, StoreError};
    use std::collections::BTreeMap;
    use std::sync::Mutex;

    pub struct MapStore {
        map: Mutex<BTreeMap<String, Record>>,
        honour_expiry: bool,
    }

    impl MapStore {
        pub fn new(honour_expiry: bool) -> Self {
            MapStore {
                map: Mutex::new(BTreeMap::new()),
                honour_expiry,
            }
        }

        fn live(&self, r: &Record) -> bool {
            !self.honour_expiry || !r.cookie.is_expired_at(sessile::clock::now_ms())
        }
    }

    #[async_trait]
    impl SessionStore for MapStore {
        async fn get(&self, sid: &str) -> Result<Option<Record>, StoreError> {
            let map = self.map.lock().unwrap();
            Ok(map.get(sid).filter(|r| self.live(r)).cloned())
        }
        async fn set(&self, sid: &str, record: &Record) -> Result<(), StoreError> {
            self.map
                .lock()
                .unwrap()
                .insert(sid.to_owned(), record.clone());
            Ok(())
        }
        async fn create(&self, sid: &str, record: &Record) -> Result<Created, StoreError> {
            let mut map = self.map.lock().unwrap();
            if map.get(sid).is_some_and(|r| self.live(r)) {
                return Ok(Created::Exists);
            }
            if record.cookie.is_expired_at(sessile::clock::now_ms()) {
                map.remove(sid);
            } else {
                map.insert(sid.to_owned(), record.clone());
            }
            Ok(Created::Created)
        }
        async fn apply(&self, sid: &str, changes: &Changes) -> Result<Applied, StoreError> {
            let mut map = self.map.lock().unwrap();
            match map.get(sid).filter(|r| self.live(r)).cloned() {
                None => Ok(Applied::Missing),
                Some(old) => {
                    let data = changes.apply_to_data(&old.data)?;
                    let cookie = changes.cookie.clone();
                    map.insert(sid.to_owned(), Record { cookie, data });
                    Ok(Applied::Applied)
                }
            }
        }
        async fn destroy(&self, sid: &str) -> Result<(), StoreError> {
            self.map.lock().unwrap().remove(sid);
            Ok(())
        }
        async fn touch(&self, sid: &str, cookie: &CookieRecord) -> Result<(), StoreError> {
            let mut map = self.map.lock().unwrap();
            let live = map.get(sid).is_some_and(|r| self.live(r));
            if let (true, Some(r)) = (live, map.get_mut(sid)) {
                r.cookie = cookie.clone();
            }
            Ok(())
        }
        async fn all(&self) -> Result<BTreeMap<String, Record>, StoreError> {
            let map = self.map.lock().unwrap();
            Ok(map
                .iter()
                .filter(|(_, r)| self.live(r))
                .map(|(k, r)| (k.clone(), r.clone()))
                .collect())
        }
        async fn clear(&self) -> Result<(), StoreError> {
            self.map.lock().unwrap().clear();
            Ok(())
        }
        async fn len(&self) -> Result<usize, StoreError> {
            Ok(self
                .map
                .lock()
                .unwrap()
                .values()
                .filter(|r| self.live(r))
                .count())
        }
    }
}

#[tokio::test]
async fn a_reference_map_store_passes_and_fails_without_expiry() {
    use reference::MapStore;
    suite::run_destructive(&MapStore::new(true)).await.unwrap();
    let failure = suite::run(&MapStore::new(false))
        .await
        .expect_err("a store that ignores expires must fail the suite");
    assert_eq!(failure.check(), "expiry", "{failure}");
}

/// `create` from many threads at once, on one id at a time: exactly one wins each id, and
/// the record stored (in memory, then in the durable store after a reopen) is the winner's.
/// The suite's own race runs on one task, where the embedded store's calls do not interleave.
#[test]
fn racing_creates_from_threads_have_exactly_one_winner() {
    use std::sync::Barrier;
    const THREADS: usize = 8;
    const IDS: usize = 200;
    let dir = std::env::temp_dir().join(format!(
        "sessile-create-race-{}",
        sessile::id::generate().unwrap()
    ));
    let open = || EmbeddedStore::builder().open(&dir).unwrap();
    for store in [EmbeddedStore::new(), open()] {
        let barrier = Barrier::new(THREADS);
        let wins: Vec<Vec<usize>> = std::thread::scope(|s| {
            let threads: Vec<_> = (0..THREADS)
                .map(|t| {
                    let (store, barrier) = (&store, &barrier);
                    s.spawn(move || {
                        let mut won = Vec::new();
                        for i in 0..IDS {
                            let record = Record::from_json(&format!(
                                r#"{{"cookie":{{"originalMaxAge":60000,"expires":"2100-01-01T00:00:00.000Z"}},"thread":{t}}}"#
                            ))
                            .unwrap();
                            barrier.wait();
                            if store.create_now(&format!("id{i}"), &record).unwrap()
                                == sessile::Created::Created
                            {
                                won.push(i);
                            }
                        }
                        won
                    })
                })
                .collect();
            threads.into_iter().map(|t| t.join().unwrap()).collect()
        });
        let durable = store.is_durable();
        drop(store);
        let store = if durable {
            open()
        } else {
            EmbeddedStore::new()
        };
        for i in 0..IDS {
            let winners: Vec<usize> = (0..THREADS).filter(|t| wins[*t].contains(&i)).collect();
            assert_eq!(winners.len(), 1, "id{i}: winners {winners:?}");
            if durable {
                let stored = store.get_now(&format!("id{i}")).expect("kept");
                let want = format!(r#"{{"thread":{}}}"#, winners[0]);
                assert_eq!(stored.data.as_str(), want, "id{i}");
            }
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}
