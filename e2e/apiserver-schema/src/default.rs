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
            let keys: Vec<String> = map.keys().cloned().collect();
            for k in keys {
                let value = map.get_mut(&k).expect("key");
                if let Some(prop) = node.properties.get(&k) {
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
