//! The contract: what Castellan's S3 store must do on every server. Each case is generic over
//! the [`Fixture`] and works under its own unique key prefix; `main.rs` turns every case into one
//! `#[tokio::test]` per fixture. Where servers legitimately differ, the case asserts the
//! fixture's documented [`Answers`](crate::fixture::Answers).

use std::collections::BTreeSet;

use bytes::Bytes;
use castellan::api::reasons::BackendReason;
use castellan::digest::{Algorithm, Digest};
use castellan::storage::{
    layout, read_verified, ByteRange, ErrorKind, ObjectStore, ProbeMode, PutBody, PutOptions,
    ReadOptions, S3Store, Sink, StorageError, Verdict, Verification,
};
use futures::StreamExt;

use crate::fixture::{
    assert_redacted, config, pattern, put_bytes, read_all, store, store_from, stream_of, unique,
    DefaultChecksumUpload, Fixture, Key,
};

/// The canonical list of contract cases; `$callback!` is invoked with all of them.
macro_rules! contract_cases {
    ($callback:ident ! ($($args:tt)*)) => {
        $callback! { ($($args)*)
            probe_read_lists_then_heads_the_bucket,
            probe_read_write_writes_reads_and_deletes_a_canary,
            single_put_head_get_and_ranges,
            single_puts_from_a_file_and_from_a_stream,
            an_object_below_the_multipart_threshold_is_one_put_whatever_its_size,
            listing_maps_layout_keys_back_to_their_digests,
            listing_follows_continuation_tokens_across_pages,
            delete_is_idempotent_and_a_deleted_key_is_not_found,
            multipart_uploads_from_a_file_and_a_stream,
            a_short_multipart_body_fails_and_the_upload_is_aborted,
            verified_read_of_the_right_bytes_is_verified,
            verified_read_of_other_bytes_is_a_digest_mismatch,
            verified_read_announcing_another_size_is_a_size_mismatch_before_the_body,
            verified_read_of_a_missing_key_is_missing,
            an_unknown_key_is_terminal_invalid_access_key_id,
            a_wrong_secret_is_terminal_signature_does_not_match,
            a_missing_bucket_is_terminal_no_such_bucket,
            a_key_revoked_while_running_is_invalid_access_key_id,
            after_rotation_the_revoked_key_fails_and_the_other_still_reads,
            the_sdks_default_streaming_checksum_upload_and_castellans_file_upload,
        }
    };
}
pub(crate) use contract_cases;

fn backend(reason: BackendReason) -> ErrorKind {
    ErrorKind::Backend(reason)
}

/// A GET of bytes `start..=end` of `data`, stored under `key`: the announced length, the
/// whole size from Content-Range, and the bytes.
async fn assert_range(store: &S3Store, key: &str, data: &[u8], start: u64, end: u64) {
    let range = ByteRange {
        start,
        end: Some(end),
    };
    let got = store.get(key, Some(range)).await.expect("range get");
    assert_eq!(got.content_length, Some(end - start + 1));
    assert_eq!(
        got.total_size,
        Some(data.len() as u64),
        "Content-Range total"
    );
    drop(got);
    assert_eq!(
        read_all(store, key, Some(range)).await,
        &data[start as usize..=end as usize]
    );
}

/// [`read_verified`] discarding the bytes.
pub async fn verify(
    store: &dyn ObjectStore,
    key: &str,
    digest: &Digest,
    size: Option<u64>,
) -> Verification {
    read_verified(
        store,
        key,
        digest,
        size,
        Sink::Discard,
        &ReadOptions::default(),
    )
    .await
    .expect("discarding bytes cannot fail")
}

/// The error of a verified read refused before any body.
pub fn failed(v: &Verification) -> &StorageError {
    match &v.verdict {
        Verdict::Failed(e) => e,
        other => panic!("expected a failed read, got {other:?}"),
    }
}

fn ops(report: &castellan::storage::ProbeReport) -> Vec<&'static str> {
    report.steps.iter().map(|s| s.operation).collect()
}

