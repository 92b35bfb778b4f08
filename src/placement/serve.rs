//! Where a mapping is served from: DESIGN "Mapping resolution and reassignment", rules 1 to 3.
//!
//! Owns: the decision ([`decide`]) — the declared backend first, then the sticky current
//! backend, then verified candidates in a fixed order ([`candidate_order`]) — from plain facts
//! about each backend of the mapping's namespace and the object on it.
//!
//! Must not: talk to a cluster or a bucket, read the clock, or see a backend of another namespace
//! (the caller hands over only the mapping's own namespace).

use std::cmp::Reverse;

use super::view::BackendView;
use crate::api::backend::Trust;
use crate::api::condition;
use crate::api::mapping::Reassignment;
use crate::api::reasons::{mapping_condition, MappingReason};
use crate::api::ArtifactMapping;

/// What is known about the mapping's object on one backend.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ObjectFact {
    /// Nothing known yet (no HEAD, nothing remembered).
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

/// One backend of the mapping's namespace, the mapping's key on it, and what is known about the
/// object there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Replica {
    pub backend: BackendView,
    pub key: String,
    pub object: ObjectFact,
}

impl AsRef<BackendView> for Replica {
    fn as_ref(&self) -> &BackendView {
        &self.backend
    }
}

/// A backend to try, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Candidate {
    pub backend: String,
    pub location: String,
    pub key: String,
    /// Already verified (remembered): trying it costs no I/O.
    pub known_verified: bool,
}

/// Why the declared backend does not serve.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StrandedBy {
    /// `BackendMissing`, `BackendQuarantined`, `BackendInvalid`, `ObjectMissing`,
    /// `SizeMismatch` or `DigestMismatch`.
    pub reason: MappingReason,
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
pub fn decide(mapping: &ArtifactMapping, replicas: &[Replica]) -> Plan {
    let declared_name = mapping.spec.backend_ref.name.as_str();
    let declared = replicas.iter().find(|r| r.backend.name == declared_name);
    let by = match serve_declared(mapping, declared_name, declared) {
        Ok(plan) => return plan,
        Err(by) => by,
    };
    if let Some(plan) = keep_current(mapping, replicas, &by) {
        return plan;
    }
    if mapping.spec.reassignment == Reassignment::Never {
        return Plan::Stranded {
            by,
            reassignment_disabled: true,
            candidates: Vec::new(),
        };
    }
    Plan::Stranded {
        by,
        reassignment_disabled: false,
        candidates: candidates(mapping, replicas, declared),
    }
}

fn declared_size(mapping: &ArtifactMapping) -> Option<u64> {
    mapping.spec.size.and_then(|s| u64::try_from(s).ok())
}

/// Rule 1: the declared backend serves when it is usable and holds an object of the right size;
/// otherwise, why it does not.
fn serve_declared(
    mapping: &ArtifactMapping,
    name: &str,
    declared: Option<&Replica>,
) -> Result<Plan, StrandedBy> {
    let stranded = |reason, message: String| Err(StrandedBy { reason, message });
    let Some(d) = declared else {
        return stranded(
            MappingReason::BackendMissing,
            format!("declared backend {name} does not exist in this namespace"),
        );
    };
    if d.backend.trust == Trust::Quarantined {
        return stranded(
            MappingReason::BackendQuarantined,
            format!("declared backend {name} is quarantined"),
        );
    }
    if !d.backend.ready {
        return stranded(
            MappingReason::BackendInvalid,
            format!("declared backend {name} is not ready"),
        );
    }
    let want = declared_size(mapping);
    match &d.object {
        ObjectFact::Verified => Ok(declared_plan(d)),
        ObjectFact::Present { size } if want.is_none_or(|w| w == *size) => Ok(declared_plan(d)),
        ObjectFact::Present { size } => stranded(
            MappingReason::SizeMismatch,
            format!(
                "object on declared backend {name} has {size} bytes, expected {}",
                want.unwrap_or_default()
            ),
        ),
        ObjectFact::Mismatch => stranded(
            MappingReason::DigestMismatch,
            format!("object on declared backend {name} does not match the digest"),
        ),
        ObjectFact::Missing | ObjectFact::Unknown => stranded(
            MappingReason::ObjectMissing,
            format!("object not found on declared backend {name}"),
        ),
    }
}

fn declared_plan(d: &Replica) -> Plan {
    Plan::Declared {
        backend: d.backend.name.clone(),
        key: d.key.clone(),
    }
}

