//! Facts the backend controller gathers from the shared reflector caches, as pure functions of
//! the cached objects: which mapped object the probe HEADs (and when to probe again without it),
//! how many mappings a backend serves or strands, which other backends of the namespace also
//! claim `default`/`fallback`, and which backends a Secret feeds.
//!
//! Owns: those derivations. Must not: call the API server (everything comes from the reflector
//! stores the lead wires), or look outside the backend's namespace.

use std::sync::Arc;

use kube::runtime::reflector::ObjectRef;
use kube::ResourceExt;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

use crate::api::backend::{Integrity, MappingCounts};
use crate::api::condition;
use crate::api::reasons::{mapping_condition, MappingReason};
use crate::api::{ArtifactMapping, StorageBackend};
use crate::digest::Digest;
use crate::storage::{layout, ErrorKind, StorageError};

/// Whether a failed probe is repeated without its known key: a mapped object that is missing is
/// the mapping controller's business (`ObjectMissing`), not a backend failure, and the bucket
/// and credentials must still be judged.
pub fn probe_again_without_key(error: &StorageError, known_key: Option<&str>) -> bool {
    error.kind() == ErrorKind::NotFound && known_key.is_some()
}

fn in_namespace<'m>(
    backend: &'m StorageBackend,
    mappings: &'m [Arc<ArtifactMapping>],
) -> impl Iterator<Item = &'m Arc<ArtifactMapping>> + 'm {
    let namespace = backend.namespace();
    mappings.iter().filter(move |m| m.namespace() == namespace)
}

fn serves(mapping: &ArtifactMapping, backend: &str) -> bool {
    mapping
        .status
        .as_ref()
        .and_then(|s| s.backend.as_deref())
        .is_some_and(|b| b == backend)
}

fn is_stranded(mapping: &ArtifactMapping) -> bool {
    mapping
        .status
        .as_ref()
        .is_some_and(|s| condition::is_true(&s.conditions, mapping_condition::STRANDED))
}

/// A key the read probe can HEAD: an object this backend is known to hold, always the layout key
/// of a digest under the backend's `keyPrefix`. A mapping's own `spec.key` is never probed: a
/// tenant must not be able to make a backend look `AccessDenied` by naming a key it may not read.
/// Preference: a mapping this backend serves and has verified (`status.backend` = this backend,
/// `Ready=True`), then a mapping declared on it that is not stranded. Among equals the smallest
/// mapping name wins, so successive probes HEAD the same object.
pub fn known_key(backend: &StorageBackend, mappings: &[Arc<ArtifactMapping>]) -> Option<String> {
    let name = backend.name_any();
    let prefix = backend.spec.s3.key_prefix.as_deref().unwrap_or("");
    let mut served: Option<(String, String)> = None;
    let mut declared: Option<(String, String)> = None;
    let better = |slot: &Option<(String, String)>, candidate: &str| {
        slot.as_ref().is_none_or(|(n, _)| candidate < n.as_str())
    };
    for m in in_namespace(backend, mappings) {
        if m.spec.key.is_some() {
            continue;
        }
        let Ok(digest) = m.spec.digest.parse::<Digest>() else {
            continue;
        };
        let mapping_name = m.name_any();
        let verified_here = serves(m, &name)
            && m.status
                .as_ref()
                .is_some_and(|s| condition::is_true(&s.conditions, mapping_condition::READY));
        if verified_here && better(&served, &mapping_name) {
            served = Some((mapping_name.clone(), layout::key_for(prefix, &digest)));
        }
        if m.spec.backend_ref.name == name && !is_stranded(m) && better(&declared, &mapping_name) {
            declared = Some((mapping_name, layout::key_for(prefix, &digest)));
        }
    }
    served.or(declared).map(|(_, key)| key)
}

/// How many mappings of the namespace this backend serves, and how many of those declared on it
/// or served by it are stranded.
pub fn mapping_counts(
    backend: &StorageBackend,
    mappings: &[Arc<ArtifactMapping>],
) -> MappingCounts {
    let name = backend.name_any();
    let mut counts = MappingCounts::default();
    for m in in_namespace(backend, mappings) {
        let serving = serves(m, &name);
        if serving {
            counts.serving += 1;
        }
        if (serving || m.spec.backend_ref.name == name) && is_stranded(m) {
            counts.stranded += 1;
        }
    }
    counts
}

