//! The range every duration, size and count key must lie in.
//!
//! One table of named constants, checked by [`Config::validate`] (so by
//! `check-config` and at the start of `run` and `replay` alike) and written
//! down beside each key in `config/correlator.toml` and in the README. The
//! bounds keep every value far from where arithmetic on it could overflow
//! (365 days is ~3.2e10 ms, an `i64` of milliseconds holds ~2.9e8 years) and
//! refuse values no operator means, such as a 1 ns tick that spins a core.
//!
//! [`Config::validate`]: super::Config::validate

use std::fmt;
use std::time::Duration;

const MS: Duration = Duration::from_millis(1);
const SEC: Duration = Duration::from_secs(1);
const MIN: Duration = Duration::from_secs(60);
const HOUR: Duration = Duration::from_secs(3600);
const DAY: Duration = Duration::from_secs(86_400);

/// An inclusive range of values a key accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range<T> {
    pub min: T,
    pub max: T,
}

impl<T: PartialOrd> Range<T> {
    pub const fn new(min: T, max: T) -> Self {
        Range { min, max }
    }

    pub fn contains(&self, v: &T) -> bool {
        self.min <= *v && *v <= self.max
    }
}

impl fmt::Display for Range<Duration> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}..={}", Exact(self.min), Exact(self.max))
    }
}

impl fmt::Display for Range<usize> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}..={}", self.min, self.max)
    }
}

/// A duration in the largest unit that writes it exactly (`"365d"`,
/// `"90s"`, `"1500ms"`), in the config file's own notation; humantime's
/// formatter would write 365 days as months, days and hours.
pub struct Exact(pub Duration);

impl fmt::Display for Exact {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = self.0;
        if d.is_zero() {
            return f.write_str("0s");
        }
        let nanos = d.as_nanos();
        for (unit, name) in [
            (DAY, "d"),
            (HOUR, "h"),
            (MIN, "m"),
            (SEC, "s"),
            (MS, "ms"),
            (Duration::from_micros(1), "us"),
        ] {
            let u = unit.as_nanos();
            if nanos.is_multiple_of(u) {
                return write!(f, "{}{name}", nanos / u);
            }
        }
        write!(f, "{nanos}ns")
    }
}

// Durations.

/// `kafka.batch_linger`: 0 closes a batch as soon as nothing more is in hand;
/// over a second, every live alert would wait that long to be applied.
pub const BATCH_LINGER: Range<Duration> = Range::new(Duration::ZERO, SEC);
/// `kafka.tick_interval`: timers are at most this late with no traffic;
/// under 10 ms the idle daemon spends its CPU ticking.
pub const TICK_INTERVAL: Range<Duration> = Range::new(Duration::from_millis(10), MIN);
/// `kafka.session_timeout`: librdkafka's own range for
/// `session.timeout.ms` (the broker narrows it further with its
/// `group.min/max.session.timeout.ms`, 6 s..30 min by default).
pub const SESSION_TIMEOUT: Range<Duration> = Range::new(SEC, HOUR);
/// A window or timeout that must be positive: `dedup.resolve_timeout`,
/// `dedup.webhook_resolve_timeout`, `dedup.flap_window`, `topology.window`,
/// `problems.lookback`.
pub const WINDOW: Range<Duration> = Range::new(SEC, Duration::from_secs(365 * 86_400));
/// A window where 0 has a meaning: reopen windows (0 = never reopen),
/// `rules[].window` (0 with `min_alerts = 1`: no counting),
/// `problems.reject_suppression` (0 = a rejection does not suppress) and
/// `dedup.pagerduty_resolve_timeout` (0 = a trigger waits for its resolve).
pub const WINDOW_OR_ZERO: Range<Duration> =
    Range::new(Duration::ZERO, Duration::from_secs(365 * 86_400));
/// `http.header_timeout`: the longest wait for a request's headers.
pub const HEADER_TIMEOUT: Range<Duration> =
    Range::new(Duration::from_millis(100), Duration::from_secs(300));