/// Rule 2: stickiness — the current backend is still usable and was verified.
fn keep_current(mapping: &ArtifactMapping, replicas: &[Replica], by: &StrandedBy) -> Option<Plan> {
    let status = mapping.status.as_ref()?;
    if !condition::is_true(&status.conditions, mapping_condition::VERIFIED) {
        return None;
    }
    let current = status.backend.as_deref()?;
    if current == mapping.spec.backend_ref.name {
        return None;
    }
    let c = replicas.iter().find(|r| r.backend.name == current)?;
    let still_good = match c.object {
        ObjectFact::Missing | ObjectFact::Mismatch => false,
        ObjectFact::Present { size } => declared_size(mapping).is_none_or(|w| w == size),
        ObjectFact::Unknown | ObjectFact::Verified => true,
    };
    (c.backend.usable() && still_good).then(|| Plan::Keep {
        backend: c.backend.name.clone(),
        key: c.key.clone(),
        stranded_by: by.clone(),
    })
}

/// Rule 3: the usable backends other than the declared one, without those known to hold other
/// bytes, in [`candidate_order`].
fn candidates(
    mapping: &ArtifactMapping,
    replicas: &[Replica],
    declared: Option<&Replica>,
) -> Vec<Candidate> {
    let want = declared_size(mapping);
    let declared_name = mapping.spec.backend_ref.name.as_str();
    let eligible = replicas
        .iter()
        .filter(|r| r.backend.name != declared_name && r.backend.usable())
        .filter(|r| match r.object {
            ObjectFact::Missing | ObjectFact::Mismatch => false,
            ObjectFact::Present { size } => want.is_none_or(|w| w == size),
            ObjectFact::Unknown | ObjectFact::Verified => true,
        });
    let home = declared.map(|d| d.backend.location.as_str());
    candidate_order(home, eligible)
        .into_iter()
        .map(|r| Candidate {
            backend: r.backend.name.clone(),
            location: r.backend.location.clone(),
            key: r.key.clone(),
            known_verified: r.object == ObjectFact::Verified,
        })
        .collect()
}

