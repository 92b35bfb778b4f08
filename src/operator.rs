//! `castellan run`: wires the two controllers to shared caches, waits for the CRDs, serves
//! `/metrics`, `/healthz` and `/readyz`, and optionally holds a Lease so that two replicas never
//! both write.
//!
//! Owns: process lifecycle only — caches, feeds, controllers, leader election, HTTP endpoints.
//! What a reconcile decides lives in `backend`, `mapping` and `placement`.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::future::{BoxFuture, Shared};
use futures::{FutureExt, StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::Secret;
use kube::core::PartialObjectMeta;
use kube::runtime::controller::{self, Controller};
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::reflector::store::Writer;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{watcher, WatchStreamExt};
use kube::{Api, Client};
use tokio::sync::watch as tokio_watch;
use tracing::{info, warn};

use crate::api::{ArtifactMapping, StorageBackend};
use crate::backend::ProbeMemory;
use crate::clock::{Clock, SystemClock};
use crate::cluster::{self, ClusterError};
use crate::mapping::decide::MappingState;
use crate::mapping::MappingIndex;
use crate::metrics::Metrics;
use crate::resolve::{AmbientCredentials, Resolver};
use crate::storage::network::EndpointPolicy;
use crate::telemetry::{guarded, traced};
use crate::verifier::Verifier;
use crate::{backend, fence, mapping, scrub};

/// Name of the reporting controller on events (a qualified name, as the events API requires).
pub const CONTROLLER_NAME: &str = "castellan.io/operator";

/// How `castellan run` is configured.
#[derive(Clone, Debug)]
pub struct RunConfig {
    /// Watch only this namespace; `None` = all namespaces.
    pub namespace: Option<String>,
    /// Where `/metrics` is served; `None` = not served.
    pub metrics_addr: Option<SocketAddr>,
    /// Where `/healthz` and `/readyz` are served; `None` = not served.
    pub health_addr: Option<SocketAddr>,
    /// Lease-based leader election; `None` = this replica always writes.
    pub leader_election: Option<LeaderElection>,
    /// Identity on events and the Lease (the pod name in a cluster).
    pub instance: String,
    /// How long to wait for the CRDs to be established before giving up.
    pub crd_wait: Duration,
    pub settings: Settings,
}

/// Leader-election settings.
#[derive(Clone, Debug)]
pub struct LeaderElection {
    pub lease_name: String,
    pub lease_namespace: String,
    /// Seconds a lease stays valid without renewal.
    pub lease_duration_seconds: u64,
    /// Seconds before expiry at which the holder renews.
    pub renew_grace_seconds: u64,
}

/// Operator-wide settings (from `castellan run` flags).
#[derive(Clone, Debug)]
pub struct Settings {
    /// Most digest verifications running at once.
    pub verify_concurrency: usize,
    /// Byte-rate budget of all verifications together; `None` = unlimited.
    pub verify_bytes_per_second: Option<u64>,
    /// Longest pause between retries of a mapping with no verified replica.
    pub max_backoff: Duration,
    /// Shortest validation interval applied to any backend, whatever its spec asks.
    pub min_validation_interval: Duration,
    /// Namespaces whose backends without a Secret may use the operator's own identity.
    pub ambient_credentials: AmbientCredentials,
    /// Which addresses endpoints may be in; `None` allows any (`castellan run` always sets it).
    pub endpoint_policy: Option<Arc<EndpointPolicy>>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            verify_concurrency: 16,
            verify_bytes_per_second: None,
            max_backoff: Duration::from_secs(300),
            min_validation_interval: backend::schedule::DEFAULT_MIN_INTERVAL,
            ambient_credentials: AmbientCredentials::Nowhere,
            endpoint_policy: None,
        }
    }
}

/// Readiness, as `/readyz` reports it.
#[derive(Default)]
pub struct Readiness {
    crds_established: AtomicBool,
    caches_synced: AtomicBool,
    /// A replica waiting for the Lease is ready to take over: it must not block rollouts.
    standby: AtomicBool,
}