/// Lists `dir` (a prefix ending in `/`), or, where the server mis-signs slashed list prefixes,
/// the whole test prefix filtered to `dir` (the test prefix holds only this test's objects).
async fn list_dir<F: Fixture>(
    store: &S3Store,
    test_prefix: &str,
    dir: &str,
    token: Option<&str>,
) -> castellan::storage::ListPage {
    if F::ANSWERS.slashed_list_prefixes {
        return store
            .list(dir, token)
            .await
            .unwrap_or_else(|e| panic!("list {dir}: {e}"));
    }
    let mut page = store
        .list(test_prefix, token)
        .await
        .unwrap_or_else(|e| panic!("list {test_prefix}: {e}"));
    page.objects.retain(|o| o.key.starts_with(dir));
    page
}

pub async fn probe_read_lists_then_heads_the_bucket<F: Fixture>(f: &F) {
    let prefix = unique("probe");
    let store = store(f, &f.key(), &prefix).await;
    let report = store
        .probe(ProbeMode::Read, None)
        .await
        .expect("read probe");
    assert_eq!(ops(&report), ["ListObjectsV2", "HeadBucket"]);

    let key = format!("{prefix}/known");
    put_bytes(&store, &key, b"known").await;
    let report = store
        .probe(ProbeMode::Read, Some(&key))
        .await
        .expect("read probe with a known object");
    assert_eq!(ops(&report), ["ListObjectsV2", "HeadBucket", "HeadObject"]);
    store.delete(&key).await.unwrap();
}

pub async fn probe_read_write_writes_reads_and_deletes_a_canary<F: Fixture>(f: &F) {
    let prefix = unique("canary");
    let store = store(f, &f.key(), &prefix).await;
    let key = format!("{prefix}/known");
    put_bytes(&store, &key, b"known").await;
    let report = store
        .probe(ProbeMode::ReadWrite, Some(&key))
        .await
        .expect("read-write probe");
    assert_eq!(
        ops(&report),
        [
            "ListObjectsV2",
            "HeadBucket",
            "HeadObject",
            "PutObject",
            "GetObject"
        ]
    );
    let canary_dir = format!("{}/", layout::join(&prefix, layout::PROBE_DIR));
    let canaries = list_dir::<F>(&store, &prefix, &canary_dir, None).await;
    assert!(
        canaries.objects.is_empty(),
        "the canary is deleted: {canaries:?}"
    );
    store
        .probe(ProbeMode::ReadWrite, None)
        .await
        .expect("read-write probe without a known object");
    store.delete(&key).await.unwrap();
}

pub async fn single_put_head_get_and_ranges<F: Fixture>(f: &F) {
    let prefix = unique("ops");
    let store = store(f, &f.key(), &prefix).await;
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
        None,
        "a missing key is Ok(None) on HEAD"
    );

    assert_eq!(read_all(&store, &key, None).await, data);
    assert_range(&store, &key, &data, 10, 19).await;
    let tail = ByteRange {
        start: 99_990,
        end: None,
    };
    assert_eq!(read_all(&store, &key, Some(tail)).await, &data[99_990..]);
    store.delete(&key).await.unwrap();
}

/// A single PUT from a file is the SDK's streaming form, which Garage and RGW reject with the
/// SDK's default checksum settings (see the last case).
pub async fn single_puts_from_a_file_and_from_a_stream<F: Fixture>(f: &F) {
    let prefix = unique("sources");
    let store = store(f, &f.key(), &prefix).await;
    let data = pattern(300_000, 9);
    let digest = Digest::of_bytes(Algorithm::Sha256, &data);
    let key = layout::key_for(&prefix, &digest);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("blob");
    std::fs::write(&path, &data).unwrap();
    let out = store
        .put(
            &key,
            PutBody::Path(path),
            data.len() as u64,
            &PutOptions::default(),
        )
        .await
        .expect("single put from a file");
    assert_eq!(out.parts, None);
    assert_eq!(read_all(&store, &key, None).await, data);

    let streamed = pattern(1000, 11);
    let streamed_key = format!("{prefix}/streamed");
    let out = store
        .put(
            &streamed_key,
            stream_of(&streamed, 300),
            streamed.len() as u64,
            &PutOptions::default(),
        )
        .await
        .expect("put from a stream");
    assert_eq!(out.parts, None);
    assert_eq!(read_all(&store, &streamed_key, None).await, streamed);
    for k in [&key, &streamed_key] {
        store.delete(k).await.unwrap();
    }
}