/// The order in which backends are tried for a mapping that its declared backend does not serve:
/// same location as the declared backend (`home_location`) first, then `default`, then
/// `fallback`, then higher `priority`, then name. The reassignment decision and clients that
/// fall back on their own (`castellan get`) share it, so both try replicas alike.
pub fn candidate_order<'a, T: AsRef<BackendView>>(
    home_location: Option<&str>,
    backends: impl IntoIterator<Item = &'a T>,
) -> Vec<&'a T> {
    let mut ordered: Vec<&T> = backends.into_iter().collect();
    ordered.sort_by(|a, b| {
        let key = |v: &'a T| {
            let v = v.as_ref();
            (
                Some(v.location.as_str()) != home_location,
                !v.default,
                !v.fallback,
                Reverse(v.priority),
            )
        };
        key(a)
            .cmp(&key(b))
            .then_with(|| a.as_ref().name.cmp(&b.as_ref().name))
    });
    ordered
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::condition::{Desired, Status};
    use crate::api::mapping::ArtifactMappingStatus;
    use crate::placement::test_objects::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    /// A mapping whose status says it is served by `backend` after verification.
    fn served_by(mut m: ArtifactMapping, backend: &str) -> ArtifactMapping {
        let mut status = ArtifactMappingStatus {
            backend: Some(backend.into()),
            key: Some("k".into()),
            ..ArtifactMappingStatus::default()
        };
        let now = Time(k8s_openapi::jiff::Timestamp::from_second(5).unwrap());
        for type_ in [mapping_condition::READY, mapping_condition::VERIFIED] {
            condition::set(
                &mut status.conditions,
                Desired {
                    type_,
                    status: Status::True,
                    reason: MappingReason::DigestVerified.as_str(),
                    message: String::new(),
                    observed_generation: Some(1),
                },
                &now,
            );
        }
        m.status = Some(status);
        m
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
                Want::Disabled(by.reason.as_str())
            }
            Plan::Stranded { by, candidates, .. } => Want::Stranded(
                by.reason.as_str(),
                candidates.iter().map(|c| leak(&c.backend)).collect(),
            ),
        }
    }

    #[test]
    fn placement_follows_the_rules_in_order() {
        use MappingReason::*;
        let r = MappingReason::as_str;
        let cases: Vec<(&str, ArtifactMapping, Vec<Replica>, Want)> = vec![
            (
                "a usable declared backend holding the object serves it",
                declared_on("a"),
                vec![present(b("a")), present(b("b"))],
                Want::Declared("a"),
            ),
            (
                "a read-only declared backend still serves",
                declared_on("a"),
                vec![trust(present(b("a")), Trust::ReadOnly)],
                Want::Declared("a"),
            ),
            (
                "a declared backend whose object has another size does not serve",
                declared_on("a"),
                vec![with(b("a"), ObjectFact::Present { size: 7 }), b("b")],
                Want::Stranded(r(SizeMismatch), vec!["b"]),
            ),
            (
                "an unusable declared backend keeps the current verified backend",
                served_by(declared_on("a"), "b"),
                vec![not_ready(present(b("a"))), b("b"), default(b("c"))],
                Want::Keep("b"),
            ),
            (
                "a current backend that is no longer usable is not kept",
                served_by(declared_on("a"), "b"),
                vec![not_ready(b("a")), not_ready(b("b")), b("c")],
                Want::Stranded(r(BackendInvalid), vec!["c"]),
            ),
            (
                "a current backend found corrupt is not kept",
                served_by(declared_on("a"), "b"),
                vec![
                    not_ready(b("a")),
                    with(b("b"), ObjectFact::Mismatch),
                    b("c"),
                ],
                Want::Stranded(r(BackendInvalid), vec!["c"]),
            ),
            (
                "a mapping returns home once its declared backend is usable again",
                served_by(declared_on("a"), "b"),
                vec![present(b("a")), b("b")],
                Want::Declared("a"),
            ),
            (
                "a missing declared backend strands with BackendMissing",
                declared_on("gone"),
                vec![b("b")],
                Want::Stranded(r(BackendMissing), vec!["b"]),
            ),
            (
                "a declared backend without the object strands with ObjectMissing",
                declared_on("a"),
                vec![with(b("a"), ObjectFact::Missing), b("b")],
                Want::Stranded(r(ObjectMissing), vec!["b"]),
            ),
            (
                "a quarantined declared backend strands what it serves",
                served_by(declared_on("a"), "a"),
                vec![trust(present(b("a")), Trust::Quarantined), b("b")],
                Want::Stranded(r(BackendQuarantined), vec!["b"]),
            ),
            (
                "a quarantined backend is never a candidate",
                declared_on("a"),
                vec![
                    not_ready(b("a")),
                    trust(default(b("q")), Trust::Quarantined),
                    b("z"),
                ],
                Want::Stranded(r(BackendInvalid), vec!["z"]),
            ),
            (
                "a quarantined current backend is not kept",
                served_by(declared_on("a"), "q"),
                vec![not_ready(b("a")), trust(b("q"), Trust::Quarantined), b("z")],
                Want::Stranded(r(BackendInvalid), vec!["z"]),
            ),
            (
                "a read-only backend may be a candidate",
                declared_on("a"),
                vec![not_ready(b("a")), trust(b("r"), Trust::ReadOnly)],
                Want::Stranded(r(BackendInvalid), vec!["r"]),
            ),
            (
                "an unready backend is never a candidate",
                declared_on("a"),
                vec![not_ready(b("a")), not_ready(b("b")), b("c")],
                Want::Stranded(r(BackendInvalid), vec!["c"]),
            ),
            (
                "candidates come same-location first, then default, fallback, priority and name",
                declared_on("a"),
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
                    r(BackendInvalid),
                    vec!["same", "df", "fb", "p9", "p1", "n1", "n2"],
                ),
            ),
            (
                "a same-location backend beats a higher-priority default",
                declared_on("a"),
                vec![
                    not_ready(located(b("a"), "home")),
                    priority(default(b("df")), 100),
                    located(b("same"), "home"),
                ],
                Want::Stranded(r(BackendInvalid), vec!["same", "df"]),
            ),
            (
                "a known-mismatch replica is skipped",
                declared_on("a"),
                vec![
                    not_ready(b("a")),
                    priority(with(b("bad"), ObjectFact::Mismatch), 10),
                    b("good"),
                ],
                Want::Stranded(r(BackendInvalid), vec!["good"]),
            ),
            (
                "a replica known to be missing or of the wrong size is skipped",
                declared_on("a"),
                vec![
                    not_ready(b("a")),
                    with(b("gone"), ObjectFact::Missing),
                    with(b("short"), ObjectFact::Present { size: 3 }),
                    present(b("ok")),
                ],
                Want::Stranded(r(BackendInvalid), vec!["ok"]),
            ),
            (
                "no usable candidate leaves an empty list",
                declared_on("a"),
                vec![not_ready(b("a")), not_ready(b("b"))],
                Want::Stranded(r(BackendInvalid), vec![]),
            ),
            (
                "reassignment Never strands without candidates",
                never(declared_on("a")),
                vec![not_ready(b("a")), default(b("b"))],
                Want::Disabled(r(BackendInvalid)),
            ),
            (
                "reassignment Never still serves from the declared backend",
                never(declared_on("a")),
                vec![present(b("a")), default(b("b"))],
                Want::Declared("a"),
            ),
            (
                "reassignment Never does not move a mapping off a verified current backend",
                never(served_by(declared_on("a"), "b")),
                vec![not_ready(b("a")), b("b")],
                Want::Keep("b"),
            ),
            (
                "a mapping is never placed on a backend that is not listed (another namespace)",
                declared_on("a"),
                vec![not_ready(b("a"))],
                Want::Stranded(r(BackendInvalid), vec![]),
            ),
        ];
        for (name, m, backends, want) in cases {
            assert_eq!(summary(&decide(&m, &backends)), want, "{name}");
        }
    }
}
