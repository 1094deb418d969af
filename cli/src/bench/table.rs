//! The table `sessile bench` prints: a Markdown table, readable in a terminal and pasted
//! as it is into a README.

use super::Cell;

/// The table's header.
pub(crate) const HEADER: [&str; 7] = [
    "store",
    "workload",
    "ops/s",
    "p50",
    "p99",
    "p99.9",
    "bytes/session",
];

/// The lines of the table of `cells`, and a line under it for every row with failed calls.
pub(crate) fn render(cells: &[Cell]) -> Vec<String> {
    let rows: Vec<[String; 7]> = cells
        .iter()
        .map(|c| {
            [
                c.store.clone(),
                c.workload.clone(),
                rate(c.ops_per_sec),
                latency(c.p50_ns),
                latency(c.p99_ns),
                latency(c.p999_ns),
                c.bytes_per_session
                    .map_or_else(|| "-".to_owned(), |b| b.to_string()),
            ]
        })
        .collect();
    let mut width = HEADER.map(str::len);
    for row in &rows {
        for (w, cell) in width.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: &[String; 7]| {
        let mut s = String::from("|");
        for (k, (cell, w)) in cells.iter().zip(width).enumerate() {
            // Text columns to the left, numbers to the right.
            if k < 2 {
                s.push_str(&format!(" {cell:<w$} |"));
            } else {
                s.push_str(&format!(" {cell:>w$} |"));
            }
        }
        s
    };
    let mut out = vec![line(&HEADER.map(str::to_owned))];
    let mut rule = String::from("|");
    for (k, w) in width.iter().enumerate() {
        let dashes = "-".repeat(*w);
        rule.push_str(&if k < 2 {
            format!(" {dashes} |")
        } else {
            format!(" {}: |", &dashes[1..])
        });
    }
    out.push(rule);
    out.extend(rows.iter().map(line));
    for c in cells.iter().filter(|c| c.errors > 0 || c.misses > 0) {
        out.push(format!(
            "{} {}: {} of {} calls failed, {} gets missed{}",
            c.store,
            c.workload,
            c.errors,
            c.ops,
            c.misses,
            c.first_error
                .as_deref()
                .map_or_else(String::new, |e| format!(" (first: {e})"))
        ));
    }
    out
}

/// Calls per second for people: `657 k`, `1.29 M`.
pub(crate) fn rate(per_sec: f64) -> String {
    if per_sec >= 1e6 {
        format!("{:.2} M", per_sec / 1e6)
    } else if per_sec >= 1e3 {
        format!("{:.0} k", per_sec / 1e3)
    } else {
        format!("{per_sec:.0}")
    }
}

/// A latency for people: `850 ns`, `1.2 µs`, `3.4 ms`.
pub(crate) fn latency(ns: u64) -> String {
    let ns = ns as f64;
    if ns < 1e3 {
        format!("{ns:.0} ns")
    } else if ns < 1e6 {
        format!("{:.1} µs", ns / 1e3)
    } else if ns < 1e9 {
        format!("{:.1} ms", ns / 1e6)
    } else {
        format!("{:.2} s", ns / 1e9)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_and_latencies_read_well() {
        assert_eq!(rate(657_123.0), "657 k");
        assert_eq!(rate(1_290_000.0), "1.29 M");
        assert_eq!(rate(12.4), "12");
        assert_eq!(latency(850), "850 ns");
        assert_eq!(latency(1_234), "1.2 µs");
        assert_eq!(latency(3_400_000), "3.4 ms");
        assert_eq!(latency(2_500_000_000), "2.50 s");
    }

    #[test]
    fn the_table_aligns_its_columns_and_notes_failures() {
        let cell = |store: &str, errors| Cell {
            store: store.into(),
            workload: "read-heavy".into(),
            threads: 1,
            payload_bytes: 197,
            sessions: 10,
            ops: 100,
            elapsed_s: 1.0,
            ops_per_sec: 100.0,
            p50_ns: 1_000,
            p99_ns: 2_000,
            p999_ns: 3_000,
            max_ns: 4_000,
            errors,
            misses: 0,
            bytes_per_session: None,
            first_error: (errors > 0).then(|| "down".to_owned()),
        };
        let lines = render(&[cell("memory", 0), cell("redis://h/", 3)]);
        assert_eq!(lines.len(), 5);
        let widths: Vec<usize> = lines[..4].iter().map(|l| l.chars().count()).collect();
        assert!(widths.iter().all(|w| *w == widths[0]), "{lines:#?}");
        assert!(lines[0].starts_with("| store "));
        assert!(lines[1].starts_with("| -----"));
        assert!(lines[3].contains("| redis://h/ "));
        assert_eq!(
            lines[4],
            "redis://h/ read-heavy: 3 of 100 calls failed, 0 gets missed (first: down)"
        );
    }
}
