//! The ArtifactMapping reconciler against real servers: the in-process S3 server (s3s over
//! loopback with SigV4, real credential failures) and the API-server emulator (real HTTP, real
//! server-side apply on `/status`, request counters).
//!
//! The backend controller is not running here: the test writes backend statuses itself, as that
//! controller would, with its own field manager.

use std::sync::Arc;

use castellan::api::reasons::{backend_condition, mapping_condition, MappingReason};
use castellan::api::{ArtifactMapping, StorageBackend};
use castellan::clock::SystemClock;
use castellan::digest::{Algorithm, Digest};
use castellan::mapping::{self, Context};
use castellan::storage::layout;
use castellan_apiserver::ApiServer;
use castellan_s3server::{S3Server, ServerOptions};
use k8s_openapi::api::core::v1::{Namespace, Secret};
use k8s_openapi::api::events::v1::Event as K8sEvent;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::reflector::store::Writer;
use kube::runtime::watcher;
use kube::Client;
use serde_json::json;

mod support;

use support::{client_for, common, install_crds};

const NS: &str = "org";
const SHARED: &str = "shared";
const CORRUPT: &str = "corrupt";
const REVOKED: (&str, &str) = (
    "AKIDREVOKED000000001",
    "secret-revoked-0123456789abcdefghij",
);
const CURRENT: (&str, &str) = (
    "AKIDCURRENT000000002",
    "secret-current-0123456789abcdefghij",
);

struct Env {
    s3: S3Server,
    api: ApiServer,
    client: Client,
    ctx: Arc<Context>,
    backends: Writer<StorageBackend>,
}

async fn setup() -> Env {
    let s3 = S3Server::start(ServerOptions {
        buckets: vec![SHARED.into(), CORRUPT.into()],
        keys: vec![
            (REVOKED.0.into(), REVOKED.1.into()),
            (CURRENT.0.into(), CURRENT.1.into()),
        ],
        ..ServerOptions::default()
    })
    .await
    .expect("S3 server");
    let api = ApiServer::start().await.expect("API server emulator");
    let client = client_for(&api).await;
    install_crds(&client).await;
    let namespaces: Api<Namespace> = Api::all(client.clone());
    namespaces
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": NS}})).unwrap(),
        )
        .await
        .expect("namespace");
    let secrets: Api<Secret> = Api::namespaced(client.clone(), NS);
    for (name, (id, secret)) in [("revoked-creds", REVOKED), ("current-creds", CURRENT)] {
        let s: Secret = serde_json::from_value(json!({
            "metadata": {"name": name},
            "stringData": {"accessKeyId": id, "secretAccessKey": secret},
        }))
        .unwrap();
        secrets
            .create(&PostParams::default(), &s)
            .await
            .expect("secret");
    }
    // The store the reconciler reads, listed (empty) as the operator's would be before any
    // reconcile: the reconciler waits for that first list.
    let mut writer = Writer::<StorageBackend>::default();
    writer.apply_watcher_event(&watcher::Event::Init);
    writer.apply_watcher_event(&watcher::Event::InitDone);
    let ctx = Arc::new(common(&client, Arc::new(SystemClock)).mapping_context(writer.as_reader()));
    Env {
        s3,
        api,
        client,
        ctx,
        backends: writer,
    }
}

impl Env {
    /// Creates a backend and writes its status as the backend controller would, then feeds it to
    /// the reflector store the reconciler reads.
    async fn backend(&mut self, name: &str, bucket: &str, creds: &str, ready: bool, priority: i32) {
        let api: Api<StorageBackend> = Api::namespaced(self.client.clone(), NS);
        let b: StorageBackend = serde_json::from_value(json!({
            "apiVersion": "castellan.io/v1alpha1",
            "kind": "StorageBackend",
            "metadata": {"name": name, "namespace": NS},
            "spec": {
                "s3": {
                    "bucket": bucket,
                    "endpoint": self.s3.endpoint(),
                    "forcePathStyle": true,
                    "keyPrefix": "cas",
                    "credentialsSecretRef": {"name": creds},
                },
                "priority": priority,
            },
        }))
        .unwrap();
        api.create(&PostParams::default(), &b)
            .await
            .expect("create backend");
        let (status, reason) = if ready {
            ("True", "Validated")
        } else {
            ("False", "InvalidAccessKeyId")
        };
        let patch = json!({
            "apiVersion": "castellan.io/v1alpha1",
            "kind": "StorageBackend",
            "status": {"conditions": [{
                "type": backend_condition::READY,
                "status": status,
                "reason": reason,
                "message": "set by the test",
                "lastTransitionTime": "2026-01-01T00:00:00Z",
            }]},
        });
        let live = api
            .patch_status(
                name,
                &PatchParams::apply("test-backend-controller").force(),
                &Patch::Apply(&patch),
            )
            .await
            .expect("backend status");
        self.backends
            .apply_watcher_event(&watcher::Event::Apply(live));
    }

