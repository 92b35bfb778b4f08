//! The S3 store against a real in-process S3 server (s3s + s3s-fs) over loopback with SigV4:
//! every trait operation, credential failures classified as s3s reports them, a missing bucket,
//! a stopped server, 5xx answers, a body cut off mid-stream, a corrupt object, and the
//! credential-rotation scenario.

mod support;
use support::verify_object;

use std::sync::Arc;

use bytes::Bytes;
use castellan::digest::{Algorithm, Digest};
use castellan::storage::Verdict;
use castellan::storage::{
    layout, ByteRange, ErrorKind, ObjectStore, ProbeMode, PutBody, PutOptions, S3Config, S3Store,
    StaticCredentials, StorageError,
};
use castellan_s3server::{Fault, S3Server, ServerOptions};
use futures::StreamExt;

const BUCKET: &str = "artifacts";
const KEY_A: (&str, &str) = (
    "AKIDBACKENDA000000001",
    "secret-a-0123456789abcdefghijklmnop",
);
const KEY_B: (&str, &str) = (
    "AKIDBACKENDB000000002",
    "secret-b-0123456789abcdefghijklmnop",
);

async fn server() -> S3Server {
    S3Server::start(ServerOptions {
        buckets: vec![BUCKET.into()],
        keys: vec![
            (KEY_A.0.into(), KEY_A.1.into()),
            (KEY_B.0.into(), KEY_B.1.into()),
        ],
        ..ServerOptions::default()
    })
    .await
    .expect("s3s server starts")
}

fn config(server: &S3Server, key: (&str, &str), bucket: &str) -> S3Config {
    let mut c = S3Config::new(bucket);
    c.endpoint = Some(server.endpoint());
    c.force_path_style = true;
    c.key_prefix = "cas".into();
    c.credentials = Some(StaticCredentials {
        access_key_id: key.0.into(),
        secret_access_key: key.1.into(),
        session_token: None,
    });
    c.max_attempts = 1;
    c.operation_timeout = Some(std::time::Duration::from_secs(10));
    c
}

async fn store(server: &S3Server, key: (&str, &str)) -> S3Store {
    S3Store::new(config(server, key, BUCKET))
        .await
        .expect("valid config")
}

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| ((i * 31) as u8).wrapping_add(seed))
        .collect()
}

async fn read_all(store: &dyn ObjectStore, key: &str, range: Option<ByteRange>) -> Vec<u8> {
    let mut got = store.get(key, range).await.expect("get");
    let mut out = Vec::new();
    while let Some(chunk) = got.body.next().await {
        out.extend_from_slice(&chunk.expect("body chunk"));
    }
    out
}

/// Messages go to Events and logs: never a secret, never a signature.
fn assert_redacted(e: &StorageError) {
    let text = format!("{e} {e:?}");
    for secret in [KEY_A.1, KEY_B.1, "wrong-secret-value-zzzz"] {
        assert!(!text.contains(secret), "secret leaked: {text}");
    }
    assert!(
        !text.contains("X-Amz-Signature"),
        "signature leaked: {text}"
    );
    assert!(
        !text.to_ascii_lowercase().contains("signature="),
        "signature leaked: {text}"
    );
}

