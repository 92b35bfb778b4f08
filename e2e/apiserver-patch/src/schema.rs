//! How lists and maps merge under server-side apply: the schema facts the field manager needs.
//!
//! The caller supplies a [`ListSemantics`] for the kind: [`NoSchema`] for built-in kinds without
//! associative lists (Lease, ConfigMap, Secret, Namespace), or [`CrdSchema`] reading a CRD's
//! `openAPIV3Schema` (`x-kubernetes-list-type`, `x-kubernetes-list-map-keys`,
//! `x-kubernetes-map-type`). Paths under `metadata` are always answered from ObjectMeta's own
//! schema (`finalizers` is a set, `ownerReferences` a map keyed by `uid`, `labels` and
//! `annotations` free-form maps), whatever the caller's schema says.

use serde_json::Value;

use crate::fieldpath::PathElement;

/// How a list merges under server-side apply (`x-kubernetes-list-type`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListType {
    /// Replaced as a whole; owned as one field (the default).
    Atomic,
    /// A set of scalars; each value is owned separately (`v:`).
    Set,
    /// A list of objects identified by `keys` (`x-kubernetes-list-map-keys`); each item is owned
    /// separately (`k:`) and merged field by field.
    Map {
        /// The key field names.
        keys: Vec<String>,
    },
}

/// Schema facts for server-side apply. Paths are from the object root; list items appear as
/// whatever element identifies them (`Key`, `Value` or `Index`): a schema walker should treat any
/// of those as "descend into `items`".
pub trait ListSemantics {
    /// The list type of the list at `path`.
    fn list_type_at(&self, path: &[PathElement]) -> ListType;
    /// Whether the map at `path` is atomic (`x-kubernetes-map-type: atomic`).
    fn map_is_atomic_at(&self, path: &[PathElement]) -> bool;
    /// Whether the map at `path` is a struct with declared fields (`properties`) rather than a
    /// free-form map (`additionalProperties`). Affects only which object-valued members are
    /// recorded with a `.` in an Apply entry, and pruning of emptied parents. Default: a struct.
    fn map_is_struct_at(&self, path: &[PathElement]) -> bool {
        let _ = path;
        true
    }
}

/// No schema: every list atomic, every map a granular struct (ObjectMeta's lists under
/// `metadata` are still known, see the module docs).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoSchema;

impl ListSemantics for NoSchema {
    fn list_type_at(&self, _path: &[PathElement]) -> ListType {
        ListType::Atomic
    }
    fn map_is_atomic_at(&self, _path: &[PathElement]) -> bool {
        false
    }
}

/// List and map semantics read from a CRD version's `openAPIV3Schema`.
///
/// Lists without `x-kubernetes-list-type` are atomic, maps without `x-kubernetes-map-type` are
/// granular, as on a real server. Paths the schema does not describe (under
/// `x-kubernetes-preserve-unknown-fields`) get the [`NoSchema`] answers.
#[derive(Debug, Clone, Copy)]
pub struct CrdSchema<'a> {
    /// The `openAPIV3Schema` object.
    pub schema: &'a Value,
}

impl CrdSchema<'_> {
    fn node_at(&self, path: &[PathElement]) -> Option<&Value> {
        let mut node = self.schema;
        for pe in path {
            node = match pe {
                PathElement::Field(name) => {
                    match node.get("properties").and_then(|p| p.get(name)) {
                        Some(child) => child,
                        None => node.get("additionalProperties").filter(|a| a.is_object())?,
                    }
                }
                _ => node.get("items")?,
            };
        }
        Some(node)
    }
}

impl ListSemantics for CrdSchema<'_> {
    fn list_type_at(&self, path: &[PathElement]) -> ListType {
        let Some(node) = self.node_at(path) else {
            return ListType::Atomic;
        };
        match node.get("x-kubernetes-list-type").and_then(Value::as_str) {
            Some("set") => ListType::Set,
            Some("map") => ListType::Map {
                keys: node
                    .get("x-kubernetes-list-map-keys")
                    .and_then(Value::as_array)
                    .map(|keys| {
                        keys.iter()
                            .filter_map(|k| k.as_str().map(str::to_string))
                            .collect()
                    })
                    .unwrap_or_default(),
            },
            _ => ListType::Atomic,
        }
    }

    fn map_is_atomic_at(&self, path: &[PathElement]) -> bool {
        self.node_at(path)
            .and_then(|n| n.get("x-kubernetes-map-type"))
            .and_then(Value::as_str)
            == Some("atomic")
    }

    fn map_is_struct_at(&self, path: &[PathElement]) -> bool {
        match self.node_at(path) {
            Some(node) => {
                node.get("properties").is_some() || node.get("additionalProperties").is_none()
            }
            None => true,
        }
    }
}

/// The caller's semantics with ObjectMeta's answers for paths under `metadata`.
pub(crate) struct WithObjectMeta<'a>(pub &'a dyn ListSemantics);

fn meta_rest(path: &[PathElement]) -> Option<&[PathElement]> {
    match path.split_first() {
        Some((PathElement::Field(f), rest)) if f == "metadata" => Some(rest),
        _ => None,
    }
}

impl ListSemantics for WithObjectMeta<'_> {
    fn list_type_at(&self, path: &[PathElement]) -> ListType {
        let Some(rest) = meta_rest(path) else {
            return self.0.list_type_at(path);
        };
        match rest {
            [PathElement::Field(f)] if f == "finalizers" => ListType::Set,
            [PathElement::Field(f)] if f == "ownerReferences" => ListType::Map {
                keys: vec!["uid".into()],
            },
            _ => ListType::Atomic,
        }
    }

    fn map_is_atomic_at(&self, path: &[PathElement]) -> bool {
        match meta_rest(path) {
            Some(_) => false,
            None => self.0.map_is_atomic_at(path),
        }
    }

    fn map_is_struct_at(&self, path: &[PathElement]) -> bool {
        match meta_rest(path) {
            Some([PathElement::Field(f)]) => f != "labels" && f != "annotations",
            Some(_) => true,
            None => self.0.map_is_struct_at(path),
        }
    }
}
