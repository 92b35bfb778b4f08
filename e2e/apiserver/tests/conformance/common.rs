//! Shared helpers: the server under test, a namespace per test, kube clients, CRDs, and raw HTTP
//! requests for asserting exact status codes, headers and bodies.
//!
//! The server is the in-process emulator (one per test), or — when `CASTELLAN_KUBE_ENV` names
//! the env file `e2e/kube/start` wrote — that real kube-apiserver, shared by every test. Each test
//! works in its own namespace (and its own API group where it changes CRDs), and what it made is
//! deleted when its [`Server`] is dropped, also after a failure. With the real server selected,
//! an unreadable env file or an unreachable server fails the test; nothing is silently skipped.

use castellan_apiserver::{ApiServer, TestHooks};
use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use kube::Client;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

/// Names the env file of a control plane started by `e2e/kube/start`.
pub const KUBE_ENV: &str = "CASTELLAN_KUBE_ENV";

/// The shared group of the shared CRDs (`widgets.example.com`, `gadgets.example.com`).
pub const GROUP: &str = "example.com";

/// The env file, when the real apiserver is selected.
pub fn real_env_file() -> Option<PathBuf> {
    std::env::var_os(KUBE_ENV)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

/// Written to the terminal (not captured by the test harness), so that a skip is always seen.
pub fn note(text: &str) {
    let _ = writeln!(std::io::stderr(), "{text}");
}

/// For a test that cannot run against a real apiserver: prints why and returns true there.
/// Call it first, before [`setup`].
pub fn emulator_only(test: &str, why: &str) -> bool {
    if real_env_file().is_some() {
        note(&format!("SKIPPED on the real apiserver: {test}: {why}"));
        true
    } else {
        false
    }
}

#[path = "../../../kube/env_file.rs"]
mod kube_env_file;

struct Real {
    env_file: PathBuf,
    vars: BTreeMap<String, String>,
}

impl Real {
    fn load(env_file: PathBuf) -> Real {
        let vars = kube_env_file::load(
            KUBE_ENV,
            &env_file,
            &[
                "KUBECONFIG",
                "CASTELLAN_KUBE_ETCDCTL",
                "CASTELLAN_KUBE_ETCD_URL",
                "CASTELLAN_KUBE_RESTART_APISERVER",
            ],
        );
        Real { env_file, vars }
    }
    fn var(&self, key: &str) -> &str {
        &self.vars[key]
    }
}

enum Target {
    Emulator(ApiServer),
    Real(Real),
}

/// Tests that restart the shared real apiserver hold this exclusively; all others share it.
fn real_lock() -> Arc<tokio::sync::RwLock<()>> {
    static LOCK: OnceLock<Arc<tokio::sync::RwLock<()>>> = OnceLock::new();
    LOCK.get_or_init(Default::default).clone()
}

#[allow(dead_code)] // held for their Drop only
enum Guard {
    Shared(tokio::sync::OwnedRwLockReadGuard<()>),
    Exclusive(tokio::sync::OwnedRwLockWriteGuard<()>),
}

/// The server under test, with this test's namespace.
pub struct Server {
    target: Target,
    client: Client,
    /// The same server and credentials without kube's retry layer, for [`raw`]: what the server
    /// answered, also a 429 or 503, not what a retry got.
    wire: Client,
    ns: String,
    dir: PathBuf,
    /// API paths (cluster-scoped objects, CRDs) to delete at the end, in order.
    delete_at_end: Mutex<Vec<String>>,
    /// Collections in which finalizers are removed at the end, so namespace deletion completes.
    unfinalize_at_end: Mutex<Vec<String>>,
    _guard: Option<Guard>,
}

/// A namespace name from the test's name (the harness names the thread after it) and a random
/// suffix, so that reruns never meet a namespace still terminating.
fn namespace_name() -> String {
    let thread = std::thread::current();
    let test = thread.name().unwrap_or("test");
    let test = test.rsplit("::").next().unwrap_or(test);
    let mut base: String = test
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .take(40)
        .collect();
    while base.ends_with('-') {
        base.pop();
    }
    format!("t-{base}-{:05x}", rand::random::<u32>() & 0xfffff)
}

pub async fn setup() -> (Server, Client) {
    start(false).await
}

/// For tests that restart the real apiserver (to produce a real 410): no other test runs
/// meanwhile. The same as [`setup`] on the emulator.
pub async fn setup_exclusive() -> (Server, Client) {
    start(true).await
}

async fn start(exclusive: bool) -> (Server, Client) {
    let ns = namespace_name();
    let dir = std::env::temp_dir().join(format!("castellan-conformance-{ns}"));
    std::fs::create_dir_all(&dir).unwrap();
    let (target, mut config, guard) = match real_env_file() {
        None => {
            let server = ApiServer::start().await.expect("start the emulator");
            let config = kube::Config::new(server.url().parse().unwrap());
            (Target::Emulator(server), config, None)
        }
        Some(env_file) => {
            let real = Real::load(env_file);
            let kubeconfig = kube::config::Kubeconfig::read_from(real.var("KUBECONFIG"))
                .unwrap_or_else(|e| panic!("KUBECONFIG={}: {e}", real.var("KUBECONFIG")));
            let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
                .await
                .expect("a kube config from the env file's KUBECONFIG");
            let guard = if exclusive {
                Guard::Exclusive(real_lock().write_owned().await)
            } else {
                Guard::Shared(real_lock().read_owned().await)
            };
            (Target::Real(real), config, Some(guard))
        }
    };
    config.default_namespace = ns.clone();
    let client = Client::try_from(config.clone()).expect("client");
    config.default_retry = false;
    let wire = Client::try_from(config).expect("client");
    let server = Server {
        target,
        client: client.clone(),
        wire,
        ns: ns.clone(),
        dir,
        delete_at_end: Mutex::new(Vec::new()),
        unfinalize_at_end: Mutex::new(vec![
            format!("/apis/{GROUP}/v1/namespaces/{ns}/widgets"),
            format!("/apis/apps/v1/namespaces/{ns}/deployments"),
        ]),
        _guard: guard,
    };
    let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client.clone());
    namespaces
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": ns}})).unwrap(),
        )
        .await
        .unwrap_or_else(|e| panic!("create the test namespace {ns}: {e}"));
    (server, client)
}

