//! `get`: find a digest's `ArtifactMapping`, then try backends in [`read_order`] — HEAD (the
//! size must match `spec.size`), a streamed GET through the digest into a temporary file next to
//! the destination — and rename the file into place only once its bytes verified. A mismatch,
//! a truncated body or a failing backend moves on to the next backend; the destination never
//! sees a partial or unverified byte, and an existing destination is untouched on failure.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use kube::api::{Api, ListParams};
use kube::{Client, ResourceExt};
use tokio::io::AsyncWriteExt;

use super::choose::{read_order, ReadStep};
use super::error::TransferError;
use super::namespace_backends;
use super::progress::{Phase, Progress, Reporter};
use crate::api::reasons::mapping_reason;
use crate::api::ArtifactMapping;
use crate::digest::{verify_stream, Digest, VerifyOutcome};
use crate::resolve::Resolver;
use crate::storage::{ErrorKind, ObjectStore, StorageError};

/// Buffer between the body stream and the temporary file.
const WRITE_BUFFER: usize = 1 << 20;
/// Mappings per page when searching a namespace by `spec.digest`.
const LIST_PAGE: u32 = 500;

/// How `get` runs.
#[derive(Clone, Default)]
pub struct GetOptions {
    /// Receives download progress, one phase per backend tried; `None` for none.
    pub progress: Option<Arc<dyn Progress>>,
}

impl fmt::Debug for GetOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GetOptions")
            .field("progress", &self.progress.is_some())
            .finish()
    }
}

/// How the mapping was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FoundBy {
    /// Under its conventional name, `digest.object_name()`.
    Name,
    /// By listing the namespace's mappings and matching `spec.digest`.
    DigestList,
}

/// What one backend gave.
#[derive(Debug, Clone, PartialEq)]
pub enum AttemptResult {
    /// The bytes verified and are at the destination.
    Verified { bytes: u64 },
    /// Not read: `BackendQuarantined` or `BackendMissing`.
    Skipped { reason: &'static str },
    /// The backend could not be asked, or refused: its client could not be built (e.g.
    /// `SecretNotFound`) or S3 failed (e.g. `InvalidAccessKeyId`, `EndpointUnreachable`).
    Unavailable {
        reason: &'static str,
        message: String,
    },
    /// No object under the key.
    Missing { key: String },
    /// The object's size is not the mapping's `spec.size` (nothing downloaded).
    SizeMismatch { expected: u64, actual: u64 },
    /// All bytes arrived and hash to another digest.
    DigestMismatch { actual: Digest },
    /// The body stopped before its end.
    Truncated { expected: u64, received: u64 },
}

impl AttemptResult {
    /// A stable CamelCase reason (the mapping and backend reason vocabulary).
    pub fn reason(&self) -> &'static str {
        match self {
            AttemptResult::Verified { .. } => mapping_reason::DIGEST_VERIFIED,
            AttemptResult::Skipped { reason } | AttemptResult::Unavailable { reason, .. } => reason,
            AttemptResult::Missing { .. } => mapping_reason::OBJECT_MISSING,
            AttemptResult::SizeMismatch { .. } => mapping_reason::SIZE_MISMATCH,
            AttemptResult::DigestMismatch { .. } => mapping_reason::DIGEST_MISMATCH,
            AttemptResult::Truncated { .. } => "Truncated",
        }
    }

    /// The backend holds other bytes than the mapping describes.
    pub fn is_mismatch(&self) -> bool {
        matches!(
            self,
            AttemptResult::SizeMismatch { .. } | AttemptResult::DigestMismatch { .. }
        )
    }
}

/// One backend tried (or skipped), in order.
#[derive(Debug, Clone, PartialEq)]
pub struct Attempt {
    pub backend: String,
    pub result: AttemptResult,
}

impl fmt::Display for Attempt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let reason = self.result.reason();
        match &self.result {
            AttemptResult::Verified { bytes } => {
                write!(f, "{}: {reason} ({bytes} bytes)", self.backend)
            }
            AttemptResult::Skipped { .. } => write!(f, "{}: skipped, {reason}", self.backend),
            AttemptResult::Unavailable { message, .. } => {
                write!(f, "{}: {reason} ({message})", self.backend)
            }
            AttemptResult::Missing { key } => {
                write!(f, "{}: {reason} (no object under {key})", self.backend)
            }
            AttemptResult::SizeMismatch { expected, actual } => write!(
                f,
                "{}: {reason} (object has {actual} bytes, mapping says {expected})",
                self.backend
            ),
            AttemptResult::DigestMismatch { actual } => {
                write!(f, "{}: {reason} (bytes hash to {actual})", self.backend)
            }
            AttemptResult::Truncated { expected, received } => write!(
                f,
                "{}: {reason} (body stopped after {received} of {expected} bytes)",
                self.backend
            ),
        }
    }
}

