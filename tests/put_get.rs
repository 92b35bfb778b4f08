//! `castellan put` / `castellan get` against real servers over loopback: the in-process S3
//! server (s3s with SigV4, real credential failures, cut bodies) and the API-server emulator.
//! The operator is not running: the tests write backend and mapping statuses themselves, as the
//! controllers would, with their own field manager.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use bytes::Bytes;
use castellan::api::reasons::backend_condition;
use castellan::api::{ArtifactMapping, StorageBackend};
use castellan::digest::{Algorithm, Digest};
use castellan::storage::{layout, Verdict};
use castellan::transfer::{
    get_to_path, put_bytes, put_file, AttemptResult, FoundBy, GetOptions, PutOptions, TransferError,
};
use castellan_apiserver::ApiServer;
use castellan_s3server::{S3Server, ServerOptions};
use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};
use serde_json::json;

const NS: &str = "org";
const KEY_A: (&str, &str) = (
    "AKIDPUTGETA000000001",
    "secret-a-0123456789abcdefghijklmnop",
);
const KEY_B: (&str, &str) = (
    "AKIDPUTGETB000000002",
    "secret-b-0123456789abcdefghijklmnop",
);
const MIB: usize = 1024 * 1024;

struct Env {
    s3: S3Server,
    api: ApiServer,
    client: Client,
}

/// How a test backend looks.
struct B<'a> {
    name: &'a str,
    bucket: &'a str,
    creds: &'a str,
    ready: bool,
    default: bool,
    fallback: bool,
    trust: &'a str,
    /// The S3 server's endpoint; the main one when `None`.
    endpoint: Option<String>,
}

impl<'a> B<'a> {
    fn new(name: &'a str, bucket: &'a str, creds: &'a str) -> B<'a> {
        B {
            name,
            bucket,
            creds,
            ready: true,
            default: false,
            fallback: false,
            trust: "Trusted",
            endpoint: None,
        }
    }
    fn default(mut self) -> Self {
        self.default = true;
        self
    }
    fn fallback(mut self) -> Self {
        self.fallback = true;
        self
    }
    fn not_ready(mut self) -> Self {
        self.ready = false;
        self
    }
    fn trust(mut self, trust: &'a str) -> Self {
        self.trust = trust;
        self
    }
    fn on(mut self, s3: &S3Server) -> Self {
        self.endpoint = Some(s3.endpoint());
        self
    }
}

async fn client_for(api: &ApiServer) -> Client {
    castellan::cluster::client_from_kubeconfig(api.kubeconfig_path())
        .await
        .expect("client")
}

async fn install_crds(client: &Client) {
    castellan::cluster::install_crds(client, Duration::from_secs(10))
        .await
        .expect("CRDs created and established");
}

async fn setup() -> Env {
    let s3 = S3Server::start(ServerOptions {
        buckets: vec!["shared".into(), "corrupt".into()],
        keys: vec![
            (KEY_A.0.into(), KEY_A.1.into()),
            (KEY_B.0.into(), KEY_B.1.into()),
        ],
        ..ServerOptions::default()
    })
    .await
    .expect("S3 server");
    let api = ApiServer::start().await.expect("API server emulator");
    let client = client_for(&api).await;
    install_crds(&client).await;
    Api::<Namespace>::all(client.clone())
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": NS}})).unwrap(),
        )
        .await
        .expect("namespace");
    let secrets: Api<Secret> = Api::namespaced(client.clone(), NS);
    for (name, (id, secret)) in [("a-creds", KEY_A), ("b-creds", KEY_B)] {
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
    Env { s3, api, client }
}

impl Env {
    /// Creates a backend (key prefix `cas`, multipart above 5 MiB in 5 MiB parts) and writes its
    /// Ready condition as the backend controller would.
    async fn backend(&self, b: B<'_>) {
        let api: Api<StorageBackend> = Api::namespaced(self.client.clone(), NS);
        let backend: StorageBackend = serde_json::from_value(json!({
            "apiVersion": "castellan.io/v1alpha1",
            "kind": "StorageBackend",
            "metadata": {"name": b.name, "namespace": NS},
            "spec": {
                "s3": {
                    "bucket": b.bucket,
                    "endpoint": b.endpoint.clone().unwrap_or_else(|| self.s3.endpoint()),
                    "forcePathStyle": true,
                    "keyPrefix": "cas",
                    "credentialsSecretRef": {"name": b.creds},
                    "multipartThresholdBytes": 5 * MIB,
                    "multipartChunkBytes": 5 * MIB,
                },
                "default": b.default,
                "fallback": b.fallback,
                "trust": b.trust,
            },
        }))
        .unwrap();
        api.create(&PostParams::default(), &backend)
            .await
            .expect("create backend");
        self.set_ready(b.name, b.ready).await;
    }