    fn put_object(&self, bucket: &str, data: &[u8], digest: &Digest) {
        self.s3
            .write_object_file(bucket, &layout::key_for("cas", digest), data)
            .expect("write object");
    }

    async fn mapping(
        &self,
        name: &str,
        digest: &Digest,
        size: usize,
        declared: &str,
    ) -> ArtifactMapping {
        let api: Api<ArtifactMapping> = Api::namespaced(self.client.clone(), NS);
        let m: ArtifactMapping = serde_json::from_value(json!({
            "apiVersion": "castellan.io/v1alpha1",
            "kind": "ArtifactMapping",
            "metadata": {"name": name, "namespace": NS},
            "spec": {"digest": digest.to_string(), "size": size, "backendRef": {"name": declared}},
        }))
        .unwrap();
        api.create(&PostParams::default(), &m)
            .await
            .expect("create mapping")
    }

    async fn get(&self, name: &str) -> ArtifactMapping {
        Api::<ArtifactMapping>::namespaced(self.client.clone(), NS)
            .get(name)
            .await
            .expect("get mapping")
    }

    async fn reconcile(&self, name: &str) {
        let m = Arc::new(self.get(name).await);
        mapping::reconcile(m, self.ctx.clone())
            .await
            .expect("reconcile");
    }

    async fn events_for(&self, name: &str) -> Vec<K8sEvent> {
        let events: Api<K8sEvent> = Api::namespaced(self.client.clone(), NS);
        events
            .list(&ListParams::default())
            .await
            .expect("list events")
            .items
            .into_iter()
            .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name))
            .collect()
    }
}

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| ((i * 131) as u8).wrapping_add(seed))
        .collect()
}

fn condition(m: &ArtifactMapping, type_: &str) -> (String, String) {
    let c = m
        .status
        .as_ref()
        .and_then(|s| s.conditions.iter().find(|c| c.type_ == type_))
        .unwrap_or_else(|| panic!("condition {type_} missing"));
    (c.status.clone(), c.reason.clone())
}

#[tokio::test]
async fn a_stranded_mapping_moves_to_a_same_bucket_backend_after_its_digest_verifies() {
    let mut env = setup().await;
    let data = pattern(256 * 1024, 1);
    let digest = Digest::of_bytes(Algorithm::Sha256, &data);
    env.put_object(SHARED, &data, &digest);
    env.put_object(CORRUPT, &pattern(data.len(), 9), &digest);
    // The credentials of "old" were revoked; "new" reaches the same bucket with current ones.
    env.s3.keys().revoke(REVOKED.0);
    env.backend("old", SHARED, "revoked-creds", false, 0).await;
    env.backend("new", SHARED, "current-creds", true, 0).await;
    // A higher priority does not beat the same location as the declared backend.
    env.backend("other", CORRUPT, "current-creds", true, 100)
        .await;
    env.mapping("m1", &digest, data.len(), "old").await;

    env.reconcile("m1").await;
    let m = env.get("m1").await;
    let status = m.status.clone().expect("status written");
    assert_eq!(status.backend.as_deref(), Some("new"));
    assert_eq!(
        status.key.as_deref(),
        Some(layout::key_for("cas", &digest).as_str())
    );
    assert_eq!(
        condition(&m, mapping_condition::READY),
        ("True".into(), MappingReason::DigestVerified.as_str().into())
    );
    assert_eq!(
        condition(&m, mapping_condition::REASSIGNED),
        ("True".into(), MappingReason::DigestVerified.as_str().into())
    );
    assert_eq!(condition(&m, mapping_condition::VERIFIED).0, "True");
    assert_eq!(status.history.len(), 1, "{:?}", status.history);
    assert_eq!(status.history[0].from.as_deref(), Some("old"));
    assert_eq!(status.history[0].to, "new");
    assert_eq!(
        status.history[0].reason,
        MappingReason::DigestVerified.as_str()
    );
    assert!(status.last_verified_time.is_some());
    assert_eq!(
        status.short_digest.as_deref(),
        Some(&digest.to_string()[..19])
    );
    let events = env.events_for("m1").await;
    let normal: Vec<_> = events
        .iter()
        .filter(|e| e.type_.as_deref() == Some("Normal"))
        .collect();
    assert_eq!(
        normal.len(),
        1,
        "one Normal event per reassignment: {events:?}"
    );

    // A re-run (e.g. triggered by an unrelated event) learns nothing new: no write, no S3 I/O.
    let writes = env.api.hooks().writes_to("artifactmappings");
    let s3_requests = env.s3.faults().requests();
    env.reconcile("m1").await;
    env.reconcile("m1").await;
    assert_eq!(
        env.api.hooks().writes_to("artifactmappings"),
        writes,
        "a converged mapping writes nothing"
    );
    assert_eq!(
        env.s3.faults().requests(),
        s3_requests,
        "a converged mapping does no S3 I/O"
    );
    assert_eq!(
        env.get("m1").await.status.unwrap().history.len(),
        1,
        "no duplicate history entry"
    );
}

