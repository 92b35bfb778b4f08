//! Bounded, shared, rate-limited digest verification for the operator, and its memory.
//!
//! Owns: how many verifications run at once, shared fairly between namespaces ([`slots`]),
//! the operator-wide byte budget,
//! sharing one read between concurrent requests for the same `(reader, key, digest)`,
//! retrying reads whose body was cut short, the verification metrics, and remembering
//! conclusive verdicts ([`memory`]) so that a converged mapping reconciled again by an unrelated
//! event does no I/O. Every read goes through [`crate::storage::verify::read_verified`].
//!
//! Must not: decide placement or talk to the API server.

pub mod memory;
pub mod slots;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::{BoxFuture, FutureExt, Shared};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use tokio::time::Instant;

pub use memory::Fact;
use memory::{fact_key, worth_retrying, FactKey, Memory, PRESENT_TRUSTED_FOR};
use slots::FairSlots;

use crate::digest::Digest;
use crate::metrics::{Metrics, ResultLabels};
use crate::storage::verify::{read_verified, ByteBudget, ReadLimits, ReadOptions, Sink, Verdict};
use crate::storage::{ObjectStore, StorageError};

/// Attempts of one verification when the download is cut short.
pub const MAX_ATTEMPTS: u32 = 3;
/// Pause before the second attempt; doubled before each further one.
pub const RETRY_PAUSE: Duration = Duration::from_millis(200);

/// What to verify: one object, read by one reader.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// The namespace the verification is for: slots are shared fairly between namespaces.
    pub tenant: String,
    /// Who reads: the backend's namespace, uid, generation and credentials
    /// ([`crate::placement::view::reader_of`]). Facts and shared reads never cross readers, so
    /// a backend that claims another tenant's `spec.location` learns nothing that tenant read.
    pub reader: String,
    pub key: String,
    pub digest: Digest,
    /// The declared size, checked on the announced length before any body byte is read.
    pub size: Option<u64>,
}

impl Target {
    fn fact_key(&self) -> FactKey {
        fact_key(&self.reader, &self.key, &self.digest)
    }
}

type Pending = Shared<BoxFuture<'static, (Verdict, Time)>>;

#[derive(Default)]
struct State {
    memory: Memory,
    inflight: HashMap<FactKey, Pending>,
}

/// Bounded, shared, rate-limited verification. One per operator.
pub struct Verifier {
    slots: Arc<FairSlots>,
    budget: Option<Arc<ByteBudget>>,
    metrics: Arc<Metrics>,
    state: Arc<Mutex<State>>,
    urgent: Arc<Urgent>,
}

/// Reassignment reads in flight: a scrub starts no object while one runs, so a stranded mapping
/// never waits for a scrub.
#[derive(Default)]
struct Urgent {
    running: std::sync::atomic::AtomicUsize,
    idle: tokio::sync::Notify,
}

/// Counts one reassignment read for as long as it lives.
struct UrgentRead(Arc<Urgent>);

impl UrgentRead {
    fn start(urgent: &Arc<Urgent>) -> UrgentRead {
        urgent
            .running
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        UrgentRead(urgent.clone())
    }
}

