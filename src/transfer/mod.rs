//! Client-side transfers: `castellan put` (upload a blob and map it), `castellan get`
//! (download a mapped blob, verified, falling back across backends) and `castellan verify
//! --backend` (verify every object and mapping of one backend). DESIGN "Download path".
//!
//! Owns: the client's side of the contract with the cluster — writing to the backend placement
//! chooses ([`crate::placement::write_backend`]), reading in the order placement gives
//! ([`crate::placement::read_order`], the operator's own candidate order), and the guarantee that
//! a destination only ever receives bytes that re-verified against the digest (a temporary file
//! next to it, renamed once verified).
//!
//! Submodules: [`put`], [`get`], [`scan`], [`progress`] (the hook the CLI draws bars with),
//! [`error`].
//!
//! Must not: print (callers decide what to show), hold a blob in memory (except
//! [`put_bytes`]'s own argument), or let a credential reach an error message (the storage and
//! resolve layers redact; this module only adds backend names and reasons).

pub mod error;
pub mod get;
pub mod progress;
pub mod put;
pub mod scan;

use kube::api::{Api, ListParams};
use kube::Client;

use crate::api::StorageBackend;

pub use error::TransferError;

/// How a user refused the ambient credentials asks for them.
pub const LOCAL_CREDENTIALS_HINT: &str =
    "pass --use-local-credentials to sign with your own AWS credentials (environment, profile)";
pub use get::{get_to_path, Attempt, AttemptResult, FoundBy, GetOptions, GetOutcome};
pub use progress::{Phase, Progress};
pub use put::{put_bytes, put_file, PutOptions, PutOutcome};

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