    async fn set_ready(&self, name: &str, ready: bool) {
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
        Api::<StorageBackend>::namespaced(self.client.clone(), NS)
            .patch_status(
                name,
                &PatchParams::apply("test-backend-controller").force(),
                &Patch::Apply(&patch),
            )
            .await
            .expect("backend status");
    }

    /// Sets `status.backend` of a mapping, as the mapping controller would after a move.
    async fn serve_from(&self, mapping: &str, backend: &str) {
        let patch = json!({
            "apiVersion": "castellan.io/v1alpha1",
            "kind": "ArtifactMapping",
            "status": {"backend": backend},
        });
        Api::<ArtifactMapping>::namespaced(self.client.clone(), NS)
            .patch_status(
                mapping,
                &PatchParams::apply("test-mapping-controller").force(),
                &Patch::Apply(&patch),
            )
            .await
            .expect("mapping status");
    }

    async fn mappings(&self) -> Vec<ArtifactMapping> {
        Api::<ArtifactMapping>::namespaced(self.client.clone(), NS)
            .list(&ListParams::default())
            .await
            .expect("list mappings")
            .items
    }

    async fn put(&self, data: &[u8]) -> castellan::transfer::PutOutcome {
        put_bytes(
            &self.client,
            NS,
            Bytes::copy_from_slice(data),
            &PutOptions::default(),
        )
        .await
        .expect("put")
    }

