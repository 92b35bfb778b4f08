//! `put`: hash a blob, upload it to the namespace's write backend under the key layout (unless
//! an object of the right size is already there), and create its `ArtifactMapping`.
//!
//! Idempotent: the mapping is named `digest.object_name()`; a second put of the same bytes finds
//! the object and the mapping and changes nothing. A mapping's `spec.backendRef` (provenance) is
//! never rewritten: an existing mapping is reported, not updated.
//!
//! Must not: choose the backend itself (placement does), or create a mapping before the bytes are
//! stored.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use futures::StreamExt;
use kube::api::{Api, PostParams};
use kube::{Client, ResourceExt};

use super::error::TransferError;
use super::progress::{Phase, Progress, Reporter};
use super::{namespace_backends, LOCAL_CREDENTIALS_HINT};
use crate::api::mapping::{BackendRef, Reassignment};
use crate::api::reasons::BackendReason;
use crate::api::{ArtifactMapping, ArtifactMappingSpec, StorageBackend};
use crate::digest::{Algorithm, Digest, Hasher};
use crate::placement::write_backend;
use crate::resolve::{AmbientCredentials, Resolver};
use crate::storage::{self, layout, ObjectStore, PutBody, StorageError};

/// The field manager `put` creates mappings with.
pub const FIELD_MANAGER: &str = "castellan-put";

/// Bytes read per step while hashing a file.
const HASH_CHUNK: usize = 1 << 20;

/// How `put` runs.
#[derive(Clone)]
pub struct PutOptions {
    /// The digest algorithm (sha256 unless asked otherwise).
    pub algorithm: Algorithm,
    /// Receives hashing and upload progress; `None` for none.
    pub progress: Option<Arc<dyn Progress>>,
    /// Whether a backend without a Secret may be written with the user's own AWS credentials.
    pub ambient: AmbientCredentials,
}

impl Default for PutOptions {
    fn default() -> Self {
        PutOptions {
            algorithm: Algorithm::Sha256,
            progress: None,
            ambient: AmbientCredentials::Nowhere,
        }
    }
}

impl std::fmt::Debug for PutOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PutOptions")
            .field("algorithm", &self.algorithm)
            .field("progress", &self.progress.is_some())
            .finish()
    }
}

/// What a successful `put` did.
#[derive(Debug, Clone, PartialEq)]
pub struct PutOutcome {
    pub digest: Digest,
    pub size: u64,
    /// The backend written to (or that already held the object).
    pub backend: String,
    /// The object key on that backend.
    pub key: String,
    /// The `ArtifactMapping`'s name.
    pub mapping: String,
    /// The mapping existed already (same digest); it was left as it was.
    pub mapping_existed: bool,
    /// The mapping's `spec.backendRef`: `backend` for a new mapping, possibly another backend
    /// for one that existed.
    pub declared_backend: String,
    /// An object of the right size was already under the key: nothing was uploaded.
    pub object_existed: bool,
    /// Parts of the multipart upload; `None` for a single PUT or no upload.
    pub parts: Option<u32>,
    /// Bytes sent (0 when the object was already present).
    pub uploaded_bytes: u64,
    /// Time spent uploading (zero when nothing was uploaded).
    pub upload_elapsed: Duration,
    /// Time from start to the mapping being in place, hashing included.
    pub elapsed: Duration,
}

/// Uploads the file at `path` into `namespace` and maps it. The file is read twice (hash, then
/// upload), never held in memory; if its size or modification time changes in between, the
/// upload is removed and the put fails with [`TransferError::FileChanged`].
pub async fn put_file(
    client: &Client,
    namespace: &str,
    path: &Path,
    opts: &PutOptions,
) -> Result<PutOutcome, TransferError> {
    let start = Instant::now();
    let before = file_stamp(path).await?;
    let reporter = Reporter(opts.progress.clone());
    let digest = hash_file(path, opts.algorithm, before.0, reporter.clone()).await?;
    let source = Source::File {
        path: path.to_owned(),
        stamp: before,
    };
    store_and_map(client, namespace, digest, before.0, source, opts, start).await
}

