//! Object storage: the narrow [`ObjectStore`] trait the operator and the CLI talk to, the types
//! it exchanges, and its S3 implementation.
//!
//! Owns: everything that touches a bucket. Submodules: [`error`] (classification onto DESIGN's
//! reasons), [`layout`] (key layout), [`s3`] (aws-sdk-s3 implementation and its configuration),
//! [`verify`] (the one verified read: a GET streamed through the digest).
//!
//! Must not: depend on `crate::api` types other than the reasons, or on Kubernetes.
//! Keys passed to the trait are full bucket keys (use [`layout`] to build them).

pub mod error;
pub mod layout;
pub mod network;
pub mod s3;
pub mod verify;

use std::fmt;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use futures::stream::BoxStream;

pub use error::{ErrorKind, StorageError};
pub use s3::{S3Config, S3Store, Sse, StaticCredentials};
pub use verify::{read_verified, ReadOptions, Sink, Verdict, Verification};

/// How deep a backend probe goes (`validation.probe` in the StorageBackend spec).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ProbeMode {
    /// ListObjectsV2(max-keys=1, prefix) + HeadBucket + HEAD of a known mapped object.
    #[default]
    Read,
    /// Read, then put, get back and delete a canary under `<prefix>/.castellan/probe/`.
    ReadWrite,
}

/// What a successful probe did, for logs and latency metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeReport {
    pub steps: Vec<ProbeStep>,
    pub elapsed: Duration,
}

/// One request of a probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeStep {
    /// The S3 operation, e.g. `ListObjectsV2`.
    pub operation: &'static str,
    pub elapsed: Duration,
}

/// What HEAD says about an object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    pub size: u64,
    pub etag: Option<String>,
    pub last_modified: Option<SystemTime>,
    pub storage_class: Option<String>,
}

/// An inclusive byte range, `bytes=start-end` (or `bytes=start-` to the end).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteRange {
    pub start: u64,
    /// Inclusive; `None` reads to the end of the object.
    pub end: Option<u64>,
}

impl ByteRange {
    /// The value of the HTTP `Range` header.
    pub fn header_value(&self) -> String {
        match self.end {
            Some(end) => format!("bytes={}-{}", self.start, end),
            None => format!("bytes={}-", self.start),
        }
    }
}

/// A stream of body bytes whose errors are already classified.
pub type ByteStream = BoxStream<'static, Result<Bytes, StorageError>>;

/// A GET in progress: headers have arrived, the body streams.
pub struct GetObject {
    /// The announced `Content-Length` of this response (of the range, for a range GET).
    pub content_length: Option<u64>,
    /// The whole object's size when the server said it (`Content-Range: bytes a-b/total`).
    pub total_size: Option<u64>,
    pub etag: Option<String>,
    pub body: ByteStream,
}

impl fmt::Debug for GetObject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GetObject")
            .field("content_length", &self.content_length)
            .field("total_size", &self.total_size)
            .field("etag", &self.etag)
            .finish_non_exhaustive()
    }
}

/// Where the bytes of a PUT come from.
pub enum PutBody {
    /// A file, read in parts (never loaded whole).
    Path(PathBuf),
    /// A stream, e.g. a download being copied.
    Stream(BoxStream<'static, std::io::Result<Bytes>>),
    /// Bytes already in memory.
    Bytes(Bytes),
}

impl fmt::Debug for PutBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PutBody::Path(p) => write!(f, "Path({})", p.display()),
            PutBody::Stream(_) => f.write_str("Stream(..)"),
            PutBody::Bytes(b) => write!(f, "Bytes({} bytes)", b.len()),
        }
    }
}

/// Per-write options; `None` fields fall back to the store's configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PutOptions {
    pub content_type: Option<String>,
    pub storage_class: Option<String>,
    pub sse: Option<Sse>,
}

/// What a successful PUT produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PutOutcome {
    pub etag: Option<String>,
    /// Number of parts when the upload was multipart; `None` for a single PUT.
    pub parts: Option<u32>,
}

/// One object in a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedObject {
    pub key: String,
    pub size: u64,
    pub etag: Option<String>,
}

/// One page of a listing.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ListPage {
    pub objects: Vec<ListedObject>,
    /// Pass back to get the next page; `None` on the last page.
    pub next_continuation_token: Option<String>,
}

/// The operations Castellan needs from a bucket. Object-safe: the operator holds
/// `Arc<dyn ObjectStore>`.
#[async_trait::async_trait]
pub trait ObjectStore: Send + Sync {
    /// Checks that the backend is usable (see [`ProbeMode`]); `known_key` is a mapped object
    /// that must be HEAD-able.
    async fn probe(
        &self,
        mode: ProbeMode,
        known_key: Option<&str>,
    ) -> Result<ProbeReport, StorageError>;

    /// Metadata of `key`; a missing key is `Ok(None)`.
    async fn head(&self, key: &str) -> Result<Option<ObjectInfo>, StorageError>;

    /// Starts streaming `key` (or a range of it). A missing key is an error of kind
    /// [`ErrorKind::NotFound`].
    async fn get(&self, key: &str, range: Option<ByteRange>) -> Result<GetObject, StorageError>;

    /// Writes `size` bytes from `body` to `key`, in parts above the multipart threshold.
    async fn put(
        &self,
        key: &str,
        body: PutBody,
        size: u64,
        options: &PutOptions,
    ) -> Result<PutOutcome, StorageError>;

    /// Deletes `key`; deleting a missing key succeeds.
    async fn delete(&self, key: &str) -> Result<(), StorageError>;

    /// One page of the keys starting with `prefix` (a full bucket prefix).
    async fn list(
        &self,
        prefix: &str,
        continuation_token: Option<&str>,
    ) -> Result<ListPage, StorageError>;

    /// The configured key prefix (possibly empty), for [`layout`].
    fn key_prefix(&self) -> &str;
}