#[tokio::test]
async fn every_operation_works_with_valid_credentials() {
    let server = server().await;
    let s = store(&server, KEY_A).await;
    let store: Arc<dyn ObjectStore> = Arc::new(s);

    let report = store
        .probe(ProbeMode::Read, None)
        .await
        .expect("read probe");
    assert_eq!(
        report.steps.iter().map(|s| s.operation).collect::<Vec<_>>(),
        ["ListObjectsV2", "HeadBucket"]
    );

    let data = pattern(100_000, 7);
    let digest = Digest::of_bytes(Algorithm::Sha256, &data);
    let key = layout::key_for(store.key_prefix(), &digest);
    let put = store
        .put(
            &key,
            PutBody::Bytes(Bytes::from(data.clone())),
            data.len() as u64,
            &PutOptions::default(),
        )
        .await
        .expect("put");
    assert_eq!(put.parts, None, "small objects are a single PUT");

    let info = store
        .head(&key)
        .await
        .expect("head")
        .expect("object exists");
    assert_eq!(info.size, data.len() as u64);
    assert!(info.etag.is_some());

    assert_eq!(read_all(store.as_ref(), &key, None).await, data);
    let range = ByteRange {
        start: 10,
        end: Some(19),
    };
    let got = store.get(&key, Some(range)).await.expect("range get");
    assert_eq!(got.content_length, Some(10));
    assert_eq!(got.total_size, Some(data.len() as u64));
    drop(got);
    assert_eq!(
        read_all(store.as_ref(), &key, Some(range)).await,
        &data[10..20]
    );
    let tail = ByteRange {
        start: 99_990,
        end: None,
    };
    assert_eq!(
        read_all(store.as_ref(), &key, Some(tail)).await,
        &data[99_990..]
    );

    let report = store
        .probe(ProbeMode::ReadWrite, Some(&key))
        .await
        .expect("read-write probe");
    let ops: Vec<_> = report.steps.iter().map(|s| s.operation).collect();
    assert_eq!(
        ops,
        [
            "ListObjectsV2",
            "HeadBucket",
            "HeadObject",
            "PutObject",
            "GetObject"
        ]
    );
    let canaries = store
        .list(&layout::join("cas", layout::PROBE_DIR), None)
        .await
        .expect("list canaries");
    assert!(
        canaries.objects.is_empty(),
        "the canary is deleted: {canaries:?}"
    );

    // A second object, from a stream, to list two.
    let other = pattern(1000, 9);
    let other_digest = Digest::of_bytes(Algorithm::Sha256, &other);
    let other_key = layout::key_for("cas", &other_digest);
    let stream = futures::stream::iter(
        other
            .chunks(300)
            .map(|c| Ok(Bytes::copy_from_slice(c)))
            .collect::<Vec<_>>(),
    );
    store
        .put(
            &other_key,
            PutBody::Stream(stream.boxed()),
            other.len() as u64,
            &PutOptions::default(),
        )
        .await
        .expect("put from stream");
    let page = store.list("cas/sha256/", None).await.expect("list");
    let mut keys: Vec<_> = page.objects.iter().map(|o| o.key.clone()).collect();
    keys.sort();
    let mut want = vec![key.clone(), other_key.clone()];
    want.sort();
    assert_eq!(keys, want);
    assert_eq!(page.next_continuation_token, None);
    for o in &page.objects {
        assert!(
            layout::digest_for("cas", &o.key).is_some(),
            "layout keys map back"
        );
    }

    let report = verify_object(store.as_ref(), &key, &digest, Some(data.len() as u64))
        .await
        .expect("verify");
    assert!(matches!(report.verdict, Verdict::Verified { bytes } if bytes == data.len() as u64));

    store.delete(&key).await.expect("delete");
    assert_eq!(store.head(&key).await.expect("head after delete"), None);
    store
        .delete(&key)
        .await
        .expect("deleting a missing key succeeds");
    let missing = store
        .get(&key, None)
        .await
        .expect_err("get of a missing key");
    assert_eq!(missing.kind(), ErrorKind::NotFound);
    assert!(!missing.is_terminal());
    let missing = store
        .probe(ProbeMode::Read, Some(&key))
        .await
        .expect_err("a missing known object fails the probe");
    assert_eq!(missing.kind(), ErrorKind::NotFound);
}

