//! Bounded, shared, rate-limited digest verification, and the small cache of what it learnt.
//!
//! Owns: how many verifications run at once (a semaphore), how many bytes per second all of them
//! may pull together (a token bucket, [`ByteBudget`]), sharing one download between concurrent
//! requests for the same `(location, key, digest)`, retrying truncated downloads, and remembering
//! conclusive results (verified, mismatching, missing) for a while, so a converged mapping that
//! is reconciled again by an unrelated event does no I/O.
//!
//! One verification is one GET: the size is checked on the announced `Content-Length` before
//! any body byte is read, then the body streams through `digest::verify_stream` (constant
//! memory). Must not: decide placement or talk to the API server.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::{BoxFuture, FutureExt, Shared};
use futures::StreamExt;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use sha2::Digest as _;
use tokio::sync::Semaphore;
use tokio::time::Instant;

use crate::digest::{verify_stream, Digest, VerifyOutcome};
use crate::metrics::{Metrics, ResultLabels};
use crate::storage::{
    ByteRange, ErrorKind, GetObject, ListPage, ObjectInfo, ObjectStore, ProbeMode, ProbeReport,
    PutBody, PutOptions, PutOutcome, StorageError,
};

/// Attempts of one verification when the download is cut short.
pub const MAX_ATTEMPTS: u32 = 3;
/// Pause before the second attempt; doubled before each further one.
pub const RETRY_PAUSE: Duration = Duration::from_millis(200);
/// Most remembered facts; beyond it, expired ones go first, then all.
const MAX_FACTS: usize = 1 << 20;

/// What to verify: one object at one location.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// Replication group: backends with the same location hold the same bytes.
    pub location: String,
    pub key: String,
    pub digest: Digest,
    /// The declared size, checked by HEAD before any download.
    pub size: Option<u64>,
}

/// The verdict on one object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The bytes match the digest.
    Verified { bytes: u64 },
    /// All bytes arrived and hash to something else.
    DigestMismatch { actual: Digest },
    /// The object has another size than declared (or than announced).
    SizeMismatch { expected: u64, actual: u64 },
    /// The download stopped early on every attempt: says nothing about the bytes.
    Truncated { expected: u64, received: u64 },
    /// No object under the key.
    Missing,
    /// HEAD or GET failed (credentials, network, server): says nothing about the bytes.
    Failed(StorageError),
}

impl Verdict {
    /// The `result` label of the `verifications` metric.
    pub fn label(&self) -> &'static str {
        match self {
            Verdict::Verified { .. } => "verified",
            Verdict::DigestMismatch { .. } => "digest_mismatch",
            Verdict::SizeMismatch { .. } => "size_mismatch",
            Verdict::Truncated { .. } => "truncated",
            Verdict::Missing => "missing",
            Verdict::Failed(_) => "error",
        }
    }

    /// Whether this says something lasting about the bytes (and may be remembered).
    fn conclusive(&self) -> bool {
        !matches!(self, Verdict::Truncated { .. } | Verdict::Failed(_))
    }

    /// How long a conclusive verdict is trusted without looking again.
    fn ttl(&self) -> Duration {
        match self {
            Verdict::Verified { .. } => Duration::from_secs(24 * 3600),
            Verdict::DigestMismatch { .. } | Verdict::SizeMismatch { .. } => {
                Duration::from_secs(3600)
            }
            // Replication may still be catching up: look again soon.
            Verdict::Missing => Duration::from_secs(60),
            Verdict::Truncated { .. } | Verdict::Failed(_) => Duration::ZERO,
        }
    }
}

/// What is remembered about an object, and since when.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fact {
    /// A verification said this (at `at`, wall-clock, as the caller passed it).
    Verdict { verdict: Verdict, at: Time },
    /// HEAD saw the object with this size.
    Present { size: u64 },
}

struct Remembered {
    fact: Fact,
    expires: Instant,
}

/// A 128-bit fingerprint of `(location, key, digest)`: memory-frugal at 100k mappings, and a
/// collision is as likely as a SHA-256 one truncated to 128 bits.
type FactKey = u128;

fn fact_key(location: &str, key: &str, digest: &Digest) -> FactKey {
    let mut h = sha2::Sha256::new();
    let digest = digest.to_string();
    for part in [location, key, digest.as_str()] {
        h.update((part.len() as u64).to_le_bytes());
        h.update(part.as_bytes());
    }
    let out = h.finalize();
    u128::from_le_bytes(out[..16].try_into().expect("16 bytes"))
}

