//! The StorageBackend reconciler for real: `backend::reconcile` against the in-process API-server
//! emulator (`castellan-apiserver`, over HTTP with a kube `Client`) and the in-process S3 server
//! (`castellan-s3server`, s3s-fs with SigV4 over loopback, revocable keys and fault injection).
//! Nothing is mocked; the clock is injected so that intervals pass without waiting.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

mod support;

use castellan::api::{ArtifactMapping, StorageBackend};
use castellan::backend::{self, Context};
use castellan_apiserver::ApiServer;
use castellan_s3server::{Fault, S3Server, ServerOptions};
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::ByteString;
use kube::api::{Api, ObjectMeta, Patch, PatchParams, PostParams};
use kube::runtime::reflector::Store;
use kube::{Client, ResourceExt};
use support::{client_for, common, install_crds, store_of, TestClock};

const NS: &str = "default";
const BUCKET: &str = "artifacts";
const KEY_ID: &str = "AKIDCASTELLANTEST1";
const SECRET_KEY: &str = "castellan-test-secret-key-1";
const OTHER_KEY_ID: &str = "AKIDCASTELLANTEST2";
const OTHER_SECRET_KEY: &str = "castellan-test-secret-key-2";

struct Harness {
    apiserver: ApiServer,
    s3: S3Server,
    client: Client,
    clock: Arc<TestClock>,
    ctx: Arc<Context>,
    backends: Store<StorageBackend>,
}

impl Harness {
    async fn start() -> Harness {
        let apiserver = ApiServer::start().await.unwrap();
        let client = client_for(&apiserver).await;
        install_crds(&client).await;
        let s3 = S3Server::start(ServerOptions {
            buckets: vec![BUCKET.to_owned()],
            keys: vec![
                (KEY_ID.to_owned(), SECRET_KEY.to_owned()),
                (OTHER_KEY_ID.to_owned(), OTHER_SECRET_KEY.to_owned()),
            ],
            ..ServerOptions::default()
        })
        .await
        .unwrap();
        let clock = TestClock::now();
        let backends = store_of::<StorageBackend>(&client).await;
        let mappings = store_of::<ArtifactMapping>(&client).await;
        let ctx =
            Arc::new(common(&client, clock.clone()).backend_context(backends.clone(), mappings));
        Harness {
            apiserver,
            s3,
            client,
            clock,
            ctx,
            backends,
        }
    }

    async fn put_secret(&self, name: &str, data: &[(&str, &str)]) {
        let secrets: Api<Secret> = Api::namespaced(self.client.clone(), NS);
        let secret = Secret {
            metadata: ObjectMeta {
                name: Some(name.to_owned()),
                ..ObjectMeta::default()
            },
            data: Some(
                data.iter()
                    .map(|(k, v)| (k.to_string(), ByteString(v.as_bytes().to_vec())))
                    .collect::<BTreeMap<_, _>>(),
            ),
            ..Secret::default()
        };
        secrets
            .patch(
                name,
                &PatchParams::apply("test").force(),
                &Patch::Apply(&secret),
            )
            .await
            .unwrap();
    }

    async fn create_backend(
        &self,
        name: &str,
        secret: Option<&str>,
        validation: serde_json::Value,
    ) {
        self.create_backend_full(name, secret, validation, false)
            .await
    }

