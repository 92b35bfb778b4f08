//! The pure heart of the ArtifactMapping controller: what a mapping's status says once
//! placement ([`crate::placement::serve`]) has planned and the candidates were verified.
//!
//! Owns: the status, history and events that follow from a plan and the verification attempts
//! — one table row per way a mapping can stand ([`Standing`] → [`Row`]), every condition given by
//! the row — the retry schedule of stranded mappings, and the metric result of a reconcile.
//!
//! Must not: talk to a cluster or a bucket, read the clock, or log. Everything it needs arrives as
//! plain values (the plan, [`Attempt`]s, `now`), so every rule is a table test.

use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::runtime::events::EventType;

use crate::api::condition::{self, Desired, Status};
use crate::api::mapping::{HistoryEntry, MAX_HISTORY};
use crate::api::reasons::{mapping_condition, MappingReason};
use crate::api::{ArtifactMapping, ArtifactMappingStatus};
use crate::cluster::EventNote;
use crate::placement::{Plan, StrandedBy};
use crate::storage::verify::Verdict;

use super::findings;

/// What verifying one candidate gave, and when (for a remembered verdict: when it was reached).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attempt {
    pub backend: String,
    /// The object key the verdict is about.
    pub key: String,
    pub verdict: Verdict,
    pub at: Time,
}

/// Where a mapping stands, for metrics and the index.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MappingState {
    /// Not reconciled yet.
    Pending,
    /// Served by its declared backend.
    Declared,
    /// Served by another, verified backend.
    Reassigned,
    /// Served by nothing.
    Stranded,
}

impl MappingState {
    pub const ALL: [MappingState; 4] = [
        MappingState::Pending,
        MappingState::Declared,
        MappingState::Reassigned,
        MappingState::Stranded,
    ];

    /// The `state` label of the `mappings` gauge.
    pub fn label(self) -> &'static str {
        match self {
            MappingState::Pending => "pending",
            MappingState::Declared => "declared",
            MappingState::Reassigned => "reassigned",
            MappingState::Stranded => "stranded",
        }
    }

    /// The state a mapping's status describes.
    pub fn of(mapping: &ArtifactMapping) -> MappingState {
        let Some(status) = mapping.status.as_ref() else {
            return MappingState::Pending;
        };
        match condition::find(&status.conditions, mapping_condition::READY) {
            None => MappingState::Pending,
            Some(c) if c.status == Status::True.as_str() => {
                if status.backend.as_deref() == Some(mapping.spec.backend_ref.name.as_str()) {
                    MappingState::Declared
                } else {
                    MappingState::Reassigned
                }
            }
            Some(_) => MappingState::Stranded,
        }
    }
}

/// A move between backends (one history entry, one Normal event).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Move {
    pub from: Option<String>,
    pub to: String,
    pub reason: MappingReason,
}

/// The new status and what to tell the world about it.
#[derive(Clone, Debug, PartialEq)]
pub struct Outcome {
    pub status: ArtifactMappingStatus,
    pub events: Vec<EventNote>,
    pub state: MappingState,
    pub moved: Option<Move>,
}

/// `sha256:` and the first 12 hex digits.
pub fn short_digest(digest: &str) -> String {
    match digest.split_once(':') {
        Some((algo, hex)) => format!("{algo}:{}", &hex[..hex.len().min(12)]),
        None => digest.chars().take(19).collect(),
    }
}

/// How a mapping stands after this reconcile: one row of the condition table each.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Standing {
    /// Served by its declared backend (its copy verified at `verified_at`, if ever).
    Declared {
        backend: String,
        key: String,
        verified_at: Option<Time>,
    },
    /// Kept on the verified backend that already served it.
    Kept {
        backend: String,
        key: String,
        reason: MappingReason,
        by: StrandedBy,
    },
    /// Moved to a backend whose bytes just verified.
    Reassigned {
        backend: String,
        key: String,
        at: Time,
        by: StrandedBy,
    },
    /// Served by nothing: no replica verified, or reassignment is disabled.
    Unserved { by: StrandedBy, disabled: bool },
}