pub async fn an_object_below_the_multipart_threshold_is_one_put_whatever_its_size<F: Fixture>(
    f: &F,
) {
    let prefix = unique("big");
    let mut c = config(f, &f.key(), &f.bucket(), &prefix);
    c.multipart_threshold_bytes = 64 * 1024 * 1024;
    let store = store_from(c).await;
    let big = pattern(11 * 1024 * 1024, 2);
    let digest = Digest::of_bytes(Algorithm::Sha256, &big);
    let key = layout::key_for(&prefix, &digest);
    let out = store
        .put(
            &key,
            PutBody::Bytes(Bytes::from(big.clone())),
            big.len() as u64,
            &PutOptions::default(),
        )
        .await
        .expect("single put of 11 MiB");
    assert_eq!(out.parts, None);
    assert_eq!(
        store.head(&key).await.unwrap().expect("written").size,
        big.len() as u64
    );
    let mib5 = 5 * 1024 * 1024;
    assert_range(&store, &key, &big, mib5 - 2, mib5 + 1).await;
    let report = verify(&store, &key, &digest, Some(big.len() as u64)).await;
    assert!(report.verdict.is_verified(), "{:?}", report.verdict);
    store.delete(&key).await.unwrap();
}

pub async fn listing_maps_layout_keys_back_to_their_digests<F: Fixture>(f: &F) {
    let prefix = unique("layout");
    let store = store(f, &f.key(), &prefix).await;
    let mut written = Vec::new();
    for (len, seed) in [(100_000, 7), (1000, 9)] {
        let data = pattern(len, seed);
        let digest = Digest::of_bytes(Algorithm::Sha256, &data);
        let key = layout::key_for(&prefix, &digest);
        put_bytes(&store, &key, &data).await;
        written.push((key, digest, len as u64));
    }
    // Not a layout key: listed under the prefix, but maps back to no digest.
    let stray = format!("{prefix}/sha256/stray");
    put_bytes(&store, &stray, b"x").await;

    let page = list_dir::<F>(&store, &prefix, &format!("{prefix}/sha256/"), None).await;
    let keys: BTreeSet<_> = page.objects.iter().map(|o| o.key.clone()).collect();
    let want: BTreeSet<_> = written
        .iter()
        .map(|(k, _, _)| k.clone())
        .chain([stray.clone()])
        .collect();
    assert_eq!(keys, want);
    assert_eq!(page.next_continuation_token, None);
    for o in &page.objects {
        let expected = written.iter().find(|(k, _, _)| *k == o.key);
        assert_eq!(
            layout::digest_for(&prefix, &o.key).as_ref(),
            expected.map(|(_, d, _)| d),
            "layout keys map back to their digests, others to none: {}",
            o.key
        );
        if let Some((_, _, size)) = expected {
            assert_eq!(o.size, *size, "{}", o.key);
        }
    }
    for k in keys {
        store.delete(&k).await.unwrap();
    }
}

/// ListObjectsV2 pages hold at most 1000 keys (S3's default max-keys): 1001 objects need two.
pub async fn listing_follows_continuation_tokens_across_pages<F: Fixture>(f: &F) {
    let prefix = unique("pages");
    let store = store(f, &f.key(), &prefix).await;
    let dir = format!("{prefix}/o/");
    let written: BTreeSet<String> = (0..1001).map(|i| format!("{dir}{i:05}")).collect();
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
        let page = list_dir::<F>(&store, &prefix, &dir, token.as_deref()).await;
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
    let page = list_dir::<F>(&store, &prefix, &dir, None).await;
    assert!(page.objects.is_empty(), "{page:?}");
}

pub async fn delete_is_idempotent_and_a_deleted_key_is_not_found<F: Fixture>(f: &F) {
    let prefix = unique("delete");
    let store = store(f, &f.key(), &prefix).await;
    let data = pattern(4096, 1);
    let key = layout::key_for(&prefix, &Digest::of_bytes(Algorithm::Sha256, &data));
    put_bytes(&store, &key, &data).await;
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
    assert_eq!(missing.backend_reason(), None);
    let missing = store
        .probe(ProbeMode::Read, Some(&key))
        .await
        .expect_err("a missing known object fails the probe");
    assert_eq!(missing.kind(), ErrorKind::NotFound);
}

