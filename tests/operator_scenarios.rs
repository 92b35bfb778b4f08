//! End-to-end scenarios through the real operator: `castellan::operator::run` in a tokio task,
//! a kube `Client` pointed at the API-server emulator, CRDs created from `castellan::api::crds()`,
//! and real S3 with SigV4 over loopback (castellan-s3server). Nothing is mocked.
//!
//! Conditions are polled with a deadline (`eventually`); no fixed sleep is an assertion, except
//! the quiet window of the "no writes after convergence" scenario, which by definition watches
//! for a while.

use std::future::Future;
use std::time::{Duration, Instant};

use castellan::api::reasons::{
    backend_condition, backend_reason, mapping_condition, mapping_reason,
};
use castellan::api::{ArtifactMapping, StorageBackend};
use castellan::context::Settings;
use castellan::digest::{Algorithm, Digest};
use castellan::operator::{self, LeaderElection, RunConfig};
use castellan::storage::layout;
use castellan_apiserver::ApiServer;
use castellan_s3server::{S3Server, ServerOptions};
use k8s_openapi::api::core::v1::{Namespace, Secret};
use k8s_openapi::api::events::v1::Event as K8sEvent;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, ResourceExt};
use serde_json::json;

const NS: &str = "org";
const BUCKET: &str = "shared";
const CORRUPT_BUCKET: &str = "corrupt";
const K1: (&str, &str) = (
    "AKIDK1000000000000001",
    "secret-k1-0123456789abcdefghijklmn",
);
const K2: (&str, &str) = (
    "AKIDK2000000000000002",
    "secret-k2-0123456789abcdefghijklmn",
);
const K3: (&str, &str) = (
    "AKIDK3000000000000003",
    "secret-k3-0123456789abcdefghijklmn",
);

/// Mappings in the rotation scenario. 200 converges in well under a minute in a debug build of
/// the operator crate (dependencies are built with opt-level 2).
const N_MAPPINGS: usize = 200;

// ---------------------------------------------------------------------------------------------
// Harness
// ---------------------------------------------------------------------------------------------

struct Env {
    api: ApiServer,
    s3: S3Server,
    client: Client,
}

/// One running operator instance; dropping it aborts the task.
#[allow(dead_code)] // kill/stop are used by the restart and leader-election scenarios
struct Operator {
    task: tokio::task::JoinHandle<Result<(), operator::Error>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

#[allow(dead_code)]
impl Operator {
    /// Kills the operator mid-flight (no graceful shutdown), as a crashed pod would be.
    async fn kill(mut self) {
        self.task.abort();
        let _ = (&mut self.task).await;
    }