/// One condition of a row: `None` leaves the condition as it is.
type Cell = Option<(Status, MappingReason, String)>;

/// Every condition of one standing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Row {
    pub ready: Cell,
    pub stranded: Cell,
    pub verified: Cell,
    pub reassigned: Cell,
}

/// The condition table.
pub fn row(standing: &Standing) -> Row {
    use MappingReason::*;
    use Status::{False, True, Unknown};
    match standing {
        Standing::Declared {
            backend,
            verified_at,
            ..
        } => Row {
            ready: Some((
                True,
                Declared,
                format!("served by its declared backend {backend}"),
            )),
            stranded: Some((
                False,
                NotStranded,
                format!("declared backend {backend} holds the object"),
            )),
            verified: Some(match verified_at {
                None => (
                    Unknown,
                    Declared,
                    "served by its declared backend, not verified yet".to_owned(),
                ),
                Some(_) => (
                    True,
                    DigestVerified,
                    format!("bytes on {backend} match the digest"),
                ),
            }),
            reassigned: Some((
                False,
                NotReassigned,
                format!("served by its declared backend {backend}"),
            )),
        },
        Standing::Kept {
            backend,
            reason,
            by,
            ..
        } => Row {
            ready: Some((
                True,
                *reason,
                format!("served by verified backend {backend}"),
            )),
            stranded: Some((
                False,
                NotStranded,
                format!("served by verified backend {backend}"),
            )),
            // Keeping requires Verified=True already; its message names when and where.
            verified: None,
            reassigned: Some((
                True,
                DigestVerified,
                format!("served by {backend}: {}", by.message),
            )),
        },
        Standing::Reassigned { backend, by, .. } => Row {
            ready: Some((
                True,
                DigestVerified,
                format!("served by verified backend {backend}"),
            )),
            stranded: Some((
                False,
                NotStranded,
                format!("served by verified backend {backend}"),
            )),
            verified: Some((
                True,
                DigestVerified,
                format!("bytes on {backend} match the digest"),
            )),
            reassigned: Some((
                True,
                DigestVerified,
                format!("served by {backend}: {}", by.message),
            )),
        },
        Standing::Unserved { by, disabled } => {
            let (reason, message) = if *disabled {
                (
                    ReassignmentDisabled,
                    format!("{}; reassignment is disabled", by.message),
                )
            } else {
                (
                    NoVerifiedReplica,
                    format!("{}; no other backend holds a verified replica", by.message),
                )
            };
            Row {
                ready: Some((False, reason, message.clone())),
                stranded: Some((True, by.reason, by.message.clone())),
                verified: Some((False, reason, message)),
                reassigned: Some((False, NotReassigned, "not served by any backend".to_owned())),
            }
        }
    }
}

/// How the mapping stands given the plan, the attempts and its previous status.
pub fn standing(plan: &Plan, attempts: &[Attempt], old: &ArtifactMappingStatus) -> Standing {
    match plan {
        Plan::Declared { backend, key } => Standing::Declared {
            backend: backend.clone(),
            key: key.clone(),
            verified_at: findings::verified_at(
                attempts,
                backend,
                key,
                same_copy(old, backend, key),
            ),
        },
        Plan::Keep {
            backend,
            key,
            stranded_by,
        } => Standing::Kept {
            backend: backend.clone(),
            key: key.clone(),
            reason: kept_reason(old, backend),
            by: stranded_by.clone(),
        },
        Plan::Stranded {
            by,
            reassignment_disabled,
            candidates,
        } => {
            let verified = attempts.iter().find(|a| a.verdict.is_verified());
            let key_of = |name: &str| candidates.iter().find(|c| c.backend == name);
            match verified.and_then(|a| Some((a, key_of(&a.backend)?))) {
                Some((attempt, candidate)) => Standing::Reassigned {
                    backend: attempt.backend.clone(),
                    key: candidate.key.clone(),
                    at: attempt.at.clone(),
                    by: by.clone(),
                },
                None => Standing::Unserved {
                    by: by.clone(),
                    disabled: *reassignment_disabled,
                },
            }
        }
    }
}

