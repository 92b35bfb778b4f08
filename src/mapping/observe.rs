//! What the ArtifactMapping controller knows before it decides: the backends of the mapping's
//! namespace (from the reflector cache), and what is known about the object on each — from the
//! verifier's memory, from the mapping's own status, or from one HEAD on the declared backend
//! when nothing is known.
//!
//! Owns: gathering those facts, and the pure rules for reading them ([`from_memory`],
//! [`from_status`], [`needs_head`]). Must not: list from the API server, look outside the
//! mapping's namespace, or decide placement.

use std::sync::Arc;

use kube::ResourceExt;

use super::decide::Attempt;
use super::{findings, Context, Error};
use crate::api::condition;
use crate::api::mapping::BadReplica;
use crate::api::reasons::mapping_condition;
use crate::api::{ArtifactMapping, StorageBackend};
use crate::digest::Digest;
use crate::placement::view::reader_of;
use crate::placement::{BackendView, ObjectFact, Replica};
use crate::storage::verify::Verdict;
use crate::verifier::{Fact, Target};

/// The size `spec.size` declares, if any.
pub fn declared_size(mapping: &ArtifactMapping) -> Option<u64> {
    mapping.spec.size.and_then(|s| u64::try_from(s).ok())
}

/// What a remembered fact says about the object; `None` when it says nothing lasting.
pub fn from_memory(fact: &Fact) -> Option<ObjectFact> {
    Some(match fact {
        Fact::Present { size } => ObjectFact::Present { size: *size },
        Fact::Verdict { verdict, .. } => match verdict {
            Verdict::Verified { .. } => ObjectFact::Verified,
            Verdict::DigestMismatch { .. } => ObjectFact::Mismatch,
            Verdict::SizeMismatch { actual, .. } => ObjectFact::Present { size: *actual },
            Verdict::Missing => ObjectFact::Missing,
            Verdict::Truncated { .. } | Verdict::Interrupted(_) | Verdict::Failed(_) => {
                return None
            }
        },
    })
}

/// What is known about a copy: what the verifier remembers, unless a bad-replica record is newer
/// (a HEAD, or a verdict from before the finding, cannot clear it); then what the status says.
pub fn object_fact(
    remembered: Option<&Fact>,
    bad: Option<&BadReplica>,
    status: impl FnOnce() -> Option<ObjectFact>,
) -> ObjectFact {
    if let Some(bad) = bad {
        return match remembered {
            Some(fact @ Fact::Verdict { at, .. }) if findings::supersedes(at, bad) => {
                from_memory(fact).unwrap_or_else(|| findings::fact_of(bad))
            }
            _ => findings::fact_of(bad),
        };
    }
    remembered
        .and_then(from_memory)
        .or_else(status)
        .unwrap_or(ObjectFact::Unknown)
}

fn bad_replica<'a>(
    mapping: &'a ArtifactMapping,
    backend: &str,
    key: &str,
) -> Option<&'a BadReplica> {
    let status = mapping.status.as_ref()?;
    findings::recorded(&status.bad_replicas, backend, key)
}

/// The conclusive verdicts the verifier remembers about the mapping's copies (a scrub's, or a
/// verification of another reconcile), as evidence for the status.
pub fn remembered(
    mapping: &ArtifactMapping,
    digest: &Digest,
    backends: &[Arc<StorageBackend>],
    ctx: &Context,
) -> Vec<Attempt> {
    backends
        .iter()
        .filter_map(|backend| {
            let view = BackendView::of(backend);
            let key = view.key_of(mapping, digest);
            let target = target(mapping, digest, backend, &key);
            match ctx.verifier.known(&target)? {
                Fact::Verdict { verdict, at } if verdict.is_conclusive() => Some(Attempt {
                    backend: view.name,
                    key,
                    verdict,
                    at,
                }),
                _ => None,
            }
        })
        .collect()
}

/// What the mapping's own status says about the object on `backend` under `key`: the status is
/// what this controller concluded earlier, so a restart does not re-HEAD every served mapping.
pub fn from_status(mapping: &ArtifactMapping, backend: &str, key: &str) -> Option<ObjectFact> {
    let status = mapping.status.as_ref()?;
    let serving = status.backend.as_deref() == Some(backend)
        && status.key.as_deref() == Some(key)
        && condition::is_true(&status.conditions, mapping_condition::READY);
    if !serving {
        return None;
    }
    if condition::is_true(&status.conditions, mapping_condition::VERIFIED) {
        Some(ObjectFact::Verified)
    } else {
        Some(ObjectFact::Present {
            size: declared_size(mapping).unwrap_or(0),
        })
    }
}

/// Whether the object on a backend is worth one HEAD: only on the declared backend, only when it
/// may serve, and only when nothing is known.
pub fn needs_head(object: &ObjectFact, declared: bool, view: &BackendView) -> bool {
    *object == ObjectFact::Unknown && declared && view.usable()
}

