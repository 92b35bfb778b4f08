//! The one way Castellan reads an object it must trust: a single GET whose announced size is
//! checked before a byte of the body is read, then the body streamed through the digest
//! ([`crate::digest::verify_stream`]) in constant memory, optionally into a file as it passes.
//!
//! Owns: the order of those checks, the [`Verdict`] every caller (the mapping controller's
//! verifier, `castellan get`, `castellan verify`, the scrubber) receives, the byte-rate budgets
//! a read pays from, and the measurement (bytes, elapsed, throughput).
//!
//! Must not: retry, cache or decide anything about placement (the callers do), or hold more
//! than the digest pipeline's bounded buffers of a body.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::{Stream, StreamExt};
use tokio::io::AsyncWriteExt;
use tokio::time::Instant;

use super::{ByteStream, ErrorKind, ObjectStore, StorageError};
use crate::digest::{verify_stream, Digest, VerifyOutcome};

/// Buffer between a body and the file it is written to.
const WRITE_BUFFER: usize = 1 << 20;

/// The verdict on one object's bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Every byte arrived and the bytes hash to the digest.
    Verified { bytes: u64 },
    /// Every byte arrived and the bytes hash to something else.
    DigestMismatch { actual: Digest },
    /// The object has another size than expected: announced, or counted while streaming (then
    /// `actual` counts up to the first chunk past `expected`, where reading stopped).
    SizeMismatch { expected: u64, actual: u64 },
    /// The body stopped before `expected` bytes: says nothing about the content.
    Truncated { expected: u64, received: u64 },
    /// The body failed and its length was unknown: says nothing about the content.
    Interrupted(StorageError),
    /// No object under the key.
    Missing,
    /// The GET was refused or failed before any body (credentials, bucket, network, server).
    Failed(StorageError),
}

impl Verdict {
    pub fn is_verified(&self) -> bool {
        matches!(self, Verdict::Verified { .. })
    }

    /// Whether the verdict says something lasting about the stored bytes (as opposed to a read
    /// that could not finish).
    pub fn is_conclusive(&self) -> bool {
        matches!(
            self,
            Verdict::Verified { .. }
                | Verdict::DigestMismatch { .. }
                | Verdict::SizeMismatch { .. }
                | Verdict::Missing
        )
    }

    /// The stored bytes are not the artifact: another digest or another size.
    pub fn is_mismatch(&self) -> bool {
        matches!(
            self,
            Verdict::DigestMismatch { .. } | Verdict::SizeMismatch { .. }
        )
    }

    /// A stable CamelCase name for logs, events and CLI output.
    pub fn label(&self) -> &'static str {
        match self {
            Verdict::Verified { .. } => "Verified",
            Verdict::DigestMismatch { .. } => "DigestMismatch",
            Verdict::SizeMismatch { .. } => "SizeMismatch",
            Verdict::Truncated { .. } => "Truncated",
            Verdict::Missing => "ObjectMissing",
            Verdict::Interrupted(e) | Verdict::Failed(e) => e.kind().label(),
        }
    }

    /// The `result` label of the verification metrics (snake case).
    /// Every value [`Verdict::metric_label`] can take (to remove a deleted backend's series).
    pub const METRIC_LABELS: [&'static str; 6] = [
        "verified",
        "digest_mismatch",
        "size_mismatch",
        "truncated",
        "missing",
        "error",
    ];

    pub fn metric_label(&self) -> &'static str {
        match self {
            Verdict::Verified { .. } => "verified",
            Verdict::DigestMismatch { .. } => "digest_mismatch",
            Verdict::SizeMismatch { .. } => "size_mismatch",
            Verdict::Truncated { .. } | Verdict::Interrupted(_) => "truncated",
            Verdict::Missing => "missing",
            Verdict::Failed(_) => "error",
        }
    }
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Verdict::Verified { bytes } => write!(f, "verified ({bytes} bytes)"),
            Verdict::DigestMismatch { actual } => write!(f, "the bytes hash to {actual}"),
            Verdict::SizeMismatch { expected, actual } => {
                write!(f, "{actual} bytes, expected {expected}")
            }
            Verdict::Truncated { expected, received } => {
                write!(f, "the body stopped after {received} of {expected} bytes")
            }
            Verdict::Interrupted(e) => write!(f, "the body failed: {e}"),
            Verdict::Missing => f.write_str("no object under the key"),
            Verdict::Failed(e) => write!(f, "{e}"),
        }
    }
}