impl Readiness {
    pub fn is_ready(&self) -> bool {
        self.crds_established.load(Ordering::Relaxed)
            && (self.caches_synced.load(Ordering::Relaxed) || self.standby.load(Ordering::Relaxed))
    }
}

/// Errors that stop the operator.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Crds(#[from] ClusterError),
    #[error("leader election: {0}")]
    LeaderElection(#[from] kube_lease_manager::LeaseManagerError),
    #[error("lost the leader lease {0}; stopping so that only the new leader writes")]
    LeadershipLost(String),
    #[error("serving HTTP on {addr}: {source}")]
    Http {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// Run the operator until `shutdown` resolves (or leadership is lost).
pub async fn run(
    client: Client,
    config: RunConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    let metrics = Arc::new(Metrics::new());
    let readiness = Arc::new(Readiness::default());
    let (stop_tx, stop_rx) = tokio_watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    });

    let mut servers = Vec::new();
    if let Some(addr) = config.metrics_addr {
        servers.push(serve_http(addr, metrics.clone(), readiness.clone(), stop_rx.clone()).await?);
    }
    if let Some(addr) = config.health_addr {
        if Some(addr) != config.metrics_addr {
            servers
                .push(serve_http(addr, metrics.clone(), readiness.clone(), stop_rx.clone()).await?);
        }
    }

    cluster::wait_for_crds(&client, config.crd_wait).await?;
    readiness.crds_established.store(true, Ordering::Relaxed);

    let result = match &config.leader_election {
        None => run_controllers(client, &config, metrics, readiness, stop_rx.clone()).await,
        Some(le) => run_as_leader(client, &config, le, metrics, readiness, stop_rx.clone()).await,
    };
    for server in servers {
        server.abort();
    }
    result
}

async fn run_as_leader(
    client: Client,
    config: &RunConfig,
    le: &LeaderElection,
    metrics: Arc<Metrics>,
    readiness: Arc<Readiness>,
    mut stop: tokio_watch::Receiver<bool>,
) -> Result<(), Error> {
    let manager = kube_lease_manager::LeaseManagerBuilder::new(client.clone(), &le.lease_name)
        .with_namespace(&le.lease_namespace)
        .with_identity(&config.instance)
        .with_duration(le.lease_duration_seconds)
        .with_grace(le.renew_grace_seconds)
        .with_field_manager("castellan-leader-election")
        .build()
        .await?;
    readiness.standby.store(true, Ordering::Relaxed);
    let (mut leader, lease_task) = manager.watch().await;
    info!(lease = %le.lease_name, identity = %config.instance, "campaigning for the leader lease");
    // Wait until this replica leads (or shutdown).
    loop {
        if *leader.borrow_and_update() {
            break;
        }
        tokio::select! {
            changed = leader.changed() => if changed.is_err() { return Err(Error::LeadershipLost(le.lease_name.clone())) },
            _ = stop.changed() => { drop(leader); let _ = lease_task.await; return Ok(()) }
        }
    }
    info!(lease = %le.lease_name, "acquired the leader lease; starting controllers");
    readiness.standby.store(false, Ordering::Relaxed);
    let (ctrl_stop_tx, ctrl_stop_rx) = tokio_watch::channel(false);
    let controllers = run_controllers(client.clone(), config, metrics, readiness, ctrl_stop_rx);
    let watchdog = watch_leadership(client, config, le, leader, stop);
    tokio::pin!(controllers);
    let lost = tokio::select! {
        ended = &mut controllers => {
            ended?;
            None
        }
        lost = watchdog => match lost {
            // Dropping the controllers cancels their in-flight reconciles: not one more write.
            Some(err) => Some(err),
            None => {
                let _ = ctrl_stop_tx.send(true);
                controllers.await?;
                None
            }
        },
    };
    match lost {
        // A lost lease is not this replica's to release, and its manager may be sleeping out a
        // backoff between failed renewals: the process ends now.
        Some(err) => {
            lease_task.abort();
            Err(err)
        }
        // The watchdog dropped its receiver: the lease task releases the lease so that a
        // standby takes over at once, not after the lease expires.
        None => {
            match tokio::time::timeout(Duration::from_secs(le.renew_grace_seconds), lease_task)
                .await
            {
                Ok(Ok(Err(err))) => warn!(error = %err, "releasing the leader lease failed"),
                Err(_) => warn!("releasing the leader lease timed out"),
                _ => {}
            }
            Ok(())
        }
    }
}

