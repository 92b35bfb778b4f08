//! `castellan verify --backend NAME` through the real binary, against the in-process S3 server
//! (SigV4, real credential failures) and the API-server emulator. Blobs are written with
//! `castellan::transfer::put_bytes` (object and mapping, as `castellan put` does), then damaged
//! behind S3's back in the server's data directory. The operator is not running: the tests write
//! the backends' Ready conditions themselves.

use std::process::Output;
use std::time::Duration;

use bytes::Bytes;
use castellan::api::reasons::backend_condition;
use castellan::api::StorageBackend;
use castellan::transfer::{put_bytes, PutOptions, PutOutcome};
use castellan_apiserver::ApiServer;
use castellan_s3server::{S3Server, ServerOptions};
use k8s_openapi::api::core::v1::{Namespace, Secret};
use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use kube::Client;
use serde_json::{json, Value};

const NS: &str = "org";
const KEY: (&str, &str) = (
    "AKIDSCRUBA0000000001",
    "secret-scrub-0123456789abcdefghijkl",
);
const BUCKET: &str = "scrub";

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
        .expect("CRDs created and established");
    Api::<Namespace>::all(client.clone())
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": NS}})).unwrap(),
        )
        .await
        .expect("namespace");
    let secrets: Api<Secret> = Api::namespaced(client.clone(), NS);
    let good = json!({"accessKeyId": KEY.0, "secretAccessKey": KEY.1});
    let revoked = json!({"accessKeyId": "AKIDNOTONTHERING0001", "secretAccessKey": KEY.1});
    for (name, data) in [("good-creds", good), ("wrong-creds", revoked)] {
        let s: Secret =
            serde_json::from_value(json!({"metadata": {"name": name}, "stringData": data}))
                .unwrap();
        secrets
            .create(&PostParams::default(), &s)
            .await
            .expect("secret");
    }
    Env { s3, api, client }
}

impl Env {
    /// A Ready default backend on the test bucket, key prefix `cas`, signing with `creds`.
    async fn backend(&self, name: &str, creds: &str) {
        let api: Api<StorageBackend> = Api::namespaced(self.client.clone(), NS);
        let backend: StorageBackend = serde_json::from_value(json!({
            "apiVersion": "castellan.io/v1alpha1",
            "kind": "StorageBackend",
            "metadata": {"name": name, "namespace": NS},
            "spec": {
                "s3": {
                    "bucket": BUCKET,
                    "endpoint": self.s3.endpoint(),
                    "forcePathStyle": true,
                    "keyPrefix": "cas",
                    "credentialsSecretRef": {"name": creds},
                },
                "default": true,
            },
        }))
        .unwrap();
        api.create(&PostParams::default(), &backend)
            .await
            .expect("create backend");
        let status = json!({
            "apiVersion": "castellan.io/v1alpha1",
            "kind": "StorageBackend",
            "status": {"conditions": [{
                "type": backend_condition::READY,
                "status": "True",
                "reason": "Validated",
                "message": "set by the test",
                "lastTransitionTime": "2026-01-01T00:00:00Z",
            }]},
        });
        api.patch_status(
            name,
            &PatchParams::apply("test-backend-controller").force(),
            &Patch::Apply(&status),
        )
        .await
        .expect("backend status");
    }

    /// Uploads `data` to the default backend and creates its mapping.
    async fn put(&self, data: &[u8]) -> PutOutcome {
        put_bytes(
            &self.client,
            NS,
            Bytes::copy_from_slice(data),
            &PutOptions::default(),
        )
        .await
        .expect("put")
    }

    /// Replaces an object's bytes behind S3's back.
    fn plant(&self, key: &str, bytes: &[u8]) {
        self.s3.write_object_file(BUCKET, key, bytes).unwrap();
    }

    /// Removes an object behind S3's back.
    fn remove(&self, key: &str) {
        std::fs::remove_file(self.s3.data_dir().join(BUCKET).join(key)).unwrap();
    }

    /// Runs the real binary; AWS credentials come only from the Secrets.
    async fn castellan(&self, args: &[&str]) -> Output {
        tokio::process::Command::new(env!("CARGO_BIN_EXE_castellan"))
            .args(args)
            .env("KUBECONFIG", self.api.kubeconfig_path())
            .env_remove("AWS_ACCESS_KEY_ID")
            .env_remove("AWS_SECRET_ACCESS_KEY")
            .env_remove("AWS_SESSION_TOKEN")
            .output()
            .await
            .expect("run castellan")
    }

    /// (type, reason, regarding kind, regarding name) of every event in the namespace, sorted.
    async fn events(&self) -> Vec<(String, String, String, String)> {
        let api: Api<Event> = Api::namespaced(self.client.clone(), NS);
        let mut all: Vec<_> = api
            .list(&ListParams::default())
            .await
            .expect("list events")
            .items
            .into_iter()
            .map(|e| {
                let regarding = e.regarding.unwrap_or_default();
                (
                    e.type_.unwrap_or_default(),
                    e.reason.unwrap_or_default(),
                    regarding.kind.unwrap_or_default(),
                    regarding.name.unwrap_or_default(),
                )
            })
            .collect();
        all.sort();
        all
    }
}

