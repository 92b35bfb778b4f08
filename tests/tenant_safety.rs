//! Tenant safety through the real operator (`castellan::operator::run`) with real S3 over SigV4
//! on loopback: what one tenant (namespace) does must neither stall nor fool the operator for
//! another. The API server is the emulator, or the real kube-apiserver that
//! `CASTELLAN_KUBE_ENV` names (see `tests/support`); a scenario that needs an operator watching
//! every namespace runs on the emulator only (on a shared real server it would reconcile other
//! tests' objects), and says so.

mod support;

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use castellan::api::reasons::{backend_condition, BackendReason};
use castellan::api::StorageBackend;
use castellan::operator::{self, RunConfig, Settings};
use castellan::storage::network::EndpointPolicy;
use castellan::storage::{ErrorKind, ObjectStore as _, ProbeMode, S3Config, S3Store};
use castellan_apiserver::ApiServer;
use castellan_s3server::{S3Server, ServerOptions};
use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::Client;
use serde_json::json;

const BUCKET: &str = "artifacts";
const KEY: (&str, &str) = ("AKIDTENANT0000000001", "secret-tenant-0123456789abcdefghij");

/// Held for its `Drop`: the emulator stops, the real namespaces are deleted.
#[allow(dead_code)]
enum Server {
    Emulator(ApiServer),
    Real(support::RealServer, Vec<support::RealNamespace>),
}

struct Env {
    _server: Server,
    s3: S3Server,
    client: Client,
    /// Namespace names as the test says them (`team-a`) → as they exist on the server.
    names: Vec<(String, String)>,
    operator: tokio::task::JoinHandle<Result<(), operator::Error>>,
}

impl Drop for Env {
    fn drop(&mut self) {
        self.operator.abort();
    }
}

impl Env {
    /// One S3 server, the namespaces, and an operator watching the one namespace `scope`
    /// names, or all of them (emulator only). `None` when the scenario cannot run on the
    /// selected server.
    async fn start(test: &str, namespaces: &[&str], scope: Option<&str>) -> Option<Env> {
        let s3 = s3_server().await;
        let (server, client, names) = match support::RealServer::from_env().await {
            Some(_) if scope.is_none() => {
                support::note(&format!(
                    "SKIPPED on the real apiserver: {test}: an operator of every namespace \
                     would reconcile the objects of tests running beside it"
                ));
                return None;
            }
            Some(real) => {
                real.apply_crds().await;
                let mut guards = Vec::new();
                let mut names = Vec::new();
                for ns in namespaces {
                    let unique = format!("{ns}-{:08x}", rand::random::<u32>());
                    guards.push(real.namespace(&unique).await);
                    names.push((ns.to_string(), unique));
                }
                support::note(&format!("{test}: ran on {}", real.describe()));
                let client = real.client.clone();
                (Server::Real(real, guards), client, names)
            }
            None => {
                let api = ApiServer::start().await.expect("API server emulator");
                let client = support::client_for(&api).await;
                support::install_crds(&client).await;
                for ns in namespaces {
                    Api::<Namespace>::all(client.clone())
                        .create(
                            &PostParams::default(),
                            &serde_json::from_value(json!({"metadata": {"name": ns}})).unwrap(),
                        )
                        .await
                        .expect("namespace");
                }
                support::note(&format!("{test}: ran on the emulator"));
                let names = namespaces
                    .iter()
                    .map(|n| (n.to_string(), n.to_string()))
                    .collect();
                (Server::Emulator(api), client, names)
            }
        };
        let watched = scope.map(|ns| {
            names
                .iter()
                .find(|(said, _)| said == ns)
                .map(|(_, real)| real.clone())
                .expect("the scope is one of the namespaces")
        });
        let config = RunConfig {
            namespace: watched,
            metrics_addr: None,
            health_addr: None,
            leader_election: None,
            instance: "tenant-safety".into(),
            crd_wait: Duration::from_secs(20),
            settings: Settings {
                max_backoff: Duration::from_secs(2),
                min_validation_interval: Duration::from_secs(1),
                // As `castellan run --allow-endpoint-network 127.0.0.1/32`: the S3 server's
                // address, and no other loopback or link-local address.
                endpoint_policy: Some(Arc::new(EndpointPolicy::allowing(vec!["127.0.0.1/32"
                    .parse()
                    .unwrap()]))),
                ..Settings::default()
            },
        };
        let operator_client = client.clone();
        let operator = tokio::spawn(async move {
            operator::run(operator_client, config, std::future::pending::<()>()).await
        });
        Some(Env {
            _server: server,
            s3,
            client,
            names,
            operator,
        })
    }