/// Returns `Some` as soon as this replica may no longer write: the lease manager says the lease
/// is lost, or the fence (the lease as the API server shows it) lapses; `None` on shutdown.
async fn watch_leadership(
    client: Client,
    config: &RunConfig,
    le: &LeaderElection,
    mut leader: tokio_watch::Receiver<bool>,
    mut stop: tokio_watch::Receiver<bool>,
) -> Option<Error> {
    let grace = Duration::from_secs(le.renew_grace_seconds);
    let fence = fence::hold(
        Api::namespaced(client, &le.lease_namespace),
        &le.lease_name,
        &config.instance,
        fence::margin(grace),
        (grace / 2).max(Duration::from_millis(500)),
    );
    tokio::pin!(fence);
    loop {
        tokio::select! {
            changed = leader.changed() => {
                if changed.is_err() || !*leader.borrow_and_update() {
                    return Some(Error::LeadershipLost(le.lease_name.clone()));
                }
            }
            lapse = &mut fence => {
                warn!(lease = %le.lease_name, %lapse, "the leader fence lapsed; stopping all writes");
                return Some(Error::LeadershipLost(le.lease_name.clone()));
            }
            _ = stop.changed() => return None,
        }
    }
}

/// The operator proper: shared caches fed by one watch per kind, both controllers, and the
/// readiness flag, until `stop`.
async fn run_controllers(
    client: Client,
    config: &RunConfig,
    metrics: Arc<Metrics>,
    readiness: Arc<Readiness>,
    stop: tokio_watch::Receiver<bool>,
) -> Result<(), Error> {
    let (caches, writers) = Caches::new();
    let common = Common::new(
        &client,
        &config.instance,
        &config.settings,
        metrics,
        Arc::new(SystemClock),
        Some(caches.secrets.clone()),
    );
    let backend_ctx =
        Arc::new(common.backend_context(caches.backends.clone(), caches.mappings.clone()));
    // Backend transitions re-place the mappings they affect (computed by the index in the
    // backend feed, so no mapper mutates anything); scrub reads have theirs recorded.
    let (affected_tx, affected_rx) = futures::channel::mpsc::unbounded();
    // Backends to reconcile now: a referenced Secret was deleted, a scrub pass completed, or
    // findings on them changed.
    let (backend_nudge_tx, backend_nudge_rx) = futures::channel::mpsc::unbounded();
    let mapping_ctx = Arc::new(mapping::Context {
        backend_nudge: Some(backend_nudge_tx.clone()),
        ..common.mapping_context(caches.backends.clone())
    });
    let scrubber =
        Arc::new(common.scrubber(&caches, affected_tx.clone(), backend_nudge_tx.clone()));
    let feeds = Feeds::start(
        &client,
        config,
        writers,
        &backend_ctx,
        &common.index,
        affected_tx,
        backend_nudge_tx,
    );
    let stopped = stopped(stop);
    let synced = caches.mark_synced(readiness);
    let Caches {
        backends,
        mappings,
        backend_changes,
        mapping_changes,
        secret_changes,
        ..
    } = caches;
    let backends = run_backend_controller(
        backends,
        backend_changes,
        secret_changes,
        backend_nudge_rx,
        backend_ctx,
        stopped.clone(),
    );
    let mappings = run_mapping_controller(
        config,
        mappings,
        mapping_changes,
        mapping_ctx,
        affected_rx,
        stopped,
    );
    info!(
        namespace = config.namespace.as_deref().unwrap_or("<all>"),
        "controllers starting"
    );
    // Scrubbing starts once the caches hold what it orders by; it stops with the controllers.
    let scrubbing = async {
        synced.await;
        scrubber.run().await;
    };
    tokio::select! {
        _ = async { tokio::join!(backends, mappings) } => {},
        _ = scrubbing => {},
        ended = feeds.run() => warn!(watch = ended, "a watch ended"),
    }
    info!("controllers stopped");
    Ok(())
}