#[tokio::test]
async fn large_objects_are_uploaded_in_parts_from_files_and_streams() {
    let server = server().await;
    let mut c = config(&server, KEY_A, BUCKET);
    c.multipart_threshold_bytes = 5 * 1024 * 1024;
    c.multipart_chunk_bytes = 5 * 1024 * 1024;
    let store = S3Store::new(c).await.unwrap();

    let data = pattern(12 * 1024 * 1024 + 123, 3);
    let digest = Digest::of_bytes(Algorithm::Sha256, &data);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("blob");
    std::fs::write(&path, &data).unwrap();

    let key = layout::key_for("cas", &digest);
    let out = store
        .put(
            &key,
            PutBody::Path(path.clone()),
            data.len() as u64,
            &PutOptions::default(),
        )
        .await
        .expect("multipart put from file");
    assert_eq!(out.parts, Some(3), "12 MiB in 5 MiB parts is 3 parts");
    let report = verify_object(&store, &key, &digest, Some(data.len() as u64))
        .await
        .unwrap();
    assert!(report.verdict.is_verified(), "{:?}", report.verdict);

    let key2 = "cas/streamed".to_owned();
    let chunks: Vec<std::io::Result<Bytes>> = data
        .chunks(1 << 20)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    let out = store
        .put(
            &key2,
            PutBody::Stream(futures::stream::iter(chunks).boxed()),
            data.len() as u64,
            &PutOptions::default(),
        )
        .await
        .expect("multipart put from stream");
    assert_eq!(out.parts, Some(3));
    assert_eq!(read_all(&store, &key2, None).await, data);

    // A body shorter than declared fails, and the multipart upload is aborted.
    let short: Vec<std::io::Result<Bytes>> = vec![Ok(Bytes::from(vec![0u8; 6 * 1024 * 1024]))];
    let err = store
        .put(
            "cas/short",
            PutBody::Stream(futures::stream::iter(short).boxed()),
            11 * 1024 * 1024,
            &PutOptions::default(),
        )
        .await
        .expect_err("a short body fails");
    assert_eq!(
        err.kind(),
        ErrorKind::Backend(castellan::api::reasons::BackendReason::InvalidSpec)
    );
    assert_eq!(
        store.head("cas/short").await.unwrap(),
        None,
        "nothing was completed"
    );
}

#[tokio::test]
async fn credential_failures_are_terminal_with_the_right_reason() {
    let server = server().await;
    let unknown = store(&server, ("AKIDNOBODY0000000000", "whatever-secret-0000")).await;
    let wrong_secret = store(&server, (KEY_A.0, "wrong-secret-value-zzzz")).await;

    let cases: Vec<(&str, &S3Store, ErrorKind, &str)> = vec![
        (
            "an unknown key (s3s: NotSignedUp) is InvalidAccessKeyId",
            &unknown,
            ErrorKind::Backend(castellan::api::reasons::BackendReason::InvalidAccessKeyId),
            "InvalidAccessKeyId",
        ),
        (
            "a wrong secret is SignatureDoesNotMatch",
            &wrong_secret,
            ErrorKind::Backend(castellan::api::reasons::BackendReason::SignatureDoesNotMatch),
            "SignatureDoesNotMatch",
        ),
    ];
    for (name, store, kind, reason) in cases {
        let e = store.probe(ProbeMode::Read, None).await.expect_err(name);
        assert_eq!(e.kind(), kind, "{name}: {e}");
        assert!(e.is_terminal(), "{name}");
        assert_eq!(
            e.backend_reason()
                .map(castellan::api::reasons::BackendReason::as_str),
            Some(reason),
            "{name}"
        );
        assert_redacted(&e);
        // Object calls report the same classification (GET carries an error body).
        let e = store.get("cas/x", None).await.expect_err(name);
        assert_eq!(e.kind(), kind, "{name} on GET: {e}");
        assert_redacted(&e);
    }

    // Revoked while the server runs.
    let a = store(&server, KEY_A).await;
    a.probe(ProbeMode::Read, None)
        .await
        .expect("valid before revocation");
    assert!(server.keys().revoke(KEY_A.0));
    let e = a
        .probe(ProbeMode::Read, None)
        .await
        .expect_err("revoked key");
    assert_eq!(
        e.kind(),
        ErrorKind::Backend(castellan::api::reasons::BackendReason::InvalidAccessKeyId),
        "{e}"
    );
    assert!(e.is_terminal());
    assert_redacted(&e);
    server.keys().add(KEY_A.0, KEY_A.1);
    a.probe(ProbeMode::Read, None)
        .await
        .expect("valid again after re-adding the key");
}

#[tokio::test]
async fn a_missing_bucket_is_terminal_no_such_bucket() {
    let server = server().await;
    let store = S3Store::new(config(&server, KEY_A, "no-such-bucket"))
        .await
        .unwrap();
    let e = store
        .probe(ProbeMode::Read, None)
        .await
        .expect_err("missing bucket");
    assert_eq!(
        e.kind(),
        ErrorKind::Backend(castellan::api::reasons::BackendReason::NoSuchBucket),
        "{e}"
    );
    assert!(e.is_terminal());
    assert_eq!(
        e.backend_reason()
            .map(castellan::api::reasons::BackendReason::as_str),
        Some("NoSuchBucket")
    );
}

