//! The pure heart of the StorageBackend controller: (what was, what the probe said, what is
//! around) → the next `status` and the transition events to emit.
//!
//! Owns: thresholds and hysteresis, the meaning of every condition, conflict reporting, and the
//! decision of which changes deserve an Event. Takes no client, no clock (the time is a field of
//! [`Facts`]) and does no I/O, so every rule below is a table test. What a reason *means*
//! (terminal or transient, what it proves about credentials and reachability) comes from the one
//! table in [`crate::api::reasons`].
//!
//! Must not: talk to the API server or a bucket, read the clock, or see credential material
//! (failures arrive already classified and redacted).
//!
//! The rules (DESIGN, "Backend validation"):
//! - A good probe: `consecutiveSuccesses + 1`, `consecutiveFailures = 0`. A Ready backend stays
//!   Ready. A backend that is not Ready becomes Ready only after `successThreshold` consecutive good
//!   probes, *unless* it has no server-side failure history: a brand-new backend (no Ready
//!   condition, or Ready=Unknown), or one whose only trouble was local configuration
//!   (`SecretNotFound`, `SecretKeyMissing`, `InvalidSpec`: nothing ever reached the server, so
//!   there is no flapping to guard against — the usual GitOps case of a backend applied before its
//!   Secret) is Ready on its first good probe.
//! - A transient failure: `consecutiveFailures + 1`. A Ready backend stays Ready (reason
//!   `Validated`, message counting the tolerated failures) until `failureThreshold` consecutive
//!   failures. A backend that is not Ready has nothing to keep and is `Ready=False` at once. Never
//!   sets `Stalled`; does not clear it either, unless the inputs (generation, Secrets) changed — a
//!   timeout proves nothing about the key that was rejected before.
//! - A terminal failure: `Ready=False` and `Stalled=True` at once, whatever the thresholds.
//!   Stalled clears on the next good probe or when the inputs change.
//! - When the inputs changed since the last probe (spec generation, or a referenced Secret's
//!   resourceVersion), both counters restart from zero before the outcome is folded in.
//! - `CredentialsValid` and `Reachable` say what the outcome proves; when it proves nothing they
//!   are kept, or Unknown when there is nothing valid to keep (no previous value, or the inputs
//!   changed). `Reachable` is only set from a probe that was sent.
//! - Every condition carries the current `observedGeneration`; messages are short and stable
//!   (no request ids, no timestamps, no server text — that goes to the Warning Event only).
//! - Duplicate `default: true` (or `fallback: true`) backends in a namespace: a `DefaultConflict`
//!   (`FallbackConflict`) condition, True, naming the others, on each of them, plus a Warning
//!   Event when the conflict appears or its members change. Never "fixed" by the operator. The
//!   condition is only added once a conflict has been seen, then turns False when it is gone.
//! - Events only on transitions: Warning when Ready becomes False or its failure reason changes
//!   (with the redacted detail), Normal when Ready becomes True.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::runtime::events::EventType;

use crate::api::backend::{Integrity, MappingCounts, StorageBackendStatus};
use crate::api::condition::{self, Desired, Status};
use crate::api::reasons::backend_condition::DEGRADED;
use crate::api::reasons::backend_condition::{self as cond, DEFAULT_CONFLICT, FALLBACK_CONFLICT};
use crate::api::reasons::conflict_reason::{MULTIPLE_DEFAULTS, MULTIPLE_FALLBACKS, NO_CONFLICT};
use crate::api::reasons::integrity_reason::{CORRUPT_OBJECTS, MISSING_OBJECTS, NO_FINDINGS};
use crate::api::reasons::{BackendReason, Class, CredentialsVerdict, Reach};
use crate::cluster::EventNote;

/// `successThreshold` and `failureThreshold` of the spec (both at least 1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Thresholds {
    pub success: i32,
    pub failure: i32,
}

/// A classified failure: its reason, a short stable message for the conditions, and the
/// redacted detail for the Warning Event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    pub reason: BackendReason,
    /// Short and stable: goes into condition messages.
    pub message: String,
    /// Redacted, possibly server-provided text: goes into the Warning Event only.
    pub detail: String,
}

impl Failure {
    fn terminal(&self) -> bool {
        self.reason.is_terminal()
    }
}

/// What the validation found out this time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The probe succeeded.
    Success,
    /// The probe was sent and failed (the server answered with an error, or did not answer).
    ProbeFailed(Failure),
    /// Nothing could be sent: the Secret or the spec is unusable.
    ConfigError(Failure),
}

impl Outcome {
    /// The reason this outcome reports (`Validated` for a success).
    pub fn reason(&self) -> BackendReason {
        match self {
            Outcome::Success => BackendReason::Validated,
            Outcome::ProbeFailed(f) | Outcome::ConfigError(f) => f.reason,
        }
    }
}

/// Everything [`decide`] looks at.
#[derive(Clone, Debug)]
pub struct Facts<'a> {
    /// `metadata.generation` of the backend.
    pub generation: Option<i64>,
    /// The current status (None for a new object).
    pub previous: Option<&'a StorageBackendStatus>,
    /// The spec generation or a referenced Secret's resourceVersion changed since the last probe.
    pub inputs_changed: bool,
    /// The probe outcome, or None when no probe ran this time (only counts and conflicts are
    /// refreshed).
    pub outcome: Option<&'a Outcome>,
    pub thresholds: Thresholds,
    /// The resolved replication group.
    pub location: String,
    pub mappings: MappingCounts,
    /// What scrubbing found on this backend.
    pub integrity: Integrity,
    /// Other backends of the namespace with `default: true` (empty when this one is not default).
    pub other_defaults: Vec<String>,
    /// Other backends of the namespace with `fallback: true` (empty when this one is not fallback).
    pub other_fallbacks: Vec<String>,
    pub now: Time,
}