/// Bytes that differ per seed and position.
fn blob(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn json_of(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("stdout is JSON ({e}): {}", text(&out.stdout)))
}

/// The damaged bucket every test below shares: one good blob, one corrupted in place (same
/// size, other bytes), one truncated, one deleted, and a stray file outside the layout.
struct Damaged {
    good: PutOutcome,
    corrupt: PutOutcome,
    truncated: PutOutcome,
    deleted: PutOutcome,
}

const STRAY: &str = "cas/notes/readme.txt";

async fn damaged(env: &Env) -> Damaged {
    env.backend("a", "good-creds").await;
    let good = env.put(&blob(70_000, 1)).await;
    let corrupt = env.put(&blob(50_000, 2)).await;
    let truncated = env.put(&blob(40_000, 3)).await;
    let deleted = env.put(&blob(30_000, 4)).await;
    env.plant(&corrupt.key, &blob(50_000, 99));
    env.plant(&truncated.key, &blob(40_000, 3)[..25_000]);
    env.remove(&deleted.key);
    env.plant(STRAY, b"not an artifact");
    Damaged {
        good,
        corrupt,
        truncated,
        deleted,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_damage_is_reported_and_nothing_is_written_without_record() {
    let env = setup().await;
    let d = damaged(&env).await;

    let out = env
        .castellan(&["verify", "--backend", "a", "-n", NS, "--output", "json"])
        .await;
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    let report = json_of(&out);
    let counts = &report["counts"];
    for (field, want) in [
        ("listed", 4),
        ("mappings", 4),
        ("verified", 1),
        ("corrupt", 1),
        ("size_mismatch", 1),
        ("missing", 1),
        ("interrupted", 0),
        ("failed", 0),
        ("outside_layout", 1),
    ] {
        assert_eq!(counts[field], json!(want), "{field}: {report:#}");
    }
    assert_eq!(report["outcome"], json!("Findings"));
    assert_eq!(report["backend"], json!("a"));
    let mut findings: Vec<(String, String, Vec<String>)> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["key"].as_str().unwrap().to_owned(),
                f["verdict"].as_str().unwrap().to_owned(),
                serde_json::from_value(f["mappings"].clone()).unwrap(),
            )
        })
        .collect();
    findings.sort();
    let mut want: Vec<(String, String, Vec<String>)> = [
        (&d.corrupt, "DigestMismatch"),
        (&d.truncated, "SizeMismatch"),
        (&d.deleted, "ObjectMissing"),
    ]
    .iter()
    .map(|(p, v)| (p.key.clone(), v.to_string(), vec![p.mapping.clone()]))
    .collect();
    want.sort();
    assert_eq!(findings, want, "each damaged object, with its mapping");
    assert_eq!(
        report["outside_layout"],
        json!([{"key": STRAY, "size": 15}]),
        "the stray object is listed, not verified"
    );

    let table = env.castellan(&["verify", "--backend", "a", "-n", NS]).await;
    assert_eq!(table.status.code(), Some(3), "{}", text(&table.stderr));
    let shown = text(&table.stdout);
    for part in [
        "DigestMismatch",
        "SizeMismatch",
        "ObjectMissing",
        d.corrupt.key.as_str(),
        d.deleted.mapping.as_str(),
        STRAY,
    ] {
        assert!(shown.contains(part), "{part} in:\n{shown}");
    }
    assert!(
        !shown.contains(&d.good.key),
        "a verified object is no finding:\n{shown}"
    );
    assert!(!shown.contains(KEY.1), "never a secret:\n{shown}");

    assert_eq!(
        env.events().await,
        [],
        "without --record no event is written"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_record_each_affected_mapping_gets_a_warning_and_the_backend_a_summary() {
    let env = setup().await;
    let d = damaged(&env).await;

    let out = env
        .castellan(&[
            "verify",
            "--backend",
            "a",
            "-n",
            NS,
            "--record",
            "--concurrency",
            "2",
        ])
        .await;
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    let warning = |reason: &str, kind: &str, name: &str| {
        (
            "Warning".to_owned(),
            reason.to_owned(),
            kind.to_owned(),
            name.to_owned(),
        )
    };
    let mut want = vec![
        warning("DigestMismatch", "ArtifactMapping", &d.corrupt.mapping),
        warning("SizeMismatch", "ArtifactMapping", &d.truncated.mapping),
        warning("ObjectMissing", "ArtifactMapping", &d.deleted.mapping),
        warning("ScrubFindings", "StorageBackend", "a"),
    ];
    want.sort();
    assert_eq!(
        env.events().await,
        want,
        "no event about the good mapping ({})",
        d.good.mapping
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_intact_bucket_exits_0_and_records_a_clean_summary() {
    let env = setup().await;
    env.backend("a", "good-creds").await;
    for seed in 1..=3 {
        env.put(&blob(20_000 * seed as usize, seed)).await;
    }
    env.plant(STRAY, b"not an artifact");

    let out = env
        .castellan(&[
            "verify",
            "--backend",
            "a",
            "-n",
            NS,
            "-o",
            "json",
            "--bytes-per-second",
            "100000000",
        ])
        .await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let report = json_of(&out);
    assert_eq!(report["outcome"], json!("Clean"));
    assert_eq!(report["counts"]["verified"], json!(3));
    assert_eq!(report["counts"]["outside_layout"], json!(1));
    assert_eq!(report["bytes"], json!(120_000));
    assert_eq!(report["findings"], json!([]));
    assert_eq!(env.events().await, []);

    let recorded = env
        .castellan(&["verify", "--backend", "a", "-n", NS, "--record"])
        .await;
    assert_eq!(
        recorded.status.code(),
        Some(0),
        "{}",
        text(&recorded.stderr)
    );
    assert_eq!(
        env.events().await,
        [(
            "Normal".to_owned(),
            "ScrubClean".to_owned(),
            "StorageBackend".to_owned(),
            "a".to_owned()
        )]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_cut_off_mid_read_are_incomplete_never_findings() {
    let env = setup().await;
    env.backend("a", "good-creds").await;
    for seed in 1..=2 {
        env.put(&blob(50_000, seed)).await;
    }
    // Every GET body now stops after 1000 bytes: nothing is known about the content.
    env.s3.faults().cut_get_bodies_after(Some(1000));

    let out = env
        .castellan(&["verify", "--backend", "a", "-n", NS, "-o", "json"])
        .await;
    assert_eq!(out.status.code(), Some(5), "{}", text(&out.stderr));
    let report = json_of(&out);
    assert_eq!(report["outcome"], json!("Incomplete"));
    assert_eq!(report["counts"]["interrupted"], json!(2));
    assert_eq!(report["counts"]["corrupt"], json!(0));
    assert_eq!(report["counts"]["size_mismatch"], json!(0));

    let recorded = env
        .castellan(&["verify", "--backend", "a", "-n", NS, "--record"])
        .await;
    assert_eq!(
        recorded.status.code(),
        Some(5),
        "{}",
        text(&recorded.stderr)
    );
    assert_eq!(
        env.events().await,
        [(
            "Warning".to_owned(),
            "ScrubIncomplete".to_owned(),
            "StorageBackend".to_owned(),
            "a".to_owned()
        )],
        "a cut-off read is never recorded on a mapping"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unusable_backend_exits_5_and_an_unknown_one_4() {
    let env = setup().await;
    env.backend("wrong", "wrong-creds").await;
    env.backend("nosecret", "absent-creds").await;

    let cases = [
        (
            "keys the server does not know exit 5",
            "wrong",
            5,
            "InvalidAccessKeyId",
        ),
        (
            "a Secret that does not exist exits 5",
            "nosecret",
            5,
            "SecretNotFound",
        ),
        (
            "no such backend exits 4",
            "nothere",
            4,
            "no StorageBackend nothere",
        ),
    ];
    for (name, backend, code, says) in cases {
        let out = env
            .castellan(&["verify", "--backend", backend, "-n", NS, "--record"])
            .await;
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(code), "{name}: {stderr}");
        assert!(stderr.contains(says), "{name}: {stderr}");
        assert!(!stderr.contains(KEY.1), "{name}: never a secret: {stderr}");
    }
    assert_eq!(
        env.events().await,
        [],
        "a pass that did not run records nothing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_backend_form_documents_its_exit_codes_and_excludes_the_single_object_flags() {
    let env = setup().await;
    let help = env.castellan(&["verify", "--help"]).await;
    let shown = text(&help.stdout);
    for part in [
        "Exit codes (--backend NAME)",
        "3  findings",
        "5  backend error",
        "--bytes-per-second",
        "--concurrency",
        "--record",
    ] {
        assert!(shown.contains(part), "{part} in:\n{shown}");
    }
    let digest = format!("sha256:{}", "ab".repeat(32));
    let cases: [(&str, &[&str]); 4] = [
        (
            "--record with the single-object form",
            &["verify", "--bucket", "b", "--digest", &digest, "--record"],
        ),
        (
            "--backend with --bucket",
            &["verify", "--backend", "a", "--bucket", "b"],
        ),
        ("--record without --backend", &["verify", "--record"]),
        (
            "neither --backend nor --bucket/--digest",
            &["verify", "--key", "k"],
        ),
    ];
    for (name, args) in cases {
        let out = env.castellan(args).await;
        assert_eq!(out.status.code(), Some(2), "{name}: {}", text(&out.stderr));
    }
}