type Pending = Shared<BoxFuture<'static, (Verdict, Time)>>;

#[derive(Default)]
struct State {
    facts: HashMap<FactKey, Remembered>,
    inflight: HashMap<FactKey, Pending>,
}

impl State {
    fn fact(&self, key: FactKey) -> Option<&Fact> {
        self.facts
            .get(&key)
            .filter(|r| r.expires > Instant::now())
            .map(|r| &r.fact)
    }

    fn remember(&mut self, key: FactKey, fact: Fact, ttl: Duration) {
        if ttl.is_zero() {
            return;
        }
        if self.facts.len() >= MAX_FACTS {
            let now = Instant::now();
            self.facts.retain(|_, r| r.expires > now);
            if self.facts.len() >= MAX_FACTS {
                self.facts.clear();
            }
        }
        self.facts.insert(
            key,
            Remembered {
                fact,
                expires: Instant::now() + ttl,
            },
        );
    }
}

/// A byte-rate budget shared by all verifications: a token bucket holding at most one second of
/// bytes. A taker may go into debt and then waits until the debt is paid back at the rate, so a
/// chunk larger than the bucket still passes and the long-run rate holds.
pub struct ByteBudget {
    bytes_per_second: u64,
    state: Mutex<(f64, Instant)>,
}

impl ByteBudget {
    /// `bytes_per_second` must be at least 1.
    pub fn new(bytes_per_second: u64) -> ByteBudget {
        let rate = bytes_per_second.max(1);
        ByteBudget {
            bytes_per_second: rate,
            state: Mutex::new((rate as f64, Instant::now())),
        }
    }

    /// Takes `n` bytes from the budget, waiting as long as the bucket is in debt.
    pub async fn take(&self, n: u64) {
        let wait = {
            let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
            let (tokens, last) = &mut *state;
            let now = Instant::now();
            let rate = self.bytes_per_second as f64;
            *tokens = (*tokens + now.duration_since(*last).as_secs_f64() * rate).min(rate);
            *last = now;
            *tokens -= n as f64;
            if *tokens < 0.0 {
                Duration::from_secs_f64(-*tokens / rate)
            } else {
                Duration::ZERO
            }
        };
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }
}

/// Bounded, shared, rate-limited verification. One per operator, in the [`crate::context::Context`].
pub struct Verifier {
    permits: Arc<Semaphore>,
    budget: Option<Arc<ByteBudget>>,
    metrics: Arc<Metrics>,
    state: Arc<Mutex<State>>,
}

