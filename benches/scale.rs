//! Prints scale figures for the operator (not a timed test; `harness = false`).
//!
//! (1) Reassignment: `SCALE_MAPPINGS` (default 10 000) mappings of `SCALE_OBJECT_BYTES` (default
//!     1 MiB) served by backend A; backend B on the same bucket with other keys becomes the
//!     default; A's keys are revoked on the S3 server. Measured: wall time from the revocation
//!     until a watch has seen every mapping with `status.backend = b`. Then, in the same run and
//!     against the same servers, the floor: the same objects fetched from B at the operator's
//!     verification concurrency (GET + SHA-256 + one server-side-apply status patch per mapping
//!     through kube), with the same watch running. Prints both, the ratio (target <= 1.25), the
//!     throughput, the API requests counted by the emulator during each pass, and the CPU time
//!     of this process and of the S3 server.
//! (2) Memory: `SCALE_MEMORY_MAPPINGS` (default 100 000) realistic mappings (status with backend,
//!     key, four conditions, one history entry, as the operator writes them) in an API-server
//!     emulator running as a separate process; the real `castellan run` binary is started once
//!     without mappings and once with them, and the growth of its RSS once its caches are
//!     synced and it is idle is divided by the number of mappings (target <= 2 KiB).
//!
//! S3: Garage when found (`GARAGE`, `garage` on the PATH, or /var/tmp/garage-install/bin/garage;
//! `bench/verify.sh` installs it), otherwise the in-process s3s-fs server; the program says which.
//! `SCALE_S3=s3s` forces s3s-fs. `SCALE_PARTS=reassign` or `memory` runs one part only.
//! `SCALE_VERIFY_CONCURRENCY` (default: the operator's default, 16) sets both the operator's
//! verification concurrency and the floor's.
//!
//! API server: the emulator (in process for (1), in a child process for (2)), or — with
//! `CASTELLAN_KUBE_ENV` naming the env file of `e2e/kube/start` — that real kube-apiserver, same
//! parameters, each part in a fresh namespace. There the operator (and the floor) authenticate
//! as ServiceAccounts of the namespace, and the requests are counted from the apiserver's audit
//! log (which records ServiceAccounts' requests), cross-checked with `apiserver_request_total`
//! from its `/metrics`; the CPU of kube-apiserver and etcd is printed per pass.
//!
//! Run: `CARGO_TARGET_DIR=/var/tmp/castellan-target cargo bench --locked --bench scale`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use castellan::api::reasons::{backend_condition, mapping_condition, BackendReason};
use castellan::api::{ArtifactMapping, StorageBackend};
use castellan::cluster::FIELD_MANAGER;
use castellan::digest::{Algorithm, Digest, Hasher};
use castellan::operator::Settings;
use castellan::operator::{self, RunConfig};
use castellan::storage::{
    layout, ObjectStore, PutBody, PutOptions, S3Config, S3Store, StaticCredentials,
};
use castellan_apiserver::{ApiServer, RequestRecord, ServerConfig};
use castellan_s3server::{S3Server, ServerOptions};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::{watcher, WatchStreamExt};
use kube::{Client, ResourceExt};
use serde_json::json;

#[path = "../tests/support/mod.rs"]
mod support;

const MIB: f64 = 1024.0 * 1024.0;
const NS: &str = "org";
const MEM_NS: &str = "mem";

/// A namespace on the real apiserver (deleted at the end), or the emulator's fixed `base`.
fn namespace_name(base: &str, real: bool) -> String {
    if real {
        format!("scale-{base}-{:05x}", rand::random::<u32>() & 0xfffff)
    } else {
        base.to_string()
    }
}

/// `apiserver_request_total` from a real apiserver's `/metrics`, summed per (resource, verb)
/// for the castellan.io group, Secrets, Events and Leases.
fn request_totals(metrics: &str) -> HashMap<(String, String), f64> {
    let mut out = HashMap::new();
    for line in metrics.lines() {
        let Some(rest) = line.strip_prefix("apiserver_request_total{") else {
            continue;
        };
        let Some((labels, value)) = rest.rsplit_once("} ") else {
            continue;
        };
        let label = |name: &str| {
            labels
                .split(",")
                .find_map(|kv| kv.strip_prefix(&format!("{name}=\"")))
                .map(|v| v.trim_end_matches('"').to_string())
                .unwrap_or_default()
        };
        let resource = label("resource");
        if !matches!(
            resource.as_str(),
            "artifactmappings" | "storagebackends" | "secrets" | "events" | "leases"
        ) {
            continue;
        }
        let key = (
            format!(
                "{resource}{}",
                match label("subresource").as_str() {
                    "" => String::new(),
                    sub => format!("/{sub}"),
                }
            ),
            label("verb"),
        );
        *out.entry(key).or_insert(0.0) += value.trim().parse::<f64>().unwrap_or(0.0);
    }
    out
}

/// The change of [`request_totals`] between two scrapes, printed.
fn print_metrics_delta(label: &str, before: &str, after: &str, n: usize) {
    let (b, a) = (request_totals(before), request_totals(after));
    let mut rows: Vec<((String, String), f64)> = a
        .iter()
        .map(|(k, v)| (k.clone(), v - b.get(k).copied().unwrap_or(0.0)))
        .filter(|(_, d)| *d > 0.0)
        .collect();
    rows.sort_by(|x, y| x.0.cmp(&y.0));
    let total: f64 = rows.iter().map(|r| r.1).sum();
    let text: Vec<String> = rows
        .iter()
        .map(|((res, verb), d)| format!("{verb} {res} {d:.0}"))
        .collect();
    println!(
        "  {label} apiserver_request_total delta (whole server, every client; these resources): {total:.0} ({:.2}/mapping): {}",
        total / n as f64,
        text.join(", ")
    );
}
const BUCKET: &str = "scale";
const PREFIX: &str = "cas";
/// Keys of backend A (revoked during the run) and B. Garage wants GK + 24 hex / 64 hex.
const KA: (&str, &str) = (
    "GK0a0a0a0a0a0a0a0a0a0a0a0a",
    "a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0",
);
const KB: (&str, &str) = (
    "GK0b0b0b0b0b0b0b0b0b0b0b0b",
    "b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0",
);

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--child-apiserver") {
        return child_apiserver(PathBuf::from(&args[2]));
    }
    if args.get(1).map(String::as_str) == Some("--child-caches") {
        return child_caches(PathBuf::from(&args[2]), args[3] == "strip", &args[4]);
    }
    for v in ["AWS_CA_BUNDLE", "SSL_CERT_FILE", "SSL_CERT_DIR"] {
        std::env::remove_var(v);
    }
    if std::env::var_os("RUST_LOG").is_some() {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .init();
    }
    let parts = std::env::var("SCALE_PARTS").unwrap_or_else(|_| "reassign,memory".into());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    println!(
        "scale bench: {} cores, load average {}, profile {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" "),
        if cfg!(debug_assertions) {
            "debug assertions on (dev-like)"
        } else {
            "optimised (bench/release)"
        }
    );
    if parts.contains("reassign") {
        runtime.block_on(reassignment());
    }
    if parts.contains("memory") {
        runtime.block_on(memory());
    }
}

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// Deterministic, incompressible, distinct bytes per index (xorshift).
fn object_bytes(index: u64, len: usize) -> Bytes {
    let mut x =
        0x9E37_79B9_7F4A_7C15u64 ^ index.wrapping_mul(0xA24B_AED4_963E_E407).wrapping_add(1);
    let mut v = Vec::with_capacity(len + 8);
    while v.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.extend_from_slice(&x.to_le_bytes());
    }
    v.truncate(len);
    Bytes::from(v)
}