    async fn get(
        &self,
        digest: &Digest,
        dest: &Path,
    ) -> Result<castellan::transfer::GetOutcome, TransferError> {
        get_to_path(&self.client, NS, digest, dest, &GetOptions::default()).await
    }
}

/// Bytes that differ per seed and position (no repeating 256-byte pattern).
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

fn key(digest: &Digest) -> String {
    layout::key_for("cas", digest)
}

/// The names in `dir`, sorted: proves no temporary file was left behind.
fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn reasons(err: &TransferError) -> Vec<(String, &'static str)> {
    match err {
        TransferError::NoVerifiedReplica { attempts, .. } => attempts
            .iter()
            .map(|a| (a.backend.clone(), a.result.reason()))
            .collect(),
        other => panic!("expected NoVerifiedReplica, got {other}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn put_then_get_round_trips_small_and_multipart_blobs() {
    let env = setup().await;
    env.backend(B::new("a", "shared", "a-creds").default())
        .await;
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("a small blob is one PUT", 1000, Algorithm::Sha256, None),
        (
            "a 12 MiB blob is three 5 MiB parts",
            12 * MIB,
            Algorithm::Sha256,
            Some(3),
        ),
        ("sha512 is honoured", 70_000, Algorithm::Sha512, None),
    ];
    for (i, (case, len, algorithm, parts)) in cases.into_iter().enumerate() {
        let data = blob(len, i as u64 + 1);
        let src = dir.path().join(format!("src-{i}"));
        std::fs::write(&src, &data).unwrap();
        let opts = PutOptions {
            algorithm,
            ..PutOptions::default()
        };
        let put = put_file(&env.client, NS, &src, &opts).await.expect(case);
        assert_eq!(put.digest, Digest::of_bytes(algorithm, &data), "{case}");
        assert_eq!(
            (put.size, put.backend.as_str()),
            (len as u64, "a"),
            "{case}"
        );
        assert_eq!(put.parts, parts, "{case}");
        assert_eq!(put.key, key(&put.digest), "{case}");
        assert_eq!(put.mapping, put.digest.object_name(), "{case}");
        assert!(!put.object_existed && !put.mapping_existed, "{case}");

        let m = Api::<ArtifactMapping>::namespaced(env.client.clone(), NS)
            .get(&put.mapping)
            .await
            .expect(case);
        assert_eq!(m.spec.digest, put.digest.to_string(), "{case}");
        assert_eq!(m.spec.size, Some(len as i64), "{case}");
        assert_eq!(m.spec.backend_ref.name, "a", "{case}");

        let out = dir.path().join(format!("out-{i}"));
        let got = env.get(&put.digest, &out).await.expect(case);
        assert_eq!(
            std::fs::read(&out).unwrap(),
            data,
            "{case}: the bytes round-trip"
        );
        assert_eq!(
            (got.backend.as_str(), got.bytes),
            ("a", len as u64),
            "{case}"
        );
        assert_eq!(got.found_by, FoundBy::Name, "{case}");
        assert_eq!(got.attempts.len(), 1, "{case}: {:?}", got.attempts);
    }
    let names = listing(dir.path());
    assert!(
        names
            .iter()
            .all(|n| n.starts_with("src-") || n.starts_with("out-")),
        "no temporary file is left: {names:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn putting_the_same_bytes_twice_changes_nothing() {
    let env = setup().await;
    env.backend(B::new("a", "shared", "a-creds").default())
        .await;
    let data = blob(4096, 7);
    let first = env.put(&data).await;
    let before = env.mappings().await;
    let second = env.put(&data).await;
    assert!(!first.object_existed && !first.mapping_existed);
    assert!(second.object_existed, "the object was already there");
    assert!(second.mapping_existed, "the mapping was already there");
    assert_eq!(second.uploaded_bytes, 0);
    assert_eq!((second.mapping, second.key), (first.mapping, first.key));
    let after = env.mappings().await;
    assert_eq!(after.len(), 1, "one digest, one mapping");
    assert_eq!(
        after[0].resource_version(),
        before[0].resource_version(),
        "the mapping was not written again"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_default_that_is_not_ready_hands_writes_to_the_fallback() {
    let env = setup().await;
    env.backend(B::new("a", "shared", "a-creds").default().not_ready())
        .await;
    env.backend(B::new("b", "corrupt", "b-creds").fallback())
        .await;
    let data = blob(2000, 3);
    let put = env.put(&data).await;
    assert_eq!(put.backend, "b");
    assert_eq!(put.declared_backend, "b");
    let m = &env.mappings().await[0];
    assert_eq!(m.spec.backend_ref.name, "b");

    // Once the default is Ready again, a re-put stores the bytes there too but keeps the
    // mapping's provenance.
    env.set_ready("a", true).await;
    let again = env.put(&data).await;
    assert_eq!(again.backend, "a");
    assert!(!again.object_existed, "the default did not hold it yet");
    assert_eq!(again.declared_backend, "b", "backendRef is never rewritten");
    assert_eq!(env.mappings().await[0].spec.backend_ref.name, "b");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_writable_backend_put_fails_naming_each_and_writes_nothing() {
    let env = setup().await;
    env.backend(B::new("a", "shared", "a-creds").default().not_ready())
        .await;
    env.backend(
        B::new("b", "shared", "b-creds")
            .fallback()
            .trust("ReadOnly"),
    )
    .await;
    env.backend(B::new("q", "shared", "b-creds").trust("Quarantined"))
        .await;
    let data = blob(100, 9);
    let err = put_bytes(
        &env.client,
        NS,
        Bytes::from(data.clone()),
        &PutOptions::default(),
    )
    .await
    .expect_err("nothing is writable");
    let text = err.to_string();
    assert!(
        matches!(err, TransferError::NoWritableBackend { .. }),
        "{text}"
    );
    for part in [
        "namespace org",
        "default backend a is not Ready (InvalidAccessKeyId",
        "fallback backend b is ReadOnly",
    ] {
        assert!(text.contains(part), "{text:?} lacks {part:?}");
    }
    assert!(env.mappings().await.is_empty(), "no mapping without bytes");

    // A conventional name taken by other content is refused before any byte is sent.
    env.set_ready("a", true).await;
    let digest = Digest::of_bytes(Algorithm::Sha256, &data);
    let squatter: ArtifactMapping = serde_json::from_value(json!({
        "apiVersion": "castellan.io/v1alpha1",
        "kind": "ArtifactMapping",
        "metadata": {"name": digest.object_name(), "namespace": NS},
        "spec": {"digest": Digest::of_bytes(Algorithm::Sha256, b"other").to_string(), "backendRef": {"name": "b"}},
    }))
    .unwrap();
    Api::<ArtifactMapping>::namespaced(env.client.clone(), NS)
        .create(&PostParams::default(), &squatter)
        .await
        .unwrap();
    let err = put_bytes(&env.client, NS, Bytes::from(data), &PutOptions::default())
        .await
        .expect_err("conflict");
    assert!(
        matches!(err, TransferError::MappingConflict { .. }),
        "{err}"
    );
    assert!(
        !env.s3.data_dir().join("shared").join(key(&digest)).exists(),
        "nothing was uploaded"
    );
    let kept = &env.mappings().await[0];
    assert_eq!(
        kept.spec.digest, squatter.spec.digest,
        "the other mapping is untouched"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_falls_back_when_the_serving_backends_keys_are_revoked() {
    let env = setup().await;
    env.backend(B::new("a", "shared", "a-creds").default())
        .await;
    env.backend(B::new("b", "shared", "b-creds")).await;
    let data = blob(300_000, 11);
    let put = env.put(&data).await;
    env.serve_from(&put.mapping, "a").await;
    assert!(env.s3.keys().revoke(KEY_A.0));

    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let got = env.get(&put.digest, &out).await.expect("served by b");
    assert_eq!(std::fs::read(&out).unwrap(), data);
    assert_eq!(got.backend, "b");
    let tried: Vec<_> = got
        .attempts
        .iter()
        .map(|a| (a.backend.as_str(), a.result.reason()))
        .collect();
    assert_eq!(
        tried,
        vec![("a", "InvalidAccessKeyId"), ("b", "DigestVerified")]
    );
    let text = format!("{:?}", got.attempts);
    assert!(!text.contains(KEY_A.1), "no secret in attempts: {text}");
    assert_eq!(listing(dir.path()), vec!["out"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_replica_is_skipped_for_the_correct_one() {
    let env = setup().await;
    env.backend(B::new("a", "shared", "a-creds").default())
        .await;
    env.backend(B::new("c", "corrupt", "b-creds")).await;
    let data = blob(200_000, 5);
    let put = env.put(&data).await;
    let mut wrong = data.clone();
    wrong[100_000] ^= 0xff;
    env.s3
        .write_object_file("corrupt", &put.key, &wrong)
        .unwrap();
    env.serve_from(&put.mapping, "c").await;

    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let got = env.get(&put.digest, &out).await.expect("served by a");
    assert_eq!(std::fs::read(&out).unwrap(), data, "the correct bytes");
    assert_eq!(got.backend, "a");
    assert!(
        matches!(&got.attempts[0].result, AttemptResult::Read { verdict: Verdict::DigestMismatch { actual }, .. } if *actual == Digest::of_bytes(Algorithm::Sha256, &wrong)),
        "{:?}",
        got.attempts
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_every_replica_is_corrupt_nothing_is_written() {
    let env = setup().await;
    env.backend(B::new("a", "shared", "a-creds").default())
        .await;
    env.backend(B::new("c", "corrupt", "b-creds")).await;
    env.backend(B::new("q", "shared", "b-creds").trust("Quarantined"))
        .await;
    let data = blob(150_000, 13);
    let put = env.put(&data).await;
    let mut wrong = data.clone();
    wrong[0] ^= 1;
    env.s3
        .write_object_file("shared", &put.key, &wrong)
        .unwrap();
    env.s3
        .write_object_file("corrupt", &put.key, &wrong[..1000])
        .unwrap();

    let dir = tempfile::tempdir().unwrap();
    let existing = dir.path().join("existing");
    std::fs::write(&existing, b"the previous version").unwrap();
    let err = env
        .get(&put.digest, &existing)
        .await
        .expect_err("no good replica");
    assert_eq!(
        reasons(&err),
        vec![
            ("a".to_owned(), "DigestMismatch"),
            ("c".to_owned(), "SizeMismatch"),
            ("q".to_owned(), "BackendQuarantined"),
        ]
    );
    assert!(err.is_mismatch_everywhere(), "{err}");
    let text = err.to_string();
    assert!(
        text.contains("a: DigestMismatch") && text.contains("c: SizeMismatch"),
        "{text}"
    );
    assert_eq!(
        std::fs::read(&existing).unwrap(),
        b"the previous version",
        "untouched"
    );

    let fresh = dir.path().join("fresh");
    env.get(&put.digest, &fresh)
        .await
        .expect_err("still no good replica");
    assert!(!fresh.exists(), "no file at the destination");
    assert_eq!(
        listing(dir.path()),
        vec!["existing"],
        "no temporary file left"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_cut_mid_stream_moves_on_and_never_writes_partial_bytes() {
    let env = setup().await;
    let cutting = S3Server::start(ServerOptions {
        buckets: vec!["mirror".into()],
        keys: vec![(KEY_B.0.into(), KEY_B.1.into())],
        ..ServerOptions::default()
    })
    .await
    .expect("second S3 server");
    env.backend(B::new("a", "shared", "a-creds").default())
        .await;
    env.backend(B::new("x", "mirror", "b-creds").on(&cutting))
        .await;
    let data = blob(3 * MIB, 17);
    let put = env.put(&data).await;
    cutting
        .write_object_file("mirror", &put.key, &data)
        .unwrap();
    env.serve_from(&put.mapping, "x").await;
    cutting.faults().cut_get_bodies_after(Some(256 * 1024));

    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let got = env.get(&put.digest, &out).await.expect("served by a");
    assert_eq!(got.backend, "a");
    assert_eq!(std::fs::read(&out).unwrap(), data);
    match &got.attempts[0].result {
        AttemptResult::Read {
            verdict: Verdict::Truncated { expected, received },
            ..
        } => {
            assert_eq!(*expected, data.len() as u64);
            assert!(*received < *expected, "{received}");
        }
        // A cut can also surface as the connection failing before the first byte.
        other => assert_eq!(other.reason(), "BodyInterrupted", "{other:?}"),
    }

    // With the only good replica gone too, the get fails and leaves nothing behind.
    assert!(env.s3.keys().revoke(KEY_A.0));
    let second = dir.path().join("second");
    let err = env
        .get(&put.digest, &second)
        .await
        .expect_err("no good replica");
    let tried = reasons(&err);
    assert_eq!(tried[0].0, "x");
    assert_eq!(tried[1], ("a".to_owned(), "InvalidAccessKeyId"));
    assert!(
        !err.is_mismatch_everywhere(),
        "a cut says nothing about the content"
    );
    assert!(!second.exists());
    assert_eq!(
        listing(dir.path()),
        vec!["out"],
        "no partial or temporary file"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mapping_with_another_name_is_found_by_its_digest() {
    let env = setup().await;
    env.backend(B::new("a", "shared", "a-creds").default())
        .await;
    let data = blob(5000, 21);
    let put = env.put(&data).await;
    let api: Api<ArtifactMapping> = Api::namespaced(env.client.clone(), NS);
    api.delete(&put.mapping, &DeleteParams::default())
        .await
        .unwrap();
    let renamed: ArtifactMapping = serde_json::from_value(json!({
        "apiVersion": "castellan.io/v1alpha1",
        "kind": "ArtifactMapping",
        "metadata": {"name": "release-1-2-3", "namespace": NS},
        "spec": {"digest": put.digest.to_string(), "size": data.len(), "backendRef": {"name": "a"}},
    }))
    .unwrap();
    api.create(&PostParams::default(), &renamed).await.unwrap();

    let dir = tempfile::tempdir().unwrap();
    let got = env
        .get(&put.digest, dir.path())
        .await
        .expect("found by digest");
    assert_eq!(got.found_by, FoundBy::DigestList);
    assert_eq!(got.mapping, "release-1-2-3");
    assert_eq!(
        got.path,
        dir.path().join(put.digest.object_name()),
        "a directory gets the conventional name"
    );
    assert_eq!(std::fs::read(&got.path).unwrap(), data);

    let unknown = Digest::of_bytes(Algorithm::Sha256, b"never stored");
    let err = env
        .get(&unknown, &dir.path().join("x"))
        .await
        .expect_err("unknown");
    assert!(
        matches!(err, TransferError::MappingNotFound { .. }),
        "{err}"
    );
}

/// Runs the real binary against the emulator; AWS credentials come only from the Secrets.
async fn castellan(env: &Env, args: &[&str], cwd: &Path) -> Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_castellan"))
        .args(args)
        .current_dir(cwd)
        .env("KUBECONFIG", env.api.kubeconfig_path())
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env_remove("AWS_SESSION_TOKEN")
        .output()
        .await
        .expect("run castellan")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_round_trips_and_exits_with_documented_codes() {
    let env = setup().await;
    env.backend(B::new("a", "shared", "a-creds").default())
        .await;
    let dir = tempfile::tempdir().unwrap();
    let data = blob(6 * MIB, 23);
    let src: PathBuf = dir.path().join("artifact.bin");
    std::fs::write(&src, &data).unwrap();
    let digest = Digest::of_bytes(Algorithm::Sha256, &data);

    let put = castellan(&env, &["put", "artifact.bin", "-n", NS], dir.path()).await;
    assert_eq!(put.status.code(), Some(0), "{}", text(&put.stderr));
    assert_eq!(
        text(&put.stdout).trim(),
        digest.to_string(),
        "the digest on stdout"
    );
    let summary = text(&put.stderr);
    assert!(
        summary.contains("uploaded to backend a") && summary.contains("2 parts"),
        "{summary}"
    );

    let d = digest.to_string();
    let get = castellan(&env, &["get", &d, "-n", NS, "-o", "copy.bin"], dir.path()).await;
    assert_eq!(get.status.code(), Some(0), "{}", text(&get.stderr));
    assert_eq!(text(&get.stdout).trim(), "copy.bin");
    assert_eq!(std::fs::read(dir.path().join("copy.bin")).unwrap(), data);
    assert!(
        text(&get.stderr).contains("verified from backend a"),
        "{}",
        text(&get.stderr)
    );

    let piped = castellan(&env, &["get", &d, "-n", NS, "-o", "-"], dir.path()).await;
    assert_eq!(piped.status.code(), Some(0), "{}", text(&piped.stderr));
    assert!(
        piped.stdout == data,
        "stdout carries exactly the verified bytes"
    );

    let unknown = Digest::of_bytes(Algorithm::Sha256, b"nope").to_string();
    let cases: Vec<(&str, Vec<&str>, i32, &str)> = vec![
        (
            "an unknown digest exits 4",
            vec!["get", &unknown, "-n", NS],
            4,
            "no ArtifactMapping",
        ),
        (
            "a malformed digest exits 2",
            vec!["get", "sha256:xyz", "-n", NS],
            2,
            "invalid value",
        ),
        (
            "a missing file exits 4",
            vec!["put", "missing.bin", "-n", NS],
            4,
            "no such file",
        ),
    ];
    for (name, args, code, says) in cases {
        let out = castellan(&env, &args, dir.path()).await;
        assert_eq!(
            out.status.code(),
            Some(code),
            "{name}: {}",
            text(&out.stderr)
        );
        assert!(
            text(&out.stderr).contains(says),
            "{name}: {}",
            text(&out.stderr)
        );
    }

    // Every replica corrupt: exit 3, the destination untouched.
    let mut wrong = data.clone();
    wrong[1] ^= 1;
    env.s3
        .write_object_file("shared", &key(&digest), &wrong)
        .unwrap();
    let bad = castellan(&env, &["get", &d, "-n", NS, "-o", "copy.bin"], dir.path()).await;
    assert_eq!(bad.status.code(), Some(3), "{}", text(&bad.stderr));
    assert!(
        text(&bad.stderr).contains("a: DigestMismatch"),
        "{}",
        text(&bad.stderr)
    );
    assert_eq!(std::fs::read(dir.path().join("copy.bin")).unwrap(), data);

    // No writable backend: exit 1, naming it; never a secret in the output.
    env.set_ready("a", false).await;
    let refused = castellan(&env, &["put", "artifact.bin", "-n", NS], dir.path()).await;
    assert_eq!(refused.status.code(), Some(1), "{}", text(&refused.stderr));
    let stderr = text(&refused.stderr);
    assert!(
        stderr.contains("default backend a is not Ready"),
        "{stderr}"
    );
    for out in [&put, &get, &bad, &refused] {
        let all = format!("{}{}", text(&out.stderr), text(&out.stdout));
        assert!(
            !all.contains(KEY_A.1) && !all.contains("Signature="),
            "{all}"
        );
    }

    let help = castellan(&env, &["get", "--help"], dir.path()).await;
    assert!(text(&help.stdout).contains("3  digest mismatch everywhere"));
    let help = castellan(&env, &["put", "--help"], dir.path()).await;
    assert!(text(&help.stdout).contains("5  conflict"));
}

/// A TCP proxy to `upstream` that passes requests at once and answers slowly: after the first
/// MiB of responses, 16 KiB per 50 ms. A download through it takes long enough to interrupt.
async fn slow_proxy(upstream: std::net::SocketAddr) -> std::net::SocketAddr {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            tokio::spawn(async move {
                let Ok(server) = tokio::net::TcpStream::connect(upstream).await else {
                    return;
                };
                let (mut client_rx, mut client_tx) = client.into_split();
                let (mut server_rx, mut server_tx) = server.into_split();
                tokio::spawn(async move {
                    let _ = tokio::io::copy(&mut client_rx, &mut server_tx).await;
                });
                let mut buf = vec![0u8; 16 * 1024];
                let mut sent = 0usize;
                while let Ok(n) = server_rx.read(&mut buf).await {
                    if n == 0 || client_tx.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                    sent += n;
                    if sent > MIB {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                }
            });
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_get_leaves_no_partial_file_and_exits_130() {
    let env = setup().await;
    let proxy = slow_proxy(env.s3.addr()).await;
    let mut backend = B::new("a", "shared", "a-creds").default();
    backend.endpoint = Some(format!("http://{proxy}"));
    env.backend(backend).await;
    let dir = tempfile::tempdir().unwrap();
    let data = blob(24 * MIB, 31);
    std::fs::write(dir.path().join("artifact.bin"), &data).unwrap();
    let put = castellan(&env, &["put", "artifact.bin", "-n", NS], dir.path()).await;
    assert_eq!(put.status.code(), Some(0), "{}", text(&put.stderr));
    let digest = text(&put.stdout).trim().to_owned();

    let out = tempfile::tempdir().unwrap();
    let mut get = tokio::process::Command::new(env!("CARGO_BIN_EXE_castellan"))
        .args(["get", &digest, "-n", NS, "-o", "artifact.bin"])
        .current_dir(out.path())
        .env("KUBECONFIG", env.api.kubeconfig_path())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run castellan get");
    let partial = || {
        std::fs::read_dir(out.path())
            .unwrap()
            .filter_map(Result::ok)
            .filter(|e| e.file_name().to_string_lossy().ends_with(".part"))
            .filter_map(|e| e.metadata().ok())
            .map(|m| m.len())
            .next()
    };
    // Interrupt once bytes are on disk.
    while partial().is_none_or(|len| len == 0) {
        assert!(
            get.try_wait().unwrap().is_none(),
            "get ended before it could be interrupted"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let pid = get.id().expect("running").to_string();
    let kill = tokio::process::Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .await
        .unwrap();
    assert!(kill.success());
    let done = get.wait_with_output().await.unwrap();
    assert_eq!(done.status.code(), Some(130), "{}", text(&done.stderr));
    let left: Vec<_> = std::fs::read_dir(out.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(left.is_empty(), "nothing is left behind: {left:?}");
}
