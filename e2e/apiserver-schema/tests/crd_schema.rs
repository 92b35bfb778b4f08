//! Checking a CRD's schema before the CRD is accepted: one behaviour per test.

use castellan_apiserver_schema::{version_schema_path, Cause, CompiledSchema};
use serde_json::{json, Value};

fn with_spec(spec: Value) -> Value {
    json!({"type": "object", "properties": {"spec": spec}})
}

fn errors(schema: Value) -> Vec<Cause> {
    CompiledSchema::compile(&schema).expect_err("schema must be rejected")
}

fn cause(reason: &str, field: &str, message: &str) -> Cause {
    Cause {
        reason: reason.into(),
        field: field.into(),
        message: message.into(),
    }
}

#[test]
fn a_non_structural_schema_is_rejected() {
    let errs = errors(with_spec(
        json!({"properties": {"size": {"type": "integer"}}}),
    ));
    assert_eq!(
        errs,
        vec![cause(
            "FieldValueRequired",
            "spec.validation.openAPIV3Schema.properties[spec].type",
            "Required value: must not be empty for specified object fields"
        )]
    );
}

#[test]
fn untyped_array_items_are_rejected() {
    let errs = errors(with_spec(
        json!({"type": "object", "properties": {"l": {"type": "array", "items": {}}}}),
    ));
    assert_eq!(
        errs,
        vec![cause(
            "FieldValueRequired",
            "spec.validation.openAPIV3Schema.properties[spec].properties[l].items.type",
            "Required value: must not be empty for specified array items"
        )]
    );
}

#[test]
fn the_root_must_be_an_object() {
    let errs = errors(json!({"type": "string"}));
    assert_eq!(
        errs[0].message,
        r#"Invalid value: "string": must be object at the root"#
    );
}

#[test]
fn additional_properties_false_is_rejected() {
    let errs = errors(with_spec(
        json!({"type": "object", "additionalProperties": false}),
    ));
    assert_eq!(
        errs,
        vec![cause(
            "FieldValueForbidden",
            "spec.validation.openAPIV3Schema.properties[spec].additionalProperties",
            "Forbidden: additionalProperties cannot be set to false"
        )]
    );
}

#[test]
fn additional_properties_with_properties_is_rejected() {
    let errs = errors(with_spec(json!({
        "type": "object",
        "properties": {"a": {"type": "string"}},
        "additionalProperties": {"type": "string"}
    })));
    assert_eq!(
        errs[0].message,
        "Forbidden: additionalProperties and properties are mutual exclusive"
    );
}

#[test]
fn forbidden_keywords_are_rejected_at_their_paths() {
    let cases = [
        (json!({"type": "object", "$ref": "#/x"}), "$ref"),
        (json!({"type": "object", "definitions": {}}), "definitions"),
        (
            json!({"type": "object", "dependencies": {}}),
            "dependencies",
        ),
        (
            json!({"type": "object", "patternProperties": {}}),
            "patternProperties",
        ),
        (
            json!({"type": "array", "items": {"type": "string"}, "uniqueItems": true}),
            "uniqueItems",
        ),
    ];
    for (spec, keyword) in cases {
        let errs = errors(with_spec(spec));
        assert_eq!(errs[0].reason, "FieldValueForbidden", "{keyword}");
        assert_eq!(
            errs[0].field,
            format!("spec.validation.openAPIV3Schema.properties[spec].{keyword}"),
            "{keyword}"
        );
    }
}

#[test]
fn types_inside_value_validations_are_not_structural() {
    let errs = errors(with_spec(json!({
        "type": "object",
        "anyOf": [{"type": "object"}]
    })));
    assert_eq!(
        errs,
        vec![cause(
            "FieldValueForbidden",
            "spec.validation.openAPIV3Schema.properties[spec].anyOf[0].type",
            "Forbidden: must be empty to be structural"
        )]
    );
}