async fn client_for(kubeconfig: &Path) -> Client {
    castellan::cluster::client_from_kubeconfig(kubeconfig)
        .await
        .expect("client")
}

/// utime + stime of a process, in seconds.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command (which may hold spaces) start after the last ')'.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = [11, 12]
        .iter()
        .filter_map(|&i| fields.get(i).and_then(|v| v.parse::<f64>().ok()))
        .sum();
    ticks / 100.0
}

fn status_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

async fn bootstrap_api(client: &Client, namespace: &str) {
    castellan::cluster::install_crds(client, Duration::from_secs(10))
        .await
        .expect("CRDs created and established");
    let namespaces: Api<Namespace> = Api::all(client.clone());
    namespaces
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": namespace}})).unwrap(),
        )
        .await
        .expect("namespace");
}

async fn put_creds(client: &Client, namespace: &str, name: &str, key: (&str, &str)) {
    let secrets: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let s: Secret = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": name},
        "stringData": {"accessKeyId": key.0, "secretAccessKey": key.1},
    }))
    .unwrap();
    secrets
        .patch(
            name,
            &PatchParams::apply("bench").force(),
            &Patch::Apply(&s),
        )
        .await
        .expect("apply secret");
}

#[allow(clippy::too_many_arguments)]
async fn create_backend(
    client: &Client,
    namespace: &str,
    name: &str,
    endpoint: &str,
    bucket: &str,
    creds: &str,
    default: bool,
    interval: &str,
) {
    let b: StorageBackend = serde_json::from_value(json!({
        "apiVersion": "castellan.io/v1alpha1",
        "kind": "StorageBackend",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "s3": {
                "bucket": bucket, "endpoint": endpoint, "forcePathStyle": true,
                "keyPrefix": PREFIX, "credentialsSecretRef": {"name": creds},
            },
            "default": default,
            "validation": {"interval": interval, "timeout": "10s", "successThreshold": 2, "failureThreshold": 3},
        },
    }))
    .unwrap();
    Api::<StorageBackend>::namespaced(client.clone(), namespace)
        .create(&PostParams::default(), &b)
        .await
        .expect("create backend");
}

fn ready_of(b: &StorageBackend) -> Option<(String, String)> {
    b.status.as_ref().and_then(|s| {
        s.conditions
            .iter()
            .find(|c| c.type_ == backend_condition::READY)
            .map(|c| (c.status.clone(), c.reason.clone()))
    })
}

async fn wait_backend(client: &Client, namespace: &str, name: &str, status: &str, reason: &str) {
    let api: Api<StorageBackend> = Api::namespaced(client.clone(), namespace);
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let got = api.get(name).await.ok().and_then(|b| ready_of(&b));
        if got.as_ref().map(|(s, r)| (s.as_str(), r.as_str())) == Some((status, reason)) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "backend {name}: Ready is {got:?}, want {status}/{reason}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Follows every mapping of a namespace through a watch, counting mappings per
/// "<status.backend>/<Ready reason when Ready=True>".
struct Tracker {
    counts: tokio::sync::watch::Receiver<HashMap<String, usize>>,
    task: tokio::task::JoinHandle<()>,
}

impl Tracker {
    fn start(api: Api<ArtifactMapping>) -> Tracker {
        let (tx, rx) = tokio::sync::watch::channel(HashMap::new());
        let task = tokio::spawn(async move {
            let mut by_name: HashMap<String, String> = HashMap::new();
            let stream = watcher(api, watcher::Config::default()).default_backoff();
            futures::pin_mut!(stream);
            while let Some(event) = stream.next().await {
                let Ok(event) = event else { continue };
                let (m, apply) = match event {
                    watcher::Event::Init => {
                        by_name.clear();
                        tx.send_modify(|c| c.clear());
                        continue;
                    }
                    watcher::Event::InitDone => continue,
                    watcher::Event::Apply(m) | watcher::Event::InitApply(m) => (m, true),
                    watcher::Event::Delete(m) => (m, false),
                };
                let name = m.name_any();
                let old = by_name.remove(&name);
                let new = apply.then(|| tracker_key(&m));
                if let Some(k) = &new {
                    by_name.insert(name, k.clone());
                }
                if old != new {
                    tx.send_modify(|c| {
                        if let Some(o) = old {
                            *c.entry(o).or_default() -= 1;
                        }
                        if let Some(n) = new {
                            *c.entry(n).or_default() += 1;
                        }
                    });
                }
            }
        });
        Tracker { counts: rx, task }
    }

    async fn wait_for(&mut self, key: &str, n: usize, timeout: Duration) -> Result<(), String> {
        let waited = tokio::time::timeout(
            timeout,
            self.counts
                .wait_for(|c| c.get(key).copied().unwrap_or(0) >= n),
        )
        .await;
        match waited {
            Ok(Ok(_)) => Ok(()),
            _ => {
                drop(waited);
                Err(format!(
                    "{n} mappings at {key}: not reached after {timeout:?}; counts {:?}",
                    *self.counts.borrow()
                ))
            }
        }
    }
}

impl Drop for Tracker {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn tracker_key(m: &ArtifactMapping) -> String {
    let status = m.status.as_ref();
    let backend = status.and_then(|s| s.backend.as_deref()).unwrap_or("-");
    let ready = status
        .and_then(|s| {
            s.conditions
                .iter()
                .find(|c| c.type_ == mapping_condition::READY && c.status == "True")
        })
        .map_or("-", |c| c.reason.as_str());
    format!("{backend}/{ready}")
}

/// What the emulator served during a pass, summarised.
struct Requests(Vec<RequestRecord>);

impl Requests {
    fn count(&self, f: impl Fn(&RequestRecord) -> bool) -> usize {
        self.0.iter().filter(|r| f(r)).count()
    }

    fn print(&self, label: &str, n: usize) {
        let per = |x: usize| x as f64 / n as f64;
        let status_writes = self.count(|r| {
            r.is_write() && r.resource == "artifactmappings" && r.subresource == "status"
        });
        let other_mapping_writes = self.count(|r| {
            r.is_write() && r.resource == "artifactmappings" && r.subresource != "status"
        });
        let events = self.count(|r| r.is_write() && r.resource == "events");
        let secret_reads = self.count(|r| r.resource == "secrets" && r.verb == "get");
        let backend_writes = self.count(|r| r.is_write() && r.resource == "storagebackends");
        let writes = self.count(RequestRecord::is_write);
        println!(
            "  {label} API requests: {} in all ({:.2}/mapping); writes {writes} ({:.2}/mapping): \
             mapping status {status_writes} ({:.3}/mapping), other mapping writes {other_mapping_writes}, \
             events {events} ({:.2}/mapping), storagebackend writes {backend_writes}; Secret GETs {secret_reads} ({:.2}/mapping)",
            self.0.len(),
            per(self.0.len()),
            per(writes),
            per(status_writes),
            per(events),
            per(secret_reads),
        );
    }
}

// ---------------------------------------------------------------------------------------------
// S3 servers
// ---------------------------------------------------------------------------------------------

enum S3 {
    Garage(Garage),
    S3s(S3Server),
}

impl S3 {
    fn endpoint(&self) -> String {
        match self {
            S3::Garage(g) => g.endpoint.clone(),
            S3::S3s(s) => s.endpoint(),
        }
    }

    fn describe(&self) -> String {
        match self {
            S3::Garage(g) => format!("Garage ({}) on {}", g.version, g.endpoint),
            S3::S3s(s) => format!("s3s-fs 0.14 in process on {}", s.endpoint()),
        }
    }

    /// The S3 server's own process, when it has one.
    fn pid(&self) -> Option<u32> {
        match self {
            S3::Garage(g) => Some(g.child.id()),
            S3::S3s(_) => None,
        }
    }

    fn revoke_a(&self) {
        match self {
            S3::Garage(g) => g.cli(&["key", "delete", "--yes", KA.0]),
            S3::S3s(s) => assert!(s.keys().revoke(KA.0)),
        }
    }
}

struct Garage {
    child: Child,
    binary: PathBuf,
    config: PathBuf,
    endpoint: String,
    version: String,
    _dir: tempfile::TempDir,
}

impl Drop for Garage {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

fn find_garage() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("GARAGE") {
        return Some(PathBuf::from(p));
    }
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join("garage"))
            .find(|p| p.is_file())
    });
    on_path.or_else(|| {
        let p = PathBuf::from("/var/tmp/garage-install/bin/garage");
        p.is_file().then_some(p)
    })
}