    async fn create_backend_full(
        &self,
        name: &str,
        secret: Option<&str>,
        validation: serde_json::Value,
        is_default: bool,
    ) {
        let api: Api<StorageBackend> = Api::namespaced(self.client.clone(), NS);
        let mut s3 = serde_json::json!({
            "bucket": BUCKET,
            "endpoint": self.s3.endpoint(),
            "forcePathStyle": true,
            "keyPrefix": "cas",
        });
        if let Some(secret) = secret {
            s3["credentialsSecretRef"] = serde_json::json!({"name": secret});
        }
        let obj: StorageBackend = serde_json::from_value(serde_json::json!({
            "apiVersion": "castellan.io/v1alpha1",
            "kind": "StorageBackend",
            "metadata": {"name": name, "namespace": NS},
            "spec": {"s3": s3, "validation": validation, "default": is_default}
        }))
        .unwrap();
        api.create(&PostParams::default(), &obj).await.unwrap();
        // The reconciler reads other backends from the reflector: wait until it has this one.
        for _ in 0..100 {
            if self.backends.state().iter().any(|b| b.name_any() == name) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("the reflector never saw backend {name}");
    }

    async fn get(&self, name: &str) -> StorageBackend {
        Api::<StorageBackend>::namespaced(self.client.clone(), NS)
            .get(name)
            .await
            .unwrap()
    }

    /// Runs one reconcile on the current object, as the controller would.
    async fn reconcile(&self, name: &str) -> kube::runtime::controller::Action {
        let obj = self.get(name).await;
        backend::reconcile(Arc::new(obj), self.ctx.clone())
            .await
            .expect("the reconcile succeeds")
    }

    async fn condition(&self, name: &str, type_: &str) -> (String, String, String) {
        let obj = self.get(name).await;
        let status = obj.status.expect("a status was written");
        let c = castellan::api::condition::find(&status.conditions, type_)
            .unwrap_or_else(|| panic!("no {type_} condition on {name}"));
        (c.status.clone(), c.reason.clone(), c.message.clone())
    }

    async fn ready(&self, name: &str) -> (String, String) {
        let (s, r, _) = self.condition(name, "Ready").await;
        (s, r)
    }

    async fn stalled(&self, name: &str) -> (String, String) {
        let (s, r, _) = self.condition(name, "Stalled").await;
        (s, r)
    }

    fn status_writes(&self) -> usize {
        self.apiserver
            .hooks()
            .requests()
            .iter()
            .filter(|r| {
                r.is_write() && r.resource == "storagebackends" && r.subresource == "status"
            })
            .count()
    }

    /// Reasons of the events recorded about `name`, oldest first.
    async fn event_reasons(&self, name: &str) -> Vec<(String, String)> {
        let events: Api<k8s_openapi::api::events::v1::Event> =
            Api::namespaced(self.client.clone(), NS);
        let mut list: Vec<_> = events
            .list(&Default::default())
            .await
            .unwrap()
            .items
            .into_iter()
            .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name))
            .collect();
        list.sort_by_key(|e| e.event_time.as_ref().map(|t| t.0));
        list.into_iter()
            .map(|e| (e.type_.unwrap_or_default(), e.reason.unwrap_or_default()))
            .collect()
    }
}

fn creds(id: &str, secret: &str) -> Vec<(&'static str, String)> {
    vec![
        ("accessKeyId", id.to_owned()),
        ("secretAccessKey", secret.to_owned()),
    ]
}

async fn put_creds(h: &Harness, name: &str, id: &str, secret: &str) {
    let data = creds(id, secret);
    let refs: Vec<(&str, &str)> = data.iter().map(|(k, v)| (*k, v.as_str())).collect();
    h.put_secret(name, &refs).await;
}

