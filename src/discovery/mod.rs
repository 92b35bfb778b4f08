//! Discovery: a bucket that holds blobs under the key layout but has no mappings gets them,
//! built from its own listing.
//!
//! Owns: one run over a backend ([`discover`]): the listing page by page (a bucket of millions of
//! keys never sits in memory), the classification ([`classify`]), the mapping a discovered blob
//! gets ([`mapping_for`]), paced creates, and the run's summary. `castellan discover` runs it.
//!
//! Must not: rewrite, re-label or re-size an existing mapping (a digest already mapped in the
//! namespace, by name or by `spec.digest`, is left alone), mark anything Ready (the mapping
//! controller verifies what discovery creates), or write to a bucket.

pub mod classify;

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use kube::api::{Api, PostParams};
use serde::Serialize;

use crate::api::mapping::{ArtifactMappingSpec, BackendRef, Reassignment};
use crate::api::{ArtifactMapping, StorageBackend};
use crate::digest::Digest;
use crate::storage::{ObjectStore, StorageError};
use classify::{classify, Listed, Skip};

/// The label a discovered mapping carries: the backend whose listing created it.
pub const DISCOVERED_BY: &str = "castellan.io/discovered-by";
/// Default pace of creates, so that a million-object bucket cannot flood the API server.
pub const DEFAULT_CREATES_PER_SECOND: u32 = 50;

/// The digests (and names) already mapped in the backend's namespace.
#[derive(Default)]
pub struct Existing {
    names: HashSet<String>,
    digests: HashSet<String>,
}

impl Existing {
    pub fn of<'a>(mappings: impl IntoIterator<Item = &'a ArtifactMapping>) -> Existing {
        let mut existing = Existing::default();
        for m in mappings {
            existing.names.extend(m.metadata.name.clone());
            existing.digests.insert(m.spec.digest.clone());
        }
        existing
    }

    fn contains(&self, digest: &Digest) -> bool {
        self.names.contains(&digest.object_name()) || self.digests.contains(&digest.to_string())
    }
}

/// Whether a run writes.
pub enum Mode {
    /// Report what would be created.
    DryRun,
    /// Create the mappings through `api` (the backend's namespace), at most `per_second`.
    Create {
        api: Box<Api<ArtifactMapping>>,
        per_second: u32,
    },
}

/// What one run did (or, dry, would do).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    pub listed: u64,
    /// Mappings created (dry run: that would be created).
    pub created: u64,
    pub already_mapped: u64,
    /// Skipped keys by category.
    pub skipped: BTreeMap<&'static str, u64>,
    /// The names created (dry run: that would be), at most [`MAX_NAMED`].
    pub names: Vec<String>,
}

/// Most mapping names a summary lists.
pub const MAX_NAMED: usize = 1000;

/// Why a run stopped.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("listing {prefix}: {source}")]
    List {
        prefix: String,
        #[source]
        source: StorageError,
    },
    #[error("creating ArtifactMapping {name}: {source}")]
    Create {
        name: String,
        #[source]
        source: kube::Error,
    },
}

/// The mapping discovery creates for `digest` listed on `backend` with `size` bytes.
pub fn mapping_for(backend: &StorageBackend, digest: &Digest, size: u64) -> ArtifactMapping {
    let backend_name = backend.metadata.name.clone().unwrap_or_default();
    let mut mapping = ArtifactMapping::new(
        &digest.object_name(),
        ArtifactMappingSpec {
            digest: digest.to_string(),
            size: i64::try_from(size).ok(),
            backend_ref: BackendRef {
                name: backend_name.clone(),
            },
            key: None,
            reassignment: Reassignment::Auto,
        },
    );
    mapping.metadata.namespace = backend.metadata.namespace.clone();
    mapping.metadata.labels = Some(BTreeMap::from([(DISCOVERED_BY.to_owned(), backend_name)]));
    mapping
}

/// One discovery run over `backend`, whose objects `store` reads. `existing` is what the
/// namespace already maps; a mapping that appears meanwhile (another run, another replica) is
/// found by its deterministic name: `AlreadyExists` counts as already mapped.
pub async fn discover(
    store: &dyn ObjectStore,
    backend: &StorageBackend,
    existing: &Existing,
    mode: &Mode,
) -> Result<Summary, Error> {
    let prefix = crate::transfer::scan::list_prefix(store.key_prefix());
    let mut summary = Summary::default();
    let mut pace = match mode {
        Mode::Create { per_second, .. } => Some(tokio::time::interval(
            Duration::from_secs(1) / (*per_second).max(1),
        )),
        Mode::DryRun => None,
    };
    let mut token: Option<String> = None;
    loop {
        let page = store
            .list(&prefix, token.as_deref())
            .await
            .map_err(|source| Error::List {
                prefix: prefix.clone(),
                source,
            })?;
        for object in page.objects {
            summary.listed += 1;
            let digest = match classify(store.key_prefix(), &object.key) {
                Listed::Blob(digest) => digest,
                Listed::Skipped(skip) => {
                    *summary.skipped.entry(skip.label()).or_default() += 1;
                    continue;
                }
            };
            if existing.contains(&digest) {
                summary.already_mapped += 1;
                continue;
            }
            if let (Some(pace), Mode::Create { api, .. }) = (pace.as_mut(), mode) {
                pace.tick().await;
                if !create(api, backend, &digest, object.size).await? {
                    summary.already_mapped += 1;
                    continue;
                }
            }
            summary.created += 1;
            if summary.names.len() < MAX_NAMED {
                summary.names.push(digest.object_name());
            }
        }
        match page.next_continuation_token {
            Some(next) => token = Some(next),
            None => break,
        }
    }
    for skip in Skip::ALL {
        summary.skipped.entry(skip.label()).or_default();
    }
    Ok(summary)
}

/// Creates the mapping of `digest`; `false` when it exists already.
async fn create(
    api: &Api<ArtifactMapping>,
    backend: &StorageBackend,
    digest: &Digest,
    size: u64,
) -> Result<bool, Error> {
    let mapping = mapping_for(backend, digest, size);
    match api.create(&PostParams::default(), &mapping).await {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(e)) if e.code == 409 => Ok(false),
        Err(source) => Err(Error::Create {
            name: digest.object_name(),
            source,
        }),
    }
}