impl Garage {
    fn cli_output(&self, args: &[&str]) -> std::process::Output {
        Command::new(&self.binary)
            .arg("-c")
            .arg(&self.config)
            .args(args)
            .output()
            .expect("run garage")
    }

    fn cli(&self, args: &[&str]) {
        let out = self.cli_output(args);
        assert!(
            out.status.success(),
            "garage {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    async fn start(binary: PathBuf) -> Garage {
        let dir = tempfile::Builder::new()
            .prefix("castellan-scale-garage.")
            .tempdir_in("/var/tmp")
            .expect("temp dir");
        let (s3_port, rpc_port) = (free_port(), free_port());
        let secret: String = (0..32)
            .map(|_| format!("{:02x}", rand::random::<u8>()))
            .collect();
        let config = dir.path().join("garage.toml");
        std::fs::write(
            &config,
            format!(
                "metadata_dir = \"{d}/meta\"\ndata_dir = \"{d}/data\"\ndb_engine = \"sqlite\"\n\
                 replication_factor = 1\ncompression_level = \"none\"\n\
                 rpc_bind_addr = \"127.0.0.1:{rpc_port}\"\nrpc_public_addr = \"127.0.0.1:{rpc_port}\"\n\
                 rpc_secret = \"{secret}\"\n[s3_api]\ns3_region = \"us-east-1\"\n\
                 api_bind_addr = \"127.0.0.1:{s3_port}\"\n",
                d = dir.path().display()
            ),
        )
        .expect("garage config");
        let log = std::fs::File::create(dir.path().join("garage.log")).expect("log");
        let child = Command::new(&binary)
            .arg("-c")
            .arg(&config)
            .args(["server", "--single-node", "--default-bucket"])
            .env("GARAGE_DEFAULT_ACCESS_KEY", KA.0)
            .env("GARAGE_DEFAULT_SECRET_KEY", KA.1)
            .env("GARAGE_DEFAULT_BUCKET", BUCKET)
            .env("RUST_LOG", "warn")
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start garage");
        let version = String::from_utf8_lossy(
            &Command::new(&binary)
                .arg("--version")
                .output()
                .map(|o| o.stdout)
                .unwrap_or_default(),
        )
        .lines()
        .next()
        .unwrap_or("?")
        .to_string();
        let garage = Garage {
            child,
            binary,
            config,
            endpoint: format!("http://127.0.0.1:{s3_port}"),
            version,
            _dir: dir,
        };
        // Ready when B's key can be imported and allowed on the default bucket.
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let out = garage.cli_output(&["key", "import", "--yes", "-n", "b", KB.0, KB.1]);
            if out.status.success() {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "garage did not come up: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        loop {
            let out = garage.cli_output(&[
                "bucket", "allow", "--read", "--write", BUCKET, "--key", KB.0,
            ]);
            if out.status.success() {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "garage bucket allow: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        garage
    }
}

async fn start_s3() -> S3 {
    let forced_s3s = std::env::var("SCALE_S3").is_ok_and(|v| v == "s3s");
    match (forced_s3s, find_garage()) {
        (false, Some(binary)) => S3::Garage(Garage::start(binary).await),
        (forced, found) => {
            if !forced && found.is_none() {
                println!(
                    "Garage not found (GARAGE, PATH, /var/tmp/garage-install/bin/garage; bench/verify.sh \
                     installs it): falling back to the in-process s3s-fs server (~130 MiB/s), which \
                     makes the S3 side, not the operator, the bottleneck"
                );
            }
            let dir = tempfile::Builder::new()
                .prefix("castellan-scale-s3s.")
                .tempdir_in("/var/tmp")
                .expect("temp dir")
                .keep();
            S3::S3s(
                S3Server::start(ServerOptions {
                    data_dir: Some(dir),
                    buckets: vec![BUCKET.into()],
                    keys: vec![(KA.0.into(), KA.1.into()), (KB.0.into(), KB.1.into())],
                    ..ServerOptions::default()
                })
                .await
                .expect("s3s server"),
            )
        }
    }
}

async fn store_with(endpoint: &str, key: (&str, &str)) -> S3Store {
    let mut config = S3Config::new(BUCKET);
    config.endpoint = Some(endpoint.to_string());
    config.force_path_style = true;
    config.key_prefix = PREFIX.into();
    config.credentials = Some(StaticCredentials {
        access_key_id: key.0.into(),
        secret_access_key: key.1.into(),
        session_token: None,
    });
    S3Store::new(config).await.expect("store")
}

/// Writes `n` distinct objects of `size` bytes; returns their digests.
async fn seed_objects(s3: &S3, n: usize, size: usize) -> Vec<Digest> {
    let started = Instant::now();
    let store = Arc::new(store_with(&s3.endpoint(), KA).await);
    let digests: Vec<Digest> = futures::stream::iter(0..n)
        .map(|i| {
            let store = store.clone();
            async move {
                let data = object_bytes(i as u64, size);
                let digest = tokio::task::spawn_blocking({
                    let data = data.clone();
                    move || Digest::of_bytes(Algorithm::Sha256, &data)
                })
                .await
                .expect("hash");
                let key = layout::key_for(PREFIX, &digest);
                match s3 {
                    S3::S3s(server) => server
                        .write_object_file(BUCKET, &key, &data)
                        .expect("write object"),
                    S3::Garage(_) => {
                        store
                            .put(
                                &key,
                                PutBody::Bytes(data),
                                size as u64,
                                &PutOptions::default(),
                            )
                            .await
                            .expect("put object");
                    }
                }
                digest
            }
        })
        .buffered(8)
        .collect()
        .await;
    let secs = started.elapsed().as_secs_f64();
    println!(
        "  seeded {n} objects of {size} bytes in {secs:.1} s ({:.0} MiB/s)",
        (n * size) as f64 / MIB / secs
    );
    digests
}

// ---------------------------------------------------------------------------------------------
// (1) Reassignment vs floor
// ---------------------------------------------------------------------------------------------

/// A position in the request log: the emulator's log is emptied; on the real apiserver the end
/// of its audit log and a scrape of its `/metrics`.
enum Mark {
    Emulator,
    Real(u64, String),
}

async fn take_mark(api: Option<&ApiServer>, real: Option<&support::RealServer>) -> Mark {
    match (api, real) {
        (Some(api), _) => {
            api.hooks().clear_requests();
            Mark::Emulator
        }
        (None, Some(server)) => Mark::Real(server.audit_mark(), server.metrics().await),
        _ => unreachable!("no API server"),
    }
}

async fn reassignment() {
    let n = env_usize("SCALE_MAPPINGS", 10_000);
    let size = env_usize("SCALE_OBJECT_BYTES", 1024 * 1024);
    let settings = Settings {
        verify_concurrency: env_usize(
            "SCALE_VERIFY_CONCURRENCY",
            Settings::default().verify_concurrency,
        ),
        min_validation_interval: Duration::from_secs(1),
        ..Settings::default()
    };
    let concurrency = settings.verify_concurrency;
    println!(
        "(1) reassignment: {n} mappings of {size} bytes, verification concurrency {concurrency}"
    );
    let s3 = start_s3().await;
    println!("  S3 server: {}", s3.describe());
    let digests = seed_objects(&s3, n, size).await;

    let real = support::RealServer::from_env().await;
    let ns_name = namespace_name(NS, real.is_some());
    let ns = ns_name.as_str();
    // The operator's and the floor's clients: on the real apiserver ServiceAccounts of their
    // own, so that the audit log counts their requests as the emulator's log does.
    let (api_server, real_ns, client, op_client, floor_client) = match &real {
        None => {
            let api_server = ApiServer::start_with(ServerConfig {
                options: castellan_apiserver::Options {
                    history_capacity: 4 * n.max(10_000),
                    ..Default::default()
                },
                ..ServerConfig::default()
            })
            .await
            .expect("API server emulator");
            let client = client_for(api_server.kubeconfig_path()).await;
            bootstrap_api(&client, ns).await;
            println!("  API server: the emulator, in this process");
            (
                Some(api_server),
                None,
                client.clone(),
                client.clone(),
                client,
            )
        }
        Some(server) => {
            server.apply_crds().await;
            let real_ns = server.namespace(ns).await;
            let (op_kubeconfig, _) = server.service_account(&real_ns, "castellan").await;
            let (floor_kubeconfig, _) = server.service_account(&real_ns, "floor").await;
            println!(
                "  API server: {} (namespace {ns}; kube-apiserver pid {}, etcd pid {})",
                server.describe(),
                server.var("CASTELLAN_KUBE_APISERVER_PID"),
                server.var("CASTELLAN_KUBE_ETCD_PID")
            );
            (
                None,
                Some(real_ns),
                server.client.clone(),
                client_for(&op_kubeconfig).await,
                client_for(&floor_kubeconfig).await,
            )
        }
    };
    let server_pids: Vec<(&str, u32)> = match &real {
        None => Vec::new(),
        Some(server) => ["APISERVER", "ETCD"]
            .iter()
            .map(|w| {
                (
                    if *w == "ETCD" {
                        "etcd"
                    } else {
                        "kube-apiserver"
                    },
                    server
                        .var(&format!("CASTELLAN_KUBE_{w}_PID"))
                        .parse()
                        .expect("pid"),
                )
            })
            .collect(),
    };
    let server_cpu = || -> Vec<f64> { server_pids.iter().map(|(_, p)| cpu_seconds(*p)).collect() };
    let print_server_cpu = |label: &str, before: &[f64], now: &[f64]| {
        if server_pids.is_empty() {
            return;
        }
        let text: Vec<String> = server_pids
            .iter()
            .zip(before.iter().zip(now.iter()))
            .map(|((name, _), (b, a))| format!("{name} {:.1} s", a - b))
            .collect();
        println!(
            "  {label} CPU of the API server's processes: {}",
            text.join(", ")
        );
    };
    let requests_since = |mark: &Mark, user: &str| -> Vec<RequestRecord> {
        match (mark, &api_server, &real) {
            (Mark::Emulator, Some(api), _) => api.hooks().requests(),
            (Mark::Real(at, _), None, Some(server)) => {
                server.audit_since(*at, &format!("system:serviceaccount:{ns}:{user}"))
            }
            _ => unreachable!(),
        }
    };
    put_creds(&client, ns, "a-creds", KA).await;
    put_creds(&client, ns, "b-creds", KB).await;
    let endpoint = s3.endpoint();
    create_backend(&client, ns, "a", &endpoint, BUCKET, "a-creds", true, "2s").await;

    let mappings: Api<ArtifactMapping> = Api::namespaced(client.clone(), ns);
    let started = Instant::now();
    futures::stream::iter(digests.iter())
        .map(|digest| {
            let mappings = mappings.clone();
            async move {
                let m: ArtifactMapping = serde_json::from_value(json!({
                    "apiVersion": "castellan.io/v1alpha1",
                    "kind": "ArtifactMapping",
                    "metadata": {"name": digest.object_name(), "namespace": ns},
                    "spec": {"digest": digest.to_string(), "size": size, "backendRef": {"name": "a"}},
                }))
                .unwrap();
                mappings
                    .create(&PostParams::default(), &m)
                    .await
                    .expect("create mapping");
            }
        })
        .buffer_unordered(32)
        .collect::<()>()
        .await;
    println!(
        "  created {n} mappings in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let mut tracker = Tracker::start(mappings.clone());
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let operator_task = tokio::spawn(operator::run(
        op_client.clone(),
        RunConfig {
            namespace: Some(ns.to_string()),
            metrics_addr: None,
            health_addr: None,
            leader_election: None,
            instance: "castellan-scale-bench".into(),
            crd_wait: Duration::from_secs(30),
            settings: settings.clone(),
        },
        async move {
            let _ = stop_rx.await;
        },
    ));
    let started = Instant::now();
    tracker
        .wait_for("a/Declared", n, Duration::from_secs(600))
        .await
        .expect("all mappings served by a");
    println!(
        "  operator started; all {n} served by a (Declared, one HEAD each) after {:.1} s",
        started.elapsed().as_secs_f64()
    );

    // Rotation as teams do it: B on the same bucket with other keys becomes the default.
    Api::<StorageBackend>::namespaced(client.clone(), ns)
        .patch(
            "a",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"default": false}})),
        )
        .await
        .expect("patch a");
    create_backend(&client, ns, "b", &endpoint, BUCKET, "b-creds", true, "2s").await;
    wait_backend(&client, ns, "b", "True", BackendReason::Validated.as_str()).await;
    tokio::time::sleep(Duration::from_secs(2)).await;

