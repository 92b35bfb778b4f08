//! The one error type of the StorageBackend controller.
//!
//! Owns: what can make a reconcile *fail* (as opposed to a backend being unhealthy, which is a
//! status, not an error): the API server refusing or losing a request, an object missing
//! metadata. Each variant has a stable metric label.
//!
//! Must not: carry credential material (Secret values never reach an error here).

use crate::resolve::ResolveError;

/// Why a reconcile of a StorageBackend failed. A backend that fails validation is *not* an
/// error: it is recorded in its status and the reconcile succeeds.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The referenced Secrets could not be read (not their absence: that is a status reason).
    #[error("resolving the backend: {0}")]
    Resolve(#[source] ResolveError),
    /// The server-side apply of `/status` failed.
    #[error("writing status: {0}")]
    PatchStatus(#[source] kube::Error),
    /// The object lacks metadata the API server always sets.
    #[error("the StorageBackend has no {0}")]
    IncompleteObject(&'static str),
    /// The reconcile panicked (a bug): an error on this object, retried; the process lives on.
    #[error("the reconcile panicked: {0}")]
    Panicked(String),
    #[error("the ArtifactMapping cache has not completed its first list (can the operator list and watch ArtifactMappings?)")]
    CacheNotSynced,
}

impl Error {
    /// A stable label for `castellan_reconcile_errors{error=...}`.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Error::Resolve(_) => "resolve",
            Error::PatchStatus(_) => "status_patch",
            Error::IncompleteObject(_) => "incomplete_object",
            Error::Panicked(_) => "panic",
            Error::CacheNotSynced => "cache_not_synced",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_has_a_distinct_stable_label() {
        let errors = [
            Error::Resolve(ResolveError::IncompleteObject("metadata.uid")),
            Error::PatchStatus(kube::Error::LinesCodecMaxLineLengthExceeded),
            Error::IncompleteObject("metadata.namespace"),
            Error::Panicked("boom".into()),
            Error::CacheNotSynced,
        ];
        let labels: Vec<_> = errors.iter().map(Error::metric_label).collect();
        assert_eq!(
            labels,
            [
                "resolve",
                "status_patch",
                "incomplete_object",
                "panic",
                "cache_not_synced"
            ]
        );
    }
}
