//! Strategic merge patch (`application/strategic-merge-patch+json`) for the built-in kinds the
//! project uses: Lease, ConfigMap, Secret and Namespace.
//!
//! None of these kinds has a list with a patch strategy (`patchStrategy:"merge"`), nor a
//! `retainKeys` strategy, so a strategic merge patch on them is a JSON merge patch (null deletes,
//! lists replaced) plus the map directives:
//!
//! * `$patch: replace` inside a map replaces that map with the rest of the patch map;
//! * `$patch: delete` inside a map empties it (the key stays, as `{}`), as the apiserver does;
//! * any other `$patch` value is a 400 (`Unknown patch type`);
//! * `$setElementOrder/<list>` and `$retainKeys` carry no meaning for these kinds and are dropped;
//! * `$deleteFromPrimitiveList/<list>: [..]` removes those values from `<list>`.
//!
//! Kinds with merge-keyed lists (Pods, Deployments, ...) are not supported: their lists would be
//! replaced rather than merged by key. Custom resources reject SMP with 415 in the server.

use serde_json::{Map, Value};

use crate::error::PatchError;

/// Apply a strategic merge patch to `target` in place (see the module docs for the supported
/// subset). On error `target` is unchanged.
pub fn strategic_merge_patch(target: &mut Value, patch: &Value) -> Result<(), PatchError> {
    let Value::Object(patch) = patch else {
        return Err(PatchError::Malformed(
            "invalid JSON document: a strategic merge patch must be an object".into(),
        ));
    };
    let mut result = match target {
        Value::Object(m) => m.clone(),
        _ => Map::new(),
    };
    merge_map(&mut result, patch)?;
    *target = Value::Object(result);
    Ok(())
}

const DIRECTIVE: &str = "$patch";
const SET_ORDER: &str = "$setElementOrder/";
const DELETE_FROM_LIST: &str = "$deleteFromPrimitiveList/";
const RETAIN_KEYS: &str = "$retainKeys";

fn merge_map(
    target: &mut Map<String, Value>,
    patch: &Map<String, Value>,
) -> Result<(), PatchError> {
    if let Some(directive) = patch.get(DIRECTIVE) {
        match directive.as_str() {
            Some("replace") => {
                *target = strip_directives(patch)?;
                return Ok(());
            }
            Some("delete") => {
                target.clear();
                return Ok(());
            }
            _ => {
                return Err(PatchError::Malformed(format!(
                    "Unknown patch type: {directive} in map: {}",
                    Value::Object(patch.clone())
                )))
            }
        }
    }
    for (key, value) in patch {
        if key.starts_with(SET_ORDER) || key == RETAIN_KEYS {
            continue;
        }
        if let Some(list) = key.strip_prefix(DELETE_FROM_LIST) {
            let Value::Array(doomed) = value else {
                return Err(PatchError::Malformed(
                    "$deleteFromPrimitiveList must be a list".into(),
                ));
            };
            if let Some(Value::Array(items)) = target.get_mut(list) {
                items.retain(|item| !doomed.contains(item));
            }
            continue;
        }
        match value {
            Value::Null => {
                target.remove(key);
            }
            Value::Object(child_patch) => {
                let mut child = match target.remove(key) {
                    Some(Value::Object(m)) => m,
                    _ => Map::new(),
                };
                merge_map(&mut child, child_patch)?;
                target.insert(key.clone(), Value::Object(child));
            }
            other => {
                target.insert(key.clone(), other.clone());
            }
        }
    }
    Ok(())
}

/// The patch map as a value: directives removed, nulls dropped, nested maps processed.
fn strip_directives(patch: &Map<String, Value>) -> Result<Map<String, Value>, PatchError> {
    let mut out = Map::new();
    merge_map(
        &mut out,
        &patch
            .iter()
            .filter(|(k, _)| k.as_str() != DIRECTIVE)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    )?;
    Ok(out)
}