fn every(interval: &str, failure_threshold: i32) -> serde_json::Value {
    serde_json::json!({"interval": interval, "timeout": "10s", "successThreshold": 2, "failureThreshold": failure_threshold})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn valid_keys_make_the_backend_ready_and_validated() {
    let h = Harness::start().await;
    put_creds(&h, "creds", KEY_ID, SECRET_KEY).await;
    h.create_backend("b", Some("creds"), every("5m", 1)).await;

    let action = h.reconcile("b").await;

    assert_eq!(h.ready("b").await, ("True".into(), "Validated".into()));
    assert_eq!(h.condition("b", "CredentialsValid").await.0, "True");
    assert_eq!(h.condition("b", "Reachable").await.0, "True");
    assert_eq!(h.stalled("b").await, ("False".into(), "Validated".into()));
    let obj = h.get("b").await;
    let status = obj.status.unwrap();
    assert_eq!(status.observed_generation, obj.metadata.generation);
    assert_eq!(status.consecutive_successes, 1);
    assert_eq!(
        status.location.as_deref(),
        Some(format!("{}|{BUCKET}|cas", h.s3.endpoint()).as_str())
    );
    assert!(
        status.last_validation_time.is_some() && status.last_successful_validation_time.is_some()
    );
    for c in &status.conditions {
        assert_eq!(
            c.observed_generation, obj.metadata.generation,
            "{} carries observedGeneration",
            c.type_
        );
    }
    let requeue = format!("{action:?}");
    assert!(
        !requeue.contains("None"),
        "a periodic backend is requeued: {requeue}"
    );
    assert_eq!(
        h.event_reasons("b").await,
        vec![("Normal".into(), "Validated".into())]
    );
    let metrics = h.ctx.metrics.render();
    assert!(
        metrics.contains(r#"castellan_backend_ready{namespace="default",backend="b"} 1"#),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_key_is_invalid_access_key_id_and_stalls() {
    let h = Harness::start().await;
    put_creds(&h, "creds", "AKIDNOBODYKNOWS", "whatever-secret-value").await;
    h.create_backend("b", Some("creds"), every("5m", 3)).await;

    h.reconcile("b").await;

    assert_eq!(
        h.ready("b").await,
        ("False".into(), "InvalidAccessKeyId".into())
    );
    assert_eq!(
        h.stalled("b").await,
        ("True".into(), "InvalidAccessKeyId".into())
    );
    assert_eq!(h.condition("b", "CredentialsValid").await.0, "False");
    assert_eq!(
        h.condition("b", "Reachable").await.0,
        "True",
        "an auth error proves the endpoint reachable"
    );
    let (_, _, message) = h.condition("b", "Ready").await;
    assert!(!message.contains("whatever-secret-value"));
    assert_eq!(
        h.event_reasons("b").await,
        vec![("Warning".into(), "InvalidAccessKeyId".into())]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_key_fails_the_backend_at_the_next_validation() {
    let h = Harness::start().await;
    put_creds(&h, "creds", KEY_ID, SECRET_KEY).await;
    h.create_backend("b", Some("creds"), every("5m", 3)).await;
    h.reconcile("b").await;
    assert_eq!(h.ready("b").await.0, "True");

    assert!(h.s3.keys().revoke(KEY_ID));
    h.clock.advance(Duration::from_secs(301));
    h.reconcile("b").await;

    assert_eq!(
        h.ready("b").await,
        ("False".into(), "InvalidAccessKeyId".into()),
        "an auth failure fails at once whatever failureThreshold says"
    );
    assert_eq!(h.stalled("b").await.0, "True");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_secret_is_secret_not_found_until_the_secret_appears() {
    let h = Harness::start().await;
    h.create_backend("b", Some("creds"), every("5m", 1)).await;

    h.reconcile("b").await;
    assert_eq!(
        h.ready("b").await,
        ("False".into(), "SecretNotFound".into())
    );
    assert_eq!(
        h.stalled("b").await,
        ("True".into(), "SecretNotFound".into())
    );
    let (_, _, message) = h.condition("b", "Ready").await;
    assert!(
        message.contains("creds"),
        "the message names the Secret: {message}"
    );

    // The Secret appears: the mapper finds the backend, and the next reconcile validates it at
    // once (no interval to wait: the Secret's resourceVersion changed).
    put_creds(&h, "creds", KEY_ID, SECRET_KEY).await;
    let secret = Api::<Secret>::namespaced(h.client.clone(), NS)
        .get("creds")
        .await
        .unwrap();
    let mapped = backend::backends_for_secret(&secret, &h.backends);
    assert_eq!(
        mapped.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(),
        ["b"]
    );
    h.reconcile("b").await;
    assert_eq!(
        h.ready("b").await,
        ("True".into(), "Validated".into()),
        "a backend whose only trouble was its Secret is Ready on the first good probe"
    );
    assert_eq!(h.stalled("b").await.0, "False");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_key_is_secret_key_missing_and_names_the_key() {
    let h = Harness::start().await;
    h.put_secret("creds", &[("accessKeyId", KEY_ID)]).await;
    h.create_backend("b", Some("creds"), every("5m", 1)).await;

    h.reconcile("b").await;

    assert_eq!(
        h.ready("b").await,
        ("False".into(), "SecretKeyMissing".into())
    );
    assert_eq!(h.stalled("b").await.0, "True");
    let (_, _, message) = h.condition("b", "Ready").await;
    assert!(
        message.contains("secretAccessKey") && message.contains("creds"),
        "{message}"
    );
    assert!(!message.contains(KEY_ID), "never a value: {message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transient_server_errors_below_the_threshold_keep_the_backend_ready() {
    let h = Harness::start().await;
    put_creds(&h, "creds", KEY_ID, SECRET_KEY).await;
    h.create_backend("b", Some("creds"), every("5m", 2)).await;
    h.reconcile("b").await;
    assert_eq!(h.ready("b").await.0, "True");

    h.s3.faults().fail_fraction(1.0, Fault::ServiceUnavailable);
    h.clock.advance(Duration::from_secs(301));
    h.reconcile("b").await;
    assert_eq!(
        h.ready("b").await,
        ("True".into(), "Validated".into()),
        "one 503 of two tolerated"
    );
    let status = h.get("b").await.status.unwrap();
    assert_eq!(status.consecutive_failures, 1);
    assert_eq!(
        h.stalled("b").await.0,
        "False",
        "a transient failure never stalls"
    );

    h.clock.advance(Duration::from_secs(301));
    h.reconcile("b").await;
    assert_eq!(
        h.ready("b").await,
        ("False".into(), "ServerError".into()),
        "the second 503 reaches the threshold"
    );
    assert_eq!(h.stalled("b").await.0, "False");

    h.s3.faults().clear();
    h.clock.advance(Duration::from_secs(301));
    h.reconcile("b").await;
    assert_eq!(
        h.ready("b").await,
        ("False".into(), "Pending".into()),
        "hysteresis: one good probe is not enough"
    );
    h.clock.advance(Duration::from_secs(301));
    h.reconcile("b").await;
    assert_eq!(h.ready("b").await, ("True".into(), "Validated".into()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_reconcile_with_nothing_new_writes_nothing_and_probes_nothing() {
    let h = Harness::start().await;
    put_creds(&h, "creds", KEY_ID, SECRET_KEY).await;
    h.create_backend("b", Some("creds"), every("5m", 1)).await;
    h.reconcile("b").await;
    assert_eq!(h.ready("b").await.0, "True");

    let writes = h.status_writes();
    let s3_requests = h.s3.faults().requests();
    h.clock.advance(Duration::from_secs(30));
    h.reconcile("b").await;
    assert_eq!(
        h.status_writes(),
        writes,
        "no status write when nothing changed"
    );
    assert_eq!(
        h.s3.faults().requests(),
        s3_requests,
        "no probe before the interval"
    );

    // The interval passes: one probe, one write (lastValidationTime moves).
    h.clock.advance(Duration::from_secs(300));
    h.reconcile("b").await;
    assert_eq!(h.status_writes(), writes + 1);
    assert!(h.s3.faults().requests() > s3_requests);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_secret_is_validated_at_once_and_restarts_the_counters() {
    let h = Harness::start().await;
    put_creds(&h, "creds", KEY_ID, SECRET_KEY).await;
    h.create_backend("b", Some("creds"), every("5m", 1)).await;
    h.reconcile("b").await;
    h.clock.advance(Duration::from_secs(301));
    h.reconcile("b").await;
    assert_eq!(h.get("b").await.status.unwrap().consecutive_successes, 2);

    // Rotate to a key the server does not know, well before the interval.
    put_creds(&h, "creds", "AKIDROTATEDWRONG", "nope-nope-nope").await;
    h.clock.advance(Duration::from_secs(5));
    h.reconcile("b").await;
    assert_eq!(
        h.ready("b").await,
        ("False".into(), "InvalidAccessKeyId".into())
    );
    let status = h.get("b").await.status.unwrap();
    assert_eq!(
        (status.consecutive_successes, status.consecutive_failures),
        (0, 1)
    );

    // Fixed by another rotation: validated at once again.
    put_creds(&h, "creds", OTHER_KEY_ID, OTHER_SECRET_KEY).await;
    h.clock.advance(Duration::from_secs(5));
    h.reconcile("b").await;
    assert_eq!(
        h.stalled("b").await.0,
        "False",
        "a good probe clears Stalled"
    );
    assert_eq!(
        h.ready("b").await,
        ("False".into(), "Pending".into()),
        "the server had failed (InvalidAccessKeyId): successThreshold good probes are needed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interval_zero_probes_once_per_change() {
    let h = Harness::start().await;
    put_creds(&h, "creds", KEY_ID, SECRET_KEY).await;
    h.create_backend("b", Some("creds"), every("0", 1)).await;
    let action = h.reconcile("b").await;
    assert_eq!(h.ready("b").await.0, "True");
    assert_eq!(
        format!("{action:?}"),
        format!("{:?}", kube::runtime::controller::Action::await_change())
    );

    let s3_requests = h.s3.faults().requests();
    h.clock.advance(Duration::from_secs(3600));
    h.reconcile("b").await;
    assert_eq!(
        h.s3.faults().requests(),
        s3_requests,
        "no periodic probe with interval 0"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_default_backends_are_both_reported_and_neither_is_changed() {
    let h = Harness::start().await;
    put_creds(&h, "creds", KEY_ID, SECRET_KEY).await;
    h.create_backend_full("a", Some("creds"), every("5m", 1), true)
        .await;
    h.create_backend_full("b", Some("creds"), every("5m", 1), true)
        .await;

    h.reconcile("a").await;
    h.reconcile("b").await;

    for (name, other) in [("a", "b"), ("b", "a")] {
        let (status, reason, message) = h.condition(name, "DefaultConflict").await;
        assert_eq!(
            (status.as_str(), reason.as_str()),
            ("True", "MultipleDefaults"),
            "{name}"
        );
        assert!(message.ends_with(other), "{name} names {other}: {message}");
        assert_eq!(
            h.ready(name).await.0,
            "True",
            "a conflict does not change readiness"
        );
        assert!(
            h.get(name).await.spec.default,
            "the operator never fixes the spec"
        );
        assert!(
            h.event_reasons(name)
                .await
                .contains(&("Warning".to_owned(), "DefaultConflict".to_owned())),
            "{name} gets a Warning event"
        );
    }
}