/// The next status and the events to emit.
#[derive(Clone, Debug, PartialEq)]
pub struct Decision {
    pub status: StorageBackendStatus,
    pub events: Vec<EventNote>,
    /// Whether the backend is Ready after this decision (for the readiness gauge).
    pub ready: bool,
}

/// What one condition becomes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Cell {
    Set(Status, &'static str, String),
    /// Set only when the condition is absent; otherwise kept.
    SetIfAbsent(Status, &'static str, String),
    /// The outcome proves nothing about it: kept, unless the inputs changed or it was never set,
    /// then Unknown with this reason.
    KeepOrUnknown(&'static str),
}

/// Every validation condition after one outcome.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Row {
    pub ready: Cell,
    pub credentials_valid: Cell,
    pub reachable: Cell,
    pub stalled: Cell,
}

/// The counters before the outcome is folded in: restarted when the inputs changed.
fn counters_before(f: &Facts<'_>, previous: &StorageBackendStatus) -> (i32, i32) {
    if f.inputs_changed {
        (0, 0)
    } else {
        (
            previous.consecutive_successes,
            previous.consecutive_failures,
        )
    }
}

/// Whether a backend that is not Ready must collect `successThreshold` good probes: it must
/// when the server itself has failed before (a restart of a flapping server must not instantly
/// re-trust it).
pub fn needs_hysteresis(previous_ready: Option<&Condition>) -> bool {
    match previous_ready {
        None => false,
        Some(c) if c.status != Status::False.as_str() => false,
        Some(c) => !BackendReason::parse(&c.reason).is_some_and(|r| r.traits().local_config),
    }
}

/// The condition table: what each condition becomes after `outcome`, given whether the backend
/// was Ready, whether it needs hysteresis, and the counters after the outcome.
pub fn row(
    outcome: &Outcome,
    was_ready: bool,
    hysteresis: bool,
    (successes, failures): (i32, i32),
    thresholds: Thresholds,
    inputs_changed: bool,
) -> Row {
    let validated = BackendReason::Validated.as_str();
    let failure = match outcome {
        Outcome::Success => {
            let trusted = was_ready || !hysteresis || successes >= thresholds.success;
            return Row {
                ready: if trusted {
                    Cell::Set(
                        Status::True,
                        validated,
                        "the last validation succeeded".into(),
                    )
                } else {
                    Cell::Set(
                        Status::False,
                        BackendReason::Pending.as_str(),
                        format!(
                            "{successes} of {} consecutive good validations before Ready",
                            thresholds.success
                        ),
                    )
                },
                credentials_valid: Cell::Set(
                    Status::True,
                    validated,
                    "the server accepted the credentials".into(),
                ),
                reachable: Cell::Set(Status::True, validated, "the endpoint answered".into()),
                stalled: Cell::Set(
                    Status::False,
                    validated,
                    "the last validation succeeded".into(),
                ),
            };
        }
        Outcome::ProbeFailed(f) | Outcome::ConfigError(f) => f,
    };
    let why = failure.reason.as_str();
    let traits = failure.reason.traits();
    let failed = || Cell::Set(Status::False, why, failure.message.clone());
    let ready = if failure.terminal() || !was_ready || failures >= thresholds.failure {
        failed()
    } else {
        Cell::Set(
            Status::True,
            validated,
            format!(
                "the last validation failed ({why}); {failures} of {} consecutive failures tolerated",
                thresholds.failure
            ),
        )
    };
    let stalled = if failure.terminal() {
        Cell::Set(Status::True, why, failure.message.clone())
    } else if inputs_changed {
        Cell::Set(Status::False, why, "transient failures are retried".into())
    } else {
        Cell::SetIfAbsent(Status::False, why, "transient failures are retried".into())
    };
    let credentials_valid = match traits.credentials {
        CredentialsVerdict::Invalid => failed(),
        CredentialsVerdict::Valid | CredentialsVerdict::Unproven => Cell::KeepOrUnknown(why),
    };
    let sent = matches!(outcome, Outcome::ProbeFailed(_));
    let reachable = match traits.reach {
        Reach::NoAnswer => failed(),
        Reach::Answered if sent => {
            Cell::Set(Status::True, why, format!("the endpoint answered ({why})"))
        }
        Reach::Answered | Reach::Unproven => Cell::KeepOrUnknown(why),
    };
    debug_assert!(traits.class != Class::Healthy);
    Row {
        ready,
        credentials_valid,
        reachable,
        stalled,
    }
}

/// Decides the next status. Pure.
pub fn decide(f: &Facts<'_>) -> Decision {
    let previous = f.previous.cloned().unwrap_or_default();
    let mut status = previous.clone();
    status.observed_generation = f.generation;
    status.location = Some(f.location.clone());
    status.mappings = Some(f.mappings);
    status.integrity = Some(f.integrity.clone());
    apply(&mut status.conditions, DEGRADED, &degraded(&f.integrity), f);
    let previous_ready = condition::find(&previous.conditions, cond::READY).cloned();
    let was_ready = previous_ready
        .as_ref()
        .is_some_and(|c| c.status == Status::True.as_str());

    match f.outcome {
        None => {
            if previous_ready.is_none() {
                let pending = Cell::Set(
                    Status::Unknown,
                    BackendReason::Pending.as_str(),
                    "waiting for the first validation".into(),
                );
                apply(&mut status.conditions, cond::READY, &pending, f);
            }
        }
        Some(outcome) => {
            let counters = fold_counters(&mut status, outcome, counters_before(f, &previous), f);
            let row = row(
                outcome,
                was_ready,
                needs_hysteresis(previous_ready.as_ref()),
                counters,
                f.thresholds,
                f.inputs_changed,
            );
            for (type_, cell) in [
                (cond::READY, &row.ready),
                (cond::CREDENTIALS_VALID, &row.credentials_valid),
                (cond::REACHABLE, &row.reachable),
                (cond::STALLED, &row.stalled),
            ] {
                apply(&mut status.conditions, type_, cell, f);
            }
        }
    }

    let mut events = Vec::new();
    for (type_, why, role, others) in [
        (
            DEFAULT_CONFLICT,
            MULTIPLE_DEFAULTS,
            "default",
            &f.other_defaults,
        ),
        (
            FALLBACK_CONFLICT,
            MULTIPLE_FALLBACKS,
            "fallback",
            &f.other_fallbacks,
        ),
    ] {
        let conflict = Conflict {
            type_,
            why,
            role,
            others,
        };
        events.extend(conflict.apply(&mut status.conditions, &previous.conditions, f));
    }
    // Every condition describes the generation it was evaluated against.
    for c in &mut status.conditions {
        c.observed_generation = f.generation;
    }

    let next_ready = condition::find(&status.conditions, cond::READY);
    let ready = next_ready.is_some_and(|c| c.status == Status::True.as_str());
    let mut transitions = readiness_events(previous_ready.as_ref(), next_ready, f.outcome);
    transitions.append(&mut events);
    Decision {
        status,
        events: transitions,
        ready,
    }
}

/// The `Degraded` condition: `True` while findings stand on the backend, corrupt copies first.
pub fn degraded(integrity: &Integrity) -> Cell {
    match (integrity.corrupt, integrity.missing) {
        (0, 0) => Cell::Set(
            Status::False,
            NO_FINDINGS,
            "no copy on this backend is known to be corrupt or missing".into(),
        ),
        (0, missing) => Cell::Set(
            Status::True,
            MISSING_OBJECTS,
            format!("{missing} copies on this backend are missing"),
        ),
        (corrupt, missing) => Cell::Set(
            Status::True,
            CORRUPT_OBJECTS,
            format!("{corrupt} copies on this backend hold other bytes than their digest; {missing} are missing"),
        ),
    }
}

/// Records the validation in the status fields and returns the counters after it.
fn fold_counters(
    status: &mut StorageBackendStatus,
    outcome: &Outcome,
    (successes, failures): (i32, i32),
    f: &Facts<'_>,
) -> (i32, i32) {
    status.last_validation_time = Some(f.now.clone());
    let after = match outcome {
        Outcome::Success => {
            status.last_successful_validation_time = Some(f.now.clone());
            (successes.saturating_add(1), 0)
        }
        Outcome::ProbeFailed(_) | Outcome::ConfigError(_) => (0, failures.saturating_add(1)),
    };
    (status.consecutive_successes, status.consecutive_failures) = after;
    after
}

fn apply(conditions: &mut Vec<Condition>, type_: &'static str, cell: &Cell, f: &Facts<'_>) {
    let present = condition::find(conditions, type_).is_some();
    let (status, reason, message) = match cell {
        Cell::Set(s, r, m) => (*s, *r, m.clone()),
        Cell::SetIfAbsent(_, _, _) if present && !f.inputs_changed => return,
        Cell::SetIfAbsent(s, r, m) => (*s, *r, m.clone()),
        Cell::KeepOrUnknown(_) if present && !f.inputs_changed => return,
        Cell::KeepOrUnknown(why) => (
            Status::Unknown,
            *why,
            format!("not proven by the last validation ({why})"),
        ),
    };
    condition::set(
        conditions,
        Desired {
            type_,
            status,
            reason,
            message,
            observed_generation: f.generation,
        },
        &f.now,
    );
}

/// The Normal event of a backend becoming Ready, and the Warning of one failing (or failing for
/// another reason than before), with the redacted detail.
fn readiness_events(
    previous: Option<&Condition>,
    next: Option<&Condition>,
    outcome: Option<&Outcome>,
) -> Vec<EventNote> {
    let was_ready = previous.is_some_and(|c| c.status == Status::True.as_str());
    let is_ready = next.is_some_and(|c| c.status == Status::True.as_str());
    let mut events = Vec::new();
    if is_ready && !was_ready {
        events.push(EventNote {
            type_: EventType::Normal,
            reason: BackendReason::Validated.as_str(),
            action: "Validate",
            note: "the backend is Ready".to_owned(),
        });
    }
    let failure = match outcome {
        Some(Outcome::ProbeFailed(f) | Outcome::ConfigError(f)) => f,
        _ => return events,
    };
    let newly_failed = next.is_some_and(|n| {
        n.status == Status::False.as_str()
            && n.reason == failure.reason.as_str()
            && previous.is_none_or(|p| p.status != Status::False.as_str() || p.reason != n.reason)
    });
    if newly_failed {
        events.push(EventNote {
            type_: EventType::Warning,
            reason: failure.reason.as_str(),
            action: "Validate",
            note: failure.detail.clone(),
        });
    }
    events
}

/// A `DefaultConflict` or `FallbackConflict` condition.
struct Conflict<'a> {
    type_: &'static str,
    why: &'static str,
    role: &'static str,
    others: &'a [String],
}