    // --- The operator pass ---
    let me = std::process::id();
    let op_mark = take_mark(api_server.as_ref(), real.as_ref()).await;
    let server_cpu_op = server_cpu();
    let (cpu_me, cpu_s3) = (cpu_seconds(me), s3.pid().map(cpu_seconds));
    let started = Instant::now();
    s3.revoke_a();
    let detected = {
        let client = client.clone();
        let ns = ns.to_string();
        tokio::spawn(async move {
            wait_backend(
                &client,
                &ns,
                "a",
                "False",
                BackendReason::InvalidAccessKeyId.as_str(),
            )
            .await;
            started.elapsed()
        })
    };
    tracker
        .wait_for("b/DigestVerified", n, Duration::from_secs(3600))
        .await
        .expect("every mapping moved to b");
    let operator_time = started.elapsed();
    let server_cpu_op_end = server_cpu();
    let (cpu_me_op, cpu_s3_op) = (
        cpu_seconds(me) - cpu_me,
        s3.pid().map(|p| cpu_seconds(p) - cpu_s3.unwrap_or(0.0)),
    );
    let detected = detected.await.expect("detection");
    // Let the last events land and the self-triggered reconciles run (they must write nothing).
    tokio::time::sleep(Duration::from_secs(3)).await;
    let operator_requests = Requests(requests_since(&op_mark, "castellan"));
    let metrics_after_op = match &real {
        Some(s) => Some(s.metrics().await),
        None => None,
    };
    let _ = stop_tx.send(());
    let _ = tokio::time::timeout(Duration::from_secs(20), operator_task).await;