/// Whether the declared copy must verify before it serves: a mapping created by discovery
/// records what a bucket claims, not what a writer uploaded, so a HEAD proves too little.
pub fn needs_verification(
    mapping: &ArtifactMapping,
    object: &ObjectFact,
    declared: bool,
    view: &BackendView,
) -> bool {
    let discovered = mapping
        .metadata
        .labels
        .as_ref()
        .is_some_and(|l| l.contains_key(crate::discovery::DISCOVERED_BY));
    discovered
        && declared
        && view.usable()
        && matches!(object, ObjectFact::Unknown | ObjectFact::Present { .. })
}

/// The backends of `namespace`, and only those, from the reflector cache, sorted by name.
pub fn namespace_backends(ctx: &Context, namespace: &str) -> Vec<Arc<StorageBackend>> {
    let mut backends: Vec<_> = ctx
        .backends
        .state()
        .into_iter()
        .filter(|b| b.metadata.namespace.as_deref() == Some(namespace))
        .collect();
    backends.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    backends
}

/// The verification target of the mapping under `key`, read through `backend`.
pub fn target(
    mapping: &ArtifactMapping,
    digest: &Digest,
    backend: &StorageBackend,
    key: &str,
) -> Target {
    Target {
        tenant: backend.metadata.namespace.clone().unwrap_or_default(),
        reader: reader_of(backend),
        key: key.to_owned(),
        digest: digest.clone(),
        size: declared_size(mapping),
    }
}

/// Gathers what is known about each backend and the object on it. I/O only through
/// [`needs_head`]: one HEAD, remembered by the verifier.
pub async fn replicas(
    mapping: &ArtifactMapping,
    digest: &Digest,
    backends: &[Arc<StorageBackend>],
    ctx: &Context,
) -> Result<Vec<Replica>, Error> {
    let mut replicas = Vec::with_capacity(backends.len());
    for backend in backends {
        let view = BackendView::of(backend);
        let key = view.key_of(mapping, digest);
        let target = target(mapping, digest, backend, &key);
        let mut object = object_fact(
            ctx.verifier.known(&target).as_ref(),
            bad_replica(mapping, &view.name, &key),
            || from_status(mapping, &view.name, &key),
        );
        let declared = view.name == mapping.spec.backend_ref.name;
        if needs_verification(mapping, &object, declared, &view) {
            object = verify(backend, &target, ctx).await;
        } else if needs_head(&object, declared, &view) {
            object = head(backend, &target, ctx).await?;
        }
        replicas.push(Replica {
            backend: view,
            key,
            object,
        });
    }
    Ok(replicas)
}

/// Reads the copy through the verifier (remembered, so the reconcile's evidence carries it).
/// A read that says nothing about the bytes leaves the copy unknown: it does not serve.
async fn verify(backend: &StorageBackend, target: &Target, ctx: &Context) -> ObjectFact {
    let verdict = match ctx.clients.store_for(backend).await {
        Err(err) => Verdict::Failed(err.as_storage_error()),
        Ok(store) => {
            ctx.verifier
                .verify(store, target, ctx.clock.now_time())
                .await
                .0
        }
    };
    from_memory(&Fact::Verdict {
        verdict,
        at: ctx.clock.now_time(),
    })
    .unwrap_or(ObjectFact::Unknown)
}

