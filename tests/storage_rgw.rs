//! The S3 store against a real Ceph RGW 16 (one-node in-memory cluster started by
//! `e2e/rgw/start`) over loopback with SigV4: every trait operation with valid credentials
//! (including single PUTs from files and multipart uploads, which RGW rejects when the SDK sends
//! its default aws-chunked trailer checksums), listing across pages, digest verification (match
//! and mismatch), and failures classified as RGW reports them: unknown key, wrong secret, missing
//! bucket, a key removed while running (`radosgw-admin key rm`), a suspended user
//! (`radosgw-admin user suspend`), and the rotation scenario (two keys on one bucket, one removed,
//! the other still reads).
//!
//! Runs only when `CASTELLAN_RGW_ENV` names the env file `e2e/rgw/start` wrote; otherwise every
//! test prints a `NOT RUN` line and returns (it proves nothing then). When the variable is set,
//! an unreadable file or an unreachable gateway fails every test. `.ci/run` starts RGW and sets it.
//!
//! Every test works under its own key prefix and creates the keys and users it revokes or
//! suspends, so the tests run in parallel and the env file's K1/K2 stay valid for the next run.

mod support;
use support::verify_object;

use std::collections::{BTreeSet, HashMap};
use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::time::Duration;

use bytes::Bytes;
use castellan::digest::{Algorithm, Digest};
use castellan::storage::Verdict;
use castellan::storage::{
    layout, ByteRange, ErrorKind, ObjectStore, ProbeMode, PutBody, PutOptions, S3Config, S3Store,
    StaticCredentials, StorageError,
};
use futures::StreamExt;

const ENV_VAR: &str = "CASTELLAN_RGW_ENV";

/// What `e2e/rgw/start` wrote.
struct Rgw {
    endpoint: String,
    bucket: String,
    uid: String,
    k1: (String, String),
    k2: (String, String),
    ceph_conf: String,
}

/// The running RGW, or `None` (after printing why) when `CASTELLAN_RGW_ENV` is not set.
/// Panics when it is set but the file or the gateway is unusable: CI must not pass then.
fn rgw(test: &str) -> Option<Rgw> {
    let Some(path) = std::env::var_os(ENV_VAR) else {
        // libtest captures eprintln! of passing tests: say it once where it is always seen.
        static ONCE: std::sync::Once = std::sync::Once::new();
        ONCE.call_once(|| {
            use std::io::Write as _;
            let _ = writeln!(
                std::io::stderr(),
                "storage_rgw: NOT RUN: {ENV_VAR} is not set, so no test of this file talked to \
                 Ceph RGW (run e2e/rgw/start and set {ENV_VAR} to the env file it prints)"
            );
        });
        eprintln!(
            "storage_rgw::{test}: NOT RUN (passes vacuously): {ENV_VAR} is not set; \
             start Ceph RGW with e2e/rgw/start and point {ENV_VAR} at the env file it prints"
        );
        return None;
    };
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{ENV_VAR}={} is set but cannot be read: {e}",
            path.to_string_lossy()
        )
    });
    let vars: HashMap<&str, &str> = text
        .lines()
        .filter_map(|l| l.split_once('='))
        .filter(|(k, _)| k.starts_with("CASTELLAN_RGW_"))
        .map(|(k, v)| (k, v.trim().trim_matches('\'')))
        .collect();
    let get = |k: &str| -> String {
        vars.get(k)
            .unwrap_or_else(|| panic!("{ENV_VAR}: {k} is missing from {}", path.to_string_lossy()))
            .to_string()
    };
    let rgw = Rgw {
        endpoint: get("CASTELLAN_RGW_ENDPOINT"),
        bucket: get("CASTELLAN_RGW_BUCKET"),
        uid: get("CASTELLAN_RGW_UID"),
        k1: (get("CASTELLAN_RGW_K1_ID"), get("CASTELLAN_RGW_K1_SECRET")),
        k2: (get("CASTELLAN_RGW_K2_ID"), get("CASTELLAN_RGW_K2_SECRET")),
        ceph_conf: get("CASTELLAN_RGW_CEPH_CONF"),
    };
    let addr: SocketAddr = rgw
        .endpoint
        .strip_prefix("http://")
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("{ENV_VAR}: endpoint {} is not http://IP:PORT", rgw.endpoint));
    assert!(
        addr.ip().is_loopback(),
        "tests only talk to loopback, not {addr}"
    );
    if let Err(e) = TcpStream::connect_timeout(&addr, Duration::from_secs(3)) {
        panic!(
            "{ENV_VAR} is set but RGW at {} is unreachable ({e}); is the cluster of {} still running?",
            rgw.endpoint,
            path.to_string_lossy()
        );
    }
    Some(rgw)
}

