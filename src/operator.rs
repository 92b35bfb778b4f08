//! `castellan run`: wires the two controllers to shared caches, waits for the CRDs, serves
//! `/metrics`, `/healthz` and `/readyz`, and optionally holds a Lease so that two replicas never
//! both write.
//!
//! This module owns process lifecycle only; what a reconcile decides lives in `backend` and
//! `mapping`.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::{FutureExt, StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::runtime::controller::{self, Controller};
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::reflector::{self, ObjectRef};
use kube::runtime::{watcher, WatchStreamExt};
use kube::{Api, Client};
use tokio::sync::watch as tokio_watch;
use tracing::{info, warn};

use crate::api::{ArtifactMapping, StorageBackend};
use crate::clock::{Clock, SystemClock};
use crate::context::{Context, Settings};
use crate::mapping::decide::MappingState;
use crate::mapping::index::MappingIndex;
use crate::mapping::verify::Verifier;
use crate::metrics::Metrics;
use crate::resolve::Resolver;
use crate::telemetry::traced;
use crate::{backend, mapping};

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
    #[error(
        "CustomResourceDefinition {name} is not established after {waited:?}; apply crds/ first"
    )]
    CrdsNotEstablished { name: String, waited: Duration },
    #[error("waiting for CustomResourceDefinition {name}: {source}")]
    CrdWait {
        name: String,
        #[source]
        source: kube::runtime::wait::Error,
    },
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

    wait_for_crds(&client, config.crd_wait).await?;
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

/// Block until both CRDs report `Established=True`.
pub async fn wait_for_crds(client: &Client, timeout: Duration) -> Result<(), Error> {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    for name in [
        "storagebackends.castellan.io",
        "artifactmappings.castellan.io",
    ] {
        let established = kube::runtime::wait::await_condition(
            crds.clone(),
            name,
            kube::runtime::conditions::is_crd_established(),
        );
        match tokio::time::timeout(timeout, established).await {
            Ok(Ok(_)) => info!(crd = name, "CustomResourceDefinition established"),
            Ok(Err(source)) => {
                return Err(Error::CrdWait {
                    name: name.to_string(),
                    source,
                })
            }
            Err(_) => {
                return Err(Error::CrdsNotEstablished {
                    name: name.to_string(),
                    waited: timeout,
                })
            }
        }
    }
    Ok(())
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
    // Run the controllers until shutdown or until leadership is lost.
    let (ctrl_stop_tx, ctrl_stop_rx) = tokio_watch::channel(false);
    let mut outer_stop = stop.clone();
    let lease_name = le.lease_name.clone();
    let watchdog = async move {
        loop {
            tokio::select! {
                changed = leader.changed() => {
                    if changed.is_err() || !*leader.borrow_and_update() {
                        let _ = ctrl_stop_tx.send(true);
                        return Some(Error::LeadershipLost(lease_name));
                    }
                }
                _ = outer_stop.changed() => {
                    let _ = ctrl_stop_tx.send(true);
                    drop(leader);
                    return None;
                }
            }
        }
    };
    let (lost, controllers) = tokio::join!(
        watchdog,
        run_controllers(client, config, metrics, readiness, ctrl_stop_rx)
    );
    // Dropping the receiver (inside the watchdog) ends the lease task, which releases the lease.
    if let Ok(Err(err)) = lease_task.await {
        warn!(error = %err, "releasing the leader lease failed");
    }
    controllers?;
    match lost {
        Some(err) => Err(err),
        None => Ok(()),
    }
}

