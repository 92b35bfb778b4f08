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
//! Kinds with merge-keyed lists (Deployments, Services, ...) use
//! [`strategic_merge_patch_with`], given the kind's patch strategies by field path: lists with a
//! merge key are merged element by element (`$patch: delete`/`replace` elements,
//! `$setElementOrder/<list>`, the apimachinery ordering of patched and server-only elements),
//! lists of primitives with the merge strategy are unions, and `$retainKeys` drops the fields it
//! does not list. Custom resources reject SMP with 415 in the server.

use serde_json::{Map, Value};

use crate::error::PatchError;

/// Apply a strategic merge patch to `target` in place (see the module docs for the supported
/// subset). On error `target` is unchanged.
pub fn strategic_merge_patch(target: &mut Value, patch: &Value) -> Result<(), PatchError> {
    strategic_merge_patch_with(target, patch, &|_| ListStrategy::Replace)
}

/// The patch strategy of a list field (`patchStrategy`/`patchMergeKey` of the Go type).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListStrategy {
    /// No strategy: the patch's list replaces the live one.
    Replace,
    /// `patchStrategy:"merge"` with `patchMergeKey`: elements (objects) merged by that key.
    MergeByKey(&'static str),
    /// `patchStrategy:"merge"` on a list of primitives: the union.
    MergePrimitives,
}

/// Strategic merge patch with the list strategies of a kind: `strategies` maps a field path
/// (field names joined by `.`, list elements not counted, e.g.
/// `spec.template.spec.containers.env`) to its strategy.
pub fn strategic_merge_patch_with(
    target: &mut Value,
    patch: &Value,
    strategies: &dyn Fn(&str) -> ListStrategy,
) -> Result<(), PatchError> {
    let Value::Object(patch) = patch else {
        return Err(PatchError::Malformed(
            "invalid JSON document: a strategic merge patch must be an object".into(),
        ));
    };
    let mut result = match target {
        Value::Object(m) => m.clone(),
        _ => Map::new(),
    };
    let ctx = Ctx { strategies };
    ctx.merge_map(&mut result, patch, "")?;
    *target = Value::Object(result);
    Ok(())
}

struct Ctx<'a> {
    strategies: &'a dyn Fn(&str) -> ListStrategy,
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

const DIRECTIVE: &str = "$patch";
const SET_ORDER: &str = "$setElementOrder/";
const DELETE_FROM_LIST: &str = "$deleteFromPrimitiveList/";
const RETAIN_KEYS: &str = "$retainKeys";