/// What scrubbing found on this backend, from the mappings' status (served copies verified
/// within `interval`, bad-replica records on it) and the last complete pass (`pass`, else what
/// the status said before).
pub fn integrity(
    backend: &StorageBackend,
    mappings: &[Arc<ArtifactMapping>],
    interval: Option<std::time::Duration>,
    now: Timestamp,
    pass: Option<crate::scrub::Pass>,
) -> Integrity {
    let name = backend.name_any();
    let recent = |t: &Time| {
        interval.is_none_or(|i| {
            std::time::Duration::try_from(now.duration_since(t.0)).unwrap_or_default() <= i
        })
    };
    let previous = backend.status.as_ref().and_then(|s| s.integrity.clone());
    let mut counts = Integrity {
        bytes_verified: pass
            .as_ref()
            .map(|p| i64::try_from(p.bytes).unwrap_or(i64::MAX))
            .or(previous.as_ref().map(|p| p.bytes_verified))
            .unwrap_or_default(),
        last_complete_pass_time: pass
            .map(|p| p.completed)
            .or(previous.and_then(|p| p.last_complete_pass_time)),
        ..Integrity::default()
    };
    for m in in_namespace(backend, mappings) {
        let Some(status) = m.status.as_ref() else {
            continue;
        };
        if serves(m, &name) && condition::is_true(&status.conditions, mapping_condition::READY) {
            match &status.last_verified_time {
                Some(t) if recent(t) => counts.verified += 1,
                _ => counts.unverified += 1,
            }
        }
        for bad in status.bad_replicas.iter().filter(|b| b.backend == name) {
            if bad.reason == MappingReason::ObjectMissing.as_str() {
                counts.missing += 1;
            } else {
                counts.corrupt += 1;
            }
        }
    }
    counts
}

/// The other backends of the namespace that share this backend's `default: true` (first) and
/// `fallback: true` (second) claim, sorted by name. Empty when this backend makes no such claim.
pub fn conflicts(
    backend: &StorageBackend,
    backends: &[Arc<StorageBackend>],
) -> (Vec<String>, Vec<String>) {
    let name = backend.name_any();
    let namespace = backend.namespace();
    let others = || {
        backends.iter().filter(|b| {
            b.namespace() == namespace
                && b.name_any() != name
                && b.metadata.deletion_timestamp.is_none()
        })
    };
    let mut defaults: Vec<String> = if backend.spec.default {
        others()
            .filter(|b| b.spec.default)
            .map(|b| b.name_any())
            .collect()
    } else {
        Vec::new()
    };
    let mut fallbacks: Vec<String> = if backend.spec.fallback {
        others()
            .filter(|b| b.spec.fallback)
            .map(|b| b.name_any())
            .collect()
    } else {
        Vec::new()
    };
    defaults.sort();
    fallbacks.sort();
    (defaults, fallbacks)
}