impl Drop for UrgentRead {
    fn drop(&mut self) {
        let left = self
            .0
            .running
            .fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
        if left == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

/// What a scrub read found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScrubRead {
    pub verdict: Verdict,
    /// When the verdict was reached (the `now` the caller passed).
    pub at: Time,
    /// Body bytes read.
    pub bytes: u64,
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
            slots: Arc::new(FairSlots::new(concurrency)),
            budget: bytes_per_second.map(|r| Arc::new(ByteBudget::new(r))),
            metrics,
            state: Arc::default(),
            urgent: Arc::default(),
        }
    }

    /// Waits until no reassignment read is in flight.
    async fn until_no_reassignment(&self) {
        loop {
            let idle = self.urgent.idle.notified();
            tokio::pin!(idle);
            idle.as_mut().enable();
            if self
                .urgent
                .running
                .load(std::sync::atomic::Ordering::SeqCst)
                == 0
            {
                return;
            }
            idle.await;
        }
    }

    /// Re-reads `target` now, whatever is remembered (a scrub), paying `budget` and the
    /// operator-wide budget, after any reassignment read in flight. Takes no verification slot:
    /// the caller reads one object at a time per backend. The verdict is remembered.
    pub async fn scrub(
        &self,
        store: Arc<dyn ObjectStore>,
        target: &Target,
        budget: Arc<ByteBudget>,
        now: Time,
    ) -> ScrubRead {
        self.until_no_reassignment().await;
        let defaults = ReadLimits::default();
        let options = ReadOptions {
            // A read paced by a small budget is slow on purpose, not a trickling server.
            limits: ReadLimits {
                min_bytes_per_second: defaults
                    .min_bytes_per_second
                    .min(budget.bytes_per_second() / 2)
                    .max(1),
                ..defaults
            },
            budgets: std::iter::once(budget)
                .chain(self.budget.iter().cloned())
                .collect(),
            ..ReadOptions::default()
        };
        let (verdict, bytes) =
            read_with_retries(store.as_ref(), target, &options, &self.metrics, None).await;
        self.lock().memory.remember_verdict(
            target.fact_key(),
            verdict.clone(),
            now.clone(),
            Instant::now(),
        );
        ScrubRead {
            verdict,
            at: now,
            bytes,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// What is remembered about `target`'s object, without any I/O.
    pub fn known(&self, target: &Target) -> Option<Fact> {
        self.lock()
            .memory
            .fact(target.fact_key(), Instant::now())
            .cloned()
    }

    /// Remembers that `target`'s object verified at `at` (e.g. learnt from a status written
    /// earlier), so later reconciles skip the download.
    pub fn remember_verified(&self, target: &Target, bytes: u64, at: Time) {
        self.lock().memory.remember_verdict(
            target.fact_key(),
            Verdict::Verified { bytes },
            at,
            Instant::now(),
        );
    }

    /// HEAD of `target`'s object (remembered for a few minutes): `Some(size)` when present.
    pub async fn head(
        &self,
        store: Arc<dyn ObjectStore>,
        target: &Target,
    ) -> Result<Option<u64>, StorageError> {
        let key = target.fact_key();
        match self.lock().memory.fact(key, Instant::now()) {
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
            let _slot = self.slots.acquire(&target.tenant).await;
            store.head(&target.key).await?
        };
        let mut state = self.lock();
        let now = Instant::now();
        match &head {
            Some(info) => state.memory.remember(
                key,
                Fact::Present { size: info.size },
                PRESENT_TRUSTED_FOR,
                now,
            ),
            None => state.memory.remember_verdict(
                key,
                Verdict::Missing,
                Time(k8s_openapi::jiff::Timestamp::UNIX_EPOCH),
                now,
            ),
        }
        Ok(head.map(|i| i.size))
    }

    /// Verifies `target` through `store`. Concurrent calls for the same `(reader, key,
    /// digest)` share one download; a remembered conclusive verdict is returned without I/O.
    /// Returns the verdict and when it was reached (`now` of the call that did the download).
    pub async fn verify(
        &self,
        store: Arc<dyn ObjectStore>,
        target: &Target,
        now: Time,
    ) -> (Verdict, Time) {
        let key = target.fact_key();
        let pending = {
            let mut state = self.lock();
            if let Some(Fact::Verdict { verdict, at }) = state.memory.fact(key, Instant::now()) {
                if verdict.is_conclusive() {
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

    /// The shared download: permit, retries of cut bodies, metrics, then remember the verdict
    /// and leave the in-flight table in one step (so no caller can miss both).
    fn download(
        &self,
        store: Arc<dyn ObjectStore>,
        target: Target,
        key: FactKey,
        now: Time,
    ) -> impl std::future::Future<Output = (Verdict, Time)> + Send + 'static {
        let slots = self.slots.clone();
        let options = ReadOptions {
            budgets: self.budget.iter().cloned().collect(),
            ..ReadOptions::default()
        };
        let metrics = self.metrics.clone();
        let state = self.state.clone();
        let urgent = self.urgent.clone();
        async move {
            let _urgent = UrgentRead::start(&urgent);
            let (verdict, _) =
                read_with_retries(store.as_ref(), &target, &options, &metrics, Some(&slots)).await;
            let mut state = state.lock().unwrap_or_else(|e| e.into_inner());
            state.inflight.remove(&key);
            state
                .memory
                .remember_verdict(key, verdict.clone(), now.clone(), Instant::now());
            (verdict, now)
        }
    }
}

/// One verification, read again while the body is cut short (up to [`MAX_ATTEMPTS`]), each
/// attempt holding a slot of `slots` when given. Returns the verdict and the body bytes read.
async fn read_with_retries(
    store: &dyn ObjectStore,
    target: &Target,
    options: &ReadOptions,
    metrics: &Metrics,
    slots: Option<&FairSlots>,
) -> (Verdict, u64) {
    let mut attempt = 1;
    let mut bytes = 0;
    loop {
        let read = {
            let _slot = match slots {
                Some(slots) => Some(slots.acquire(&target.tenant).await),
                None => None,
            };
            read_verified(
                store,
                &target.key,
                &target.digest,
                target.size,
                Sink::Discard,
                options,
            )
            .await
            .expect("discarding bytes cannot fail")
        };
        bytes += read.bytes;
        metrics.verified_bytes.inc_by(read.bytes);
        metrics
            .verifications
            .get_or_create(&ResultLabels {
                result: read.verdict.metric_label().to_string(),
            })
            .inc();
        if !worth_retrying(&read.verdict) || attempt >= MAX_ATTEMPTS {
            return (read.verdict, bytes);
        }
        tokio::time::sleep(RETRY_PAUSE * 2u32.pow(attempt - 1)).await;
        attempt += 1;
    }
}

#[cfg(test)]
mod tests {
    //! A counting in-memory `ObjectStore` double, used only here to count GETs and shape bodies.
    use super::*;
    use crate::api::reasons::BackendReason;
    use crate::digest::Algorithm;
    use crate::storage::{
        ByteRange, ErrorKind, GetObject, ListPage, ObjectInfo, ProbeMode, ProbeReport, PutBody,
        PutOptions, PutOutcome,
    };
    use bytes::Bytes;
    use futures::StreamExt;
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
                        Err(StorageError::new(BackendReason::ServerError, "sentinel"))
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
            tenant: "ns".into(),
            reader: "ns/uid/1/secret".into(),
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
    async fn a_reader_of_another_tenant_learns_nothing_and_reads_through_its_own_store() {
        // Tenant B's backend has verified the object. Tenant A's backend claims the same
        // location and key, but its credentials read nothing: it must get its own verdict.
        let data = vec![9u8; 300];
        let b_store = CountingStore::with(&[("k", &data)], Duration::ZERO);
        let a_store = CountingStore::with(&[], Duration::ZERO);
        let v = verifier(4, None);
        let b = Target {
            reader: "tenant-b/uid-b/1/secret:b-keys:id:secret".into(),
            ..target("k", &data)
        };
        let a = Target {
            reader: "tenant-a/uid-a/1/secret:a-keys:id:secret".into(),
            ..target("k", &data)
        };
        let (verdict, _) = v.verify(b_store.clone(), &b, now()).await;
        assert!(verdict.is_verified(), "{verdict:?}");
        assert!(v.known(&a).is_none(), "B's fact is not A's");

        let (verdict, _) = v.verify(a_store.clone(), &a, now()).await;
        assert_eq!(verdict, Verdict::Missing, "A reads through its own store");
        assert_eq!(a_store.gets.load(Ordering::SeqCst), 1);
        assert_eq!(
            b_store.gets.load(Ordering::SeqCst),
            1,
            "B's store is not read for A"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_namespace_with_a_long_queue_delays_another_by_its_fair_share_only() {
        // One slot. Namespace A queues 20 verifications on a slow server, then namespace B
        // queues one: B's must not wait for A's queue, only for about one of A's reads.
        let data = vec![5u8; 2000];
        let objects: Vec<(String, Vec<u8>)> =
            (0..21).map(|i| (format!("k{i}"), data.clone())).collect();
        let refs: Vec<(&str, &[u8])> = objects
            .iter()
            .map(|(k, d)| (k.as_str(), d.as_slice()))
            .collect();
        let store = CountingStore::with(&refs, Duration::from_millis(2));
        let v = Arc::new(verifier(1, None));
        let finished = Arc::new(Mutex::new(Vec::<String>::new()));
        let mut tasks = Vec::new();
        let mut spawn = |tenant: &str, key: String| {
            let (v, store, finished) = (v.clone(), store.clone(), finished.clone());
            let t = Target {
                tenant: tenant.into(),
                reader: format!("{tenant}/uid/1/secret"),
                ..target(&key, &data)
            };
            let label = format!("{tenant}:{key}");
            tasks.push(tokio::spawn(async move {
                let (verdict, _) = v.verify(store, &t, now()).await;
                assert!(verdict.is_verified(), "{verdict:?}");
                finished.lock().unwrap().push(label);
            }));
        };
        for i in 0..20 {
            spawn("a", format!("k{i}"));
        }
        // A's reads are queued (one runs, the rest wait for the slot) before B asks.
        while store.gets.load(Ordering::SeqCst) == 0 {
            tokio::task::yield_now().await;
        }
        spawn("b", "k20".into());
        for t in tasks {
            t.await.unwrap();
        }
        let finished = finished.lock().unwrap();
        let b_at = finished.iter().position(|l| l == "b:k20").unwrap();
        assert!(
            b_at <= 3,
            "B finished after {b_at} of A's 20 verifications: {finished:?}"
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
    async fn a_scrub_reads_again_whatever_is_remembered_and_keeps_to_its_byte_budget() {
        let data = vec![5u8; 10_000];
        let store = CountingStore::with(&[("k", &data)], Duration::ZERO);
        let v = verifier(2, None);
        let t = target("k", &data);
        v.verify(store.clone(), &t, now()).await;
        assert_eq!(store.gets.load(Ordering::SeqCst), 1);
        // 10,000 bytes per second, the first second's worth already in the bucket: three reads of
        // 10,000 bytes take at least two seconds (real time: the hashing runs on a blocking
        // thread, which a paused test clock does not wait for).
        let budget = Arc::new(ByteBudget::new(10_000));
        let started = tokio::time::Instant::now();
        for _ in 0..3 {
            let read = v.scrub(store.clone(), &t, budget.clone(), now()).await;
            assert_eq!(read.verdict, Verdict::Verified { bytes: 10_000 });
            assert_eq!(read.bytes, 10_000);
        }
        assert_eq!(store.gets.load(Ordering::SeqCst), 4, "every scrub reads");
        let took = started.elapsed();
        assert!(took >= Duration::from_secs(2), "{took:?}");
        assert!(took < Duration::from_secs(5), "{took:?}");
    }

    #[tokio::test]
    async fn a_scrub_starts_no_read_while_a_reassignment_read_runs() {
        let data = vec![6u8; 1000];
        let slow = CountingStore::with(&[("slow", &data)], Duration::from_millis(50));
        let v = Arc::new(verifier(2, None));
        let urgent = {
            let (v, slow, t) = (v.clone(), slow.clone(), target("slow", &data));
            tokio::spawn(async move { v.verify(slow, &t, now()).await })
        };
        tokio::task::yield_now().await;
        let scrubbed = CountingStore::with(&[("k", &data)], Duration::ZERO);
        let budget = Arc::new(ByteBudget::new(u64::MAX / 2));
        let read = v
            .scrub(scrubbed.clone(), &target("k", &data), budget, now())
            .await;
        assert!(
            urgent.is_finished(),
            "the scrub waited for the reassignment read"
        );
        assert_eq!(read.verdict, Verdict::Verified { bytes: 1000 });
    }

    #[tokio::test(start_paused = true)]
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
            v.known(&target("k", &data)).is_none(),
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
        // 3000 bytes at 1000 B/s with one second of burst: at least two seconds. (The clock
        // cannot be paused here: the digest is computed on a blocking thread, which keeps a
        // paused clock from advancing.)
        assert!(elapsed >= Duration::from_millis(1990), "took {elapsed:?}");
    }
}
