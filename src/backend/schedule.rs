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
//! Owns: those pure functions, what this process remembers of its last probe of each backend
//! ([`ProbeMemory`]), and how that memory and the status combine into a [`Baseline`]. Must not:
//! read the clock or draw randomness (both are inputs).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use k8s_openapi::jiff::{SignedDuration, Timestamp};

use crate::resolve::Inputs;

/// The fraction by which requeues are spread (±10%), so backends never all probe at once.
pub const JITTER: f64 = 0.1;
/// The longest a reconcile is put off: a backend validated yearly is still looked at daily (a
/// no-op when nothing is due), and no requeue can overflow a timer.
pub const MAX_REQUEUE: Duration = Duration::from_secs(24 * 3600);
/// The longest validation interval the operator applies, whatever the spec says (the schema
/// enforces it too; the code does not rely on it).
pub const MAX_INTERVAL: Duration = Duration::from_secs(8760 * 3600);
/// The default floor of validation intervals (`castellan run --min-validation-interval`): a
/// tenant asking for `1s` gets a probe and a status write every ten seconds, not every second.
pub const DEFAULT_MIN_INTERVAL: Duration = Duration::from_secs(10);

/// The interval the operator applies: zero (off) stays zero, anything else is brought within
/// `floor..=MAX_INTERVAL`.
pub fn effective_interval(spec: Duration, floor: Duration) -> Duration {
    if spec.is_zero() {
        Duration::ZERO
    } else {
        spec.clamp(floor.min(MAX_INTERVAL), MAX_INTERVAL)
    }
}

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

/// This process's memory of its last probe of one backend: with which inputs, and when.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LastProbe {
    pub inputs: Inputs,
    pub at: Timestamp,
}

/// The last probe of every backend this process validated, by backend uid.
#[derive(Debug, Default)]
pub struct ProbeMemory(Mutex<HashMap<String, LastProbe>>);

impl ProbeMemory {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, LastProbe>> {
        // Single inserts and removes cannot leave the map inconsistent: a poisoned lock is usable.
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn get(&self, uid: &str) -> Option<LastProbe> {
        self.lock().get(uid).cloned()
    }

    pub fn record(&self, probe: LastProbe) {
        self.lock().insert(probe.inputs.uid.clone(), probe);
    }

    /// Drops what is kept for a deleted backend.
    pub fn forget(&self, uid: &str) {
        self.lock().remove(uid);
    }
}

/// What a reconcile knows about the last validation before it decides whether to probe.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Baseline {
    /// The inputs changed since the last validation.
    pub inputs_changed: bool,
    /// The later of the status' `lastValidationTime` and our own last probe with these inputs.
    pub last_validation: Option<Timestamp>,
}

/// Combines this process's memory with the status. Our own memory knows the generation and the
/// Secret versions (and is never older than our last write); after a restart only the generation
/// can be compared, against `status.observedGeneration`.
pub fn baseline(
    own: Option<&LastProbe>,
    inputs: &Inputs,
    status_generation: Option<i64>,
    status_time: Option<Timestamp>,
) -> Baseline {
    let inputs_changed = match own {
        Some(p) => p.inputs != *inputs,
        None => status_generation != inputs.generation,
    };
    let own_time = own.filter(|p| p.inputs == *inputs).map(|p| p.at);
    Baseline {
        inputs_changed,
        last_validation: status_time.max(own_time),
    }
}