/// What a successful `get` did.
#[derive(Debug, Clone, PartialEq)]
pub struct GetOutcome {
    pub digest: Digest,
    /// The mapping's name, and how it was found.
    pub mapping: String,
    pub found_by: FoundBy,
    /// The backend the verified bytes came from, and the key there.
    pub backend: String,
    pub key: String,
    /// Where the bytes are now.
    pub path: PathBuf,
    pub bytes: u64,
    /// Time of the successful download (HEAD to rename).
    pub download_elapsed: Duration,
    /// Time from start to the file being in place, lookups and failed attempts included.
    pub elapsed: Duration,
    /// Every backend tried or skipped, in order; the last one verified.
    pub attempts: Vec<Attempt>,
}

/// Downloads the blob with `digest` from `namespace` to `dest` (a file path, or an existing
/// directory to put `digest.object_name()` in). See the module documentation for the order and
/// the guarantees.
pub async fn get_to_path(
    client: &Client,
    namespace: &str,
    digest: &Digest,
    dest: &Path,
    opts: &GetOptions,
) -> Result<GetOutcome, TransferError> {
    let start = Instant::now();
    let dest = destination(dest, digest);
    let dir = match dest.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    };
    if !tokio::fs::metadata(&dir).await.is_ok_and(|m| m.is_dir()) {
        return Err(TransferError::FileNotFound { path: dir });
    }
    let (mapping, found_by) = find_mapping(client, namespace, digest).await?;
    let declared_size = mapping.spec.size.and_then(|s| u64::try_from(s).ok());
    let backends = namespace_backends(client, namespace).await?;
    let resolver = Resolver::new(client.clone());
    let reporter = Reporter(opts.progress.clone());
    let mut attempts = Vec::new();
    for step in read_order(&mapping, digest, &backends) {
        let (backend, key) = match step {
            ReadStep::Skip { backend, reason } => {
                attempts.push(Attempt {
                    backend,
                    result: AttemptResult::Skipped { reason },
                });
                continue;
            }
            ReadStep::Try { backend, key } => (backend, key),
        };
        let name = backend.name_any();
        let t = Instant::now();
        let result = match resolver.store_for(backend).await {
            Err(e) => Err(AttemptResult::Unavailable {
                reason: e.reason().unwrap_or("ResolveFailed"),
                message: e.to_string(),
            }),
            Ok(store) => {
                reporter.begin(
                    Phase::Downloading {
                        backend: name.clone(),
                        attempt: attempts.len() + 1,
                    },
                    declared_size,
                );
                let r = download(&*store, &key, digest, declared_size, &dir, &reporter).await;
                reporter.end();
                r?
            }
        };
        match result {
            Err(result) => attempts.push(Attempt {
                backend: name,
                result,
            }),
            Ok((temp, bytes)) => {
                temp.persist(&dest).map_err(|e| TransferError::Io {
                    path: dest.clone(),
                    source: e.error,
                })?;
                attempts.push(Attempt {
                    backend: name.clone(),
                    result: AttemptResult::Verified { bytes },
                });
                return Ok(GetOutcome {
                    digest: digest.clone(),
                    mapping: mapping.name_any(),
                    found_by,
                    backend: name,
                    key,
                    path: dest,
                    bytes,
                    download_elapsed: t.elapsed(),
                    elapsed: start.elapsed(),
                    attempts,
                });
            }
        }
    }
    Err(TransferError::NoVerifiedReplica {
        digest: digest.clone(),
        mapping: mapping.name_any(),
        attempts,
    })
}

/// `dest` itself, or `dest/<algo>-<hex>` when `dest` is an existing directory.
pub fn destination(dest: &Path, digest: &Digest) -> PathBuf {
    if dest.is_dir() {
        dest.join(digest.object_name())
    } else {
        dest.to_owned()
    }
}

