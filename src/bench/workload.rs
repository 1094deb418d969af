//! What a benchmark run does: the workloads, the workers, and when it stops.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// The mix of store calls a run makes.
///
/// ```
/// use sessile::bench::Workload;
///
/// let w: Workload = "read-heavy".parse()?;
/// assert_eq!(w, Workload::ReadHeavy);
/// assert_eq!(w.to_string(), "read-heavy");
/// assert_eq!(Workload::ALL.len(), 5);
/// # Ok::<(), sessile::bench::BenchError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Workload {
    /// 90 % `get` of a preloaded session, 9 % update (`set` of a fresh record over a
    /// preloaded session), 1 % `create` of a new session.
    ReadHeavy,
    /// 50 % `get`, 50 % update, of preloaded sessions.
    WriteHeavy,
    /// 100 % `touch` of preloaded sessions with a new expiry (a rolling site).
    TouchOnly,
    /// `create` of a new session, then its `destroy`, over and over.
    Churn,
    /// 100 % `create` of new sessions (visitors without a cookie, each saved).
    NewVisitorFlood,
}

impl Workload {
    /// Every workload, in the order the tables show them.
    ///
    /// ```
    /// use sessile::bench::Workload;
    ///
    /// assert_eq!(Workload::ALL[0], Workload::ReadHeavy);
    /// ```
    pub const ALL: [Workload; 5] = [
        Workload::ReadHeavy,
        Workload::WriteHeavy,
        Workload::TouchOnly,
        Workload::Churn,
        Workload::NewVisitorFlood,
    ];

    /// The workload's name on a command line and in reports (`read-heavy`, …).
    ///
    /// ```
    /// assert_eq!(sessile::bench::Workload::NewVisitorFlood.name(), "new-visitor-flood");
    /// ```
    pub fn name(self) -> &'static str {
        match self {
            Workload::ReadHeavy => "read-heavy",
            Workload::WriteHeavy => "write-heavy",
            Workload::TouchOnly => "touch-only",
            Workload::Churn => "churn",
            Workload::NewVisitorFlood => "new-visitor-flood",
        }
    }

    /// The mix, in words.
    ///
    /// ```
    /// assert!(sessile::bench::Workload::ReadHeavy.describe().starts_with("90 % get"));
    /// ```
    pub fn describe(self) -> &'static str {
        match self {
            Workload::ReadHeavy => "90 % get, 9 % update, 1 % create",
            Workload::WriteHeavy => "50 % get, 50 % update",
            Workload::TouchOnly => "100 % touch",
            Workload::Churn => "create then destroy",
            Workload::NewVisitorFlood => "100 % create",
        }
    }

    /// Whether the workload reads or writes preloaded sessions (and so needs some).
    ///
    /// ```
    /// use sessile::bench::Workload;
    ///
    /// assert!(Workload::TouchOnly.needs_sessions());
    /// assert!(!Workload::Churn.needs_sessions());
    /// ```
    pub fn needs_sessions(self) -> bool {
        matches!(
            self,
            Workload::ReadHeavy | Workload::WriteHeavy | Workload::TouchOnly
        )
    }
}

impl fmt::Display for Workload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Workload {
    type Err = super::BenchError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Workload::ALL
            .into_iter()
            .find(|w| w.name() == s || w.name().replace('-', "_") == s)
            .ok_or_else(|| super::BenchError::UnknownWorkload(s.to_owned()))
    }
}

/// How the workers run.
///
/// ```
/// use sessile::bench::Workers;
///
/// assert_eq!(Workers::Tasks(4).count(), 4);
/// assert_eq!(Workers::Threads(0).count(), 1);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workers {
    /// This many tokio tasks, spawned on the runtime that calls [`run`](super::run) (on a
    /// multi-thread runtime they run in parallel; on a current-thread one, interleaved).
    Tasks(usize),
    /// This many OS threads, each with a current-thread tokio runtime of its own running one
    /// worker.
    Threads(usize),
}

impl Workers {
    /// How many workers (at least one).
    ///
    /// ```
    /// assert_eq!(sessile::bench::Workers::Threads(2).count(), 2);
    /// ```
    pub fn count(self) -> usize {
        match self {
            Workers::Tasks(n) | Workers::Threads(n) => n.max(1),
        }
    }
}

/// When a run stops.
///
/// ```
/// use std::time::Duration;
/// use sessile::bench::Limit;
///
/// let by_time = Limit::Duration(Duration::from_secs(3));
/// let by_count = Limit::Ops(100_000);
/// assert_ne!(by_time, by_count);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// Every worker stops at the first call it would start after this long.
    Duration(Duration),
    /// This many calls in all, shared out evenly among the workers.
    Ops(u64),
}