async fn head(
    backend: &StorageBackend,
    target: &Target,
    ctx: &Context,
) -> Result<ObjectFact, Error> {
    let name = backend.name_any();
    let store = ctx
        .clients
        .store_for(backend)
        .await
        .map_err(|source| Error::Resolve {
            backend: name.clone(),
            source,
        })?;
    match ctx.verifier.head(store, target).await {
        Ok(Some(size)) => Ok(ObjectFact::Present { size }),
        Ok(None) => Ok(ObjectFact::Missing),
        Err(source) => Err(Error::Storage {
            backend: name,
            source,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::backend::Trust;
    use crate::placement::test_objects::declared_on;
    use crate::storage::{ErrorKind, StorageError};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    fn at() -> Time {
        Time(k8s_openapi::jiff::Timestamp::UNIX_EPOCH)
    }

    #[test]
    fn remembered_verdicts_read_as_object_facts() {
        let cut = StorageError::new(ErrorKind::BodyInterrupted, "cut");
        let verdict = |verdict| Fact::Verdict { verdict, at: at() };
        let cases = [
            (
                "a HEAD is a present object",
                Fact::Present { size: 7 },
                Some(ObjectFact::Present { size: 7 }),
            ),
            (
                "verified bytes are verified",
                verdict(Verdict::Verified { bytes: 7 }),
                Some(ObjectFact::Verified),
            ),
            (
                "a digest mismatch is a mismatch",
                verdict(Verdict::DigestMismatch {
                    actual: Digest::of_bytes(crate::digest::Algorithm::Sha256, b""),
                }),
                Some(ObjectFact::Mismatch),
            ),
            (
                "a size mismatch is an object of the size seen",
                verdict(Verdict::SizeMismatch {
                    expected: 1,
                    actual: 9,
                }),
                Some(ObjectFact::Present { size: 9 }),
            ),
            (
                "a missing object is missing",
                verdict(Verdict::Missing),
                Some(ObjectFact::Missing),
            ),
            (
                "a cut read says nothing",
                verdict(Verdict::Interrupted(cut.clone())),
                None,
            ),
            (
                "a failed read says nothing",
                verdict(Verdict::Failed(cut)),
                None,
            ),
        ];
        for (name, fact, want) in cases {
            assert_eq!(from_memory(&fact), want, "{name}");
        }
    }

    fn with_status(backend: &str, key: &str, ready: &str, verified: &str) -> ArtifactMapping {
        let mut m = declared_on("a");
        m.status = Some(
            serde_json::from_value(serde_json::json!({
                "backend": backend,
                "key": key,
                "conditions": [
                    {"type": "Ready", "status": ready, "reason": "R", "message": "", "lastTransitionTime": "2026-01-01T00:00:00Z"},
                    {"type": "Verified", "status": verified, "reason": "R", "message": "", "lastTransitionTime": "2026-01-01T00:00:00Z"},
                ],
            }))
            .unwrap(),
        );
        m
    }

    #[test]
    fn the_status_vouches_only_for_the_backend_and_key_it_serves() {
        let cases = [
            (
                "a verified serving backend is verified",
                with_status("b", "k", "True", "True"),
                "b",
                "k",
                Some(ObjectFact::Verified),
            ),
            (
                "an unverified serving backend holds the declared size",
                with_status("a", "k", "True", "Unknown"),
                "a",
                "k",
                Some(ObjectFact::Present { size: 100 }),
            ),
            (
                "another backend is unknown",
                with_status("b", "k", "True", "True"),
                "c",
                "k",
                None,
            ),
            (
                "another key is unknown",
                with_status("b", "k", "True", "True"),
                "b",
                "other",
                None,
            ),
            (
                "a mapping that is not Ready vouches for nothing",
                with_status("b", "k", "False", "True"),
                "b",
                "k",
                None,
            ),
            (
                "a mapping without status vouches for nothing",
                declared_on("a"),
                "a",
                "k",
                None,
            ),
        ];
        for (name, mapping, backend, key, want) in cases {
            assert_eq!(from_status(&mapping, backend, key), want, "{name}");
        }
    }

    #[test]
    fn a_bad_replica_record_outweighs_a_head_and_older_verdicts_but_not_a_newer_verification() {
        use crate::api::mapping::BadReplica;
        let at_secs = |s| Time(k8s_openapi::jiff::Timestamp::from_second(s).unwrap());
        let bad = BadReplica {
            backend: "a".into(),
            key: "k".into(),
            reason: "DigestMismatch".into(),
            size: None,
            detected_time: at_secs(100),
        };
        let verified = |secs| Fact::Verdict {
            verdict: Verdict::Verified { bytes: 1 },
            at: at_secs(secs),
        };
        let served = || Some(ObjectFact::Verified);
        let cases = [
            (
                "no record: memory first",
                None,
                Some(verified(50)),
                ObjectFact::Verified,
            ),
            (
                "no record, nothing remembered: the status",
                None,
                None,
                ObjectFact::Verified,
            ),
            (
                "a record and a HEAD",
                Some(&bad),
                Some(Fact::Present { size: 1 }),
                ObjectFact::Mismatch,
            ),
            (
                "a record and an older verification",
                Some(&bad),
                Some(verified(99)),
                ObjectFact::Mismatch,
            ),
            (
                "a record and a newer verification",
                Some(&bad),
                Some(verified(101)),
                ObjectFact::Verified,
            ),
            (
                "a record and nothing remembered",
                Some(&bad),
                None,
                ObjectFact::Mismatch,
            ),
        ];
        for (name, record, remembered, want) in cases {
            assert_eq!(
                object_fact(remembered.as_ref(), record, served),
                want,
                "{name}"
            );
        }
    }

    #[test]
    fn only_an_unknown_object_on_a_usable_declared_backend_is_headed() {
        let view = |ready, trust| BackendView {
            name: "a".into(),
            ready,
            trust,
            location: "l".into(),
            default: false,
            fallback: false,
            priority: 0,
            key_prefix: String::new(),
        };
        let usable = view(true, Trust::Trusted);
        let cases = [
            (
                "nothing known on the declared backend",
                ObjectFact::Unknown,
                true,
                usable.clone(),
                true,
            ),
            (
                "something known",
                ObjectFact::Missing,
                true,
                usable.clone(),
                false,
            ),
            ("another backend", ObjectFact::Unknown, false, usable, false),
            (
                "a declared backend that is not ready",
                ObjectFact::Unknown,
                true,
                view(false, Trust::Trusted),
                false,
            ),
            (
                "a quarantined declared backend",
                ObjectFact::Unknown,
                true,
                view(true, Trust::Quarantined),
                false,
            ),
        ];
        for (name, object, declared, view, want) in cases {
            assert_eq!(needs_head(&object, declared, &view), want, "{name}");
        }
    }
}
