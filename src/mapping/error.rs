//! The one error type of the ArtifactMapping controller.
//!
//! Owns: what can make a mapping reconcile *fail* (as opposed to a mapping being stranded, which
//! is a status): the API server refusing a write, a backend that cannot be turned into a client,
//! a HEAD that failed, an object the schema should have refused. Each variant has a stable
//! metric label, shared with the StorageBackend controller where the failure is the same.
//!
//! Must not: carry credential material (errors arrive redacted from storage and resolve).

use crate::digest::DigestParseError;
use crate::resolve::ResolveError;
use crate::storage::StorageError;

/// Why a reconcile of an ArtifactMapping failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The object lacks metadata the API server always sets: terminal.
    #[error("the ArtifactMapping has no {0}")]
    IncompleteObject(&'static str),
    /// `spec.digest` does not parse (the CRD schema should have refused it): terminal.
    #[error("invalid spec.digest: {0}")]
    InvalidDigest(#[source] DigestParseError),
    /// A backend could not be turned into a client (Secret unreadable, ...): retried.
    #[error("backend {backend}: {source}")]
    Resolve {
        backend: String,
        #[source]
        source: ResolveError,
    },
    /// HEAD of the object on the declared backend failed (not "missing": that is a fact).
    #[error("backend {backend}: {source}")]
    Storage {
        backend: String,
        #[source]
        source: StorageError,
    },
    /// Writing the status failed: retried.
    #[error("writing status: {0}")]
    StatusPatch(#[source] kube::Error),
    /// The reconcile panicked (a bug): an error on this object, retried; the process lives on.
    #[error("the reconcile panicked: {0}")]
    Panicked(String),
    #[error("the StorageBackend cache has not completed its first list (can the operator list and watch StorageBackends?)")]
    CacheNotSynced,
}

impl Error {
    /// A stable label for `castellan_reconcile_errors{error=...}`.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Error::IncompleteObject(_) => "incomplete_object",
            Error::InvalidDigest(_) => "invalid_digest",
            Error::Resolve { .. } => "resolve",
            Error::Storage { .. } => "storage",
            Error::StatusPatch(_) => "status_patch",
            Error::Panicked(_) => "panic",
            Error::CacheNotSynced => "cache_not_synced",
        }
    }

    /// Terminal errors need a spec change; retrying soon is pointless.
    pub fn is_terminal(&self) -> bool {
        match self {
            Error::IncompleteObject(_) | Error::InvalidDigest(_) => true,
            Error::Storage { source, .. } => source.is_terminal(),
            Error::Resolve { .. }
            | Error::StatusPatch(_)
            | Error::Panicked(_)
            | Error::CacheNotSynced => false,
        }
    }
}
