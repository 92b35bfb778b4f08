//! Pure backend selection for transfers: where `put` writes ([`write_backend`]) and in which
//! order `get` reads ([`read_order`]).
//!
//! Must not: do I/O. Everything arrives as API objects, so every rule is a table test.

use crate::api::backend::Trust;
use crate::api::condition;
use crate::api::reasons::{backend_condition, mapping_reason};
use crate::api::{ArtifactMapping, StorageBackend};
use crate::digest::Digest;
use crate::mapping::decide::{candidate_order, BackendFacts, BackendState, ObjectFact};
use crate::mapping::reconcile::key_on;

/// Why `backend` may not take writes now, or `None` when it may: it must be Ready, `Trusted`
/// (never `ReadOnly` or `Quarantined`) and not being deleted.
pub fn not_writable_because(backend: &StorageBackend) -> Option<String> {
    if backend.metadata.deletion_timestamp.is_some() {
        return Some("is being deleted".to_owned());
    }
    match backend.spec.trust {
        Trust::Trusted => {}
        other => return Some(format!("is {}", other.as_str())),
    }
    if BackendState::of(backend).ready {
        return None;
    }
    let ready = backend
        .status
        .as_ref()
        .and_then(|s| condition::find(&s.conditions, backend_condition::READY));
    Some(match ready {
        None => "is not Ready (not validated yet)".to_owned(),
        Some(c) if c.message.is_empty() => format!("is not Ready ({})", c.reason),
        Some(c) => format!("is not Ready ({}: {})", c.reason, c.message),
    })
}

fn name(b: &StorageBackend) -> &str {
    b.metadata.name.as_deref().unwrap_or("")
}

/// The backend a new blob is written to: the namespace's `default: true` backend when it is
/// writable, else the writable `fallback: true` backend with the highest priority (then name).
/// Two defaults are a conflict that is reported, never resolved by picking one. The error
/// detail names every default and fallback and why it cannot take the write.
pub fn write_backend(backends: &[StorageBackend]) -> Result<&StorageBackend, String> {
    let defaults: Vec<&StorageBackend> = backends.iter().filter(|b| b.spec.default).collect();
    if defaults.len() > 1 {
        let names: Vec<&str> = defaults.iter().map(|b| name(b)).collect();
        return Err(format!(
            "{} backends have default: true ({}); that conflict must be fixed in their specs",
            names.len(),
            names.join(", ")
        ));
    }
    let mut why = Vec::new();
    match defaults.first() {
        Some(d) => match not_writable_because(d) {
            None => return Ok(d),
            Some(reason) => why.push(format!("default backend {} {reason}", name(d))),
        },
        None => why.push("no backend has default: true".to_owned()),
    }
    let mut fallbacks: Vec<&StorageBackend> = backends.iter().filter(|b| b.spec.fallback).collect();
    fallbacks.sort_by_key(|b| (std::cmp::Reverse(b.spec.priority), name(b).to_owned()));
    if fallbacks.is_empty() {
        why.push("no backend has fallback: true".to_owned());
    }
    for f in fallbacks {
        match not_writable_because(f) {
            None => return Ok(f),
            Some(reason) => why.push(format!("fallback backend {} {reason}", name(f))),
        }
    }
    Err(why.join("; "))
}

/// One step of a read: a backend to try, or one passed over (with the reason).
#[derive(Debug, Clone)]
pub enum ReadStep<'a> {
    Try {
        backend: &'a StorageBackend,
        /// The object key on this backend (`spec.key`, else the layout under its prefix).
        key: String,
    },
    Skip {
        backend: String,
        /// `BackendMissing` or `BackendQuarantined`.
        reason: &'static str,
    },
}

