//! Findings about a mapping's copies: which copies failed verification (`status.badReplicas`),
//! what such a record says about a copy until it verifies again, and when the serving copy last
//! verified.
//!
//! Owns: the bookkeeping of `badReplicas` from verification evidence (fresh attempts and verdicts
//! the verifier remembers), the events a new finding raises, and reading a record back as an
//! [`ObjectFact`]. Must not: do I/O, read the clock, or decide placement (placement reads the
//! facts this module gives).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::runtime::events::EventType;

use super::decide::Attempt;
use crate::api::mapping::{BadReplica, MAX_BAD_REPLICAS};
use crate::api::reasons::MappingReason;
use crate::cluster::EventNote;
use crate::placement::ObjectFact;
use crate::storage::verify::Verdict;

/// The finding a verdict makes about a copy that should be there, if any.
fn finding_of(verdict: &Verdict) -> Option<(MappingReason, Option<i64>)> {
    match verdict {
        Verdict::DigestMismatch { .. } => Some((MappingReason::DigestMismatch, None)),
        Verdict::SizeMismatch { actual, .. } => Some((
            MappingReason::SizeMismatch,
            Some(i64::try_from(*actual).unwrap_or(i64::MAX)),
        )),
        Verdict::Missing => Some((MappingReason::ObjectMissing, None)),
        _ => None,
    }
}

/// The finding reason a verdict makes (`DigestMismatch`, `SizeMismatch`, `ObjectMissing`), or
/// `None` for a verdict that is no finding.
pub fn reason_of(verdict: &Verdict) -> Option<&'static str> {
    finding_of(verdict).map(|(reason, _)| reason.as_str())
}

/// What a bad-replica record says about its copy.
pub fn fact_of(bad: &BadReplica) -> ObjectFact {
    match MappingReason::parse(&bad.reason) {
        Some(MappingReason::ObjectMissing) => ObjectFact::Missing,
        Some(MappingReason::SizeMismatch) => ObjectFact::Present {
            size: bad
                .size
                .and_then(|s| u64::try_from(s).ok())
                .unwrap_or(u64::MAX),
        },
        _ => ObjectFact::Mismatch,
    }
}

/// The record of the copy on `backend` under `key`, if one stands.
pub fn recorded<'a>(bad: &'a [BadReplica], backend: &str, key: &str) -> Option<&'a BadReplica> {
    bad.iter().find(|b| b.backend == backend && b.key == key)
}

/// Whether a remembered verdict is newer than a record (so it, not the record, tells the truth
/// about the copy): a verification after the finding can clear it or renew it.
pub fn supersedes(verdict_at: &Time, bad: &BadReplica) -> bool {
    verdict_at.0 > bad.detected_time.0
}

/// A copy that just failed verification (for its Warning event).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    pub backend: String,
    pub key: String,
    pub reason: MappingReason,
}

/// The records after this evidence, and the findings that are new.
///
/// A digest or size mismatch is recorded wherever it is seen; a missing object only where a copy
/// is expected (`expected`: the declared and the serving backend), since other backends need not
/// hold one. A verification that succeeds clears the record of that copy. Newest last, at most
/// [`MAX_BAD_REPLICAS`].
pub fn update(
    old: &[BadReplica],
    evidence: &[Attempt],
    expected: &[&str],
) -> (Vec<BadReplica>, Vec<Finding>) {
    let mut bad = old.to_vec();
    let mut new = Vec::new();
    for attempt in evidence {
        let existing = bad
            .iter()
            .position(|b| b.backend == attempt.backend && b.key == attempt.key);
        if attempt.verdict.is_verified() {
            if let Some(i) = existing.filter(|i| supersedes(&attempt.at, &bad[*i])) {
                bad.remove(i);
            }
            continue;
        }
        let Some((reason, size)) = finding_of(&attempt.verdict) else {
            continue;
        };
        if reason == MappingReason::ObjectMissing && !expected.contains(&attempt.backend.as_str()) {
            continue;
        }
        match existing {
            Some(i) if bad[i].reason == reason.as_str() => {}
            Some(i) => {
                bad[i].reason = reason.as_str().to_owned();
                bad[i].size = size;
            }
            None => {
                bad.push(BadReplica {
                    backend: attempt.backend.clone(),
                    key: attempt.key.clone(),
                    reason: reason.as_str().to_owned(),
                    size,
                    detected_time: attempt.at.clone(),
                });
                new.push(Finding {
                    backend: attempt.backend.clone(),
                    key: attempt.key.clone(),
                    reason,
                });
            }
        }
    }
    let excess = bad.len().saturating_sub(MAX_BAD_REPLICAS);
    bad.drain(..excess);
    (bad, new)
}

/// When the copy on `backend` under `key` last verified, by the evidence or by `previous`
/// (the status' `lastVerifiedTime`, when it was about the same copy).
pub fn verified_at(
    evidence: &[Attempt],
    backend: &str,
    key: &str,
    previous: Option<&Time>,
) -> Option<Time> {
    let fresh = evidence
        .iter()
        .filter(|a| a.backend == backend && a.key == key && a.verdict.is_verified())
        .map(|a| &a.at);
    fresh.chain(previous).max_by_key(|t| t.0).cloned()
}

