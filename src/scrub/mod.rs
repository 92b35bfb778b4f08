//! Scrubbing: every copy a backend serves is re-read and its digest recomputed at least once per
//! `spec.scrub.interval`, spread evenly over it, within `spec.scrub.bytesPerSecond`; copies
//! recorded bad are read again to see whether they verify.
//!
//! Owns: one pass loop per backend with scrubbing on ([`Scrubber::run`] keeps that set in step
//! with the backends), the reads (through [`Verifier::scrub`], which yields to reassignment), the
//! pass record ([`Passes`]) and the scrub metrics. The schedule itself is [`plan`].
//!
//! Must not: write any object. A read's verdict is remembered by the verifier and the mapping is
//! reconciled: the mapping controller turns it into `lastVerifiedTime` or a finding, and the
//! backend controller counts the findings into `status.integrity`. Progress therefore lives in
//! the mappings' status and survives restarts.

pub mod plan;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::channel::mpsc::UnboundedSender;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::ResourceExt;
use tokio::task::JoinSet;
use tracing::{debug, info, warn};

use crate::api::{ArtifactMapping, StorageBackend};
use crate::backend::duration;
use crate::clock::Clock;
use crate::digest::Digest;
use crate::mapping::observe;
use crate::metrics::{BackendLabels, BackendResultLabels, Metrics};
use crate::placement::BackendView;
use crate::resolve::Resolver;
use crate::storage::verify::ByteBudget;
use crate::verifier::Verifier;

/// How often the set of scrubbed backends is brought in step with the cache.
const SUPERVISE_EVERY: Duration = Duration::from_secs(2);
/// Pause of a backend's loop while it is not Ready, or has nothing to scrub.
const IDLE_WAIT: Duration = Duration::from_secs(10);

/// What a backend's scrubbing is configured to do; a change restarts its loop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Settings {
    pub interval: Duration,
    pub bytes_per_second: u64,
}

/// The scrub settings of a backend; `None` when scrubbing is off or the spec is unreadable (the
/// CRD schema rejects what this cannot parse).
pub fn settings_of(backend: &StorageBackend) -> Option<Settings> {
    let scrub = &backend.spec.scrub;
    let interval = duration::parse(&scrub.interval).ok()?;
    if interval.is_zero() {
        return None;
    }
    Some(Settings {
        interval,
        bytes_per_second: u64::try_from(scrub.bytes_per_second).ok()?.max(1),
    })
}

/// The last complete pass of each backend (by uid), for `status.integrity`.
#[derive(Default)]
pub struct Passes {
    done: Mutex<HashMap<String, Pass>>,
}

/// One complete pass.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pass {
    pub completed: Time,
    pub bytes: u64,
}

impl Passes {
    pub fn last(&self, uid: &str) -> Option<Pass> {
        self.lock().get(uid).cloned()
    }

    fn complete(&self, uid: &str, pass: Pass) {
        self.lock().insert(uid.to_owned(), pass);
    }

