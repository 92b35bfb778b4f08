//! Admission of custom resources: one behaviour per test, with real CRD schemas.

use castellan_apiserver_schema::{
    AdmitError, Admitted, Cause, CompiledSchema, FieldValidation, ListType, PathElement,
};
use serde_json::{json, Value};

/// A schema in the shape the project's CRDs have.
fn widget_schema() -> Value {
    json!({
        "type": "object",
        "required": ["spec"],
        "properties": {
            "spec": {
                "type": "object",
                "required": ["size"],
                "properties": {
                    "size": {"type": "integer", "minimum": 1, "maximum": 10},
                    "mode": {"type": "string", "enum": ["fast", "slow"], "default": "fast"},
                    "name": {"type": "string", "pattern": "^[a-z]+$", "maxLength": 63, "minLength": 2},
                    "note": {"type": "string", "nullable": true},
                    "replicas": {"type": "integer", "default": 1},
                    "tags": {
                        "type": "array", "maxItems": 3,
                        "items": {"type": "string"},
                        "x-kubernetes-list-type": "set"
                    },
                    "ports": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["name"],
                            "properties": {
                                "name": {"type": "string"},
                                "port": {"type": "integer", "format": "int32"}
                            }
                        },
                        "x-kubernetes-list-type": "map",
                        "x-kubernetes-list-map-keys": ["name"]
                    },
                    "backend": {
                        "type": "object",
                        "properties": {
                            "bucket": {"type": "string"},
                            "region": {"type": "string", "default": "us-east-1"}
                        }
                    },
                    "labels": {
                        "type": "object",
                        "additionalProperties": {"type": "string", "maxLength": 5},
                        "x-kubernetes-map-type": "atomic"
                    },
                    "extra": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
                    "port": {"x-kubernetes-int-or-string": true},
                    "when": {"type": "string", "format": "date-time"},
                    "ratio": {"type": "number", "multipleOf": 0.5, "exclusiveMaximum": true, "maximum": 2}
                }
            },
            "status": {
                "type": "object",
                "properties": {"phase": {"type": "string"}}
            }
        }
    })
}

fn widget() -> CompiledSchema {
    CompiledSchema::compile(&widget_schema()).expect("schema compiles")
}

fn obj(spec: Value) -> Value {
    json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w1"}, "spec": spec})
}

fn admit(
    schema: &CompiledSchema,
    mut o: Value,
    mode: FieldValidation,
) -> (Value, Result<Admitted, AdmitError>) {
    let r = schema.admit(&mut o, None, mode);
    (o, r)
}

fn causes(r: Result<Admitted, AdmitError>) -> Vec<Cause> {
    match r {
        Err(AdmitError::Invalid(c)) => c,
        other => panic!("expected 422 causes, got {other:?}"),
    }
}

fn cause(reason: &str, field: &str, message: &str) -> Cause {
    Cause {
        reason: reason.into(),
        field: field.into(),
        message: message.into(),
    }
}

#[test]
fn a_valid_object_is_admitted_without_warnings() {
    let (_, r) = admit(&widget(), obj(json!({"size": 3})), FieldValidation::Warn);
    assert_eq!(r, Ok(Admitted::default()));
}

#[test]
fn a_missing_required_field_is_field_value_required_at_spec_size() {
    let (_, r) = admit(&widget(), obj(json!({})), FieldValidation::Warn);
    let c = causes(r);
    assert_eq!(
        c[0],
        cause("FieldValueRequired", "spec.size", "Required value")
    );
}

#[test]
fn an_enum_violation_lists_the_supported_values() {
    let (_, r) = admit(
        &widget(),
        obj(json!({"size": 3, "mode": "medium"})),
        FieldValidation::Warn,
    );
    assert_eq!(
        causes(r)[0],
        cause(
            "FieldValueNotSupported",
            "spec.mode",
            r#"Unsupported value: "medium": supported values: "fast", "slow""#
        )
    );
}

#[test]
fn a_wrong_json_type_is_field_value_type_invalid() {
    let (_, r) = admit(
        &widget(),
        obj(json!({"size": "string"})),
        FieldValidation::Warn,
    );
    assert_eq!(
        causes(r)[0],
        cause(
            "FieldValueTypeInvalid",
            "spec.size",
            r#"Invalid value: "string": spec.size in body must be of type integer: "string""#
        )
    );
}

