//! Client-side transfers: `castellan put` (upload a blob and map it) and `castellan get`
//! (download a mapped blob, verified, falling back across backends). DESIGN "Download path".
//!
//! Owns: the client's contract with the cluster — which backend a write goes to
//! ([`choose::write_backend`]), in which order a read tries backends ([`choose::read_order`],
//! built on the operator's own candidate order), and the guarantee that a destination only ever
//! receives bytes that re-verified against the digest (a temporary file next to it, renamed
//! once verified).
//!
//! Submodules: [`choose`] (pure backend selection), [`put`], [`get`], [`progress`] (the hook the
//! CLI draws bars with), [`error`].
//!
//! Must not: print (callers decide what to show), hold a blob in memory (except
//! [`put_bytes`]'s own argument), or let a credential reach an error message (the storage and
//! resolve layers redact; this module only adds backend names and reasons).

pub mod choose;
pub mod error;
pub mod get;
pub mod progress;
pub mod put;

use std::time::Duration;

use kube::api::{Api, ListParams};
use kube::Client;

use crate::api::StorageBackend;

pub use error::TransferError;
pub use get::{get_to_path, Attempt, AttemptResult, FoundBy, GetOptions, GetOutcome};
pub use progress::{Phase, Progress};
pub use put::{put_bytes, put_file, PutOptions, PutOutcome};

/// Bytes per second in MiB/s (0 when no time passed).
pub fn mib_per_sec(bytes: u64, elapsed: Duration) -> f64 {
    let secs = elapsed.as_secs_f64();
    if secs <= 0.0 {
        return 0.0;
    }
    bytes as f64 / (1024.0 * 1024.0) / secs
}

/// The StorageBackends of `namespace`, sorted by name.
async fn namespace_backends(
    client: &Client,
    namespace: &str,
) -> Result<Vec<StorageBackend>, TransferError> {
    let api: Api<StorageBackend> = Api::namespaced(client.clone(), namespace);
    let mut backends = api
        .list(&ListParams::default())
        .await
        .map_err(|source| TransferError::Kube {
            action: format!("listing StorageBackends in namespace {namespace}"),
            source,
        })?
        .items;
    backends.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    Ok(backends)
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
}
