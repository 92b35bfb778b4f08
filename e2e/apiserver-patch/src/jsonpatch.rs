//! RFC 6902 JSON patch with the apiserver's (evanphx/json-patch) behaviour.

use serde_json::Value;

use crate::error::PatchError;

/// Apply RFC 6902 `ops` to a copy of `target`; `target` is never modified.
///
/// Behaves like evanphx/json-patch as used by the apiserver: a `test` whose value is `null`
/// passes on a missing member; a failed `test` (or any other failed operation) is
/// [`PatchError::Unprocessable`] (the server answers 422); a document that is not a list of
/// operations is [`PatchError::Malformed`] (400).
pub fn json_patch(target: &Value, ops: &Value) -> Result<Value, PatchError> {
    let _ = (target, ops);
    todo!()
}
