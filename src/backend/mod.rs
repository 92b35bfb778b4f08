//! StorageBackend controller: observe → decide (pure) → act.
//!
//! Owns: validating every `StorageBackend` (probing its bucket with its credentials), folding
//! outcomes into thresholds with hysteresis, and writing the backend's `status` (conditions
//! Ready, CredentialsValid, Reachable, Stalled, plus DefaultConflict/FallbackConflict when two
//! backends of a namespace claim the same role), events on transitions and metrics.
//!
//! - [`observe`]: pure facts from the reflector caches;
//! - [`decide`]: the pure decision, table-tested;
//! - [`act`]: the driver (probe, one status write, events, metrics, requeue);
//! - [`error`]: the one error type;
//! - [`schedule`]: when to probe and requeue, and the memory of the last probe;
//! - [`duration`]: Go durations as the spec writes them.
//!
//! Must not: write a backend's spec (users and GitOps own it), touch ArtifactMappings (the
//! mapping controller owns them; this controller only reads and counts them), or handle
//! credential material other than passing it to the client (see [`crate::resolve`]).

pub mod act;
pub mod decide;
pub mod duration;
pub mod error;
pub mod observe;
pub mod schedule;

use std::sync::Arc;

use kube::runtime::events::Recorder;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::Client;

pub use act::{cleanup, error_policy, reconcile, CONTROLLER};
pub use error::Error;
pub use schedule::ProbeMemory;

use crate::api::{ArtifactMapping, StorageBackend};
use crate::clock::Clock;
use crate::metrics::Metrics;
use crate::resolve::Resolver;

/// What a backend reconcile can reach.
pub struct Context {
    pub client: Client,
    pub recorder: Recorder,
    pub metrics: Arc<Metrics>,
    pub clock: Arc<dyn Clock>,
    /// Reflector cache of StorageBackends (all namespaces in scope): conflicts.
    pub backends: Store<StorageBackend>,
    /// Reflector cache of ArtifactMappings: the probe's known key and the mapping counts.
    pub mappings: Store<ArtifactMapping>,
    /// Backend spec + Secret → S3 client, cached; shared with the mapping controller.
    pub clients: Arc<Resolver>,
    /// The last probe of each backend in this process.
    pub probes: ProbeMemory,
    /// The shortest validation interval applied, whatever a spec asks.
    pub min_interval: std::time::Duration,
    /// The last complete scrub pass of each backend, for `status.integrity`.
    pub scrub_passes: Arc<crate::scrub::Passes>,
}

/// The backends a changed Secret feeds (same namespace, referenced by `credentialsSecretRef` or
/// `caBundleSecretRef`), so a rotated Secret is re-validated within seconds.
pub fn backends_for_secret(
    secret: &impl kube::Resource,
    backends: &Store<StorageBackend>,
) -> Vec<ObjectRef<StorageBackend>> {
    observe::backends_referencing(secret, &backends.state())
}
