//! Scrubbing: every copy a backend serves is re-read and its digest recomputed at least once per
//! `spec.scrub.interval`, spread evenly over it, within `spec.scrub.bytesPerSecond`; copies
//! recorded bad are read again to see whether they verify.
//!
//! Owns: one scrub loop per backend with scrubbing on ([`Scrubber::run`] keeps that set in step
//! with the backends), the reads (through [`Verifier::scrub`], which yields to reassignment), the
//! pass record ([`Passes`]) and the scrub metrics. The schedule itself is [`plan`].
//!
//! Must not: write any API object but repair events, nor any bucket object but a repair
//! ([`repair`]; never a deletion). A read's verdict is remembered by the verifier and the mapping is
//! reconciled: the mapping controller turns it into `lastVerifiedTime` or a finding, and the
//! backend controller counts the findings into `status.integrity`. Progress therefore lives in
//! the mappings' status and survives restarts.

pub mod plan;
pub mod repair;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::channel::mpsc::UnboundedSender;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::ResourceExt;
use tokio::task::JoinSet;
use tracing::{debug, info, warn};

use crate::api::{ArtifactMapping, StorageBackend};
use crate::backend::duration;
use crate::clock::Clock;
use crate::cluster::{self, EventNote};
use crate::digest::Digest;
use crate::mapping::observe;
use crate::metrics::{BackendLabels, BackendResultLabels, Metrics};
use crate::placement::BackendView;
use crate::resolve::Resolver;
use crate::storage::verify::{ByteBudget, Verdict};
use crate::verifier::{Target, Verifier};
use kube::runtime::events::{EventType, Recorder};

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
    /// Events of repairs.
    pub recorder: Recorder,
    /// Mappings whose copy was read: the mapping controller records the verdict.
    pub mapping_nudge: UnboundedSender<ObjectRef<ArtifactMapping>>,
    /// Backends whose pass completed: the backend controller reports it.
    pub backend_nudge: UnboundedSender<ObjectRef<StorageBackend>>,
}

