//! The pure heart of the ArtifactMapping controller: which backend serves a mapping, and what
//! its status says about it.
//!
//! Owns: the placement rules of DESIGN "Mapping resolution and reassignment" — declared first,
//! then the sticky current backend, then verified candidates in a fixed order — and the status,
//! history and events that follow from a plan and the verification results.
//!
//! Must not: talk to a cluster or a bucket, read the clock, or log. Everything it needs arrives as
//! plain values ([`BackendFacts`], [`Attempt`], `now`), so every rule is a table test.

use std::cmp::Reverse;
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

use crate::api::backend::Trust;
use crate::api::condition::{self, Desired, Status};
use crate::api::mapping::{HistoryEntry, Reassignment, MAX_HISTORY};
use crate::api::reasons::{backend_condition, mapping_condition, mapping_reason};
use crate::api::{ArtifactMapping, ArtifactMappingStatus, StorageBackend};

/// What is known about the mapping's object on one backend.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ObjectFact {
    /// Nothing known yet (no HEAD, nothing cached).
    Unknown,
    /// HEAD found it, with this size.
    Present { size: u64 },
    /// HEAD found nothing under the key.
    Missing,
    /// Its bytes re-verified against the digest.
    Verified,
    /// Its bytes hash to something else: never served.
    Mismatch,
}

/// One backend of the mapping's namespace, as the decision sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BackendFacts {
    pub name: String,
    /// `Ready=True` on the backend.
    pub ready: bool,
    pub trust: Trust,
    /// The replication group: same location, same bytes.
    pub location: String,
    pub default: bool,
    pub fallback: bool,
    pub priority: i32,
    /// The mapping's object key on this backend.
    pub key: String,
    pub object: ObjectFact,
}

impl BackendFacts {
    /// Ready and not Quarantined: may serve and be a target.
    pub fn usable(&self) -> bool {
        self.ready && self.trust != Trust::Quarantined
    }
}

/// A backend's placement-relevant state, without any object facts. Two states that compare
/// equal place mappings identically, which is what the index uses to fan out only on real
/// transitions.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct BackendState {
    pub ready: bool,
    pub trust: Trust,
    pub location: String,
    pub default: bool,
    pub fallback: bool,
    pub priority: i32,
    pub key_prefix: String,
}

impl BackendState {
    /// The state of `backend` as the API object says it. A backend being deleted is not ready.
    pub fn of(backend: &StorageBackend) -> BackendState {
        let ready = backend.metadata.deletion_timestamp.is_none()
            && backend
                .status
                .as_ref()
                .is_some_and(|s| condition::is_true(&s.conditions, backend_condition::READY));
        BackendState {
            ready,
            trust: backend.spec.trust,
            location: location_of(backend),
            default: backend.spec.default,
            fallback: backend.spec.fallback,
            priority: backend.spec.priority,
            key_prefix: backend.spec.s3.key_prefix.clone().unwrap_or_default(),
        }
    }

    pub fn usable(&self) -> bool {
        self.ready && self.trust != Trust::Quarantined
    }
}

/// The replication group of a backend (the resolver's definition, so the verifier's sharing and
/// the candidate order agree with the backend controller).
pub fn location_of(backend: &StorageBackend) -> String {
    crate::resolve::location_of(backend)
}

/// A backend to try, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Candidate {
    pub backend: String,
    pub location: String,
    pub key: String,
    /// Already verified (cached): trying it costs no I/O.
    pub known_verified: bool,
}

/// Why the declared backend does not serve.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StrandedBy {
    /// `BackendMissing`, `BackendQuarantined`, `BackendInvalid`, `ObjectMissing`,
    /// `SizeMismatch` or `DigestMismatch`.
    pub reason: &'static str,
    pub message: String,
}

/// What to do with a mapping.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Plan {
    /// Rule 1: the declared backend is usable and holds the object.
    Declared { backend: String, key: String },
    /// Rule 2: the current backend is still usable and was verified.
    Keep {
        backend: String,
        key: String,
        stranded_by: StrandedBy,
    },
    /// Rule 3: stranded. Try `candidates` in order; empty with `reassignment: Never`.
    Stranded {
        by: StrandedBy,
        reassignment_disabled: bool,
        candidates: Vec<Candidate>,
    },
}