/// A store that uploads in 5 MiB parts above 5 MiB.
async fn multipart_store<F: Fixture>(f: &F, prefix: &str) -> S3Store {
    let mut c = config(f, &f.key(), &f.bucket(), prefix);
    c.multipart_threshold_bytes = 5 * 1024 * 1024;
    c.multipart_chunk_bytes = 5 * 1024 * 1024;
    store_from(c).await
}

pub async fn multipart_uploads_from_a_file_and_a_stream<F: Fixture>(f: &F) {
    let prefix = unique("multipart");
    let store = multipart_store(f, &prefix).await;
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
    // RGW 16.2.15 answers CompleteMultipartUpload with an empty <ETag></ETag>; HEAD has the
    // multipart ETag everywhere, which names the part count.
    let etag = store.head(&key).await.unwrap().expect("completed").etag;
    assert!(
        etag.as_deref().is_some_and(|e| e.ends_with("-3\"")),
        "a multipart ETag names its part count: {etag:?}"
    );
    let report = verify(&store, &key, &digest, Some(data.len() as u64)).await;
    assert!(report.verdict.is_verified(), "{:?}", report.verdict);
    assert_eq!(report.bytes, data.len() as u64);

    // A range across the first part boundary.
    let boundary = 5 * 1024 * 1024;
    assert_range(&store, &key, &data, boundary - 3, boundary + 2).await;

    let streamed_key = format!("{prefix}/streamed");
    let out = store
        .put(
            &streamed_key,
            stream_of(&data, 1 << 20),
            data.len() as u64,
            &PutOptions::default(),
        )
        .await
        .expect("multipart put from a stream");
    assert_eq!(out.parts, Some(3));
    assert_eq!(read_all(&store, &streamed_key, None).await, data);

    let bytes_key = format!("{prefix}/bytes");
    let out = store
        .put(
            &bytes_key,
            PutBody::Bytes(Bytes::from(data.clone())),
            data.len() as u64,
            &PutOptions::default(),
        )
        .await
        .expect("multipart put from bytes");
    assert_eq!(out.parts, Some(3));
    assert_eq!(read_all(&store, &bytes_key, None).await, data);
    for k in [&key, &streamed_key, &bytes_key] {
        store.delete(k).await.unwrap();
    }
}

pub async fn a_short_multipart_body_fails_and_the_upload_is_aborted<F: Fixture>(f: &F) {
    let prefix = unique("short");
    let store = multipart_store(f, &prefix).await;
    let short = vec![0u8; 6 * 1024 * 1024];
    let short_key = format!("{prefix}/short");
    let err = store
        .put(
            &short_key,
            stream_of(&short, short.len()),
            11 * 1024 * 1024,
            &PutOptions::default(),
        )
        .await
        .expect_err("a short body fails");
    assert_eq!(err.kind(), backend(BackendReason::InvalidSpec), "{err}");
    assert_eq!(
        store.head(&short_key).await.unwrap(),
        None,
        "nothing was completed"
    );
    if F::ANSWERS.lists_multipart_uploads {
        let uploads = store
            .client()
            .list_multipart_uploads()
            .bucket(f.bucket())
            .prefix(&prefix)
            .send()
            .await
            .expect("ListMultipartUploads");
        assert!(
            uploads.uploads().is_empty(),
            "the failed upload was aborted: {:?}",
            uploads.uploads()
        );
    }
}

