//! StorageBackend controller: observe → decide (pure) → apply.
//!
//! Owns: validating every `StorageBackend` (probing its bucket with its credentials), folding
//! outcomes into thresholds with hysteresis, and writing the backend's `status` (conditions
//! Ready, CredentialsValid, Reachable, Stalled, plus DefaultConflict/FallbackConflict when two
//! backends of a namespace claim the same role), Events on transitions and metrics.
//!
//! Modules: [`decide`] (the pure decision, table-tested), [`observe`] (pure facts from the
//! reflector caches), [`schedule`] (when to probe and requeue), [`duration`] (Go durations),
//! [`reconcile`] (the thin I/O driver), [`error`] (the one error type).
//!
//! Must not: write a backend's spec (users and GitOps own it), touch ArtifactMappings (the
//! mapping controller owns them; this controller only reads and counts them), or handle
//! credential material other than passing it to the client (see [`crate::resolve`]).
//!
//! Wiring (done by `operator.rs`):
//! ```ignore
//! Controller::new(backends_api, watcher::Config::default())
//!     .watches(secrets_api, watcher::Config::default(), {
//!         let store = backend_store.clone();
//!         move |secret| backend::backends_for_secret(&secret, &store)
//!     })
//!     .run(backend::reconcile, backend::error_policy, ctx)
//! ```
//! plus `backend::cleanup(&obj, &ctx)` on the backend watcher's delete events (no finalizer is
//! used: nothing outside the cluster needs cleaning when a backend goes away).

pub mod decide;
pub mod duration;
pub mod error;
pub mod observe;
pub mod reconcile;
pub mod schedule;

use k8s_openapi::api::core::v1::Secret;
use kube::runtime::reflector::{ObjectRef, Store};

use crate::api::StorageBackend;

pub use error::Error;
pub use reconcile::{cleanup, error_policy, reconcile, CONTROLLER};

/// The backends a changed Secret feeds (same namespace, referenced by `credentialsSecretRef` or
/// `caBundleSecretRef`), so a rotated Secret is re-validated within seconds.
pub fn backends_for_secret(
    secret: &Secret,
    backends: &Store<StorageBackend>,
) -> Vec<ObjectRef<StorageBackend>> {
    observe::backends_referencing(secret, &backends.state())
}