/// Decides where `mapping` is served from, given the backends of its namespace (and only of its
/// namespace) with what is known about the object on each.
pub fn decide(mapping: &ArtifactMapping, backends: &[BackendFacts]) -> Plan {
    let declared_name = &mapping.spec.backend_ref.name;
    let declared = backends.iter().find(|b| &b.name == declared_name);
    let want_size = mapping.spec.size.and_then(|s| u64::try_from(s).ok());

    // Rule 1: declared backend usable and the object present there.
    let by = match declared {
        None => StrandedBy {
            reason: mapping_reason::BACKEND_MISSING,
            message: format!("declared backend {declared_name} does not exist in this namespace"),
        },
        Some(d) if d.trust == Trust::Quarantined => StrandedBy {
            reason: mapping_reason::BACKEND_QUARANTINED,
            message: format!("declared backend {declared_name} is quarantined"),
        },
        Some(d) if !d.ready => StrandedBy {
            reason: mapping_reason::BACKEND_INVALID,
            message: format!("declared backend {declared_name} is not ready"),
        },
        Some(d) => match &d.object {
            ObjectFact::Verified => return serve_declared(d),
            ObjectFact::Present { size } if want_size.is_none_or(|w| w == *size) => {
                return serve_declared(d)
            }
            ObjectFact::Present { size } => StrandedBy {
                reason: mapping_reason::SIZE_MISMATCH,
                message: format!(
                    "object on declared backend {declared_name} has {size} bytes, expected {}",
                    want_size.unwrap_or_default()
                ),
            },
            ObjectFact::Mismatch => StrandedBy {
                reason: mapping_reason::DIGEST_MISMATCH,
                message: format!(
                    "object on declared backend {declared_name} does not match the digest"
                ),
            },
            ObjectFact::Missing | ObjectFact::Unknown => StrandedBy {
                reason: mapping_reason::OBJECT_MISSING,
                message: format!("object not found on declared backend {declared_name}"),
            },
        },
    };

    // Rule 2: stickiness — the current backend is still usable and was verified.
    let status = mapping.status.as_ref();
    let verified =
        status.is_some_and(|s| condition::is_true(&s.conditions, mapping_condition::VERIFIED));
    if let Some(current) = status.and_then(|s| s.backend.as_deref()) {
        if let Some(c) = backends.iter().find(|b| b.name == current) {
            let still_good = !matches!(c.object, ObjectFact::Missing | ObjectFact::Mismatch);
            if verified && c.usable() && still_good && current != declared_name {
                return Plan::Keep {
                    backend: c.name.clone(),
                    key: c.key.clone(),
                    stranded_by: by,
                };
            }
        }
    }

    // Rule 3: stranded; candidates in order unless reassignment is disabled.
    if mapping.spec.reassignment == Reassignment::Never {
        return Plan::Stranded {
            by,
            reassignment_disabled: true,
            candidates: Vec::new(),
        };
    }
    let home_location = declared.map(|d| d.location.as_str());
    let candidates = candidate_order(
        home_location,
        backends
            .iter()
            .filter(|b| &b.name != declared_name && b.usable())
            .filter(|b| match b.object {
                ObjectFact::Missing | ObjectFact::Mismatch => false,
                ObjectFact::Present { size } => want_size.is_none_or(|w| w == size),
                ObjectFact::Unknown | ObjectFact::Verified => true,
            }),
    );
    Plan::Stranded {
        by,
        reassignment_disabled: false,
        candidates: candidates
            .into_iter()
            .map(|b| Candidate {
                backend: b.name.clone(),
                location: b.location.clone(),
                key: b.key.clone(),
                known_verified: b.object == ObjectFact::Verified,
            })
            .collect(),
    }
}

