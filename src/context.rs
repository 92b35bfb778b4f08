//! What every reconcile can reach: the API client, the shared caches, the event recorder, the
//! metrics, the clock, and the per-controller state. Built once by `operator::run`.

use std::sync::Arc;
use std::time::Duration;

use kube::runtime::events::Recorder;
use kube::runtime::reflector::Store;
use kube::Client;

use crate::api::{ArtifactMapping, StorageBackend};
use crate::clock::Clock;
use crate::mapping::index::MappingIndex;
use crate::mapping::verify::Verifier;
use crate::metrics::Metrics;
use crate::resolve::Resolver;

/// The field manager of every status write: one manager, always forced.
pub const FIELD_MANAGER: &str = "castellan";

/// Operator-wide settings (from `castellan run` flags).
#[derive(Clone, Debug)]
pub struct Settings {
    /// Most digest verifications running at once.
    pub verify_concurrency: usize,
    /// Byte-rate budget of all verifications together; `None` = unlimited.
    pub verify_bytes_per_second: Option<u64>,
    /// Longest pause between retries of a mapping with no verified replica.
    pub max_backoff: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            verify_concurrency: 16,
            verify_bytes_per_second: None,
            max_backoff: Duration::from_secs(300),
        }
    }
}

/// Shared state of both controllers.
pub struct Context {
    pub client: Client,
    pub recorder: Recorder,
    pub metrics: Arc<Metrics>,
    pub clock: Arc<dyn Clock>,
    pub settings: Settings,
    /// Reflector cache of StorageBackends (all namespaces in scope).
    pub backends: Store<StorageBackend>,
    /// Reflector cache of ArtifactMappings (all namespaces in scope).
    pub mappings: Store<ArtifactMapping>,
    /// Mappings by declared backend, serving backend, and stranded-in-namespace.
    pub index: MappingIndex,
    /// Backend spec + Secret → S3 client, cached.
    pub resolver: Resolver,
    /// Bounded, shared, rate-limited digest verification.
    pub verifier: Verifier,
}