/// The backends a Secret feeds: same namespace, referenced by `credentialsSecretRef` or
/// `caBundleSecretRef`.
pub fn backends_referencing(
    secret: &impl kube::Resource,
    backends: &[Arc<StorageBackend>],
) -> Vec<ObjectRef<StorageBackend>> {
    let name = secret.name_any();
    let namespace = secret.namespace();
    backends
        .iter()
        .filter(|b| b.namespace() == namespace)
        .filter(|b| {
            let s3 = &b.spec.s3;
            s3.credentials_secret_ref
                .as_ref()
                .is_some_and(|r| r.name == name)
                || s3
                    .ca_bundle_secret_ref
                    .as_ref()
                    .is_some_and(|r| r.name == name)
        })
        .map(|b| ObjectRef::from_obj(b.as_ref()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::mapping::ArtifactMappingStatus;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

    const HEX_A: &str = "aa00000000000000000000000000000000000000000000000000000000000000";
    const HEX_B: &str = "bb00000000000000000000000000000000000000000000000000000000000000";

    fn backend(ns: &str, name: &str, default: bool, fallback: bool) -> Arc<StorageBackend> {
        let mut b: StorageBackend = serde_json::from_value(serde_json::json!({
            "apiVersion": "castellan.io/v1alpha1",
            "kind": "StorageBackend",
            "metadata": {"name": name, "namespace": ns},
            "spec": {
                "s3": {
                    "bucket": "bucket",
                    "keyPrefix": "cas",
                    "credentialsSecretRef": {"name": "creds"},
                    "caBundleSecretRef": {"name": "ca"}
                },
                "default": default,
                "fallback": fallback
            }
        }))
        .unwrap();
        b.metadata.namespace = Some(ns.to_owned());
        Arc::new(b)
    }

    fn cond(type_: &str, status: &str) -> Condition {
        Condition {
            type_: type_.to_owned(),
            status: status.to_owned(),
            reason: "R".to_owned(),
            message: String::new(),
            observed_generation: Some(1),
            last_transition_time: Time(k8s_openapi::jiff::Timestamp::UNIX_EPOCH),
        }
    }

    fn mapping(
        ns: &str,
        name: &str,
        hex: &str,
        declared: &str,
        serving: Option<(&str, &str)>,
        conditions: &[(&str, &str)],
    ) -> Arc<ArtifactMapping> {
        let mut m: ArtifactMapping = serde_json::from_value(serde_json::json!({
            "apiVersion": "castellan.io/v1alpha1",
            "kind": "ArtifactMapping",
            "metadata": {"name": name, "namespace": ns},
            "spec": {"digest": format!("sha256:{hex}"), "backendRef": {"name": declared}}
        }))
        .unwrap();
        m.status = Some(ArtifactMappingStatus {
            backend: serving.map(|(b, _)| b.to_owned()),
            key: serving.map(|(_, k)| k.to_owned()),
            conditions: conditions.iter().map(|(t, s)| cond(t, s)).collect(),
            ..ArtifactMappingStatus::default()
        });
        Arc::new(m)
    }

    #[test]
    fn only_a_missing_known_object_is_probed_again_without_it() {
        use crate::api::reasons::BackendReason;
        let missing = StorageError::new(ErrorKind::NotFound, "no such key");
        let denied = StorageError::new(BackendReason::AccessDenied, "denied");
        let cases = [
            (
                "a missing known object is probed around",
                &missing,
                Some("k"),
                true,
            ),
            (
                "a probe without a known key is final",
                &missing,
                None,
                false,
            ),
            ("a backend failure is final", &denied, Some("k"), false),
        ];
        for (name, error, key, want) in cases {
            assert_eq!(probe_again_without_key(error, key), want, "{name}");
        }
    }

    #[test]
    fn the_probe_heads_an_object_the_backend_is_known_to_hold() {
        let a = backend("org", "a", false, false);
        let layout_key_a = format!("cas/sha256/aa/00/{HEX_A}");
        type Case = (&'static str, Vec<Arc<ArtifactMapping>>, Option<String>);
        let cases: Vec<Case> = vec![
            ("no mapping means no known key", vec![], None),
            (
                "a verified mapping served by the backend gives its layout key there",
                vec![mapping(
                    "org",
                    "m1",
                    HEX_A,
                    "other",
                    Some(("a", "x/served")),
                    &[("Ready", "True")],
                )],
                Some(layout_key_a.clone()),
            ),
            (
                "a mapping declared on the backend gives its layout key",
                vec![mapping("org", "m1", HEX_A, "a", None, &[])],
                Some(layout_key_a.clone()),
            ),
            (
                "a served and verified mapping is preferred over a declared one",
                vec![
                    mapping("org", "m0", HEX_B, "a", None, &[]),
                    mapping(
                        "org",
                        "m9",
                        HEX_A,
                        "other",
                        Some(("a", "x/served")),
                        &[("Ready", "True")],
                    ),
                ],
                Some(layout_key_a.clone()),
            ),
            (
                "a stranded declared mapping is not used (its object may be missing)",
                vec![mapping(
                    "org",
                    "m1",
                    HEX_A,
                    "a",
                    None,
                    &[("Stranded", "True")],
                )],
                None,
            ),
            (
                "a mapping served but not verified is not used",
                vec![mapping(
                    "org",
                    "m1",
                    HEX_A,
                    "other",
                    Some(("a", "x/served")),
                    &[("Ready", "False")],
                )],
                None,
            ),
            (
                "the smallest mapping name wins so that probes are stable",
                vec![
                    mapping("org", "m2", HEX_B, "a", None, &[]),
                    mapping("org", "m1", HEX_A, "a", None, &[]),
                ],
                Some(layout_key_a.clone()),
            ),
            (
                "a mapping with its own spec.key is never probed with (tenants must not steer probes)",
                vec![{
                    let mut m = (*mapping("org", "m1", HEX_A, "a", None, &[])).clone();
                    m.spec.key = Some("secret/of/another/team".into());
                    Arc::new(m)
                }],
                None,
            ),
            (
                "a mapping of another namespace is never used",
                vec![mapping("other-org", "m1", HEX_A, "a", None, &[])],
                None,
            ),
        ];
        for (name, mappings, want) in cases {
            assert_eq!(known_key(&a, &mappings), want, "{name}");
        }
    }

    #[test]
    fn mapping_counts_cover_serving_and_stranded_mappings_of_the_namespace() {
        let a = backend("org", "a", false, false);
        let mappings = vec![
            mapping(
                "org",
                "served",
                HEX_A,
                "other",
                Some(("a", "k")),
                &[("Ready", "True")],
            ),
            mapping(
                "org",
                "home",
                HEX_A,
                "a",
                Some(("a", "k")),
                &[("Ready", "True")],
            ),
            mapping(
                "org",
                "stranded-declared",
                HEX_A,
                "a",
                None,
                &[("Stranded", "True")],
            ),
            mapping(
                "org",
                "moved-away",
                HEX_A,
                "a",
                Some(("b", "k")),
                &[("Stranded", "False")],
            ),
            mapping(
                "other-org",
                "foreign",
                HEX_A,
                "a",
                Some(("a", "k")),
                &[("Stranded", "True")],
            ),
        ];
        assert_eq!(
            mapping_counts(&a, &mappings),
            MappingCounts {
                serving: 2,
                stranded: 1
            }
        );
    }

    #[test]
    fn conflicts_name_the_other_claimants_of_the_namespace() {
        let all = vec![
            backend("org", "a", true, false),
            backend("org", "c", true, false),
            backend("org", "b", true, false),
            backend("org", "f1", false, true),
            backend("org", "f2", false, true),
            backend("other", "x", true, false),
        ];
        type Case = (
            &'static str,
            Arc<StorageBackend>,
            (Vec<&'static str>, Vec<&'static str>),
        );
        let cases: Vec<Case> = vec![
            (
                "a default sees the other defaults of its namespace, sorted",
                all[0].clone(),
                (vec!["b", "c"], vec![]),
            ),
            (
                "a fallback sees the other fallbacks",
                all[3].clone(),
                (vec![], vec!["f2"]),
            ),
            (
                "a lone default in its namespace has no conflict",
                all[5].clone(),
                (vec![], vec![]),
            ),
            (
                "a backend that claims nothing has no conflict",
                backend("org", "plain", false, false),
                (vec![], vec![]),
            ),
        ];
        for (name, b, (defaults, fallbacks)) in cases {
            let (d, f) = conflicts(&b, &all);
            assert_eq!(
                (d, f),
                (
                    defaults.iter().map(|s| s.to_string()).collect(),
                    fallbacks.iter().map(|s| s.to_string()).collect()
                ),
                "{name}"
            );
        }
    }

    #[test]
    fn a_secret_maps_to_the_backends_of_its_namespace_that_reference_it() {
        let all = vec![
            backend("org", "a", false, false),
            backend("other", "b", false, false),
        ];
        let secret = |ns: &str, name: &str| k8s_openapi::api::core::v1::Secret {
            metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
                name: Some(name.to_owned()),
                namespace: Some(ns.to_owned()),
                ..Default::default()
            },
            ..k8s_openapi::api::core::v1::Secret::default()
        };
        let names = |refs: Vec<ObjectRef<StorageBackend>>| -> Vec<String> {
            refs.into_iter().map(|r| r.name).collect()
        };
        let cases = [
            (
                "a credentials Secret maps to its backend",
                secret("org", "creds"),
                vec!["a"],
            ),
            (
                "a CA Secret maps to its backend",
                secret("org", "ca"),
                vec!["a"],
            ),
            (
                "a Secret of the same name in another namespace maps only there",
                secret("other", "creds"),
                vec!["b"],
            ),
            (
                "an unreferenced Secret maps to nothing",
                secret("org", "unrelated"),
                vec![],
            ),
        ];
        for (name, s, want) in cases {
            assert_eq!(names(backends_referencing(&s, &all)), want, "{name}");
        }
    }
}