/// What to remember after a reconcile whose status write succeeded: the probe it made, or, after
/// a restart (no memory yet), what it saw as the baseline — so that a Secret changed while the
/// operator was down is noticed at the next interval instead of every backend being probed at
/// once. `None`: keep the memory as it is.
pub fn remember_after(
    probed_at: Option<Timestamp>,
    own: Option<&LastProbe>,
    inputs: &Inputs,
    baseline: &Baseline,
) -> Option<LastProbe> {
    let at = match (probed_at, own) {
        (Some(at), _) => at,
        (None, None) => baseline.last_validation?,
        (None, Some(_)) => return None,
    };
    Some(LastProbe {
        inputs: inputs.clone(),
        at,
    })
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
    let earliest = d.interval.min(MAX_INTERVAL).mul_f64(1.0 - JITTER);
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
    let interval = interval.min(MAX_INTERVAL);
    if interval.is_zero() {
        return None;
    }
    // NaN jitter (never drawn, but an input) counts as none.
    let jitter = if jitter.is_nan() {
        0.0
    } else {
        jitter.clamp(-JITTER, JITTER)
    };
    // Bounded: at most 1.1 × a year, far from overflowing.
    let period = interval.mul_f64(1.0 + jitter);
    let waited = last_validation.map(|l| elapsed(l, now)).unwrap_or_default();
    Some(
        period
            .saturating_sub(waited)
            .clamp(Duration::from_secs(1), MAX_REQUEUE),
    )
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

    fn inputs(generation: i64, secret_version: &str) -> Inputs {
        Inputs {
            uid: "uid-1".into(),
            generation: Some(generation),
            secrets: vec![("creds".into(), Some(secret_version.into()))],
        }
    }

    #[test]
    fn the_baseline_prefers_our_own_memory_and_falls_back_to_the_status() {
        let now = inputs(2, "v1");
        let cases = [
            (
                "after a restart a matching generation is unchanged, with the status time",
                None,
                Some(2),
                Some(t(10)),
                Baseline {
                    inputs_changed: false,
                    last_validation: Some(t(10)),
                },
            ),
            (
                "after a restart a new generation is a change",
                None,
                Some(1),
                Some(t(10)),
                Baseline {
                    inputs_changed: true,
                    last_validation: Some(t(10)),
                },
            ),
            (
                "our own probe with the same inputs is newer than a stale status",
                Some(LastProbe {
                    inputs: inputs(2, "v1"),
                    at: t(50),
                }),
                Some(2),
                Some(t(10)),
                Baseline {
                    inputs_changed: false,
                    last_validation: Some(t(50)),
                },
            ),
            (
                "a rotated Secret is a change our memory sees and the status cannot",
                Some(LastProbe {
                    inputs: inputs(2, "v0"),
                    at: t(50),
                }),
                Some(2),
                Some(t(10)),
                Baseline {
                    inputs_changed: true,
                    last_validation: Some(t(10)),
                },
            ),
            (
                "a backend never validated has no last validation",
                None,
                None,
                None,
                Baseline {
                    inputs_changed: true,
                    last_validation: None,
                },
            ),
        ];
        for (name, own, status_generation, status_time, want) in cases {
            assert_eq!(
                baseline(own.as_ref(), &now, status_generation, status_time),
                want,
                "{name}"
            );
        }
    }

    #[test]
    fn the_memory_records_probes_and_adopts_a_baseline_once_after_a_restart() {
        let now = inputs(2, "v1");
        let seen = Baseline {
            inputs_changed: false,
            last_validation: Some(t(10)),
        };
        let mine = LastProbe {
            inputs: inputs(2, "v0"),
            at: t(5),
        };
        let cases = [
            (
                "a probe is remembered with its inputs and time",
                Some(t(60)),
                Some(mine.clone()),
                Some(LastProbe {
                    inputs: now.clone(),
                    at: t(60),
                }),
            ),
            (
                "after a restart without a probe the status time is adopted",
                None,
                None,
                Some(LastProbe {
                    inputs: now.clone(),
                    at: t(10),
                }),
            ),
            (
                "with a memory and no probe nothing changes",
                None,
                Some(mine),
                None,
            ),
        ];
        for (name, probed_at, own, want) in cases {
            assert_eq!(
                remember_after(probed_at, own.as_ref(), &now, &seen),
                want,
                "{name}"
            );
        }
        let never = Baseline {
            inputs_changed: true,
            last_validation: None,
        };
        assert_eq!(
            remember_after(None, None, &now, &never),
            None,
            "nothing to adopt from a backend never validated"
        );
    }

    #[test]
    fn extreme_intervals_are_brought_within_bounds_and_never_overflow() {
        let floor = DEFAULT_MIN_INTERVAL;
        let cases = [
            ("zero stays off", Duration::ZERO, Duration::ZERO),
            (
                "a nanosecond is raised to the floor",
                Duration::from_nanos(1),
                floor,
            ),
            (
                "an hour is kept",
                Duration::from_secs(3600),
                Duration::from_secs(3600),
            ),
            (
                "the largest duration is cut to a year",
                Duration::MAX,
                MAX_INTERVAL,
            ),
        ];
        for (name, spec, want) in cases {
            assert_eq!(effective_interval(spec, floor), want, "{name}");
        }
        assert_eq!(
            effective_interval(Duration::from_secs(1), Duration::MAX),
            MAX_INTERVAL,
            "a floor above the ceiling is the ceiling"
        );
        let now = t(0);
        for interval in [
            Duration::MAX,
            Duration::from_secs(u64::MAX / 2),
            Duration::from_nanos(1),
        ] {
            for jitter in [-1.0, 0.0, 0.1, 5.0, f64::NAN] {
                let after = requeue_after(interval, Some(now), now, jitter).unwrap();
                assert!(
                    after >= Duration::from_secs(1) && after <= MAX_REQUEUE,
                    "{interval:?} {jitter}: {after:?}"
                );
            }
            let _ = probe_due(&Due {
                inputs_changed: false,
                last_validation: Some(t(-1_000_000_000)),
                interval,
                now,
            });
        }
        let floored = effective_interval(Duration::from_nanos(1), floor);
        assert_eq!(
            requeue_after(floored, Some(now), now, 0.0),
            Some(floor),
            "a nanosecond interval probes every ten seconds, not every second"
        );
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