/// Uploads `bytes` into `namespace` and maps them (the demo seeds artifacts with it).
pub async fn put_bytes(
    client: &Client,
    namespace: &str,
    bytes: Bytes,
    opts: &PutOptions,
) -> Result<PutOutcome, TransferError> {
    let start = Instant::now();
    let mut hasher = Hasher::new(opts.algorithm);
    hasher.update(&bytes);
    let digest = hasher.finish();
    let size = bytes.len() as u64;
    store_and_map(
        client,
        namespace,
        digest,
        size,
        Source::Bytes(bytes),
        opts,
        start,
    )
    .await
}

/// Where the bytes come from.
enum Source {
    File { path: PathBuf, stamp: Stamp },
    Bytes(Bytes),
}

/// Size and modification time of a file: what changes when someone writes to it.
type Stamp = (u64, Option<SystemTime>);

async fn file_stamp(path: &Path) -> Result<Stamp, TransferError> {
    let meta = tokio::fs::metadata(path)
        .await
        .map_err(|e| io_error(path, e))?;
    if !meta.is_file() {
        return Err(TransferError::NotAFile {
            path: path.to_owned(),
        });
    }
    Ok((meta.len(), meta.modified().ok()))
}

fn io_error(path: &Path, source: std::io::Error) -> TransferError {
    if source.kind() == std::io::ErrorKind::NotFound {
        TransferError::FileNotFound {
            path: path.to_owned(),
        }
    } else {
        TransferError::Io {
            path: path.to_owned(),
            source,
        }
    }
}

/// Streams the file through the hash on a blocking thread, in [`HASH_CHUNK`] steps.
async fn hash_file(
    path: &Path,
    algorithm: Algorithm,
    size: u64,
    reporter: Reporter,
) -> Result<Digest, TransferError> {
    let owned = path.to_owned();
    reporter.begin(Phase::Hashing, Some(size));
    let counting = reporter.clone();
    let hashed = tokio::task::spawn_blocking(move || {
        let mut file = std::fs::File::open(&owned)?;
        let mut hasher = Hasher::new(algorithm);
        let mut buf = vec![0u8; HASH_CHUNK];
        loop {
            let n = file.read(&mut buf)?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            counting.advance(n as u64);
        }
        Ok::<_, std::io::Error>(hasher.finish())
    })
    .await
    .unwrap_or_else(|join| std::panic::resume_unwind(join.into_panic()));
    reporter.end();
    hashed.map_err(|e| io_error(path, e))
}

fn backend_error(backend: &str, operation: &'static str, e: &StorageError) -> TransferError {
    TransferError::Backend {
        backend: backend.to_owned(),
        operation,
        reason: e.kind().label(),
        message: e.message().to_owned(),
    }
}