pub async fn verified_read_of_the_right_bytes_is_verified<F: Fixture>(f: &F) {
    let prefix = unique("verify");
    let store = store(f, &f.second_key(), &prefix).await;
    let good = pattern(3 * 1024 * 1024 + 7, 4);
    let digest = Digest::of_bytes(Algorithm::Sha256, &good);
    let key = layout::key_for(&prefix, &digest);
    put_bytes(&store, &key, &good).await;

    let report = verify(&store, &key, &digest, Some(good.len() as u64)).await;
    assert!(
        matches!(report.verdict, Verdict::Verified { bytes } if bytes == good.len() as u64),
        "{:?}",
        report.verdict
    );
    assert_eq!(report.bytes, good.len() as u64);
    let report = verify(&store, &key, &digest, None).await;
    assert!(
        report.verdict.is_verified(),
        "without a declared size too: {:?}",
        report.verdict
    );

    // Into a file: the file holds the bytes that verified.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out");
    let file = tokio::fs::File::create(&path).await.unwrap();
    let report = read_verified(
        &store,
        &key,
        &digest,
        Some(good.len() as u64),
        Sink::File(file),
        &ReadOptions::default(),
    )
    .await
    .expect("the file is writable");
    assert!(report.verdict.is_verified(), "{:?}", report.verdict);
    assert_eq!(std::fs::read(&path).unwrap(), good);
    store.delete(&key).await.unwrap();
}

pub async fn verified_read_of_other_bytes_is_a_digest_mismatch<F: Fixture>(f: &F) {
    let prefix = unique("mismatch");
    let store = store(f, &f.second_key(), &prefix).await;
    let good = pattern(3 * 1024 * 1024 + 7, 4);
    let digest = Digest::of_bytes(Algorithm::Sha256, &good);
    let key = layout::key_for(&prefix, &digest);
    put_bytes(&store, &key, &good).await;
    let report = verify(&store, &key, &digest, Some(good.len() as u64)).await;
    assert!(report.verdict.is_verified(), "{:?}", report.verdict);
    // The same key now holds other bytes of the same length.
    let mut corrupt = good.clone();
    corrupt[1_500_000] ^= 0xff;
    put_bytes(&store, &key, &corrupt).await;
    let report = verify(&store, &key, &digest, Some(good.len() as u64)).await;
    match &report.verdict {
        Verdict::DigestMismatch { actual } => {
            assert_eq!(*actual, Digest::of_bytes(Algorithm::Sha256, &corrupt))
        }
        other => panic!("expected DigestMismatch, got {other:?}"),
    }
    assert!(report.verdict.is_mismatch() && report.verdict.is_conclusive());
    assert_eq!(report.bytes, good.len() as u64);
    store.delete(&key).await.unwrap();
}

pub async fn verified_read_announcing_another_size_is_a_size_mismatch_before_the_body<
    F: Fixture,
>(
    f: &F,
) {
    let prefix = unique("size");
    let store = store(f, &f.second_key(), &prefix).await;
    let data = pattern(500_000, 4);
    let digest = Digest::of_bytes(Algorithm::Sha256, &data);
    let key = layout::key_for(&prefix, &digest);
    put_bytes(&store, &key, &data).await;
    let report = verify(&store, &key, &digest, Some(42)).await;
    assert!(
        matches!(report.verdict, Verdict::SizeMismatch { expected: 42, actual } if actual == data.len() as u64),
        "a declared size is checked before downloading: {:?}",
        report.verdict
    );
    assert_eq!(report.bytes, 0, "no body byte was read");
    store.delete(&key).await.unwrap();
}

pub async fn verified_read_of_a_missing_key_is_missing<F: Fixture>(f: &F) {
    let prefix = unique("missing");
    let store = store(f, &f.key(), &prefix).await;
    let digest = Digest::of_bytes(Algorithm::Sha256, b"never written");
    let report = verify(&store, &layout::key_for(&prefix, &digest), &digest, None).await;
    assert_eq!(report.verdict, Verdict::Missing);
    assert!(report.verdict.is_conclusive());
    assert_eq!(report.verdict.label(), "ObjectMissing");
}

/// The classification of a credential failure on the probe (a GET-type request whose error
/// body carries a code) and on an object GET; `says` are fragments of the server's answer the
/// message must keep.
async fn assert_credential_failure(
    name: &str,
    store: &S3Store,
    prefix: &str,
    reason: BackendReason,
    says: &[&str],
    secrets: &[&str],
) {
    let e = store.probe(ProbeMode::Read, None).await.expect_err(name);
    assert_eq!(e.kind(), backend(reason), "{name}: {e}");
    assert!(e.is_terminal(), "{name}");
    assert_eq!(
        e.backend_reason().map(BackendReason::as_str),
        Some(reason.as_str()),
        "{name}"
    );
    for fragment in says {
        assert!(
            e.message().contains(fragment),
            "{name}: the server's answer ({fragment}) is kept: {e}"
        );
    }
    assert_redacted(&e, secrets);
    // GET carries an error body too, so object calls classify the same way.
    let e = store
        .get(&format!("{prefix}/x"), None)
        .await
        .expect_err(name);
    assert_eq!(e.kind(), backend(reason), "{name} on GET: {e}");
    assert_redacted(&e, secrets);
    let v = verify(
        store,
        &format!("{prefix}/x"),
        &Digest::of_bytes(Algorithm::Sha256, b"x"),
        None,
    )
    .await;
    let e = failed(&v);
    assert_eq!(e.kind(), backend(reason), "{name} on a verified read: {e}");
    assert!(!v.verdict.is_conclusive());
}

