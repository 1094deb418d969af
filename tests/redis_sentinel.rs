//! `RedisStore::sentinel` (feature `redis-sentinel`) against real `redis-sentinel`
//! processes: a primary, its replica and three sentinels of the test's own on loopback
//! ports. The store finds the primary through the sentinels; when the primary is killed,
//! calls fail with a typed error (`Unavailable` or `Timeout`) until the sentinels have
//! promoted the replica, then every request succeeds again, the session written before the
//! kill included, without restarting the app. Skipped without `redis-server` and
//! `redis-sentinel` unless `CI` is set.

#![cfg(feature = "redis-sentinel")]

mod common;
mod redis_common;

use std::time::{Duration, Instant};

use redis_common::failures_until_recovered;
use redis_common::server::{
    free_port, have_program, have_redis_server, node_conn, Server, TempDir,
};
use sessile::{RedisStore, SessionStore, StoreError};

const SERVICE: &str = "sessile-sessions";

/// Runs `cmd` on the server at `port`.
async fn query<T: redis::FromRedisValue>(port: u16, cmd: &mut redis::Cmd) -> redis::RedisResult<T> {
    let mut conn = node_conn(&format!("redis://127.0.0.1:{port}/")).await?;
    cmd.query_async(&mut conn).await
}

/// The primary's port as sentinel `port` names it.
async fn named_primary(port: u16) -> Option<u16> {
    let addr: Option<(String, u16)> = query(
        port,
        redis::cmd("SENTINEL")
            .arg("get-master-addr-by-name")
            .arg(SERVICE),
    )
    .await
    .ok()?;
    addr.map(|(_, p)| p)
}

/// Waits (up to 60 s) for `cond`, polling; panics naming `what`.
async fn wait_until<F: std::future::Future<Output = bool>>(
    what: &str,
    mut cond: impl FnMut() -> F,
) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !cond().await {
        assert!(Instant::now() < deadline, "{what}: not within 60 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_sentinel_failover_is_survived_without_a_restart() {
    let test = "a_sentinel_failover_is_survived_without_a_restart";
    if !have_redis_server(test) || !have_program(test, "redis-sentinel") {
        return;
    }
    let dir = TempDir::new("sentinel");
    let primary = Server::start(free_port()).expect("redis-server");
    primary.wait_ready().await;
    let replica_args: Vec<String> = vec![
        "--replicaof".into(),
        "127.0.0.1".into(),
        primary.port.to_string(),
    ];
    let replica = Server::start_with(free_port(), &replica_args, Some(&dir.0)).expect("replica");
    replica.wait_ready().await;
    let replica_port = replica.port;
    wait_until("the replica is in sync", || async {
        query::<String>(replica_port, redis::cmd("INFO").arg("replication"))
            .await
            .is_ok_and(|i| i.contains("master_link_status:up"))
    })
    .await;
    let down_after = Duration::from_secs(1);
    let sentinels: Vec<Server> = (0..3)
        .map(|_| {
            Server::start_sentinel(free_port(), primary.port, SERVICE, down_after, &dir.0)
                .expect("redis-sentinel")
        })
        .collect();
    for s in &sentinels {
        s.wait_ready().await;
    }
    // Every sentinel knows the primary, its replica and the two other sentinels.
    for s in &sentinels {
        let port = s.port;
        wait_until(
            "the sentinels know each other and the replica",
            || async move {
                let others: redis::RedisResult<Vec<redis::Value>> =
                    query(port, redis::cmd("SENTINEL").arg("sentinels").arg(SERVICE)).await;
                let replicas: redis::RedisResult<Vec<redis::Value>> =
                    query(port, redis::cmd("SENTINEL").arg("replicas").arg(SERVICE)).await;
                others.is_ok_and(|o| o.len() == 2) && replicas.is_ok_and(|r| r.len() == 1)
            },
        )
        .await;
    }
    let urls: Vec<String> = sentinels.iter().map(Server::url).collect();

    let store = RedisStore::sentinel(urls.clone(), SERVICE)
        .timeout(Duration::from_millis(500))
        .build()
        .await
        .expect("the primary, through the sentinels");
    let addr = common::start(common::builder().store(store.clone()).build().unwrap()).await;
    let (sid, cookie) = common::login(addr).await;
    assert!(
        query::<bool>(primary.port, redis::cmd("EXISTS").arg(store.key(&sid)))
            .await
            .unwrap(),
        "the session is on the primary"
    );
    let acked: i64 = query(primary.port, redis::cmd("WAIT").arg(1).arg(10_000))
        .await
        .unwrap();
    assert_eq!(acked, 1, "the replica has the session");

    let old_primary = primary.port;
    primary.kill();
    let err = store
        .get(&sid)
        .await
        .expect_err("the connection to the dead primary");
    assert!(
        matches!(err, StoreError::Unavailable(_) | StoreError::Timeout(_)),
        "{err:?}"
    );
    failures_until_recovered(addr, &cookie).await;
    assert_eq!(named_primary(sentinels[0].port).await, Some(replica_port));
    assert_ne!(replica_port, old_primary);
    let r = common::get_with(addr, "/put/after/failover", Some(&cookie)).await;
    assert_eq!(r.status, 200, "the promoted replica takes writes: {r:?}");
    assert!(
        query::<bool>(replica_port, redis::cmd("EXISTS").arg(store.key(&sid)))
            .await
            .unwrap()
    );
}
