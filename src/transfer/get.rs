//! `get`: find a digest's `ArtifactMapping`, then try backends in [`read_order`] — one verified
//! read each ([`read_verified`]: the announced size must match `spec.size`, the body streams
//! through the digest into a temporary file next to the destination) — and rename the file into
//! place only once its bytes verified. A mismatch, a truncated body or a failing backend moves on
//! to the next backend; the destination never sees a partial or unverified byte, and an existing
//! destination is untouched on failure.
//!
//! Must not: choose the order itself (placement does) or trust a byte it did not verify.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kube::api::{Api, ListParams};
use kube::{Client, ResourceExt};

use super::error::TransferError;
use super::progress::{Phase, Progress, Reporter};
use super::{namespace_backends, LOCAL_CREDENTIALS_HINT};
use crate::api::reasons::{BackendReason, MappingReason};
use crate::api::ArtifactMapping;
use crate::digest::Digest;
use crate::placement::{read_order, ReadStep};
use crate::resolve::{AmbientCredentials, Resolver};
use crate::storage::verify::{read_verified, ReadOptions, Sink, SinkError, Verdict};
use crate::storage::ObjectStore;
/// Mappings per page when searching a namespace by `spec.digest`.
const LIST_PAGE: u32 = 500;

/// How `get` runs.
#[derive(Clone, Default)]
pub struct GetOptions {
    /// Receives download progress, one phase per backend tried; `None` for none.
    pub progress: Option<Arc<dyn Progress>>,
    /// Whether a backend without a Secret may be read with the user's own AWS credentials.
    pub ambient: AmbientCredentials,
}

impl fmt::Debug for GetOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GetOptions")
            .field("progress", &self.progress.is_some())
            .field("ambient", &self.ambient)
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
    /// Not read: `BackendQuarantined` or `BackendMissing`.
    Skipped { reason: MappingReason },
    /// Its client could not be built (e.g. `SecretNotFound`): nothing was asked.
    Unavailable {
        reason: &'static str,
        message: String,
    },
    /// Read under `key`: what the bytes (or the server) said.
    Read { key: String, verdict: Verdict },
}