pub async fn an_unknown_key_is_terminal_invalid_access_key_id<F: Fixture>(f: &F) {
    let prefix = unique("unknown");
    let key = Key::new("AKIDNOBODY0000000000", "unknown-secret-value-0000");
    let unknown = store(f, &key, &prefix).await;
    assert_credential_failure(
        "an unknown key is InvalidAccessKeyId",
        &unknown,
        &prefix,
        BackendReason::InvalidAccessKeyId,
        F::ANSWERS.unknown_key_says,
        &[&key.secret, &f.key().secret],
    )
    .await;
    // HEAD errors have no body: a 403 says only "forbidden" (still terminal).
    let e = unknown
        .head(&format!("{prefix}/x"))
        .await
        .expect_err("HEAD with an unknown key");
    assert_eq!(e.kind(), backend(BackendReason::AccessDenied), "{e}");
    assert!(e.is_terminal());
}

pub async fn a_wrong_secret_is_terminal_signature_does_not_match<F: Fixture>(f: &F) {
    let prefix = unique("secret");
    let wrong = Key::new(f.key().id, "wrong-secret-value-zzzz");
    let store = store(f, &wrong, &prefix).await;
    assert_credential_failure(
        "a wrong secret is SignatureDoesNotMatch",
        &store,
        &prefix,
        BackendReason::SignatureDoesNotMatch,
        F::ANSWERS.wrong_secret_says,
        &[&wrong.secret, &f.key().secret],
    )
    .await;
}

pub async fn a_missing_bucket_is_terminal_no_such_bucket<F: Fixture>(f: &F) {
    let prefix = unique("nobucket");
    let store = store_from(config(f, &f.key(), &f.missing_bucket(), &prefix)).await;
    let e = store
        .probe(ProbeMode::Read, None)
        .await
        .expect_err("missing bucket");
    assert_eq!(e.kind(), backend(BackendReason::NoSuchBucket), "{e}");
    assert!(e.is_terminal());
    assert_eq!(
        e.backend_reason().map(BackendReason::as_str),
        Some("NoSuchBucket")
    );
    assert!(
        e.message().contains("NoSuchBucket"),
        "the server's code is kept: {e}"
    );
    assert_redacted(&e, &[&f.key().secret]);
    let e = store
        .get(&format!("{prefix}/x"), None)
        .await
        .expect_err("GET in a missing bucket");
    assert_eq!(e.kind(), F::ANSWERS.get_in_missing_bucket, "GET: {e}");
    assert_redacted(&e, &[&f.key().secret]);
}

pub async fn a_key_revoked_while_running_is_invalid_access_key_id<F: Fixture>(f: &F) {
    let prefix = unique("revoked");
    let key = f.new_key().await;
    let store = store(f, &key, &prefix).await;
    store
        .probe(ProbeMode::ReadWrite, None)
        .await
        .expect("valid before revocation");

    f.revoke(&key).await;

    // The very next request is refused: no cache delay to wait out on any server.
    let e = store
        .probe(ProbeMode::Read, None)
        .await
        .expect_err("revoked key");
    assert_eq!(e.kind(), backend(BackendReason::InvalidAccessKeyId), "{e}");
    assert!(e.is_terminal());
    assert_eq!(
        e.backend_reason().map(BackendReason::as_str),
        Some("InvalidAccessKeyId")
    );
    assert_redacted(&e, &[&key.secret]);
    let e = store
        .get(&format!("{prefix}/x"), None)
        .await
        .expect_err("GET with the revoked key");
    assert_eq!(e.kind(), backend(BackendReason::InvalidAccessKeyId), "{e}");
    assert_redacted(&e, &[&key.secret]);
}