/// A verdict with what it cost.
#[derive(Clone, Debug, PartialEq)]
pub struct Verification {
    pub verdict: Verdict,
    /// Body bytes received (also for a truncated or mismatching object).
    pub bytes: u64,
    /// From the GET request to the end of the body.
    pub elapsed: Duration,
}

impl Verification {
    /// Received bytes per second, in MiB/s (0 when no time passed).
    pub fn mib_per_sec(&self) -> f64 {
        mib_per_sec(self.bytes, self.elapsed)
    }
}

/// Bytes per `elapsed`, in MiB/s (0 when no time passed).
pub fn mib_per_sec(bytes: u64, elapsed: Duration) -> f64 {
    let secs = elapsed.as_secs_f64();
    if secs <= 0.0 {
        return 0.0;
    }
    bytes as f64 / (1024.0 * 1024.0) / secs
}

/// Where the bytes of a verified read go besides the hasher.
pub enum Sink {
    /// Nowhere: only the verdict matters.
    Discard,
    /// Written to this file as they stream (the caller renames or removes it by the verdict).
    File(tokio::fs::File),
}

/// A byte-rate budget: a token bucket holding at most one second of bytes. A taker may go into
/// debt and then waits until the debt is paid back at the rate, so a chunk larger than the
/// bucket still passes and the long-run rate holds.
pub struct ByteBudget {
    bytes_per_second: u64,
    state: Mutex<(f64, Instant)>,
}

impl ByteBudget {
    /// `bytes_per_second` is raised to at least 1.
    pub fn new(bytes_per_second: u64) -> ByteBudget {
        let rate = bytes_per_second.max(1);
        ByteBudget {
            bytes_per_second: rate,
            state: Mutex::new((rate as f64, Instant::now())),
        }
    }