impl Server {
    /// This test's namespace.
    pub fn ns(&self) -> &str {
        &self.ns
    }

    pub fn is_real(&self) -> bool {
        matches!(self.target, Target::Real(_))
    }

    /// The emulator's test hooks; `None` on a real apiserver. Assertions made through them
    /// (the global resourceVersion counter, the request log) are the emulator's own.
    pub fn hooks(&self) -> Option<&TestHooks> {
        match &self.target {
            Target::Emulator(s) => Some(s.hooks()),
            Target::Real(_) => None,
        }
    }

    /// A directory for this test's files, removed at the end.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// An API group of this test's own, for CRDs it changes or deletes.
    pub fn group(&self) -> String {
        format!("{}.example.com", self.ns)
    }

    /// `/apis/example.com/v1/namespaces/<ns>/widgets`.
    pub fn widgets_path(&self) -> String {
        format!("/apis/{GROUP}/v1/namespaces/{}/widgets", self.ns)
    }

    /// A kubeconfig for kubectl whose context's namespace is this test's namespace.
    pub fn kubeconfig_for_kubectl(&self) -> PathBuf {
        let source = match &self.target {
            Target::Emulator(s) => s.kubeconfig_path().to_path_buf(),
            Target::Real(r) => PathBuf::from(r.var("KUBECONFIG")),
        };
        let text = std::fs::read_to_string(&source).unwrap();
        let mut config: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
        let current = config["current-context"].as_str().unwrap().to_string();
        for c in config["contexts"].as_sequence_mut().unwrap() {
            if c["name"].as_str() == Some(current.as_str()) {
                c["context"]["namespace"] = serde_yaml::Value::String(self.ns.clone());
            }
        }
        let path = self.dir.join("kubeconfig");
        std::fs::write(&path, serde_yaml::to_string(&config).unwrap()).unwrap();
        path
    }

    /// Deleted at the end of the test (cluster-scoped objects, CRDs), finalizers first.
    pub fn delete_at_end(&self, path: impl Into<String>) {
        self.delete_at_end.lock().unwrap().push(path.into());
    }

    /// Objects in this collection lose their finalizers at the end of the test.
    pub fn unfinalize_at_end(&self, collection: impl Into<String>) {
        self.unfinalize_at_end
            .lock()
            .unwrap()
            .push(collection.into());
    }

