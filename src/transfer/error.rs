//! Why a transfer failed. Every variant names what it is about (file, namespace, backend,
//! mapping) and, for backends, the stable reason (`InvalidAccessKeyId`, `DigestMismatch`, ...).
//! Messages come from the storage and resolve layers, which redact credentials and signatures.
//! Must not: add anything from a credential or a request signature.

use std::path::PathBuf;

use super::get::{Attempt, AttemptResult};
use crate::digest::Digest;

/// A failed `put` or `get`.
#[derive(Debug, thiserror::Error)]
pub enum TransferError {
    /// A Kubernetes API call failed (unreachable, forbidden, ...).
    #[error("{action}: {source}")]
    Kube {
        action: String,
        #[source]
        source: kube::Error,
    },
    /// The local file (or the destination's directory) does not exist.
    #[error("{}: no such file or directory", path.display())]
    FileNotFound { path: PathBuf },
    /// Reading or writing a local file failed.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// `put` was given something that is not a regular file.
    #[error("{}: not a regular file", path.display())]
    NotAFile { path: PathBuf },
    /// The file's size or modification time changed while it was hashed and uploaded: the
    /// uploaded bytes may not be the hashed ones, so the upload was removed.
    #[error("{}: the file changed while it was uploaded; the upload was removed, try again", path.display())]
    FileChanged { path: PathBuf },
    /// No default or fallback backend of the namespace may take writes now.
    #[error("no writable backend in namespace {namespace}: {detail}")]
    NoWritableBackend { namespace: String, detail: String },
    /// Reaching a backend failed during `put` (its client could not be built, or S3 refused).
    #[error("backend {backend}: {operation} failed: {reason}: {message}")]
    Backend {
        backend: String,
        operation: &'static str,
        reason: &'static str,
        message: String,
    },
    /// The conventional mapping name is taken by a mapping of other content.
    #[error(
        "ArtifactMapping {name} exists with digest {existing}, not {digest}; it was left unchanged"
    )]
    MappingConflict {
        name: String,
        existing: String,
        digest: Digest,
    },
    /// No mapping for the digest: not under its conventional name, not by `spec.digest`.
    #[error("no ArtifactMapping for {digest} in namespace {namespace} (no mapping named {name}, none with that spec.digest)")]
    MappingNotFound {
        digest: Digest,
        namespace: String,
        name: String,
    },
    /// Every backend was tried (or skipped) and none served bytes that verified.
    #[error(
        "no backend served verified bytes for {digest} (mapping {mapping}): {}",
        describe(attempts)
    )]
    NoVerifiedReplica {
        digest: Digest,
        mapping: String,
        attempts: Vec<Attempt>,
    },
}

impl TransferError {
    /// Every backend that was actually read served other bytes (digest or size mismatch): the
    /// blob as recorded exists nowhere. Skipped backends do not count; at least one must have
    /// been read.
    pub fn is_mismatch_everywhere(&self) -> bool {
        let TransferError::NoVerifiedReplica { attempts, .. } = self else {
            return false;
        };
        let read: Vec<_> = attempts
            .iter()
            .filter(|a| !matches!(a.result, AttemptResult::Skipped { .. }))
            .collect();
        !read.is_empty() && read.iter().all(|a| a.result.is_mismatch())
    }
}

/// `a: InvalidAccessKeyId (HTTP 403 ...); b: DigestMismatch (...)`, or a hint when there was
/// nothing to try.
fn describe(attempts: &[Attempt]) -> String {
    if attempts.is_empty() {
        return "the namespace has no backend to read from".to_owned();
    }
    attempts
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}
