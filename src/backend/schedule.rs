//! When to probe and when to come back: the rule that keeps a reconcile triggered by an
//! unrelated watch event from probing or writing again.
//!
//! The rule: a reconcile probes when
//! - the inputs changed (spec generation differs from `status.observedGeneration`, or a
//!   referenced Secret's resourceVersion differs from the last probe this process made), or
//! - the backend was never validated, or
//! - periodic validation is on (`interval > 0`) and the last validation is at least
//!   `interval × (1 − jitter)` old (the earliest a jittered requeue fires).
//!
//! "The last validation" is the later of `status.lastValidationTime` and this process's own
//! record of its last probe (the reflector may hand us an object older than our own last write).
//! Otherwise it only refreshes counts and conflicts, which writes nothing when nothing changed.
//! After a restart there is no in-process record: the current Secret versions are adopted as the
//! baseline without a probe (a Secret changed while the operator was down is then noticed at the
//! next interval, which also keeps a restart from probing every backend at once).
//!
//! Requeue: `interval × (1 ± 10%)` after the last validation; with `interval: 0` never (a
//! spec or Secret change triggers the next probe through the watches).
//!
//! Owns: those two pure functions. Must not: read the clock or draw randomness (both are inputs).

use std::time::Duration;

use k8s_openapi::jiff::{SignedDuration, Timestamp};

/// The fraction by which requeues are spread (±10%), so backends never all probe at once.
pub const JITTER: f64 = 0.1;

/// What [`probe_due`] looks at.
#[derive(Clone, Copy, Debug)]
pub struct Due {
    /// The generation changed since the status was written, or a Secret changed since our last
    /// probe.
    pub inputs_changed: bool,
    /// The later of `status.lastValidationTime` and our own last probe; `None` = never.
    pub last_validation: Option<Timestamp>,
    /// `validation.interval`; zero disables periodic probes.
    pub interval: Duration,
    pub now: Timestamp,
}

/// Whether this reconcile must probe.
pub fn probe_due(d: &Due) -> bool {
    if d.inputs_changed {
        return true;
    }
    let Some(last) = d.last_validation else {
        return true;
    };
    if d.interval.is_zero() {
        return false;
    }
    let earliest = d.interval.mul_f64(1.0 - JITTER);
    elapsed(last, d.now) >= earliest
}

/// How long to wait before the next reconcile: `interval × (1 + jitter)` after the last
/// validation, `jitter` in `[-JITTER, JITTER]`; at least one second; `None` with `interval: 0`.
pub fn requeue_after(
    interval: Duration,
    last_validation: Option<Timestamp>,
    now: Timestamp,
    jitter: f64,
) -> Option<Duration> {
    if interval.is_zero() {
        return None;
    }
    let jitter = jitter.clamp(-JITTER, JITTER);
    let period = interval.mul_f64(1.0 + jitter);
    let waited = last_validation.map(|l| elapsed(l, now)).unwrap_or_default();
    Some(period.saturating_sub(waited).max(Duration::from_secs(1)))
}

fn elapsed(from: Timestamp, to: Timestamp) -> Duration {
    let d: SignedDuration = to.duration_since(from);
    Duration::try_from(d).unwrap_or(Duration::ZERO)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(secs: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + secs).unwrap()
    }

    const FIVE_MIN: Duration = Duration::from_secs(300);

    #[test]
    fn probes_run_when_due_or_when_inputs_changed() {
        let cases = [
            (
                "a backend never validated is probed",
                Due {
                    inputs_changed: false,
                    last_validation: None,
                    interval: FIVE_MIN,
                    now: t(0),
                },
                true,
            ),
            (
                "a changed spec or Secret is probed at once",
                Due {
                    inputs_changed: true,
                    last_validation: Some(t(0)),
                    interval: FIVE_MIN,
                    now: t(1),
                },
                true,
            ),
            (
                "an unrelated event before the interval probes nothing",
                Due {
                    inputs_changed: false,
                    last_validation: Some(t(0)),
                    interval: FIVE_MIN,
                    now: t(60),
                },
                false,
            ),
            (
                "the earliest jittered requeue is already due",
                Due {
                    inputs_changed: false,
                    last_validation: Some(t(0)),
                    interval: FIVE_MIN,
                    now: t(270),
                },
                true,
            ),
            (
                "just before the earliest jittered requeue is not due",
                Due {
                    inputs_changed: false,
                    last_validation: Some(t(0)),
                    interval: FIVE_MIN,
                    now: t(269),
                },
                false,
            ),
            (
                "interval zero never probes periodically",
                Due {
                    inputs_changed: false,
                    last_validation: Some(t(0)),
                    interval: Duration::ZERO,
                    now: t(100_000),
                },
                false,
            ),
            (
                "interval zero still probes a change",
                Due {
                    inputs_changed: true,
                    last_validation: Some(t(0)),
                    interval: Duration::ZERO,
                    now: t(1),
                },
                true,
            ),
            (
                "interval zero still probes a backend never validated",
                Due {
                    inputs_changed: false,
                    last_validation: None,
                    interval: Duration::ZERO,
                    now: t(0),
                },
                true,
            ),
            (
                "a last validation in the future (clock skew) is not due",
                Due {
                    inputs_changed: false,
                    last_validation: Some(t(100)),
                    interval: FIVE_MIN,
                    now: t(0),
                },
                false,
            ),
        ];
        for (name, due, want) in cases {
            assert_eq!(probe_due(&due), want, "{name}");
        }
    }

    #[test]
    fn requeues_spread_around_the_interval() {
        let cases = [
            (
                "right after a probe the full interval is waited",
                requeue_after(FIVE_MIN, Some(t(0)), t(0), 0.0),
                Some(FIVE_MIN),
            ),
            (
                "positive jitter waits longer",
                requeue_after(FIVE_MIN, Some(t(0)), t(0), 0.1),
                Some(Duration::from_secs(330)),
            ),
            (
                "negative jitter waits shorter",
                requeue_after(FIVE_MIN, Some(t(0)), t(0), -0.1),
                Some(Duration::from_secs(270)),
            ),
            (
                "jitter beyond ten percent is clamped",
                requeue_after(FIVE_MIN, Some(t(0)), t(0), 5.0),
                Some(Duration::from_secs(330)),
            ),
            (
                "time already waited is subtracted",
                requeue_after(FIVE_MIN, Some(t(0)), t(100), 0.0),
                Some(Duration::from_secs(200)),
            ),
            (
                "an overdue backend comes back after a second",
                requeue_after(FIVE_MIN, Some(t(0)), t(1000), 0.0),
                Some(Duration::from_secs(1)),
            ),
            (
                "interval zero never requeues",
                requeue_after(Duration::ZERO, Some(t(0)), t(0), 0.0),
                None,
            ),
        ];
        for (name, got, want) in cases {
            assert_eq!(got, want, "{name}");
        }
    }
}