impl AttemptResult {
    /// A stable CamelCase reason (the mapping and backend reason vocabulary).
    pub fn reason(&self) -> &'static str {
        match self {
            AttemptResult::Skipped { reason } => reason.as_str(),
            AttemptResult::Unavailable { reason, .. } => reason,
            AttemptResult::Read { verdict, .. } => match verdict {
                Verdict::Verified { .. } => MappingReason::DigestVerified.as_str(),
                other => other.label(),
            },
        }
    }

    pub fn is_verified(&self) -> bool {
        matches!(self, AttemptResult::Read { verdict, .. } if verdict.is_verified())
    }

    /// The backend holds other bytes than the mapping describes.
    pub fn is_mismatch(&self) -> bool {
        matches!(self, AttemptResult::Read { verdict, .. } if verdict.is_mismatch())
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
        let (backend, reason) = (&self.backend, self.result.reason());
        let verdict = match &self.result {
            AttemptResult::Skipped { .. } => return write!(f, "{backend}: skipped, {reason}"),
            AttemptResult::Unavailable { message, .. } => {
                return write!(f, "{backend}: {reason} ({message})")
            }
            AttemptResult::Read { key, verdict } => match verdict {
                Verdict::Missing => {
                    return write!(f, "{backend}: {reason} (no object under {key})")
                }
                v => v,
            },
        };
        match verdict {
            Verdict::Verified { bytes } => write!(f, "{backend}: {reason} ({bytes} bytes)"),
            Verdict::SizeMismatch { expected, actual } => write!(
                f,
                "{backend}: {reason} (object has {actual} bytes, mapping says {expected})"
            ),
            Verdict::DigestMismatch { actual } => {
                write!(f, "{backend}: {reason} (bytes hash to {actual})")
            }
            Verdict::Truncated { expected, received } => write!(
                f,
                "{backend}: {reason} (body stopped after {received} of {expected} bytes)"
            ),
            Verdict::Interrupted(e) | Verdict::Failed(e) => {
                write!(f, "{backend}: {reason} ({})", e.message())
            }
            Verdict::Missing => unreachable!("handled above"),
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
    let resolver = Resolver::new(client.clone())
        .with_ambient_credentials(opts.ambient.clone(), LOCAL_CREDENTIALS_HINT);
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
        let store = match resolver.store_for(backend).await {
            Ok(store) => store,
            Err(e) => {
                attempts.push(Attempt {
                    backend: name,
                    result: AttemptResult::Unavailable {
                        reason: e.reason().map_or("ResolveFailed", BackendReason::as_str),
                        message: e.to_string(),
                    },
                });
                continue;
            }
        };
        reporter.begin(
            Phase::Downloading {
                backend: name.clone(),
                attempt: attempts.len() + 1,
            },
            declared_size,
        );
        let read = download(&*store, &key, digest, declared_size, &dir, &reporter).await;
        reporter.end();
        let (verdict, temp) = read?;
        let verified = verdict.is_verified();
        attempts.push(Attempt {
            backend: name.clone(),
            result: AttemptResult::Read {
                key: key.clone(),
                verdict: verdict.clone(),
            },
        });
        if let (Verdict::Verified { bytes }, Some(temp)) = (verdict, temp.filter(|_| verified)) {
            temp.persist(&dest).map_err(|e| TransferError::Io {
                path: dest.clone(),
                source: e.error,
            })?;
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

/// Downloads `key` from one backend into a temporary file in `dir`, through the digest, and
/// returns the verdict with the file (removed when dropped unless persisted). `Err` is a local
/// failure (the destination's file system) that no other backend can fix.
async fn download(
    store: &dyn ObjectStore,
    key: &str,
    digest: &Digest,
    declared_size: Option<u64>,
    dir: &Path,
    reporter: &Reporter,
) -> Result<(Verdict, Option<tempfile::NamedTempFile>), TransferError> {
    let local = |source| TransferError::Io {
        path: dir.to_owned(),
        source,
    };
    let temp = temp_file_in(dir).map_err(local)?;
    let file = tokio::fs::File::from_std(temp.as_file().try_clone().map_err(local)?);
    let progress = reporter.clone();
    let options = ReadOptions {
        budgets: Vec::new(),
        on_bytes: Some(Arc::new(move |n| progress.advance(n))),
        ..ReadOptions::default()
    };
    let read = read_verified(
        store,
        key,
        digest,
        declared_size,
        Sink::File(file),
        &options,
    )
    .await
    .map_err(|SinkError(source)| TransferError::Io {
        path: temp.path().to_owned(),
        source,
    })?;
    Ok((read.verdict, Some(temp)))
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

#[cfg(test)]
mod tests {
    use super::*;

    use crate::storage::StorageError;

    fn d(data: &[u8]) -> Digest {
        Digest::of_bytes(crate::digest::Algorithm::Sha256, data)
    }

    fn read(verdict: Verdict) -> AttemptResult {
        AttemptResult::Read {
            key: "cas/k".into(),
            verdict,
        }
    }

    #[test]
    fn attempts_read_as_backend_reason_and_detail() {
        let other = d(b"other");
        let cases = [
            (
                "a verified attempt",
                read(Verdict::Verified { bytes: 5 }),
                "a: DigestVerified (5 bytes)".to_owned(),
            ),
            (
                "a backend whose client cannot be built names why",
                AttemptResult::Unavailable {
                    reason: "SecretNotFound",
                    message: "Secret \"creds\" not found".into(),
                },
                "a: SecretNotFound (Secret \"creds\" not found)".to_owned(),
            ),
            (
                "a skipped backend",
                AttemptResult::Skipped {
                    reason: MappingReason::BackendQuarantined,
                },
                "a: skipped, BackendQuarantined".to_owned(),
            ),
            (
                "a backend failure keeps its classified reason",
                read(Verdict::Failed(StorageError::new(
                    BackendReason::InvalidAccessKeyId,
                    "HTTP 403 InvalidAccessKeyId",
                ))),
                "a: InvalidAccessKeyId (HTTP 403 InvalidAccessKeyId)".to_owned(),
            ),
            (
                "a missing object names the key",
                read(Verdict::Missing),
                "a: ObjectMissing (no object under cas/k)".to_owned(),
            ),
            (
                "a size mismatch gives both sizes",
                read(Verdict::SizeMismatch {
                    expected: 5,
                    actual: 7,
                }),
                "a: SizeMismatch (object has 7 bytes, mapping says 5)".to_owned(),
            ),
            (
                "a digest mismatch gives the digest found",
                read(Verdict::DigestMismatch {
                    actual: other.clone(),
                }),
                format!("a: DigestMismatch (bytes hash to {other})"),
            ),
            (
                "a truncated body gives how far it got",
                read(Verdict::Truncated {
                    expected: 10,
                    received: 4,
                }),
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
            reason: MappingReason::BackendQuarantined,
        };
        let mismatch = read(Verdict::DigestMismatch { actual: d(b"x") });
        let size = read(Verdict::SizeMismatch {
            expected: 1,
            actual: 2,
        });
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