#[test]
fn untyped_nodes_are_allowed_under_int_or_string_and_preserve_unknown_fields() {
    let ok = with_spec(json!({
        "type": "object",
        "properties": {
            "port": {"x-kubernetes-int-or-string": true, "anyOf": [{"type": "integer"}, {"type": "string"}]},
            "raw": {"x-kubernetes-preserve-unknown-fields": true}
        }
    }));
    CompiledSchema::compile(&ok).expect("structural");
}

#[test]
fn a_map_list_needs_map_keys() {
    let errs = errors(with_spec(json!({"type": "object", "properties": {"l": {
        "type": "array", "x-kubernetes-list-type": "map",
        "items": {"type": "object", "properties": {"name": {"type": "string"}}}
    }}})));
    assert_eq!(
        errs,
        vec![cause(
            "FieldValueRequired",
            "spec.validation.openAPIV3Schema.properties[spec].properties[l].x-kubernetes-list-map-keys",
            "Required value: must not be empty if x-kubernetes-list-type is map"
        )]
    );
}

#[test]
fn a_default_that_violates_its_schema_is_rejected() {
    let errs = errors(with_spec(json!({"type": "object", "properties": {
        "size": {"type": "integer", "default": "big"}
    }})));
    assert_eq!(
        errs,
        vec![cause(
            "FieldValueTypeInvalid",
            "spec.validation.openAPIV3Schema.properties[spec].properties[size].default",
            r#"Invalid value: "string": size in body must be of type integer: "string""#
        )]
    );
}

#[test]
fn metadata_may_only_restrict_name_and_generate_name() {
    let errs = errors(json!({"type": "object", "properties": {
        "metadata": {"type": "object", "properties": {"labels": {"type": "object"}}}
    }}));
    assert_eq!(
        errs.last().unwrap().field,
        "spec.validation.openAPIV3Schema.properties[metadata]"
    );
    CompiledSchema::compile(&json!({"type": "object", "properties": {
        "metadata": {"type": "object", "properties": {"name": {"type": "string", "maxLength": 20}}}
    }}))
    .expect("name restrictions are allowed");
}

#[test]
fn errors_can_be_reported_under_a_v1_version_path() {
    let errs =
        CompiledSchema::compile_at(&with_spec(json!({})), &version_schema_path(0)).unwrap_err();
    assert_eq!(
        errs[0].field,
        "spec.versions[0].schema.openAPIV3Schema.properties[spec].type"
    );
}

#[test]
fn fields_under_a_preserve_unknown_fields_node_still_need_a_type() {
    let errs = errors(with_spec(json!({
        "type": "object",
        "x-kubernetes-preserve-unknown-fields": true,
        "properties": {"known": {"description": "untyped"}}
    })));
    assert_eq!(
        errs,
        vec![cause(
            "FieldValueRequired",
            "spec.validation.openAPIV3Schema.properties[spec].properties[known].type",
            "Required value: must not be empty for specified object fields"
        )]
    );
}

#[test]
fn map_list_keys_must_be_required_or_defaulted() {
    let errs = errors(with_spec(json!({"type": "object", "properties": {"l": {
        "type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"],
        "items": {"type": "object", "properties": {"name": {"type": "string"}}}
    }}})));
    assert_eq!(
        errs,
        vec![cause(
            "FieldValueRequired",
            "spec.validation.openAPIV3Schema.properties[spec].properties[l].items.properties[name]",
            "Required value: this property is in x-kubernetes-list-map-keys, so it must have a default or be a required property"
        )]
    );
}

#[test]
fn set_items_that_are_objects_must_be_atomic() {
    let errs = errors(with_spec(json!({"type": "object", "properties": {"l": {
        "type": "array", "x-kubernetes-list-type": "set",
        "items": {"type": "object", "properties": {"name": {"type": "string"}}}
    }}})));
    assert_eq!(
        errs,
        vec![cause(
            "FieldValueRequired",
            "spec.validation.openAPIV3Schema.properties[spec].properties[l].items.x-kubernetes-map-type",
            "Required value: must be atomic as item of a list with x-kubernetes-list-type=set"
        )]
    );
}
