//! Verification of one stored object against its digest: HEAD (size must match the declared
//! size), then a streamed GET through [`crate::digest::verify_stream`], in constant memory.
//!
//! Owns: the order of those checks and the measurement (bytes, elapsed, throughput). The
//! verdict itself is the digest module's; failures of HEAD/GET are the store's classified
//! [`StorageError`]s (a missing object is one of kind `NotFound`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;

use super::{ObjectStore, StorageError};
use crate::digest::{verify_stream, Digest, VerifyOutcome};

/// The verdict on one object, with what it cost.
#[derive(Debug)]
pub struct VerifyReport {
    pub outcome: VerifyOutcome<StorageError>,
    /// Body bytes received (also for a truncated or mismatching object).
    pub bytes: u64,
    /// From the HEAD request to the end of the body.
    pub elapsed: Duration,
}

impl VerifyReport {
    /// Received bytes per second, in MiB/s.
    pub fn mib_per_sec(&self) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        if secs == 0.0 {
            return 0.0;
        }
        self.bytes as f64 / (1024.0 * 1024.0) / secs
    }
}

/// Verifies the object at `key` against `digest` (and `declared_size`, when known).
///
/// `Err` only when HEAD or the start of the GET failed (including `NotFound`); everything that
/// happens while the body streams is in the returned outcome.
pub async fn verify_object(
    store: &dyn ObjectStore,
    key: &str,
    digest: &Digest,
    declared_size: Option<u64>,
) -> Result<VerifyReport, StorageError> {
    let start = Instant::now();
    let info = store
        .head(key)
        .await?
        .ok_or_else(|| StorageError::new(super::ErrorKind::NotFound, "HeadObject: no such key"))?;
    if let Some(declared) = declared_size {
        if declared != info.size {
            return Ok(VerifyReport {
                outcome: VerifyOutcome::SizeMismatch {
                    expected: declared,
                    actual: info.size,
                },
                bytes: 0,
                elapsed: start.elapsed(),
            });
        }
    }
    let got = store.get(key, None).await?;
    let announced = got.content_length;
    if let (Some(declared), Some(announced)) = (declared_size, announced) {
        if declared != announced {
            return Ok(VerifyReport {
                outcome: VerifyOutcome::SizeMismatch {
                    expected: declared,
                    actual: announced,
                },
                bytes: 0,
                elapsed: start.elapsed(),
            });
        }
    }
    // The server's Content-Length is what this response must deliver; without one, HEAD's.
    let expected = announced.or(Some(info.size));
    let counter = Arc::new(AtomicU64::new(0));
    let counted = {
        let counter = counter.clone();
        got.body.inspect(move |item| {
            if let Ok(chunk) = item {
                counter.fetch_add(chunk.len() as u64, Ordering::Relaxed);
            }
        })
    };
    let outcome = verify_stream(counted, digest, expected).await;
    Ok(VerifyReport {
        outcome,
        bytes: counter.load(Ordering::Relaxed),
        elapsed: start.elapsed(),
    })
}