/// The order in which backends are tried for a mapping that its declared backend does not serve:
/// same location as the declared backend (`home_location`) first, then `default`, then
/// `fallback`, then higher `priority`, then name. The reassignment decision above and clients
/// that fall back on their own (`castellan get`) share it, so both try replicas alike.
pub fn candidate_order<'a>(
    home_location: Option<&str>,
    backends: impl IntoIterator<Item = &'a BackendFacts>,
) -> Vec<&'a BackendFacts> {
    let mut ordered: Vec<&BackendFacts> = backends.into_iter().collect();
    ordered.sort_by_key(|b| {
        (
            Some(b.location.as_str()) != home_location,
            !b.default,
            !b.fallback,
            Reverse(b.priority),
            b.name.clone(),
        )
    });
    ordered
}

fn serve_declared(d: &BackendFacts) -> Plan {
    Plan::Declared {
        backend: d.name.clone(),
        key: d.key.clone(),
    }
}

/// What verifying one candidate gave.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AttemptResult {
    /// The bytes match the digest; `at` is when they were verified (possibly earlier, cached).
    Verified { at: Time },
    /// All bytes arrived and hash to `actual`.
    DigestMismatch { actual: String },
    /// The object has another size than declared.
    SizeMismatch { expected: u64, actual: u64 },
    /// No object under the key.
    Missing,
    /// Could not tell (truncated after retries, I/O, credentials): says nothing about the bytes.
    Failed { message: String },
}

/// One verified (or failed) candidate, in the order tried.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attempt {
    pub backend: String,
    pub result: AttemptResult,
}

/// Event severity, mirroring kube's without depending on the recorder.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventKind {
    Normal,
    Warning,
}

/// An event to publish about the mapping.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventSpec {
    pub kind: EventKind,
    pub reason: &'static str,
    pub action: &'static str,
    pub note: String,
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
            Some(c) if c.status == "True" => {
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
    pub reason: &'static str,
}

/// The new status and what to tell the world about it.
#[derive(Clone, Debug, PartialEq)]
pub struct Outcome {
    pub status: ArtifactMappingStatus,
    pub events: Vec<EventSpec>,
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
    let mut status = old.clone();
    let generation = mapping.metadata.generation;
    let declared = mapping.spec.backend_ref.name.as_str();
    status.observed_generation = generation;
    status.short_digest = Some(short_digest(&mapping.spec.digest));
    let mut events = Vec::new();

    for attempt in attempts {
        match &attempt.result {
            AttemptResult::DigestMismatch { actual } => events.push(EventSpec {
                kind: EventKind::Warning,
                reason: mapping_reason::DIGEST_MISMATCH,
                action: "Verify",
                note: format!(
                    "replica on backend {} hashes to {actual}, expected {}; it will not be served",
                    attempt.backend, mapping.spec.digest
                ),
            }),
            AttemptResult::SizeMismatch { expected, actual } => events.push(EventSpec {
                kind: EventKind::Warning,
                reason: mapping_reason::SIZE_MISMATCH,
                action: "Verify",
                note: format!(
                    "replica on backend {} has {actual} bytes, expected {expected}; it will not be served",
                    attempt.backend
                ),
            }),
            _ => {}
        }
    }

    let set = |conditions: &mut Vec<Condition>,
               type_: &'static str,
               s: Status,
               reason: &'static str,
               message: String| {
        condition::set(
            conditions,
            Desired {
                type_,
                status: s,
                reason,
                message,
                observed_generation: generation,
            },
            now,
        )
    };
    let old_ready = condition::find(&old.conditions, mapping_condition::READY);

