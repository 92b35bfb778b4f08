//! Schema pieces the derive macros cannot express on their own. Must not: hold behaviour.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use schemars::{json_schema, Schema, SchemaGenerator};

/// `status.conditions`: a list of `metav1.Condition` keyed by `type`, so that several writers
/// (and server-side apply) merge conditions per item instead of replacing the list.
pub fn conditions_schema(generator: &mut SchemaGenerator) -> Schema {
    let item = generator.subschema_for::<Condition>();
    json_schema!({
        "type": "array",
        "items": item,
        "x-kubernetes-list-type": "map",
        "x-kubernetes-list-map-keys": ["type"],
    })
}
