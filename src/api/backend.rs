//! `StorageBackend`: an S3-compatible bucket (plus credentials) that can hold artifacts.
//!
//! Users own the spec (kubectl, GitOps); the operator owns the status. Everything a user can get
//! wrong is rejected at admission by the generated schema and its CEL rules, with a message
//! naming the field.

// kube's derive takes one `printcolumn(...)` per column: repeating it is its syntax, not a mistake.
#![allow(clippy::duplicated_attributes)]

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use super::schema::conditions_schema;

/// Default region when `spec.s3.region` is absent.
pub const DEFAULT_REGION: &str = "us-east-1";
/// Default part-size threshold above which uploads are multipart (64 MiB).
pub const DEFAULT_MULTIPART_THRESHOLD_BYTES: i64 = 64 * 1024 * 1024;
/// Default multipart part size (16 MiB).
pub const DEFAULT_MULTIPART_CHUNK_BYTES: i64 = 16 * 1024 * 1024;
/// S3's smallest allowed part (all parts but the last).
pub const MIN_MULTIPART_CHUNK_BYTES: i64 = 5 * 1024 * 1024;

/// Go-style durations as Kubernetes writes them (`30s`, `5m`, `1h30m`, `1.5h`, `0`): at most four
/// parts of at most six digits each, so that no value the schema admits overflows anything.
pub const DURATION_PATTERN: &str = r"^(0|([0-9]{1,6}(\.[0-9]{1,9})?(ns|us|ms|s|m|h)){1,4})$";
/// The longest any duration field may be: a year.
pub const MAX_DURATION: &str = "8760h";
/// The largest object S3 stores (5 TiB): also the largest `spec.size` and multipart threshold.
pub const MAX_OBJECT_BYTES: i64 = 5 * 1024 * 1024 * 1024 * 1024;