impl Verifier {
    /// At most `concurrency` downloads at once (at least 1), pulling at most `bytes_per_second`
    /// together (`None`: unlimited).
    pub fn new(
        concurrency: usize,
        bytes_per_second: Option<u64>,
        metrics: Arc<Metrics>,
    ) -> Verifier {
        Verifier {
            permits: Arc::new(Semaphore::new(concurrency.max(1))),
            budget: bytes_per_second.map(|r| Arc::new(ByteBudget::new(r))),
            metrics,
            state: Arc::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// What is remembered about `target`'s object, without any I/O.
    pub fn known(&self, location: &str, key: &str, digest: &Digest) -> Option<Fact> {
        self.lock().fact(fact_key(location, key, digest)).cloned()
    }

    /// Remembers that `target`'s object verified at `at` (e.g. learnt from a status written
    /// earlier), so later reconciles skip the download.
    pub fn remember_verified(&self, target: &Target, bytes: u64, at: Time) {
        let verdict = Verdict::Verified { bytes };
        let ttl = verdict.ttl();
        self.lock().remember(
            fact_key(&target.location, &target.key, &target.digest),
            Fact::Verdict { verdict, at },
            ttl,
        );
    }

    /// HEAD of `target`'s object (remembered for a few minutes): `Some(size)` when present.
    pub async fn head(
        &self,
        store: Arc<dyn ObjectStore>,
        target: &Target,
    ) -> Result<Option<u64>, StorageError> {
        let key = fact_key(&target.location, &target.key, &target.digest);
        match self.lock().fact(key) {
            Some(Fact::Present { size }) => return Ok(Some(*size)),
            Some(Fact::Verdict {
                verdict: Verdict::Missing,
                ..
            }) => return Ok(None),
            Some(Fact::Verdict {
                verdict: Verdict::Verified { bytes },
                ..
            }) => return Ok(Some(*bytes)),
            _ => {}
        }
        let head = {
            let _permit = self
                .permits
                .acquire()
                .await
                .expect("the semaphore is never closed");
            store.head(&target.key).await?
        };
        let mut state = self.lock();
        match &head {
            Some(info) => state.remember(
                key,
                Fact::Present { size: info.size },
                Duration::from_secs(600),
            ),
            None => state.remember(
                key,
                Fact::Verdict {
                    verdict: Verdict::Missing,
                    at: Time(k8s_openapi::jiff::Timestamp::UNIX_EPOCH),
                },
                Verdict::Missing.ttl(),
            ),
        }
        Ok(head.map(|i| i.size))
    }

    /// Verifies `target` through `store`. Concurrent calls for the same `(location, key,
    /// digest)` share one download; a remembered conclusive verdict is returned without I/O.
    /// Returns the verdict and when it was reached (`now` of the call that did the download).
    pub async fn verify(
        &self,
        store: Arc<dyn ObjectStore>,
        target: &Target,
        now: Time,
    ) -> (Verdict, Time) {
        let key = fact_key(&target.location, &target.key, &target.digest);
        let pending = {
            let mut state = self.lock();
            if let Some(Fact::Verdict { verdict, at }) = state.fact(key) {
                if verdict.conclusive() {
                    return (verdict.clone(), at.clone());
                }
            }
            match state.inflight.get(&key) {
                Some(pending) => pending.clone(),
                None => {
                    let pending = self
                        .download(store, target.clone(), key, now)
                        .boxed()
                        .shared();
                    state.inflight.insert(key, pending.clone());
                    pending
                }
            }
        };
        pending.await
    }

    /// The shared download: permit, retries of truncated bodies, metrics, then remember the
    /// verdict and leave the in-flight table in one step (so no caller can miss both).
    fn download(
        &self,
        store: Arc<dyn ObjectStore>,
        target: Target,
        key: FactKey,
        now: Time,
    ) -> impl std::future::Future<Output = (Verdict, Time)> + Send + 'static {
        let permits = self.permits.clone();
        let budget = self.budget.clone();
        let metrics = self.metrics.clone();
        let state = self.state.clone();
        async move {
            let store: Arc<dyn ObjectStore> = match budget {
                Some(budget) => Arc::new(Budgeted {
                    inner: store,
                    budget,
                }),
                None => store,
            };
            let mut attempt = 1;
            let verdict = loop {
                let (verdict, bytes) = {
                    let _permit = permits
                        .acquire()
                        .await
                        .expect("the semaphore is never closed");
                    once(store.as_ref(), &target).await
                };
                metrics.verified_bytes.inc_by(bytes);
                metrics
                    .verifications
                    .get_or_create(&ResultLabels {
                        result: verdict.label().to_string(),
                    })
                    .inc();
                let retry = matches!(&verdict, Verdict::Truncated { .. })
                    || matches!(&verdict, Verdict::Failed(e) if e.kind() == ErrorKind::BodyInterrupted);
                if !retry || attempt >= MAX_ATTEMPTS {
                    break verdict;
                }
                tokio::time::sleep(RETRY_PAUSE * 2u32.pow(attempt - 1)).await;
                attempt += 1;
            };
            let mut state = state.lock().unwrap_or_else(|e| e.into_inner());
            state.inflight.remove(&key);
            if verdict.conclusive() {
                let ttl = verdict.ttl();
                state.remember(
                    key,
                    Fact::Verdict {
                        verdict: verdict.clone(),
                        at: now.clone(),
                    },
                    ttl,
                );
            }
            (verdict, now)
        }
    }
}

/// One GET + digest pass; returns the verdict and the body bytes received.
///
/// The size check happens on the GET's announced `Content-Length`, before a byte of the body is
/// read (a mismatching body is dropped unread): the same guarantee as a HEAD first, one request
/// fewer. Dropping the HEAD took 10k stranded 1 MiB mappings from 1.41x to 1.24x the
/// GET + hash + write floor (`benches/scale.rs`, figures in `bench/README.md`).
async fn once(store: &dyn ObjectStore, target: &Target) -> (Verdict, u64) {
    let got = match store.get(&target.key, None).await {
        Err(e) if e.kind() == ErrorKind::NotFound => return (Verdict::Missing, 0),
        Err(e) => return (Verdict::Failed(e), 0),
        Ok(got) => got,
    };
    if let (Some(expected), Some(actual)) = (target.size, got.content_length) {
        if expected != actual {
            return (Verdict::SizeMismatch { expected, actual }, 0);
        }
    }
    let received = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let body = {
        let received = received.clone();
        got.body.inspect(move |item| {
            if let Ok(chunk) = item {
                received.fetch_add(chunk.len() as u64, std::sync::atomic::Ordering::Relaxed);
            }
        })
    };
    let outcome = verify_stream(body, &target.digest, got.content_length.or(target.size)).await;
    let bytes = received.load(std::sync::atomic::Ordering::Relaxed);
    let verdict = match outcome {
        VerifyOutcome::Verified { bytes } => Verdict::Verified { bytes },
        VerifyOutcome::DigestMismatch { actual } => Verdict::DigestMismatch { actual },
        VerifyOutcome::SizeMismatch { expected, actual } => {
            Verdict::SizeMismatch { expected, actual }
        }
        VerifyOutcome::Truncated { expected, received } => {
            Verdict::Truncated { expected, received }
        }
        VerifyOutcome::Io(e) => Verdict::Failed(e),
    };
    (verdict, bytes)
}

/// An [`ObjectStore`] whose GET bodies are paid for from a [`ByteBudget`] as they stream.
struct Budgeted {
    inner: Arc<dyn ObjectStore>,
    budget: Arc<ByteBudget>,
}

#[async_trait::async_trait]
impl ObjectStore for Budgeted {
    async fn probe(
        &self,
        mode: ProbeMode,
        known_key: Option<&str>,
    ) -> Result<ProbeReport, StorageError> {
        self.inner.probe(mode, known_key).await
    }