    /// Asks for a graceful stop and waits for it.
    async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        let _ = tokio::time::timeout(Duration::from_secs(10), &mut self.task).await;
        self.task.abort();
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn client_for(api: &ApiServer) -> Client {
    let kubeconfig = Kubeconfig::read_from(api.kubeconfig_path()).expect("kubeconfig");
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .expect("client config");
    Client::try_from(config).expect("client")
}

/// Polls `check` until it returns `Ok`, panicking with the last error after `timeout`.
async fn eventually<F, Fut>(what: &str, timeout: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<(), String>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        let last = match check().await {
            Ok(()) => return,
            Err(e) => e,
        };
        if Instant::now() >= deadline {
            panic!("{what}: not true after {timeout:?}: {last}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn pattern(len: usize, seed: u64) -> Vec<u8> {
    (0..len)
        .map(|i| ((i as u64).wrapping_mul(131).wrapping_add(seed * 7919)) as u8)
        .collect()
}

fn cond(conds: &[Condition], type_: &str) -> Option<(String, String)> {
    conds
        .iter()
        .find(|c| c.type_ == type_)
        .map(|c| (c.status.clone(), c.reason.clone()))
}

fn backend_cond(b: &StorageBackend, type_: &str) -> Option<(String, String)> {
    b.status.as_ref().and_then(|s| cond(&s.conditions, type_))
}

fn mapping_cond(m: &ArtifactMapping, type_: &str) -> Option<(String, String)> {
    m.status.as_ref().and_then(|s| cond(&s.conditions, type_))
}

fn pair(status: &str, reason: &str) -> Option<(String, String)> {
    Some((status.to_string(), reason.to_string()))
}

fn validation(interval: &str, failure_threshold: i32) -> serde_json::Value {
    json!({"interval": interval, "timeout": "2s", "successThreshold": 2, "failureThreshold": failure_threshold})
}

impl Env {
    async fn start() -> Env {
        let s3 = S3Server::start(ServerOptions {
            buckets: vec![BUCKET.into(), CORRUPT_BUCKET.into()],
            keys: vec![
                (K1.0.into(), K1.1.into()),
                (K2.0.into(), K2.1.into()),
                (K3.0.into(), K3.1.into()),
            ],
            ..ServerOptions::default()
        })
        .await
        .expect("S3 server");
        let api = ApiServer::start().await.expect("API server emulator");
        let client = client_for(&api).await;
        let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
        for crd in castellan::api::crds() {
            crds.create(&PostParams::default(), &crd)
                .await
                .expect("create CRD");
        }
        let namespaces: Api<Namespace> = Api::all(client.clone());
        namespaces
            .create(
                &PostParams::default(),
                &serde_json::from_value(json!({"metadata": {"name": NS}})).unwrap(),
            )
            .await
            .expect("namespace");
        Env { api, s3, client }
    }

    fn operator(&self, instance: &str, leader_election: Option<LeaderElection>) -> Operator {
        let client = self.client.clone();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let config = RunConfig {
            namespace: Some(NS.to_string()),
            metrics_addr: None,
            health_addr: None,
            leader_election,
            instance: instance.to_string(),
            crd_wait: Duration::from_secs(20),
            settings: Settings {
                max_backoff: Duration::from_secs(2),
                ..Settings::default()
            },
        };
        let task = tokio::spawn(async move {
            operator::run(client, config, async move {
                let _ = rx.await;
            })
            .await
        });
        Operator {
            task,
            stop: Some(tx),
        }
    }

    async fn put_secret(&self, name: &str, data: serde_json::Value) {
        let secrets: Api<Secret> = Api::namespaced(self.client.clone(), NS);
        let s: Secret = serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": name},
            "stringData": data,
        }))
        .unwrap();
        secrets
            .patch(name, &PatchParams::apply("test").force(), &Patch::Apply(&s))
            .await
            .expect("apply secret");
    }

    async fn put_creds(&self, name: &str, key: (&str, &str)) {
        self.put_secret(
            name,
            json!({"accessKeyId": key.0, "secretAccessKey": key.1}),
        )
        .await;
    }

    async fn create_backend(&self, name: &str, s3: serde_json::Value, extra: serde_json::Value) {
        let mut spec = json!({"s3": s3, "validation": validation("1s", 1)});
        for (k, v) in extra.as_object().cloned().unwrap_or_default() {
            spec[k] = v;
        }
        let b: StorageBackend = serde_json::from_value(json!({
            "apiVersion": "castellan.io/v1alpha1",
            "kind": "StorageBackend",
            "metadata": {"name": name, "namespace": NS},
            "spec": spec,
        }))
        .unwrap();
        Api::<StorageBackend>::namespaced(self.client.clone(), NS)
            .create(&PostParams::default(), &b)
            .await
            .expect("create backend");
    }

    fn s3_spec(&self, bucket: &str, creds: &str) -> serde_json::Value {
        json!({
            "bucket": bucket,
            "endpoint": self.s3.endpoint(),
            "forcePathStyle": true,
            "keyPrefix": "cas",
            "credentialsSecretRef": {"name": creds},
        })
    }

    async fn patch_backend_spec(&self, name: &str, spec: serde_json::Value) {
        Api::<StorageBackend>::namespaced(self.client.clone(), NS)
            .patch(
                name,
                &PatchParams::default(),
                &Patch::Merge(json!({"spec": spec})),
            )
            .await
            .expect("patch backend");
    }