/// Spec of a `StorageBackend`.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "castellan.io",
    version = "v1alpha1",
    kind = "StorageBackend",
    namespaced,
    status = "StorageBackendStatus",
    shortname = "sbe",
    category = "castellan",
    doc = "An S3-compatible bucket, with the credentials to reach it, that can hold content-addressed artifacts.",
    printcolumn(name = "Bucket", type_ = "string", json_path = ".spec.s3.bucket"),
    printcolumn(name = "Default", type_ = "boolean", json_path = ".spec.default"),
    printcolumn(name = "Trust", type_ = "string", json_path = ".spec.trust"),
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
        name = "Serving",
        type_ = "integer",
        json_path = ".status.mappings.serving"
    ),
    printcolumn(
        name = "Stranded",
        type_ = "integer",
        json_path = ".status.mappings.stranded"
    ),
    printcolumn(
        name = "Last Validated",
        type_ = "date",
        json_path = ".status.lastValidationTime"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[x_kube(validation = Rule::new("!(self.default && self.fallback)").message("default and fallback cannot both be true: a backend is either the namespace's default for writes or its fallback").field_path(".fallback"))]
#[serde(rename_all = "camelCase")]
pub struct StorageBackendSpec {
    /// Where the bytes are: an S3-compatible bucket.
    pub s3: S3Spec,
    /// The namespace's backend for new writes. More than one default in a namespace is reported
    /// as a conflict on each of them, never silently resolved.
    #[serde(default)]
    pub default: bool,
    /// Used for writes when the default backend is not Ready.
    #[serde(default)]
    pub fallback: bool,
    /// Replication group: backends with the same location hold the same bytes. Derived from
    /// endpoint, bucket and keyPrefix when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 512))]
    #[x_kube(validation = Rule::new("self.size() <= 512").message("location must be at most 512 characters"))]
    pub location: Option<String>,
    /// Higher is tried first among otherwise equal candidates (-1000 to 1000).
    #[serde(default)]
    #[schemars(range(min = -1000, max = 1000))]
    pub priority: i32,
    /// How far the operator trusts this backend.
    #[serde(default)]
    pub trust: Trust,
    /// How and how often the credentials and the bucket are validated.
    #[serde(default)]
    pub validation: ValidationSpec,
    /// How often and how fast the copies this backend serves are re-read and re-verified.
    #[serde(default)]
    pub scrub: ScrubSpec,
}

/// The S3 bucket and how to reach it.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct S3Spec {
    /// Bucket name (S3 naming rules: 3-63 characters, lowercase letters, digits, dots and hyphens,
    /// starting and ending with a letter or digit, not an IP address).
    #[x_kube(
        validation = Rule::new("self.size() >= 3 && self.size() <= 63").message("bucket must be 3 to 63 characters long"),
        validation = Rule::new("self.matches('^[a-z0-9][a-z0-9.-]*[a-z0-9]$')").message("bucket may contain only lowercase letters, digits, '.' and '-', and must start and end with a letter or digit"),
        validation = Rule::new("!self.contains('..')").message("bucket must not contain two adjacent periods"),
        validation = Rule::new("!self.matches('^[0-9]+[.][0-9]+[.][0-9]+[.][0-9]+$')").message("bucket must not be formatted as an IP address")
    )]
    #[schemars(length(max = 63))]
    pub bucket: String,
    /// Region used for signing.
    #[serde(default = "default_region")]
    #[schemars(length(min = 1, max = 64))]
    #[x_kube(validation = Rule::new("self.matches('^[a-z0-9-]+$')").message("region may contain only lowercase letters, digits and '-'"))]
    pub region: String,
    /// Endpoint URL for non-AWS servers (Ceph RGW, MinIO, Garage); AWS when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 2048))]
    #[x_kube(validation = Rule::new("self.matches('^https?://[^/?#@ ]+(/[^?# ]*)?$')").message("endpoint must be an http:// or https:// URL without credentials, query or fragment"))]
    pub endpoint: Option<String>,
    /// Path-style addressing (`endpoint/bucket/key`), which Ceph RGW, MinIO and Garage usually need.
    #[serde(default)]
    pub force_path_style: bool,
    /// Prefix under which artifacts live: no leading '/', no '..' segments.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(
        validation = Rule::new("!self.startsWith('/')").message("keyPrefix must not start with '/'"),
        validation = Rule::new("!self.endsWith('/')").message("keyPrefix must not end with '/'"),
        validation = Rule::new("!self.matches('(^|/)[.][.](/|$)')").message("keyPrefix must not contain '..' segments"),
        validation = Rule::new("!self.contains('//')").message("keyPrefix must not contain empty segments ('//')"),
        validation = Rule::new("self.size() <= 512").message("keyPrefix must be at most 512 characters"),
        validation = Rule::new("!self.matches('[[:cntrl:]]')").message("keyPrefix must not contain control characters")
    )]
    #[schemars(length(max = 512))]
    pub key_prefix: Option<String>,
    /// Secret holding the access keys; absent means the SDK's default chain (IRSA, environment,
    /// instance profile).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials_secret_ref: Option<CredentialsSecretRef>,
    /// Secret key holding a PEM bundle of private CAs to trust for this endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_bundle_secret_ref: Option<CaBundleSecretRef>,
    /// Storage class used when writing (e.g. STANDARD, STANDARD_IA).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64))]
    #[x_kube(validation = Rule::new("self.matches('^[A-Z_]+$')").message("storageClass must be an S3 storage class such as STANDARD"))]
    pub storage_class: Option<String>,
    /// Server-side encryption used when writing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sse: Option<SseSpec>,
    /// Uploads larger than this are multipart.
    #[serde(default = "default_multipart_threshold")]
    #[x_kube(validation = Rule::new("self >= 5242880 && self <= 5497558138880").message("multipartThresholdBytes must be between 5242880 (5 MiB) and 5497558138880 (5 TiB)"))]
    pub multipart_threshold_bytes: i64,
    /// Part size of multipart uploads.
    #[serde(default = "default_multipart_chunk")]
    #[x_kube(validation = Rule::new("self >= 5242880 && self <= 5368709120").message("multipartChunkBytes must be between 5242880 (5 MiB) and 5368709120 (5 GiB)"))]
    pub multipart_chunk_bytes: i64,
}