/// What both controllers share, and the constructors of their contexts (the operator's wiring,
/// also used by the tests so that they reconcile with what production builds).
pub struct Common {
    pub client: Client,
    pub recorder: Recorder,
    pub metrics: Arc<Metrics>,
    pub clock: Arc<dyn Clock>,
    pub clients: Arc<Resolver>,
    pub verifier: Arc<Verifier>,
    pub index: Arc<MappingIndex>,
    pub max_backoff: Duration,
    pub min_validation_interval: Duration,
    pub scrub_passes: Arc<scrub::Passes>,
}

impl Common {
    /// `secrets`: the Secrets' metadata cache the clients consult (one GET per resolve without
    /// it).
    pub fn new(
        client: &Client,
        instance: &str,
        settings: &Settings,
        metrics: Arc<Metrics>,
        clock: Arc<dyn Clock>,
        secrets: Option<Store<PartialObjectMeta<Secret>>>,
    ) -> Common {
        let clients = match secrets {
            Some(store) => Resolver::with_secret_metadata(client.clone(), store),
            None => Resolver::new(client.clone()),
        }
        .with_ambient_credentials(
            settings.ambient_credentials.clone(),
            "start castellan run with --allow-ambient-credentials NAMESPACE to lend them",
        )
        .with_endpoint_policy(settings.endpoint_policy.clone());
        Common {
            client: client.clone(),
            recorder: Recorder::new(
                client.clone(),
                Reporter {
                    controller: CONTROLLER_NAME.to_string(),
                    instance: Some(instance.to_owned()),
                },
            ),
            clock,
            clients: Arc::new(clients),
            verifier: Arc::new(Verifier::new(
                settings.verify_concurrency,
                settings.verify_bytes_per_second,
                metrics.clone(),
            )),
            index: Arc::new(MappingIndex::new()),
            max_backoff: settings.max_backoff,
            min_validation_interval: settings.min_validation_interval,
            scrub_passes: Arc::default(),
            metrics,
        }
    }

    pub fn backend_context(
        &self,
        backends: Store<StorageBackend>,
        mappings: Store<ArtifactMapping>,
    ) -> backend::Context {
        backend::Context {
            client: self.client.clone(),
            recorder: self.recorder.clone(),
            metrics: self.metrics.clone(),
            clock: self.clock.clone(),
            backends,
            mappings,
            clients: self.clients.clone(),
            probes: ProbeMemory::default(),
            min_interval: self.min_validation_interval,
            scrub_passes: self.scrub_passes.clone(),
        }
    }

    /// The scrubber, reading the shared caches and telling the controllers what it read.
    fn scrubber(
        &self,
        caches: &Caches,
        mapping_nudge: futures::channel::mpsc::UnboundedSender<ObjectRef<ArtifactMapping>>,
        backend_nudge: futures::channel::mpsc::UnboundedSender<ObjectRef<StorageBackend>>,
    ) -> scrub::Scrubber {
        scrub::Scrubber {
            backends: caches.backends.clone(),
            mappings: caches.mappings.clone(),
            clients: self.clients.clone(),
            verifier: self.verifier.clone(),
            metrics: self.metrics.clone(),
            clock: self.clock.clone(),
            passes: self.scrub_passes.clone(),
            recorder: self.recorder.clone(),
            mapping_nudge,
            backend_nudge,
        }
    }

    pub fn mapping_context(&self, backends: Store<StorageBackend>) -> mapping::Context {
        mapping::Context {
            client: self.client.clone(),
            recorder: self.recorder.clone(),
            metrics: self.metrics.clone(),
            clock: self.clock.clone(),
            backends,
            index: self.index.clone(),
            clients: self.clients.clone(),
            verifier: self.verifier.clone(),
            max_backoff: self.max_backoff,
            backend_nudge: None,
        }
    }
}