    // --- The floor: GET + SHA-256 + one SSA status patch per mapping, same concurrency ---
    let listed = mappings
        .list(&ListParams::default())
        .await
        .expect("list mappings")
        .items;
    assert_eq!(listed.len(), n);
    let store = Arc::new(store_with(&endpoint, KB).await);
    let floor_mappings: Api<ArtifactMapping> = Api::namespaced(floor_client.clone(), ns);
    let floor_mark = take_mark(api_server.as_ref(), real.as_ref()).await;
    let server_cpu_floor = server_cpu();
    let (cpu_me, cpu_s3) = (cpu_seconds(me), s3.pid().map(cpu_seconds));
    let started = Instant::now();
    let verified_bytes: u64 = futures::stream::iter(listed)
        .map(|m| {
            let (store, mappings) = (store.clone(), floor_mappings.clone());
            async move {
                let digest: Digest = m.spec.digest.parse().expect("digest");
                let key = layout::key_for(PREFIX, &digest);
                let got = store.get(&key, None).await.expect("GET");
                let mut hasher = Hasher::new(Algorithm::Sha256);
                let mut body = got.body;
                let mut bytes = 0u64;
                while let Some(chunk) = body.try_next().await.expect("body") {
                    bytes += chunk.len() as u64;
                    hasher.update(&chunk);
                }
                assert_eq!(hasher.finish(), digest, "{key}");
                let mut status = m.status.clone().unwrap_or_default();
                status.last_verified_time =
                    Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                        k8s_openapi::jiff::Timestamp::now(),
                    ));
                let body = json!({
                    "apiVersion": "castellan.io/v1alpha1",
                    "kind": "ArtifactMapping",
                    "status": status,
                });
                mappings
                    .patch_status(
                        &m.name_any(),
                        &PatchParams::apply(FIELD_MANAGER).force(),
                        &Patch::Apply(&body),
                    )
                    .await
                    .expect("status patch");
                bytes
            }
        })
        .buffer_unordered(concurrency)
        .fold(0u64, |acc, b| async move { acc + b })
        .await;
    let floor_time = started.elapsed();
    let server_cpu_floor_end = server_cpu();
    let (cpu_me_floor, cpu_s3_floor) = (
        cpu_seconds(me) - cpu_me,
        s3.pid().map(|p| cpu_seconds(p) - cpu_s3.unwrap_or(0.0)),
    );
    let floor_requests = Requests(requests_since(&floor_mark, "floor"));
    let metrics_after_floor = match &real {
        Some(s) => Some(s.metrics().await),
        None => None,
    };
    assert_eq!(verified_bytes, (n * size) as u64);
    drop(tracker);

    let mib = (n * size) as f64 / MIB;
    let op = operator_time.as_secs_f64();
    let floor = floor_time.as_secs_f64();
    let after_detect = op - detected.as_secs_f64();
    println!("  S3 server: {}", s3.describe());
    println!(
        "  operator: {op:.1} s from the revocation until a watch saw all {n} mappings on b \
         ({:.0} objects/s, {:.0} MiB/s); A reported InvalidAccessKeyId after {:.1} s (interval 2s), \
         so {after_detect:.1} s of moving",
        n as f64 / op,
        mib / op,
        detected.as_secs_f64()
    );
    println!(
        "  floor:    {floor:.1} s for GET + SHA-256 + one status patch per mapping at concurrency {concurrency} \
         ({:.0} objects/s, {:.0} MiB/s)",
        n as f64 / floor,
        mib / floor
    );
    println!(
        "  ratio operator/floor: {:.2} from the revocation, {:.2} from the detection (target <= 1.25)",
        op / floor,
        after_detect / floor
    );
    let s3_cpu = |c: Option<f64>| c.map_or("in this process".to_string(), |c| format!("{c:.1} s"));
    println!(
        "  CPU: operator pass {cpu_me_op:.1} s in this process (operator, {}{}watch), S3 server {}; \
         floor pass {cpu_me_floor:.1} s in this process, S3 server {}",
        if real.is_none() { "emulator, " } else { "" },
        if s3.pid().is_none() { "S3, " } else { "" },
        s3_cpu(cpu_s3_op),
        s3_cpu(cpu_s3_floor),
    );
    print_server_cpu("operator pass", &server_cpu_op, &server_cpu_op_end);
    print_server_cpu("floor pass", &server_cpu_floor, &server_cpu_floor_end);
    operator_requests.print("operator pass", n);
    floor_requests.print("floor pass", n);
    if let (Mark::Real(_, m0), Mark::Real(_, m1), Some(a0), Some(a1)) = (
        &op_mark,
        &floor_mark,
        &metrics_after_op,
        &metrics_after_floor,
    ) {
        print_metrics_delta("operator pass", m0, a0, n);
        print_metrics_delta("floor pass", m1, a1, n);
    }
    drop(api_server);
    drop(real_ns);
    if let S3::S3s(server) = &s3 {
        let _ = std::fs::remove_dir_all(server.data_dir());
    }
}