/// Reference to a Secret in the backend's namespace holding S3 access keys.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct CredentialsSecretRef {
    /// Name of the Secret (same namespace as the backend).
    #[schemars(length(max = 253))]
    #[x_kube(validation = Rule::new("self.matches('^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$')").message("name must be a Secret name: lowercase letters, digits, '-' and '.'"))]
    pub name: String,
    /// Key of the access key id in the Secret's data.
    #[serde(default = "default_access_key_id_key")]
    #[schemars(length(max = 253))]
    #[x_kube(validation = Rule::new("self.matches('^[-._a-zA-Z0-9]+$')").message("accessKeyIdKey must be a Secret key: letters, digits, '-', '_' and '.'"))]
    pub access_key_id_key: String,
    /// Key of the secret access key in the Secret's data.
    #[serde(default = "default_secret_access_key_key")]
    #[schemars(length(max = 253))]
    #[x_kube(validation = Rule::new("self.matches('^[-._a-zA-Z0-9]+$')").message("secretAccessKeyKey must be a Secret key: letters, digits, '-', '_' and '.'"))]
    pub secret_access_key_key: String,
    /// Optional key of a session token in the Secret's data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 253))]
    #[x_kube(validation = Rule::new("self.matches('^[-._a-zA-Z0-9]+$')").message("sessionTokenKey must be a Secret key: letters, digits, '-', '_' and '.'"))]
    pub session_token_key: Option<String>,
}

/// Reference to one key of a Secret in the backend's namespace.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct CaBundleSecretRef {
    /// Name of the Secret (same namespace as the backend).
    #[schemars(length(max = 253))]
    #[x_kube(validation = Rule::new("self.matches('^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$')").message("name must be a Secret name: lowercase letters, digits, '-' and '.'"))]
    pub name: String,
    /// Key holding the PEM bundle.
    #[serde(default = "default_ca_key")]
    #[schemars(length(max = 253))]
    #[x_kube(validation = Rule::new("self.matches('^[-._a-zA-Z0-9]+$')").message("key must be a Secret key: letters, digits, '-', '_' and '.'"))]
    pub key: String,
}

/// Server-side encryption settings.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.type == 'aws:kms' || !has(self.kmsKeyId)").message("kmsKeyId is only valid with type aws:kms").field_path(".kmsKeyId"))]
pub struct SseSpec {
    /// `AES256` (S3-managed keys) or `aws:kms`.
    #[serde(rename = "type")]
    pub type_: SseType,
    /// KMS key id or ARN (with `aws:kms`); the bucket's default KMS key when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 2048))]
    pub kms_key_id: Option<String>,
}

/// Server-side encryption algorithm.
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum SseType {
    #[serde(rename = "AES256")]
    Aes256,
    #[serde(rename = "aws:kms")]
    AwsKms,
}

impl SseType {
    pub fn as_str(self) -> &'static str {
        match self {
            SseType::Aes256 => "AES256",
            SseType::AwsKms => "aws:kms",
        }
    }
}

/// How far the operator trusts a backend.
#[derive(
    schemars::JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash,
)]
pub enum Trust {
    /// May serve and be written to.
    #[default]
    Trusted,
    /// Never written to; may serve reads.
    ReadOnly,
    /// Never serves and is never a reassignment target; what it serves is stranded.
    Quarantined,
}

impl Trust {
    pub fn as_str(self) -> &'static str {
        match self {
            Trust::Trusted => "Trusted",
            Trust::ReadOnly => "ReadOnly",
            Trust::Quarantined => "Quarantined",
        }
    }
}

/// What a validation probe does.
#[derive(
    schemars::JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq,
)]
pub enum ProbeMode {
    /// HeadBucket, ListObjectsV2 (max-keys=1) under the prefix, and a HEAD of a known mapped object.
    #[default]
    Read,
    /// Read, plus put/get/delete of a canary under `<prefix>/.castellan/probe/`.
    ReadWrite,
}