    /// Makes every resourceVersion handed out so far too old: watches from them get `410
    /// Expired` and continue tokens of lists `410`. The real server: `etcdctl compaction` at
    /// the current revision, then a restart of kube-apiserver (its watch cache would otherwise
    /// serve the old events), which also ends every open watch. Needs [`setup_exclusive`].
    pub async fn compact(&self) {
        match &self.target {
            Target::Emulator(s) => s.hooks().compact(),
            Target::Real(real) => {
                assert!(
                    matches!(self._guard, Some(Guard::Exclusive(_))),
                    "compact() restarts the shared apiserver: use setup_exclusive()"
                );
                let etcdctl = real.var("CASTELLAN_KUBE_ETCDCTL");
                let endpoints = format!("--endpoints={}", real.var("CASTELLAN_KUBE_ETCD_URL"));
                let out = run(etcdctl, &[&endpoints, "endpoint", "status", "-w", "json"]).await;
                let status: Value = serde_json::from_str(&out).unwrap();
                let revision = status[0]["Status"]["header"]["revision"]
                    .as_u64()
                    .unwrap_or_else(|| panic!("no revision in {out}"));
                run(etcdctl, &[&endpoints, "compaction", &revision.to_string()]).await;
                self.restart_apiserver().await;
            }
        }
    }

    /// [`compact`](Self::compact), and every open watch ends (the real apiserver's restart ends
    /// them; the emulator drops them).
    pub async fn compact_and_drop_watches(&self) {
        self.compact().await;
        if let Some(h) = self.hooks() {
            h.drop_watches();
        }
    }

    async fn restart_apiserver(&self) {
        let Target::Real(real) = &self.target else {
            unreachable!()
        };
        let script = real.var("CASTELLAN_KUBE_RESTART_APISERVER");
        run("bash", &[script, &real.env_file.display().to_string()]).await;
        // `/readyz` is ok before every custom resource's storage is: until it is, requests
        // get 429 "storage is (re)initializing" (which kube's client retries, raw requests do
        // not). Wait until this test's collections answer.
        let collections = self.unfinalize_at_end.lock().unwrap().clone();
        for path in collections {
            let path = format!("{path}?limit=1");
            wait_until(|| async { raw(self, "GET", &path, &[], "").await.status != 429 }).await;
        }
    }
}

async fn run(program: &str, args: &[&str]) -> String {
    let out = tokio::process::Command::new(program)
        .args(args)
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

impl Drop for Server {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
        let Target::Real(real) = &self.target else {
            return; // the emulator goes with its state
        };
        // The test's runtime is blocked in this drop: clean up from a thread of our own, with a
        // client of its own.
        let kubeconfig = real.var("KUBECONFIG").to_string();
        let ns = self.ns.clone();
        let delete = std::mem::take(&mut *self.delete_at_end.lock().unwrap());
        let unfinalize = std::mem::take(&mut *self.unfinalize_at_end.lock().unwrap());
        let cleanup = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(clean_up(kubeconfig, ns, delete, unfinalize))
        });
        if let Err(e) = cleanup.join().unwrap() {
            note(&format!("conformance: cleaning up {}: {e}", self.ns));
        }
    }
}

async fn clean_up(
    kubeconfig: String,
    ns: String,
    delete: Vec<String>,
    unfinalize: Vec<String>,
) -> Result<(), String> {
    let kubeconfig = kube::config::Kubeconfig::read_from(&kubeconfig).map_err(|e| e.to_string())?;
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .map_err(|e| e.to_string())?;
    let client = Client::try_from(config).map_err(|e| e.to_string())?;
    let send = |method: &'static str, path: String, body: &'static str| {
        let client = client.clone();
        async move {
            let mut req = http::Request::builder().method(method).uri(&path);
            if method == "PATCH" {
                req = req.header("Content-Type", "application/merge-patch+json");
            }
            let req = req.body(kube::client::Body::from(body.as_bytes().to_vec()));
            let res = client.send(req.unwrap()).await.map_err(|e| e.to_string())?;
            let status = res.status().as_u16();
            let bytes = res
                .into_body()
                .collect_bytes()
                .await
                .map_err(|e| e.to_string())?;
            Ok::<_, String>((status, bytes))
        }
    };
    const UNFINALIZE: &str = r#"{"metadata":{"finalizers":null}}"#;
    for collection in unfinalize {
        let (status, body) = send("GET", collection.clone(), "").await?;
        if status != 200 {
            continue; // the CRD is gone, or never existed
        }
        let list: Value = serde_json::from_slice(&body).map_err(|e| e.to_string())?;
        for item in list["items"].as_array().into_iter().flatten() {
            if item["metadata"].get("finalizers").is_some() {
                let name = item["metadata"]["name"].as_str().unwrap_or_default();
                send("PATCH", format!("{collection}/{name}"), UNFINALIZE).await?;
            }
        }
    }
    for path in delete {
        send("PATCH", path.clone(), UNFINALIZE).await?;
        send("DELETE", path, "").await?;
    }
    let (status, body) = send("DELETE", format!("/api/v1/namespaces/{ns}"), "").await?;
    if status != 200 && status != 202 && status != 404 {
        return Err(format!(
            "delete namespace: {status} {}",
            String::from_utf8_lossy(&body)
        ));
    }
    Ok(())
}