async fn run_controllers(
    client: Client,
    config: &RunConfig,
    metrics: Arc<Metrics>,
    readiness: Arc<Readiness>,
    stop: tokio_watch::Receiver<bool>,
) -> Result<(), Error> {
    let (backend_api, mapping_api, secret_api): (
        Api<StorageBackend>,
        Api<ArtifactMapping>,
        Api<Secret>,
    ) = match &config.namespace {
        Some(ns) => (
            Api::namespaced(client.clone(), ns),
            Api::namespaced(client.clone(), ns),
            Api::namespaced(client.clone(), ns),
        ),
        None => (
            Api::all(client.clone()),
            Api::all(client.clone()),
            Api::all(client.clone()),
        ),
    };

    // Shared caches: each kind is watched once and fans out to both controllers.
    let (backend_reader, backend_writer) = reflector::store_shared::<StorageBackend>(1024);
    let (mapping_reader, mapping_writer) = reflector::store_shared::<ArtifactMapping>(4096);
    let (secret_reader, secret_writer) = reflector::store_shared::<Secret>(256);
    let backend_for_backends = backend_writer.subscribe().expect("shared store subscribes");
    let backend_for_mappings = backend_writer.subscribe().expect("shared store subscribes");
    let mapping_for_mappings = mapping_writer.subscribe().expect("shared store subscribes");
    let secret_for_backends = secret_writer.subscribe().expect("shared store subscribes");
    // Shared streams only hand over applied objects; deletions reach the mapping controller here.
    let (deleted_tx, deleted_rx) =
        futures::channel::mpsc::unbounded::<ObjectRef<ArtifactMapping>>();

    let ctx = Arc::new(Context {
        client: client.clone(),
        recorder: Recorder::new(
            client.clone(),
            Reporter {
                controller: CONTROLLER_NAME.to_string(),
                instance: Some(config.instance.clone()),
            },
        ),
        metrics: metrics.clone(),
        clock: Arc::new(SystemClock) as Arc<dyn Clock>,
        settings: config.settings.clone(),
        backends: backend_reader.clone(),
        mappings: mapping_reader.clone(),
        index: MappingIndex::new(),
        // Secrets come from the cache: no API call per reconcile, whatever the number of mappings.
        resolver: Resolver::with_secret_store(client.clone(), secret_reader.clone()),
        verifier: Verifier::new(
            config.settings.verify_concurrency,
            config.settings.verify_bytes_per_second,
            metrics.clone(),
        ),
    });

    // The watch streams that feed the caches; they must be polled for anything to happen.
    let backend_feed = {
        let ctx = ctx.clone();
        watcher(backend_api, watcher::Config::default())
            .default_backoff()
            .modify(strip_managed_fields)
            .inspect_ok(move |event| {
                if let watcher::Event::Delete(backend) = event {
                    backend::cleanup(backend, &ctx);
                    for mapping in mapping::index::mappings_for_deleted_backend(backend, &ctx) {
                        // The receiver lives as long as the mapping controller.
                        let _ = deleted_tx.unbounded_send(mapping);
                    }
                }
            })
            .reflect_shared(backend_writer)
            .for_each(|event| async move {
                if let Err(err) = event {
                    warn!(error = %err, "StorageBackend watch failed; retrying");
                }
            })
    };
    let mapping_feed = {
        let ctx = ctx.clone();
        watcher(mapping_api, watcher::Config::default())
            .default_backoff()
            // Nothing reads them, and they are most of a cached mapping (about 8.5 of 11.8 KB
            // per mapping in benches/scale.rs).
            .modify(strip_managed_fields)
            .inspect_ok(move |event| {
                ctx.index.apply_event(event);
                // Reconciles keep the gauges current; a deletion has no reconcile.
                if let watcher::Event::Delete(mapping) = event {
                    if let Some(namespace) = mapping.metadata.namespace.as_deref() {
                        let counts = MappingState::ALL
                            .map(|state| (state.label(), ctx.index.count(namespace, state)));
                        ctx.metrics.set_mapping_states(namespace, &counts);
                    }
                }
            })
            .reflect_shared(mapping_writer)
            .for_each(|event| async move {
                if let Err(err) = event {
                    warn!(error = %err, "ArtifactMapping watch failed; retrying");
                }
            })
    };

    let secret_feed = watcher(secret_api, watcher::Config::default())
        .default_backoff()
        .modify(strip_secret_metadata)
        .reflect_shared(secret_writer)
        .for_each(|event| async move {
            if let Err(err) = event {
                warn!(error = %err, "Secret watch failed; retrying");
            }
        });

    let stopped = {
        let mut stop = stop.clone();
        async move {
            while !*stop.borrow_and_update() {
                if stop.changed().await.is_err() {
                    break;
                }
            }
        }
        .shared()
    };

    let backend_controller = {
        let backends = backend_reader.clone();
        Controller::for_shared_stream(backend_for_backends, backend_reader.clone())
            // A backend's status carries its serving/stranded counts, which change with every
            // mapping that moves; its own status write triggers the next reconcile. Debouncing
            // keeps that to about one write per second per backend during a mass reassignment
            // (benches/scale.rs measured ~30/s without it) and delays nothing else by more.
            .with_config(controller::Config::default().debounce(BACKEND_DEBOUNCE))
            .watches_shared_stream(secret_for_backends, move |secret| {
                backend::backends_for_secret(&secret, &backends)
            })
            .graceful_shutdown_on(stopped.clone())
            .run(
                |obj, ctx| {
                    let object = ObjectRef::from_obj(obj.as_ref());
                    traced("storagebackend", object, backend::reconcile(obj, ctx))
                },
                backend::error_policy,
                ctx.clone(),
            )
            .for_each(|result| async move { log_outcome("storagebackend", result) })
    };
    let mapping_controller = {
        let ctx_for_mapper = ctx.clone();
        Controller::for_shared_stream(mapping_for_mappings, mapping_reader.clone())
            .with_config(
                controller::Config::default()
                    .concurrency(config.settings.verify_concurrency as u16 * 2),
            )
            .watches_shared_stream(backend_for_mappings, move |backend| {
                mapping::mappings_for_backend(&backend, &ctx_for_mapper)
            })
            .reconcile_on(deleted_rx)
            .graceful_shutdown_on(stopped.clone())
            .run(
                |obj, ctx| {
                    let object = ObjectRef::from_obj(obj.as_ref());
                    traced("artifactmapping", object, mapping::reconcile(obj, ctx))
                },
                mapping::error_policy,
                ctx.clone(),
            )
            .for_each(|result| async move { log_outcome("artifactmapping", result) })
    };

    let synced = {
        let readiness = readiness.clone();
        let (backends, mappings, secrets) = (
            backend_reader.clone(),
            mapping_reader.clone(),
            secret_reader.clone(),
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
    };

    info!(
        namespace = config.namespace.as_deref().unwrap_or("<all>"),
        "controllers starting"
    );
    tokio::select! {
        _ = async { tokio::join!(backend_controller, mapping_controller, synced) } => {},
        _ = backend_feed => warn!("StorageBackend watch ended"),
        _ = mapping_feed => warn!("ArtifactMapping watch ended"),
        _ = secret_feed => warn!("Secret watch ended"),
    }
    info!("controllers stopped");
    Ok(())
}

/// Trailing-edge debounce of StorageBackend reconciles.
const BACKEND_DEBOUNCE: Duration = Duration::from_secs(1);

/// Managed fields are server bookkeeping for apply; the operator's caches never read them.
fn strip_managed_fields<K: kube::Resource>(object: &mut K) {
    object.meta_mut().managed_fields = None;
}

/// What the Secret cache keeps: the data the resolver reads, not the bookkeeping. kubectl's
/// last-applied annotation would be a second copy of the keys; managed fields are only weight.
fn strip_secret_metadata(secret: &mut Secret) {
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