// ---------------------------------------------------------------------------------------------
// (2) Memory with 100k mappings in the caches
// ---------------------------------------------------------------------------------------------

/// `--child-apiserver KUBECONFIG`: the emulator in its own process, so that its memory is never
/// counted; it stops when the parent closes stdin.
fn child_apiserver(kubeconfig: PathBuf) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async move {
        let server = ApiServer::start_with(ServerConfig {
            kubeconfig: Some(kubeconfig),
            ..ServerConfig::default()
        })
        .await
        .expect("API server emulator");
        println!("{}", server.url());
        let mut stdin = tokio::io::stdin();
        let mut buf = [0u8; 64];
        use tokio::io::AsyncReadExt;
        while stdin.read(&mut buf).await.is_ok_and(|n| n > 0) {}
        drop(server);
    });
}

struct ChildGuard(Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `castellan run` and waits until `/readyz` says ready; returns it with its health port.
async fn start_castellan(kubeconfig: &Path, namespace: &str) -> ChildGuard {
    let health_port = free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_castellan"))
        .args([
            "run",
            "--namespace",
            namespace,
            "--metrics-addr",
            "off",
            "--health-addr",
            &format!("127.0.0.1:{health_port}"),
            "--identity",
            "castellan-scale-bench",
            "--min-validation-interval",
            "1s",
        ])
        .env("KUBECONFIG", kubeconfig)
        // The backends' S3 server is on loopback, which the default endpoint policy refuses.
        .env("CASTELLAN_ALLOW_ENDPOINT_NETWORK", "127.0.0.0/8,::1/128")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start castellan run");
    let guard = ChildGuard(child);
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        if http_status(health_port, "/readyz").await == Some(200) {
            return guard;
        }
        assert!(
            Instant::now() < deadline,
            "castellan run never became ready"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn http_status(port: u16, path: &str) -> Option<u16> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .ok()?;
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes())
        .await
        .ok()?;
    let mut out = Vec::new();
    s.read_to_end(&mut out).await.ok()?;
    String::from_utf8_lossy(&out)
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// Waits until the process has used under 0.1 s of CPU over 3 s (idle), up to `limit`.
async fn wait_idle(pid: u32, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    let mut last = cpu_seconds(pid);
    let mut quiet = 0;
    while Instant::now() < deadline {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let now = cpu_seconds(pid);
        quiet = if now - last < 0.04 { quiet + 1 } else { 0 };
        last = now;
        if quiet >= 3 {
            return true;
        }
    }
    false
}

struct Rss {
    rss: u64,
    anon: u64,
    hwm: u64,
}

fn rss_of(pid: u32) -> Rss {
    Rss {
        rss: status_kib(pid, "VmRSS:"),
        anon: status_kib(pid, "RssAnon:"),
        hwm: status_kib(pid, "VmHWM:"),
    }
}

/// A mapping as the operator leaves it after a rotation: declared on a, served by b.
fn realistic_status(digest: &Digest, at: &str) -> serde_json::Value {
    let cond = |type_: &str, status: &str, reason: &str, message: &str| {
        json!({"type": type_, "status": status, "reason": reason, "message": message,
               "lastTransitionTime": at, "observedGeneration": 1})
    };
    json!({
        "observedGeneration": 1,
        "backend": "b",
        "key": layout::key_for(PREFIX, digest),
        "shortDigest": format!("sha256:{}", &digest.hex()[..12]),
        "conditions": [
            cond("Ready", "True", "DigestVerified", "served by b; its bytes re-verified against the digest"),
            cond("Stranded", "True", "BackendInvalid", "declared backend a is not Ready (InvalidAccessKeyId)"),
            cond("Verified", "True", "DigestVerified", "b holds bytes matching the digest"),
            cond("Reassigned", "True", "DigestVerified", "moved from a to b after the digest re-verified"),
        ],
        "lastVerifiedTime": at,
        "history": [{"from": "a", "to": "b", "at": at, "reason": "DigestVerified"}],
    })
}

/// The status the operator itself writes for a mapping after a rotation, with the digest of the
/// mapping it was learnt on, so that seeded mappings are exactly what a converged operator keeps
/// (and a restarted one leaves alone).
struct Template {
    hex: String,
    json: String,
}

impl Template {
    fn status_for(&self, digest: &Digest) -> serde_json::Value {
        let json = self
            .json
            .replace(&self.hex, digest.hex())
            .replace(&self.hex[..12], &digest.hex()[..12]);
        let mut status: serde_json::Value = serde_json::from_str(&json).expect("status JSON");
        status["key"] = json!(layout::key_for(PREFIX, digest));
        status
    }
}

/// Creates one mapping with [`realistic_status`] while an operator runs, waits until the operator
/// has rewritten it (or 10 s), reads the status back and deletes the mapping.
async fn canonical_status(client: &Client, namespace: &str) -> Template {
    let api: Api<ArtifactMapping> = Api::namespaced(client.clone(), namespace);
    let digest = Digest::of_bytes(Algorithm::Sha256, b"castellan scale template");
    let name = digest.object_name();
    let m: ArtifactMapping = serde_json::from_value(json!({
        "apiVersion": "castellan.io/v1alpha1",
        "kind": "ArtifactMapping",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"digest": digest.to_string(), "size": 1048576, "backendRef": {"name": "a"}},
    }))
    .unwrap();
    api.create(&PostParams::default(), &m)
        .await
        .expect("template");
    let written = api
        .patch_status(
            &name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&json!({
                "apiVersion": "castellan.io/v1alpha1",
                "kind": "ArtifactMapping",
                "status": realistic_status(&digest, "2026-11-21T01:00:00Z"),
            })),
        )
        .await
        .expect("template status");
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut current = written.clone();
    while Instant::now() < deadline && current.resource_version() == written.resource_version() {
        tokio::time::sleep(Duration::from_millis(100)).await;
        current = api.get(&name).await.expect("template");
    }
    // Let a second reconcile (triggered by its own write) settle, then read the final form.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let current = api.get(&name).await.expect("template");
    api.delete(&name, &Default::default())
        .await
        .expect("delete template");
    Template {
        hex: digest.hex().to_string(),
        json: serde_json::to_string(&current.status).expect("status"),
    }
}

