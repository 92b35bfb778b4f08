//! The leader's fence: a replica that holds the leader Lease writes only while the API server
//! still shows its lease valid, with a margin, so that it stops before any other replica can
//! consider the lease expired and take over.
//!
//! Owns: reading the Lease and deciding until when this replica may write. Must not: renew or
//! take the lease (the lease manager does), nor stop controllers itself (the operator does, when
//! [`hold`] returns).
//!
//! Why a fence on top of the lease manager: the manager renews shortly before expiry and, when a
//! renewal fails, retries with backoff without telling its holder, which keeps writing while a
//! standby takes the expired lease over. Kubernetes' own leader election has the same guard
//! (`RenewDeadline` below `LeaseDuration`). Contenders judge expiry as `renewTime +
//! leaseDurationSeconds` on their own clock, as this fence does; replicas on one cluster are
//! assumed to keep their clocks within the margin of each other.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::Api;
use tracing::warn;

/// What the Lease, as last read, says about this replica's right to write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// This replica holds the lease and may write until then.
    HoldUntil(Timestamp),
    /// Another identity holds it, or it names no holder.
    NotHolder,
    /// It names no renew time or duration: nobody can judge its expiry, so nobody may write.
    Unjudgeable,
}

/// How long before the lease's expiry the holder stops writing: a quarter of the renew grace, at
/// least half a second. The renewal (due a grace before expiry) thus has three quarters of the
/// grace to land before the fence trips, and a holder whose renewal does not land stops before a
/// contender's clock says the lease expired.
pub fn margin(renew_grace: Duration) -> Duration {
    (renew_grace / 4).max(Duration::from_millis(500))
}

/// Shortest pause between two reads of the lease as the fence nears.
const MIN_POLL: Duration = Duration::from_millis(50);

/// The fence a lease spec sets for `identity`.
pub fn verdict(spec: Option<&LeaseSpec>, identity: &str, margin: Duration) -> Verdict {
    let Some(spec) = spec else {
        return Verdict::NotHolder;
    };
    if spec.holder_identity.as_deref() != Some(identity) {
        return Verdict::NotHolder;
    }
    let (Some(renewed), Some(seconds)) = (&spec.renew_time, spec.lease_duration_seconds) else {
        return Verdict::Unjudgeable;
    };
    let valid = SignedDuration::from_secs(i64::from(seconds.max(0)));
    let margin = SignedDuration::try_from(margin).unwrap_or(SignedDuration::MAX);
    match renewed
        .0
        .checked_add(valid)
        .and_then(|expiry| expiry.checked_sub(margin))
    {
        Ok(until) => Verdict::HoldUntil(until),
        Err(_) => Verdict::Unjudgeable,
    }
}

/// Why [`hold`] returned: the replica must stop writing now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Lapse {
    /// The lease was not renewed (or could not be read) in time.
    Expired { until: Timestamp },
    /// The lease names another holder.
    TakenOver { holder: Option<String> },
    /// The lease cannot be judged (no renew time or duration).
    Unjudgeable,
}

impl std::fmt::Display for Lapse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Lapse::Expired { until } => {
                write!(
                    f,
                    "the lease was not seen renewed by {until} (its expiry less the margin)"
                )
            }
            Lapse::TakenOver { holder } => write!(
                f,
                "the lease is held by {}",
                holder.as_deref().unwrap_or("nobody")
            ),
            Lapse::Unjudgeable => write!(f, "the lease has no renew time or duration"),
        }
    }
}

/// Reads the Lease every `poll` (and right before the fence would lapse) and returns as soon as
/// this replica may no longer write. A read that fails or hangs extends nothing.
pub async fn hold(
    leases: Api<Lease>,
    name: &str,
    identity: &str,
    margin: Duration,
    poll: Duration,
) -> Lapse {
    // Until the first read, the replica has just been told it acquired the lease: it may write
    // for one poll while that read is in flight, never longer.
    let mut until = now().checked_add(poll).unwrap_or(Timestamp::MAX);
    loop {
        let left = remaining(until);
        if left.is_zero() {
            return Lapse::Expired { until };
        }
        match tokio::time::timeout(left, leases.get(name)).await {
            Ok(Ok(lease)) => match verdict(lease.spec.as_ref(), identity, margin) {
                Verdict::HoldUntil(t) => until = t,
                Verdict::NotHolder => {
                    return Lapse::TakenOver {
                        holder: lease.spec.and_then(|s| s.holder_identity),
                    }
                }
                Verdict::Unjudgeable => return Lapse::Unjudgeable,
            },
            Ok(Err(err)) => warn!(lease = name, error = %err, "reading the leader lease failed"),
            Err(_) => {}
        }
        let left = remaining(until);
        if left.is_zero() {
            return Lapse::Expired { until };
        }
        // Reads come closer together as the fence nears, so that a renewal landing late but in
        // time is still seen.
        tokio::time::sleep(left.min(poll).min(left / 2).max(MIN_POLL)).await;
    }
}

fn now() -> Timestamp {
    Timestamp::now()
}

fn remaining(until: Timestamp) -> Duration {
    Duration::try_from(until.duration_since(now())).unwrap_or(Duration::ZERO)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;

    fn at(secs: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + secs).unwrap()
    }

    fn spec(holder: Option<&str>, renewed: Option<i64>, seconds: Option<i32>) -> LeaseSpec {
        LeaseSpec {
            holder_identity: holder.map(str::to_string),
            renew_time: renewed.map(|s| MicroTime(at(s))),
            lease_duration_seconds: seconds,
            ..LeaseSpec::default()
        }
    }

    #[test]
    fn the_holder_may_write_until_expiry_less_the_margin() {
        let s = spec(Some("me"), Some(0), Some(15));
        assert_eq!(
            verdict(Some(&s), "me", Duration::from_secs(2)),
            Verdict::HoldUntil(at(13))
        );
    }

    #[test]
    fn another_holder_or_no_holder_or_no_lease_means_not_holder() {
        let cases = [
            (
                Some(spec(Some("other"), Some(0), Some(15))),
                "held by another",
            ),
            (Some(spec(None, Some(0), Some(15))), "released"),
            (None, "no spec"),
        ];
        for (s, case) in cases {
            assert_eq!(
                verdict(s.as_ref(), "me", Duration::from_secs(1)),
                Verdict::NotHolder,
                "{case}"
            );
        }
    }

    #[test]
    fn a_lease_without_renew_time_or_duration_cannot_be_judged() {
        for s in [
            spec(Some("me"), None, Some(15)),
            spec(Some("me"), Some(0), None),
        ] {
            assert_eq!(
                verdict(Some(&s), "me", Duration::from_secs(1)),
                Verdict::Unjudgeable
            );
        }
    }

    #[test]
    fn a_negative_duration_counts_as_zero_and_a_huge_margin_never_overflows() {
        let s = spec(Some("me"), Some(0), Some(-5));
        assert_eq!(
            verdict(Some(&s), "me", Duration::from_secs(1)),
            Verdict::HoldUntil(at(-1))
        );
        let s = spec(Some("me"), Some(0), Some(i32::MAX));
        assert_eq!(verdict(Some(&s), "me", Duration::MAX), Verdict::Unjudgeable);
    }

    #[test]
    fn the_margin_is_a_quarter_of_the_grace_and_at_least_half_a_second() {
        assert_eq!(margin(Duration::from_secs(8)), Duration::from_secs(2));
        assert_eq!(margin(Duration::from_secs(1)), Duration::from_millis(500));
        assert_eq!(margin(Duration::ZERO), Duration::from_millis(500));
    }
}
