//! Defaulting, as `apiextensions-apiserver/pkg/apiserver/schema/defaulting/algorithm.go`.
//!
//! A `default` fills a missing field (or a `null` one that is not `nullable`) of an object that
//! exists; defaults are never invented for a missing parent. Defaulted values are themselves
//! walked, so defaults nested inside a defaulted object apply too.

use serde_json::Value;

use crate::node::Node;

fn non_nullable_null(v: &Value, node: &Node) -> bool {
    v.is_null() && !node.nullable
}

/// Apply the schema's defaults to `v` in place.
pub(crate) fn apply(node: &Node, v: &mut Value) {
    match v {
        Value::Object(map) => {
            for (k, prop) in &node.properties {
                let Some(default) = &prop.default else {
                    continue;
                };
                match map.get(k) {
                    None => {
                        map.insert(k.clone(), default.clone());
                    }
                    Some(existing) if non_nullable_null(existing, prop) => {
                        map.insert(k.clone(), default.clone());
                    }
                    Some(_) => {}
                }
            }
            for (k, value) in map.iter_mut() {
                if let Some(prop) = node.properties.get(k) {
                    apply(prop, value);
                } else if let Some(additional) = node.additional.as_deref() {
                    if let Some(default) = &additional.default {
                        if non_nullable_null(value, additional) {
                            *value = default.clone();
                        }
                    }
                    apply(additional, value);
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_node) = node.items.as_deref() {
                for item in items.iter_mut() {
                    if let Some(default) = &item_node.default {
                        if non_nullable_null(item, item_node) {
                            *item = default.clone();
                        }
                    }
                    apply(item_node, item);
                }
            }
        }
        _ => {}
    }
}

/// Whether [`apply`] would change `v`, without copying it (lists read stored objects by
/// reference and only copy the ones that need defaults).
pub(crate) fn needed(node: &Node, v: &Value) -> bool {
    match v {
        Value::Object(map) => {
            let missing = node.properties.iter().any(|(k, prop)| {
                prop.default.is_some()
                    && match map.get(k) {
                        None => true,
                        Some(existing) => non_nullable_null(existing, prop),
                    }
            });
            missing
                || map.iter().any(|(k, value)| {
                    if let Some(prop) = node.properties.get(k) {
                        needed(prop, value)
                    } else if let Some(additional) = node.additional.as_deref() {
                        (additional.default.is_some() && non_nullable_null(value, additional))
                            || needed(additional, value)
                    } else {
                        false
                    }
                })
        }
        Value::Array(items) => node.items.as_deref().is_some_and(|item_node| {
            items.iter().any(|item| {
                (item_node.default.is_some() && non_nullable_null(item, item_node))
                    || needed(item_node, item)
            })
        }),
        _ => false,
    }
}