#[test]
fn value_constraints_use_the_go_openapi_wording() {
    let cases = [
        (
            json!({"size": 11}),
            cause(
                "FieldValueInvalid",
                "spec.size",
                "Invalid value: 11: spec.size in body should be less than or equal to 10",
            ),
        ),
        (
            json!({"size": 0}),
            cause(
                "FieldValueInvalid",
                "spec.size",
                "Invalid value: 0: spec.size in body should be greater than or equal to 1",
            ),
        ),
        (
            json!({"size": 1, "name": "ABC"}),
            cause(
                "FieldValueInvalid",
                "spec.name",
                r#"Invalid value: "ABC": spec.name in body should match '^[a-z]+$'"#,
            ),
        ),
        (
            json!({"size": 1, "name": "a"}),
            cause(
                "FieldValueInvalid",
                "spec.name",
                r#"Invalid value: "a": spec.name in body should be at least 2 chars long"#,
            ),
        ),
        (
            json!({"size": 1, "name": "a".repeat(64)}),
            cause(
                "FieldValueTooLong",
                "spec.name",
                "Too long: may not be more than 63 bytes",
            ),
        ),
        (
            json!({"size": 1, "tags": ["a", "b", "c", "d"]}),
            cause(
                "FieldValueTooMany",
                "spec.tags",
                "Too many: 4: must have at most 3 items",
            ),
        ),
        (
            json!({"size": 1, "ratio": 0.7}),
            cause(
                "FieldValueInvalid",
                "spec.ratio",
                "Invalid value: 0.7: spec.ratio in body should be a multiple of 0.5",
            ),
        ),
        (
            json!({"size": 1, "ratio": 2}),
            cause(
                "FieldValueInvalid",
                "spec.ratio",
                "Invalid value: 2: spec.ratio in body should be less than 2",
            ),
        ),
        (
            json!({"size": 1, "when": "tomorrow"}),
            cause(
                "FieldValueTypeInvalid",
                "spec.when",
                r#"Invalid value: "tomorrow": spec.when in body must be of type date-time: "tomorrow""#,
            ),
        ),
        (
            json!({"size": 1, "labels": {"k": "toolong"}}),
            cause(
                "FieldValueTooLong",
                "spec.labels.k",
                "Too long: may not be more than 5 bytes",
            ),
        ),
    ];
    for (spec, want) in cases {
        let (_, r) = admit(&widget(), obj(spec.clone()), FieldValidation::Warn);
        assert_eq!(causes(r)[0], want, "{spec}");
    }
}

#[test]
fn max_length_counts_characters_not_bytes() {
    let s = CompiledSchema::compile(&json!({
        "type": "object",
        "properties": {"spec": {"type": "object", "properties": {"n": {"type": "string", "maxLength": 3}}}}
    }))
    .unwrap();
    let (_, r) = admit(&s, obj(json!({"n": "äöü"})), FieldValidation::Warn);
    assert!(r.is_ok(), "{r:?}");
}

#[test]
fn int_or_string_accepts_both_and_rejects_other_types() {
    for port in [json!(80), json!("http")] {
        let (_, r) = admit(
            &widget(),
            obj(json!({"size": 1, "port": port})),
            FieldValidation::Warn,
        );
        assert!(r.is_ok(), "{r:?}");
    }
    let (_, r) = admit(
        &widget(),
        obj(json!({"size": 1, "port": true})),
        FieldValidation::Warn,
    );
    assert_eq!(
        causes(r)[0],
        cause(
            "FieldValueTypeInvalid",
            "spec.port",
            r#"Invalid value: "boolean": spec.port in body must be of type integer,string: "boolean""#
        )
    );
}

#[test]
fn number_formats_are_not_range_checked_as_on_the_real_server() {
    let (_, r) = admit(
        &widget(),
        obj(json!({"size": 1, "ports": [{"name": "a", "port": 1_u64 << 40}]})),
        FieldValidation::Warn,
    );
    assert!(r.is_ok(), "{r:?}");
}

#[test]
fn null_for_a_nullable_field_is_kept() {
    let (o, r) = admit(
        &widget(),
        obj(json!({"size": 1, "note": null})),
        FieldValidation::Warn,
    );
    assert!(r.is_ok(), "{r:?}");
    assert_eq!(o["spec"]["note"], Value::Null);
}

