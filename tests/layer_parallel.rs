//! Parallel requests of one session: with `resave = false` no request loses another's
//! change; with `resave = true` (express's whole-record save) changes can be lost.

mod common;

use std::net::SocketAddr;

use common::*;
use http::StatusCode;
use serde_json::json;

/// Sends every path at once with `cookie`; returns the responses in order.
async fn all_at_once(addr: SocketAddr, cookie: &str, paths: Vec<String>) -> Vec<Resp> {
    let handles: Vec<_> = paths
        .into_iter()
        .map(|p| {
            let c = cookie.to_owned();
            tokio::spawn(async move { get_with(addr, &p, Some(&c)).await })
        })
        .collect();
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.expect("request task"));
    }
    out
}

/// A server on a spy store. Tests hold its writes once the session exists, until every
/// parallel request has loaded the session and reached its write.
async fn server(resave: bool) -> (SocketAddr, SpyStore) {
    let store = SpyStore::new();
    let layer = builder()
        .store(store.clone())
        .resave(resave)
        .build()
        .unwrap();
    (start(layer).await, store)
}

/// Sends every path at once with `cookie`, holding the store's writes until all of them
/// have loaded the session and reached their write; returns the responses in order.
async fn all_loaded_then_all_written(
    addr: SocketAddr,
    store: &SpyStore,
    cookie: &str,
    paths: Vec<String>,
) -> Vec<Resp> {
    let n = paths.len();
    store.take_calls();
    store.hold_writes();
    let requests = {
        let cookie = cookie.to_owned();
        tokio::spawn(async move { all_at_once(addr, &cookie, paths).await })
    };
    store
        .wait_for_calls("every request at its write", |c| SpyStore::writes(c) == n)
        .await;
    store.release_writes();
    requests.await.expect("requests")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_requests_of_one_session_lose_no_change() {
    let (addr, store) = server(false).await;
    let (id, cookie) = login(addr).await;
    let paths = (0..100).map(|i| format!("/set/k{i}")).collect();
    for r in all_loaded_then_all_written(addr, &store, &cookie, paths).await {
        assert_eq!((r.status, r.body.as_str()), (StatusCode::OK, id.as_str()));
    }
    let f = fields(&store.record(&id).await.unwrap());
    let missing: Vec<String> = (0..100)
        .map(|i| format!("k{i}"))
        .filter(|k| f.get(k) != Some(&json!(true)))
        .collect();
    assert_eq!(missing, Vec::<String>::new(), "lost updates");
    assert_eq!(f.len(), 101, "user + 100 keys");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_removes_and_sets_all_apply() {
    let (addr, store) = server(false).await;
    let (id, cookie) = login(addr).await;
    for i in 0..50 {
        get_with(addr, &format!("/set/r{i}"), Some(&cookie)).await;
    }
    let paths = (0..50)
        .flat_map(|i| [format!("/remove/r{i}"), format!("/set/k{i}")])
        .collect();
    for r in all_loaded_then_all_written(addr, &store, &cookie, paths).await {
        assert_eq!(r.status, StatusCode::OK);
    }
    let f = fields(&store.record(&id).await.unwrap());
    let mut keys: Vec<&str> = f.keys().map(String::as_str).collect();
    keys.sort_unstable();
    let mut expected: Vec<String> = (0..50).map(|i| format!("k{i}")).collect();
    expected.push("user".into());
    expected.sort_unstable();
    assert_eq!(keys, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_new_sessions_get_distinct_ids() {
    let store = SpyStore::new();
    let addr = start(builder().store(store.clone()).build().unwrap()).await;
    let handles: Vec<_> = (0..50)
        .map(|i| tokio::spawn(async move { get_with(addr, &format!("/set/k{i}"), None).await }))
        .collect();
    let mut ids = Vec::new();
    for h in handles {
        ids.push(h.await.unwrap().sid());
    }
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 50);
    let mut stored = store.ids().await;
    stored.sort();
    assert_eq!(stored, ids);
}

/// express's `resave: true` behaviour: every request writes back the whole session it
/// loaded. When every request has loaded the session before any writes it back, the last
/// write wins: it keeps the login and its own change, and every other change is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_requests_with_resave_lose_all_but_the_last_change() {
    let (addr, store) = server(true).await;
    let (id, cookie) = login(addr).await;
    let paths = (0..100).map(|i| format!("/set/k{i}")).collect();
    for r in all_loaded_then_all_written(addr, &store, &cookie, paths).await {
        assert_eq!(r.status, StatusCode::OK);
    }
    let f = fields(&store.record(&id).await.unwrap());
    let kept: Vec<usize> = (0..100)
        .filter(|i| f.contains_key(&format!("k{i}")))
        .collect();
    assert_eq!(
        f.get("user"),
        Some(&json!(true)),
        "the login was lost: {f:?}"
    );
    assert_eq!(
        kept.len(),
        1,
        "resave(true) kept {kept:?} of 100 parallel changes"
    );
}

/// A logout that lands while another request of the session is running is not undone when
/// that request commits (express would write the whole session back).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_parallel_request_does_not_undo_a_logout() {
    let (addr, store) = server(false).await;
    let (id, cookie) = login(addr).await;
    store.take_calls();
    store.hold_writes();
    let late = {
        let c = cookie.clone();
        tokio::spawn(async move { get_with(addr, "/set/late", Some(&c)).await })
    };
    // The request has loaded the session and waits at its write.
    let write = format!("apply:{id}");
    store
        .wait_for_calls("the late request at its write", |c| c.contains(&write))
        .await;
    // The logout, done by another request of the same session, is finished first.
    store.remove(&id).await;
    store.release_writes();
    let r = late.await.unwrap();
    assert_eq!(r.status, StatusCode::OK);
    assert!(
        r.set_cookies.is_empty(),
        "no cookie for an ended session: {r:?}"
    );
    assert!(store.record(&id).await.is_none(), "the session came back");
}