    fn forget(&self, uid: &str) {
        self.lock().remove(uid);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Pass>> {
        self.done.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// What scrubbing reads and whom it tells.
pub struct Scrubber {
    pub backends: Store<StorageBackend>,
    pub mappings: Store<ArtifactMapping>,
    pub clients: Arc<Resolver>,
    pub verifier: Arc<Verifier>,
    pub metrics: Arc<Metrics>,
    pub clock: Arc<dyn Clock>,
    pub passes: Arc<Passes>,
    /// Mappings whose copy was read: the mapping controller records the verdict.
    pub mapping_nudge: UnboundedSender<ObjectRef<ArtifactMapping>>,
    /// Backends whose pass completed: the backend controller reports it.
    pub backend_nudge: UnboundedSender<ObjectRef<StorageBackend>>,
}

impl Scrubber {
    /// Runs one pass loop per backend with scrubbing on, until dropped (which cancels every
    /// read in flight).
    pub async fn run(self: Arc<Self>) {
        let mut loops: HashMap<String, (Settings, tokio::task::AbortHandle)> = HashMap::new();
        let mut tasks = JoinSet::new();
        loop {
            let mut wanted = HashMap::new();
            for backend in self.backends.state() {
                if let (Some(uid), Some(settings)) = (backend.uid(), settings_of(&backend)) {
                    wanted.insert(uid, (ObjectRef::from_obj(backend.as_ref()), settings));
                }
            }
            loops.retain(|uid, (settings, handle)| {
                let keep = wanted.get(uid).is_some_and(|(_, s)| s == settings);
                if !keep {
                    handle.abort();
                    self.passes.forget(uid);
                }
                keep
            });
            for (uid, (backend, settings)) in wanted {
                if !loops.contains_key(&uid) {
                    let handle = tasks.spawn(self.clone().scrub_backend(backend, settings));
                    loops.insert(uid, (settings, handle));
                }
            }
            while tasks.try_join_next().is_some() {}
            tokio::time::sleep(SUPERVISE_EVERY).await;
        }
    }

    /// Passes over `backend`'s copies, one after another, for as long as it exists.
    async fn scrub_backend(
        self: Arc<Self>,
        backend: ObjectRef<StorageBackend>,
        settings: Settings,
    ) {
        let budget = Arc::new(ByteBudget::new(settings.bytes_per_second));
        info!(backend = %backend, interval = ?settings.interval, bytes_per_second = settings.bytes_per_second, "scrubbing");
        while let Some(obj) = self.backends.get(&backend) {
            if !BackendView::of(&obj).ready {
                tokio::time::sleep(IDLE_WAIT).await;
                continue;
            }
            let pass = self.pass(&obj, settings, &budget).await;
            match pass {
                Some(pass) => {
                    self.passes.complete(&obj.uid().unwrap_or_default(), pass);
                    let _ = self.backend_nudge.unbounded_send(backend.clone());
                }
                None => tokio::time::sleep(IDLE_WAIT).await,
            }
        }
    }

    /// One pass over the copies `backend` holds: `Some` when every copy was read or skipped,
    /// `None` when the backend could not be read (it is tried again later).
    async fn pass(
        &self,
        backend: &Arc<StorageBackend>,
        settings: Settings,
        budget: &Arc<ByteBudget>,
    ) -> Option<Pass> {
        let started = self.clock.now();
        let clock_start = tokio::time::Instant::now();
        let mappings = self.mappings.state();
        let mut copies = plan::copies_on(backend, mappings.iter().map(|m| m.as_ref()));
        let labels = labels(backend);
        self.metrics
            .scrub_lag_seconds
            .get_or_create(&labels)
            .set(plan::lag(&copies, started).as_secs_f64());
        if copies.is_empty() {
            // Nothing to read: the pass is complete now, and the next looks again in a while.
            tokio::time::sleep(IDLE_WAIT.min(settings.interval)).await;
            return Some(Pass {
                completed: self.clock.now_time(),
                bytes: 0,
            });
        }
        plan::order(&mut copies);
        let spacing = plan::spacing(settings.interval, copies.len());
        let mut bytes = 0;
        for (index, copy) in copies.iter().enumerate() {
            tokio::time::sleep_until(clock_start + plan::offset(spacing, index)).await;
            bytes += self.read(backend, &copy.mapping, started, budget).await?;
        }
        debug!(backend = %backend.name_any(), copies = copies.len(), bytes, "scrub pass complete");
        Some(Pass {
            completed: self.clock.now_time(),
            bytes,
        })
    }

    /// Reads the copy `backend` holds for `mapping`, as the caches show them now (it may have
    /// moved or verified since the pass began). Returns the bytes read; `None` when the backend
    /// cannot be reached at all.
    async fn read(
        &self,
        backend: &Arc<StorageBackend>,
        mapping: &str,
        pass_start: Timestamp,
        budget: &Arc<ByteBudget>,
    ) -> Option<u64> {
        let namespace = backend.namespace().unwrap_or_default();
        let reference = ObjectRef::<ArtifactMapping>::new(mapping).within(&namespace);
        let Some(obj) = self.mappings.get(&reference) else {
            return Some(0);
        };
        let Some(copy) = plan::copy_on(&backend.name_any(), &obj) else {
            return Some(0);
        };
        let Ok(digest) = obj.spec.digest.parse::<Digest>() else {
            return Some(0);
        };
        if !plan::worth_reading(&copy, pass_start) {
            return Some(0);
        }
        let store = match self.clients.store_for(backend).await {
            Ok(store) => store,
            Err(err) => {
                warn!(backend = %backend.name_any(), error = %err, "scrub cannot read the backend");
                return None;
            }
        };
        let target = observe::target(&obj, &digest, backend, &copy.key);
        let read = self
            .verifier
            .scrub(store, &target, budget.clone(), self.clock.now_time())
            .await;
        let labels = labels(backend);
        self.metrics
            .scrub_bytes
            .get_or_create(&labels)
            .inc_by(read.bytes);
        self.metrics
            .scrub_verifications
            .get_or_create(&BackendResultLabels {
                namespace: labels.namespace.clone(),
                backend: labels.backend.clone(),
                result: read.verdict.metric_label().to_owned(),
            })
            .inc();
        if read.verdict.is_conclusive() {
            let finding = crate::mapping::findings::reason_of(&read.verdict);
            if let (Some(finding), false) = (finding, copy.bad) {
                self.metrics
                    .findings
                    .get_or_create(&BackendResultLabels {
                        namespace: labels.namespace,
                        backend: labels.backend,
                        result: finding.to_owned(),
                    })
                    .inc();
            }
            let _ = self.mapping_nudge.unbounded_send(reference);
        }
        Some(read.bytes)
    }
}

fn labels(backend: &StorageBackend) -> BackendLabels {
    BackendLabels {
        namespace: backend.namespace().unwrap_or_default(),
        backend: backend.name_any(),
    }
}
