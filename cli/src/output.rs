//! How results are shown: sizes and times for people, JSON for scripts, progress on stderr.

use std::io::Write as _;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// `println!`, except that a closed stdout (`sessile export DIR | head`) ends the process
/// quietly instead of panicking: see [`line`].
macro_rules! say {
    ($($arg:tt)*) => {
        $crate::output::line(format_args!($($arg)*))
    };
}
pub(crate) use say;

/// Writes one line on stdout. When stdout is closed the process exits at once, with status 0
/// (the reader had what it wanted); any other write error exits with status 2. Commands drop
/// their store before printing, so the exit skips no store's shutdown.
pub(crate) fn line(args: std::fmt::Arguments<'_>) {
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_fmt(args).and_then(|()| out.write_all(b"\n")) {
        stdout_failed(&e);
    }
}

/// Ends the process after stdout failed with `e` (see [`line`]).
pub(crate) fn stdout_failed(e: &std::io::Error) -> ! {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        std::process::exit(0);
    }
    eprintln!("sessile: stdout: {e}");
    std::process::exit(2);
}

/// Prints a JSON value on stdout, on one line.
pub(crate) fn print_json(v: &serde_json::Value) {
    say!("{v}");
}

/// `bytes` for people: `512 B`, `12.3 KiB`, `16.0 MiB`.
pub(crate) fn size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut v = bytes as f64 / 1024.0;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    format!("{v:.1} {}", UNITS[unit])
}

/// Milliseconds since the Unix epoch as ISO 8601 (UTC), as express writes `expires`.
pub(crate) fn time_of(ms: i64) -> String {
    sessile::clock::to_iso(ms)
}

/// A progress bar on stderr over `total` units (`bytes` or items; `None`: not known yet),
/// drawn only on a terminal and never with `--json`.
pub(crate) fn bar(total: Option<u64>, bytes: bool, json: bool) -> ProgressBar {
    let target = if json {
        ProgressDrawTarget::hidden()
    } else {
        ProgressDrawTarget::stderr()
    };
    let template = if bytes {
        "{msg} [{bar:30}] {bytes}/{total_bytes} ({eta})"
    } else {
        "{msg} [{bar:30}] {pos}/{len} ({eta})"
    };
    let style = ProgressStyle::with_template(template)
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
    ProgressBar::with_draw_target(total, target).with_style(style)
}

/// A spinner on stderr saying `msg`, for work without a known length (same rules as
/// [`bar`]).
pub(crate) fn spinner(msg: &'static str, json: bool) -> ProgressBar {
    let target = if json {
        ProgressDrawTarget::hidden()
    } else {
        ProgressDrawTarget::stderr()
    };
    let pb = ProgressBar::with_draw_target(None, target).with_message(msg);
    pb.enable_steady_tick(Duration::from_millis(100));
    pb
}