#[tokio::test]
async fn a_corrupt_replica_on_a_higher_priority_backend_is_never_chosen() {
    let mut env = setup().await;
    let data = pattern(300 * 1024, 2);
    let digest = Digest::of_bytes(Algorithm::Sha256, &data);
    env.put_object(SHARED, &data, &digest);
    // Same key, same size, different bytes.
    env.put_object(CORRUPT, &pattern(data.len(), 77), &digest);
    env.backend("corrupt-fast", CORRUPT, "current-creds", true, 100)
        .await;
    env.backend("good-slow", SHARED, "current-creds", true, 0)
        .await;
    // Declared on a backend that does not exist: no home location, so priority decides the order.
    env.mapping("m2", &digest, data.len(), "gone").await;

    env.reconcile("m2").await;
    let m = env.get("m2").await;
    let status = m.status.clone().expect("status written");
    assert_eq!(
        status.backend.as_deref(),
        Some("good-slow"),
        "the corrupt replica is never served"
    );
    assert_eq!(
        condition(&m, mapping_condition::READY),
        ("True".into(), MappingReason::DigestVerified.as_str().into())
    );
    let events = env.events_for("m2").await;
    let warnings: Vec<_> = events
        .iter()
        .filter(|e| {
            e.type_.as_deref() == Some("Warning")
                && e.reason.as_deref() == Some(MappingReason::DigestMismatch.as_str())
        })
        .collect();
    assert_eq!(
        warnings.len(),
        1,
        "one DigestMismatch warning for the bad replica: {events:?}"
    );
    let rendered = env.ctx.metrics.render();
    assert!(
        rendered.contains(
            "castellan_digest_mismatches_total{namespace=\"org\",backend=\"corrupt-fast\"} 1"
        ),
        "{rendered}"
    );

    // Converged: re-running writes nothing and downloads nothing.
    let writes = env.api.hooks().writes_to("artifactmappings");
    let s3_requests = env.s3.faults().requests();
    env.reconcile("m2").await;
    assert_eq!(env.api.hooks().writes_to("artifactmappings"), writes);
    assert_eq!(env.s3.faults().requests(), s3_requests);
}

#[tokio::test]
async fn a_mapping_with_no_verified_replica_is_not_ready_and_retried() {
    let mut env = setup().await;
    let data = pattern(64 * 1024, 3);
    let digest = Digest::of_bytes(Algorithm::Sha256, &data);
    env.put_object(CORRUPT, &pattern(data.len(), 4), &digest);
    env.backend("home", SHARED, "current-creds", false, 0).await;
    env.backend("bad", CORRUPT, "current-creds", true, 0).await;
    env.mapping("m3", &digest, data.len(), "home").await;

    let m = Arc::new(env.get("m3").await);
    let action = mapping::reconcile(m, env.ctx.clone())
        .await
        .expect("reconcile");
    assert_ne!(
        action,
        kube::runtime::controller::Action::await_change(),
        "a stranded mapping is retried"
    );
    let m = env.get("m3").await;
    assert_eq!(
        condition(&m, mapping_condition::READY),
        (
            "False".into(),
            MappingReason::NoVerifiedReplica.as_str().into()
        )
    );
    assert_eq!(
        condition(&m, mapping_condition::STRANDED),
        ("True".into(), MappingReason::BackendInvalid.as_str().into())
    );
    assert_eq!(m.status.unwrap().backend, None);

    let writes = env.api.hooks().writes_to("artifactmappings");
    env.reconcile("m3").await;
    assert_eq!(
        env.api.hooks().writes_to("artifactmappings"),
        writes,
        "nothing new learnt, nothing written"
    );
}