/// The mapping of `digest`: by its conventional name, else the first (by name) whose
/// `spec.digest` matches, found by listing the namespace page by page.
async fn find_mapping(
    client: &Client,
    namespace: &str,
    digest: &Digest,
) -> Result<(ArtifactMapping, FoundBy), TransferError> {
    let api: Api<ArtifactMapping> = Api::namespaced(client.clone(), namespace);
    let name = digest.object_name();
    let wanted = digest.to_string();
    let kube_err = |action: String| move |source| TransferError::Kube { action, source };
    let by_name = api
        .get_opt(&name)
        .await
        .map_err(kube_err(format!("reading ArtifactMapping {name}")))?;
    if let Some(m) = by_name.filter(|m| m.spec.digest == wanted) {
        return Ok((m, FoundBy::Name));
    }
    let mut best: Option<ArtifactMapping> = None;
    let mut params = ListParams::default().limit(LIST_PAGE);
    loop {
        let page = api.list(&params).await.map_err(kube_err(format!(
            "listing ArtifactMappings in namespace {namespace}"
        )))?;
        for m in page.items.into_iter().filter(|m| m.spec.digest == wanted) {
            if best.as_ref().is_none_or(|b| m.name_any() < b.name_any()) {
                best = Some(m);
            }
        }
        match page.metadata.continue_.filter(|c| !c.is_empty()) {
            Some(token) => params = params.continue_token(&token),
            None => break,
        }
    }
    best.map(|m| (m, FoundBy::DigestList))
        .ok_or_else(|| TransferError::MappingNotFound {
            digest: digest.clone(),
            namespace: namespace.to_owned(),
            name,
        })
}

/// A backend failure, with its classified reason (callers handle `NotFound` themselves).
fn unavailable(e: &StorageError) -> AttemptResult {
    AttemptResult::Unavailable {
        reason: e.kind().label(),
        message: e.message().to_owned(),
    }
}

/// A verified download waiting to be renamed into place, with its size.
type Verified = (tempfile::NamedTempFile, u64);

/// Downloads `key` from one backend into a temporary file in `dir`, through the digest.
/// `Ok(Err(result))` is this backend's failure (try the next one); `Err` is a local failure
/// (the destination's file system) that no other backend can fix. The temporary file is
/// removed whenever it is not returned.
async fn download(
    store: &dyn ObjectStore,
    key: &str,
    digest: &Digest,
    declared_size: Option<u64>,
    dir: &Path,
    reporter: &Reporter,
) -> Result<Result<Verified, AttemptResult>, TransferError> {
    let missing = || AttemptResult::Missing {
        key: key.to_owned(),
    };
    let head_size = match store.head(key).await {
        Ok(Some(info)) => Some(info.size),
        Ok(None) => return Ok(Err(missing())),
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Err(missing())),
        // A HEAD answer has no body, so a refused HEAD only says 403: go on to the GET, whose
        // refusal carries the server's code (InvalidAccessKeyId, SignatureDoesNotMatch, ...).
        Err(e) if e.kind() == ErrorKind::AccessDenied => None,
        Err(e) => return Ok(Err(unavailable(&e))),
    };
    if let (Some(expected), Some(actual)) = (declared_size, head_size) {
        if expected != actual {
            return Ok(Err(AttemptResult::SizeMismatch { expected, actual }));
        }
    }
    let got = match store.get(key, None).await {
        Ok(got) => got,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Err(missing())),
        Err(e) => return Ok(Err(unavailable(&e))),
    };
    // What this response must deliver: its Content-Length, else HEAD's size, else the mapping's.
    let expected_size = got.content_length.or(head_size).or(declared_size);
    if let (Some(expected), Some(actual)) = (declared_size, expected_size) {
        if expected != actual {
            return Ok(Err(AttemptResult::SizeMismatch { expected, actual }));
        }
    }

    let local = |source| TransferError::Io {
        path: dir.to_owned(),
        source,
    };
    let temp = temp_file_in(dir).map_err(local)?;
    let file = tokio::fs::File::from_std(temp.as_file().try_clone().map_err(local)?);
    let write_failure: Arc<Mutex<Option<std::io::Error>>> = Arc::default();
    let tee = tee_into(got.body, file, write_failure.clone(), reporter.clone());
    let outcome = verify_stream(tee, digest, expected_size).await;
    if let Some(e) = write_failure.lock().expect("not poisoned").take() {
        return Err(TransferError::Io {
            path: temp.path().to_owned(),
            source: e,
        });
    }
    Ok(match outcome {
        VerifyOutcome::Verified { bytes } => {
            let sync = temp.as_file().try_clone().map_err(local)?;
            tokio::task::spawn_blocking(move || sync.sync_all())
                .await
                .unwrap_or_else(|join| std::panic::resume_unwind(join.into_panic()))
                .map_err(local)?;
            Ok((temp, bytes))
        }
        VerifyOutcome::DigestMismatch { actual } => Err(AttemptResult::DigestMismatch { actual }),
        VerifyOutcome::SizeMismatch { expected, actual } => {
            Err(AttemptResult::SizeMismatch { expected, actual })
        }
        VerifyOutcome::Truncated { expected, received } => {
            Err(AttemptResult::Truncated { expected, received })
        }
        VerifyOutcome::Io(e) => Err(unavailable(&e)),
    })
}