#[tokio::test]
async fn a_stopped_server_is_unreachable_and_transient() {
    let server = server().await;
    let store = store(&server, KEY_A).await;
    store.probe(ProbeMode::Read, None).await.expect("running");
    server.stop().await;
    let e = store
        .probe(ProbeMode::Read, None)
        .await
        .expect_err("stopped");
    assert_eq!(
        e.kind(),
        ErrorKind::Backend(castellan::api::reasons::BackendReason::EndpointUnreachable),
        "{e}"
    );
    assert!(e.is_transient());
    assert_redacted(&e);
    server.restart().await.expect("restart on the same port");
    store
        .probe(ProbeMode::Read, None)
        .await
        .expect("reachable again");
}

#[tokio::test]
async fn server_errors_and_throttling_are_transient() {
    let server = server().await;
    let store = store(&server, KEY_A).await;

    let cases = [
        (
            "500 InternalError is ServerError",
            Fault::InternalError,
            ErrorKind::Backend(castellan::api::reasons::BackendReason::ServerError),
            "ServerError",
        ),
        (
            "503 SlowDown is Throttled",
            Fault::SlowDown,
            ErrorKind::Backend(castellan::api::reasons::BackendReason::Throttled),
            "Throttled",
        ),
        (
            "503 ServiceUnavailable is ServerError",
            Fault::ServiceUnavailable,
            ErrorKind::Backend(castellan::api::reasons::BackendReason::ServerError),
            "ServerError",
        ),
    ];
    for (name, fault, kind, reason) in cases {
        server.faults().fail_next(1, fault);
        let e = store.probe(ProbeMode::Read, None).await.expect_err(name);
        assert_eq!(e.kind(), kind, "{name}: {e}");
        assert!(e.is_transient(), "{name}");
        assert_eq!(
            e.backend_reason()
                .map(castellan::api::reasons::BackendReason::as_str),
            Some(reason),
            "{name}"
        );
        store
            .probe(ProbeMode::Read, None)
            .await
            .expect("the fault was for one request only");
    }

    // With retries enabled the SDK rides over a single transient failure.
    let mut c = config(&server, KEY_A, BUCKET);
    c.max_attempts = 3;
    let retrying = S3Store::new(c).await.unwrap();
    server.faults().fail_next(1, Fault::SlowDown);
    retrying
        .probe(ProbeMode::Read, None)
        .await
        .expect("retried past one SlowDown");
    // But not over a persistent one.
    server.faults().fail_fraction(1.0, Fault::InternalError);
    let e = retrying
        .probe(ProbeMode::Read, None)
        .await
        .expect_err("always failing");
    assert_eq!(
        e.kind(),
        ErrorKind::Backend(castellan::api::reasons::BackendReason::ServerError)
    );
    server.faults().clear();
}

#[tokio::test]
async fn a_body_cut_off_mid_stream_is_truncated_never_a_mismatch() {
    let server = server().await;
    let store = store(&server, KEY_A).await;
    let data = pattern(3 * 1024 * 1024, 1);
    let digest = Digest::of_bytes(Algorithm::Sha256, &data);
    let key = layout::key_for("cas", &digest);
    store
        .put(
            &key,
            PutBody::Bytes(Bytes::from(data.clone())),
            data.len() as u64,
            &PutOptions::default(),
        )
        .await
        .unwrap();

    server.faults().cut_get_bodies_after(Some(1_000_000));
    let report = verify_object(&store, &key, &digest, Some(data.len() as u64))
        .await
        .expect("headers arrive");
    match report.verdict {
        Verdict::Truncated { expected, received } => {
            assert_eq!(expected, data.len() as u64);
            assert!(received <= 1_000_000, "received {received}");
        }
        other => panic!("expected Truncated, got {other:?}"),
    }
    // Also without a declared size: the server's Content-Length is the expectation.
    let report = verify_object(&store, &key, &digest, None).await.unwrap();
    assert_eq!(report.verdict.label(), "Truncated", "{:?}", report.verdict);

    server.faults().clear();
    let report = verify_object(&store, &key, &digest, None).await.unwrap();
    assert!(report.verdict.is_verified(), "{:?}", report.verdict);
}