/// The reflector caches, each shared by the controllers that read it, and the streams of their
/// changes the controllers follow.
struct Caches {
    backends: Store<StorageBackend>,
    mappings: Store<ArtifactMapping>,
    /// Metadata only: which Secrets exist and their resourceVersions, never their data.
    secrets: Store<PartialObjectMeta<Secret>>,
    backend_changes: ChangeStream<StorageBackend>,
    mapping_changes: ChangeStream<ArtifactMapping>,
    secret_changes: ChangeStream<PartialObjectMeta<Secret>>,
}

/// Changes of a shared cache, as a controller follows them.
type ChangeStream<K> = reflector::ReflectHandle<K>;

fn subscribe<K>(writer: &Writer<K>) -> ChangeStream<K>
where
    K: kube::Resource + Clone + 'static,
    K::DynamicType: Eq + std::hash::Hash + Clone,
{
    writer.subscribe().expect("a shared store subscribes")
}

/// The writing ends of the caches, consumed by the feeds.
struct Writers {
    backends: Writer<StorageBackend>,
    mappings: Writer<ArtifactMapping>,
    secrets: Writer<PartialObjectMeta<Secret>>,
}

impl Caches {
    fn new() -> (Caches, Writers) {
        let (backends, backend_writer) = reflector::store_shared::<StorageBackend>(1024);
        let (mappings, mapping_writer) = reflector::store_shared::<ArtifactMapping>(4096);
        let (secrets, secret_writer) = reflector::store_shared::<PartialObjectMeta<Secret>>(256);
        let caches = Caches {
            backend_changes: subscribe(&backend_writer),
            mapping_changes: subscribe(&mapping_writer),
            secret_changes: subscribe(&secret_writer),
            backends,
            mappings,
            secrets,
        };
        let writers = Writers {
            backends: backend_writer,
            mappings: mapping_writer,
            secrets: secret_writer,
        };
        (caches, writers)
    }

    /// Sets the readiness flag once every cache has completed its first list.
    fn mark_synced(&self, readiness: Arc<Readiness>) -> impl Future<Output = ()> {
        let (backends, mappings, secrets) = (
            self.backends.clone(),
            self.mappings.clone(),
            self.secrets.clone(),
        );
        async move {
            let _ = tokio::join!(
                backends.wait_until_ready(),
                mappings.wait_until_ready(),
                secrets.wait_until_ready()
            );
            readiness.caches_synced.store(true, Ordering::Relaxed);
            info!("caches synced");
        }
    }
}

/// The watch streams that feed the caches; they must be polled for anything to happen.
struct Feeds {
    backends: BoxFuture<'static, ()>,
    mappings: BoxFuture<'static, ()>,
    secrets: BoxFuture<'static, ()>,
}