/// The Warning event of a new finding: names backend and key, never credentials.
pub fn event(finding: &Finding, digest: &str) -> EventNote {
    let what = match finding.reason {
        MappingReason::DigestMismatch => format!("holds other bytes than {digest}"),
        MappingReason::SizeMismatch => "has another size than declared".to_owned(),
        _ => "is missing".to_owned(),
    };
    EventNote {
        type_: EventType::Warning,
        reason: finding.reason.as_str(),
        action: "Verify",
        note: format!(
            "the copy on backend {} under key {} {what}; it will not be served until it verifies again",
            finding.backend, finding.key
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::{Algorithm, Digest};

    fn at(secs: i64) -> Time {
        Time(k8s_openapi::jiff::Timestamp::from_second(1_800_000_000 + secs).unwrap())
    }

    fn attempt(backend: &str, verdict: Verdict, secs: i64) -> Attempt {
        Attempt {
            backend: backend.into(),
            key: "k".into(),
            verdict,
            at: at(secs),
        }
    }

    fn mismatch() -> Verdict {
        Verdict::DigestMismatch {
            actual: Digest::of_bytes(Algorithm::Sha256, b"other"),
        }
    }

    fn record(backend: &str, reason: MappingReason, secs: i64) -> BadReplica {
        BadReplica {
            backend: backend.into(),
            key: "k".into(),
            reason: reason.as_str().into(),
            size: None,
            detected_time: at(secs),
        }
    }

    #[test]
    fn a_mismatch_anywhere_is_recorded_once_with_one_finding() {
        let (bad, new) = update(&[], &[attempt("b", mismatch(), 5)], &["a"]);
        assert_eq!(bad, vec![record("b", MappingReason::DigestMismatch, 5)]);
        assert_eq!(new.len(), 1);
        let (again, new) = update(&bad, &[attempt("b", mismatch(), 9)], &["a"]);
        assert_eq!(again, bad, "the first detection time stays");
        assert!(new.is_empty(), "no second event for the same finding");
    }

    #[test]
    fn a_missing_object_counts_only_where_a_copy_is_expected() {
        let evidence = [
            attempt("declared", Verdict::Missing, 1),
            attempt("elsewhere", Verdict::Missing, 1),
        ];
        let (bad, _) = update(&[], &evidence, &["declared", "serving"]);
        assert_eq!(
            bad,
            vec![record("declared", MappingReason::ObjectMissing, 1)]
        );
    }

    #[test]
    fn a_later_verification_clears_the_record_and_an_earlier_one_does_not() {
        let old = [record("a", MappingReason::DigestMismatch, 10)];
        let verified = |secs| attempt("a", Verdict::Verified { bytes: 1 }, secs);
        assert_eq!(update(&old, &[verified(11)], &["a"]).0, vec![]);
        assert_eq!(update(&old, &[verified(9)], &["a"]).0, old.to_vec());
    }

    #[test]
    fn a_size_mismatch_keeps_the_size_seen_and_reads_back_as_that_size() {
        let verdict = Verdict::SizeMismatch {
            expected: 10,
            actual: 4,
        };
        let (bad, _) = update(&[], &[attempt("a", verdict, 1)], &["a"]);
        assert_eq!(bad[0].size, Some(4));
        assert_eq!(fact_of(&bad[0]), ObjectFact::Present { size: 4 });
    }

    #[test]
    fn records_read_back_as_facts_that_placement_never_serves() {
        assert_eq!(
            fact_of(&record("a", MappingReason::DigestMismatch, 0)),
            ObjectFact::Mismatch
        );
        assert_eq!(
            fact_of(&record("a", MappingReason::ObjectMissing, 0)),
            ObjectFact::Missing
        );
    }

    #[test]
    fn failed_or_cut_reads_say_nothing_about_the_copy() {
        let cut =
            crate::storage::StorageError::new(crate::storage::ErrorKind::BodyInterrupted, "x");
        let old = [record("a", MappingReason::DigestMismatch, 0)];
        let (bad, new) = update(&old, &[attempt("a", Verdict::Failed(cut), 5)], &["a"]);
        assert_eq!(bad, old.to_vec());
        assert!(new.is_empty());
    }

    #[test]
    fn the_list_keeps_the_newest_sixteen() {
        let evidence: Vec<Attempt> = (0..20)
            .map(|i| attempt(&format!("b{i:02}"), mismatch(), i))
            .collect();
        let (bad, _) = update(&[], &evidence, &[]);
        assert_eq!(bad.len(), MAX_BAD_REPLICAS);
        assert_eq!(bad[0].backend, "b04");
    }

    #[test]
    fn the_last_verification_is_the_newest_of_the_evidence_and_the_status() {
        let evidence = [attempt("a", Verdict::Verified { bytes: 1 }, 20)];
        assert_eq!(
            verified_at(&evidence, "a", "k", Some(&at(10))),
            Some(at(20))
        );
        assert_eq!(
            verified_at(&evidence, "a", "k", Some(&at(30))),
            Some(at(30))
        );
        assert_eq!(verified_at(&evidence, "b", "k", None), None);
        assert_eq!(verified_at(&[], "a", "k", Some(&at(10))), Some(at(10)));
    }
}
