//! How lists and maps merge: the schema facts server-side apply needs.

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
    /// free-form map (`additionalProperties`). Only affects whether a non-empty object under it is
    /// recorded with a `.` member in an Apply entry. Default: a struct.
    fn map_is_struct_at(&self, path: &[PathElement]) -> bool {
        let _ = path;
        true
    }
}

/// No schema: every list atomic, every map granular (with the ObjectMeta lists under `metadata`,
/// which this crate always knows).
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
#[derive(Debug, Clone, Copy)]
pub struct CrdSchema<'a> {
    /// The `openAPIV3Schema` object.
    pub schema: &'a Value,
}

impl ListSemantics for CrdSchema<'_> {
    fn list_type_at(&self, path: &[PathElement]) -> ListType {
        let _ = path;
        todo!()
    }
    fn map_is_atomic_at(&self, path: &[PathElement]) -> bool {
        let _ = path;
        todo!()
    }
}