impl Feeds {
    fn start(
        client: &Client,
        config: &RunConfig,
        writers: Writers,
        backend_ctx: &Arc<backend::Context>,
        index: &Arc<MappingIndex>,
        affected: futures::channel::mpsc::UnboundedSender<ObjectRef<ArtifactMapping>>,
        secret_gone: futures::channel::mpsc::UnboundedSender<ObjectRef<StorageBackend>>,
    ) -> Feeds {
        let scope = config.namespace.as_deref();
        let backends = {
            let (ctx, index) = (backend_ctx.clone(), index.clone());
            watcher(api(client, scope), watcher::Config::default())
                .default_backoff()
                .modify(strip_managed_fields)
                .inspect_ok(move |event| {
                    if let watcher::Event::Delete(backend) = event {
                        backend::cleanup(backend, &ctx);
                    }
                    for mapping in index.apply_backend_event(event) {
                        // The receiver lives as long as the mapping controller.
                        let _ = affected.unbounded_send(mapping);
                    }
                })
                .reflect_shared(writers.backends)
                .for_each(|event| log_watch_error("StorageBackend", event))
                .boxed()
        };
        let mappings = {
            let (index, metrics) = (index.clone(), backend_ctx.metrics.clone());
            watcher(api(client, scope), watcher::Config::default())
                .default_backoff()
                .modify(strip_managed_fields)
                .inspect_ok(move |event| {
                    index.apply_event(event);
                    // Reconciles keep the gauges current; a deletion has no reconcile.
                    if let watcher::Event::Delete(mapping) = event {
                        if let Some(namespace) = mapping.metadata.namespace.as_deref() {
                            let counts = MappingState::ALL
                                .map(|state| (state.label(), index.count(namespace, state)));
                            metrics.set_mapping_states(namespace, &counts);
                        }
                    }
                })
                .reflect_shared(writers.mappings)
                .for_each(|event| log_watch_error("ArtifactMapping", event))
                .boxed()
        };
        let secrets = {
            let backends = backend_ctx.backends.clone();
            watcher(
                api::<PartialObjectMeta<Secret>>(client, scope),
                watcher::Config::default(),
            )
            .default_backoff()
            .modify(strip_secret_metadata)
            .inspect_ok(move |event| {
                // A shared store tells subscribers of changes, not of deletions: a deleted
                // Secret re-validates its backends from here, within seconds.
                if let watcher::Event::Delete(secret) = event {
                    for backend in backend::backends_for_secret(secret, &backends) {
                        let _ = secret_gone.unbounded_send(backend);
                    }
                }
            })
            .reflect_shared(writers.secrets)
            .for_each(|event| log_watch_error("Secret", event))
            .boxed()
        };
        Feeds {
            backends,
            mappings,
            secrets,
        }
    }

    /// Polls every feed; returns the kind of the first whose watch ended (they never should).
    async fn run(self) -> &'static str {
        tokio::select! {
            _ = self.backends => "StorageBackend",
            _ = self.mappings => "ArtifactMapping",
            _ = self.secrets => "Secret",
        }
    }
}

fn api<K>(client: &Client, namespace: Option<&str>) -> Api<K>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
{
    match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

async fn log_watch_error<K>(kind: &'static str, event: Result<K, watcher::Error>) {
    if let Err(err) = event {
        warn!(kind, error = %err, "watch failed; retrying");
    }
}

/// Resolves once `stop` says so (or its sender is gone); shareable between controllers.
fn stopped(mut stop: tokio_watch::Receiver<bool>) -> Shared<BoxFuture<'static, ()>> {
    async move {
        while !*stop.borrow_and_update() {
            if stop.changed().await.is_err() {
                break;
            }
        }
    }
    .boxed()
    .shared()
}

fn run_backend_controller(
    backends: Store<StorageBackend>,
    backend_changes: ChangeStream<StorageBackend>,
    secret_changes: ChangeStream<PartialObjectMeta<Secret>>,
    secret_gone: futures::channel::mpsc::UnboundedReceiver<ObjectRef<StorageBackend>>,
    ctx: Arc<backend::Context>,
    stopped: Shared<BoxFuture<'static, ()>>,
) -> impl Future<Output = ()> {
    let referencing = backends.clone();
    Controller::for_shared_stream(backend_changes, backends)
        // A backend's status carries its serving/stranded counts, which change with every
        // mapping that moves, and its own status write triggers the next reconcile: debouncing
        // keeps that to about one write per second per backend during a mass reassignment and
        // delays nothing else by more.
        .with_config(controller::Config::default().debounce(BACKEND_DEBOUNCE))
        .watches_shared_stream(secret_changes, move |secret| {
            backend::backends_for_secret(secret.as_ref(), &referencing)
        })
        .reconcile_on(secret_gone)
        .graceful_shutdown_on(stopped)
        .run(
            |obj, ctx| {
                let object = ObjectRef::from_obj(obj.as_ref());
                let reconcile = guarded(backend::reconcile(obj, ctx), backend::Error::Panicked);
                traced(backend::CONTROLLER, object, reconcile)
            },
            backend::error_policy,
            ctx,
        )
        .for_each(|result| async move { log_outcome(backend::CONTROLLER, result) })
}