    let (state, serving) = match plan {
        Plan::Declared { backend, key } => {
            status.backend = Some(backend.clone());
            status.key = Some(key.clone());
            status.last_verified_time = None;
            let c = &mut status.conditions;
            set(
                c,
                mapping_condition::READY,
                Status::True,
                mapping_reason::DECLARED,
                format!("served by its declared backend {backend}"),
            );
            set(
                c,
                mapping_condition::STRANDED,
                Status::False,
                mapping_reason::NOT_STRANDED,
                format!("declared backend {backend} holds the object"),
            );
            set(
                c,
                mapping_condition::VERIFIED,
                Status::Unknown,
                mapping_reason::DECLARED,
                "served by its declared backend without re-verification".to_string(),
            );
            set(
                c,
                mapping_condition::REASSIGNED,
                Status::False,
                mapping_reason::NOT_REASSIGNED,
                format!("served by its declared backend {backend}"),
            );
            (
                MappingState::Declared,
                Some((backend.clone(), mapping_reason::DECLARED)),
            )
        }
        Plan::Keep {
            backend,
            key,
            stranded_by,
        } => {
            status.backend = Some(backend.clone());
            status.key = Some(key.clone());
            // Keep the reason a move wrote (DigestVerified): re-runs must not rewrite it.
            let reason = match old_ready {
                Some(c)
                    if c.status == "True" && old.backend.as_deref() == Some(backend.as_str()) =>
                {
                    if c.reason == mapping_reason::STICKY {
                        mapping_reason::STICKY
                    } else {
                        mapping_reason::DIGEST_VERIFIED
                    }
                }
                _ => mapping_reason::STICKY,
            };
            let c = &mut status.conditions;
            set(
                c,
                mapping_condition::READY,
                Status::True,
                reason,
                format!("served by verified backend {backend}"),
            );
            set(
                c,
                mapping_condition::STRANDED,
                Status::False,
                mapping_reason::NOT_STRANDED,
                format!("served by verified backend {backend}"),
            );
            if !condition::is_true(c, mapping_condition::VERIFIED) {
                set(
                    c,
                    mapping_condition::VERIFIED,
                    Status::True,
                    mapping_reason::DIGEST_VERIFIED,
                    format!("bytes on {backend} match the digest"),
                );
            }
            set(
                c,
                mapping_condition::REASSIGNED,
                Status::True,
                mapping_reason::DIGEST_VERIFIED,
                format!("served by {backend}: {}", stranded_by.message),
            );
            (MappingState::Reassigned, None)
        }
        Plan::Stranded {
            by,
            reassignment_disabled,
            ..
        } => {
            let verified = attempts.iter().find_map(|a| match &a.result {
                AttemptResult::Verified { at } => Some((a.backend.clone(), at.clone())),
                _ => None,
            });
            let key_of = |name: &str| match plan {
                Plan::Stranded { candidates, .. } => candidates
                    .iter()
                    .find(|c| c.backend == name)
                    .map(|c| c.key.clone()),
                _ => None,
            };
            match verified {
                Some((backend, at)) => {
                    status.backend = Some(backend.clone());
                    status.key = key_of(&backend);
                    status.last_verified_time = Some(at);
                    let c = &mut status.conditions;
                    set(
                        c,
                        mapping_condition::READY,
                        Status::True,
                        mapping_reason::DIGEST_VERIFIED,
                        format!("served by verified backend {backend}"),
                    );
                    set(
                        c,
                        mapping_condition::STRANDED,
                        Status::False,
                        mapping_reason::NOT_STRANDED,
                        format!("served by verified backend {backend}"),
                    );
                    set(
                        c,
                        mapping_condition::VERIFIED,
                        Status::True,
                        mapping_reason::DIGEST_VERIFIED,
                        format!("bytes on {backend} match the digest"),
                    );
                    set(
                        c,
                        mapping_condition::REASSIGNED,
                        Status::True,
                        mapping_reason::DIGEST_VERIFIED,
                        format!("served by {backend}: {}", by.message),
                    );
                    (
                        MappingState::Reassigned,
                        Some((backend, mapping_reason::DIGEST_VERIFIED)),
                    )
                }
                None => {
                    let (ready_reason, ready_message) = if *reassignment_disabled {
                        (
                            mapping_reason::REASSIGNMENT_DISABLED,
                            format!("{}; reassignment is disabled", by.message),
                        )
                    } else {
                        (
                            mapping_reason::NO_VERIFIED_REPLICA,
                            format!("{}; no other backend holds a verified replica", by.message),
                        )
                    };
                    status.backend = None;
                    status.key = None;
                    status.last_verified_time = None;
                    let c = &mut status.conditions;
                    set(
                        c,
                        mapping_condition::READY,
                        Status::False,
                        ready_reason,
                        ready_message.clone(),
                    );
                    set(
                        c,
                        mapping_condition::STRANDED,
                        Status::True,
                        by.reason,
                        by.message.clone(),
                    );
                    set(
                        c,
                        mapping_condition::VERIFIED,
                        Status::False,
                        ready_reason,
                        ready_message,
                    );
                    set(
                        c,
                        mapping_condition::REASSIGNED,
                        Status::False,
                        mapping_reason::NOT_REASSIGNED,
                        "not served by any backend".to_string(),
                    );
                    (MappingState::Stranded, None)
                }
            }
        }
    };