#[tokio::test]
async fn an_object_whose_bytes_differ_from_its_digest_is_a_mismatch() {
    let server = server().await;
    let store = store(&server, KEY_A).await;
    let good = pattern(500_000, 4);
    let digest = Digest::of_bytes(Algorithm::Sha256, &good);
    let key = layout::key_for("cas", &digest);
    let mut corrupt = good.clone();
    corrupt[250_000] ^= 0xff;
    store
        .put(
            &key,
            PutBody::Bytes(Bytes::from(corrupt.clone())),
            corrupt.len() as u64,
            &PutOptions::default(),
        )
        .await
        .unwrap();
    let report = verify_object(&store, &key, &digest, Some(good.len() as u64))
        .await
        .unwrap();
    match report.verdict {
        Verdict::DigestMismatch { actual } => {
            assert_eq!(actual, Digest::of_bytes(Algorithm::Sha256, &corrupt))
        }
        other => panic!("expected DigestMismatch, got {other:?}"),
    }
    assert_eq!(report.bytes, good.len() as u64);

    let report = verify_object(&store, &key, &digest, Some(42))
        .await
        .unwrap();
    assert!(
        matches!(report.verdict, Verdict::SizeMismatch { expected: 42, actual } if actual == good.len() as u64),
        "a declared size is checked before downloading: {:?}",
        report.verdict
    );
    assert_eq!(report.bytes, 0);
}

#[tokio::test]
async fn after_rotation_the_revoked_backend_fails_and_the_other_still_verifies() {
    let server = server().await;
    let backend_a: Arc<dyn ObjectStore> = Arc::new(store(&server, KEY_A).await);
    let backend_b: Arc<dyn ObjectStore> = Arc::new(store(&server, KEY_B).await);

    let data = pattern(2 * 1024 * 1024, 5);
    let digest = Digest::of_bytes(Algorithm::Sha256, &data);
    let key = layout::key_for(backend_a.key_prefix(), &digest);
    backend_a
        .put(
            &key,
            PutBody::Bytes(Bytes::from(data.clone())),
            data.len() as u64,
            &PutOptions::default(),
        )
        .await
        .expect("written through backend A");

    server.keys().revoke(KEY_A.0);

    let e = backend_a
        .probe(ProbeMode::Read, Some(&key))
        .await
        .expect_err("A is revoked");
    assert_eq!(
        e.kind(),
        ErrorKind::Backend(castellan::api::reasons::BackendReason::InvalidAccessKeyId)
    );
    assert!(e.is_terminal());
    let e = verify_object(backend_a.as_ref(), &key, &digest, Some(data.len() as u64))
        .await
        .expect_err("A cannot read");
    assert!(e.is_terminal(), "{e}");

    backend_b
        .probe(ProbeMode::Read, Some(&key))
        .await
        .expect("B is healthy");
    let report = verify_object(backend_b.as_ref(), &key, &digest, Some(data.len() as u64))
        .await
        .expect("B reads the same object");
    assert!(report.verdict.is_verified(), "{:?}", report.verdict);
    assert_eq!(report.bytes, data.len() as u64);
}

#[tokio::test]
async fn two_servers_on_one_data_directory_serve_the_same_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let opts = |key: (&str, &str)| ServerOptions {
        data_dir: Some(dir.path().to_path_buf()),
        buckets: vec![BUCKET.into()],
        keys: vec![(key.0.into(), key.1.into())],
        ..ServerOptions::default()
    };
    let one = S3Server::start(opts(KEY_A)).await.unwrap();
    let two = S3Server::start(opts(KEY_B)).await.unwrap();
    let a = store(&one, KEY_A).await;
    let b = store(&two, KEY_B).await;
    let data = pattern(10_000, 2);
    let digest = Digest::of_bytes(Algorithm::Sha256, &data);
    let key = layout::key_for("cas", &digest);
    a.put(
        &key,
        PutBody::Bytes(Bytes::from(data.clone())),
        data.len() as u64,
        &PutOptions::default(),
    )
    .await
    .unwrap();
    let report = verify_object(&b, &key, &digest, None).await.unwrap();
    assert!(report.verdict.is_verified());
    let e = store(&two, KEY_A)
        .await
        .probe(ProbeMode::Read, None)
        .await
        .expect_err("server two does not know key A");
    assert_eq!(
        e.kind(),
        ErrorKind::Backend(castellan::api::reasons::BackendReason::InvalidAccessKeyId)
    );
}