/// The status' `lastVerifiedTime`, if it is about the copy on `backend` under `key`.
fn same_copy<'a>(old: &'a ArtifactMappingStatus, backend: &str, key: &str) -> Option<&'a Time> {
    (old.backend.as_deref() == Some(backend) && old.key.as_deref() == Some(key))
        .then_some(old.last_verified_time.as_ref())
        .flatten()
}

/// The Ready reason of a kept mapping: the one a move wrote (`DigestVerified`) stays, so re-runs
/// never rewrite it; a mapping first kept after a restart is `Sticky`.
fn kept_reason(old: &ArtifactMappingStatus, backend: &str) -> MappingReason {
    match condition::find(&old.conditions, mapping_condition::READY) {
        Some(c) if c.status == Status::True.as_str() && old.backend.as_deref() == Some(backend) => {
            if c.reason == MappingReason::Sticky.as_str() {
                MappingReason::Sticky
            } else {
                MappingReason::DigestVerified
            }
        }
        _ => MappingReason::Sticky,
    }
}

/// Turns a plan and the verification results into the new status and events.
///
/// A reconcile that learns nothing new returns the status unchanged (condition transition times
/// kept, no history entry), so the caller writes nothing.
pub fn outcome(
    mapping: &ArtifactMapping,
    plan: &Plan,
    attempts: &[Attempt],
    now: &Time,
) -> Outcome {
    let old = mapping.status.clone().unwrap_or_default();
    let standing = standing(plan, attempts, &old);
    let mut status = old.clone();
    status.observed_generation = mapping.metadata.generation;
    status.short_digest = Some(short_digest(&mapping.spec.digest));
    let expected = [
        mapping.spec.backend_ref.name.as_str(),
        old.backend.as_deref().unwrap_or_default(),
    ];
    let (bad_replicas, new_findings) = findings::update(&old.bad_replicas, attempts, &expected);
    status.bad_replicas = bad_replicas;
    set_serving(&mut status, &standing, attempts);
    apply_row(
        &mut status,
        &row(&standing),
        mapping.metadata.generation,
        now,
    );
    let mut events: Vec<EventNote> = new_findings
        .iter()
        .map(|f| findings::event(f, &mapping.spec.digest))
        .collect();
    let moved = record_move(mapping, &old, &mut status, &standing, now);
    if let Some(m) = &moved {
        events.push(move_event(mapping, m));
    }
    Outcome {
        status,
        events,
        state: state_of(&standing),
        moved,
    }
}

/// `status.backend`, `status.key` and `status.lastVerifiedTime` of a standing.
fn set_serving(status: &mut ArtifactMappingStatus, standing: &Standing, attempts: &[Attempt]) {
    match standing {
        Standing::Declared {
            backend,
            key,
            verified_at,
        } => {
            status.backend = Some(backend.clone());
            status.key = Some(key.clone());
            status.last_verified_time = verified_at.clone();
        }
        Standing::Kept { backend, key, .. } => {
            let previous = status.last_verified_time.take();
            status.last_verified_time =
                findings::verified_at(attempts, backend, key, previous.as_ref());
            status.backend = Some(backend.clone());
            status.key = Some(key.clone());
        }
        Standing::Reassigned {
            backend, key, at, ..
        } => {
            status.backend = Some(backend.clone());
            status.key = Some(key.clone());
            status.last_verified_time = Some(at.clone());
        }
        Standing::Unserved { .. } => {
            status.backend = None;
            status.key = None;
            status.last_verified_time = None;
        }
    }
}