/// `http.body_timeout`: the longest wait for a mutating request's body.
pub const BODY_TIMEOUT: Range<Duration> =
    Range::new(Duration::from_millis(100), Duration::from_secs(600));
/// `retention.closed_incidents` and `retention.resolved_problems`: at least
/// an hour (an audit trail needs the incidents of the day); at most ten
/// years, which keeps everything an operator could want.
pub const RETENTION: Range<Duration> = Range::new(HOUR, Duration::from_secs(3650 * 86_400));

// Sizes.

/// `kafka.batch_max`, records per store transaction.
pub const BATCH_MAX: Range<usize> = Range::new(1, 100_000);
/// `store.cache_mib`, redb's page cache in MiB.
pub const CACHE_MIB: Range<usize> = Range::new(1, 65_536);
/// `http.max_body_bytes` and `limits.max_record_bytes`: 1 KiB..64 MiB.
pub const BODY_BYTES: Range<usize> = Range::new(1024, 64 << 20);
/// `http.max_connections`, connections served at once.
pub const CONNECTIONS: Range<usize> = Range::new(1, 65_536);
/// `limits.max_alerts_per_record`.
pub const ALERTS_PER_RECORD: Range<usize> = Range::new(1, 100_000);
/// `limits.max_labels`, labels on one alert.
pub const LABELS: Range<usize> = Range::new(1, 1024);
/// `limits.max_label_name_bytes`.
pub const LABEL_NAME_BYTES: Range<usize> = Range::new(1, 4096);
/// `limits.max_label_value_bytes` and `limits.max_annotation_bytes`: 1 MiB.
pub const TEXT_BYTES: Range<usize> = Range::new(1, 1 << 20);

// Counts (their lower bounds are semantic and have their own messages).

/// `dedup.flap_threshold`, state changes within `flap_window`.
pub const FLAP_THRESHOLD: Range<usize> = Range::new(2, 1000);
/// `rules[].min_alerts`, distinct alerts before an incident opens.
pub const MIN_ALERTS: Range<usize> = Range::new(1, 100_000);
/// `retention.miner_snapshot_lines`: lines re-fed to the miner at most at a
/// start; each snapshot rewrites the miner's whole state (about 1 MiB).
pub const MINER_SNAPSHOT_LINES: Range<usize> = Range::new(100, 1_000_000);
/// `problems.min_incidents`, incidents before a problem candidate opens.
pub const MIN_INCIDENTS: Range<usize> = Range::new(2, 100_000);
/// `problems.similarity`: above 0 (0 would match anything to anything).
pub const PROBLEM_SIMILARITY: (f64, f64) = (0.05, 1.0);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_print_in_their_largest_exact_unit() {
        for (d, want) in [
            (Duration::ZERO, "0s"),
            (Duration::from_nanos(1), "1ns"),
            (Duration::from_micros(3), "3us"),
            (Duration::from_millis(10), "10ms"),
            (Duration::from_millis(1500), "1500ms"),
            (Duration::from_secs(90), "90s"),
            (MIN, "1m"),
            (HOUR, "1h"),
            (DAY * 365, "365d"),
        ] {
            assert_eq!(Exact(d).to_string(), want, "{d:?}");
        }
        assert_eq!(TICK_INTERVAL.to_string(), "10ms..=1m");
        assert_eq!(WINDOW.to_string(), "1s..=365d");
        assert_eq!(BODY_BYTES.to_string(), "1024..=67108864");
    }

    #[test]
    fn ranges_are_inclusive() {
        assert!(TICK_INTERVAL.contains(&Duration::from_millis(10)));
        assert!(TICK_INTERVAL.contains(&MIN));
        assert!(!TICK_INTERVAL.contains(&Duration::from_nanos(1)));
        assert!(!TICK_INTERVAL.contains(&(MIN + Duration::from_nanos(1))));
    }
}
