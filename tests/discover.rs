//! `castellan discover --backend NAME` through the real binary, against the in-process S3 server
//! (SigV4) and the API-server emulator: a bucket with blobs of both algorithms under the key
//! layout, internal files of every category, foreign keys, and one object whose bytes do not
//! hash to its key, but no mappings.

use std::process::Output;
use std::time::Duration;

use castellan::api::{ArtifactMapping, StorageBackend};
use castellan::digest::{Algorithm, Digest};
use castellan::storage::layout;
use castellan_apiserver::ApiServer;
use castellan_s3server::{S3Server, ServerOptions};
use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::api::{Api, ListParams, PostParams};
use kube::{Client, ResourceExt};
use serde_json::{json, Value};

const NS: &str = "org";
const KEY: (&str, &str) = ("AKIDDISCOVER00000001", "secret-discover-0123456789abcdefgh");
const BUCKET: &str = "unindexed";

struct Env {
    s3: S3Server,
    api: ApiServer,
    client: Client,
}

async fn setup() -> Env {
    let s3 = S3Server::start(ServerOptions {
        buckets: vec![BUCKET.into()],
        keys: vec![(KEY.0.into(), KEY.1.into())],
        ..ServerOptions::default()
    })
    .await
    .expect("S3 server");
    let api = ApiServer::start().await.expect("API server emulator");
    let client = castellan::cluster::client_from_kubeconfig(api.kubeconfig_path())
        .await
        .expect("client");
    castellan::cluster::install_crds(&client, Duration::from_secs(10))
        .await
        .expect("CRDs");
    let pp = PostParams::default();
    Api::<Namespace>::all(client.clone())
        .create(
            &pp,
            &serde_json::from_value(json!({"metadata": {"name": NS}})).unwrap(),
        )
        .await
        .expect("namespace");
    let secret: Secret = serde_json::from_value(json!({
        "metadata": {"name": "creds"},
        "stringData": {"accessKeyId": KEY.0, "secretAccessKey": KEY.1},
    }))
    .unwrap();
    Api::<Secret>::namespaced(client.clone(), NS)
        .create(&pp, &secret)
        .await
        .expect("secret");
    let backend: StorageBackend = serde_json::from_value(json!({
        "apiVersion": "castellan.io/v1alpha1", "kind": "StorageBackend",
        "metadata": {"name": "found", "namespace": NS},
        "spec": {"s3": {
            "bucket": BUCKET, "endpoint": s3.endpoint(), "forcePathStyle": true,
            "keyPrefix": "cas", "credentialsSecretRef": {"name": "creds"},
        }},
    }))
    .unwrap();
    Api::<StorageBackend>::namespaced(client.clone(), NS)
        .create(&pp, &backend)
        .await
        .expect("backend");
    Env { s3, api, client }
}

impl Env {
    fn put(&self, key: &str, bytes: &[u8]) {
        self.s3
            .write_object_file(BUCKET, key, bytes)
            .expect("write object");
    }

    /// A blob under the layout; returns its digest.
    fn blob(&self, algorithm: Algorithm, bytes: &[u8]) -> Digest {
        let digest = Digest::of_bytes(algorithm, bytes);
        self.put(&layout::key_for("cas", &digest), bytes);
        digest
    }

    async fn castellan(&self, args: &[&str]) -> Output {
        tokio::process::Command::new(env!("CARGO_BIN_EXE_castellan"))
            .args(args)
            .env("KUBECONFIG", self.api.kubeconfig_path())
            .output()
            .await
            .expect("run castellan")
    }

    /// `castellan discover --backend found -n org --output json` with `extra` flags: the JSON
    /// summary of a run that succeeded.
    async fn discover_json(&self, extra: &[&str]) -> Value {
        let mut args = vec![
            "discover",
            "--backend",
            "found",
            "-n",
            NS,
            "--output",
            "json",
        ];
        args.extend_from_slice(extra);
        json_of(&self.castellan(&args).await)
    }

    async fn mappings(&self) -> Vec<ArtifactMapping> {
        Api::<ArtifactMapping>::namespaced(self.client.clone(), NS)
            .list(&ListParams::default())
            .await
            .expect("list")
            .items
    }

    fn writes(&self) -> usize {
        self.api
            .hooks()
            .requests()
            .iter()
            .filter(|r| r.is_write() && r.resource == "artifactmappings")
            .count()
    }
}

fn json_of(out: &Output) -> Value {
    assert!(
        out.status.success(),
        "exit {:?}: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON summary")
}

