//! ArtifactMapping controller: observe → decide (pure) → act.
//!
//! - [`observe`]: the backends of the mapping's namespace and what is known about the object on
//!   each (reflector cache, the verifier's memory, the mapping's status, one HEAD at most);
//! - placement ([`crate::placement::serve`]) decides where the mapping is served from;
//! - [`decide`]: the status, history and events that follow (pure, table-tested);
//! - [`act`]: the driver (verification of candidates, one status write, events, metrics);
//! - [`error`]: the one error type;
//! - [`index`]: mappings by declared backend, serving backend and stranded-in-namespace, which
//!   turns a backend transition into the mappings it affects.
//!
//! Must not: write a mapping's spec, or serve a mapping from another namespace's backend.

pub mod act;
pub mod decide;
pub mod error;
pub mod findings;
pub mod index;
pub mod observe;

use std::sync::Arc;
use std::time::Duration;

use futures::channel::mpsc::UnboundedSender;
use kube::runtime::events::Recorder;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::Client;

pub use act::{error_policy, reconcile, CONTROLLER};
pub use error::Error;
pub use index::MappingIndex;

use crate::api::StorageBackend;
use crate::clock::Clock;
use crate::metrics::Metrics;
use crate::resolve::Resolver;
use crate::verifier::Verifier;

/// What a mapping reconcile can reach.
pub struct Context {
    pub client: Client,
    pub recorder: Recorder,
    pub metrics: Arc<Metrics>,
    pub clock: Arc<dyn Clock>,
    /// Reflector cache of StorageBackends (all namespaces in scope).
    pub backends: Store<StorageBackend>,
    /// Mappings by declared backend, serving backend and stranded-in-namespace.
    pub index: Arc<MappingIndex>,
    /// Backend spec + Secret → S3 client, cached; shared with the backend controller.
    pub clients: Arc<Resolver>,
    /// Bounded, shared, rate-limited digest verification.
    pub verifier: Arc<Verifier>,
    /// Longest pause between retries of a mapping with no verified replica.
    pub max_backoff: Duration,
    /// Backends whose findings changed with a status write: their `status.integrity` follows.
    pub backend_nudge: Option<UnboundedSender<ObjectRef<StorageBackend>>>,
}
