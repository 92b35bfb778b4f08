//! `x-kubernetes-list-type` / `x-kubernetes-map-type`: uniqueness validation (as
//! `structurallisttype.ValidateListSetsAndMaps`) and lookups for server-side apply.

use serde_json::Value;

use crate::errors::Cause;
use crate::node::Node;
use crate::validate::json_eq;
use crate::{ListType, PathElement};

/// Check every `set` and `map` list in `v` for duplicates and missing keys.
pub(crate) fn validate_lists(node: &Node, v: &Value) -> Vec<Cause> {
    let mut out = Vec::new();
    walk(node, v, "", &mut out);
    out
}

fn walk(node: &Node, v: &Value, path: &str, out: &mut Vec<Cause>) {
    match v {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            for k in keys {
                if let Some(child) = node.field(k) {
                    let p = if path.is_empty() {
                        k.clone()
                    } else {
                        format!("{path}.{k}")
                    };
                    walk(child, &map[k.as_str()], &p, out);
                }
            }
        }
        Value::Array(items) => {
            match node.list_type.as_deref() {
                Some("set") => {
                    for (i, item) in items.iter().enumerate() {
                        if items[..i].iter().any(|earlier| json_eq(earlier, item)) {
                            out.push(Cause::duplicate(&format!("{path}[{i}]"), item));
                        }
                    }
                }
                Some("map") => {
                    // A missing key is a value of its own (`unspecifiedKeyValue`), so two items
                    // both lacking a key collide; the duplicate's whole item is reported.
                    let key_of = |item: &Value| -> Vec<Option<Value>> {
                        node.list_map_keys
                            .iter()
                            .map(|k| item.as_object().and_then(|o| o.get(k)).cloned())
                            .collect()
                    };
                    let same = |a: &[Option<Value>], b: &[Option<Value>]| {
                        a.iter().zip(b).all(|(x, y)| match (x, y) {
                            (Some(x), Some(y)) => json_eq(x, y),
                            (None, None) => true,
                            _ => false,
                        })
                    };
                    let mut seen: Vec<Vec<Option<Value>>> = Vec::new();
                    for (i, item) in items.iter().enumerate() {
                        if !item.is_object() {
                            continue;
                        }
                        let key = key_of(item);
                        if seen.iter().any(|s| same(s, &key)) {
                            out.push(Cause::duplicate(&format!("{path}[{i}]"), item));
                        } else {
                            seen.push(key);
                        }
                    }
                }
                _ => {}
            }
            if let Some(item_node) = node.items.as_deref() {
                for (i, item) in items.iter().enumerate() {
                    walk(item_node, item, &format!("{path}[{i}]"), out);
                }
            }
        }
        _ => {}
    }
}

/// The node at `path`, following `properties`/`additionalProperties` and `items`.
pub(crate) fn node_at<'a>(root: &'a Node, path: &[PathElement]) -> Option<&'a Node> {
    let mut node = root;
    for el in path {
        node = match el {
            PathElement::Field(name) => node.field(name)?,
            PathElement::Index(_) => node.items.as_deref()?,
        };
    }
    Some(node)
}

pub(crate) fn list_type(node: Option<&Node>) -> ListType {
    match node {
        Some(n) if n.list_type.as_deref() == Some("set") => ListType::Set,
        Some(n) if n.list_type.as_deref() == Some("map") => ListType::Map {
            keys: n.list_map_keys.clone(),
        },
        _ => ListType::Atomic,
    }
}

pub(crate) fn map_is_atomic(node: Option<&Node>) -> bool {
    node.is_some_and(|n| n.map_type.as_deref() == Some("atomic"))
}

/// The old item of a `map` list with the same key values as `item`, for transition rules.
pub(crate) fn correlate<'a>(
    node: &Node,
    old_items: &'a [Value],
    item: &Value,
) -> Option<&'a Value> {
    let keys = &node.list_map_keys;
    let obj = item.as_object()?;
    old_items.iter().find(|o| {
        o.as_object().is_some_and(|om| {
            keys.iter().all(|k| match (obj.get(k), om.get(k)) {
                (Some(a), Some(b)) => json_eq(a, b),
                _ => false,
            })
        })
    })
}
