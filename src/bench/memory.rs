//! The process's resident memory, for the memory a store takes per session.

/// The resident set size of this process in bytes, from `/proc/self/status` (`VmRSS`, which
/// the kernel gives in KiB, so no page size is needed); `None` where there is no such file
/// (not Linux) or it cannot be read.
pub(super) fn resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    parse_vm_rss(&status)
}

/// `VmRSS` of a `/proc/<pid>/status` text, in bytes.
fn parse_vm_rss(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line
        .trim_start_matches("VmRSS:")
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    kib.checked_mul(1024)
}

/// Bytes per session from the resident size before and after storing `sessions` sessions;
/// `None` without both figures or sessions.
pub(super) fn per_session(before: Option<u64>, after: Option<u64>, sessions: u64) -> Option<u64> {
    match (before, after) {
        (Some(b), Some(a)) if sessions > 0 => Some(a.saturating_sub(b) / sessions),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vm_rss_is_read_in_bytes() {
        let status = "Name:\tx\nVmHWM:\t  9999 kB\nVmRSS:\t    2048 kB\nThreads:\t1\n";
        assert_eq!(parse_vm_rss(status), Some(2048 * 1024));
        assert_eq!(parse_vm_rss("Name:\tx\n"), None);
        assert_eq!(parse_vm_rss("VmRSS:\tlots kB\n"), None);
    }

    #[test]
    fn per_session_divides_the_growth_and_never_goes_negative() {
        assert_eq!(per_session(Some(1000), Some(3000), 10), Some(200));
        assert_eq!(per_session(Some(3000), Some(1000), 10), Some(0));
        assert_eq!(per_session(None, Some(1000), 10), None);
        assert_eq!(per_session(Some(0), Some(1000), 0), None);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn this_process_has_a_resident_size_on_linux() {
        assert!(resident_bytes().is_some_and(|b| b > 0));
    }
}