/// `--child-caches KUBECONFIG keep|strip`: only what `operator::run` caches for mappings (a
/// shared reflector store and the [`MappingIndex`]), fed by the same watcher, optionally with
/// `managedFields` stripped by `.modify()`; prints "<mappings> <VmRSS KiB before> <after>
/// <RssAnon before> <after>" once the store holds every mapping.
fn child_caches(kubeconfig: PathBuf, strip: bool, namespace: &str) {
    use castellan::mapping::MappingIndex;
    use kube::runtime::reflector;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async move {
        let client = client_for(&kubeconfig).await;
        let api: Api<ArtifactMapping> = Api::namespaced(client.clone(), namespace);
        let me = std::process::id();
        let _ = api.list(&ListParams::default().limit(1)).await;
        let (rss0, anon0) = (status_kib(me, "VmRSS:"), status_kib(me, "RssAnon:"));
        let (reader, writer) = reflector::store_shared::<ArtifactMapping>(4096);
        let _subscriber = writer.subscribe().expect("subscribe");
        let index = Arc::new(MappingIndex::new());
        let feed = {
            let index = index.clone();
            watcher(api, watcher::Config::default())
                .default_backoff()
                .modify(move |m: &mut ArtifactMapping| {
                    if strip {
                        m.metadata.managed_fields = None;
                    }
                })
                .inspect_ok(move |event| index.apply_event(event))
                .reflect_shared(writer)
                .for_each(|_| async {})
        };
        let task = tokio::spawn(feed);
        reader.wait_until_ready().await.expect("store ready");
        tokio::time::sleep(Duration::from_secs(3)).await;
        let (rss1, anon1) = (status_kib(me, "VmRSS:"), status_kib(me, "RssAnon:"));
        println!("{} {rss0} {rss1} {anon0} {anon1}", reader.state().len());
        task.abort();
        drop(index);
    });
}

/// Runs [`child_caches`] and prints its figures.
fn caches_only(kubeconfig: &Path, strip: bool, n: usize, namespace: &str) {
    let out = Command::new(std::env::current_exe().expect("current exe"))
        .arg("--child-caches")
        .arg(kubeconfig)
        .arg(if strip { "strip" } else { "keep" })
        .arg(namespace)
        .stderr(Stdio::inherit())
        .output()
        .expect("caches child");
    let text = String::from_utf8_lossy(&out.stdout);
    let v: Vec<u64> = text
        .split_whitespace()
        .filter_map(|x| x.parse().ok())
        .collect();
    if v.len() != 5 {
        println!("  caches-only child failed: {text}");
        return;
    }
    println!(
        "  caches only (reflector store + MappingIndex, managedFields {}): {} mappings, RSS growth {:.0} bytes/mapping ({:.0} anonymous)",
        if strip { "stripped by .modify()" } else { "kept, as operator::run does" },
        v[0],
        (v[2].saturating_sub(v[1]) * 1024) as f64 / n as f64,
        (v[4].saturating_sub(v[3]) * 1024) as f64 / n as f64,
    );
}

