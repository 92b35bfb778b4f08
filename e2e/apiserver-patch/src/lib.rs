//! Patch and server-side-apply semantics for Castellan's Kubernetes API-server emulator.
//!
//! The server crate (`e2e/apiserver`) owns storage, resourceVersions, HTTP and the
//! status-subresource copy rules; it calls this crate with plain [`serde_json::Value`]s:
//!
//! * [`merge_patch`]: RFC 7386 JSON merge patch (`application/merge-patch+json`).
//! * [`json_patch`]: RFC 6902 JSON patch with the apiserver's evanphx/json-patch quirks
//!   (`application/json-patch+json`).
//! * [`strategic_merge_patch`]: strategic merge patch for the built-in kinds the project uses
//!   (`application/strategic-merge-patch+json`).
//! * [`apply`]: server-side apply (`application/apply-patch+yaml`) with field ownership,
//!   conflicts, pruning of fields a manager stopped applying, and kubectl's
//!   client-side→server-side migration special case.
//! * [`record_update`]: managedFields bookkeeping for every non-apply write.
//!
//! See `README.md` next to `Cargo.toml` for every known difference from the real apiserver.

mod apply;
mod error;
mod fieldpath;
mod jsonpatch;
mod managed;
mod merge;
mod schema;
mod strategic;

pub use apply::{apply, record_update, FieldManagerInput, WriteScope};
pub use error::{ApplyError, Conflict, PatchError};
pub use fieldpath::PathElement;
pub use jsonpatch::json_patch;
pub use managed::Operation;
pub use merge::merge_patch;
pub use schema::{CrdSchema, ListSemantics, ListType, NoSchema};
pub use strategic::{strategic_merge_patch, strategic_merge_patch_with, ListStrategy};