    async fn head(&self, key: &str) -> Result<Option<ObjectInfo>, StorageError> {
        self.inner.head(key).await
    }

    async fn get(&self, key: &str, range: Option<ByteRange>) -> Result<GetObject, StorageError> {
        let mut got = self.inner.get(key, range).await?;
        let budget = self.budget.clone();
        got.body = got
            .body
            .then(move |chunk| {
                let budget = budget.clone();
                async move {
                    if let Ok(bytes) = &chunk {
                        budget.take(bytes.len() as u64).await;
                    }
                    chunk
                }
            })
            .boxed();
        Ok(got)
    }

    async fn put(
        &self,
        key: &str,
        body: PutBody,
        size: u64,
        options: &PutOptions,
    ) -> Result<PutOutcome, StorageError> {
        self.inner.put(key, body, size, options).await
    }

    async fn delete(&self, key: &str) -> Result<(), StorageError> {
        self.inner.delete(key).await
    }

    async fn list(
        &self,
        prefix: &str,
        continuation_token: Option<&str>,
    ) -> Result<ListPage, StorageError> {
        self.inner.list(prefix, continuation_token).await
    }

    fn key_prefix(&self) -> &str {
        self.inner.key_prefix()
    }
}

#[cfg(test)]
mod tests {
    //! A counting in-memory `ObjectStore` double, used only here to count GETs and shape bodies.
    use super::*;
    use crate::digest::Algorithm;
    use bytes::Bytes;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[derive(Default)]
    struct CountingStore {
        objects: Mutex<HashMap<String, Bytes>>,
        gets: AtomicUsize,
        /// The first N GETs deliver only half of the body, then fail.
        truncate_first: AtomicUsize,
        /// Each body chunk waits this long (to make downloads overlap).
        chunk_delay: Duration,
        running: Arc<AtomicUsize>,
        max_running: AtomicUsize,
    }

    impl CountingStore {
        fn with(objects: &[(&str, &[u8])], chunk_delay: Duration) -> Arc<CountingStore> {
            let store = CountingStore {
                chunk_delay,
                ..Default::default()
            };
            for (k, v) in objects {
                store
                    .objects
                    .lock()
                    .unwrap()
                    .insert(k.to_string(), Bytes::copy_from_slice(v));
            }
            Arc::new(store)
        }
    }