async fn store_and_map(
    client: &Client,
    namespace: &str,
    digest: Digest,
    size: u64,
    source: Source,
    opts: &PutOptions,
    start: Instant,
) -> Result<PutOutcome, TransferError> {
    let reporter = Reporter(opts.progress.clone());
    let mappings: Api<ArtifactMapping> = Api::namespaced(client.clone(), namespace);
    let name = digest.object_name();
    // A name taken by other content fails before any byte is sent.
    let existing = get_mapping(&mappings, &name).await?;
    if let Some(m) = &existing {
        check_same_digest(m, &name, &digest)?;
    }

    let backends = namespace_backends(client, namespace).await?;
    let target = write_backend(&backends).map_err(|detail| TransferError::NoWritableBackend {
        namespace: namespace.to_owned(),
        detail,
    })?;
    let backend = target.name_any();
    let store = Resolver::new(client.clone())
        .with_ambient_credentials(opts.ambient.clone(), LOCAL_CREDENTIALS_HINT)
        .store_for(target)
        .await
        .map_err(|e| TransferError::Backend {
            backend: backend.clone(),
            operation: "resolving the client",
            reason: e.reason().map_or("ResolveFailed", BackendReason::as_str),
            message: e.to_string(),
        })?;
    let key = layout::key_for(store.key_prefix(), &digest);

    let present = store
        .head(&key)
        .await
        .map_err(|e| backend_error(&backend, "HeadObject", &e))?;
    let object_existed = present.is_some_and(|info| info.size == size);
    let (mut parts, mut uploaded_bytes, mut upload_elapsed) = (None, 0, Duration::ZERO);
    if !object_existed {
        let t = Instant::now();
        parts = upload(&*store, target, &backend, &key, size, &source, &reporter).await?;
        uploaded_bytes = size;
        upload_elapsed = t.elapsed();
        if let Source::File { path, stamp } = &source {
            if file_stamp(path).await? != *stamp {
                // The bytes sent may not be the bytes hashed: never leave them under this key.
                let _ = store.delete(&key).await;
                return Err(TransferError::FileChanged { path: path.clone() });
            }
        }
    }

    let (mapping_existed, declared_backend) = match existing {
        Some(m) => (true, m.spec.backend_ref.name),
        None => create_mapping(&mappings, &name, &digest, size, &backend).await?,
    };
    Ok(PutOutcome {
        digest,
        size,
        backend,
        key,
        mapping: name,
        mapping_existed,
        declared_backend,
        object_existed,
        parts,
        uploaded_bytes,
        upload_elapsed,
        elapsed: start.elapsed(),
    })
}

/// Sends the bytes; returns the number of parts of a multipart upload. Above the backend's
/// threshold a file is streamed part by part (so progress advances per part); below it the SDK
/// reads the file itself.
async fn upload(
    store: &dyn ObjectStore,
    target: &StorageBackend,
    backend: &str,
    key: &str,
    size: u64,
    source: &Source,
    reporter: &Reporter,
) -> Result<Option<u32>, TransferError> {
    let multipart = u64::try_from(target.spec.s3.multipart_threshold_bytes)
        .is_ok_and(|threshold| size > threshold);
    let body = match source {
        Source::Bytes(b) => PutBody::Bytes(b.clone()),
        Source::File { path, .. } if multipart => {
            let file = tokio::fs::File::open(path)
                .await
                .map_err(|e| io_error(path, e))?;
            let counting = reporter.clone();
            let stream = tokio_util::io::ReaderStream::with_capacity(file, HASH_CHUNK).inspect(
                move |chunk| {
                    if let Ok(c) = chunk {
                        counting.advance(c.len() as u64);
                    }
                },
            );
            PutBody::Stream(stream.boxed())
        }
        Source::File { path, .. } => PutBody::Path(path.clone()),
    };
    reporter.begin(
        Phase::Uploading {
            backend: backend.to_owned(),
        },
        Some(size),
    );
    let sent = store
        .put(key, body, size, &storage::PutOptions::default())
        .await;
    if sent.is_ok() && !multipart {
        reporter.advance(size);
    }
    reporter.end();
    let operation = if multipart {
        "multipart upload"
    } else {
        "PutObject"
    };
    Ok(sent
        .map_err(|e| backend_error(backend, operation, &e))?
        .parts)
}

async fn get_mapping(
    mappings: &Api<ArtifactMapping>,
    name: &str,
) -> Result<Option<ArtifactMapping>, TransferError> {
    mappings
        .get_opt(name)
        .await
        .map_err(|source| TransferError::Kube {
            action: format!("reading ArtifactMapping {name}"),
            source,
        })
}

fn check_same_digest(
    m: &ArtifactMapping,
    name: &str,
    digest: &Digest,
) -> Result<(), TransferError> {
    if m.spec.digest == digest.to_string() {
        Ok(())
    } else {
        Err(TransferError::MappingConflict {
            name: name.to_owned(),
            existing: m.spec.digest.clone(),
            digest: digest.clone(),
        })
    }
}