/// A temporary file in `dir` (`.castellan-get-*.part`), created with the permissions a new file
/// gets there (0666 minus the umask, on Unix), removed when dropped unless persisted.
fn temp_file_in(dir: &Path) -> std::io::Result<tempfile::NamedTempFile> {
    let mut builder = tempfile::Builder::new();
    builder.prefix(".castellan-get-").suffix(".part");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(std::fs::Permissions::from_mode(0o666));
    }
    builder.tempfile_in(dir)
}

/// The body stream, with every chunk also written to `file` (buffered, flushed when the body
/// ends) and counted on the reporter. A write failure is put in `failure` and ends the stream
/// with an error, so verification can never report it as verified.
fn tee_into(
    body: crate::storage::ByteStream,
    file: tokio::fs::File,
    failure: Arc<Mutex<Option<std::io::Error>>>,
    reporter: Reporter,
) -> impl futures::Stream<Item = Result<bytes::Bytes, StorageError>> {
    let writer = tokio::io::BufWriter::with_capacity(WRITE_BUFFER, file);
    futures::stream::unfold(
        Some((body, writer, failure, reporter)),
        |state| async move {
            let (mut body, mut writer, failure, reporter) = state?;
            let local_failure = |e: std::io::Error, failure: &Mutex<Option<std::io::Error>>| {
                *failure.lock().expect("not poisoned") = Some(e);
                StorageError::new(
                    ErrorKind::BodyInterrupted,
                    "writing the temporary file failed",
                )
            };
            match body.next().await {
                None => match writer.flush().await {
                    Ok(()) => None,
                    Err(e) => Some((Err(local_failure(e, &failure)), None)),
                },
                Some(Ok(chunk)) => match writer.write_all(&chunk).await {
                    Ok(()) => {
                        reporter.advance(chunk.len() as u64);
                        Some((Ok(chunk), Some((body, writer, failure, reporter))))
                    }
                    Err(e) => Some((Err(local_failure(e, &failure)), None)),
                },
                Some(Err(e)) => Some((Err(e), None)),
            }
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(data: &[u8]) -> Digest {
        Digest::of_bytes(crate::digest::Algorithm::Sha256, data)
    }

    #[test]
    fn attempts_read_as_backend_reason_and_detail() {
        let other = d(b"other");
        let cases = [
            (
                "a verified attempt",
                AttemptResult::Verified { bytes: 5 },
                "a: DigestVerified (5 bytes)".to_owned(),
            ),
            (
                "a skipped backend",
                AttemptResult::Skipped {
                    reason: mapping_reason::BACKEND_QUARANTINED,
                },
                "a: skipped, BackendQuarantined".to_owned(),
            ),
            (
                "a backend failure keeps its classified reason",
                AttemptResult::Unavailable {
                    reason: "InvalidAccessKeyId",
                    message: "HTTP 403 InvalidAccessKeyId".into(),
                },
                "a: InvalidAccessKeyId (HTTP 403 InvalidAccessKeyId)".to_owned(),
            ),
            (
                "a missing object names the key",
                AttemptResult::Missing {
                    key: "cas/k".into(),
                },
                "a: ObjectMissing (no object under cas/k)".to_owned(),
            ),
            (
                "a size mismatch gives both sizes",
                AttemptResult::SizeMismatch {
                    expected: 5,
                    actual: 7,
                },
                "a: SizeMismatch (object has 7 bytes, mapping says 5)".to_owned(),
            ),
            (
                "a digest mismatch gives the digest found",
                AttemptResult::DigestMismatch {
                    actual: other.clone(),
                },
                format!("a: DigestMismatch (bytes hash to {other})"),
            ),
            (
                "a truncated body gives how far it got",
                AttemptResult::Truncated {
                    expected: 10,
                    received: 4,
                },
                "a: Truncated (body stopped after 4 of 10 bytes)".to_owned(),
            ),
        ];
        for (case, result, want) in cases {
            let attempt = Attempt {
                backend: "a".into(),
                result,
            };
            assert_eq!(attempt.to_string(), want, "{case}");
        }
    }

    #[test]
    fn mismatch_everywhere_means_every_read_backend_served_other_bytes() {
        let skipped = AttemptResult::Skipped {
            reason: mapping_reason::BACKEND_QUARANTINED,
        };
        let mismatch = AttemptResult::DigestMismatch { actual: d(b"x") };
        let size = AttemptResult::SizeMismatch {
            expected: 1,
            actual: 2,
        };
        let failed = AttemptResult::Unavailable {
            reason: "InvalidAccessKeyId",
            message: String::new(),
        };
        let cases = [
            ("all mismatches", vec![mismatch.clone(), size.clone()], true),
            (
                "skips do not count",
                vec![skipped.clone(), mismatch.clone()],
                true,
            ),
            (
                "one failure means unknown",
                vec![mismatch.clone(), failed],
                false,
            ),
            ("nothing read is not a mismatch", vec![skipped], false),
            ("no backends at all is not a mismatch", vec![], false),
        ];
        for (case, results, want) in cases {
            let err = TransferError::NoVerifiedReplica {
                digest: d(b"y"),
                mapping: "m".into(),
                attempts: results
                    .into_iter()
                    .map(|result| Attempt {
                        backend: "b".into(),
                        result,
                    })
                    .collect(),
            };
            assert_eq!(err.is_mismatch_everywhere(), want, "{case}");
        }
    }

    #[test]
    fn a_directory_destination_receives_the_conventional_name() {
        let dir = tempfile::tempdir().unwrap();
        let digest = d(b"z");
        assert_eq!(
            destination(dir.path(), &digest),
            dir.path().join(digest.object_name())
        );
        let file = dir.path().join("out.bin");
        assert_eq!(destination(&file, &digest), file);
    }

    #[tokio::test]
    async fn the_tee_writes_what_it_passes_on_and_reports_write_failures() {
        let dir = tempfile::tempdir().unwrap();
        let temp = temp_file_in(dir.path()).unwrap();
        let file = tokio::fs::File::from_std(temp.as_file().try_clone().unwrap());
        let chunks: Vec<Result<bytes::Bytes, StorageError>> =
            vec![Ok("hello ".into()), Ok("world".into())];
        let failure: Arc<Mutex<Option<std::io::Error>>> = Arc::default();
        let tee = tee_into(
            futures::stream::iter(chunks).boxed(),
            file,
            failure.clone(),
            Reporter::default(),
        );
        let outcome = verify_stream(tee, &d(b"hello world"), Some(11)).await;
        assert!(outcome.is_verified(), "{outcome:?}");
        assert!(failure.lock().unwrap().is_none());
        assert_eq!(std::fs::read(temp.path()).unwrap(), b"hello world");

        // A read-only handle cannot be written: the failure surfaces, the stream does not verify.
        let read_only = tokio::fs::File::open(temp.path()).await.unwrap();
        let failure: Arc<Mutex<Option<std::io::Error>>> = Arc::default();
        let chunks: Vec<Result<bytes::Bytes, StorageError>> =
            vec![Ok(vec![7u8; 2 * WRITE_BUFFER].into())];
        let tee = tee_into(
            futures::stream::iter(chunks).boxed(),
            read_only,
            failure.clone(),
            Reporter::default(),
        );
        let outcome = verify_stream(tee, &d(&[7u8; 2 * WRITE_BUFFER]), None).await;
        assert!(!outcome.is_verified(), "{outcome:?}");
        assert!(failure.lock().unwrap().is_some());
    }

    #[test]
    fn temporary_files_vanish_unless_persisted() {
        let dir = tempfile::tempdir().unwrap();
        let temp = temp_file_in(dir.path()).unwrap();
        let name = temp
            .path()
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        assert!(
            name.starts_with(".castellan-get-") && name.ends_with(".part"),
            "{name}"
        );
        drop(temp);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
