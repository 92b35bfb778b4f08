//! RFC 7386 JSON merge patch (`application/merge-patch+json`): objects merge recursively, a
//! `null` member deletes, everything else (lists included) replaces the target value.
//!
//! This is what the apiserver does for merge patches (evanphx/json-patch `MergePatch`), on any
//! kind, built-in or custom.

use serde_json::{Map, Value};

/// Apply an RFC 7386 JSON merge patch to `target` in place (null deletes, lists replaced).
///
/// A patch that is not an object replaces the target; an object patch applied to a non-object
/// target starts from `{}`.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(patch_members) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let Value::Object(target_members) = target else {
        unreachable!("target was just made an object");
    };
    for (key, value) in patch_members {
        if value.is_null() {
            target_members.remove(key);
        } else {
            merge_patch(
                target_members.entry(key.clone()).or_insert(Value::Null),
                value,
            );
        }
    }
}