#[test]
fn null_for_a_non_nullable_field_is_pruned_then_defaulted() {
    let (o, r) = admit(
        &widget(),
        obj(json!({"size": 1, "mode": null, "name": null})),
        FieldValidation::Strict,
    );
    assert!(r.is_ok(), "{r:?}");
    assert_eq!(o["spec"]["mode"], "fast");
    assert!(o["spec"].get("name").is_none());
}

#[test]
fn a_missing_field_with_a_default_is_filled() {
    let (o, _) = admit(&widget(), obj(json!({"size": 1})), FieldValidation::Warn);
    assert_eq!(o["spec"]["mode"], "fast");
    assert_eq!(o["spec"]["replicas"], 1);
}

#[test]
fn a_default_is_applied_only_where_the_parent_exists() {
    let (o, _) = admit(&widget(), obj(json!({"size": 1})), FieldValidation::Warn);
    assert!(o["spec"].get("backend").is_none(), "{o}");
    let (o, _) = admit(
        &widget(),
        obj(json!({"size": 1, "backend": {}})),
        FieldValidation::Warn,
    );
    assert_eq!(o["spec"]["backend"]["region"], "us-east-1");
}

#[test]
fn defaulting_on_read_fills_missing_fields_of_stored_objects() {
    let mut stored = obj(json!({"size": 1, "backend": {"bucket": "b"}}));
    widget().default_object(&mut stored);
    assert_eq!(stored["spec"]["backend"]["region"], "us-east-1");
    assert_eq!(stored["spec"]["mode"], "fast");
}

#[test]
fn an_unknown_field_is_pruned_and_warned_in_warn_mode() {
    let (o, r) = admit(
        &widget(),
        obj(json!({"size": 1, "x": 1, "backend": {"y": 2}})),
        FieldValidation::Warn,
    );
    assert_eq!(
        r.unwrap().warnings,
        vec![
            r#"unknown field "spec.backend.y""#,
            r#"unknown field "spec.x""#
        ]
    );
    assert!(o["spec"].get("x").is_none());
    assert!(o["spec"]["backend"].get("y").is_none());
}

#[test]
fn an_unknown_field_is_pruned_silently_in_ignore_mode() {
    let (o, r) = admit(
        &widget(),
        obj(json!({"size": 1, "x": 1})),
        FieldValidation::Ignore,
    );
    assert_eq!(r, Ok(Admitted::default()));
    assert!(o["spec"].get("x").is_none());
}

#[test]
fn strict_rejects_unknown_fields_with_400() {
    let (_, r) = admit(
        &widget(),
        obj(json!({"size": 1, "x": 1, "ports": [{"name": "a", "q": 1}]})),
        FieldValidation::Strict,
    );
    assert_eq!(
        r,
        Err(AdmitError::BadRequest(
            r#"strict decoding error: unknown field "spec.ports[0].q", unknown field "spec.x""#
                .into()
        ))
    );
}