    pub fn bytes_per_second(&self) -> u64 {
        self.bytes_per_second
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

/// How one read is paced and observed.
#[derive(Clone, Default)]
pub struct ReadOptions {
    /// Budgets every body chunk is paid from, in order (e.g. the backend's, then the operator's).
    pub budgets: Vec<Arc<ByteBudget>>,
    /// Called with the size of every body chunk as it arrives (progress bars).
    pub on_bytes: Option<Arc<dyn Fn(u64) + Send + Sync>>,
    /// When a body that trickles or never ends is given up.
    pub limits: ReadLimits,
}

/// How long a body may take: a server that trickles, stalls or never ends must not hold a
/// verification slot (or a terminal) for longer than an honest slow server would.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReadLimits {
    /// The slowest throughput accepted over the whole body, in bytes per second.
    pub min_bytes_per_second: u64,
    /// Time allowed on top of `size / min_bytes_per_second` (connection, first byte, pauses).
    pub grace: Duration,
    /// The longest wait for the next chunk of the body.
    pub idle: Duration,
}

impl Default for ReadLimits {
    /// 256 KiB/s is far below any object store on a network worth the name; a minute between
    /// chunks is far above any pause an honest server takes.
    fn default() -> ReadLimits {
        ReadLimits {
            min_bytes_per_second: 256 * 1024,
            grace: Duration::from_secs(30),
            idle: Duration::from_secs(60),
        }
    }
}

impl ReadLimits {
    /// The time a body of `size` bytes may take in all, paid at `pace` bytes per second at most
    /// (a byte budget slower than the minimum must not make every read miss its deadline).
    /// `None` when the size is unknown: then only the idle limit applies.
    pub fn deadline_for(&self, size: Option<u64>, pace: Option<u64>) -> Option<Duration> {
        let rate = match pace {
            Some(pace) => self.min_bytes_per_second.min(pace / 2),
            None => self.min_bytes_per_second,
        }
        .max(1);
        let transfer = Duration::from_secs(size?.div_ceil(rate));
        Some(self.grace.saturating_add(transfer))
    }
}

/// A local failure writing the sink: no other backend can fix it.
#[derive(Debug, thiserror::Error)]
#[error("writing the downloaded bytes failed: {0}")]
pub struct SinkError(#[source] pub std::io::Error);

/// Reads `key` from `store` and verifies it against `digest` (and `expected_size`, when known),
/// writing the bytes into `sink` as they stream.
///
/// One GET: a response announcing another length than `expected_size` is a `SizeMismatch`
/// before any body byte is read. `Err` only when the sink could not be written.
pub async fn read_verified(
    store: &dyn ObjectStore,
    key: &str,
    digest: &Digest,
    expected_size: Option<u64>,
    sink: Sink,
    options: &ReadOptions,
) -> Result<Verification, SinkError> {
    let start = Instant::now();
    let done = |verdict: Verdict, bytes: u64| Verification {
        verdict,
        bytes,
        elapsed: start.elapsed(),
    };
    let got = match store.get(key, None).await {
        Ok(got) => got,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(done(Verdict::Missing, 0)),
        Err(e) => return Ok(done(Verdict::Failed(e), 0)),
    };
    if let (Some(expected), Some(actual)) = (expected_size, got.content_length) {
        if expected != actual {
            return Ok(done(Verdict::SizeMismatch { expected, actual }, 0));
        }
    }
    // What this response must deliver: its Content-Length, else the expected size.
    let must_deliver = got.content_length.or(expected_size);
    let received = Arc::new(AtomicU64::new(0));
    let pace = options.budgets.iter().map(|b| b.bytes_per_second()).min();
    let deadline = options
        .limits
        .deadline_for(must_deliver, pace)
        .map(|d| start + d);
    let body = within_limits(got.body, deadline, options.limits.idle);
    let body = observed(body, received.clone(), options.clone()).boxed();
    let (outcome, write_failure) = match sink {
        Sink::Discard => (verify_stream(body, digest, must_deliver).await, None),
        Sink::File(file) => {
            let failure: Arc<Mutex<Option<std::io::Error>>> = Arc::default();
            let tee = tee_into(body, file, must_deliver, failure.clone());
            let outcome = verify_stream(tee, digest, must_deliver).await;
            let failure = failure.lock().unwrap_or_else(|e| e.into_inner()).take();
            (outcome, failure)
        }
    };
    if let Some(e) = write_failure {
        return Err(SinkError(e));
    }
    let verdict = match outcome {
        VerifyOutcome::Verified { bytes } => Verdict::Verified { bytes },
        VerifyOutcome::DigestMismatch { actual } => Verdict::DigestMismatch { actual },
        VerifyOutcome::SizeMismatch { expected, actual } => {
            Verdict::SizeMismatch { expected, actual }
        }
        VerifyOutcome::Truncated { expected, received } => {
            Verdict::Truncated { expected, received }
        }
        VerifyOutcome::Io(e) => Verdict::Interrupted(e),
    };
    Ok(done(verdict, received.load(Ordering::Relaxed)))
}

/// The body until `deadline` (when known) or until a chunk is `idle` late: then one error ends
/// it, which the verification reports as a read that did not finish.
fn within_limits(
    body: ByteStream,
    deadline: Option<Instant>,
    idle: Duration,
) -> impl Stream<Item = Result<bytes::Bytes, StorageError>> + Send {
    futures::stream::unfold(Some(body), move |state| async move {
        let mut body = state?;
        let started = Instant::now();
        let limit = deadline.map_or(started + idle, |d| d.min(started + idle));
        match tokio::time::timeout_at(limit, body.next()).await {
            Ok(Some(chunk)) => Some((chunk, Some(body))),
            Ok(None) => None,
            Err(_) => {
                let why = if deadline.is_some_and(|d| Instant::now() >= d) {
                    "the body did not arrive within its deadline".to_owned()
                } else {
                    format!("the body stalled: no byte for {idle:?}")
                };
                Some((
                    Err(StorageError::new(ErrorKind::BodyInterrupted, why)),
                    None,
                ))
            }
        }
    })
}

/// The body, paid for from the budgets and counted as it streams.
fn observed(
    body: impl Stream<Item = Result<bytes::Bytes, StorageError>> + Send,
    received: Arc<AtomicU64>,
    options: ReadOptions,
) -> impl Stream<Item = Result<bytes::Bytes, StorageError>> {
    let options = Arc::new(options);
    body.then(move |chunk| {
        let received = received.clone();
        let options = options.clone();
        async move {
            if let Ok(bytes) = &chunk {
                let n = bytes.len() as u64;
                received.fetch_add(n, Ordering::Relaxed);
                for budget in &options.budgets {
                    budget.take(n).await;
                }
                if let Some(on_bytes) = &options.on_bytes {
                    on_bytes(n);
                }
            }
            chunk
        }
    })
}

/// The body stream, with every chunk also written to `file` (buffered, flushed and synced when
/// the body ends), never past `limit` bytes: the bytes beyond are passed on (the verification
/// sees them and stops) but not written. A write failure is put in `failure` and ends the
/// stream with an error, so the verification can never report it as verified.
fn tee_into<S>(
    body: S,
    file: tokio::fs::File,
    limit: Option<u64>,
    failure: Arc<Mutex<Option<std::io::Error>>>,
) -> impl Stream<Item = Result<bytes::Bytes, StorageError>>
where
    S: Stream<Item = Result<bytes::Bytes, StorageError>> + Unpin + Send,
{
    let writer = tokio::io::BufWriter::with_capacity(WRITE_BUFFER, file);
    let room = limit.unwrap_or(u64::MAX);
    futures::stream::unfold(Some((body, writer, failure, room)), |state| async move {
        let (mut body, mut writer, failure, room) = state?;
        let local_failure = |e: std::io::Error, failure: &Mutex<Option<std::io::Error>>| {
            *failure.lock().unwrap_or_else(|e| e.into_inner()) = Some(e);
            StorageError::new(ErrorKind::BodyInterrupted, "writing the local file failed")
        };
        match body.next().await {
            None => {
                let finished = async {
                    writer.flush().await?;
                    writer.get_mut().sync_all().await
                };
                match finished.await {
                    Ok(()) => None,
                    Err(e) => Some((Err(local_failure(e, &failure)), None)),
                }
            }
            Some(Ok(chunk)) => {
                let keep = chunk.len().min(usize::try_from(room).unwrap_or(usize::MAX));
                let room = room - keep as u64;
                match writer.write_all(&chunk[..keep]).await {
                    Ok(()) => Some((Ok(chunk), Some((body, writer, failure, room)))),
                    Err(e) => Some((Err(local_failure(e, &failure)), None)),
                }
            }
            Some(Err(e)) => Some((Err(e), None)),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throughput_is_mebibytes_per_second_and_zero_without_time() {
        let cases = [
            (
                "one MiB in one second",
                1 << 20,
                Duration::from_secs(1),
                1.0,
            ),
            (
                "ten MiB in half a second",
                10 << 20,
                Duration::from_millis(500),
                20.0,
            ),
            ("no elapsed time gives zero", 5, Duration::ZERO, 0.0),
        ];
        for (name, bytes, elapsed, want) in cases {
            assert!((mib_per_sec(bytes, elapsed) - want).abs() < 1e-9, "{name}");
        }
    }

    #[test]
    fn only_complete_reads_are_conclusive() {
        let e = StorageError::new(ErrorKind::BodyInterrupted, "cut");
        let cases = [
            ("a verified read", Verdict::Verified { bytes: 1 }, true),
            ("a missing object", Verdict::Missing, true),
            (
                "a size mismatch",
                Verdict::SizeMismatch {
                    expected: 1,
                    actual: 2,
                },
                true,
            ),
            (
                "a truncated body",
                Verdict::Truncated {
                    expected: 2,
                    received: 1,
                },
                false,
            ),
            (
                "an interrupted body",
                Verdict::Interrupted(e.clone()),
                false,
            ),
            ("a failed request", Verdict::Failed(e), false),
        ];
        for (name, verdict, conclusive) in cases {
            assert_eq!(verdict.is_conclusive(), conclusive, "{name}");
        }
    }

    fn digest_of(data: &[u8]) -> Digest {
        Digest::of_bytes(crate::digest::Algorithm::Sha256, data)
    }

    #[tokio::test]
    async fn the_tee_writes_what_it_passes_on_and_reports_write_failures() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out");
        let file = tokio::fs::File::create(&path).await.unwrap();
        let chunks: Vec<Result<bytes::Bytes, StorageError>> =
            vec![Ok("hello ".into()), Ok("world".into())];
        let failure: Arc<Mutex<Option<std::io::Error>>> = Arc::default();
        let tee = tee_into(futures::stream::iter(chunks), file, None, failure.clone());
        let outcome = verify_stream(tee, &digest_of(b"hello world"), Some(11)).await;
        assert!(outcome.is_verified(), "{outcome:?}");
        assert!(failure.lock().unwrap().is_none());
        assert_eq!(std::fs::read(&path).unwrap(), b"hello world");

        // A read-only handle cannot be written: the failure surfaces, the stream does not verify.
        let read_only = tokio::fs::File::open(&path).await.unwrap();
        let failure: Arc<Mutex<Option<std::io::Error>>> = Arc::default();
        let big = vec![7u8; 2 * WRITE_BUFFER];
        let chunks: Vec<Result<bytes::Bytes, StorageError>> = vec![Ok(big.clone().into())];
        let tee = tee_into(
            futures::stream::iter(chunks),
            read_only,
            None,
            failure.clone(),
        );
        let outcome = verify_stream(tee, &digest_of(&big), None).await;
        assert!(!outcome.is_verified(), "{outcome:?}");
        assert!(failure.lock().unwrap().is_some());
    }

    /// A store whose one object answers with a scripted body: what a hostile or broken server
    /// can send after honest headers.
    struct Scripted {
        content_length: Option<u64>,
        body: Mutex<Option<ByteStream>>,
    }

    impl Scripted {
        fn new(content_length: Option<u64>, body: ByteStream) -> Scripted {
            Scripted {
                content_length,
                body: Mutex::new(Some(body)),
            }
        }
    }

    #[async_trait::async_trait]
    impl ObjectStore for Scripted {
        async fn probe(
            &self,
            _: super::super::ProbeMode,
            _: Option<&str>,
        ) -> Result<super::super::ProbeReport, StorageError> {
            unreachable!("a verified read never probes")
        }
        async fn head(&self, _: &str) -> Result<Option<super::super::ObjectInfo>, StorageError> {
            unreachable!("a verified read is one GET")
        }
        async fn get(
            &self,
            _: &str,
            _: Option<super::super::ByteRange>,
        ) -> Result<super::super::GetObject, StorageError> {
            Ok(super::super::GetObject {
                content_length: self.content_length,
                total_size: None,
                etag: None,
                body: self.body.lock().unwrap().take().expect("one GET"),
            })
        }
        async fn put(
            &self,
            _: &str,
            _: super::super::PutBody,
            _: u64,
            _: &super::super::PutOptions,
        ) -> Result<super::super::PutOutcome, StorageError> {
            unreachable!()
        }
        async fn delete(&self, _: &str) -> Result<(), StorageError> {
            unreachable!()
        }
        async fn list(
            &self,
            _: &str,
            _: Option<&str>,
        ) -> Result<super::super::ListPage, StorageError> {
            unreachable!()
        }
        fn key_prefix(&self) -> &str {
            ""
        }
    }

    fn endless() -> ByteStream {
        futures::stream::repeat_with(|| Ok(bytes::Bytes::from(vec![b'x'; 4096]))).boxed()
    }

    fn trickle(every: Duration) -> ByteStream {
        futures::stream::repeat_with(|| Ok(bytes::Bytes::from_static(b"x")))
            .then(move |c| async move {
                tokio::time::sleep(every).await;
                c
            })
            .boxed()
    }

    fn limits(idle: Duration, grace: Duration) -> ReadOptions {
        ReadOptions {
            limits: ReadLimits {
                min_bytes_per_second: 1024,
                grace,
                idle,
            },
            ..ReadOptions::default()
        }
    }

    #[tokio::test]
    async fn an_endless_body_is_a_size_mismatch_as_soon_as_it_passes_the_expected_size() {
        // No Content-Length: only the declared size can stop it.
        let store = Scripted::new(None, endless());
        let read = read_verified(
            &store,
            "k",
            &digest_of(b"ten bytes!"),
            Some(10),
            Sink::Discard,
            &ReadOptions::default(),
        )
        .await
        .unwrap();
        assert!(
            matches!(read.verdict, Verdict::SizeMismatch { expected: 10, actual } if actual > 10),
            "{:?}",
            read.verdict
        );
        assert_eq!(
            read.bytes, 4096,
            "reading stops at the first chunk past the size"
        );
    }

    #[tokio::test]
    async fn a_file_sink_never_grows_past_the_expected_size() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out");
        let file = tokio::fs::File::create(&path).await.unwrap();
        let store = Scripted::new(None, endless());
        let read = read_verified(
            &store,
            "k",
            &digest_of(b"ten bytes!"),
            Some(10),
            Sink::File(file),
            &ReadOptions::default(),
        )
        .await
        .unwrap();
        assert!(read.verdict.is_mismatch(), "{:?}", read.verdict);
        let written = std::fs::metadata(&path).unwrap().len();
        assert!(
            written <= 10,
            "the file holds {written} bytes, at most 10 allowed"
        );
    }

    #[tokio::test]
    async fn a_body_that_stalls_is_given_up_after_the_idle_limit_as_truncated() {
        let stalled = futures::stream::iter([Ok(bytes::Bytes::from_static(b"ab"))])
            .chain(futures::stream::pending())
            .boxed();
        let store = Scripted::new(Some(10), stalled);
        let options = limits(Duration::from_millis(200), Duration::from_secs(3600));
        let read = read_verified(
            &store,
            "k",
            &digest_of(b"0123456789"),
            Some(10),
            Sink::Discard,
            &options,
        )
        .await
        .unwrap();
        assert_eq!(
            read.verdict,
            Verdict::Truncated {
                expected: 10,
                received: 2
            }
        );
        assert!(
            !read.verdict.is_conclusive(),
            "a stall says nothing about the bytes"
        );
    }

    #[tokio::test]
    async fn a_body_that_trickles_is_given_up_at_its_deadline_although_never_idle() {
        // One byte every 20 ms is never idle for 200 ms, but 1 MB at that pace takes hours; at
        // the minimum of 1 MB/s it may take 1 s plus the grace.
        let store = Scripted::new(Some(1_000_000), trickle(Duration::from_millis(20)));
        let mut options = limits(Duration::from_millis(200), Duration::from_millis(300));
        options.limits.min_bytes_per_second = 1_000_000;
        let read = read_verified(
            &store,
            "k",
            &digest_of(b"irrelevant"),
            Some(1_000_000),
            Sink::Discard,
            &options,
        )
        .await
        .unwrap();
        assert!(
            matches!(read.verdict, Verdict::Truncated { expected: 1_000_000, received } if received < 1_000_000),
            "{:?}",
            read.verdict
        );
    }

    #[test]
    fn the_deadline_grows_with_the_size_and_never_with_an_unknown_size() {
        let l = ReadLimits {
            min_bytes_per_second: 1000,
            grace: Duration::from_secs(30),
            idle: Duration::from_secs(60),
        };
        let cases = [
            ("an unknown size has no deadline", None, None, None),
            ("an empty object gets the grace", Some(0), None, Some(30)),
            (
                "10 kB at 1 kB/s gets 10 s more",
                Some(10_000),
                None,
                Some(40),
            ),
            (
                "a slower budget lowers the pace to half its rate",
                Some(10_000),
                Some(1000),
                Some(50),
            ),
            (
                "a faster budget changes nothing",
                Some(10_000),
                Some(1 << 30),
                Some(40),
            ),
            (
                "a zero budget cannot divide by zero",
                Some(10),
                Some(0),
                Some(40),
            ),
            (
                "the largest object does not overflow",
                Some(u64::MAX),
                None,
                Some(30 + u64::MAX / 1000 + 1),
            ),
        ];
        for (name, size, pace, want) in cases {
            assert_eq!(
                l.deadline_for(size, pace),
                want.map(Duration::from_secs),
                "{name}"
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn the_byte_budget_allows_a_burst_then_paces() {
        let budget = ByteBudget::new(1000);
        let start = Instant::now();
        budget.take(1000).await;
        assert_eq!(
            start.elapsed(),
            Duration::ZERO,
            "one second of burst passes at once"
        );
        budget.take(500).await;
        budget.take(500).await;
        let elapsed = start.elapsed();
        assert!(
            elapsed >= Duration::from_millis(999) && elapsed <= Duration::from_millis(1001),
            "two more halves of the rate take one second on the paused clock, took {elapsed:?}"
        );
    }
}