    #[async_trait::async_trait]
    impl ObjectStore for CountingStore {
        async fn probe(&self, _: ProbeMode, _: Option<&str>) -> Result<ProbeReport, StorageError> {
            unreachable!("verification never probes")
        }
        async fn head(&self, key: &str) -> Result<Option<ObjectInfo>, StorageError> {
            Ok(self.objects.lock().unwrap().get(key).map(|b| ObjectInfo {
                size: b.len() as u64,
                etag: None,
                last_modified: None,
                storage_class: None,
            }))
        }
        async fn get(&self, key: &str, _: Option<ByteRange>) -> Result<GetObject, StorageError> {
            self.gets.fetch_add(1, Ordering::SeqCst);
            let data = self
                .objects
                .lock()
                .unwrap()
                .get(key)
                .cloned()
                .ok_or_else(|| StorageError::new(ErrorKind::NotFound, "no such key"))?;
            let running = self.running.fetch_add(1, Ordering::SeqCst) + 1;
            self.max_running.fetch_max(running, Ordering::SeqCst);
            let truncate = self
                .truncate_first
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok();
            let len = data.len();
            let mut chunks: Vec<Result<Bytes, StorageError>> = data
                .chunks(100)
                .map(|c| Ok(Bytes::copy_from_slice(c)))
                .collect();
            if truncate {
                chunks.truncate(chunks.len() / 2);
                chunks.push(Err(StorageError::new(
                    ErrorKind::BodyInterrupted,
                    "connection reset",
                )));
            }
            let delay = self.chunk_delay;
            // Count the download as running until its body is dropped.
            let guard = RunningGuard(self.running.clone());
            let body = futures::stream::iter(chunks)
                .then(move |c| async move {
                    tokio::time::sleep(delay).await;
                    c
                })
                .chain(
                    futures::stream::once(async move {
                        drop(guard);
                        Err(StorageError::new(ErrorKind::ServerError, "sentinel"))
                    })
                    .filter(|_| futures::future::ready(false)),
                )
                .boxed();
            Ok(GetObject {
                content_length: Some(len as u64),
                total_size: None,
                etag: None,
                body,
            })
        }
        async fn put(
            &self,
            _: &str,
            _: PutBody,
            _: u64,
            _: &PutOptions,
        ) -> Result<PutOutcome, StorageError> {
            unreachable!("verification never writes")
        }
        async fn delete(&self, _: &str) -> Result<(), StorageError> {
            unreachable!("verification never deletes")
        }
        async fn list(&self, _: &str, _: Option<&str>) -> Result<ListPage, StorageError> {
            unreachable!("verification never lists")
        }
        fn key_prefix(&self) -> &str {
            ""
        }
    }

    /// Counts a download as running until its body ends or is dropped.
    struct RunningGuard(Arc<AtomicUsize>);
    impl Drop for RunningGuard {
        fn drop(&mut self) {
            self.0.fetch_sub(1, Ordering::SeqCst);
        }
    }

    fn target(key: &str, data: &[u8]) -> Target {
        Target {
            location: "loc".into(),
            key: key.into(),
            digest: Digest::of_bytes(Algorithm::Sha256, data),
            size: Some(data.len() as u64),
        }
    }

    fn now() -> Time {
        Time(k8s_openapi::jiff::Timestamp::from_second(1_000).unwrap())
    }

    fn verifier(concurrency: usize, rate: Option<u64>) -> Verifier {
        Verifier::new(concurrency, rate, Arc::new(Metrics::new()))
    }

    #[tokio::test]
    async fn concurrent_verifications_of_the_same_object_share_one_download() {
        let data = vec![7u8; 1000];
        let store = CountingStore::with(&[("k", &data)], Duration::from_millis(5));
        let v = verifier(4, None);
        let t = target("k", &data);
        let (a, b) = tokio::join!(
            v.verify(store.clone(), &t, now()),
            v.verify(store.clone(), &t, now())
        );
        assert_eq!(a.0, Verdict::Verified { bytes: 1000 });
        assert_eq!(b.0, a.0);
        assert_eq!(
            store.gets.load(Ordering::SeqCst),
            1,
            "one GET for two concurrent verifications"
        );
        // Remembered: a later verification does no I/O at all.
        let (c, at) = v
            .verify(
                store.clone(),
                &t,
                Time(k8s_openapi::jiff::Timestamp::from_second(2_000).unwrap()),
            )
            .await;
        assert_eq!(c, a.0);
        assert_eq!(
            at,
            now(),
            "the remembered verdict keeps the time it was reached"
        );
        assert_eq!(store.gets.load(Ordering::SeqCst), 1);
        assert!(
            v.metrics
                .render()
                .contains("castellan_verified_bytes_total 1000"),
            "{}",
            v.metrics.render()
        );
    }

