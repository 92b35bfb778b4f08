//! Field paths and field sets in the apiserver's `FieldsV1` format (`f:`, `k:`, `v:`, `i:`, `.`).

use serde_json::Value;

/// One step of a path into an object, as structured-merge-diff names it.
#[derive(Debug, Clone, PartialEq)]
pub enum PathElement {
    /// A member of a map or struct: `f:name`, printed `.name`.
    Field(String),
    /// An item of a `map` list, by its key fields (sorted by name): `k:{"type":"Ready"}`.
    Key(Vec<(String, Value)>),
    /// An item of a `set` list, by value: `v:"a"`.
    Value(Value),
    /// An item of an atomic list by index (only appears in paths given to [`crate::ListSemantics`]
    /// for elements of atomic lists): `i:0`.
    Index(usize),
}