/// Polls `f` every 50 ms until it returns a value (no upper bound: the harness bounds a run).
pub async fn wait_for<T, F, Fut>(mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    loop {
        if let Some(v) = f().await {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Polls `cond` every 50 ms until it holds (no upper bound: the harness bounds a run).
pub async fn wait_until<F, Fut>(mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    while !cond().await {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub fn widget_crd() -> Value {
    widget_crd_in(GROUP)
}

/// The Widget CRD in another group; without the short name `wd`, which stays the shared one's
/// (kubectl resolves a short name to one resource).
pub fn widget_crd_in(group: &str) -> Value {
    let mut crd = widget_crd_with_short_name(group);
    if group != GROUP {
        crd["spec"]["names"]
            .as_object_mut()
            .unwrap()
            .remove("shortNames");
    }
    crd
}

fn widget_crd_with_short_name(group: &str) -> Value {
    json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": format!("widgets.{group}")},
        "spec": {
            "group": group,
            "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "shortNames": ["wd"]},
            "versions": [{
                "name": "v1", "served": true, "storage": true,
                "subresources": {"status": {}},
                "additionalPrinterColumns": [
                    {"name": "Size", "type": "integer", "jsonPath": ".spec.size"},
                    {"name": "Mode", "type": "string", "jsonPath": ".spec.mode"},
                    {"name": "Ready", "type": "string", "jsonPath": ".status.conditions[?(@.type==\"Ready\")].status"},
                    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}
                ],
                "schema": {"openAPIV3Schema": {
                    "type": "object",
                    "properties": {
                        "spec": {
                            "type": "object",
                            "required": ["size"],
                            "x-kubernetes-validations": [{"rule": "self.size != 13", "message": "thirteen is unlucky"}],
                            "properties": {
                                "size": {"type": "integer", "minimum": 0, "maximum": 100},
                                "mode": {"type": "string", "enum": ["fast", "slow"], "default": "fast"},
                                "label": {"type": "string", "maxLength": 10, "pattern": "^[a-z]+$"},
                                "tags": {"type": "array", "maxItems": 3, "x-kubernetes-list-type": "set", "items": {"type": "string"}},
                                "note": {"type": "string", "nullable": true},
                                "plain": {"type": "string", "default": "dflt"},
                                "extra": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
                                "replicas": {"type": "integer", "x-kubernetes-validations": [{"rule": "self >= oldSelf", "message": "replicas may not decrease"}]}
                            }
                        },
                        "status": {
                            "type": "object",
                            "properties": {
                                "observedGeneration": {"type": "integer"},
                                "phase": {"type": "string"},
                                "conditions": {
                                    "type": "array",
                                    "x-kubernetes-list-type": "map",
                                    "x-kubernetes-list-map-keys": ["type"],
                                    "items": {"type": "object", "required": ["type", "status"], "properties": {
                                        "type": {"type": "string"}, "status": {"type": "string"},
                                        "observedGeneration": {"type": "integer"}, "reason": {"type": "string"},
                                        "message": {"type": "string"}, "lastTransitionTime": {"type": "string"}
                                    }}
                                }
                            }
                        }
                    }
                }}
            }]
        }
    })
}

/// Cluster-scoped, no status subresource.
pub fn gadget_crd() -> Value {
    json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "gadgets.example.com"},
        "spec": {
            "group": GROUP,
            "scope": "Cluster",
            "names": {"plural": "gadgets", "singular": "gadget", "kind": "Gadget"},
            "versions": [{
                "name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                    "spec": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
                    "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}
                }}}
            }]
        }
    })
}

pub fn crd_api(client: &Client) -> Api<DynamicObject> {
    let ar = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("apiextensions.k8s.io", "v1", "CustomResourceDefinition"),
        "customresourcedefinitions",
    );
    Api::all_with(client.clone(), &ar)
}