    #[tokio::test]
    async fn different_objects_are_not_shared_and_concurrency_is_bounded() {
        let data = vec![1u8; 500];
        let store = CountingStore::with(
            &[("a", &data), ("b", &data), ("c", &data)],
            Duration::from_millis(2),
        );
        let v = verifier(1, None);
        let (ta, tb, tc) = (target("a", &data), target("b", &data), target("c", &data));
        let results = tokio::join!(
            v.verify(store.clone(), &ta, now()),
            v.verify(store.clone(), &tb, now()),
            v.verify(store.clone(), &tc, now())
        );
        for (verdict, _) in [results.0, results.1, results.2] {
            assert_eq!(verdict, Verdict::Verified { bytes: 500 });
        }
        assert_eq!(store.gets.load(Ordering::SeqCst), 3);
        assert_eq!(
            store.max_running.load(Ordering::SeqCst),
            1,
            "concurrency 1 runs one download at a time"
        );
    }

    #[tokio::test]
    async fn a_truncated_download_is_retried_and_never_a_mismatch() {
        let data = vec![3u8; 1000];
        let store = CountingStore::with(&[("k", &data)], Duration::ZERO);
        store.truncate_first.store(1, Ordering::SeqCst);
        let v = verifier(2, None);
        let (verdict, _) = v.verify(store.clone(), &target("k", &data), now()).await;
        assert_eq!(verdict, Verdict::Verified { bytes: 1000 });
        assert_eq!(store.gets.load(Ordering::SeqCst), 2);

        // A fresh verifier: the first one remembers that the bytes verified.
        let v = verifier(2, None);
        let store = CountingStore::with(&[("k", &data)], Duration::ZERO);
        store.truncate_first.store(10, Ordering::SeqCst);
        let (verdict, _) = v.verify(store.clone(), &target("k", &data), now()).await;
        assert!(
            matches!(verdict, Verdict::Truncated { expected: 1000, .. }),
            "{verdict:?}"
        );
        assert_eq!(store.gets.load(Ordering::SeqCst), MAX_ATTEMPTS as usize);
        assert!(
            v.known("loc", "k", &target("k", &data).digest).is_none(),
            "a truncation is never remembered"
        );
    }

    #[tokio::test]
    async fn a_corrupt_or_missing_object_is_reported_and_remembered() {
        let good = vec![1u8; 300];
        let bad = vec![2u8; 300];
        let store = CountingStore::with(&[("k", &bad)], Duration::ZERO);
        let v = verifier(2, None);
        let t = target("k", &good);
        let (verdict, _) = v.verify(store.clone(), &t, now()).await;
        assert_eq!(
            verdict,
            Verdict::DigestMismatch {
                actual: Digest::of_bytes(Algorithm::Sha256, &bad)
            }
        );
        let _ = v.verify(store.clone(), &t, now()).await;
        assert_eq!(
            store.gets.load(Ordering::SeqCst),
            1,
            "a known mismatch is not downloaded again"
        );
        let (missing, _) = v.verify(store.clone(), &target("nope", &good), now()).await;
        assert_eq!(missing, Verdict::Missing);
        let mut short = target("k", &bad);
        short.size = Some(7);
        let (size, _) = v.verify(store.clone(), &short, now()).await;
        assert_eq!(
            size,
            Verdict::SizeMismatch {
                expected: 7,
                actual: 300
            }
        );
    }

    #[tokio::test]
    async fn the_byte_budget_holds_the_rate_across_verifications() {
        let data = vec![5u8; 1000];
        let store =
            CountingStore::with(&[("a", &data), ("b", &data), ("c", &data)], Duration::ZERO);
        let v = verifier(3, Some(1000));
        let start = Instant::now();
        let (ta, tb, tc) = (target("a", &data), target("b", &data), target("c", &data));
        let _ = tokio::join!(
            v.verify(store.clone(), &ta, now()),
            v.verify(store.clone(), &tb, now()),
            v.verify(store.clone(), &tc, now())
        );
        let elapsed = start.elapsed();
        // 3000 bytes at 1000 B/s with one second of burst: at least two seconds.
        assert!(elapsed >= Duration::from_millis(1900), "took {elapsed:?}");
    }

    #[tokio::test]
    async fn the_byte_budget_allows_a_burst_then_paces() {
        let budget = ByteBudget::new(1000);
        let start = Instant::now();
        budget.take(1000).await;
        assert!(
            start.elapsed() < Duration::from_millis(200),
            "one second of burst passes at once"
        );
        budget.take(500).await;
        budget.take(500).await;
        let elapsed = start.elapsed();
        // The lower bound is the rate; the upper bound only catches a budget that never pays back.
        assert!(elapsed >= Duration::from_millis(950), "took {elapsed:?}");
        assert!(elapsed < Duration::from_secs(5), "took {elapsed:?}");
    }
}