/// The order in which `get` tries the backends of the mapping's namespace:
/// 1. `status.backend`, the operator's verified answer;
/// 2. `spec.backendRef`, where the blob was written;
/// 3. the other usable (Ready, not Quarantined) backends in the operator's candidate order
///    ([`candidate_order`]: same location as the declared backend, default, fallback,
///    priority, name);
/// 4. then, as a last resort, backends that are not Ready, in the same order: a client verifies
///    every byte, so a stale or missing Ready condition (operator not running yet) costs one
///    failed request, never a wrong file.
///
/// Quarantined backends are never read (skipped with `BackendQuarantined`), and a serving or
/// declared backend that does not exist is reported as `BackendMissing`.
pub fn read_order<'a>(
    mapping: &ArtifactMapping,
    digest: &Digest,
    backends: &'a [StorageBackend],
) -> Vec<ReadStep<'a>> {
    let facts: Vec<(BackendFacts, &StorageBackend)> = backends
        .iter()
        .map(|b| {
            let state = BackendState::of(b);
            let facts = BackendFacts {
                name: name(b).to_owned(),
                ready: state.ready,
                trust: state.trust,
                location: state.location,
                default: state.default,
                fallback: state.fallback,
                priority: state.priority,
                key: key_on(mapping, &state.key_prefix, digest),
                object: ObjectFact::Unknown,
            };
            (facts, b)
        })
        .collect();
    let find = |n: &str| facts.iter().find(|(f, _)| f.name == n);
    let mut steps = Vec::new();
    let mut placed: Vec<String> = Vec::new();
    let serving = mapping.status.as_ref().and_then(|s| s.backend.clone());
    let declared = mapping.spec.backend_ref.name.clone();
    for wanted in serving.into_iter().chain(std::iter::once(declared.clone())) {
        if placed.contains(&wanted) {
            continue;
        }
        placed.push(wanted.clone());
        steps.push(match find(&wanted) {
            None => ReadStep::Skip {
                backend: wanted,
                reason: mapping_reason::BACKEND_MISSING,
            },
            Some((f, _)) if f.trust == Trust::Quarantined => ReadStep::Skip {
                backend: wanted,
                reason: mapping_reason::BACKEND_QUARANTINED,
            },
            Some((f, b)) => ReadStep::Try {
                backend: b,
                key: f.key.clone(),
            },
        });
    }
    let home = find(&declared).map(|(f, _)| f.location.as_str());
    let rest: Vec<&BackendFacts> = facts
        .iter()
        .map(|(f, _)| f)
        .filter(|f| !placed.contains(&f.name))
        .collect();
    let usable = candidate_order(home, rest.iter().copied().filter(|f| f.usable()));
    let unready = candidate_order(
        home,
        rest.iter()
            .copied()
            .filter(|f| !f.ready && f.trust != Trust::Quarantined),
    );
    for f in usable.into_iter().chain(unready) {
        let (_, b) = find(&f.name).expect("from the same list");
        steps.push(ReadStep::Try {
            backend: b,
            key: f.key.clone(),
        });
    }
    for f in rest.iter().filter(|f| f.trust == Trust::Quarantined) {
        steps.push(ReadStep::Skip {
            backend: f.name.clone(),
            reason: mapping_reason::BACKEND_QUARANTINED,
        });
    }
    steps
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const D: &str = "sha256:ab12cd34ef567890ab12cd34ef567890ab12cd34ef567890ab12cd34ef567890";

    /// A backend: `flags` may contain "default", "fallback", "ready", "readonly", "quarantined",
    /// "deleting"; `bucket` decides the location.
    fn backend(name: &str, bucket: &str, priority: i32, flags: &[&str]) -> StorageBackend {
        let trust = if flags.contains(&"quarantined") {
            "Quarantined"
        } else if flags.contains(&"readonly") {
            "ReadOnly"
        } else {
            "Trusted"
        };
        let ready = flags.contains(&"ready");
        let mut b: StorageBackend = serde_json::from_value(json!({
            "apiVersion": "castellan.io/v1alpha1",
            "kind": "StorageBackend",
            "metadata": {"name": name, "namespace": "org"},
            "spec": {
                "s3": {"bucket": bucket, "endpoint": "http://127.0.0.1:9000", "keyPrefix": "cas"},
                "default": flags.contains(&"default"),
                "fallback": flags.contains(&"fallback"),
                "priority": priority,
                "trust": trust,
            },
            "status": {"conditions": [{
                "type": "Ready",
                "status": if ready { "True" } else { "False" },
                "reason": if ready { "Validated" } else { "InvalidAccessKeyId" },
                "message": if ready { "" } else { "the key was revoked" },
                "lastTransitionTime": "2026-01-01T00:00:00Z",
            }]},
        }))
        .unwrap();
        if flags.contains(&"deleting") {
            b.metadata.deletion_timestamp =
                Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                    "2026-01-01T00:00:00Z".parse().unwrap(),
                ));
        }
        b
    }

    fn mapping(declared: &str, serving: Option<&str>) -> ArtifactMapping {
        serde_json::from_value(json!({
            "apiVersion": "castellan.io/v1alpha1",
            "kind": "ArtifactMapping",
            "metadata": {"name": "m", "namespace": "org"},
            "spec": {"digest": D, "backendRef": {"name": declared}},
            "status": {"backend": serving},
        }))
        .unwrap()
    }

    #[test]
    fn writes_go_to_the_default_else_a_writable_fallback() {
        type Case = (
            &'static str,
            Vec<StorageBackend>,
            Result<&'static str, Vec<&'static str>>,
        );
        let cases: Vec<Case> = vec![
            (
                "a Ready default takes the write",
                vec![
                    backend("a", "x1", 0, &["default", "ready"]),
                    backend("b", "x1", 9, &["fallback", "ready"]),
                ],
                Ok("a"),
            ),
            (
                "a default that is not Ready hands over to the fallback",
                vec![
                    backend("a", "x1", 0, &["default"]),
                    backend("b", "x1", 0, &["fallback", "ready"]),
                ],
                Ok("b"),
            ),
            (
                "a ReadOnly default is never written",
                vec![
                    backend("a", "x1", 0, &["default", "ready", "readonly"]),
                    backend("b", "x1", 0, &["fallback", "ready"]),
                ],
                Ok("b"),
            ),
            (
                "the fallback with the highest priority wins",
                vec![
                    backend("f1", "x1", 1, &["fallback", "ready"]),
                    backend("f2", "x1", 5, &["fallback", "ready"]),
                ],
                Ok("f2"),
            ),
            (
                "a fallback being deleted is passed over",
                vec![
                    backend("f1", "x1", 9, &["fallback", "ready", "deleting"]),
                    backend("f2", "x1", 0, &["fallback", "ready"]),
                ],
                Ok("f2"),
            ),
            (
                "a quarantined fallback is never written, and the error names both",
                vec![
                    backend("a", "x1", 0, &["default"]),
                    backend("b", "x1", 0, &["fallback", "ready", "quarantined"]),
                ],
                Err(vec![
                    "default backend a is not Ready (InvalidAccessKeyId: the key was revoked)",
                    "fallback backend b is Quarantined",
                ]),
            ),
            (
                "a ready backend that is neither default nor fallback is not chosen",
                vec![backend("plain", "x1", 0, &["ready"])],
                Err(vec![
                    "no backend has default: true",
                    "no backend has fallback: true",
                ]),
            ),
            (
                "two defaults are a conflict, not a choice",
                vec![
                    backend("a", "x1", 0, &["default", "ready"]),
                    backend("b", "x1", 0, &["default", "ready"]),
                ],
                Err(vec!["2 backends have default: true (a, b)"]),
            ),
        ];
        for (case, backends, want) in cases {
            let got = write_backend(&backends);
            match (got, want) {
                (Ok(b), Ok(w)) => assert_eq!(name(b), w, "{case}"),
                (Err(detail), Err(parts)) => {
                    for p in parts {
                        assert!(detail.contains(p), "{case}: {detail:?} lacks {p:?}");
                    }
                }
                (got, want) => panic!("{case}: got {:?}, want {want:?}", got.map(name)),
            }
        }
    }

    fn order(steps: &[ReadStep<'_>]) -> Vec<String> {
        steps
            .iter()
            .map(|s| match s {
                ReadStep::Try { backend, .. } => name(backend).to_owned(),
                ReadStep::Skip { backend, reason } => format!("{backend}:{reason}"),
            })
            .collect()
    }

    #[test]
    fn reads_try_serving_then_declared_then_the_operators_candidate_order() {
        type Case = (
            &'static str,
            ArtifactMapping,
            Vec<StorageBackend>,
            Vec<&'static str>,
        );
        let cases: Vec<Case> = vec![
            (
                "serving first, then declared, then same location before the default",
                mapping("a", Some("d")),
                vec![
                    backend("a", "home", 0, &["ready"]),
                    backend("b", "home", 0, &["ready"]),
                    backend("c", "away", 0, &["ready", "default"]),
                    backend("d", "away", 0, &["ready"]),
                ],
                vec!["d", "a", "b", "c"],
            ),
            (
                "without a status the declared backend comes first",
                mapping("a", None),
                vec![
                    backend("a", "home", 0, &[]),
                    backend("z", "away", 0, &["ready"]),
                ],
                vec!["a", "z"],
            ),
            (
                "default, fallback, priority and name order the rest",
                mapping("a", Some("a")),
                vec![
                    backend("a", "home", 0, &["ready"]),
                    backend("p1", "away", 1, &["ready"]),
                    backend("p5", "away", 5, &["ready"]),
                    backend("fb", "away", 0, &["ready", "fallback"]),
                    backend("df", "away", 0, &["ready", "default"]),
                    backend("aa", "away", 1, &["ready"]),
                ],
                vec!["a", "df", "fb", "p5", "aa", "p1"],
            ),
            (
                "backends that are not Ready come last, quarantined ones are skipped",
                mapping("a", Some("a")),
                vec![
                    backend("a", "home", 0, &["ready"]),
                    backend("n", "home", 0, &[]),
                    backend("q", "home", 0, &["ready", "quarantined"]),
                    backend("r", "away", 0, &["ready"]),
                ],
                vec!["a", "r", "n", "q:BackendQuarantined"],
            ),
            (
                "a quarantined serving backend and a missing declared one are reported in place",
                mapping("gone", Some("q")),
                vec![
                    backend("q", "home", 0, &["ready", "quarantined"]),
                    backend("r", "away", 0, &["ready"]),
                ],
                vec!["q:BackendQuarantined", "gone:BackendMissing", "r"],
            ),
        ];
        let digest: Digest = D.parse().unwrap();
        for (case, m, backends, want) in cases {
            assert_eq!(order(&read_order(&m, &digest, &backends)), want, "{case}");
        }
    }

    #[test]
    fn read_steps_carry_the_key_on_each_backend() {
        let digest: Digest = D.parse().unwrap();
        let mut other = backend("b", "x2", 0, &["ready"]);
        other.spec.s3.key_prefix = Some("elsewhere".into());
        let backends = vec![backend("a", "x1", 0, &["ready"]), other];
        let keys: Vec<String> = read_order(&mapping("a", None), &digest, &backends)
            .into_iter()
            .filter_map(|s| match s {
                ReadStep::Try { key, .. } => Some(key),
                ReadStep::Skip { .. } => None,
            })
            .collect();
        assert_eq!(
            keys,
            vec![
                format!("cas/sha256/ab/12/{}", digest.hex()),
                format!("elsewhere/sha256/ab/12/{}", digest.hex()),
            ]
        );
        let mut overridden = mapping("a", None);
        overridden.spec.key = Some("custom/key".into());
        let steps = read_order(&overridden, &digest, &backends);
        assert!(
            steps
                .iter()
                .all(|s| matches!(s, ReadStep::Try { key, .. } if key == "custom/key")),
            "spec.key applies on every backend"
        );
    }
}