/// Creates the CRD (the shared ones may exist already: then applied, which changes nothing when
/// equal) and waits until it is Established and each served version's collection answers, as
/// a client of a real server must (kube's `await_condition(crd_established)`). CRDs outside the
/// shared group are deleted at the end of the test.
pub async fn install(server: &Server, crd: Value) {
    let api = crd_api(&server.client);
    let name = crd["metadata"]["name"].as_str().unwrap().to_string();
    let group = crd["spec"]["group"].as_str().unwrap().to_string();
    let obj: DynamicObject = serde_json::from_value(crd.clone()).unwrap();
    match api.create(&PostParams::default(), &obj).await {
        Ok(_) => {}
        Err(kube::Error::Api(s)) if s.code == 409 && group == GROUP => {
            api.patch(
                &name,
                &PatchParams::apply("conformance").force(),
                &Patch::Apply(&crd),
            )
            .await
            .unwrap_or_else(|e| panic!("apply CRD {name}: {e}"));
        }
        Err(e) => panic!("create CRD {name}: {e}"),
    }
    if group != GROUP {
        server.delete_at_end(format!(
            "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}"
        ));
    }
    wait_until(|| async {
        let crd = api.get(&name).await.unwrap();
        let conditions = crd.data["status"]["conditions"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let status = |t: &str| {
            conditions
                .iter()
                .find(|c| c["type"] == t)
                .map(|c| (c["status"].as_str().unwrap_or("").to_string(), c.clone()))
        };
        if let Some((s, c)) = status("NamesAccepted") {
            assert_ne!(s, "False", "CRD {name} names not accepted: {c}");
        }
        matches!(status("Established"), Some((s, _)) if s == "True")
    })
    .await;
    let plural = crd["spec"]["names"]["plural"].as_str().unwrap();
    let namespaced = crd["spec"]["scope"] == "Namespaced";
    for v in crd["spec"]["versions"].as_array().unwrap() {
        if v["served"] != true {
            continue;
        }
        let version = v["name"].as_str().unwrap();
        let path = if namespaced {
            format!("/apis/{group}/{version}/namespaces/{}/{plural}", server.ns)
        } else {
            format!("/apis/{group}/{version}/{plural}")
        };
        if namespaced && v["storage"] == true {
            server.unfinalize_at_end(path.clone());
        }
        wait_until(|| async { raw(server, "GET", &path, &[], "").await.status == 200 }).await;
    }
}

pub fn widget_ar() -> ApiResource {
    widget_ar_in(GROUP)
}

pub fn widget_ar_in(group: &str) -> ApiResource {
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, "v1", "Widget"), "widgets")
}

pub fn gadget_ar() -> ApiResource {
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(GROUP, "v1", "Gadget"), "gadgets")
}

/// The shared Widget CRD, and an `Api` for widgets in this test's namespace.
pub async fn widgets(server: &Server) -> Api<DynamicObject> {
    install(server, widget_crd()).await;
    Api::namespaced_with(server.client.clone(), server.ns(), &widget_ar())
}

pub fn widget(name: &str, size: i64) -> DynamicObject {
    widget_in(GROUP, name, size)
}

pub fn widget_in(group: &str, name: &str, size: i64) -> DynamicObject {
    serde_json::from_value(json!({
        "apiVersion": format!("{group}/v1"), "kind": "Widget",
        "metadata": {"name": name},
        "spec": {"size": size}
    }))
    .unwrap()
}

pub fn rv(o: &DynamicObject) -> String {
    o.metadata.resource_version.clone().unwrap()
}

pub fn api_err(e: kube::Error) -> kube::core::Status {
    match e {
        kube::Error::Api(s) => *s,
        other => panic!("expected an API error, got {other:?}"),
    }
}

/// A raw HTTP response.
#[derive(Debug)]
pub struct Raw {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    /// The body as received.
    pub bytes: Vec<u8>,
    /// The body as text (lossy).
    pub body: String,
}

impl Raw {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    pub fn all_headers(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }
    /// Watch lines.
    pub fn lines(&self) -> Vec<Value> {
        self.body
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

/// One request through the test's kube client (its TLS and credentials on a real server), the
/// path and query sent as written; the whole body is read (a watch: until the server ends it).
pub async fn raw(
    server: &Server,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Raw {
    raw_bytes(server, method, path, headers, body.as_bytes()).await
}

pub async fn raw_bytes(
    server: &Server,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Raw {
    let mut req = http::Request::builder().method(method).uri(path);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let req = req
        .body(kube::client::Body::from(body.to_vec()))
        .expect("request");
    let res = server
        .wire
        .send(req)
        .await
        .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
    let status = res.status().as_u16();
    let headers = res
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let bytes = res
        .into_body()
        .collect_bytes()
        .await
        .unwrap_or_else(|e| panic!("{method} {path}: reading the body: {e}"))
        .to_vec();
    Raw {
        status,
        headers,
        body: String::from_utf8_lossy(&bytes).into_owned(),
        bytes,
    }
}

pub const JSON: (&str, &str) = ("Content-Type", "application/json");
pub const MERGE: (&str, &str) = ("Content-Type", "application/merge-patch+json");