impl Ctx<'_> {
    fn merge_map(
        &self,
        target: &mut Map<String, Value>,
        patch: &Map<String, Value>,
        path: &str,
    ) -> Result<(), PatchError> {
        if let Some(directive) = patch.get(DIRECTIVE) {
            match directive.as_str() {
                Some("replace") => {
                    *target = self.strip_directives(patch, path)?;
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
        if let Some(retain) = patch.get(RETAIN_KEYS) {
            let Value::Array(keep) = retain else {
                return Err(PatchError::Malformed(
                    "$retainKeys must be a list of strings".into(),
                ));
            };
            target.retain(|k, _| keep.iter().any(|x| x.as_str() == Some(k.as_str())));
        }
        for (key, value) in patch {
            if key == RETAIN_KEYS {
                continue;
            }
            if let Some(list) = key.strip_prefix(SET_ORDER) {
                // Applied with the list itself (below); an order for a list the patch does
                // not otherwise touch reorders the live list.
                if !patch.contains_key(list) {
                    if let (Some(Value::Array(items)), Value::Array(order)) =
                        (target.get_mut(list), value)
                    {
                        let field = join(path, list);
                        let strategy = (self.strategies)(&field);
                        if strategy != ListStrategy::Replace {
                            let original = items.clone();
                            *items = normalize_order(items.clone(), order, &original, strategy);
                        }
                    }
                }
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
            let field = join(path, key);
            match value {
                Value::Null => {
                    target.remove(key);
                }
                Value::Object(child_patch) => {
                    let mut child = match target.remove(key) {
                        Some(Value::Object(m)) => m,
                        _ => Map::new(),
                    };
                    self.merge_map(&mut child, child_patch, &field)?;
                    target.insert(key.clone(), Value::Object(child));
                }
                Value::Array(items) => {
                    let strategy = (self.strategies)(&field);
                    let order = match patch.get(&format!("{SET_ORDER}{key}")) {
                        Some(Value::Array(o)) => Some(o.as_slice()),
                        _ => None,
                    };
                    let merged = match (strategy, target.remove(key)) {
                        (ListStrategy::Replace, _) => Value::Array(items.clone()),
                        (_, original) => {
                            let original = match original {
                                Some(Value::Array(a)) => a,
                                _ => Vec::new(),
                            };
                            Value::Array(self.merge_list(original, items, order, strategy, &field)?)
                        }
                    };
                    target.insert(key.clone(), merged);
                }
                other => {
                    target.insert(key.clone(), other.clone());
                }
            }
        }
        Ok(())
    }

    fn merge_list(
        &self,
        original: Vec<Value>,
        patch: &[Value],
        order: Option<&[Value]>,
        strategy: ListStrategy,
        path: &str,
    ) -> Result<Vec<Value>, PatchError> {
        // A `{"$patch": "replace"}` element: the rest of the patch list is the new list.
        if patch
            .iter()
            .any(|e| e.get(DIRECTIVE).and_then(Value::as_str) == Some("replace"))
        {
            return patch
                .iter()
                .filter(|e| e.get(DIRECTIVE).is_none())
                .map(|e| self.strip_value(e, path))
                .collect();
        }
        let mut merged = original.clone();
        let mut patched_keys: Vec<Value> = Vec::new();
        match strategy {
            ListStrategy::MergePrimitives => {
                for e in patch {
                    if !merged.contains(e) {
                        merged.push(e.clone());
                    }
                    patched_keys.push(e.clone());
                }
            }
            ListStrategy::MergeByKey(key) => {
                for e in patch {
                    let Value::Object(ep) = e else {
                        return Err(PatchError::Malformed(format!(
                            "strategic merge patch: {path}: element {e} is not an object"
                        )));
                    };
                    let Some(kv) = ep.get(key).cloned() else {
                        return Err(PatchError::Malformed(format!(
                            "map: {e} does not contain declared merge key: {key}"
                        )));
                    };
                    let at = merged.iter().position(|o| o.get(key) == Some(&kv));
                    match ep.get(DIRECTIVE).and_then(Value::as_str) {
                        Some("delete") => {
                            merged.retain(|o| o.get(key) != Some(&kv));
                            continue;
                        }
                        Some("merge") => {
                            return Err(PatchError::Malformed(
                                "merging lists cannot yet be specified in the patch".into(),
                            ))
                        }
                        Some(other) => {
                            return Err(PatchError::Malformed(format!(
                                "Unknown patch type: {other} in map: {e}"
                            )))
                        }
                        _ => {}
                    }
                    let mut base = match at.map(|i| &merged[i]) {
                        Some(Value::Object(m)) => m.clone(),
                        _ => Map::new(),
                    };
                    self.merge_map(&mut base, ep, path)?;
                    match at {
                        Some(i) => merged[i] = Value::Object(base),
                        None => merged.push(Value::Object(base)),
                    }
                    patched_keys.push(Value::Object(
                        std::iter::once((key.to_string(), kv)).collect(),
                    ));
                }
            }
            ListStrategy::Replace => unreachable!("handled by the caller"),
        }
        let order: Vec<Value> = order.map(<[Value]>::to_vec).unwrap_or(patched_keys);
        Ok(normalize_order(merged, &order, &original, strategy))
    }

    /// A patch value as stored: directives removed, nulls in maps dropped.
    fn strip_value(&self, v: &Value, path: &str) -> Result<Value, PatchError> {
        match v {
            Value::Object(m) => Ok(Value::Object(self.strip_directives(m, path)?)),
            other => Ok(other.clone()),
        }
    }

    /// The patch map as a value: directives removed, nulls dropped, nested maps processed.
    fn strip_directives(
        &self,
        patch: &Map<String, Value>,
        path: &str,
    ) -> Result<Map<String, Value>, PatchError> {
        let mut out = Map::new();
        self.merge_map(
            &mut out,
            &patch
                .iter()
                .filter(|(k, _)| k.as_str() != DIRECTIVE)
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            path,
        )?;
        Ok(out)
    }
}

/// The identity of a list element for ordering: its merge-key value, or itself.
fn identity(v: &Value, strategy: ListStrategy) -> Option<Value> {
    match strategy {
        ListStrategy::MergeByKey(k) => v.get(k).cloned(),
        _ => Some(v.clone()),
    }
}

/// apimachinery's `normalizeElementOrder`: the elements named by `order` (the patch's
/// `$setElementOrder`, else the patch list itself) in that order, the other (server-only)
/// elements in their live order, interleaved by `mergeSortedSlice`: a server-only element goes
/// before a patched one when both are in the live list and it came first there.
fn normalize_order(
    merged: Vec<Value>,
    order: &[Value],
    original: &[Value],
    strategy: ListStrategy,
) -> Vec<Value> {
    let order_ids: Vec<Option<Value>> = order.iter().map(|o| identity(o, strategy)).collect();
    let live_ids: Vec<Option<Value>> = original.iter().map(|o| identity(o, strategy)).collect();
    let index_in = |ids: &[Option<Value>], v: &Value| -> Option<usize> {
        let id = identity(v, strategy)?;
        ids.iter().position(|x| x.as_ref() == Some(&id))
    };
    let (mut patched, mut server_only): (Vec<Value>, Vec<Value>) = merged
        .into_iter()
        .partition(|v| index_in(&order_ids, v).is_some());
    patched.sort_by_key(|v| index_in(&order_ids, v));
    server_only.sort_by_key(|v| index_in(&live_ids, v));
    let mut out = Vec::with_capacity(patched.len() + server_only.len());
    let (mut left, mut right) = (
        server_only.into_iter().peekable(),
        patched.into_iter().peekable(),
    );
    loop {
        match (left.peek(), right.peek()) {
            (None, None) => break,
            (Some(_), None) => out.push(left.next().unwrap()),
            (None, Some(_)) => out.push(right.next().unwrap()),
            (Some(l), Some(r)) => {
                let take_left = matches!(
                    (index_in(&live_ids, l), index_in(&live_ids, r)),
                    (Some(li), Some(ri)) if li < ri
                );
                if take_left {
                    out.push(left.next().unwrap());
                } else {
                    out.push(right.next().unwrap());
                }
            }
        }
    }
    out
}