/// Validation settings.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ValidationSpec {
    /// Time between validations (±10% jitter): 1s to 8760h, or `0` to disable periodic
    /// validation. The operator applies a floor (10s unless started otherwise).
    #[serde(default = "default_interval")]
    #[schemars(length(max = 64))]
    #[x_kube(
        validation = Rule::new("self.matches('^(0|([0-9]{1,6}([.][0-9]{1,9})?(ns|us|ms|s|m|h)){1,4})$')").message("interval must be a duration such as 30s, 5m or 1h30m (0 disables periodic validation)"),
        validation = Rule::new("!self.matches('^(0|([0-9]{1,6}([.][0-9]{1,9})?(ns|us|ms|s|m|h)){1,4})$') || self == '0' || duration(self) == duration('0s') || (duration(self) >= duration('1s') && duration(self) <= duration('8760h'))").message("interval must be 0 (off) or between 1s and 8760h")
    )]
    pub interval: String,
    /// Time allowed for one probe: 100ms to 10m.
    #[serde(default = "default_timeout")]
    #[schemars(length(max = 64))]
    #[x_kube(
        validation = Rule::new("self.matches('^([0-9]{1,6}([.][0-9]{1,9})?(ns|us|ms|s|m|h)){1,4}$')").message("timeout must be a duration such as 10s or 1m"),
        validation = Rule::new("!self.matches('^([0-9]{1,6}([.][0-9]{1,9})?(ns|us|ms|s|m|h)){1,4}$') || (duration(self) >= duration('100ms') && duration(self) <= duration('10m'))").message("timeout must be between 100ms and 10m")
    )]
    pub timeout: String,
    /// Consecutive good probes before a failed backend is Ready again (1 to 100).
    #[serde(default = "default_success_threshold")]
    #[x_kube(validation = Rule::new("self >= 1 && self <= 100").message("successThreshold must be between 1 and 100"))]
    pub success_threshold: i32,
    /// Consecutive transient failures before Ready=False (1 to 100; auth errors fail at once).
    #[serde(default = "default_failure_threshold")]
    #[x_kube(validation = Rule::new("self >= 1 && self <= 100").message("failureThreshold must be between 1 and 100"))]
    pub failure_threshold: i32,
    /// Read or ReadWrite.
    #[serde(default)]
    pub probe: ProbeMode,
}

impl Default for ValidationSpec {
    fn default() -> Self {
        Self {
            interval: default_interval(),
            timeout: default_timeout(),
            success_threshold: default_success_threshold(),
            failure_threshold: default_failure_threshold(),
            probe: ProbeMode::Read,
        }
    }
}

/// Scrubbing settings: every copy this backend serves is re-read and its digest recomputed at
/// least once per interval, spread evenly over it, within a byte budget.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ScrubSpec {
    /// Longest time between two verifications of a served copy: 10s to 87600h, or `0` to turn
    /// scrubbing off for this backend. Reads are spread over the interval and paced by
    /// `bytesPerSecond`, so a short interval never turns into a burst.
    #[serde(default = "default_scrub_interval")]
    #[schemars(length(max = 64))]
    #[x_kube(
        validation = Rule::new("self.matches('^(0|([0-9]{1,6}([.][0-9]{1,9})?(ns|us|ms|s|m|h)){1,4})$')").message("scrub.interval must be a duration such as 720h or 30m (0 turns scrubbing off)"),
        validation = Rule::new("!self.matches('^(0|([0-9]{1,6}([.][0-9]{1,9})?(ns|us|ms|s|m|h)){1,4})$') || self == '0' || duration(self) == duration('0s') || (duration(self) >= duration('10s') && duration(self) <= duration('87600h'))").message("scrub.interval must be 0 (off) or between 10s and 87600h")
    )]
    pub interval: String,
    /// Read budget of scrubbing on this backend in bytes per second (1024 to 10737418240); the
    /// operator-wide budget (`--verify-bytes-per-second`) applies on top.
    #[serde(default = "default_scrub_bytes_per_second")]
    #[x_kube(validation = Rule::new("self >= 1024 && self <= 10737418240").message("scrub.bytesPerSecond must be between 1024 (1 KiB/s) and 10737418240 (10 GiB/s)"))]
    pub bytes_per_second: i64,
    /// What to do with a copy on this backend found corrupt or missing.
    #[serde(default)]
    pub repair: Repair,
}