    async fn backend(&self, name: &str) -> StorageBackend {
        Api::<StorageBackend>::namespaced(self.client.clone(), NS)
            .get(name)
            .await
            .expect("get backend")
    }

    async fn mappings(&self) -> Vec<ArtifactMapping> {
        Api::<ArtifactMapping>::namespaced(self.client.clone(), NS)
            .list(&ListParams::default())
            .await
            .expect("list mappings")
            .items
    }

    async fn events(&self) -> Vec<K8sEvent> {
        Api::<K8sEvent>::namespaced(self.client.clone(), NS)
            .list(&ListParams::default())
            .await
            .expect("list events")
            .items
    }

    /// Writes `count` distinct objects to `bucket` under the layout key of their digest and
    /// creates a mapping declared on `declared` for each. Returns the digests (and bytes).
    async fn seed(&self, bucket: &str, declared: &str, count: usize, seed: u64) -> Vec<Digest> {
        let api: Api<ArtifactMapping> = Api::namespaced(self.client.clone(), NS);
        let mut digests = Vec::with_capacity(count);
        for i in 0..count {
            let data = pattern(1024 + i * 7, seed * 100_000 + i as u64);
            let digest = Digest::of_bytes(Algorithm::Sha256, &data);
            self.s3
                .write_object_file(bucket, &layout::key_for("cas", &digest), &data)
                .expect("write object");
            let name = mapping_name(&digest);
            let m: ArtifactMapping = serde_json::from_value(json!({
                "apiVersion": "castellan.io/v1alpha1",
                "kind": "ArtifactMapping",
                "metadata": {"name": name, "namespace": NS},
                "spec": {"digest": digest.to_string(), "size": data.len(), "backendRef": {"name": declared}},
            }))
            .unwrap();
            api.create(&PostParams::default(), &m)
                .await
                .expect("create mapping");
            digests.push(digest);
        }
        digests
    }

    async fn wait_backend(&self, name: &str, ready: (&str, &str), timeout: Duration) {
        eventually(
            &format!("backend {name} Ready={ready:?}"),
            timeout,
            || async {
                let b = self.backend(name).await;
                let got = backend_cond(&b, backend_condition::READY);
                if got == pair(ready.0, ready.1) {
                    Ok(())
                } else {
                    Err(format!("Ready is {got:?}; status {:?}", b.status))
                }
            },
        )
        .await;
    }

