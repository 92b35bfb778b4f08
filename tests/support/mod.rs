//! Shared harness of the integration tests: clients for the API-server emulator, the CRDs, a
//! clock the test moves, reflector stores fed by real watches, and controller contexts built by
//! the operator's own constructors ([`castellan::operator::Common`]).
#![allow(dead_code)] // each test binary uses its own part of the harness

use std::sync::{Arc, Mutex};
use std::time::Duration;

use castellan::clock::Clock;
use castellan::metrics::Metrics;
use castellan::operator::{Common, Settings};
use castellan_apiserver::ApiServer;
use futures::StreamExt;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::Api;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{watcher, WatchStreamExt};
use kube::Client;

/// A clock the test moves.
pub struct TestClock(Mutex<Timestamp>);

impl TestClock {
    pub fn now() -> Arc<TestClock> {
        Arc::new(TestClock(Mutex::new(Timestamp::now())))
    }

    pub fn advance(&self, by: Duration) {
        let mut t = self.0.lock().unwrap();
        *t += SignedDuration::try_from(by).unwrap();
    }
}

impl Clock for TestClock {
    fn now(&self) -> Timestamp {
        *self.0.lock().unwrap()
    }
}

/// A client of the emulator, from the kubeconfig it wrote.
pub async fn client_for(apiserver: &ApiServer) -> Client {
    castellan::cluster::client_from_kubeconfig(apiserver.kubeconfig_path())
        .await
        .expect("client")
}

/// The CRDs, created and established.
pub async fn install_crds(client: &Client) {
    castellan::cluster::install_crds(client, Duration::from_secs(10))
        .await
        .expect("CRDs created and established");
}

/// What both controllers share, as `castellan run` builds it (Secrets read with one GET each,
/// verification concurrency 4).
pub fn common(client: &Client, clock: Arc<dyn Clock>) -> Common {
    let settings = Settings {
        verify_concurrency: 4,
        min_validation_interval: Duration::from_secs(1),
        ..Settings::default()
    };
    Common::new(
        client,
        "castellan-test",
        &settings,
        Arc::new(Metrics::new()),
        clock,
        None,
    )
}

/// A reflector store fed by a real watch against the API server, synced before it returns.
pub async fn store_of<K>(client: &Client) -> Store<K>
where
    K: kube::Resource<DynamicType = (), Scope = kube::core::NamespaceResourceScope>
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned
        + Send
        + Sync
        + 'static,
{
    let (store, writer) = reflector::store::<K>();
    let api: Api<K> = Api::all(client.clone());
    let stream = reflector::reflector(writer, watcher(api, watcher::Config::default()))
        .default_backoff()
        .applied_objects();
    tokio::spawn(async move {
        stream.for_each(|_| async {}).await;
    });
    tokio::time::timeout(Duration::from_secs(10), store.wait_until_ready())
        .await
        .expect("the reflector syncs")
        .unwrap();
    store
}

/// One verified read ([`castellan::storage::read_verified`], discarding the bytes), with a
/// missing object or a refused request as the error: the shape the storage tests assert on.
pub async fn verify_object(
    store: &dyn castellan::storage::ObjectStore,
    key: &str,
    digest: &castellan::digest::Digest,
    size: Option<u64>,
) -> Result<castellan::storage::Verification, castellan::storage::StorageError> {
    use castellan::storage::{ErrorKind, ReadOptions, Sink, StorageError, Verdict};
    let read = castellan::storage::read_verified(
        store,
        key,
        digest,
        size,
        Sink::Discard,
        &ReadOptions::default(),
    )
    .await
    .expect("discarding bytes cannot fail");
    match read.verdict {
        Verdict::Missing => Err(StorageError::new(ErrorKind::NotFound, "no such key")),
        Verdict::Failed(e) => Err(e),
        _ => Ok(read),
    }
}