impl Default for ScrubSpec {
    fn default() -> Self {
        Self {
            interval: default_scrub_interval(),
            bytes_per_second: default_scrub_bytes_per_second(),
            repair: Repair::Off,
        }
    }
}

/// Repair of bad copies found by scrubbing.
#[derive(
    schemars::JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq,
)]
pub enum Repair {
    /// Report only: the copy stays as found until its owner re-uploads it.
    #[default]
    Off,
    /// On a `Trusted` backend, stream the bytes from a backend of the namespace that serves a
    /// verified copy, write them under the copy's key, and read them back; only a read-back that
    /// verifies clears the finding.
    CopyFromVerifiedReplica,
}

/// Default scrub budget: 16 MiB/s reads 40 TiB per 30-day interval, more than a backend's
/// share of most stores, while taking a small slice of one 1 Gbit/s link.
pub const DEFAULT_SCRUB_BYTES_PER_SECOND: i64 = 16 * 1024 * 1024;

/// Status of a `StorageBackend`, written only by the operator through `/status`.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct StorageBackendStatus {
    /// The generation the status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Ready, CredentialsValid, Reachable, Stalled.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "conditions_schema")]
    pub conditions: Vec<Condition>,
    /// When the last probe ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_validation_time: Option<Time>,
    /// When the last probe succeeded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_successful_validation_time: Option<Time>,
    /// Consecutive failed probes.
    #[serde(default)]
    pub consecutive_failures: i32,
    /// Consecutive good probes.
    #[serde(default)]
    pub consecutive_successes: i32,
    /// The resolved replication group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    /// How many mappings this backend serves, and how many declared on it are stranded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mappings: Option<MappingCounts>,
    /// What scrubbing found on this backend.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub integrity: Option<Integrity>,
}

/// What scrubbing found on a backend. The counts come from the mappings' own status, so they
/// survive restarts; `Degraded` is `True` while `corrupt` or `missing` is not zero.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Integrity {
    /// Copies this backend serves that verified within the scrub interval.
    pub verified: i64,
    /// Served copies not verified within the scrub interval (never verified included).
    pub unverified: i64,
    /// Copies on this backend found to hold other bytes (digest or size), not verified since.
    pub corrupt: i64,
    /// Copies on this backend found missing, not found since.
    pub missing: i64,
    /// Bytes the last complete scrub pass read.
    #[serde(default)]
    pub bytes_verified: i64,
    /// When the last scrub pass over every served copy completed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_complete_pass_time: Option<Time>,
}

/// Mapping counts reported on a backend.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct MappingCounts {
    /// Mappings whose `status.backend` is this backend.
    pub serving: i64,
    /// Mappings declared on this backend (or served by it) that are stranded.
    pub stranded: i64,
}

fn default_region() -> String {
    DEFAULT_REGION.to_string()
}
fn default_multipart_threshold() -> i64 {
    DEFAULT_MULTIPART_THRESHOLD_BYTES
}
fn default_multipart_chunk() -> i64 {
    DEFAULT_MULTIPART_CHUNK_BYTES
}
fn default_access_key_id_key() -> String {
    "accessKeyId".to_string()
}
fn default_secret_access_key_key() -> String {
    "secretAccessKey".to_string()
}
fn default_ca_key() -> String {
    "ca.crt".to_string()
}
fn default_scrub_interval() -> String {
    "720h".to_string()
}
fn default_scrub_bytes_per_second() -> i64 {
    DEFAULT_SCRUB_BYTES_PER_SECOND
}
fn default_interval() -> String {
    "5m".to_string()
}
fn default_timeout() -> String {
    "10s".to_string()
}
fn default_success_threshold() -> i32 {
    2
}
fn default_failure_threshold() -> i32 {
    1
}