/// A short unique name, so that tests and repeated runs on one cluster never share keys.
fn unique(what: &str) -> String {
    format!("{what}-{:012x}", rand::random::<u64>() >> 16)
}

fn config(rgw: &Rgw, key: &(String, String), bucket: &str, prefix: &str) -> S3Config {
    let mut c = S3Config::new(bucket);
    c.endpoint = Some(rgw.endpoint.clone());
    c.force_path_style = true;
    c.key_prefix = prefix.to_owned();
    c.credentials = Some(StaticCredentials {
        access_key_id: key.0.clone(),
        secret_access_key: key.1.clone(),
        session_token: None,
    });
    c.max_attempts = 1;
    c.operation_timeout = Some(Duration::from_secs(30));
    c
}

async fn store(rgw: &Rgw, key: &(String, String), prefix: &str) -> S3Store {
    S3Store::new(config(rgw, key, &rgw.bucket, prefix))
        .await
        .expect("valid config")
}

/// `radosgw-admin` against the test cluster (setup and revocation only).
fn admin(rgw: &Rgw, args: &[&str]) -> String {
    let out = Command::new("radosgw-admin")
        .arg("-c")
        .arg(&rgw.ceph_conf)
        .args(args)
        .output()
        .expect("radosgw-admin runs");
    assert!(
        out.status.success(),
        "radosgw-admin {} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A fresh S3 key pair added to `uid` (so revoking it leaves the env file's keys alone).
fn new_key(rgw: &Rgw, uid: &str) -> (String, String) {
    let id = format!("TST{:017X}", rand::random::<u64>() >> 4);
    let secret = format!(
        "{:032x}{:08x}",
        rand::random::<u128>(),
        rand::random::<u32>()
    );
    admin(
        rgw,
        &[
            "key",
            "create",
            "--uid",
            uid,
            "--key-type",
            "s3",
            "--access-key",
            &id,
            "--secret-key",
            &secret,
        ],
    );
    (id, secret)
}

fn remove_key(rgw: &Rgw, uid: &str, id: &str) {
    admin(
        rgw,
        &[
            "key",
            "rm",
            "--uid",
            uid,
            "--key-type",
            "s3",
            "--access-key",
            id,
        ],
    );
}

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| ((i * 29) as u8).wrapping_add(seed))
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

async fn put_bytes(store: &dyn ObjectStore, key: &str, data: &[u8]) {
    store
        .put(
            key,
            PutBody::Bytes(Bytes::copy_from_slice(data)),
            data.len() as u64,
            &PutOptions::default(),
        )
        .await
        .unwrap_or_else(|e| panic!("put {key}: {e}"));
}

/// Messages go to Events and logs: never a secret, never a signature.
fn assert_redacted(e: &StorageError, secrets: &[&str]) {
    let text = format!("{e} {e:?}");
    for s in secrets {
        assert!(!text.contains(s), "secret leaked: {text}");
    }
    assert!(
        !text.to_ascii_lowercase().contains("signature="),
        "signature leaked: {text}"
    );
}

#[tokio::test]
async fn rgw_every_operation_works_with_valid_credentials() {
    let Some(rgw) = rgw("rgw_every_operation_works_with_valid_credentials") else {
        return;
    };
    let prefix = unique("ops");
    let store = store(&rgw, &rgw.k1, &prefix).await;

    let report = store
        .probe(ProbeMode::Read, None)
        .await
        .expect("read probe");
    assert_eq!(
        report.steps.iter().map(|s| s.operation).collect::<Vec<_>>(),
        ["ListObjectsV2", "HeadBucket"]
    );

    // A single PUT from memory.
    let data = pattern(100_000, 7);
    let digest = Digest::of_bytes(Algorithm::Sha256, &data);
    let key = layout::key_for(&prefix, &digest);
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
    assert!(put.etag.is_some());

    let info = store
        .head(&key)
        .await
        .expect("head")
        .expect("object exists");
    assert_eq!(info.size, data.len() as u64);
    assert!(info.etag.is_some());
    assert_eq!(
        store.head(&format!("{prefix}/missing")).await.unwrap(),
        None
    );

    assert_eq!(read_all(&store, &key, None).await, data);
    let range = ByteRange {
        start: 10,
        end: Some(19),
    };
    let got = store.get(&key, Some(range)).await.expect("range get");
    assert_eq!(got.content_length, Some(10));
    assert_eq!(
        got.total_size,
        Some(data.len() as u64),
        "Content-Range total"
    );
    drop(got);
    assert_eq!(read_all(&store, &key, Some(range)).await, &data[10..20]);
    let tail = ByteRange {
        start: 99_990,
        end: None,
    };
    assert_eq!(read_all(&store, &key, Some(tail)).await, &data[99_990..]);

    let report = store
        .probe(ProbeMode::ReadWrite, Some(&key))
        .await
        .expect("read-write probe");
    assert_eq!(
        report.steps.iter().map(|s| s.operation).collect::<Vec<_>>(),
        [
            "ListObjectsV2",
            "HeadBucket",
            "HeadObject",
            "PutObject",
            "GetObject"
        ]
    );
    let canaries = store
        .list(&layout::join(&prefix, layout::PROBE_DIR), None)
        .await
        .expect("list canaries");
    assert!(
        canaries.objects.is_empty(),
        "the canary is deleted: {canaries:?}"
    );

    // A single PUT from a file: the SDK's streaming form, which RGW rejects with default
    // checksum settings (see rgw_rejects_the_sdks_default_streaming_checksum_upload).
    let other = pattern(300_000, 9);
    let other_digest = Digest::of_bytes(Algorithm::Sha256, &other);
    let other_key = layout::key_for(&prefix, &other_digest);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("other");
    std::fs::write(&path, &other).unwrap();
    let out = store
        .put(
            &other_key,
            PutBody::Path(path),
            other.len() as u64,
            &PutOptions::default(),
        )
        .await
        .expect("single put from a file");
    assert_eq!(out.parts, None);
    // And one from a stream.
    let third = pattern(1000, 11);
    let third_key = format!("{prefix}/streamed");
    let chunks: Vec<std::io::Result<Bytes>> = third
        .chunks(300)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    store
        .put(
            &third_key,
            PutBody::Stream(futures::stream::iter(chunks).boxed()),
            third.len() as u64,
            &PutOptions::default(),
        )
        .await
        .expect("put from a stream");
    assert_eq!(read_all(&store, &third_key, None).await, third);

    let page = store
        .list(&format!("{prefix}/sha256/"), None)
        .await
        .expect("list");
    let keys: BTreeSet<_> = page.objects.iter().map(|o| o.key.clone()).collect();
    assert_eq!(keys, BTreeSet::from([key.clone(), other_key.clone()]));
    assert_eq!(page.next_continuation_token, None);
    for o in &page.objects {
        assert_eq!(
            layout::digest_for(&prefix, &o.key).as_ref(),
            Some(if o.key == key { &digest } else { &other_digest }),
            "layout keys map back to their digests"
        );
    }

    store.delete(&key).await.expect("delete");
    assert_eq!(store.head(&key).await.expect("head after delete"), None);
    store
        .delete(&key)
        .await
        .expect("deleting a missing key succeeds");
    let missing = store
        .get(&key, None)
        .await
        .expect_err("get of a deleted key");
    assert_eq!(missing.kind(), ErrorKind::NotFound, "{missing}");
    assert!(!missing.is_terminal());
    let missing = store
        .probe(ProbeMode::Read, Some(&key))
        .await
        .expect_err("a missing known object fails the probe");
    assert_eq!(missing.kind(), ErrorKind::NotFound);

    for k in [&other_key, &third_key] {
        store.delete(k).await.unwrap();
    }
}

#[tokio::test]
async fn rgw_multipart_uploads_from_files_and_streams() {
    let Some(rgw) = rgw("rgw_multipart_uploads_from_files_and_streams") else {
        return;
    };
    let prefix = unique("multipart");
    let mut c = config(&rgw, &rgw.k1, &rgw.bucket, &prefix);
    c.multipart_threshold_bytes = 5 * 1024 * 1024;
    c.multipart_chunk_bytes = 5 * 1024 * 1024;
    let store = S3Store::new(c).await.unwrap();

    let data = pattern(12 * 1024 * 1024 + 123, 3);
    let digest = Digest::of_bytes(Algorithm::Sha256, &data);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("blob");
    std::fs::write(&path, &data).unwrap();

    let key = layout::key_for(&prefix, &digest);
    let out = store
        .put(
            &key,
            PutBody::Path(path),
            data.len() as u64,
            &PutOptions::default(),
        )
        .await
        .expect("multipart put from a file");
    assert_eq!(out.parts, Some(3), "12 MiB in 5 MiB parts is 3 parts");
    // RGW 16.2.15 answers CompleteMultipartUpload with an empty <ETag></ETag> (so `out.etag` is
    // `Some("")`); HEAD has the multipart ETag, which names the part count.
    let etag = store.head(&key).await.unwrap().expect("completed").etag;
    assert!(
        etag.as_deref().is_some_and(|e| e.ends_with("-3\"")),
        "a multipart ETag names its part count: {etag:?}"
    );
    let report = verify_object(&store, &key, &digest, Some(data.len() as u64))
        .await
        .unwrap();
    assert!(report.verdict.is_verified(), "{:?}", report.verdict);
    assert_eq!(report.bytes, data.len() as u64);

    // A range across the first part boundary.
    let boundary = 5 * 1024 * 1024;
    let range = ByteRange {
        start: boundary - 3,
        end: Some(boundary + 2),
    };
    assert_eq!(
        read_all(&store, &key, Some(range)).await,
        &data[boundary as usize - 3..boundary as usize + 3]
    );

    let key2 = format!("{prefix}/streamed");
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
        .expect("multipart put from a stream");
    assert_eq!(out.parts, Some(3));
    assert_eq!(read_all(&store, &key2, None).await, data);

    // A body shorter than declared fails, and the multipart upload is aborted.
    let short: Vec<std::io::Result<Bytes>> = vec![Ok(Bytes::from(vec![0u8; 6 * 1024 * 1024]))];
    let short_key = format!("{prefix}/short");
    let err = store
        .put(
            &short_key,
            PutBody::Stream(futures::stream::iter(short).boxed()),
            11 * 1024 * 1024,
            &PutOptions::default(),
        )
        .await
        .expect_err("a short body fails");
    assert_eq!(
        err.kind(),
        ErrorKind::Backend(castellan::api::reasons::BackendReason::InvalidSpec),
        "{err}"
    );
    assert_eq!(
        store.head(&short_key).await.unwrap(),
        None,
        "nothing was completed"
    );
    let uploads = store
        .client()
        .list_multipart_uploads()
        .bucket(&rgw.bucket)
        .prefix(&prefix)
        .send()
        .await
        .expect("ListMultipartUploads");
    assert!(
        uploads.uploads().is_empty(),
        "the failed upload was aborted: {:?}",
        uploads.uploads()
    );

    for k in [&key, &key2] {
        store.delete(k).await.unwrap();
    }
}

/// The control for the PUT tests above: the same upload from a file through an aws-sdk-s3 client
/// with the SDK's default checksum settings (aws-chunked body with a CRC32 trailer) is rejected by
/// RGW. If this starts passing, the SDK or RGW changed and the `WhenRequired` setting in
/// `src/storage/s3.rs` is no longer what makes the castellan PUTs work.
#[tokio::test]
async fn rgw_rejects_the_sdks_default_streaming_checksum_upload() {
    let Some(rgw) = rgw("rgw_rejects_the_sdks_default_streaming_checksum_upload") else {
        return;
    };
    let conf = aws_sdk_s3::Config::builder()
        .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
        .region(aws_sdk_s3::config::Region::new("us-east-1"))
        .endpoint_url(&rgw.endpoint)
        .force_path_style(true)
        .credentials_provider(aws_sdk_s3::config::Credentials::new(
            &rgw.k1.0, &rgw.k1.1, None, None, "test",
        ))
        .build();
    let raw = aws_sdk_s3::Client::from_conf(conf);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("blob");
    std::fs::write(&path, pattern(64 * 1024, 1)).unwrap();
    let key = format!("{}/default-checksums", unique("trap"));
    let err = raw
        .put_object()
        .bucket(&rgw.bucket)
        .key(&key)
        .body(
            aws_sdk_s3::primitives::ByteStream::from_path(&path)
                .await
                .unwrap(),
        )
        .send()
        .await
        .expect_err("RGW rejects the aws-chunked upload with a trailer checksum");
    let code = aws_sdk_s3::error::ProvideErrorMetadata::code(&err).map(str::to_owned);
    assert_eq!(
        code.as_deref(),
        Some("XAmzContentSHA256Mismatch"),
        "{err:?}"
    );

    // The same file through the castellan store works (its client computes checksums only
    // when required).
    let store = store(&rgw, &rgw.k1, "unused").await;
    store
        .put(&key, PutBody::Path(path), 64 * 1024, &PutOptions::default())
        .await
        .expect("castellan's PUT of the same file");
    store.delete(&key).await.unwrap();
}

#[tokio::test]
async fn rgw_listing_follows_continuation_tokens_across_pages() {
    let Some(rgw) = rgw("rgw_listing_follows_continuation_tokens_across_pages") else {
        return;
    };
    // RGW answers at most 1000 keys per ListObjectsV2 page (S3's default max-keys): 1001
    // objects need two pages.
    let prefix = unique("list");
    let store = store(&rgw, &rgw.k1, &prefix).await;
    let written: BTreeSet<String> = (0..1001).map(|i| format!("{prefix}/o/{i:05}")).collect();
    let results: Vec<Result<(), StorageError>> = futures::stream::iter(written.iter().cloned())
        .map(|k| {
            let store = &store;
            async move {
                store
                    .put(
                        &k,
                        PutBody::Bytes(Bytes::from_static(b"x")),
                        1,
                        &PutOptions::default(),
                    )
                    .await
                    .map(|_| ())
            }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    for r in results {
        r.expect("put");
    }

    let mut seen = BTreeSet::new();
    let mut pages = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let page = store
            .list(&format!("{prefix}/o/"), token.as_deref())
            .await
            .expect("list page");
        pages.push(page.objects.len());
        for o in &page.objects {
            assert_eq!(o.size, 1);
            assert!(seen.insert(o.key.clone()), "{} listed twice", o.key);
        }
        match page.next_continuation_token {
            Some(t) => token = Some(t),
            None => break,
        }
        assert!(pages.len() < 10, "listing does not end: {pages:?}");
    }
    assert_eq!(pages, [1000, 1], "two pages");
    assert_eq!(seen, written);

    let results: Vec<Result<(), StorageError>> = futures::stream::iter(written.iter().cloned())
        .map(|k| {
            let store = &store;
            async move { store.delete(&k).await }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    for r in results {
        r.expect("delete");
    }
    let page = store.list(&format!("{prefix}/o/"), None).await.unwrap();
    assert!(page.objects.is_empty());
}

#[tokio::test]
async fn rgw_verification_matches_and_mismatches() {
    let Some(rgw) = rgw("rgw_verification_matches_and_mismatches") else {
        return;
    };
    let prefix = unique("verify");
    let store = store(&rgw, &rgw.k2, &prefix).await;
    let good = pattern(3 * 1024 * 1024 + 7, 4);
    let digest = Digest::of_bytes(Algorithm::Sha256, &good);
    let key = layout::key_for(&prefix, &digest);

    put_bytes(&store, &key, &good).await;
    let report = verify_object(&store, &key, &digest, Some(good.len() as u64))
        .await
        .expect("verify");
    assert!(
        matches!(report.verdict, Verdict::Verified { bytes } if bytes == good.len() as u64),
        "{:?}",
        report.verdict
    );
    assert_eq!(report.bytes, good.len() as u64);
    let report = verify_object(&store, &key, &digest, None).await.unwrap();
    assert!(report.verdict.is_verified(), "without a declared size too");

    // The same key now holds other bytes of the same length: a digest mismatch.
    let mut corrupt = good.clone();
    corrupt[1_500_000] ^= 0xff;
    put_bytes(&store, &key, &corrupt).await;
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

    let e = verify_object(&store, &format!("{prefix}/missing"), &digest, None)
        .await
        .expect_err("a missing object");
    assert_eq!(e.kind(), ErrorKind::NotFound);
    store.delete(&key).await.unwrap();
}

#[tokio::test]
async fn rgw_credential_failures_and_a_missing_bucket_are_terminal() {
    let Some(rgw) = rgw("rgw_credential_failures_and_a_missing_bucket_are_terminal") else {
        return;
    };
    let prefix = unique("creds");
    let unknown = store(
        &rgw,
        &(
            "AKIDNOBODY0000000000".into(),
            "unknown-secret-value-0000".into(),
        ),
        &prefix,
    )
    .await;
    let wrong_secret = store(
        &rgw,
        &(rgw.k1.0.clone(), "wrong-secret-value-zzzz".into()),
        &prefix,
    )
    .await;
    let no_bucket = S3Store::new(config(&rgw, &rgw.k1, &unique("no-such-bucket"), &prefix))
        .await
        .unwrap();
    let secrets = [
        "unknown-secret-value-0000",
        "wrong-secret-value-zzzz",
        rgw.k1.1.as_str(),
    ];

    // RGW 16.2.15 answers 403 InvalidAccessKeyId, 403 SignatureDoesNotMatch and 404 NoSuchBucket,
    // each with an empty <Message>.
    let cases: Vec<(&str, &S3Store, ErrorKind, &str)> = vec![
        (
            "an unknown key is InvalidAccessKeyId",
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
        (
            "a missing bucket is NoSuchBucket",
            &no_bucket,
            ErrorKind::Backend(castellan::api::reasons::BackendReason::NoSuchBucket),
            "NoSuchBucket",
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
        assert!(
            e.message().contains(reason),
            "{name}: the server's code is kept: {e}"
        );
        assert_redacted(&e, &secrets);
        // GET carries an error body too, so object calls classify the same way.
        let e = store
            .get(&format!("{prefix}/x"), None)
            .await
            .expect_err(name);
        assert_eq!(e.kind(), kind, "{name} on GET: {e}");
        assert_redacted(&e, &secrets);
    }
    // HEAD errors have no body: a 403 says only "forbidden" (still terminal).
    let e = unknown
        .head(&format!("{prefix}/x"))
        .await
        .expect_err("HEAD with an unknown key");
    assert_eq!(
        e.kind(),
        ErrorKind::Backend(castellan::api::reasons::BackendReason::AccessDenied),
        "{e}"
    );
    assert!(e.is_terminal());
}

#[tokio::test]
async fn rgw_a_key_removed_while_running_is_invalid_access_key_id() {
    let Some(rgw) = rgw("rgw_a_key_removed_while_running_is_invalid_access_key_id") else {
        return;
    };
    let prefix = unique("keyrm");
    let key = new_key(&rgw, &rgw.uid);
    let store = store(&rgw, &key, &prefix).await;
    store
        .probe(ProbeMode::ReadWrite, None)
        .await
        .expect("valid before removal");

    remove_key(&rgw, &rgw.uid, &key.0);

    // radosgw-admin notifies the running gateway: the very next request is refused.
    let e = store
        .probe(ProbeMode::Read, None)
        .await
        .expect_err("removed key");
    assert_eq!(
        e.kind(),
        ErrorKind::Backend(castellan::api::reasons::BackendReason::InvalidAccessKeyId),
        "{e}"
    );
    assert!(e.is_terminal());
    assert_eq!(
        e.backend_reason()
            .map(castellan::api::reasons::BackendReason::as_str),
        Some("InvalidAccessKeyId")
    );
    assert_redacted(&e, &[&key.1]);
    let e = store
        .get(&format!("{prefix}/x"), None)
        .await
        .expect_err("GET with the removed key");
    assert_eq!(
        e.kind(),
        ErrorKind::Backend(castellan::api::reasons::BackendReason::InvalidAccessKeyId),
        "{e}"
    );
}

#[tokio::test]
async fn rgw_a_suspended_user_is_terminal_access_denied() {
    let Some(rgw) = rgw("rgw_a_suspended_user_is_terminal_access_denied") else {
        return;
    };
    // A user of its own, with a bucket of its own: suspending it touches no other test.
    let uid = unique("suspended");
    let key = (
        format!("SUS{:017X}", rand::random::<u64>() >> 4),
        format!("{:032x}", rand::random::<u128>()),
    );
    admin(
        &rgw,
        &[
            "user",
            "create",
            "--uid",
            &uid,
            "--display-name",
            "castellan suspend test",
            "--access-key",
            &key.0,
            "--secret-key",
            &key.1,
        ],
    );
    let bucket = uid.clone();
    let store = S3Store::new(config(&rgw, &key, &bucket, "cas"))
        .await
        .unwrap();
    store
        .client()
        .create_bucket()
        .bucket(&bucket)
        .send()
        .await
        .expect("setup: CreateBucket");
    let data = pattern(10_000, 6);
    let digest = Digest::of_bytes(Algorithm::Sha256, &data);
    let object = layout::key_for("cas", &digest);
    put_bytes(&store, &object, &data).await;
    store
        .probe(ProbeMode::Read, Some(&object))
        .await
        .expect("valid before suspension");

    admin(&rgw, &["user", "suspend", "--uid", &uid]);

    // Measured on RGW 16.2.15: every request of a suspended user is answered
    // 403 <Code>UserSuspended</Code> with an empty message (HEAD: 403 without a body).
    let e = store
        .probe(ProbeMode::Read, Some(&object))
        .await
        .expect_err("suspended user");
    assert_eq!(
        e.kind(),
        ErrorKind::Backend(castellan::api::reasons::BackendReason::AccessDenied),
        "{e}"
    );
    assert!(e.is_terminal());
    assert_eq!(
        e.backend_reason()
            .map(castellan::api::reasons::BackendReason::as_str),
        Some("AccessDenied")
    );
    assert!(
        e.message().contains("UserSuspended"),
        "RGW's code is kept in the message: {e}"
    );
    assert_redacted(&e, &[&key.1]);
    let e = store
        .get(&object, None)
        .await
        .expect_err("GET while suspended");
    assert_eq!(
        e.kind(),
        ErrorKind::Backend(castellan::api::reasons::BackendReason::AccessDenied),
        "{e}"
    );
    let e = verify_object(&store, &object, &digest, None)
        .await
        .expect_err("verification while suspended");
    assert!(e.is_terminal(), "{e}");

    // Re-enabled, the same credentials work again: it was the suspension.
    admin(&rgw, &["user", "enable", "--uid", &uid]);
    let report = verify_object(&store, &object, &digest, Some(data.len() as u64))
        .await
        .expect("enabled again");
    assert!(report.verdict.is_verified(), "{:?}", report.verdict);

    store.delete(&object).await.unwrap();
    store
        .client()
        .delete_bucket()
        .bucket(&bucket)
        .send()
        .await
        .expect("cleanup: DeleteBucket");
    admin(&rgw, &["user", "rm", "--uid", &uid]);
}

#[tokio::test]
async fn rgw_rotation_the_removed_key_fails_and_the_other_key_still_reads() {
    let Some(rgw) = rgw("rgw_rotation_the_removed_key_fails_and_the_other_key_still_reads") else {
        return;
    };
    // Two keys on the same bucket: a fresh key (removed below) and the env file's K2.
    let prefix = unique("rotation");
    let old_key = new_key(&rgw, &rgw.uid);
    let backend_a = store(&rgw, &old_key, &prefix).await;
    let backend_b = store(&rgw, &rgw.k2, &prefix).await;

    let data = pattern(2 * 1024 * 1024, 5);
    let digest = Digest::of_bytes(Algorithm::Sha256, &data);
    let key = layout::key_for(&prefix, &digest);
    put_bytes(&backend_a, &key, &data).await;
    backend_a
        .probe(ProbeMode::Read, Some(&key))
        .await
        .expect("A is valid before rotation");
    backend_b
        .probe(ProbeMode::Read, Some(&key))
        .await
        .expect("B is valid before rotation");

    remove_key(&rgw, &rgw.uid, &old_key.0);

    let e = backend_a
        .probe(ProbeMode::Read, Some(&key))
        .await
        .expect_err("A is removed");
    assert_eq!(
        e.kind(),
        ErrorKind::Backend(castellan::api::reasons::BackendReason::InvalidAccessKeyId),
        "{e}"
    );
    assert!(e.is_terminal());
    let e = verify_object(&backend_a, &key, &digest, Some(data.len() as u64))
        .await
        .expect_err("A cannot read");
    assert!(e.is_terminal(), "{e}");

    backend_b
        .probe(ProbeMode::Read, Some(&key))
        .await
        .expect("B is healthy");
    let report = verify_object(&backend_b, &key, &digest, Some(data.len() as u64))
        .await
        .expect("B reads the object A wrote");
    assert!(report.verdict.is_verified(), "{:?}", report.verdict);
    assert_eq!(report.bytes, data.len() as u64);
    backend_b.delete(&key).await.unwrap();
}
