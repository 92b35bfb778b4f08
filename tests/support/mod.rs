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

// ---------------------------------------------------------------------------------------------
// A real kube-apiserver (e2e/kube), selected by CASTELLAN_KUBE_ENV
// ---------------------------------------------------------------------------------------------

/// Names the env file of a control plane started by `e2e/kube/start` (as the emulator's
/// conformance suite does): scenarios and benches then run against that real kube-apiserver,
/// each in a namespace of its own. Unset or empty: the in-process emulator.
pub const KUBE_ENV: &str = "CASTELLAN_KUBE_ENV";

/// Written to the terminal, not captured by the test harness, so that where a scenario ran and
/// why one was skipped is always seen.
pub fn note(text: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "{text}");
}

/// The env file, when the real apiserver is selected.
pub fn real_env_file() -> Option<std::path::PathBuf> {
    std::env::var_os(KUBE_ENV)
        .filter(|v| !v.is_empty())
        .map(std::path::PathBuf::from)
}

#[path = "../../e2e/kube/env_file.rs"]
mod kube_env_file;

/// The control plane `e2e/kube/start` runs: its admin client, its audit log (which records the
/// requests of ServiceAccounts: the operators under test authenticate as one each), etcd
/// compaction and restarts of kube-apiserver.
pub struct RealServer {
    pub env_file: std::path::PathBuf,
    vars: std::collections::BTreeMap<String, String>,
    /// `gitVersion` from `/version`, e.g. `v1.37.2`.
    pub version: String,
    /// The admin (`system:masters`) client.
    pub client: Client,
}

impl RealServer {
    /// `None` when [`KUBE_ENV`] is unset. Panics — so that the caller fails, never skips — when
    /// it is set and the env file is unreadable or the apiserver does not answer `/version`.
    pub async fn from_env() -> Option<RealServer> {
        let env_file = real_env_file()?;
        let vars = kube_env_file::load(
            KUBE_ENV,
            &env_file,
            &[
                "KUBECONFIG",
                "CASTELLAN_KUBE_ETCDCTL",
                "CASTELLAN_KUBE_ETCD_URL",
                "CASTELLAN_KUBE_RESTART_APISERVER",
                "CASTELLAN_KUBE_AUDIT_LOG",
                "CASTELLAN_KUBE_APISERVER_URL",
            ],
        );
        let kubeconfig = std::path::PathBuf::from(&vars["KUBECONFIG"]);
        let client = castellan::cluster::client_from_kubeconfig(&kubeconfig)
            .await
            .unwrap_or_else(|e| panic!("{KUBE_ENV}: KUBECONFIG={}: {e}", kubeconfig.display()));
        let version = client.apiserver_version().await.unwrap_or_else(|e| {
            panic!(
                "{KUBE_ENV}={}: the apiserver {} does not answer /version: {e}",
                env_file.display(),
                vars["CASTELLAN_KUBE_APISERVER_URL"]
            )
        });
        Some(RealServer {
            env_file,
            vars,
            version: version.git_version,
            client,
        })
    }

    pub fn var(&self, key: &str) -> &str {
        &self.vars[key]
    }

    pub fn kubeconfig(&self) -> std::path::PathBuf {
        self.var("KUBECONFIG").into()
    }

    pub fn describe(&self) -> String {
        format!(
            "kube-apiserver {} ({})",
            self.version,
            self.var("CASTELLAN_KUBE_APISERVER_URL")
        )
    }

    /// Applies the CRDs (server-side, forced, so that one left by an older build is updated)
    /// and waits until they are established.
    pub async fn apply_crds(&self) {
        use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
        let crds: Api<CustomResourceDefinition> = Api::all(self.client.clone());
        for crd in castellan::api::crds() {
            let name = kube::ResourceExt::name_any(&crd);
            crds.patch(
                &name,
                &kube::api::PatchParams::apply("castellan-tests").force(),
                &kube::api::Patch::Apply(&crd),
            )
            .await
            .unwrap_or_else(|e| panic!("apply CRD {name}: {e}"));
        }
        castellan::cluster::install_crds(&self.client, Duration::from_secs(120))
            .await
            .expect("CRDs established");
    }