impl Scrubber {
    /// Runs one scrub loop per backend with scrubbing on, until dropped (which cancels every
    /// read in flight).
    pub async fn run(self: Arc<Self>) {
        let mut loops: HashMap<String, (Settings, tokio::task::AbortHandle)> = HashMap::new();
        let mut tasks = JoinSet::new();
        loop {
            // A loop that ended (its backend went away, or it panicked) is started again below
            // if its backend still wants scrubbing.
            while let Some(ended) = tasks.try_join_next_with_id() {
                let id = match ended {
                    Ok((id, ())) => id,
                    Err(err) => {
                        warn!(error = %err, "a scrub loop failed; restarting it");
                        err.id()
                    }
                };
                loops.retain(|_, (_, handle)| handle.id() != id);
            }
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
                loops.entry(uid).or_insert_with(|| {
                    let handle = tasks.spawn(self.clone().scrub_backend(backend, settings));
                    (settings, handle)
                });
            }
            tokio::time::sleep(SUPERVISE_EVERY).await;
        }
    }

    /// Reads `backend`'s copies at a steady pace, for as long as it exists. A pass is as many
    /// turns as the backend held copies when it began: every copy had its turn.
    async fn scrub_backend(
        self: Arc<Self>,
        backend: ObjectRef<StorageBackend>,
        settings: Settings,
    ) {
        let budget = Arc::new(ByteBudget::new(settings.bytes_per_second));
        info!(backend = %backend, interval = ?settings.interval, bytes_per_second = settings.bytes_per_second, "scrubbing");
        let mut pass = PassProgress::default();
        let mut read_at = HashMap::new();
        while let Some(obj) = self.backends.get(&backend) {
            if !BackendView::of(&obj).ready {
                tokio::time::sleep(IDLE_WAIT).await;
                continue;
            }
            let turn_started = tokio::time::Instant::now();
            let now = self.clock.now();
            let mappings = self.mappings.state();
            let mut copies = plan::copies_on(&obj, mappings.iter().map(|m| m.as_ref()));
            drop(mappings);
            plan::with_reads(&mut copies, &mut read_at);
            self.metrics
                .scrub_lag_seconds
                .get_or_create(&labels(&obj))
                .set(plan::lag(&copies, now).as_secs_f64());
            if pass.turns_left == 0 {
                pass = PassProgress::start(copies.len());
            }
            let spacing = plan::spacing(settings.interval, copies.len());
            if let Some(copy) = plan::next(&copies, now, settings.interval) {
                read_at.insert(copy.mapping.clone(), now);
                match self.read(&obj, &copy.mapping, &budget).await {
                    Some(bytes) => pass.bytes += bytes,
                    // The backend cannot be read: this pass is not complete.
                    None => pass = PassProgress::default(),
                }
            }
            pass.turns_left = pass.turns_left.saturating_sub(1);
            if pass.turns_left == 0 && pass.counted {
                self.complete_pass(&obj, &backend, pass.bytes);
            }
            let wait = if copies.is_empty() {
                IDLE_WAIT.min(settings.interval)
            } else {
                spacing
            };
            tokio::time::sleep_until(turn_started + wait).await;
        }
    }

    fn complete_pass(&self, obj: &StorageBackend, backend: &ObjectRef<StorageBackend>, bytes: u64) {
        debug!(backend = %backend, bytes, "scrub pass complete");
        self.passes.complete(
            &obj.uid().unwrap_or_default(),
            Pass {
                completed: self.clock.now_time(),
                bytes,
            },
        );
        let _ = self.backend_nudge.unbounded_send(backend.clone());
    }

    /// Reads the copy `backend` holds for `mapping` and has the mapping reconciled with the
    /// verdict. Returns the bytes read; `None` when the backend cannot be reached at all.
    async fn read(
        &self,
        backend: &Arc<StorageBackend>,
        mapping: &str,
        budget: &Arc<ByteBudget>,
    ) -> Option<u64> {
        let namespace = backend.namespace().unwrap_or_default();
        let reference = ObjectRef::<ArtifactMapping>::new(mapping).within(&namespace);
        let obj = self.mappings.get(&reference)?;
        let copy = plan::copy_on(&backend.name_any(), &obj)?;
        let digest = obj.spec.digest.parse::<Digest>().ok()?;
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
        self.count(backend, &read.verdict, read.bytes, copy.bad);
        let mut bytes = read.bytes;
        let still_bad = read.verdict.is_conclusive() && !read.verdict.is_verified();
        if copy.bad && still_bad && repair::allowed(backend).is_ok() {
            bytes += self.repair(backend, &obj, &target, budget).await;
        }
        if read.verdict.is_conclusive() {
            let _ = self.mapping_nudge.unbounded_send(reference);
        }
        Some(bytes)
    }

    /// Copies verified bytes onto the bad copy and reads them back; only a read-back that
    /// verifies counts (and is what clears the finding). Returns the bytes read back.
    async fn repair(
        &self,
        backend: &Arc<StorageBackend>,
        mapping: &ArtifactMapping,
        target: &Target,
        budget: &Arc<ByteBudget>,
    ) -> u64 {
        let labels = labels(backend);
        let result = |result: &str| BackendResultLabels {
            namespace: labels.namespace.clone(),
            backend: labels.backend.clone(),
            result: result.to_owned(),
        };
        let copied =
            repair::copy_onto(mapping, backend, &target.key, &self.backends, &self.clients).await;
        if let Err(err) = copied {
            warn!(backend = %backend.name_any(), mapping = %mapping.name_any(), error = %err, "repair not possible");
            self.metrics.repairs.get_or_create(&result("failed")).inc();
            return 0;
        }
        let Ok(store) = self.clients.store_for(backend).await else {
            return 0;
        };
        let back = self
            .verifier
            .scrub(store, target, budget.clone(), self.clock.now_time())
            .await;
        let outcome = if back.verdict.is_verified() {
            "repaired"
        } else {
            "failed"
        };
        self.metrics.repairs.get_or_create(&result(outcome)).inc();
        if back.verdict.is_verified() {
            let note = EventNote {
                type_: EventType::Normal,
                reason: "Repaired",
                action: "Repair",
                note: format!(
                    "the copy on backend {} under key {} was rewritten from a verified copy and read back matching {}",
                    backend.name_any(),
                    target.key,
                    mapping.spec.digest
                ),
            };
            cluster::publish(&self.recorder, mapping, &[note]).await;
            info!(backend = %backend.name_any(), mapping = %mapping.name_any(), "bad copy repaired");
        } else {
            warn!(backend = %backend.name_any(), mapping = %mapping.name_any(), verdict = %back.verdict, "repaired copy did not verify");
        }
        back.bytes
    }

    fn count(&self, backend: &StorageBackend, verdict: &Verdict, bytes: u64, was_bad: bool) {
        let labels = labels(backend);
        self.metrics
            .scrub_bytes
            .get_or_create(&labels)
            .inc_by(bytes);
        let with_result = |result: &str| BackendResultLabels {
            namespace: labels.namespace.clone(),
            backend: labels.backend.clone(),
            result: result.to_owned(),
        };
        self.metrics
            .scrub_verifications
            .get_or_create(&with_result(verdict.metric_label()))
            .inc();
        if let (Some(finding), false) = (crate::mapping::findings::reason_of(verdict), was_bad) {
            self.metrics
                .findings
                .get_or_create(&with_result(finding))
                .inc();
        }
    }
}

/// Where a backend's current pass stands.
#[derive(Default)]
struct PassProgress {
    turns_left: usize,
    bytes: u64,
    /// Started with copies to read (an empty backend completes no pass until it holds some).
    counted: bool,
}

impl PassProgress {
    fn start(copies: usize) -> PassProgress {
        PassProgress {
            turns_left: copies.max(1),
            bytes: 0,
            counted: copies > 0,
        }
    }
}

fn labels(backend: &StorageBackend) -> BackendLabels {
    BackendLabels {
        namespace: backend.namespace().unwrap_or_default(),
        backend: backend.name_any(),
    }
}