/// Two keys on one bucket; one is revoked, the other still reads what the first wrote.
pub async fn after_rotation_the_revoked_key_fails_and_the_other_still_reads<F: Fixture>(f: &F) {
    let prefix = unique("rotation");
    let old_key = f.new_key().await;
    let backend_a = store(f, &old_key, &prefix).await;
    let backend_b = store(f, &f.second_key(), &prefix).await;

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

    f.revoke(&old_key).await;

    let e = backend_a
        .probe(ProbeMode::Read, Some(&key))
        .await
        .expect_err("A is revoked");
    assert_eq!(e.kind(), backend(BackendReason::InvalidAccessKeyId), "{e}");
    assert!(e.is_terminal());
    assert_eq!(
        e.backend_reason().map(BackendReason::as_str),
        Some("InvalidAccessKeyId")
    );
    assert_redacted(&e, &[&old_key.secret]);
    let v = verify(&backend_a, &key, &digest, Some(data.len() as u64)).await;
    let e = failed(&v);
    assert!(e.is_terminal(), "A cannot read: {e}");

    backend_b
        .probe(ProbeMode::Read, Some(&key))
        .await
        .expect("B is healthy");
    let report = verify(&backend_b, &key, &digest, Some(data.len() as u64)).await;
    assert!(report.verdict.is_verified(), "{:?}", report.verdict);
    assert_eq!(report.bytes, data.len() as u64);
    backend_b.delete(&key).await.unwrap();
}

/// The control for the uploads from files: an aws-sdk-s3 client with the SDK's default checksum
/// settings sends a file as an aws-chunked body with a CRC32 trailer, which some servers reject
/// (`Answers::default_checksum_upload`). If a documented rejection starts passing, the SDK or the
/// server changed and the `WhenRequired` setting in `src/storage/s3.rs` is no longer what makes
/// castellan's uploads work there. Castellan's store uploads the same file everywhere.
pub async fn the_sdks_default_streaming_checksum_upload_and_castellans_file_upload<F: Fixture>(
    f: &F,
) {
    let key = f.key();
    let conf = aws_sdk_s3::Config::builder()
        .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
        .region(aws_sdk_s3::config::Region::new("us-east-1"))
        .endpoint_url(f.endpoint())
        .force_path_style(true)
        .credentials_provider(aws_sdk_s3::config::Credentials::new(
            &key.id,
            &key.secret,
            None,
            None,
            "test",
        ))
        .build();
    let raw = aws_sdk_s3::Client::from_conf(conf);
    let data = pattern(64 * 1024, 1);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("blob");
    std::fs::write(&path, &data).unwrap();
    let prefix = unique("trap");
    let object = format!("{prefix}/default-checksums");
    let sent = raw
        .put_object()
        .bucket(f.bucket())
        .key(&object)
        .body(
            aws_sdk_s3::primitives::ByteStream::from_path(&path)
                .await
                .unwrap(),
        )
        .send()
        .await;
    match (F::ANSWERS.default_checksum_upload, sent) {
        (DefaultChecksumUpload::Accepted, Ok(_)) => {}
        (DefaultChecksumUpload::Accepted, Err(e)) => {
            panic!("{} accepted this upload before: {e:?}", F::NAME)
        }
        (DefaultChecksumUpload::Rejected(code), Err(e)) => {
            let got = aws_sdk_s3::error::ProvideErrorMetadata::code(&e).map(str::to_owned);
            assert_eq!(got.as_deref(), Some(code), "{e:?}");
        }
        (DefaultChecksumUpload::Rejected(code), Ok(_)) => panic!(
            "{} no longer rejects the SDK's default streaming upload with {code}",
            F::NAME
        ),
    }

    let store = store(f, &key, &prefix).await;
    store
        .put(
            &object,
            PutBody::Path(path),
            data.len() as u64,
            &PutOptions::default(),
        )
        .await
        .expect("castellan's PUT of the same file");
    assert_eq!(read_all(&store, &object, None).await, data);
    store.delete(&object).await.unwrap();
}