async fn memory() {
    let n = env_usize("SCALE_MEMORY_MAPPINGS", 100_000);
    println!("(2) memory: {n} mappings in the caches of `castellan run`");
    let dir = tempfile::Builder::new()
        .prefix("castellan-scale-mem.")
        .tempdir()
        .expect("temp dir");
    let real = support::RealServer::from_env().await;
    let ns_name = namespace_name(MEM_NS, real.is_some());
    let ns = ns_name.as_str();
    // The kubeconfig `castellan run` and the caches-only children use, and the bench's client.
    let (kubeconfig, client, emulator, real_ns) = match &real {
        None => {
            let kubeconfig = dir.path().join("kubeconfig");
            let mut emulator = ChildGuard(
                Command::new(std::env::current_exe().expect("current exe"))
                    .arg("--child-apiserver")
                    .arg(&kubeconfig)
                    .stdin(Stdio::piped())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::inherit())
                    .spawn()
                    .expect("start the emulator process"),
            );
            {
                use std::io::BufRead;
                let stdout = emulator.0.stdout.take().expect("stdout");
                let mut line = String::new();
                std::io::BufReader::new(stdout)
                    .read_line(&mut line)
                    .expect("emulator URL");
                println!(
                    "  API-server emulator in its own process (pid {}) on {}",
                    emulator.0.id(),
                    line.trim()
                );
            }
            let client = client_for(&kubeconfig).await;
            bootstrap_api(&client, ns).await;
            (kubeconfig, client, Some(emulator), None)
        }
        Some(server) => {
            server.apply_crds().await;
            let real_ns = server.namespace(ns).await;
            let (kubeconfig, _) = server.service_account(&real_ns, "castellan").await;
            println!(
                "  API server: {} (namespace {ns}; castellan run authenticates as a ServiceAccount)",
                server.describe()
            );
            (kubeconfig, server.client.clone(), None, Some(real_ns))
        }
    };
    // Backends on an in-process S3 server: a's key is unknown there (revoked), b's works.
    let s3 = S3Server::start(ServerOptions {
        buckets: vec![BUCKET.into()],
        keys: vec![(KB.0.into(), KB.1.into())],
        ..ServerOptions::default()
    })
    .await
    .expect("s3s server");
    put_creds(&client, ns, "a-creds", KA).await;
    put_creds(&client, ns, "b-creds", KB).await;
    let endpoint = s3.endpoint();
    create_backend(&client, ns, "a", &endpoint, BUCKET, "a-creds", false, "5m").await;
    create_backend(&client, ns, "b", &endpoint, BUCKET, "b-creds", true, "5m").await;

    // Baseline: the operator with both backends and no mapping.
    let baseline = {
        let op = start_castellan(&kubeconfig, ns).await;
        wait_backend(&client, ns, "b", "True", BackendReason::Validated.as_str()).await;
        wait_backend(
            &client,
            ns,
            "a",
            "False",
            BackendReason::InvalidAccessKeyId.as_str(),
        )
        .await;
        wait_idle(op.0.id(), Duration::from_secs(60)).await;
        let rss = rss_of(op.0.id());
        (rss, canonical_status(&client, ns).await)
    };
    let (baseline, template) = baseline;
    println!(
        "  baseline (no mappings, caches synced, idle): VmRSS {:.1} MiB, RssAnon {:.1} MiB, VmHWM {:.1} MiB",
        baseline.rss as f64 / 1024.0,
        baseline.anon as f64 / 1024.0,
        baseline.hwm as f64 / 1024.0
    );

    // 100k mappings as the operator leaves them after a rotation (create + SSA status as
    // "castellan", so managedFields look like production).
    let mappings: Api<ArtifactMapping> = Api::namespaced(client.clone(), ns);
    let started = Instant::now();
    let done = std::sync::atomic::AtomicUsize::new(0);
    futures::stream::iter(0..n)
        .map(|i| {
            let mappings = mappings.clone();
            let (done, template) = (&done, &template);
            async move {
                let digest = Digest::of_bytes(Algorithm::Sha256, &(i as u64).to_le_bytes());
                let name = digest.object_name();
                let m: ArtifactMapping = serde_json::from_value(json!({
                    "apiVersion": "castellan.io/v1alpha1",
                    "kind": "ArtifactMapping",
                    "metadata": {"name": name, "namespace": ns},
                    "spec": {"digest": digest.to_string(), "size": 1048576, "backendRef": {"name": "a"}},
                }))
                .unwrap();
                mappings
                    .create(&PostParams::default(), &m)
                    .await
                    .expect("create mapping");
                let body = json!({
                    "apiVersion": "castellan.io/v1alpha1",
                    "kind": "ArtifactMapping",
                    "status": template.status_for(&digest),
                });
                mappings
                    .patch_status(
                        &name,
                        &PatchParams::apply(FIELD_MANAGER).force(),
                        &Patch::Apply(&body),
                    )
                    .await
                    .expect("status");
                let d = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
                if d % 20_000 == 0 {
                    eprintln!("    {d} mappings seeded");
                }
            }
        })
        .buffer_unordered(32)
        .collect::<()>()
        .await;
    println!(
        "  seeded {n} mappings (create + status) in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    if let Some(server) = &real {
        let rss: Vec<String> = ["APISERVER", "ETCD"]
            .iter()
            .map(|w| {
                let pid: u32 = server
                    .var(&format!("CASTELLAN_KUBE_{w}_PID"))
                    .parse()
                    .expect("pid");
                format!(
                    "{} {:.0} MiB",
                    w.to_lowercase(),
                    status_kib(pid, "VmRSS:") as f64 / 1024.0
                )
            })
            .collect();
        println!("  the real server's RSS now: {}", rss.join(", "));
    }
    let sample = mappings
        .list(&ListParams::default().limit(1))
        .await
        .expect("list");
    if let Some(m) = sample.items.first() {
        println!(
            "  one mapping as stored: {} bytes of JSON ({} managedFields entries)",
            serde_json::to_vec(m).map_or(0, |v| v.len()),
            m.metadata.managed_fields.as_ref().map_or(0, |f| f.len())
        );
    }

    // Mapping writes while the operator starts (a converged operator writes none): compare
    // resourceVersions before and after.
    let versions = |items: Vec<ArtifactMapping>| -> HashMap<String, String> {
        items
            .into_iter()
            .map(|m| (m.name_any(), m.resource_version().unwrap_or_default()))
            .collect()
    };
    let before = versions(
        mappings
            .list(&ListParams::default())
            .await
            .expect("list")
            .items,
    );
    let started = Instant::now();
    let op = start_castellan(&kubeconfig, ns).await;
    let ready_after = started.elapsed();
    let idle = wait_idle(op.0.id(), Duration::from_secs(300)).await;
    let loaded = rss_of(op.0.id());
    drop(op);
    let after = versions(
        mappings
            .list(&ListParams::default())
            .await
            .expect("list")
            .items,
    );
    let written = after
        .iter()
        .filter(|(k, v)| before.get(*k) != Some(*v))
        .count();
    if std::env::var_os("SCALE_DEBUG").is_some() {
        eprintln!("template: {}", template.json);
        let m = mappings
            .list(&ListParams::default().limit(1))
            .await
            .expect("list");
        eprintln!(
            "before: {}",
            serde_json::to_string(&sample.items[0]).unwrap_or_default()
        );
        eprintln!(
            "after: {}",
            serde_json::to_string(&m.items[0]).unwrap_or_default()
        );
    }
    let per = |a: u64, b: u64| (a.saturating_sub(b) * 1024) as f64 / n as f64;
    println!(
        "  with {n} mappings (ready after {:.1} s, then {}): VmRSS {:.1} MiB, RssAnon {:.1} MiB, VmHWM {:.1} MiB; \
         mappings written while starting: {}",
        ready_after.as_secs_f64(),
        if idle { "idle" } else { "NOT idle after 300 s" },
        loaded.rss as f64 / 1024.0,
        loaded.anon as f64 / 1024.0,
        loaded.hwm as f64 / 1024.0,
        written,
    );
    println!(
        "  per mapping: {:.0} bytes of RSS growth ({:.0} anonymous), peak {:.0} bytes (target <= 2048)",
        per(loaded.rss, baseline.rss),
        per(loaded.anon, baseline.anon),
        per(loaded.hwm, baseline.hwm),
    );
    // What the mapping caches alone weigh, and what stripping managedFields would save.
    for strip in [false, true] {
        let kubeconfig = kubeconfig.clone();
        let ns = ns.to_string();
        tokio::task::spawn_blocking(move || caches_only(&kubeconfig, strip, n, &ns))
            .await
            .expect("caches only");
    }
    drop(emulator);
    drop(real_ns);
}