fn apply_row(status: &mut ArtifactMappingStatus, row: &Row, generation: Option<i64>, now: &Time) {
    let cells = [
        (mapping_condition::READY, &row.ready),
        (mapping_condition::STRANDED, &row.stranded),
        (mapping_condition::VERIFIED, &row.verified),
        (mapping_condition::REASSIGNED, &row.reassigned),
    ];
    for (type_, cell) in cells {
        if let Some((s, reason, message)) = cell {
            condition::set(
                &mut status.conditions,
                Desired {
                    type_,
                    status: *s,
                    reason: reason.as_str(),
                    message: message.clone(),
                    observed_generation: generation,
                },
                now,
            );
        }
    }
}

fn state_of(standing: &Standing) -> MappingState {
    match standing {
        Standing::Declared { .. } => MappingState::Declared,
        Standing::Kept { .. } | Standing::Reassigned { .. } => MappingState::Reassigned,
        Standing::Unserved { .. } => MappingState::Stranded,
    }
}

/// One history entry per actual move; a re-run finds the backend unchanged, and the first
/// service from the declared backend is not a move.
fn record_move(
    mapping: &ArtifactMapping,
    old: &ArtifactMappingStatus,
    status: &mut ArtifactMappingStatus,
    standing: &Standing,
    now: &Time,
) -> Option<Move> {
    let (to, reason) = match standing {
        Standing::Declared { backend, .. } => (backend, MappingReason::Declared),
        Standing::Reassigned { backend, .. } => (backend, MappingReason::DigestVerified),
        Standing::Kept { .. } | Standing::Unserved { .. } => return None,
    };
    let declared = mapping.spec.backend_ref.name.as_str();
    let from = old.backend.clone();
    let first_home = from.is_none() && to == declared && old.history.is_empty();
    if from.as_deref() == Some(to.as_str()) || first_home {
        return None;
    }
    let from = from.or_else(|| (to != declared).then(|| declared.to_string()));
    status.history.push(HistoryEntry {
        from: from.clone(),
        to: to.clone(),
        at: now.clone(),
        reason: reason.as_str().to_string(),
    });
    let excess = status.history.len().saturating_sub(MAX_HISTORY);
    status.history.drain(..excess);
    Some(Move {
        from,
        to: to.clone(),
        reason,
    })
}

fn move_event(mapping: &ArtifactMapping, m: &Move) -> EventNote {
    let (action, note) = if m.to == mapping.spec.backend_ref.name {
        (
            "ReturnHome",
            format!("returned to its declared backend {}", m.to),
        )
    } else {
        (
            "Reassign",
            format!(
                "now served by {} after its bytes re-verified against {}",
                m.to, mapping.spec.digest
            ),
        )
    };
    EventNote {
        type_: EventType::Normal,
        reason: m.reason.as_str(),
        action,
        note: match &m.from {
            Some(f) => format!("{note} (was {f})"),
            None => note,
        },
    }
}

/// The `result` label of the `reassignments` metric for this reconcile, if it is one.
pub fn reassignment_result(plan: &Plan, outcome: &Outcome) -> Option<&'static str> {
    match (&outcome.moved, outcome.state, plan) {
        (Some(m), _, _) if m.reason == MappingReason::Declared => Some("returned_home"),
        (Some(_), _, _) => Some("reassigned"),
        (
            None,
            MappingState::Stranded,
            Plan::Stranded {
                reassignment_disabled: false,
                ..
            },
        ) => Some("no_verified_replica"),
        _ => None,
    }
}

