//! Pruning: unknown fields and nulls of non-nullable fields.
//!
//! Mirrors `apiextensions-apiserver/pkg/apiserver/schema/pruning` and
//! `schema/defaulting/prunenulls.go`: fields not described by `properties` or
//! `additionalProperties` are dropped (and reported, for `fieldValidation`), except under
//! `x-kubernetes-preserve-unknown-fields: true`, and except `apiVersion`, `kind` and `metadata` at
//! the root of a resource (the object itself and `x-kubernetes-embedded-resource` nodes).

use serde_json::Value;

use crate::node::Node;

/// Drop unknown fields from `v`, appending the path of each dropped field to `pruned`.
pub(crate) fn prune_unknown(node: &Node, v: &mut Value, pruned: &mut Vec<String>) {
    prune(Some(node), v, "", true, pruned);
}

/// Like [`prune_unknown`] for a value that is not a resource root (e.g. a schema default).
pub(crate) fn prune_unknown_at(node: &Node, v: &mut Value, pruned: &mut Vec<String>) {
    prune(Some(node), v, "", node.embedded, pruned);
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

fn prune(
    node: Option<&Node>,
    v: &mut Value,
    path: &str,
    resource_root: bool,
    pruned: &mut Vec<String>,
) {
    match v {
        Value::Object(map) => {
            let mut drop = Vec::new();
            let mut keys: Vec<String> = map.keys().cloned().collect();
            keys.sort();
            for k in keys {
                if resource_root && matches!(k.as_str(), "apiVersion" | "kind" | "metadata") {
                    continue;
                }
                let child_path = join(path, &k);
                let child = node.and_then(|n| n.field(&k));
                match child {
                    Some(c) => prune(
                        Some(c),
                        map.get_mut(&k).expect("key"),
                        &child_path,
                        c.embedded,
                        pruned,
                    ),
                    None if node.is_some_and(|n| n.preserve_unknown) => {}
                    None => drop.push((k, child_path)),
                }
            }
            for (k, p) in drop {
                map.remove(&k);
                pruned.push(p);
            }
        }
        Value::Array(items) => {
            let item_node = node.and_then(|n| n.items.as_deref());
            if node.is_some_and(|n| n.preserve_unknown) && item_node.is_none() {
                return;
            }
            for (i, item) in items.iter_mut().enumerate() {
                let embedded = item_node.is_some_and(|n| n.embedded);
                prune(item_node, item, &format!("{path}[{i}]"), embedded, pruned);
            }
        }
        _ => {}
    }
}

/// Drop `null` values of fields that are neither `nullable` nor defaulted (they are defaulted
/// later), as `PruneNonNullableNullsWithoutDefaults` does.
pub(crate) fn prune_nulls(node: &Node, v: &mut Value) {
    match v {
        Value::Object(map) => {
            let keys: Vec<String> = map.keys().cloned().collect();
            for k in keys {
                let Some(child) = node.field(&k) else {
                    continue;
                };
                let value = map.get_mut(&k).expect("key");
                if value.is_null() {
                    if !child.nullable && child.default.is_none() {
                        map.remove(&k);
                    }
                } else {
                    prune_nulls(child, value);
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_node) = node.items.as_deref() {
                for item in items.iter_mut() {
                    prune_nulls(item_node, item);
                }
            }
        }
        _ => {}
    }
}