#[tokio::test]
async fn a_bucket_without_mappings_gets_exactly_its_layout_blobs_mapped_and_a_second_run_writes_nothing(
) {
    let env = setup().await;
    let a = env.blob(Algorithm::Sha256, b"first blob");
    let b = env.blob(Algorithm::Sha512, b"second blob, sha512");
    let claimed = Digest::of_bytes(Algorithm::Sha256, b"what the key claims");
    env.put(&layout::key_for("cas", &claimed), b"other bytes entirely");
    let hex = a.hex().to_owned();
    // Keys that must not collide with the blob files above (the server stores objects as files).
    let other = Digest::of_bytes(Algorithm::Sha256, b"never written")
        .hex()
        .to_owned();
    // Directory markers (keys ending in '/') cannot be stored by this file-backed server: the
    // classifier's table test covers them.
    for key in [
        "cas/.castellan/probe/canary".to_owned(),
        "cas/.datastore.lock".to_owned(),
        "cas/.datastore-index.json".to_owned(),
        format!(
            "cas/sha256/{}/{}/{}",
            &hex[..2].to_uppercase(),
            &hex[2..4],
            hex.to_uppercase()
        ),
        format!("cas/sha256/00/00/{hex}"),
        format!("cas/sha256/{}/{}/{other}/extra", &other[..2], &other[2..4]),
        "cas/blobs/readme.txt".to_owned(),
    ] {
        env.put(&key, b"not a blob");
    }
    // One digest is mapped already, by another name: discovery leaves it alone.
    let existing: ArtifactMapping = serde_json::from_value(json!({
        "apiVersion": "castellan.io/v1alpha1", "kind": "ArtifactMapping",
        "metadata": {"name": "hand-made", "namespace": NS},
        "spec": {"digest": b.to_string(), "backendRef": {"name": "found"}},
    }))
    .unwrap();
    Api::<ArtifactMapping>::namespaced(env.client.clone(), NS)
        .create(&PostParams::default(), &existing)
        .await
        .unwrap();

    let dry = env.discover_json(&["--dry-run"]).await;
    assert_eq!(dry["created"], 2, "{dry}");
    assert_eq!(env.mappings().await.len(), 1, "a dry run writes nothing");

    let before = env.writes();
    let run = env.discover_json(&[]).await;
    assert_eq!(run["listed"], 10, "{run}");
    assert_eq!(run["created"], 2, "{run}");
    assert_eq!(run["alreadyMapped"], 1, "{run}");
    let skipped = &run["skipped"];
    for (category, n) in [
        ("probeCanary", 1),
        ("internalFile", 2),
        ("directoryMarker", 0),
        ("malformedDigest", 1),
        ("mismatchedDirectories", 1),
        ("extraSegments", 1),
        ("foreignLayout", 1),
    ] {
        assert_eq!(skipped[category], n, "{category}: {run}");
    }
    assert_eq!(env.writes() - before, 2, "one create per new blob");
    let mut created: Vec<(String, String, Option<i64>, Option<String>)> = env
        .mappings()
        .await
        .into_iter()
        .filter(|m| m.name_any() != "hand-made")
        .map(|m| {
            let label = m.labels().get("castellan.io/discovered-by").cloned();
            (m.name_any(), m.spec.digest, m.spec.size, label)
        })
        .collect();
    created.sort();
    let mut want = vec![
        (
            a.object_name(),
            a.to_string(),
            Some(10),
            Some("found".to_owned()),
        ),
        (
            claimed.object_name(),
            claimed.to_string(),
            Some(20),
            Some("found".to_owned()),
        ),
    ];
    want.sort();
    assert_eq!(created, want);

    // A second run over the unchanged bucket writes nothing.
    let before = env.writes();
    let again = env.discover_json(&[]).await;
    assert_eq!(
        (again["created"].as_u64(), again["alreadyMapped"].as_u64()),
        (Some(0), Some(3))
    );
    assert_eq!(env.writes(), before, "zero writes on a second run");
}

#[tokio::test]
async fn an_unknown_backend_and_failing_credentials_have_their_exit_codes() {
    let env = setup().await;
    let out = env
        .castellan(&["discover", "--backend", "nope", "-n", NS])
        .await;
    assert_eq!(
        out.status.code(),
        Some(4),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    env.s3.keys().revoke(KEY.0);
    let out = env
        .castellan(&["discover", "--backend", "found", "-n", NS])
        .await;
    assert_eq!(
        out.status.code(),
        Some(5),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("found"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovered_mappings_serve_only_once_their_bytes_verify_and_a_lying_key_is_reported() {
    use castellan::api::reasons::{mapping_condition, MappingReason};
    use castellan::operator::{self, RunConfig, Settings};
    let env = setup().await;
    let good = env.blob(Algorithm::Sha256, b"a blob that is what its key says");
    let claimed = Digest::of_bytes(Algorithm::Sha256, b"what the key claims");
    env.put(&layout::key_for("cas", &claimed), b"other bytes entirely");
    let run = env.discover_json(&[]).await;
    assert_eq!(run["created"], 2, "{run}");

    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let config = RunConfig {
        namespace: Some(NS.into()),
        metrics_addr: None,
        health_addr: None,
        leader_election: None,
        instance: "castellan-0".into(),
        crd_wait: Duration::from_secs(10),
        settings: Settings {
            min_validation_interval: Duration::from_secs(1),
            ..Settings::default()
        },
    };
    let client = env.client.clone();
    let op = tokio::spawn(operator::run(client, config, async move {
        let _ = stopped.await;
    }));
    let condition = |m: &ArtifactMapping, type_: &str| {
        m.status.as_ref().and_then(|s| {
            s.conditions
                .iter()
                .find(|c| c.type_ == type_)
                .map(|c| (c.status.clone(), c.reason.clone()))
        })
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let ms = env.mappings().await;
        let find = |d: &Digest| ms.iter().find(|m| m.name_any() == d.object_name()).cloned();
        let (ok, bad) = (find(&good).unwrap(), find(&claimed).unwrap());
        let served = condition(&ok, mapping_condition::VERIFIED)
            == Some(("True".into(), MappingReason::DigestVerified.as_str().into()))
            && condition(&ok, mapping_condition::READY).map(|c| c.0) == Some("True".into());
        let reported = condition(&bad, mapping_condition::READY).map(|c| c.0)
            == Some("False".into())
            && bad.status.as_ref().is_some_and(|s| {
                s.bad_replicas
                    .iter()
                    .any(|r| r.reason == MappingReason::DigestMismatch.as_str())
            });
        // Never served before it verified: the lying key is not Ready at any point.
        assert_ne!(
            condition(&bad, mapping_condition::READY).map(|c| c.0),
            Some("True".into()),
            "{:?}",
            bad.status
        );
        if served && reported {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "good: {:?}\nbad: {:?}",
            ok.status,
            bad.status
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = stop.send(());
    let _ = tokio::time::timeout(Duration::from_secs(10), op).await;
}
