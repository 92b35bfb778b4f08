//! `ArtifactMapping`: which backend serves the blob with a given digest.
//!
//! The artifact service (or `castellan put`) creates it; `spec.backendRef` records where the blob
//! was written and is never rewritten by the operator. `status.backend` is the answer a downloader
//! reads: the backend serving the blob now, after its bytes re-verified against the digest.

// kube's derive takes one `printcolumn(...)` per column: repeating it is its syntax, not a mistake.
#![allow(clippy::duplicated_attributes)]

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use super::schema::conditions_schema;

/// The most history entries kept in `status.history` (oldest dropped first).
pub const MAX_HISTORY: usize = 10;
/// The most entries kept in `status.badReplicas` (oldest dropped first).
pub const MAX_BAD_REPLICAS: usize = 16;

/// Spec of an `ArtifactMapping`.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "castellan.io",
    version = "v1alpha1",
    kind = "ArtifactMapping",
    namespaced,
    status = "ArtifactMappingStatus",
    shortname = "am",
    category = "castellan",
    doc = "Records which storage backend holds the blob with a given content digest, and which one serves it now.",
    printcolumn(name = "Digest", type_ = "string", json_path = ".status.shortDigest"),
    printcolumn(
        name = "Declared",
        type_ = "string",
        json_path = ".spec.backendRef.name"
    ),
    printcolumn(name = "Serving", type_ = "string", json_path = ".status.backend"),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(
        name = "Reason",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].reason"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct ArtifactMappingSpec {
    /// Content digest: `sha256:` + 64 lowercase hex digits, or `sha512:` + 128. Immutable.
    #[x_kube(
        validation = Rule::new("self.matches('^(sha256:[0-9a-f]{64}|sha512:[0-9a-f]{128})$')").message("digest must be 'sha256:' followed by 64 lowercase hex digits, or 'sha512:' followed by 128"),
        validation = Rule::new("self == oldSelf").message("digest is immutable: create a new ArtifactMapping for other content")
    )]
    #[schemars(length(max = 135))]
    pub digest: String,
    /// Size in bytes (0 to 5 TiB, the largest S3 object), checked before any download.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self >= 0 && self <= 5497558138880").message("size must be between 0 and 5497558138880 (5 TiB)"))]
    pub size: Option<i64>,
    /// The backend the blob was written to (provenance).
    pub backend_ref: BackendRef,
    /// Object key override; default `<keyPrefix>/<algo>/<hex[0:2]>/<hex[2:4]>/<hex>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 1024))]
    #[x_kube(
        validation = Rule::new("self.size() > 0 && self.size() <= 1024").message("key must be 1 to 1024 characters"),
        validation = Rule::new("!self.startsWith('/')").message("key must not start with '/'"),
        validation = Rule::new("!self.matches('(^|/)[.][.]?(/|$)')").message("key must not contain '.' or '..' segments"),
        validation = Rule::new("!self.contains('//')").message("key must not contain empty segments ('//')"),
        validation = Rule::new("!self.matches('[[:cntrl:]]')").message("key must not contain control characters")
    )]
    pub key: Option<String>,
    /// Whether the operator may serve this blob from another backend.
    #[serde(default)]
    pub reassignment: Reassignment,
}

/// Reference to a `StorageBackend` in the same namespace.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Hash)]
#[serde(rename_all = "camelCase")]
pub struct BackendRef {
    /// Name of the StorageBackend (same namespace).
    #[schemars(length(max = 253))]
    #[x_kube(
        validation = Rule::new("self.size() > 0 && self.size() <= 253").message("backendRef.name must be 1 to 253 characters"),
        validation = Rule::new("self.matches('^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$')").message("backendRef.name must be a StorageBackend name: lowercase letters, digits, '-' and '.'")
    )]
    pub name: String,
}

/// Reassignment policy.
#[derive(
    schemars::JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq,
)]
pub enum Reassignment {
    /// Serve from another verified backend when the declared one is unusable.
    #[default]
    Auto,
    /// Never move: a stranded mapping stays stranded.
    Never,
}

/// Status of an `ArtifactMapping`, written only by the operator through `/status`.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ArtifactMappingStatus {
    /// The generation the status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// The backend serving the blob now: the answer a downloader reads.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backend: Option<String>,
    /// The object key on the serving backend.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// The digest shortened for `kubectl get` (algorithm and 12 hex digits).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub short_digest: Option<String>,
    /// Ready, Stranded, Verified, Reassigned.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "conditions_schema")]
    pub conditions: Vec<Condition>,
    /// When the serving backend's bytes last re-verified against the digest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_verified_time: Option<Time>,
    /// Copies found to hold other bytes or to be gone, newest last: never served, and a
    /// mapping never returns onto one, until that copy verifies again.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16))]
    #[x_kube(validation = Rule::new("self.size() <= 16").message("badReplicas holds at most 16 entries"))]
    pub bad_replicas: Vec<BadReplica>,
    /// Moves between backends, newest last, at most ten.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 10))]
    #[x_kube(validation = Rule::new("self.size() <= 10").message("history holds at most 10 entries"))]
    pub history: Vec<HistoryEntry>,
}

/// One move of a mapping between backends.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct HistoryEntry {
    /// The backend that served it before (absent for the first assignment).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// The backend serving it after the move.
    pub to: String,
    /// When it moved.
    pub at: Time,
    /// Why (e.g. DigestVerified, Declared).
    pub reason: String,
}

/// A copy of the blob that failed verification.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct BadReplica {
    /// The StorageBackend holding the copy.
    pub backend: String,
    /// The object key of the copy.
    pub key: String,
    /// `DigestMismatch`, `SizeMismatch` or `ObjectMissing`.
    pub reason: String,
    /// The size the copy has (for `SizeMismatch`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<i64>,
    /// When the finding was first made.
    pub detected_time: Time,
}