    /// Creates a namespace (deleted when the returned guard drops, with the cluster-scoped
    /// objects it was told about).
    pub async fn namespace(&self, name: &str) -> RealNamespace {
        use k8s_openapi::api::core::v1::Namespace;
        let namespaces: Api<Namespace> = Api::all(self.client.clone());
        namespaces
            .create(
                &kube::api::PostParams::default(),
                &serde_json::from_value(serde_json::json!({"metadata": {"name": name}})).unwrap(),
            )
            .await
            .unwrap_or_else(|e| panic!("create namespace {name}: {e}"));
        RealNamespace {
            kubeconfig: self.kubeconfig(),
            name: name.to_string(),
            cluster_objects: Mutex::new(Vec::new()),
            dir: tempfile::Builder::new()
                .prefix(&format!("castellan-{name}."))
                .tempdir()
                .expect("temp dir"),
        }
    }

    /// A ServiceAccount `name` in `ns` bound to `cluster-admin` (the scenarios test the
    /// operator, not RBAC: e2e case 50 checks the chart's rules) and a kubeconfig that
    /// authenticates with a token of it, so that the audit log tells this identity's requests
    /// apart. Returns the kubeconfig and the username (`system:serviceaccount:NS:NAME`).
    pub async fn service_account(
        &self,
        ns: &RealNamespace,
        name: &str,
    ) -> (std::path::PathBuf, String) {
        use k8s_openapi::api::authentication::v1::TokenRequest;
        use k8s_openapi::api::core::v1::ServiceAccount;
        use k8s_openapi::api::rbac::v1::ClusterRoleBinding;
        let pp = kube::api::PostParams::default();
        let sas: Api<ServiceAccount> = Api::namespaced(self.client.clone(), &ns.name);
        sas.create(
            &pp,
            &serde_json::from_value(serde_json::json!({"metadata": {"name": name}})).unwrap(),
        )
        .await
        .unwrap_or_else(|e| panic!("create ServiceAccount {name}: {e}"));
        let binding = format!("{}-{name}", ns.name);
        let crbs: Api<ClusterRoleBinding> = Api::all(self.client.clone());
        crbs.create(
            &pp,
            &serde_json::from_value(serde_json::json!({
                "metadata": {"name": binding},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
                "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": ns.name}],
            }))
            .unwrap(),
        )
        .await
        .unwrap_or_else(|e| panic!("create ClusterRoleBinding {binding}: {e}"));
        ns.cluster_objects.lock().unwrap().push(format!(
            "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/{binding}"
        ));
        let request: TokenRequest = serde_json::from_value(
            serde_json::json!({"spec": {"audiences": [], "expirationSeconds": 6 * 3600}}),
        )
        .unwrap();
        let token = sas
            .create_token_request(name, &pp, &request)
            .await
            .unwrap_or_else(|e| panic!("TokenRequest for {name}: {e}"))
            .status
            .expect("a token")
            .token;
        let text = std::fs::read_to_string(self.kubeconfig()).expect("admin kubeconfig");
        let mut config: serde_yaml::Value = serde_yaml::from_str(&text).expect("kubeconfig YAML");
        for user in config["users"].as_sequence_mut().expect("users") {
            user["user"] = serde_yaml::from_str(&format!("token: {token}")).unwrap();
        }
        let path = ns.dir.path().join(format!("{name}.kubeconfig"));
        std::fs::write(&path, serde_yaml::to_string(&config).unwrap()).expect("write kubeconfig");
        (path, format!("system:serviceaccount:{}:{name}", ns.name))
    }

    /// Rebinds the ServiceAccount `name` of `ns` (made by [`RealServer::service_account`]) from
    /// `cluster-admin` to a role that may do everything the operator does except write Leases
    /// (it may still read them): its lease renewals fail with 403 from then on, as a replica
    /// cut off from the lease would see. `allow = true` binds `cluster-admin` again.
    pub async fn allow_lease_writes(&self, ns: &RealNamespace, name: &str, allow: bool) {
        use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
        let pp = kube::api::PostParams::default();
        let role_name = format!("{}-no-lease-writes", ns.name);
        if !allow {
            let roles: Api<ClusterRole> = Api::all(self.client.clone());
            let role = serde_json::json!({
                "metadata": {"name": role_name},
                "rules": [
                    {"apiGroups": ["", "castellan.io", "events.k8s.io", "apiextensions.k8s.io"],
                     "resources": ["*"], "verbs": ["*"]},
                    {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"],
                     "verbs": ["get", "list", "watch"]},
                ],
            });
            match roles
                .create(&pp, &serde_json::from_value(role).unwrap())
                .await
            {
                Ok(_) => ns.cluster_objects.lock().unwrap().push(format!(
                    "/apis/rbac.authorization.k8s.io/v1/clusterroles/{role_name}"
                )),
                Err(kube::Error::Api(e)) if e.code == 409 => {}
                Err(e) => panic!("create ClusterRole {role_name}: {e}"),
            }
        }
        let binding = format!("{}-{name}", ns.name);
        let crbs: Api<ClusterRoleBinding> = Api::all(self.client.clone());
        crbs.delete(&binding, &Default::default())
            .await
            .unwrap_or_else(|e| panic!("delete ClusterRoleBinding {binding}: {e}"));
        let role = if allow {
            "cluster-admin"
        } else {
            role_name.as_str()
        };
        crbs.create(
            &pp,
            &serde_json::from_value(serde_json::json!({
                "metadata": {"name": binding},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
                "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": ns.name}],
            }))
            .unwrap(),
        )
        .await
        .unwrap_or_else(|e| panic!("create ClusterRoleBinding {binding}: {e}"));
    }

    /// Where the audit log ends now: [`RealServer::audit_since`] reads what comes after.
    pub fn audit_mark(&self) -> u64 {
        std::fs::metadata(self.var("CASTELLAN_KUBE_AUDIT_LOG")).map_or(0, |m| m.len())
    }

    /// The requests of users whose name starts with `user_prefix` logged since `mark`, as the
    /// emulator's request log records them (one record per request: a watch is logged when its
    /// response starts). The audit backend writes synchronously, so a request answered before
    /// this call is in the log.
    pub fn audit_since(
        &self,
        mark: u64,
        user_prefix: &str,
    ) -> Vec<castellan_apiserver::RequestRecord> {
        use std::io::{Read, Seek};
        let mut file =
            std::fs::File::open(self.var("CASTELLAN_KUBE_AUDIT_LOG")).expect("audit log");
        file.seek(std::io::SeekFrom::Start(mark)).expect("seek");
        let mut text = String::new();
        file.read_to_string(&mut text).expect("read audit log");
        let mut seen = std::collections::HashSet::new();
        let mut out = Vec::new();
        for line in text.lines() {
            let Ok(e) = serde_json::from_str::<serde_json::Value>(line) else {
                continue; // a line being written
            };
            let user = e["user"]["username"].as_str().unwrap_or_default();
            if !user.starts_with(user_prefix) {
                continue;
            }
            if !seen.insert(e["auditID"].as_str().unwrap_or_default().to_string()) {
                continue;
            }
            let s = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_string();
            let uri = s(&e["requestURI"]);
            let (path, query) = uri.split_once('?').unwrap_or((&uri, ""));
            let o = &e["objectRef"];
            out.push(castellan_apiserver::RequestRecord {
                verb: s(&e["verb"]),
                method: String::new(),
                path: path.to_string(),
                query: query.to_string(),
                group: s(&o["apiGroup"]),
                resource: s(&o["resource"]),
                subresource: s(&o["subresource"]),
                namespace: s(&o["namespace"]),
                name: s(&o["name"]),
                code: e["responseStatus"]["code"].as_u64().unwrap_or(0) as u16,
                dry_run: query.split('&').any(|kv| kv == "dryRun=All"),
            });
        }
        out
    }

    /// `etcdctl compaction` at a revision past every resourceVersion handed out so far, so that
    /// none can be resumed from (the apiserver's watch cache still serves them until it
    /// restarts: see [`RealServer::restart_apiserver`]). Two writes of a key outside the
    /// apiserver's prefix come first: a watch from revision `r` needs `r + 1`, so compacting
    /// at the current revision alone leaves the newest object's watchers resumable.
    pub async fn compact_etcd(&self) -> u64 {
        let etcdctl = self.var("CASTELLAN_KUBE_ETCDCTL");
        let endpoints = format!("--endpoints={}", self.var("CASTELLAN_KUBE_ETCD_URL"));
        for n in ["1", "2"] {
            run(
                etcdctl,
                &[&endpoints, "put", "/castellan-tests/compaction-marker", n],
                &[],
            )
            .await;
        }
        let out = run(
            etcdctl,
            &[&endpoints, "endpoint", "status", "-w", "json"],
            &[],
        )
        .await;
        let status: serde_json::Value = serde_json::from_str(&out).expect("etcdctl JSON");
        let revision = status[0]["Status"]["header"]["revision"]
            .as_u64()
            .unwrap_or_else(|| panic!("no revision in {out}"));
        run(
            etcdctl,
            &[&endpoints, "compaction", &revision.to_string()],
            &[],
        )
        .await;
        revision
    }

    /// Restarts kube-apiserver with `e2e/kube/restart-apiserver` (SIGTERM, or SIGKILL: a crash
    /// with connections reset) and waits until each of `collections` (API paths) answers a
    /// list: `/readyz` is ok before every custom resource's storage is re-initialised (429
    /// meanwhile).
    pub async fn restart_apiserver(&self, kill: bool, collections: &[String]) {
        let script = self.var("CASTELLAN_KUBE_RESTART_APISERVER");
        let env_file = self.env_file.display().to_string();
        let signal = if kill { "KILL" } else { "TERM" };
        run(
            "bash",
            &[script, &env_file],
            &[("CASTELLAN_KUBE_SIGNAL", signal)],
        )
        .await;
        for path in collections {
            let uri = format!("{path}?limit=1");
            loop {
                if get_text(&self.client, &uri).await.is_ok() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }

    /// The apiserver's `/metrics` (Prometheus text).
    pub async fn metrics(&self) -> String {
        get_text(&self.client, "/metrics")
            .await
            .expect("GET /metrics")
    }
}

/// `GET uri` (a path with its query) through `client` (the `http` crate is not a dependency of
/// its own here: kube's request builder makes the request, the URI is then replaced).
pub async fn get_text(client: &Client, uri: &str) -> kube::Result<String> {
    let mut req = kube::core::Request::new(uri)
        .list(&Default::default())
        .expect("request");
    *req.uri_mut() = uri.parse().expect("uri");
    client.request_text(req).await
}

async fn run(program: &str, args: &[&str], env: &[(&str, &str)]) -> String {
    let out = tokio::process::Command::new(program)
        .args(args)
        .envs(env.iter().copied())
        .kill_on_drop(true)
        .output()
        .await
        .unwrap_or_else(|e| panic!("{program}: {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A namespace on the real server, deleted (with the cluster-scoped objects made for it) when
/// dropped, also after a failure.
pub struct RealNamespace {
    kubeconfig: std::path::PathBuf,
    pub name: String,
    cluster_objects: Mutex<Vec<String>>,
    dir: tempfile::TempDir,
}

impl Drop for RealNamespace {
    fn drop(&mut self) {
        // The test's runtime may be blocked in this drop: clean up from a thread of our own.
        let kubeconfig = self.kubeconfig.clone();
        let mut paths = std::mem::take(&mut *self.cluster_objects.lock().unwrap());
        paths.push(format!("/api/v1/namespaces/{}", self.name));
        let name = self.name.clone();
        let done = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(async move {
                    let client = castellan::cluster::client_from_kubeconfig(&kubeconfig)
                        .await
                        .map_err(|e| e.to_string())?;
                    for path in paths {
                        let (collection, name) = path.rsplit_once('/').expect("a path");
                        let req = kube::core::Request::new(collection)
                            .delete(name, &Default::default())
                            .map_err(|e| e.to_string())?;
                        if let Err(e) = client.request_text(req).await {
                            if !matches!(&e, kube::Error::Api(s) if s.code == 404) {
                                return Err(format!("DELETE {path}: {e}"));
                            }
                        }
                    }
                    Ok::<_, String>(())
                })
        });
        if let Ok(Err(e)) = done.join() {
            note(&format!("cleaning up namespace {name}: {e}"));
        }
    }
}