    /// The namespace the test calls `ns`, as it exists on the server.
    fn ns(&self, ns: &str) -> String {
        self.names
            .iter()
            .find(|(said, _)| said == ns)
            .map(|(_, real)| real.clone())
            .unwrap_or_else(|| panic!("no namespace {ns}"))
    }

    async fn put_creds(&self, ns: &str, name: &str) {
        let secret: Secret = serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": name},
            "stringData": {"accessKeyId": KEY.0, "secretAccessKey": KEY.1},
        }))
        .unwrap();
        Api::<Secret>::namespaced(self.client.clone(), &self.ns(ns))
            .patch(
                name,
                &PatchParams::apply("test").force(),
                &Patch::Apply(&secret),
            )
            .await
            .expect("apply secret");
    }

    /// A backend on the S3 server validated once an hour: anything sooner is a reaction.
    async fn create_backend(&self, ns: &str, name: &str, secret: &str) {
        self.create_backend_at(ns, name, secret, &self.s3.endpoint())
            .await;
    }

    async fn create_backend_at(&self, ns: &str, name: &str, secret: &str, endpoint: &str) {
        let backend: StorageBackend = serde_json::from_value(json!({
            "apiVersion": "castellan.io/v1alpha1",
            "kind": "StorageBackend",
            "metadata": {"name": name},
            "spec": {
                "s3": {
                    "bucket": BUCKET,
                    "endpoint": endpoint,
                    "forcePathStyle": true,
                    "credentialsSecretRef": {"name": secret},
                },
                "validation": {"interval": "1h", "timeout": "2s", "successThreshold": 1, "failureThreshold": 1},
            },
        }))
        .unwrap();
        Api::<StorageBackend>::namespaced(self.client.clone(), &self.ns(ns))
            .create(&PostParams::default(), &backend)
            .await
            .expect("create backend");
    }

    async fn ready(&self, ns: &str, name: &str) -> Option<(String, String)> {
        let b = Api::<StorageBackend>::namespaced(self.client.clone(), &self.ns(ns))
            .get(name)
            .await
            .ok()?;
        let c = b
            .status?
            .conditions
            .into_iter()
            .find(|c| c.type_ == backend_condition::READY)?;
        Some((c.status, c.reason))
    }

    /// Waits until the backend's object has not changed for `window` (three debounce periods
    /// of the backend controller): no reconcile is pending for it any more.
    async fn quiet(&self, ns: &str, name: &str, window: Duration) {
        let api = Api::<StorageBackend>::namespaced(self.client.clone(), &self.ns(ns));
        let mut last = None;
        let mut since = Instant::now();
        loop {
            let version = api
                .get(name)
                .await
                .expect("get backend")
                .metadata
                .resource_version;
            if version != last {
                last = version;
                since = Instant::now();
            } else if since.elapsed() >= window {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn operator_is_running(&self) -> bool {
        !self.operator.is_finished()
    }
}

/// The S3 server every test uses: one bucket, one key.
async fn s3_server() -> S3Server {
    S3Server::start(ServerOptions {
        buckets: vec![BUCKET.into()],
        keys: vec![(KEY.0.into(), KEY.1.into())],
        ..ServerOptions::default()
    })
    .await
    .expect("S3 server")
}

/// Polls `check` every 100 ms until it holds, for at most `limit`: a limit far below the
/// backends' one-hour interval, so passing it means the operator reacted rather than waited.
async fn within<F, Fut>(what: &str, limit: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<(), String>>,
{
    let started = Instant::now();
    loop {
        let last = match check().await {
            Ok(()) => return,
            Err(e) => e,
        };
        assert!(
            started.elapsed() < limit,
            "{what}: not within {limit:?}: {last}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn is(
    status: &str,
    reason: BackendReason,
) -> impl Fn(Option<(String, String)>) -> Result<(), String> {
    let want = Some((status.to_owned(), reason.as_str().to_owned()));
    move |got| {
        if got == want {
            Ok(())
        } else {
            Err(format!("Ready is {got:?}"))
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn deleting_a_referenced_secret_revalidates_its_backend_within_seconds() {
    let test = "deleting_a_referenced_secret_revalidates_its_backend_within_seconds";
    let env = Env::start(test, &["team-a"], Some("team-a"))
        .await
        .expect("runs on both servers");
    env.put_creds("team-a", "creds").await;
    env.create_backend("team-a", "store", "creds").await;
    let validated = is("True", BackendReason::Validated);
    within("the backend validates", Duration::from_secs(60), || async {
        validated(env.ready("team-a", "store").await)
    })
    .await;
    // Nothing pending: only the deletion itself can make the operator look again.
    env.quiet("team-a", "store", Duration::from_secs(3)).await;

    Api::<Secret>::namespaced(env.client.clone(), &env.ns("team-a"))
        .delete("creds", &DeleteParams::default())
        .await
        .expect("delete the Secret");
    let gone = is("False", BackendReason::SecretNotFound);
    within(
        "the backend says SecretNotFound",
        Duration::from_secs(30),
        || async { gone(env.ready("team-a", "store").await) },
    )
    .await;

    // And back: a recreated Secret is a change the operator follows too.
    env.put_creds("team-a", "creds").await;
    within(
        "the backend validates again",
        Duration::from_secs(30),
        || async { validated(env.ready("team-a", "store").await) },
    )
    .await;
    assert!(env.operator_is_running().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_broken_tenant_leaves_another_tenants_backend_validated() {
    let test = "a_broken_tenant_leaves_another_tenants_backend_validated";
    let Some(env) = Env::start(test, &["team-a", "team-b"], None).await else {
        return;
    };
    // Team A names a Secret that does not exist, then one without the keys, then one whose
    // keys are not text: each is a reason on A's backend, nothing more.
    env.create_backend("team-a", "store", "missing").await;
    env.put_creds("team-b", "creds").await;
    env.create_backend("team-b", "store", "creds").await;
    let missing = is("False", BackendReason::SecretNotFound);
    within(
        "A's backend says SecretNotFound",
        Duration::from_secs(60),
        || async { missing(env.ready("team-a", "store").await) },
    )
    .await;
    let garbage: Secret = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "missing"},
        "data": {"accessKeyId": "//79/A==", "secretAccessKey": "AAAA"},
    }))
    .unwrap();
    Api::<Secret>::namespaced(env.client.clone(), &env.ns("team-a"))
        .create(&PostParams::default(), &garbage)
        .await
        .expect("a Secret of binary garbage");
    within(
        "A's backend names the bad key",
        Duration::from_secs(30),
        || async {
            match env.ready("team-a", "store").await {
                Some((status, reason))
                    if status == "False" && reason != BackendReason::SecretNotFound.as_str() =>
                {
                    Ok(())
                }
                other => Err(format!("Ready is {other:?}")),
            }
        },
    )
    .await;

    let validated = is("True", BackendReason::Validated);
    within("B's backend validates", Duration::from_secs(60), || async {
        validated(env.ready("team-b", "store").await)
    })
    .await;
    assert!(env.operator_is_running().await, "the operator is still up");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn endpoints_in_refused_networks_get_a_reason_while_an_allowed_one_validates() {
    let test = "endpoints_in_refused_networks_get_a_reason_while_an_allowed_one_validates";
    let env = Env::start(test, &["team-a"], Some("team-a"))
        .await
        .expect("runs on both servers");
    env.put_creds("team-a", "creds").await;
    let port = env.s3.addr().port();
    env.create_backend_at("team-a", "metadata", "creds", "http://169.254.169.254")
        .await;
    env.create_backend_at(
        "team-a",
        "loopback6",
        "creds",
        &format!("http://[::1]:{port}"),
    )
    .await;
    env.create_backend_at(
        "team-a",
        "other-loopback",
        "creds",
        &format!("http://127.0.0.2:{port}"),
    )
    .await;
    env.create_backend("team-a", "allowed", "creds").await;
    let refused = is("False", BackendReason::EndpointNotAllowed);
    for name in ["metadata", "loopback6", "other-loopback"] {
        within(
            &format!("{name} says EndpointNotAllowed"),
            Duration::from_secs(60),
            || async { refused(env.ready("team-a", name).await) },
        )
        .await;
    }
    let validated = is("True", BackendReason::Validated);
    within(
        "the allowed backend validates",
        Duration::from_secs(60),
        || async { validated(env.ready("team-a", "allowed").await) },
    )
    .await;
}

/// A hostname is checked where it is resolved, at connect time: `localhost` resolves to
/// loopback, which the default policy refuses, so the probe fails before any request.
#[tokio::test]
async fn a_hostname_resolving_into_a_refused_network_is_refused_at_connect_time() {
    let s3 = s3_server().await;
    let mut config = S3Config::new(BUCKET);
    config.endpoint = Some(format!("http://localhost:{}", s3.addr().port()));
    config.force_path_style = true;
    config.max_attempts = 1;
    config.credentials = Some(castellan::storage::StaticCredentials {
        access_key_id: KEY.0.into(),
        secret_access_key: KEY.1.into(),
        session_token: None,
    });
    config.endpoint_policy = Some(Arc::new(EndpointPolicy::default()));
    let store = S3Store::new(config)
        .await
        .expect("a hostname passes the literal check");
    let err = store
        .probe(ProbeMode::Read, None)
        .await
        .expect_err("refused");
    assert_eq!(
        err.kind(),
        ErrorKind::Backend(BackendReason::EndpointNotAllowed),
        "{err}"
    );
    assert!(err.message().contains("--allow-endpoint-network"), "{err}");
}