fn run_mapping_controller(
    config: &RunConfig,
    mappings: Store<ArtifactMapping>,
    mapping_changes: ChangeStream<ArtifactMapping>,
    ctx: Arc<mapping::Context>,
    affected: futures::channel::mpsc::UnboundedReceiver<ObjectRef<ArtifactMapping>>,
    stopped: Shared<BoxFuture<'static, ()>>,
) -> impl Future<Output = ()> {
    let concurrency =
        u16::try_from(config.settings.verify_concurrency.saturating_mul(2)).unwrap_or(u16::MAX);
    Controller::for_shared_stream(mapping_changes, mappings)
        .with_config(controller::Config::default().concurrency(concurrency))
        .reconcile_on(affected)
        .graceful_shutdown_on(stopped)
        .run(
            |obj, ctx| {
                let object = ObjectRef::from_obj(obj.as_ref());
                let reconcile = guarded(mapping::reconcile(obj, ctx), mapping::Error::Panicked);
                traced(mapping::CONTROLLER, object, reconcile)
            },
            mapping::error_policy,
            ctx,
        )
        .for_each(|result| async move { log_outcome(mapping::CONTROLLER, result) })
}

/// Trailing-edge debounce of StorageBackend reconciles.
const BACKEND_DEBOUNCE: Duration = Duration::from_secs(1);

/// Managed fields are server bookkeeping for apply; the operator's caches never read them.
fn strip_managed_fields<K: kube::Resource>(object: &mut K) {
    object.meta_mut().managed_fields = None;
}

/// What the Secret metadata cache keeps: the name and resourceVersion the resolver reads, not
/// the bookkeeping. kubectl's last-applied annotation would be a copy of the keys themselves;
/// managed fields are only weight.
fn strip_secret_metadata(secret: &mut PartialObjectMeta<Secret>) {
    strip_managed_fields(secret);
    if let Some(annotations) = secret.metadata.annotations.as_mut() {
        annotations.remove("kubectl.kubernetes.io/last-applied-configuration");
    }
}

fn log_outcome<K, E: std::fmt::Display>(
    controller: &str,
    result: Result<(ObjectRef<K>, controller::Action), controller::Error<E, watcher::Error>>,
) where
    K: kube::Resource,
    K::DynamicType: Eq + std::hash::Hash + Clone + std::fmt::Debug,
{
    if let Err(err) = result {
        match err {
            controller::Error::ReconcilerFailed(err, obj) => {
                warn!(controller, object = %obj, error = %err, "reconcile failed")
            }
            other => warn!(controller, error = %other, "controller error"),
        }
    }
}

/// Serve `/metrics`, `/healthz` and `/readyz` on `addr`.
async fn serve_http(
    addr: SocketAddr,
    metrics: Arc<Metrics>,
    readiness: Arc<Readiness>,
    mut stop: tokio_watch::Receiver<bool>,
) -> Result<tokio::task::JoinHandle<()>, Error> {
    use axum::http::{header, StatusCode};
    use axum::routing::get;

    let app = axum::Router::new()
        .route(
            "/metrics",
            get(move || {
                let metrics = metrics.clone();
                async move {
                    (
                        [(
                            header::CONTENT_TYPE,
                            "application/openmetrics-text; version=1.0.0; charset=utf-8",
                        )],
                        metrics.render(),
                    )
                }
            }),
        )
        .route("/healthz", get(|| async { "ok\n" }))
        .route(
            "/readyz",
            get(move || {
                let readiness = readiness.clone();
                async move {
                    if readiness.is_ready() {
                        (StatusCode::OK, "ok\n")
                    } else {
                        (
                            StatusCode::SERVICE_UNAVAILABLE,
                            "waiting for CRDs and caches\n",
                        )
                    }
                }
            }),
        );
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| Error::Http { addr, source })?;
    info!(%addr, "serving /metrics, /healthz and /readyz");
    Ok(tokio::spawn(async move {
        let shutdown = async move {
            while !*stop.borrow_and_update() {
                if stop.changed().await.is_err() {
                    break;
                }
            }
        };
        if let Err(err) = axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await
        {
            warn!(error = %err, "HTTP server failed");
        }
    }))
}