    // One history entry and one event per actual move; a re-run finds the backend unchanged.
    let mut moved = None;
    if let Some((to, reason)) = serving {
        let from = old.backend.clone();
        let first_home = from.is_none() && to == declared && old.history.is_empty();
        if from.as_deref() != Some(to.as_str()) && !first_home {
            let from = from.or_else(|| (to != declared).then(|| declared.to_string()));
            status.history.push(HistoryEntry {
                from: from.clone(),
                to: to.clone(),
                at: now.clone(),
                reason: reason.to_string(),
            });
            let excess = status.history.len().saturating_sub(MAX_HISTORY);
            status.history.drain(..excess);
            let (action, note) = if to == declared {
                (
                    "ReturnHome",
                    format!("returned to its declared backend {to}"),
                )
            } else {
                (
                    "Reassign",
                    format!(
                        "now served by {to} after its bytes re-verified against {}",
                        mapping.spec.digest
                    ),
                )
            };
            events.push(EventSpec {
                kind: EventKind::Normal,
                reason,
                action,
                note: match &from {
                    Some(f) => format!("{note} (was {f})"),
                    None => note,
                },
            });
            moved = Some(Move { from, to, reason });
        }
    }

    Outcome {
        status,
        events,
        state,
        moved,
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
    if ready.status == "True" || ready.reason == mapping_reason::REASSIGNMENT_DISABLED {
        return None;
    }
    let since = now.0.duration_since(ready.last_transition_time.0);
    let waited = Duration::try_from(since).unwrap_or_default();
    Some(waited.clamp(min, max.max(min)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::mapping::{ArtifactMappingSpec, BackendRef};
    use k8s_openapi::jiff::Timestamp;

    const DIGEST: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn at(secs: i64) -> Time {
        Time(Timestamp::from_second(secs).unwrap())
    }

    fn mapping(declared: &str) -> ArtifactMapping {
        let mut m = ArtifactMapping::new(
            "sha256-0123",
            ArtifactMappingSpec {
                digest: DIGEST.into(),
                size: Some(100),
                backend_ref: BackendRef {
                    name: declared.into(),
                },
                key: None,
                reassignment: Reassignment::Auto,
            },
        );
        m.metadata.namespace = Some("org".into());
        m.metadata.generation = Some(1);
        m
    }

    fn never(mut m: ArtifactMapping) -> ArtifactMapping {
        m.spec.reassignment = Reassignment::Never;
        m
    }

    /// A mapping whose status says it is served by `backend` after verification.
    fn served_by(mut m: ArtifactMapping, backend: &str) -> ArtifactMapping {
        let plan = Plan::Stranded {
            by: StrandedBy {
                reason: mapping_reason::BACKEND_INVALID,
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
        let o = outcome(
            &m,
            &plan,
            &[Attempt {
                backend: backend.into(),
                result: AttemptResult::Verified { at: at(5) },
            }],
            &at(5),
        );
        m.status = Some(o.status);
        m
    }

    fn b(name: &str) -> BackendFacts {
        BackendFacts {
            name: name.into(),
            ready: true,
            trust: Trust::Trusted,
            location: format!("loc-{name}"),
            default: false,
            fallback: false,
            priority: 0,
            key: format!("{name}/key"),
            object: ObjectFact::Unknown,
        }
    }

    fn present(mut f: BackendFacts) -> BackendFacts {
        f.object = ObjectFact::Present { size: 100 };
        f
    }
    fn with(mut f: BackendFacts, object: ObjectFact) -> BackendFacts {
        f.object = object;
        f
    }
    fn not_ready(mut f: BackendFacts) -> BackendFacts {
        f.ready = false;
        f
    }
    fn trust(mut f: BackendFacts, t: Trust) -> BackendFacts {
        f.trust = t;
        f
    }
    fn located(mut f: BackendFacts, l: &str) -> BackendFacts {
        f.location = l.into();
        f
    }
    fn default(mut f: BackendFacts) -> BackendFacts {
        f.default = true;
        f
    }
    fn fallback(mut f: BackendFacts) -> BackendFacts {
        f.fallback = true;
        f
    }
    fn priority(mut f: BackendFacts, p: i32) -> BackendFacts {
        f.priority = p;
        f
    }

    /// What a plan boils down to in a table: the rule and the backends in play.
    #[derive(Debug, PartialEq)]
    enum Want {
        Declared(&'static str),
        Keep(&'static str),
        Stranded(&'static str, Vec<&'static str>),
        Disabled(&'static str),
    }

    fn summary(plan: &Plan) -> Want {
        let leak = |s: &str| -> &'static str { Box::leak(s.to_string().into_boxed_str()) };
        match plan {
            Plan::Declared { backend, .. } => Want::Declared(leak(backend)),
            Plan::Keep { backend, .. } => Want::Keep(leak(backend)),
            Plan::Stranded {
                by,
                reassignment_disabled: true,
                candidates,
            } => {
                assert!(
                    candidates.is_empty(),
                    "reassignment Never has no candidates"
                );
                Want::Disabled(by.reason)
            }
            Plan::Stranded { by, candidates, .. } => Want::Stranded(
                by.reason,
                candidates.iter().map(|c| leak(&c.backend)).collect(),
            ),
        }
    }

    #[test]
    fn placement_follows_the_rules_in_order() {
        use mapping_reason::*;
        let cases: Vec<(&str, ArtifactMapping, Vec<BackendFacts>, Want)> = vec![
            (
                "a usable declared backend holding the object serves it",
                mapping("a"),
                vec![present(b("a")), present(b("b"))],
                Want::Declared("a"),
            ),
            (
                "a read-only declared backend still serves",
                mapping("a"),
                vec![trust(present(b("a")), Trust::ReadOnly)],
                Want::Declared("a"),
            ),
            (
                "a declared backend whose object has another size does not serve",
                mapping("a"),
                vec![with(b("a"), ObjectFact::Present { size: 7 }), b("b")],
                Want::Stranded(SIZE_MISMATCH, vec!["b"]),
            ),
            (
                "an unusable declared backend keeps the current verified backend",
                served_by(mapping("a"), "b"),
                vec![not_ready(present(b("a"))), b("b"), default(b("c"))],
                Want::Keep("b"),
            ),
            (
                "a current backend that is no longer usable is not kept",
                served_by(mapping("a"), "b"),
                vec![not_ready(b("a")), not_ready(b("b")), b("c")],
                Want::Stranded(BACKEND_INVALID, vec!["c"]),
            ),
            (
                "a current backend found corrupt is not kept",
                served_by(mapping("a"), "b"),
                vec![
                    not_ready(b("a")),
                    with(b("b"), ObjectFact::Mismatch),
                    b("c"),
                ],
                Want::Stranded(BACKEND_INVALID, vec!["c"]),
            ),
            (
                "a mapping returns home once its declared backend is usable again",
                served_by(mapping("a"), "b"),
                vec![present(b("a")), b("b")],
                Want::Declared("a"),
            ),
            (
                "a missing declared backend strands with BackendMissing",
                mapping("gone"),
                vec![b("b")],
                Want::Stranded(BACKEND_MISSING, vec!["b"]),
            ),
            (
                "a declared backend without the object strands with ObjectMissing",
                mapping("a"),
                vec![with(b("a"), ObjectFact::Missing), b("b")],
                Want::Stranded(OBJECT_MISSING, vec!["b"]),
            ),
            (
                "a quarantined declared backend strands what it serves",
                served_by(mapping("a"), "a"),
                vec![trust(present(b("a")), Trust::Quarantined), b("b")],
                Want::Stranded(BACKEND_QUARANTINED, vec!["b"]),
            ),
            (
                "a quarantined backend is never a candidate",
                mapping("a"),
                vec![
                    not_ready(b("a")),
                    trust(default(b("q")), Trust::Quarantined),
                    b("z"),
                ],
                Want::Stranded(BACKEND_INVALID, vec!["z"]),
            ),
            (
                "a quarantined current backend is not kept",
                served_by(mapping("a"), "q"),
                vec![not_ready(b("a")), trust(b("q"), Trust::Quarantined), b("z")],
                Want::Stranded(BACKEND_INVALID, vec!["z"]),
            ),
            (
                "a read-only backend may be a candidate",
                mapping("a"),
                vec![not_ready(b("a")), trust(b("r"), Trust::ReadOnly)],
                Want::Stranded(BACKEND_INVALID, vec!["r"]),
            ),
            (
                "an unready backend is never a candidate",
                mapping("a"),
                vec![not_ready(b("a")), not_ready(b("b")), b("c")],
                Want::Stranded(BACKEND_INVALID, vec!["c"]),
            ),
            (
                "candidates come same-location first, then default, fallback, priority and name",
                mapping("a"),
                vec![
                    not_ready(located(b("a"), "home")),
                    priority(b("p9"), 9),
                    b("n2"),
                    b("n1"),
                    fallback(b("fb")),
                    default(b("df")),
                    located(b("same"), "home"),
                    priority(b("p1"), 1),
                ],
                Want::Stranded(
                    BACKEND_INVALID,
                    vec!["same", "df", "fb", "p9", "p1", "n1", "n2"],
                ),
            ),
            (
                "a same-location backend beats a higher-priority default",
                mapping("a"),
                vec![
                    not_ready(located(b("a"), "home")),
                    priority(default(b("df")), 100),
                    located(b("same"), "home"),
                ],
                Want::Stranded(BACKEND_INVALID, vec!["same", "df"]),
            ),
            (
                "a known-mismatch replica is skipped",
                mapping("a"),
                vec![
                    not_ready(b("a")),
                    priority(with(b("bad"), ObjectFact::Mismatch), 10),
                    b("good"),
                ],
                Want::Stranded(BACKEND_INVALID, vec!["good"]),
            ),
            (
                "a replica known to be missing or of the wrong size is skipped",
                mapping("a"),
                vec![
                    not_ready(b("a")),
                    with(b("gone"), ObjectFact::Missing),
                    with(b("short"), ObjectFact::Present { size: 3 }),
                    present(b("ok")),
                ],
                Want::Stranded(BACKEND_INVALID, vec!["ok"]),
            ),
            (
                "no usable candidate leaves an empty list",
                mapping("a"),
                vec![not_ready(b("a")), not_ready(b("b"))],
                Want::Stranded(BACKEND_INVALID, vec![]),
            ),
            (
                "reassignment Never strands without candidates",
                never(mapping("a")),
                vec![not_ready(b("a")), default(b("b"))],
                Want::Disabled(BACKEND_INVALID),
            ),
            (
                "reassignment Never still serves from the declared backend",
                never(mapping("a")),
                vec![present(b("a")), default(b("b"))],
                Want::Declared("a"),
            ),
            (
                "reassignment Never does not move a mapping off a verified current backend",
                never(served_by(mapping("a"), "b")),
                vec![not_ready(b("a")), b("b")],
                Want::Keep("b"),
            ),
            (
                "a mapping is never placed on a backend that is not listed (another namespace)",
                mapping("a"),
                vec![not_ready(b("a"))],
                Want::Stranded(BACKEND_INVALID, vec![]),
            ),
        ];
        for (name, m, backends, want) in cases {
            assert_eq!(summary(&decide(&m, &backends)), want, "{name}");
        }
    }

    fn stranded(candidates: &[&str]) -> Plan {
        Plan::Stranded {
            by: StrandedBy {
                reason: mapping_reason::BACKEND_INVALID,
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
            result: AttemptResult::Verified { at: at(secs) },
        }
    }

    fn ready(status: &ArtifactMappingStatus) -> (String, String) {
        let c = condition::find(&status.conditions, mapping_condition::READY).unwrap();
        (c.status.clone(), c.reason.clone())
    }

    #[test]
    fn a_verified_candidate_becomes_the_backend_with_one_history_entry_and_one_event() {
        let m = mapping("a");
        let attempts = vec![
            Attempt {
                backend: "bad".into(),
                result: AttemptResult::DigestMismatch {
                    actual: "sha256:ff".into(),
                },
            },
            verified("good", 10),
        ];
        let o = outcome(&m, &stranded(&["bad", "good"]), &attempts, &at(10));
        assert_eq!(o.status.backend.as_deref(), Some("good"));
        assert_eq!(o.status.key.as_deref(), Some("good/key"));
        assert_eq!(
            ready(&o.status),
            ("True".into(), mapping_reason::DIGEST_VERIFIED.into())
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
                reason: mapping_reason::DIGEST_VERIFIED.into()
            }]
        );
        assert_eq!(o.state, MappingState::Reassigned);
        let kinds: Vec<_> = o.events.iter().map(|e| (e.kind, e.reason)).collect();
        assert_eq!(
            kinds,
            vec![
                (EventKind::Warning, mapping_reason::DIGEST_MISMATCH),
                (EventKind::Normal, mapping_reason::DIGEST_VERIFIED)
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
        let cases: Vec<(&str, ArtifactMapping, Vec<BackendFacts>)> = vec![
            (
                "a reassigned mapping kept on its backend",
                served_by(mapping("a"), "b"),
                vec![not_ready(b("a")), b("b")],
            ),
            (
                "a mapping served by its declared backend",
                mapping("a"),
                vec![present(b("a"))],
            ),
            (
                "a stranded mapping with no replica",
                mapping("a"),
                vec![not_ready(b("a"))],
            ),
            (
                "a stranded mapping with reassignment Never",
                never(mapping("a")),
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
        let mut m = mapping("a");
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
        let m = served_by(mapping("a"), "b");
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
            ("True".into(), mapping_reason::DECLARED.into())
        );
        assert_eq!(o.status.history.last().unwrap().from.as_deref(), Some("b"));
        assert_eq!(
            o.status.history.last().unwrap().reason,
            mapping_reason::DECLARED
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
            &mapping("a"),
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
                result: AttemptResult::Failed {
                    message: "truncated".into(),
                },
            },
            Attempt {
                backend: "c".into(),
                result: AttemptResult::SizeMismatch {
                    expected: 100,
                    actual: 3,
                },
            },
        ];
        let o = outcome(
            &served_by(mapping("a"), "b"),
            &stranded(&["b", "c"]),
            &attempts,
            &at(40),
        );
        assert_eq!(
            ready(&o.status),
            ("False".into(), mapping_reason::NO_VERIFIED_REPLICA.into())
        );
        let s = condition::find(&o.status.conditions, mapping_condition::STRANDED).unwrap();
        assert_eq!(
            (s.status.as_str(), s.reason.as_str()),
            ("True", mapping_reason::BACKEND_INVALID)
        );
        assert_eq!(o.status.backend, None, "nothing serves it");
        assert_eq!(o.state, MappingState::Stranded);
        assert_eq!(
            o.events.len(),
            1,
            "one warning for the wrong-size replica, none for a transient failure"
        );
        assert_eq!(o.events[0].reason, mapping_reason::SIZE_MISMATCH);
    }

    #[test]
    fn reassignment_never_is_reported_as_disabled() {
        let m = never(mapping("a"));
        let plan = decide(&m, &[not_ready(b("a")), b("b")]);
        let o = outcome(&m, &plan, &[], &at(1));
        assert_eq!(
            ready(&o.status),
            ("False".into(), mapping_reason::REASSIGNMENT_DISABLED.into())
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
        let m = mapping("a");
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
                mapping("a"),
                MappingState::Pending,
            ),
            (
                "a mapping served elsewhere is reassigned",
                served_by(mapping("a"), "b"),
                MappingState::Reassigned,
            ),
            (
                "a mapping served by its declared backend is declared",
                served_by(mapping("a"), "a"),
                MappingState::Declared,
            ),
        ];
        for (name, m, want) in cases {
            assert_eq!(MappingState::of(&m), want, "{name}");
        }
    }
}