    /// Waits until every mapping is served by `backend` with Ready reason `reason`.
    async fn wait_all_served(&self, backend: &str, reason: &str, count: usize, timeout: Duration) {
        eventually(
            &format!("{count} mappings served by {backend} ({reason})"),
            timeout,
            || async {
                let ms = self.mappings().await;
                if ms.len() != count {
                    return Err(format!("{} mappings", ms.len()));
                }
                let off: Vec<_> = ms
                    .iter()
                    .filter(|m| {
                        m.status.as_ref().and_then(|s| s.backend.as_deref()) != Some(backend)
                            || mapping_cond(m, mapping_condition::READY) != pair("True", reason)
                    })
                    .collect();
                match off.first() {
                    None => Ok(()),
                    Some(m) => Err(format!(
                        "{} not yet, e.g. {}: {:?}",
                        off.len(),
                        m.name_any(),
                        m.status
                    )),
                }
            },
        )
        .await;
    }
}

/// Not the conventional `sha256-<64 hex>` (71 characters): the emulator refuses names with a
/// dot-free segment longer than 63 characters (see
/// `the_conventional_mapping_name_is_a_valid_object_name`).
fn mapping_name(digest: &Digest) -> String {
    format!("m-{}", &digest.hex()[..40])
}

fn regarding(e: &K8sEvent) -> Option<&str> {
    e.regarding.as_ref().and_then(|r| r.name.as_deref())
}

// ---------------------------------------------------------------------------------------------
// 1. Rotation (and 6. no writes after convergence)
// ---------------------------------------------------------------------------------------------

/// Sets up backend A (K1, default) serving `N_MAPPINGS` mappings, adds backend B (K2, default)
/// on the same bucket, revokes K1, and waits until every mapping moved to B.
async fn rotate(env: &Env) {
    env.put_creds("a-creds", K1).await;
    env.put_creds("b-creds", K2).await;
    env.create_backend(
        "a",
        env.s3_spec(BUCKET, "a-creds"),
        json!({"default": true}),
    )
    .await;
    env.seed(BUCKET, "a", N_MAPPINGS, 1).await;

    env.wait_backend(
        "a",
        ("True", backend_reason::VALIDATED),
        Duration::from_secs(20),
    )
    .await;
    env.wait_all_served(
        "a",
        mapping_reason::DECLARED,
        N_MAPPINGS,
        Duration::from_secs(60),
    )
    .await;

    // Rotation as teams do it: a new backend, same bucket, new keys, becomes the default.
    env.patch_backend_spec("a", json!({"default": false})).await;
    env.create_backend(
        "b",
        env.s3_spec(BUCKET, "b-creds"),
        json!({"default": true}),
    )
    .await;
    env.wait_backend(
        "b",
        ("True", backend_reason::VALIDATED),
        Duration::from_secs(20),
    )
    .await;

    // The old keys are revoked on the server.
    assert!(env.s3.keys().revoke(K1.0));
    env.wait_backend(
        "a",
        ("False", backend_reason::INVALID_ACCESS_KEY_ID),
        Duration::from_secs(20),
    )
    .await;
    let a = env.backend("a").await;
    assert_eq!(
        backend_cond(&a, backend_condition::STALLED),
        pair("True", backend_reason::INVALID_ACCESS_KEY_ID),
        "an auth failure stalls: {:?}",
        a.status
    );

    env.wait_all_served(
        "b",
        mapping_reason::DIGEST_VERIFIED,
        N_MAPPINGS,
        Duration::from_secs(90),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rotation_moves_every_mapping_to_the_new_backend_and_home_again() {
    let started = Instant::now();
    let env = Env::start().await;
    let _op = env.operator("castellan-0", None);
    rotate(&env).await;

    let mappings = env.mappings().await;
    for m in &mappings {
        let status = m.status.as_ref().unwrap();
        assert_eq!(
            mapping_cond(m, mapping_condition::REASSIGNED),
            pair("True", mapping_reason::DIGEST_VERIFIED),
            "{}: {status:?}",
            m.name_any()
        );
        assert_eq!(
            status.history.len(),
            1,
            "{}: {:?}",
            m.name_any(),
            status.history
        );
        assert_eq!(status.history[0].from.as_deref(), Some("a"));
        assert_eq!(status.history[0].to, "b");
        assert_eq!(status.history[0].reason, mapping_reason::DIGEST_VERIFIED);
    }
    // One Normal event per mapping for the move (events are published after the status write,
    // so give the last ones a moment to land).
    eventually(
        "one Normal event per reassigned mapping",
        Duration::from_secs(20),
        || async {
            let events = env.events().await;
            for m in &mappings {
                let normal: Vec<_> = events
                    .iter()
                    .filter(|e| {
                        regarding(e) == Some(m.name_any().as_str())
                            && e.type_.as_deref() == Some("Normal")
                            && e.reason.as_deref() == Some(mapping_reason::DIGEST_VERIFIED)
                    })
                    .collect();
                if normal.len() != 1 {
                    return Err(format!("{}: {} Normal events", m.name_any(), normal.len()));
                }
            }
            Ok(())
        },
    )
    .await;

    // K1 restored: A is Ready again only after successThreshold (2) good probes.
    env.s3.keys().add(K1.0, K1.1);
    let seen_early_ready = std::sync::Mutex::new(None::<String>);
    let seen_one_success_not_ready = std::sync::atomic::AtomicBool::new(false);
    eventually("a Ready again", Duration::from_secs(30), || async {
        let a = env.backend("a").await;
        let status = a.status.clone().unwrap_or_default();
        let ready = backend_cond(&a, backend_condition::READY);
        if ready.as_ref().map(|r| r.0.as_str()) == Some("True") {
            let mut seen = seen_early_ready.lock().unwrap();
            if status.consecutive_successes < 2 && seen.is_none() {
                *seen = Some(format!("{status:?}"));
            }
            Ok(())
        } else {
            if status.consecutive_successes == 1 {
                seen_one_success_not_ready.store(true, std::sync::atomic::Ordering::Relaxed);
            }
            Err(format!(
                "{ready:?} successes={}",
                status.consecutive_successes
            ))
        }
    })
    .await;
    assert!(
        seen_one_success_not_ready.into_inner(),
        "one good probe (of successThreshold 2) was seen and did not make the backend Ready"
    );
    assert_eq!(
        seen_early_ready.into_inner().unwrap(),
        None,
        "Ready before successThreshold probes"
    );
    let a = env.backend("a").await;
    assert!(
        a.status.as_ref().unwrap().consecutive_successes >= 2,
        "{:?}",
        a.status
    );
    assert_eq!(
        backend_cond(&a, backend_condition::STALLED).map(|s| s.0),
        Some("False".to_string()),
        "{:?}",
        a.status
    );
    env.wait_all_served(
        "a",
        mapping_reason::DECLARED,
        N_MAPPINGS,
        Duration::from_secs(60),
    )
    .await;
    eprintln!("rotation scenario: {:?}", started.elapsed());
}

/// Ten seconds of quiet: with `interval: 1s` that is about ten validation rounds of each backend,
/// each of which may re-trigger the mappings it affects, so any write-on-no-change bug shows up;
/// longer adds CI time without exercising a new path.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_writes_to_mappings_after_convergence() {
    let env = Env::start().await;
    let _op = env.operator("castellan-0", None);
    rotate(&env).await;
    // Let in-flight events land, then watch.
    tokio::time::sleep(Duration::from_secs(1)).await;
    env.api.hooks().clear_requests();
    let quiet = Duration::from_secs(10);
    tokio::time::sleep(quiet).await;
    let writes: Vec<_> = env
        .api
        .hooks()
        .requests()
        .into_iter()
        .filter(|r| r.is_write() && r.resource == "artifactmappings")
        .collect();
    assert!(
        writes.is_empty(),
        "{} writes to artifactmappings after convergence: {:?}",
        writes.len(),
        writes.first()
    );
    // The operator was alive all along: backends kept being validated.
    assert!(env.api.hooks().count("*", "*") > 0);
}

// ---------------------------------------------------------------------------------------------
// Emulator bug found while writing these scenarios
// ---------------------------------------------------------------------------------------------

/// DESIGN.md's conventional mapping name is `sha256-<64 hex>` (71 characters, no dot). A real
/// kube-apiserver validates object names with `IsDNS1123Subdomain` (regex + total length ≤ 253,
/// no per-segment limit), so it accepts it; the emulator applies the 63-character *label* limit
/// to every dot-separated segment (`e2e/apiserver/src/meta.rs`, `is_dns1123_subdomain`) and
/// answers 422. Ignored until the emulator is fixed: `cargo test -- --ignored` shows the failure.
#[tokio::test]
#[ignore = "emulator bug: e2e/apiserver/src/meta.rs is_dns1123_subdomain limits each segment to 63 characters"]
async fn the_conventional_mapping_name_is_a_valid_object_name() {
    let env = Env::start().await;
    let digest = Digest::of_bytes(Algorithm::Sha256, b"hello");
    let name = digest.to_string().replace(':', "-");
    assert_eq!(name.len(), 71);
    let m: ArtifactMapping = serde_json::from_value(json!({
        "apiVersion": "castellan.io/v1alpha1",
        "kind": "ArtifactMapping",
        "metadata": {"name": name, "namespace": NS},
        "spec": {"digest": digest.to_string(), "backendRef": {"name": "a"}},
    }))
    .unwrap();
    Api::<ArtifactMapping>::namespaced(env.client.clone(), NS)
        .create(&PostParams::default(), &m)
        .await
        .expect("a 71-character DNS-1123 subdomain is a valid name");
}
