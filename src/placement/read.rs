//! The order in which a client (`castellan get`) tries the backends of a mapping's namespace.
//!
//! Owns: [`read_order`], built on the operator's own [`candidate_order`] so that clients and the
//! operator try replicas alike. Must not: do I/O; everything arrives as API objects.

use super::serve::candidate_order;
use super::view::BackendView;
use crate::api::backend::Trust;
use crate::api::reasons::MappingReason;
use crate::api::{ArtifactMapping, StorageBackend};
use crate::digest::Digest;

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
        reason: MappingReason,
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
    let views: Vec<(BackendView, &StorageBackend)> =
        backends.iter().map(|b| (BackendView::of(b), b)).collect();
    let find = |n: &str| views.iter().find(|(v, _)| v.name == n);
    let try_step = |(v, b): &(BackendView, &'a StorageBackend)| ReadStep::Try {
        backend: b,
        key: v.key_of(mapping, digest),
    };
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
                reason: MappingReason::BackendMissing,
            },
            Some((v, _)) if v.trust == Trust::Quarantined => ReadStep::Skip {
                backend: wanted,
                reason: MappingReason::BackendQuarantined,
            },
            Some(found) => try_step(found),
        });
    }
    let home = find(&declared).map(|(v, _)| v.location.as_str());
    let rest: Vec<&BackendView> = views
        .iter()
        .map(|(v, _)| v)
        .filter(|v| !placed.contains(&v.name))
        .collect();
    let usable = candidate_order(home, rest.iter().copied().filter(|v| v.usable()));
    let unready = candidate_order(
        home,
        rest.iter()
            .copied()
            .filter(|v| !v.ready && v.trust != Trust::Quarantined),
    );
    for v in usable.into_iter().chain(unready) {
        steps.push(try_step(find(&v.name).expect("from the same list")));
    }
    for v in rest.iter().filter(|v| v.trust == Trust::Quarantined) {
        steps.push(ReadStep::Skip {
            backend: v.name.clone(),
            reason: MappingReason::BackendQuarantined,
        });
    }
    steps
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::placement::test_objects::{backend, mapping, D};

    fn name(b: &StorageBackend) -> &str {
        b.metadata.name.as_deref().unwrap_or("")
    }

    fn order(steps: &[ReadStep<'_>]) -> Vec<String> {
        steps
            .iter()
            .map(|s| match s {
                ReadStep::Try { backend, .. } => name(backend).to_owned(),
                ReadStep::Skip { backend, reason } => format!("{backend}:{}", reason.as_str()),
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
