//! ArtifactMapping controller: observe → decide (pure) → act.
//!
//! - [`decide`]: the placement rules and the status they produce (pure, table-tested);
//! - [`reconcile`]: the thin acting layer (cache reads, HEAD/verification, one status write);
//! - [`verify`]: bounded, shared, rate-limited digest verification with its facts cache;
//! - [`index`]: mappings by declared backend, serving backend and stranded-in-namespace, and the
//!   backend→mappings mapper that fans out only on real backend transitions.
//!
//! Must not: write a mapping's spec, or serve a mapping from another namespace's backend.

pub mod decide;
pub mod index;
pub mod reconcile;
pub mod verify;

pub use index::{mappings_for_backend, MappingIndex};
pub use reconcile::{error_policy, reconcile, CONTROLLER};
pub use verify::Verifier;

use crate::digest::DigestParseError;
use crate::resolve::ResolveError;
use crate::storage::StorageError;

/// Everything that can make a mapping reconcile fail. Each variant has a stable metric label.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The mapping has no namespace (the API server always sets one): terminal.
    #[error("the ArtifactMapping has no namespace")]
    MissingNamespace,
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
    #[error("status patch failed: {0}")]
    StatusPatch(#[source] kube::Error),
}

impl Error {
    /// A stable label for the `reconcile_errors` metric.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Error::MissingNamespace => "missing_namespace",
            Error::InvalidDigest(_) => "invalid_digest",
            Error::Resolve { .. } => "resolve",
            Error::Storage { .. } => "storage",
            Error::StatusPatch(_) => "status_patch",
        }
    }

    /// Terminal errors need a spec change; retrying soon is pointless.
    pub fn is_terminal(&self) -> bool {
        match self {
            Error::MissingNamespace | Error::InvalidDigest(_) => true,
            Error::Storage { source, .. } => source.is_terminal(),
            Error::Resolve { .. } | Error::StatusPatch(_) => false,
        }
    }
}