#[test]
fn strict_rejects_duplicate_fields_found_in_the_raw_body() {
    let raw = br#"{"apiVersion":"example.com/v1","kind":"Widget","metadata":{"name":"w1"},"spec":{"size":1,"size":2}}"#;
    let dups = castellan_apiserver_schema::duplicate_fields(raw);
    let mut o: Value = serde_json::from_slice(raw).unwrap();
    let r = widget().admit_with_duplicates(&mut o, None, FieldValidation::Strict, &dups);
    assert_eq!(
        r,
        Err(AdmitError::BadRequest(
            r#"strict decoding error: duplicate field "spec.size""#.into()
        ))
    );
    let r = widget().admit_with_duplicates(&mut o, None, FieldValidation::Warn, &dups);
    assert_eq!(r.unwrap().warnings, vec![r#"duplicate field "spec.size""#]);
}

#[test]
fn metadata_api_version_and_kind_are_never_pruned_at_the_root() {
    let mut o = obj(json!({"size": 1}));
    o["metadata"]["labels"] = json!({"a": "b"});
    o["metadata"]["finalizers"] = json!(["x"]);
    let (after, r) = admit(&widget(), o.clone(), FieldValidation::Strict);
    assert!(r.is_ok(), "{r:?}");
    assert_eq!(after["metadata"], o["metadata"]);
    assert_eq!(after["apiVersion"], "example.com/v1");
}

#[test]
fn unknown_fields_are_kept_under_preserve_unknown_fields() {
    let (o, r) = admit(
        &widget(),
        obj(json!({"size": 1, "extra": {"a": {"b": 1}}})),
        FieldValidation::Strict,
    );
    assert!(r.is_ok(), "{r:?}");
    assert_eq!(o["spec"]["extra"]["a"]["b"], 1);
}

#[test]
fn a_duplicate_item_in_a_set_list_is_field_value_duplicate() {
    let (_, r) = admit(
        &widget(),
        obj(json!({"size": 1, "tags": ["a", "b", "a"]})),
        FieldValidation::Warn,
    );
    assert_eq!(
        causes(r),
        vec![cause(
            "FieldValueDuplicate",
            "spec.tags[2]",
            r#"Duplicate value: "a""#
        )]
    );
}

#[test]
fn a_duplicate_key_in_a_map_list_is_field_value_duplicate_with_the_item() {
    let (_, r) = admit(
        &widget(),
        obj(json!({"size": 1, "ports": [{"name": "a", "port": 1}, {"name": "a", "port": 2}]})),
        FieldValidation::Warn,
    );
    assert_eq!(
        causes(r),
        vec![cause(
            "FieldValueDuplicate",
            "spec.ports[1]",
            r#"Duplicate value: map[string]interface {}{"name":"a", "port":2}"#
        )]
    );
}

#[test]
fn list_and_map_types_are_reported_for_server_side_apply() {
    let s = widget();
    let f = |n: &str| PathElement::Field(n.into());
    assert_eq!(s.list_type_at(&[f("spec"), f("tags")]), ListType::Set);
    assert_eq!(
        s.list_type_at(&[f("spec"), f("ports")]),
        ListType::Map {
            keys: vec!["name".into()]
        }
    );
    assert_eq!(s.list_type_at(&[f("spec"), f("nope")]), ListType::Atomic);
    assert!(s.map_is_atomic_at(&[f("spec"), f("labels")]));
    assert!(!s.map_is_atomic_at(&[f("spec"), f("backend")]));
    assert!(!s.map_is_atomic_at(&[f("spec"), f("ports"), PathElement::Index(0)]));
}

#[test]
fn field_validation_parses_the_query_value_with_warn_as_default() {
    assert_eq!(FieldValidation::from_query(None), Ok(FieldValidation::Warn));
    assert_eq!(
        FieldValidation::from_query(Some("")),
        Ok(FieldValidation::Warn)
    );
    assert_eq!(
        FieldValidation::from_query(Some("Strict")),
        Ok(FieldValidation::Strict)
    );
    assert_eq!(
        FieldValidation::from_query(Some("Ignore")),
        Ok(FieldValidation::Ignore)
    );
    assert!(FieldValidation::from_query(Some("strict")).is_err());
}

fn embedded_schema() -> Value {
    json!({
        "type": "object",
        "properties": {"spec": {"type": "object", "properties": {
            "template": {
                "type": "object",
                "x-kubernetes-embedded-resource": true,
                "x-kubernetes-preserve-unknown-fields": true
            }
        }}}
    })
}

#[test]
fn an_embedded_resource_requires_api_version_and_kind() {
    let s = CompiledSchema::compile(&embedded_schema()).unwrap();
    let (_, r) = admit(
        &s,
        obj(json!({"template": {"metadata": {"name": "x"}}})),
        FieldValidation::Warn,
    );
    assert_eq!(
        causes(r)[..2],
        [
            cause(
                "FieldValueRequired",
                "spec.template.apiVersion",
                "Required value: must not be empty"
            ),
            cause(
                "FieldValueRequired",
                "spec.template.kind",
                "Required value: must not be empty"
            ),
        ]
    );
    let (_, r) = admit(
        &s,
        obj(json!({"template": {"apiVersion": "v1", "kind": "Pod", "x": 1}})),
        FieldValidation::Strict,
    );
    assert!(r.is_ok(), "{r:?}");
}

/// The shape kube-derive gives a Rust enum with struct variants: `oneOf` of `required`.
fn one_of_schema() -> Value {
    json!({
        "type": "object",
        "properties": {"spec": {"type": "object", "properties": {
            "backend": {
                "type": "object",
                "properties": {
                    "s3": {"type": "object", "properties": {"bucket": {"type": "string"}}},
                    "gcs": {"type": "object", "properties": {"bucket": {"type": "string"}}}
                },
                "oneOf": [{"required": ["s3"]}, {"required": ["gcs"]}]
            }
        }}}
    })
}

#[test]
fn one_of_with_per_variant_required_accepts_exactly_one_variant() {
    let s = CompiledSchema::compile(&one_of_schema()).unwrap();
    let (_, r) = admit(
        &s,
        obj(json!({"backend": {"s3": {"bucket": "b"}}})),
        FieldValidation::Warn,
    );
    assert!(r.is_ok(), "{r:?}");
    let (_, r) = admit(
        &s,
        obj(json!({"backend": {"s3": {}, "gcs": {}}})),
        FieldValidation::Warn,
    );
    assert_eq!(
        causes(r)[0],
        cause(
            "FieldValueInvalid",
            "spec.backend",
            r#"Invalid value: "": spec.backend in body must validate one and only one schema (oneOf). Found 2 valid alternatives"#
        )
    );
    let (_, r) = admit(&s, obj(json!({"backend": {}})), FieldValidation::Warn);
    let c = causes(r);
    assert_eq!(
        c[0].message,
        r#"Invalid value: "": spec.backend in body must validate one and only one schema (oneOf)"#
    );
    assert_eq!(
        c[1],
        cause("FieldValueRequired", "spec.backend.s3", "Required value")
    );
}

#[test]
fn any_of_all_of_and_not_are_enforced() {
    let s = CompiledSchema::compile(&json!({
        "type": "object",
        "properties": {"spec": {"type": "object", "properties": {
            "a": {"type": "string", "anyOf": [{"pattern": "^x"}, {"pattern": "^y"}]},
            "b": {"type": "integer", "allOf": [{"minimum": 1}, {"maximum": 5}]},
            "c": {"type": "string", "not": {"enum": ["forbidden"]}}
        }}}
    }))
    .unwrap();
    let (_, r) = admit(
        &s,
        obj(json!({"a": "yes", "b": 3, "c": "ok"})),
        FieldValidation::Warn,
    );
    assert!(r.is_ok(), "{r:?}");
    let (_, r) = admit(
        &s,
        obj(json!({"a": "zzz", "b": 6, "c": "forbidden"})),
        FieldValidation::Warn,
    );
    let messages: Vec<String> = causes(r)
        .into_iter()
        .map(|c| format!("{}: {}", c.field, c.message))
        .collect();
    assert!(messages.contains(&r#"spec.a: Invalid value: "": spec.a in body must validate at least one schema (anyOf)"#.to_string()), "{messages:?}");
    assert!(
        messages.contains(
            &r#"spec.b: Invalid value: "": spec.b in body must validate all the schemas (allOf)"#
                .to_string()
        ),
        "{messages:?}"
    );
    assert!(
        messages.contains(
            &"spec.b: Invalid value: 6: spec.b in body should be less than or equal to 5"
                .to_string()
        ),
        "{messages:?}"
    );
    assert!(
        messages.contains(
            &r#"spec.c: Invalid value: "": spec.c in body must not validate the schema (not)"#
                .to_string()
        ),
        "{messages:?}"
    );
}

#[test]
fn min_and_max_properties_are_enforced() {
    let s = CompiledSchema::compile(&json!({
        "type": "object",
        "properties": {"spec": {"type": "object", "properties": {
            "m": {"type": "object", "additionalProperties": {"type": "string"}, "minProperties": 1, "maxProperties": 2}
        }}}
    }))
    .unwrap();
    let (_, r) = admit(&s, obj(json!({"m": {}})), FieldValidation::Warn);
    assert_eq!(
        causes(r)[0],
        cause(
            "FieldValueInvalid",
            "spec.m",
            "Invalid value: 0: spec.m in body should have at least 1 properties"
        )
    );
    let (_, r) = admit(
        &s,
        obj(json!({"m": {"a": "1", "b": "2", "c": "3"}})),
        FieldValidation::Warn,
    );
    assert_eq!(
        causes(r)[0],
        cause(
            "FieldValueTooMany",
            "spec.m",
            "Too many: 3: must have at most 2 items"
        )
    );
}

#[test]
fn a_schema_restriction_on_metadata_name_is_enforced() {
    let s = CompiledSchema::compile(&json!({
        "type": "object",
        "properties": {"metadata": {"type": "object", "properties": {"name": {"type": "string", "maxLength": 3}}}}
    }))
    .unwrap();
    let mut o =
        json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "toolong"}});
    let c = causes(s.admit(&mut o, None, FieldValidation::Warn));
    assert_eq!(
        c[0],
        cause(
            "FieldValueTooLong",
            "metadata.name",
            "Too long: may not be more than 3 bytes"
        )
    );
}

#[test]
fn on_update_an_unchanged_invalid_field_is_ratcheted_but_a_changed_one_is_not() {
    let s = widget();
    // Stored under a looser schema: name too short, size too large.
    let old = obj(json!({"size": 20, "name": "a", "mode": "fast"}));
    let mut unchanged = obj(json!({"size": 20, "name": "a", "mode": "slow"}));
    assert!(s
        .admit(&mut unchanged, Some(&old), FieldValidation::Warn)
        .is_ok());
    let mut changed = obj(json!({"size": 30, "name": "a"}));
    let c = causes(s.admit(&mut changed, Some(&old), FieldValidation::Warn));
    assert_eq!(
        c,
        vec![cause(
            "FieldValueInvalid",
            "spec.size",
            "Invalid value: 30: spec.size in body should be less than or equal to 10"
        )]
    );
}

#[test]
fn on_update_a_duplicate_in_an_unchanged_set_is_ratcheted() {
    let s = widget();
    let old = obj(json!({"size": 1, "tags": ["a", "a"]}));
    let mut same = obj(json!({"size": 2, "tags": ["a", "a"]}));
    assert!(s
        .admit(&mut same, Some(&old), FieldValidation::Warn)
        .is_ok());
    let mut grown = obj(json!({"size": 2, "tags": ["a", "a", "b"]}));
    assert!(s
        .admit(&mut grown, Some(&old), FieldValidation::Warn)
        .is_err());
}

#[test]
fn null_for_a_nullable_enum_field_must_be_listed_in_the_enum() {
    let s = CompiledSchema::compile(&json!({
        "type": "object",
        "properties": {"spec": {"type": "object", "properties": {
            "tier": {"type": "string", "nullable": true, "enum": ["A", "B"]},
            "level": {"type": "string", "nullable": true, "enum": ["x", null]}
        }}}
    }))
    .unwrap();
    let (_, r) = admit(&s, obj(json!({"tier": null})), FieldValidation::Warn);
    assert_eq!(
        causes(r)[0],
        cause(
            "FieldValueNotSupported",
            "spec.tier",
            r#"Unsupported value: "null": supported values: "A", "B""#
        )
    );
    let (_, r) = admit(&s, obj(json!({"level": null})), FieldValidation::Warn);
    assert!(r.is_ok(), "{r:?}");
}

#[test]
fn needs_defaults_agrees_with_default_object() {
    let s = CompiledSchema::compile(&json!({
        "type": "object",
        "properties": {
            "spec": {"type": "object", "properties": {
                "mode": {"type": "string", "default": "fast"},
                "note": {"type": "string", "nullable": true, "default": "n"},
                "backend": {"type": "object", "properties": {"region": {"type": "string", "default": "us-east-1"}}},
                "ports": {"type": "array", "items": {"type": "object", "properties": {"protocol": {"type": "string", "default": "TCP"}}}},
                "labels": {"type": "object", "additionalProperties": {"type": "string", "default": "x"}}
            }}
        }
    }))
    .unwrap();
    let full = json!({"mode": "slow", "note": null, "backend": {"region": "eu"},
        "ports": [{"protocol": "UDP"}], "labels": {"a": "b"}});
    let cases = [
        json!({}),
        json!({"spec": {}}),
        json!({"spec": full.clone()}),
        json!({"spec": {"mode": null, "note": null}}),
        json!({"spec": {"mode": "slow", "note": null}}),
        json!({"spec": {"mode": "slow", "note": "x", "backend": {}}}),
        json!({"spec": {"mode": "slow", "note": "x", "ports": [{"protocol": "UDP"}, {}]}}),
        json!({"spec": {"mode": "slow", "note": "x", "labels": {"a": null}}}),
        json!({"metadata": {"name": "a"}, "spec": full}),
    ];
    for case in cases {
        let mut defaulted = case.clone();
        s.default_object(&mut defaulted);
        assert_eq!(s.needs_defaults(&case), defaulted != case, "{case}");
    }
}
