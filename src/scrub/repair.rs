//! Repair of a bad copy from a verified one (`spec.scrub.repair: CopyFromVerifiedReplica`).
//!
//! Owns: choosing the source (the backend of the same namespace that serves the mapping with
//! `Verified=True`), streaming its bytes onto the bad copy's key (constant memory whatever the
//! size), and the read-back that alone clears the finding. Must not: write onto a backend that is
//! not `Trusted` or has repair off, read from another namespace, delete anything, or write any
//! API object (the mapping controller clears the record from the read-back's verdict).

use std::sync::Arc;

use futures::TryStreamExt;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::ResourceExt;

use crate::api::backend::{Repair, Trust};
use crate::api::condition;
use crate::api::reasons::mapping_condition;
use crate::api::{ArtifactMapping, StorageBackend};
use crate::mapping::observe;
use crate::resolve::Resolver;
use crate::storage::{PutBody, PutOptions, StorageError};

/// Why a bad copy is not repaired.
#[derive(Debug, thiserror::Error)]
pub enum NotRepaired {
    #[error("repair is off for backend {0}")]
    Off(String),
    #[error("backend {0} is not Trusted: nothing is written to it")]
    NotTrusted(String),
    #[error("no backend of the namespace serves a verified copy")]
    NoVerifiedSource,
    #[error("the mapping declares no size: a copy cannot be written without one")]
    NoSize,
    #[error("backend {backend}: {source}")]
    Storage {
        backend: String,
        #[source]
        source: StorageError,
    },
}

/// Whether `target` may receive repairs at all.
pub fn allowed(target: &StorageBackend) -> Result<(), NotRepaired> {
    if target.spec.scrub.repair != Repair::CopyFromVerifiedReplica {
        return Err(NotRepaired::Off(target.name_any()));
    }
    if target.spec.trust != Trust::Trusted {
        return Err(NotRepaired::NotTrusted(target.name_any()));
    }
    Ok(())
}

/// The backend serving `mapping` with verified bytes, other than `target`, and its key there.
pub fn source<'a>(mapping: &'a ArtifactMapping, target: &str) -> Option<(&'a str, &'a str)> {
    let status = mapping.status.as_ref()?;
    let verified = condition::is_true(&status.conditions, mapping_condition::READY)
        && condition::is_true(&status.conditions, mapping_condition::VERIFIED);
    let backend = status.backend.as_deref().filter(|b| *b != target)?;
    verified.then_some((backend, status.key.as_deref()?))
}

/// Streams the verified copy onto `key` of `target`. The caller reads it back.
pub async fn copy_onto(
    mapping: &ArtifactMapping,
    target: &StorageBackend,
    key: &str,
    backends: &Store<StorageBackend>,
    clients: &Resolver,
) -> Result<(), NotRepaired> {
    allowed(target)?;
    let namespace = target.namespace().unwrap_or_default();
    let (source_name, source_key) =
        source(mapping, &target.name_any()).ok_or(NotRepaired::NoVerifiedSource)?;
    let source = backends
        .get(&ObjectRef::new(source_name).within(&namespace))
        .ok_or(NotRepaired::NoVerifiedSource)?;
    let size = observe::declared_size(mapping).ok_or(NotRepaired::NoSize)?;
    let storage = |backend: &Arc<StorageBackend>| {
        let name = backend.name_any();
        move |source: StorageError| NotRepaired::Storage {
            backend: name,
            source,
        }
    };
    let target = Arc::new(target.clone());
    let from = clients
        .store_for(&source)
        .await
        .map_err(|e| storage(&source)(e.as_storage_error()))?;
    let to = clients
        .store_for(&target)
        .await
        .map_err(|e| storage(&target)(e.as_storage_error()))?;
    let object = from.get(source_key, None).await.map_err(storage(&source))?;
    let body = object.body.map_err(std::io::Error::other);
    to.put(
        key,
        PutBody::Stream(Box::pin(body)),
        size,
        &PutOptions::default(),
    )
    .await
    .map_err(storage(&target))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::placement::test_objects::declared_on;

    fn backend(repair: Repair, trust: Trust) -> StorageBackend {
        let mut b: StorageBackend = serde_json::from_value(serde_json::json!({
            "apiVersion": "castellan.io/v1alpha1", "kind": "StorageBackend",
            "metadata": {"name": "a", "namespace": "t"},
            "spec": {"s3": {"bucket": "b"}},
        }))
        .unwrap();
        b.spec.scrub.repair = repair;
        b.spec.trust = trust;
        b
    }

    #[test]
    fn only_a_trusted_backend_with_repair_on_receives_repairs() {
        use Repair::*;
        let cases = [
            (CopyFromVerifiedReplica, Trust::Trusted, true),
            (Off, Trust::Trusted, false),
            (CopyFromVerifiedReplica, Trust::ReadOnly, false),
            (CopyFromVerifiedReplica, Trust::Quarantined, false),
        ];
        for (repair, trust, want) in cases {
            assert_eq!(
                allowed(&backend(repair, trust)).is_ok(),
                want,
                "{repair:?} {trust:?}"
            );
        }
    }

    fn serving(backend: &str, ready: &str, verified: &str) -> ArtifactMapping {
        let mut m = declared_on("a");
        m.status = Some(
            serde_json::from_value(serde_json::json!({
                "backend": backend, "key": "k",
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
    fn the_source_is_the_other_backend_serving_verified_bytes() {
        assert_eq!(source(&serving("m", "True", "True"), "a"), Some(("m", "k")));
        assert_eq!(
            source(&serving("m", "True", "Unknown"), "a"),
            None,
            "unverified"
        );
        assert_eq!(
            source(&serving("m", "False", "True"), "a"),
            None,
            "not ready"
        );
        assert_eq!(
            source(&serving("a", "True", "True"), "a"),
            None,
            "the bad copy itself"
        );
    }
}