/// How long to wait before retrying a stranded mapping: the time it has been stranded, between
/// `min` and `max`. Waiting as long as the mapping has already waited doubles the total at each
/// retry — exponential backoff that needs no counter and survives restarts.
pub fn retry_after(
    status: &ArtifactMappingStatus,
    now: &Time,
    min: Duration,
    max: Duration,
) -> Option<Duration> {
    let ready = condition::find(&status.conditions, mapping_condition::READY)?;
    if ready.status == Status::True.as_str()
        || ready.reason == MappingReason::ReassignmentDisabled.as_str()
    {
        return None;
    }
    let since = now.0.duration_since(ready.last_transition_time.0);
    let waited = Duration::try_from(since).unwrap_or_default();
    Some(waited.clamp(min, max.max(min)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::{Algorithm, Digest};
    use crate::placement::test_objects::*;
    use crate::placement::{decide, Candidate};
    use k8s_openapi::jiff::Timestamp;

    fn at(secs: i64) -> Time {
        Time(Timestamp::from_second(secs).unwrap())
    }

    /// A mapping whose status says it is served by `backend` after verification.
    fn served_by(mut m: ArtifactMapping, backend: &str) -> ArtifactMapping {
        let plan = Plan::Stranded {
            by: StrandedBy {
                reason: MappingReason::BackendInvalid,
                message: "x".into(),
            },
            reassignment_disabled: false,
            candidates: vec![Candidate {
                backend: backend.into(),
                location: "l".into(),
                key: "k".into(),
                known_verified: false,
            }],
        };
        let o = outcome(&m, &plan, &[verified(backend, 5)], &at(5));
        m.status = Some(o.status);
        m
    }

    fn stranded(candidates: &[&str]) -> Plan {
        Plan::Stranded {
            by: StrandedBy {
                reason: MappingReason::BackendInvalid,
                message: "declared backend a is not ready".into(),
            },
            reassignment_disabled: false,
            candidates: candidates
                .iter()
                .map(|c| Candidate {
                    backend: c.to_string(),
                    location: format!("loc-{c}"),
                    key: format!("{c}/key"),
                    known_verified: false,
                })
                .collect(),
        }
    }

    fn verified(backend: &str, secs: i64) -> Attempt {
        Attempt {
            backend: backend.into(),
            key: format!("{backend}/key"),
            verdict: Verdict::Verified { bytes: 100 },
            at: at(secs),
        }
    }

    fn ready(status: &ArtifactMappingStatus) -> (String, String) {
        let c = condition::find(&status.conditions, mapping_condition::READY).unwrap();
        (c.status.clone(), c.reason.clone())
    }

    #[test]
    fn a_verified_candidate_becomes_the_backend_with_one_history_entry_and_one_event() {
        let m = declared_on("a");
        let attempts = vec![
            Attempt {
                backend: "bad".into(),
                key: "bad/key".into(),
                verdict: Verdict::DigestMismatch {
                    actual: Digest::of_bytes(Algorithm::Sha256, b"other bytes"),
                },
                at: at(10),
            },
            verified("good", 10),
        ];
        let o = outcome(&m, &stranded(&["bad", "good"]), &attempts, &at(10));
        assert_eq!(o.status.backend.as_deref(), Some("good"));
        assert_eq!(o.status.key.as_deref(), Some("good/key"));
        assert_eq!(
            ready(&o.status),
            ("True".into(), MappingReason::DigestVerified.as_str().into())
        );
        assert!(condition::is_true(
            &o.status.conditions,
            mapping_condition::REASSIGNED
        ));
        assert!(condition::is_true(
            &o.status.conditions,
            mapping_condition::VERIFIED
        ));
        assert_eq!(o.status.last_verified_time, Some(at(10)));
        assert_eq!(
            o.status.short_digest.as_deref(),
            Some("sha256:0123456789ab")
        );
        assert_eq!(
            o.status.history,
            vec![HistoryEntry {
                from: Some("a".into()),
                to: "good".into(),
                at: at(10),
                reason: MappingReason::DigestVerified.as_str().into()
            }]
        );
        assert_eq!(o.state, MappingState::Reassigned);
        let kinds: Vec<_> = o.events.iter().map(|e| (e.type_, e.reason)).collect();
        assert_eq!(
            kinds,
            vec![
                (EventType::Warning, MappingReason::DigestMismatch.as_str()),
                (EventType::Normal, MappingReason::DigestVerified.as_str())
            ]
        );
        assert!(o
            .status
            .conditions
            .iter()
            .all(|c| c.observed_generation == Some(1)));
    }

    #[test]
    fn re_running_a_converged_mapping_changes_nothing() {
        let cases: Vec<(&str, ArtifactMapping, Vec<crate::placement::Replica>)> = vec![
            (
                "a reassigned mapping kept on its backend",
                served_by(declared_on("a"), "b"),
                vec![not_ready(b("a")), b("b")],
            ),
            (
                "a mapping served by its declared backend",
                declared_on("a"),
                vec![present(b("a"))],
            ),
            (
                "a stranded mapping with no replica",
                declared_on("a"),
                vec![not_ready(b("a"))],
            ),
            (
                "a stranded mapping with reassignment Never",
                never(declared_on("a")),
                vec![not_ready(b("a")), b("b")],
            ),
        ];
        for (name, mut m, backends) in cases {
            // Converge first (at t=20), then re-run later (t=99) with the same facts.
            for t in [20, 99] {
                let plan = decide(&m, &backends);
                let o = outcome(&m, &plan, &[], &at(t));
                if t == 99 {
                    assert_eq!(Some(&o.status), m.status.as_ref(), "{name}");
                    assert!(o.events.is_empty(), "{name}: {:?}", o.events);
                    assert_eq!(o.moved, None, "{name}");
                }
                m.status = Some(o.status);
            }
        }
    }

    #[test]
    fn history_is_bounded_and_never_duplicated() {
        let mut m = declared_on("a");
        // 12 moves between b and c.
        for i in 0..12 {
            let to = if i % 2 == 0 { "b" } else { "c" };
            let o = outcome(&m, &stranded(&[to]), &[verified(to, i)], &at(i));
            assert!(o.moved.is_some(), "move {i}");
            m.status = Some(o.status);
        }
        let history = &m.status.as_ref().unwrap().history;
        assert_eq!(history.len(), MAX_HISTORY);
        assert_eq!(history.last().unwrap().to, "c");
        assert_eq!(history.last().unwrap().at, at(11));
        assert_eq!(
            history.first().unwrap().at,
            at(2),
            "the oldest entries are dropped first"
        );
        // The same verification again (e.g. a re-run): no new entry, no event.
        let o = outcome(&m, &stranded(&["c"]), &[verified("c", 11)], &at(50));
        assert_eq!(o.status.history, *history);
        assert_eq!(o.moved, None);
        assert!(o.events.is_empty());
    }

    #[test]
    fn returning_home_is_one_move_with_reason_declared() {
        let m = served_by(declared_on("a"), "b");
        let o = outcome(
            &m,
            &Plan::Declared {
                backend: "a".into(),
                key: "a/key".into(),
            },
            &[],
            &at(30),
        );
        assert_eq!(o.status.backend.as_deref(), Some("a"));
        assert_eq!(
            ready(&o.status),
            ("True".into(), MappingReason::Declared.as_str().into())
        );
        assert_eq!(o.status.history.last().unwrap().from.as_deref(), Some("b"));
        assert_eq!(
            o.status.history.last().unwrap().reason,
            MappingReason::Declared.as_str()
        );
        assert_eq!(o.status.history.len(), 2);
        assert_eq!(o.events.len(), 1);
        assert_eq!(o.status.last_verified_time, None);
        assert!(!condition::is_true(
            &o.status.conditions,
            mapping_condition::REASSIGNED
        ));
    }

    #[test]
    fn first_service_from_the_declared_backend_is_not_a_move() {
        let o = outcome(
            &declared_on("a"),
            &Plan::Declared {
                backend: "a".into(),
                key: "a/key".into(),
            },
            &[],
            &at(1),
        );
        assert!(o.status.history.is_empty());
        assert!(o.events.is_empty());
        assert_eq!(o.state, MappingState::Declared);
    }

    #[test]
    fn no_verified_candidate_is_not_ready_with_no_verified_replica() {
        let attempts = vec![
            Attempt {
                backend: "b".into(),
                key: "b/key".into(),
                verdict: Verdict::Truncated {
                    expected: 100,
                    received: 50,
                },
                at: at(40),
            },
            Attempt {
                backend: "c".into(),
                key: "c/key".into(),
                verdict: Verdict::SizeMismatch {
                    expected: 100,
                    actual: 3,
                },
                at: at(40),
            },
        ];
        let o = outcome(
            &served_by(declared_on("a"), "b"),
            &stranded(&["b", "c"]),
            &attempts,
            &at(40),
        );
        assert_eq!(
            ready(&o.status),
            (
                "False".into(),
                MappingReason::NoVerifiedReplica.as_str().into()
            )
        );
        let s = condition::find(&o.status.conditions, mapping_condition::STRANDED).unwrap();
        assert_eq!(
            (s.status.as_str(), s.reason.as_str()),
            ("True", MappingReason::BackendInvalid.as_str())
        );
        assert_eq!(o.status.backend, None, "nothing serves it");
        assert_eq!(o.state, MappingState::Stranded);
        assert_eq!(
            o.events.len(),
            1,
            "one warning for the wrong-size replica, none for a transient failure"
        );
        assert_eq!(o.events[0].reason, MappingReason::SizeMismatch.as_str());
    }

    #[test]
    fn reassignment_never_is_reported_as_disabled() {
        let m = never(declared_on("a"));
        let plan = decide(&m, &[not_ready(b("a")), b("b")]);
        let o = outcome(&m, &plan, &[], &at(1));
        assert_eq!(
            ready(&o.status),
            (
                "False".into(),
                MappingReason::ReassignmentDisabled.as_str().into()
            )
        );
        assert_eq!(
            retry_after(
                &o.status,
                &at(100),
                Duration::from_secs(5),
                Duration::from_secs(300)
            ),
            None
        );
    }

    #[test]
    fn stranded_mappings_back_off_exponentially_up_to_the_cap() {
        let min = Duration::from_secs(5);
        let max = Duration::from_secs(300);
        let m = declared_on("a");
        let o = outcome(&m, &stranded(&[]), &[], &at(1000));
        let cases = [
            (
                "right after stranding the minimum pause applies",
                1000,
                Some(5),
            ),
            ("after waiting 40s the next pause is 40s", 1040, Some(40)),
            ("the pause never exceeds the cap", 9000, Some(300)),
        ];
        for (name, now, want) in cases {
            let got = retry_after(&o.status, &at(now), min, max).map(|d| d.as_secs());
            assert_eq!(got, want, "{name}");
        }
        let served = outcome(&m, &stranded(&["b"]), &[verified("b", 1)], &at(1));
        assert_eq!(
            retry_after(&served.status, &at(50), min, max),
            None,
            "a served mapping is not retried"
        );
    }

    #[test]
    fn states_follow_the_status() {
        let cases = [
            (
                "a mapping without status is pending",
                declared_on("a"),
                MappingState::Pending,
            ),
            (
                "a mapping served elsewhere is reassigned",
                served_by(declared_on("a"), "b"),
                MappingState::Reassigned,
            ),
            (
                "a mapping served by its declared backend is declared",
                served_by(declared_on("a"), "a"),
                MappingState::Declared,
            ),
        ];
        for (name, m, want) in cases {
            assert_eq!(MappingState::of(&m), want, "{name}");
        }
    }

    #[test]
    fn every_standing_gives_every_condition() {
        use MappingReason::*;
        let by = StrandedBy {
            reason: BackendInvalid,
            message: "declared backend a is not ready".into(),
        };
        let cell = |c: &Cell| c.as_ref().map(|(s, r, _)| (s.as_str(), r.as_str()));
        type Want = [Option<(&'static str, &'static str)>; 4];
        let cases: Vec<(&str, Standing, Want)> = vec![
            (
                "a mapping served by its declared backend is ready and not re-verified",
                Standing::Declared {
                    backend: "a".into(),
                    key: "k".into(),
                    verified_at: None,
                },
                [
                    Some(("True", "Declared")),
                    Some(("False", "NotStranded")),
                    Some(("Unknown", "Declared")),
                    Some(("False", "NotReassigned")),
                ],
            ),
            (
                "a mapping served by its declared backend whose copy verified is verified",
                Standing::Declared {
                    backend: "a".into(),
                    key: "k".into(),
                    verified_at: Some(at(5)),
                },
                [
                    Some(("True", "Declared")),
                    Some(("False", "NotStranded")),
                    Some(("True", "DigestVerified")),
                    Some(("False", "NotReassigned")),
                ],
            ),
            (
                "a kept mapping keeps its Verified condition",
                Standing::Kept {
                    backend: "b".into(),
                    key: "k".into(),
                    reason: Sticky,
                    by: by.clone(),
                },
                [
                    Some(("True", "Sticky")),
                    Some(("False", "NotStranded")),
                    None,
                    Some(("True", "DigestVerified")),
                ],
            ),
            (
                "a reassigned mapping is verified and reassigned",
                Standing::Reassigned {
                    backend: "b".into(),
                    key: "k".into(),
                    at: at(1),
                    by: by.clone(),
                },
                [
                    Some(("True", "DigestVerified")),
                    Some(("False", "NotStranded")),
                    Some(("True", "DigestVerified")),
                    Some(("True", "DigestVerified")),
                ],
            ),
            (
                "an unserved mapping is stranded for the declared backend's reason",
                Standing::Unserved {
                    by: by.clone(),
                    disabled: false,
                },
                [
                    Some(("False", "NoVerifiedReplica")),
                    Some(("True", "BackendInvalid")),
                    Some(("False", "NoVerifiedReplica")),
                    Some(("False", "NotReassigned")),
                ],
            ),
            (
                "a mapping that may not move says reassignment is disabled",
                Standing::Unserved { by, disabled: true },
                [
                    Some(("False", "ReassignmentDisabled")),
                    Some(("True", "BackendInvalid")),
                    Some(("False", "ReassignmentDisabled")),
                    Some(("False", "NotReassigned")),
                ],
            ),
        ];
        for (name, standing, want) in cases {
            let r = row(&standing);
            let got = [
                cell(&r.ready),
                cell(&r.stranded),
                cell(&r.verified),
                cell(&r.reassigned),
            ];
            assert_eq!(got, want, "{name}");
        }
    }

    #[test]
    fn reassignment_metrics_count_moves_home_and_failures_only() {
        let m = declared_on("a");
        let declared = Plan::Declared {
            backend: "a".into(),
            key: "a/key".into(),
        };
        let served = served_by(declared_on("a"), "b");
        let never_plan = decide(&never(declared_on("a")), &[not_ready(b("a")), b("b")]);
        let cases = [
            (
                "a verified move is a reassignment",
                outcome(&m, &stranded(&["b"]), &[verified("b", 1)], &at(1)),
                stranded(&["b"]),
                Some("reassigned"),
            ),
            (
                "coming back to the declared backend is a return home",
                outcome(&served, &declared, &[], &at(2)),
                declared.clone(),
                Some("returned_home"),
            ),
            (
                "no verified candidate is counted",
                outcome(&m, &stranded(&[]), &[], &at(1)),
                stranded(&[]),
                Some("no_verified_replica"),
            ),
            (
                "a mapping that may not move is not a failed reassignment",
                outcome(&never(declared_on("a")), &never_plan, &[], &at(1)),
                never_plan.clone(),
                None,
            ),
            (
                "first service from the declared backend counts nothing",
                outcome(&m, &declared, &[], &at(1)),
                declared.clone(),
                None,
            ),
        ];
        for (name, o, plan, want) in cases {
            assert_eq!(reassignment_result(&plan, &o), want, "{name}");
        }
    }
}
