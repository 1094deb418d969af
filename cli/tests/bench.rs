//! `sessile bench`: the binary measures stores and prints a table, JSON and a chart.

mod common;

use common::{assert_status, sessile, stdout};

/// The options of a short run: a fifth of a second per store and workload, few sessions.
const SHORT: [&str; 4] = ["--duration", "0.2", "--sessions", "500"];

fn bench(extra: &[&str]) -> std::process::Output {
    let mut args = vec!["bench"];
    args.extend_from_slice(&SHORT);
    args.extend_from_slice(extra);
    sessile(&args)
}

fn json_of(o: &std::process::Output) -> serde_json::Value {
    serde_json::from_str(stdout(o).trim()).expect("one JSON object")
}

#[test]
fn json_has_a_result_per_store_and_workload() {
    let o = bench(&[
        "--json",
        "--store",
        "memory",
        "--store",
        "ts-memory",
        "--workload",
        "read-heavy",
        "--workload",
        "churn",
        "--payload",
        "300",
    ]);
    assert_status(&o, 0);
    let v = json_of(&o);
    assert_eq!(v["payload_bytes"], 300);
    assert_eq!(v["threads"], 1);
    assert_eq!(v["sessions"], 500);
    let results = v["results"].as_array().expect("results");
    let pairs: Vec<(&str, &str)> = results
        .iter()
        .map(|r| {
            (
                r["store"].as_str().unwrap(),
                r["workload"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        pairs,
        [
            ("memory", "read-heavy"),
            ("memory", "churn"),
            ("ts-memory", "read-heavy"),
            ("ts-memory", "churn")
        ]
    );
    for r in results {
        assert!(r["ops"].as_u64().unwrap() > 0, "{r}");
        assert!(r["ops_per_sec"].as_f64().unwrap() > 0.0, "{r}");
        assert_eq!(
            (r["errors"].as_u64(), r["misses"].as_u64()),
            (Some(0), Some(0)),
            "{r}"
        );
        let (p50, p99, p999) = (
            r["p50_ns"].as_u64().unwrap(),
            r["p99_ns"].as_u64().unwrap(),
            r["p999_ns"].as_u64().unwrap(),
        );
        assert!(0 < p50 && p50 <= p99 && p99 <= p999, "{r}");
        // In-process stores on Linux have a memory figure.
        assert_eq!(
            r["bytes_per_session"].is_u64(),
            cfg!(target_os = "linux"),
            "{r}"
        );
    }
}

#[test]
fn the_table_has_a_row_per_store_and_workload() {
    let o = bench(&[
        "--store",
        "memory",
        "--store",
        "durable:everysec",
        "--workload",
        "touch-only",
        "--workload",
        "new-visitor-flood",
        "--threads",
        "2",
    ]);
    assert_status(&o, 0);
    let out = stdout(&o);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 6, "{out}");
    let header: Vec<&str> = lines[0].split('|').map(str::trim).collect();
    assert_eq!(
        header,
        [
            "",
            "store",
            "workload",
            "ops/s",
            "p50",
            "p99",
            "p99.9",
            "bytes/session",
            ""
        ]
    );
    assert!(lines[1].starts_with("| ---"));
    let rows: Vec<Vec<&str>> = lines[2..]
        .iter()
        .map(|l| l.split('|').map(str::trim).collect())
        .collect();
    let names: Vec<(&str, &str)> = rows.iter().map(|r| (r[1], r[2])).collect();
    assert_eq!(
        names,
        [
            ("memory", "touch-only"),
            ("memory", "new-visitor-flood"),
            ("durable:everysec", "touch-only"),
            ("durable:everysec", "new-visitor-flood")
        ]
    );
    for r in &rows {
        assert!(
            r[4].ends_with("ns") || r[4].ends_with("µs") || r[4].ends_with("ms"),
            "{r:?}"
        );
    }
}

#[test]
fn workers_as_threads_and_a_chart() {
    let dir = std::env::temp_dir().join(format!("sessile-bench-chart-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let svg = dir.join("chart.svg");
    let o = bench(&[
        "--json",
        "--store",
        "memory",
        "--store",
        "durable:always",
        "--workload",
        "write-heavy",
        "--threads",
        "2",
        "--workers-as",
        "threads",
        "--chart",
        svg.to_str().unwrap(),
    ]);
    assert_status(&o, 0);
    assert_eq!(json_of(&o)["workers_as"], "threads");
    let text = std::fs::read_to_string(&svg).expect("the chart");
    assert!(text.starts_with("<svg"));
    for label in [
        "Throughput",
        "p99 latency",
        "memory",
        "durable:always",
        "write-heavy",
    ] {
        assert!(text.contains(label), "{label} missing from the chart");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn unknown_stores_and_workloads_are_refused() {
    let o = bench(&["--store", "mongo"]);
    assert_status(&o, 2);
    let o = bench(&["--workload", "reads"]);
    assert_status(&o, 2);
}

#[test]
fn redis_when_redis_url_is_set() {
    let Ok(url) = std::env::var("REDIS_URL") else {
        eprintln!("skipped: REDIS_URL is not set");
        return;
    };
    let o = bench(&["--json", "--store", &url, "--workload", "write-heavy"]);
    assert_status(&o, 0);
    let v = json_of(&o);
    let r = &v["results"][0];
    assert!(r["ops"].as_u64().unwrap() > 0, "{r}");
    assert_eq!(r["errors"], 0, "{r}");
    // The data lives in another process: no memory figure.
    assert!(r["bytes_per_session"].is_null(), "{r}");
    // What the run wrote is cleared.
    let client = redis::Client::open(url.as_str()).unwrap();
    let mut conn = client.get_connection().unwrap();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("sessile-bench:*")
        .query(&mut conn)
        .unwrap();
    assert!(keys.is_empty(), "{keys:?}");
}