/// Creates the mapping; when someone else created it meanwhile (409), reads theirs instead and
/// accepts it if it maps the same digest. Returns (existed, declared backend).
async fn create_mapping(
    mappings: &Api<ArtifactMapping>,
    name: &str,
    digest: &Digest,
    size: u64,
    backend: &str,
) -> Result<(bool, String), TransferError> {
    let mapping = new_mapping(name, digest, size, backend);
    let params = PostParams {
        field_manager: Some(FIELD_MANAGER.to_owned()),
        ..PostParams::default()
    };
    match mappings.create(&params, &mapping).await {
        Ok(_) => Ok((false, backend.to_owned())),
        Err(kube::Error::Api(status)) if status.code == 409 => {
            let theirs = get_mapping(mappings, name)
                .await?
                .ok_or_else(|| TransferError::Kube {
                    action: format!("creating ArtifactMapping {name}"),
                    source: kube::Error::Api(status),
                })?;
            check_same_digest(&theirs, name, digest)?;
            Ok((true, theirs.spec.backend_ref.name))
        }
        Err(source) => Err(TransferError::Kube {
            action: format!("creating ArtifactMapping {name}"),
            source,
        }),
    }
}

/// The mapping `put` creates: digest, size and the backend written to.
pub fn new_mapping(name: &str, digest: &Digest, size: u64, backend: &str) -> ArtifactMapping {
    ArtifactMapping::new(
        name,
        ArtifactMappingSpec {
            digest: digest.to_string(),
            size: i64::try_from(size).ok(),
            backend_ref: BackendRef {
                name: backend.to_owned(),
            },
            key: None,
            reassignment: Reassignment::Auto,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_new_mapping_records_digest_size_and_provenance() {
        let digest = Digest::of_bytes(Algorithm::Sha256, b"hello");
        let m = new_mapping(&digest.object_name(), &digest, 5, "backend-a");
        assert_eq!(m.name_any(), digest.object_name());
        assert_eq!(m.spec.digest, digest.to_string());
        assert_eq!(m.spec.size, Some(5));
        assert_eq!(m.spec.backend_ref.name, "backend-a");
        assert_eq!(m.spec.key, None, "the layout key, not an override");
        assert!(m.status.is_none(), "status is the operator's");
    }

    #[test]
    fn a_mapping_of_other_content_is_a_conflict() {
        let ours = Digest::of_bytes(Algorithm::Sha256, b"ours");
        let theirs = Digest::of_bytes(Algorithm::Sha256, b"theirs");
        let name = ours.object_name();
        let cases = [
            ("the same digest is accepted", &ours, true),
            ("another digest is refused", &theirs, false),
        ];
        for (case, existing, ok) in cases {
            let m = new_mapping(&name, existing, 1, "a");
            let got = check_same_digest(&m, &name, &ours);
            assert_eq!(got.is_ok(), ok, "{case}");
            if let Err(e) = got {
                let text = e.to_string();
                assert!(
                    text.contains(&name) && text.contains(&theirs.to_string()),
                    "{case}: {text}"
                );
            }
        }
    }

    #[tokio::test]
    async fn hashing_a_file_streams_it_through_the_chosen_algorithm() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("blob");
        let data: Vec<u8> = (0..(3 * HASH_CHUNK + 17))
            .map(|i| (i % 251) as u8)
            .collect();
        std::fs::write(&path, &data).unwrap();
        for algorithm in [Algorithm::Sha256, Algorithm::Sha512] {
            let got = hash_file(&path, algorithm, data.len() as u64, Reporter::default())
                .await
                .unwrap();
            assert_eq!(got, Digest::of_bytes(algorithm, &data), "{algorithm}");
        }
        let missing = hash_file(
            &dir.path().join("nope"),
            Algorithm::Sha256,
            0,
            Reporter::default(),
        )
        .await;
        assert!(matches!(missing, Err(TransferError::FileNotFound { .. })));
    }
}