impl Conflict<'_> {
    /// Sets the condition (True naming the others, False once resolved, absent when there never
    /// was a conflict) and returns the Warning to emit when the conflict appears or changes.
    fn apply(
        &self,
        conditions: &mut Vec<Condition>,
        previous: &[Condition],
        f: &Facts<'_>,
    ) -> Option<EventNote> {
        let mut others = self.others.to_vec();
        others.sort();
        others.dedup();
        let role = self.role;
        if others.is_empty() {
            if condition::find(conditions, self.type_).is_some() {
                let cell = Cell::Set(
                    Status::False,
                    NO_CONFLICT,
                    format!("no other {role} backend in this namespace"),
                );
                apply(conditions, self.type_, &cell, f);
            }
            return None;
        }
        let names = others.join(", ");
        let message = format!("other {role} backends in this namespace: {names}");
        let before = condition::find(previous, self.type_);
        let event = before
            .is_none_or(|c| c.status != Status::True.as_str() || c.message != message)
            .then(|| EventNote {
                type_: EventType::Warning,
                reason: self.type_,
                action: "Validate",
                note: format!(
                    "more than one backend of this namespace has {role}: true ({names}); the operator does not choose, fix the specs"
                ),
            });
        apply(
            conditions,
            self.type_,
            &Cell::Set(Status::True, self.why, message),
            f,
        );
        event
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> Time {
        Time(k8s_openapi::jiff::Timestamp::from_second(1_800_000_000 + secs).unwrap())
    }

    fn thresholds(success: i32, failure: i32) -> Thresholds {
        Thresholds { success, failure }
    }

    fn probe_failed(why: BackendReason) -> Outcome {
        Outcome::ProbeFailed(Failure {
            reason: why,
            message: why.summary().to_owned(),
            detail: format!("HTTP 403 {why}: detail"),
        })
    }

    fn config_error(why: BackendReason) -> Outcome {
        Outcome::ConfigError(Failure {
            reason: why,
            message: format!("Secret \"creds\": {why}"),
            detail: format!("Secret \"creds\": {why}"),
        })
    }

    fn facts<'a>(
        previous: Option<&'a StorageBackendStatus>,
        outcome: Option<&'a Outcome>,
        now: i64,
    ) -> Facts<'a> {
        Facts {
            generation: Some(1),
            previous,
            inputs_changed: false,
            outcome,
            thresholds: thresholds(2, 3),
            location: "http://127.0.0.1:9000|bucket|cas".to_owned(),
            mappings: MappingCounts {
                serving: 3,
                stranded: 1,
            },
            integrity: Integrity::default(),
            other_defaults: vec![],
            other_fallbacks: vec![],
            now: at(now),
        }
    }

    /// Folds a sequence of outcomes through `decide`, one per 10 s, starting from nothing.
    fn run(outcomes: &[Outcome], t: Thresholds) -> Vec<Decision> {
        let mut status: Option<StorageBackendStatus> = None;
        let mut out = Vec::new();
        for (i, o) in outcomes.iter().enumerate() {
            let mut f = facts(status.as_ref(), Some(o), 10 * i as i64);
            f.thresholds = t;
            let d = decide(&f);
            status = Some(d.status.clone());
            out.push(d);
        }
        out
    }

    fn get<'s>(status: &'s StorageBackendStatus, type_: &str) -> (&'s str, &'s str) {
        let c = condition::find(&status.conditions, type_)
            .unwrap_or_else(|| panic!("no {type_} condition"));
        (c.status.as_str(), c.reason.as_str())
    }

    fn ready(d: &Decision) -> (&str, &str) {
        get(&d.status, cond::READY)
    }

    fn stalled(d: &Decision) -> (&str, &str) {
        get(&d.status, cond::STALLED)
    }

    use Outcome::Success;

    #[test]
    fn readiness_follows_thresholds_and_hysteresis() {
        let ok = || Success;
        let timeout = || probe_failed(BackendReason::Timeout);
        let bad_key = || probe_failed(BackendReason::InvalidAccessKeyId);
        let no_bucket = || probe_failed(BackendReason::NoSuchBucket);
        let no_secret = || config_error(BackendReason::SecretNotFound);
        // (sentence, outcomes, thresholds (success, failure), Ready after each step)
        type Case = (
            &'static str,
            Vec<Outcome>,
            Thresholds,
            Vec<(&'static str, &'static str)>,
        );
        let cases: Vec<Case> = vec![
            (
                "a brand-new backend is Ready on its first good probe",
                vec![ok()],
                thresholds(3, 1),
                vec![("True", "Validated")],
            ),
            (
                "a Ready backend stays Ready through transient failures below the failure threshold",
                vec![ok(), timeout(), timeout(), ok()],
                thresholds(2, 3),
                vec![("True", "Validated"), ("True", "Validated"), ("True", "Validated"), ("True", "Validated")],
            ),
            (
                "a Ready backend turns not Ready when transient failures reach the failure threshold",
                vec![ok(), timeout(), timeout()],
                thresholds(2, 2),
                vec![("True", "Validated"), ("True", "Validated"), ("False", "Timeout")],
            ),
            (
                "a failure threshold of one fails a Ready backend on the first transient failure",
                vec![ok(), probe_failed(BackendReason::ServerError)],
                thresholds(2, 1),
                vec![("True", "Validated"), ("False", "ServerError")],
            ),
            (
                "an auth failure fails a Ready backend at once whatever the failure threshold",
                vec![ok(), bad_key()],
                thresholds(2, 5),
                vec![("True", "Validated"), ("False", "InvalidAccessKeyId")],
            ),
            (
                "a backend that failed at the server needs successThreshold good probes to be Ready again",
                vec![ok(), no_bucket(), ok(), ok()],
                thresholds(2, 1),
                vec![("True", "Validated"), ("False", "NoSuchBucket"), ("False", "Pending"), ("True", "Validated")],
            ),
            (
                "a flapping server that fails again before the threshold restarts the count",
                vec![no_bucket(), ok(), no_bucket(), ok(), ok(), ok()],
                thresholds(3, 1),
                vec![
                    ("False", "NoSuchBucket"),
                    ("False", "Pending"),
                    ("False", "NoSuchBucket"),
                    ("False", "Pending"),
                    ("False", "Pending"),
                    ("True", "Validated"),
                ],
            ),
            (
                "a first probe that times out leaves a new backend not Ready and later needs the threshold",
                vec![timeout(), ok(), ok()],
                thresholds(2, 3),
                vec![("False", "Timeout"), ("False", "Pending"), ("True", "Validated")],
            ),
            (
                "a backend applied before its Secret is Ready on the first good probe once the Secret exists",
                vec![no_secret(), ok()],
                thresholds(3, 1),
                vec![("False", "SecretNotFound"), ("True", "Validated")],
            ),
            (
                "a success threshold of one re-trusts on the first good probe",
                vec![ok(), bad_key(), ok()],
                thresholds(1, 1),
                vec![("True", "Validated"), ("False", "InvalidAccessKeyId"), ("True", "Validated")],
            ),
        ];
        for (name, outcomes, t, want) in cases {
            let got: Vec<(String, String)> = run(&outcomes, t)
                .iter()
                .map(|d| (ready(d).0.to_owned(), ready(d).1.to_owned()))
                .collect();
            let want: Vec<(String, String)> = want
                .iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect();
            assert_eq!(got, want, "{name}");
        }
    }

    #[test]
    fn stalled_marks_terminal_failures_only() {
        let cases: Vec<(&str, Vec<Outcome>, (&str, &str))> = vec![
            (
                "an unknown access key stalls the backend",
                vec![probe_failed(BackendReason::InvalidAccessKeyId)],
                ("True", "InvalidAccessKeyId"),
            ),
            (
                "a wrong secret stalls the backend",
                vec![probe_failed(BackendReason::SignatureDoesNotMatch)],
                ("True", "SignatureDoesNotMatch"),
            ),
            (
                "an expired token stalls the backend",
                vec![probe_failed(BackendReason::ExpiredToken)],
                ("True", "ExpiredToken"),
            ),
            (
                "access denied stalls the backend",
                vec![probe_failed(BackendReason::AccessDenied)],
                ("True", "AccessDenied"),
            ),
            (
                "a missing bucket stalls the backend",
                vec![probe_failed(BackendReason::NoSuchBucket)],
                ("True", "NoSuchBucket"),
            ),
            (
                "a missing Secret stalls the backend",
                vec![config_error(BackendReason::SecretNotFound)],
                ("True", "SecretNotFound"),
            ),
            (
                "a missing Secret key stalls the backend",
                vec![config_error(BackendReason::SecretKeyMissing)],
                ("True", "SecretKeyMissing"),
            ),
            (
                "an invalid spec stalls the backend",
                vec![config_error(BackendReason::InvalidSpec)],
                ("True", "InvalidSpec"),
            ),
            (
                "a timeout never stalls",
                vec![probe_failed(BackendReason::Timeout)],
                ("False", "Timeout"),
            ),
            (
                "throttling never stalls",
                vec![probe_failed(BackendReason::Throttled)],
                ("False", "Throttled"),
            ),
            (
                "an unreachable endpoint never stalls",
                vec![probe_failed(BackendReason::EndpointUnreachable)],
                ("False", "EndpointUnreachable"),
            ),
            (
                "a failed TLS handshake never stalls",
                vec![probe_failed(BackendReason::TlsHandshakeFailed)],
                ("False", "TLSHandshakeFailed"),
            ),
            (
                "a server error never stalls",
                vec![probe_failed(BackendReason::ServerError)],
                ("False", "ServerError"),
            ),
            (
                "a transient failure after a terminal one keeps the backend stalled",
                vec![
                    probe_failed(BackendReason::InvalidAccessKeyId),
                    probe_failed(BackendReason::Timeout),
                ],
                ("True", "InvalidAccessKeyId"),
            ),
            (
                "a good probe after a terminal failure clears Stalled",
                vec![probe_failed(BackendReason::InvalidAccessKeyId), Success],
                ("False", "Validated"),
            ),
        ];
        for (name, outcomes, want) in cases {
            let decisions = run(&outcomes, thresholds(2, 3));
            assert_eq!(stalled(decisions.last().unwrap()), want, "{name}");
        }
    }

    #[test]
    fn changed_inputs_restart_the_counters_and_clear_stalled() {
        let bad = probe_failed(BackendReason::InvalidAccessKeyId);
        let first = decide(&facts(None, Some(&bad), 0));
        assert_eq!(first.status.consecutive_failures, 1);
        let again = decide(&facts(Some(&first.status), Some(&bad), 10));
        assert_eq!(
            again.status.consecutive_failures, 2,
            "the same inputs keep counting"
        );

        let timeout = probe_failed(BackendReason::Timeout);
        let mut f = facts(Some(&again.status), Some(&timeout), 20);
        f.inputs_changed = true;
        f.generation = Some(2);
        let rotated = decide(&f);
        assert_eq!(
            rotated.status.consecutive_failures, 1,
            "a rotated Secret restarts the count"
        );
        assert_eq!(
            stalled(&rotated),
            ("False", "Timeout"),
            "new inputs are no longer known to be bad"
        );
        assert_eq!(
            get(&rotated.status, cond::CREDENTIALS_VALID),
            ("Unknown", "Timeout"),
            "a timeout proves nothing about the new credentials"
        );

        let ok = Success;
        let mut f = facts(Some(&again.status), Some(&ok), 20);
        f.inputs_changed = true;
        let fixed = decide(&f);
        assert_eq!(fixed.status.consecutive_successes, 1);
        assert_eq!(fixed.status.consecutive_failures, 0);
    }

    #[test]
    fn credentials_and_reachability_follow_what_the_outcome_proves() {
        // (sentence, previous outcome, outcome, inputs changed, CredentialsValid, Reachable)
        type Case = (
            &'static str,
            Option<Outcome>,
            Outcome,
            bool,
            (&'static str, &'static str),
            (&'static str, &'static str),
        );
        let cases: Vec<Case> = vec![
            (
                "a good probe proves both",
                None,
                Success,
                false,
                ("True", "Validated"),
                ("True", "Validated"),
            ),
            (
                "an unknown key proves the endpoint reachable and the credentials invalid",
                None,
                probe_failed(BackendReason::InvalidAccessKeyId),
                false,
                ("False", "InvalidAccessKeyId"),
                ("True", "InvalidAccessKeyId"),
            ),
            (
                "a timeout keeps what was known about the credentials",
                Some(Success),
                probe_failed(BackendReason::Timeout),
                false,
                ("True", "Validated"),
                ("False", "Timeout"),
            ),
            (
                "a timeout on a new backend leaves the credentials unknown",
                None,
                probe_failed(BackendReason::Timeout),
                false,
                ("Unknown", "Timeout"),
                ("False", "Timeout"),
            ),
            (
                "a refused connection proves nothing about credentials",
                Some(probe_failed(BackendReason::SignatureDoesNotMatch)),
                probe_failed(BackendReason::EndpointUnreachable),
                false,
                ("False", "SignatureDoesNotMatch"),
                ("False", "EndpointUnreachable"),
            ),
            (
                "a server error proves the endpoint reachable",
                None,
                probe_failed(BackendReason::ServerError),
                false,
                ("Unknown", "ServerError"),
                ("True", "ServerError"),
            ),
            (
                "a missing bucket proves the endpoint reachable but not the credentials",
                None,
                probe_failed(BackendReason::NoSuchBucket),
                false,
                ("Unknown", "NoSuchBucket"),
                ("True", "NoSuchBucket"),
            ),
            (
                "a missing Secret makes the credentials invalid and says nothing of the endpoint",
                Some(Success),
                config_error(BackendReason::SecretNotFound),
                false,
                ("False", "SecretNotFound"),
                ("True", "Validated"),
            ),
            (
                "a missing Secret after an input change leaves reachability unknown",
                Some(Success),
                config_error(BackendReason::SecretNotFound),
                true,
                ("False", "SecretNotFound"),
                ("Unknown", "SecretNotFound"),
            ),
            (
                "an invalid spec proves nothing about either",
                None,
                config_error(BackendReason::InvalidSpec),
                false,
                ("Unknown", "InvalidSpec"),
                ("Unknown", "InvalidSpec"),
            ),
        ];
        for (name, before, outcome, changed, creds, reach) in cases {
            let previous = before.map(|b| decide(&facts(None, Some(&b), 0)).status);
            let mut f = facts(previous.as_ref(), Some(&outcome), 10);
            f.inputs_changed = changed;
            let d = decide(&f);
            assert_eq!(
                get(&d.status, cond::CREDENTIALS_VALID),
                creds,
                "{name}: CredentialsValid"
            );
            assert_eq!(get(&d.status, cond::REACHABLE), reach, "{name}: Reachable");
        }
    }

    #[test]
    fn status_fields_record_the_validation() {
        let ok = Success;
        let bad = probe_failed(BackendReason::Timeout);
        let first = decide(&facts(None, Some(&ok), 0));
        let s = &first.status;
        assert_eq!(
            s.observed_generation,
            Some(1),
            "the observed generation is recorded"
        );
        assert_eq!(s.last_validation_time, Some(at(0)));
        assert_eq!(s.last_successful_validation_time, Some(at(0)));
        assert_eq!(
            s.location.as_deref(),
            Some("http://127.0.0.1:9000|bucket|cas")
        );
        assert_eq!(
            s.mappings,
            Some(MappingCounts {
                serving: 3,
                stranded: 1
            })
        );
        for c in &s.conditions {
            assert_eq!(
                c.observed_generation,
                Some(1),
                "{} carries the observed generation",
                c.type_
            );
        }

        let second = decide(&facts(Some(s), Some(&bad), 10));
        assert_eq!(
            second.status.last_validation_time,
            Some(at(10)),
            "a failed validation is a validation"
        );
        assert_eq!(
            second.status.last_successful_validation_time,
            Some(at(0)),
            "a failed validation keeps the last successful time"
        );
        let ready = condition::find(&second.status.conditions, cond::READY).unwrap();
        assert_eq!(
            ready.last_transition_time,
            at(0),
            "a tolerated failure does not move the transition time"
        );
        for c in &second.status.conditions {
            assert!(
                !c.message.contains("HTTP"),
                "condition messages carry no server text: {}",
                c.message
            );
        }
    }

    #[test]
    fn a_decision_without_a_probe_changes_nothing_but_counts() {
        let ok = Success;
        let first = decide(&facts(None, Some(&ok), 0));
        let again = decide(&facts(Some(&first.status), None, 30));
        assert_eq!(again.status, first.status, "nothing new, nothing different");
        assert!(again.events.is_empty(), "nothing new, no event");

        let mut f = facts(Some(&first.status), None, 30);
        f.mappings = MappingCounts {
            serving: 4,
            stranded: 0,
        };
        let counted = decide(&f);
        assert_eq!(
            counted.status.mappings,
            Some(MappingCounts {
                serving: 4,
                stranded: 0
            })
        );
        assert_eq!(
            counted.status.last_validation_time,
            first.status.last_validation_time
        );

        let fresh = decide(&facts(None, None, 0));
        assert_eq!(
            ready(&fresh),
            ("Unknown", "Pending"),
            "a backend not yet probed is pending"
        );
    }

    #[test]
    fn events_are_emitted_on_transitions_only() {
        let ok = Success;
        let bad = probe_failed(BackendReason::InvalidAccessKeyId);
        let denied = probe_failed(BackendReason::AccessDenied);
        let timeout = probe_failed(BackendReason::Timeout);
        let kinds = |d: &Decision| -> Vec<(EventType, String)> {
            d.events
                .iter()
                .map(|e| (e.type_, e.reason.to_string()))
                .collect()
        };
        type Case<'o> = (&'static str, Vec<&'o Outcome>, Vec<(EventType, String)>);
        let cases: Vec<Case<'_>> = vec![
            (
                "the first good probe announces readiness",
                vec![&ok],
                vec![(EventType::Normal, "Validated".into())],
            ),
            ("a second good probe is silent", vec![&ok, &ok], vec![]),
            (
                "a failure of a Ready backend warns",
                vec![&ok, &bad],
                vec![(EventType::Warning, "InvalidAccessKeyId".into())],
            ),
            (
                "the same failure again is silent",
                vec![&ok, &bad, &bad],
                vec![],
            ),
            (
                "a different failure reason warns again",
                vec![&bad, &denied],
                vec![(EventType::Warning, "AccessDenied".into())],
            ),
            (
                "a tolerated transient failure is silent",
                vec![&ok, &timeout],
                vec![],
            ),
            (
                "a recovery is announced",
                vec![&bad, &ok, &ok],
                vec![(EventType::Normal, "Validated".into())],
            ),
            ("a pending recovery step is silent", vec![&bad, &ok], vec![]),
        ];
        for (name, outcomes, want) in cases {
            let mut status: Option<StorageBackendStatus> = None;
            let mut last = None;
            for (i, o) in outcomes.iter().enumerate() {
                let d = decide(&facts(status.as_ref(), Some(*o), 10 * i as i64));
                status = Some(d.status.clone());
                last = Some(d);
            }
            assert_eq!(kinds(&last.unwrap()), want, "{name}");
        }
        let d = decide(&facts(None, Some(&bad), 0));
        assert_eq!(
            d.events[0].note, "HTTP 403 InvalidAccessKeyId: detail",
            "the warning carries the redacted detail"
        );
    }

    #[test]
    fn duplicate_defaults_and_fallbacks_are_reported_never_fixed() {
        let ok = Success;
        let mut f = facts(None, Some(&ok), 0);
        f.other_defaults = vec!["zeta".into(), "alpha".into()];
        let d = decide(&f);
        let c = condition::find(&d.status.conditions, DEFAULT_CONFLICT)
            .expect("a default conflict is reported");
        assert_eq!(
            (c.status.as_str(), c.reason.as_str()),
            ("True", MULTIPLE_DEFAULTS)
        );
        assert_eq!(
            c.message, "other default backends in this namespace: alpha, zeta",
            "the others are named, sorted"
        );
        assert_eq!(
            ready(&d),
            ("True", "Validated"),
            "a conflict does not change readiness"
        );
        assert!(
            d.events
                .iter()
                .any(|e| e.type_ == EventType::Warning && e.reason == DEFAULT_CONFLICT),
            "a conflict warns"
        );

        let mut again = facts(Some(&d.status), None, 10);
        again.other_defaults = vec!["alpha".into(), "zeta".into()];
        let d2 = decide(&again);
        assert!(
            d2.events.is_empty(),
            "an unchanged conflict does not warn again"
        );
        assert_eq!(d2.status, d.status);

        let mut grown = facts(Some(&d.status), None, 10);
        grown.other_defaults = vec!["alpha".into(), "beta".into(), "zeta".into()];
        assert_eq!(
            decide(&grown).events.len(),
            1,
            "a new member of the conflict warns"
        );

        let resolved = decide(&facts(Some(&d.status), None, 20));
        let c = condition::find(&resolved.status.conditions, DEFAULT_CONFLICT).unwrap();
        assert_eq!(
            (c.status.as_str(), c.reason.as_str()),
            ("False", NO_CONFLICT),
            "a resolved conflict turns False"
        );

        let plain = decide(&facts(None, Some(&ok), 0));
        assert!(
            condition::find(&plain.status.conditions, DEFAULT_CONFLICT).is_none(),
            "a backend that never conflicted carries no conflict condition"
        );

        let mut fb = facts(None, Some(&ok), 0);
        fb.other_fallbacks = vec!["other".into()];
        let d = decide(&fb);
        let c = condition::find(&d.status.conditions, FALLBACK_CONFLICT)
            .expect("a fallback conflict is reported");
        assert_eq!(
            (c.status.as_str(), c.reason.as_str()),
            ("True", MULTIPLE_FALLBACKS)
        );
    }

    #[test]
    fn the_readiness_flag_matches_the_ready_condition() {
        let ok = Success;
        let bad = probe_failed(BackendReason::NoSuchBucket);
        assert!(decide(&facts(None, Some(&ok), 0)).ready);
        assert!(!decide(&facts(None, Some(&bad), 0)).ready);
        assert!(!decide(&facts(None, None, 0)).ready);
    }

    #[test]
    fn each_reason_sets_what_it_proves() {
        use BackendReason::*;
        let t = thresholds(2, 3);
        let cell = |c: &Cell| match c {
            Cell::Set(s, r, _) => format!("{}:{r}", s.as_str()),
            Cell::SetIfAbsent(s, r, _) => format!("{}:{r} if absent", s.as_str()),
            Cell::KeepOrUnknown(_) => "keep".to_owned(),
        };
        // (sentence, outcome, [Ready, CredentialsValid, Reachable, Stalled]) for a backend that was
        // Ready, first failure, inputs unchanged.
        let cases = [
            (
                "a good probe proves everything",
                Success,
                [
                    "True:Validated",
                    "True:Validated",
                    "True:Validated",
                    "False:Validated",
                ],
            ),
            (
                "an unknown key fails at once and proves the endpoint answered",
                probe_failed(InvalidAccessKeyId),
                [
                    "False:InvalidAccessKeyId",
                    "False:InvalidAccessKeyId",
                    "True:InvalidAccessKeyId",
                    "True:InvalidAccessKeyId",
                ],
            ),
            (
                "a missing bucket proves nothing about the credentials",
                probe_failed(NoSuchBucket),
                [
                    "False:NoSuchBucket",
                    "keep",
                    "True:NoSuchBucket",
                    "True:NoSuchBucket",
                ],
            ),
            (
                "a tolerated timeout keeps Ready and says nobody answered",
                probe_failed(Timeout),
                [
                    "True:Validated",
                    "keep",
                    "False:Timeout",
                    "False:Timeout if absent",
                ],
            ),
            (
                "throttling is an answer from the server",
                probe_failed(Throttled),
                [
                    "True:Validated",
                    "keep",
                    "True:Throttled",
                    "False:Throttled if absent",
                ],
            ),
            (
                "a missing Secret sends nothing, so reachability is not proven",
                config_error(SecretNotFound),
                [
                    "False:SecretNotFound",
                    "False:SecretNotFound",
                    "keep",
                    "True:SecretNotFound",
                ],
            ),
            (
                "a spec the server rejects proves nothing about credentials or reachability",
                probe_failed(InvalidSpec),
                ["False:InvalidSpec", "keep", "keep", "True:InvalidSpec"],
            ),
        ];
        for (name, outcome, want) in cases {
            let failures = i32::from(!matches!(outcome, Success));
            let r = row(&outcome, true, false, (1 - failures, failures), t, false);
            let got = [
                cell(&r.ready),
                cell(&r.credentials_valid),
                cell(&r.reachable),
                cell(&r.stalled),
            ];
            assert_eq!(got, want.map(str::to_owned), "{name}");
        }
    }

    #[test]
    fn degraded_says_corrupt_before_missing_and_false_without_findings() {
        let cell = |corrupt, missing| match degraded(&Integrity {
            corrupt,
            missing,
            ..Integrity::default()
        }) {
            Cell::Set(status, reason, _) => (status, reason),
            other => panic!("{other:?}"),
        };
        assert_eq!(cell(0, 0), (Status::False, NO_FINDINGS));
        assert_eq!(cell(0, 2), (Status::True, MISSING_OBJECTS));
        assert_eq!(cell(1, 2), (Status::True, CORRUPT_OBJECTS));
    }
}
