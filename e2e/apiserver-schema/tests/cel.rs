//! CEL `x-kubernetes-validations`: one behaviour per test.

use castellan_apiserver_schema::{AdmitError, Cause, CompiledSchema, FieldValidation};
use serde_json::{json, Value};

fn schema_with_rules() -> Value {
    json!({
        "type": "object",
        "properties": {
            "spec": {
                "type": "object",
                "x-kubernetes-validations": [
                    {"rule": "self.min <= self.max", "message": "min must not exceed max", "fieldPath": ".min"},
                    {"rule": "!has(self.mode) || self.mode != 'legacy'", "messageExpression": "'mode ' + self.mode + ' is gone'"},
                    {"rule": "self.max < 100", "reason": "FieldValueForbidden", "message": "max too large"},
                    {"rule": "self.min >= 0"}
                ],
                "properties": {
                    "min": {"type": "integer"},
                    "max": {"type": "integer"},
                    "mode": {"type": "string", "enum": ["new", "legacy"]},
                    "immutable": {
                        "type": "string",
                        "x-kubernetes-validations": [{"rule": "self == oldSelf", "message": "is immutable"}]
                    },
                    "items": {
                        "type": "array",
                        "x-kubernetes-list-type": "map",
                        "x-kubernetes-list-map-keys": ["name"],
                        "items": {
                            "type": "object",
                            "required": ["name"],
                            "properties": {
                                "name": {"type": "string"},
                                "v": {"type": "integer", "x-kubernetes-validations": [{"rule": "self >= oldSelf", "message": "may not decrease"}]}
                            }
                        }
                    },
                    "size": {"type": "string", "maxLength": 3}
                }
            }
        }
    })
}

fn compiled() -> CompiledSchema {
    CompiledSchema::compile(&schema_with_rules()).expect("compiles")
}

fn obj(spec: Value) -> Value {
    json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w1"}, "spec": spec})
}

fn causes(r: Result<castellan_apiserver_schema::Admitted, AdmitError>) -> Vec<Cause> {
    match r {
        Err(AdmitError::Invalid(c)) => c,
        other => panic!("expected 422, got {other:?}"),
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
fn a_cel_rule_s_message_is_reported_at_its_field_path() {
    let mut o = obj(json!({"min": 5, "max": 1}));
    let c = causes(compiled().admit(&mut o, None, FieldValidation::Warn));
    assert_eq!(
        c,
        vec![cause(
            "FieldValueInvalid",
            "spec.min",
            r#"Invalid value: "object": min must not exceed max"#
        )]
    );
}

#[test]
fn a_message_expression_is_evaluated_for_the_message() {
    let mut o = obj(json!({"min": 1, "max": 2, "mode": "legacy"}));
    let c = causes(compiled().admit(&mut o, None, FieldValidation::Warn));
    assert_eq!(
        c,
        vec![cause(
            "FieldValueInvalid",
            "spec",
            r#"Invalid value: "object": mode legacy is gone"#
        )]
    );
}

#[test]
fn a_rule_reason_selects_the_cause_type() {
    let mut o = obj(json!({"min": 1, "max": 200}));
    let c = causes(compiled().admit(&mut o, None, FieldValidation::Warn));
    assert_eq!(
        c,
        vec![cause(
            "FieldValueForbidden",
            "spec",
            "Forbidden: max too large"
        )]
    );
}

#[test]
fn a_rule_without_message_reports_failed_rule() {
    let mut o = obj(json!({"min": -2, "max": 1}));
    let c = causes(compiled().admit(&mut o, None, FieldValidation::Warn));
    assert_eq!(
        c,
        vec![cause(
            "FieldValueInvalid",
            "spec",
            r#"Invalid value: "object": failed rule: self.min >= 0"#
        )]
    );
}

#[test]
fn a_transition_rule_sees_old_self_only_on_update() {
    let s = compiled();
    let mut created = obj(json!({"min": 1, "max": 2, "immutable": "a"}));
    assert!(s.admit(&mut created, None, FieldValidation::Warn).is_ok());
    let mut updated = obj(json!({"min": 1, "max": 2, "immutable": "b"}));
    let c = causes(s.admit(&mut updated, Some(&created), FieldValidation::Warn));
    assert_eq!(
        c,
        vec![cause(
            "FieldValueInvalid",
            "spec.immutable",
            r#"Invalid value: "string": is immutable"#
        )]
    );
    let mut same = obj(json!({"min": 1, "max": 3, "immutable": "a"}));
    assert!(s
        .admit(&mut same, Some(&created), FieldValidation::Warn)
        .is_ok());
}

#[test]
fn transition_rules_in_map_lists_correlate_items_by_key_not_index() {
    let s = compiled();
    let old =
        obj(json!({"min": 1, "max": 2, "items": [{"name": "a", "v": 5}, {"name": "b", "v": 1}]}));
    // Reordered and b raised: allowed. Without key correlation, index 0 (b=1) would be compared to a=5.
    let mut new =
        obj(json!({"min": 1, "max": 2, "items": [{"name": "b", "v": 2}, {"name": "a", "v": 5}]}));
    assert!(s.admit(&mut new, Some(&old), FieldValidation::Warn).is_ok());
    let mut lowered = obj(json!({"min": 1, "max": 2, "items": [{"name": "a", "v": 4}]}));
    let c = causes(s.admit(&mut lowered, Some(&old), FieldValidation::Warn));
    assert_eq!(
        c,
        vec![cause(
            "FieldValueInvalid",
            "spec.items[0].v",
            r#"Invalid value: "integer": may not decrease"#
        )]
    );
}

#[test]
fn cel_rules_are_skipped_when_a_blocking_error_exists() {
    let mut o = obj(json!({"min": 5, "max": 1, "size": "toolong"}));
    let c = causes(compiled().admit(&mut o, None, FieldValidation::Warn));
    assert_eq!(
        c,
        vec![
            cause(
                "FieldValueTooLong",
                "spec.size",
                "Too long: may not be more than 3 bytes"
            ),
            cause(
                "FieldValueInvalid",
                "<nil>",
                r#"Invalid value: "null": some validation rules were not checked because the object was invalid; correct the existing errors to complete validation"#
            ),
        ]
    );
}

#[test]
fn a_cel_rule_that_does_not_compile_rejects_the_crd() {
    let schema = json!({
        "type": "object",
        "properties": {"spec": {"type": "object", "x-kubernetes-validations": [{"rule": "self.a =="}]}}
    });
    let errs = CompiledSchema::compile(&schema).unwrap_err();
    assert_eq!(errs.len(), 1);
    assert_eq!(
        errs[0].field,
        "spec.validation.openAPIV3Schema.properties[spec].x-kubernetes-validations[0].rule"
    );
    assert!(
        errs[0].message.contains("compilation failed"),
        "{}",
        errs[0].message
    );
}

#[test]
fn a_rule_using_a_macro_kube_cel_cannot_evaluate_is_rejected_when_the_crd_is_compiled() {
    for rule in [
        "self.items.sortBy(i, i.name) == self.items",
        "cel.bind(x, self.items, x.size() < 3)",
        "self.items.all(i, v, v.name != '')",
    ] {
        let schema = json!({
            "type": "object",
            "properties": {"spec": {
                "type": "object",
                "properties": {"items": {"type": "array", "items": {"type": "object", "properties": {"name": {"type": "string"}}}}},
                "x-kubernetes-validations": [{"rule": rule}]
            }}
        });
        let errs = CompiledSchema::compile(&schema).expect_err(rule);
        assert!(
            errs[0]
                .message
                .contains("not supported by the emulator's CEL evaluator"),
            "{rule}: {errs:?}"
        );
    }
}

#[test]
fn a_transition_rule_under_a_set_or_atomic_list_is_rejected() {
    let schema = json!({
        "type": "object",
        "properties": {"spec": {"type": "object", "properties": {"l": {
            "type": "array",
            "items": {"type": "string", "x-kubernetes-validations": [{"rule": "self == oldSelf"}]}
        }}}}
    });
    let errs = CompiledSchema::compile(&schema).unwrap_err();
    assert!(
        errs[0]
            .message
            .contains("oldSelf cannot be used on the uncorrelatable portion of the schema"),
        "{errs:?}"
    );
}

#[test]
fn an_unknown_rule_reason_is_unsupported() {
    let schema = json!({
        "type": "object",
        "properties": {"spec": {"type": "object", "x-kubernetes-validations": [{"rule": "true", "reason": "Nope"}]}}
    });
    let errs = CompiledSchema::compile(&schema).unwrap_err();
    assert_eq!(
        errs[0].field,
        "spec.validation.openAPIV3Schema.properties[spec].x-kubernetes-validations[0].reason"
    );
    assert_eq!(errs[0].reason, "FieldValueNotSupported");
}

#[test]
fn cel_sees_escaped_field_names_and_defaults() {
    let schema = json!({
        "type": "object",
        "properties": {"spec": {
            "type": "object",
            "properties": {
                "max-size": {"type": "integer", "default": 3},
                "namespace": {"type": "string"}
            },
            "x-kubernetes-validations": [
                {"rule": "self.max__dash__size == 3", "message": "default not visible"},
                {"rule": "!has(self.__namespace__) || self.__namespace__ != 'kube-system'", "message": "no kube-system"}
            ]
        }}
    });
    let s = CompiledSchema::compile(&schema).unwrap();
    let mut ok = obj(json!({"namespace": "x"}));
    assert!(s.admit(&mut ok, None, FieldValidation::Warn).is_ok());
    let mut bad = obj(json!({"namespace": "kube-system"}));
    let c = causes(s.admit(&mut bad, None, FieldValidation::Warn));
    assert_eq!(
        c,
        vec![cause(
            "FieldValueInvalid",
            "spec",
            r#"Invalid value: "object": no kube-system"#
        )]
    );
}

#[test]
fn compiled_schemas_can_be_shared_across_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<CompiledSchema>();
    let s = std::sync::Arc::new(compiled());
    let h = std::thread::spawn({
        let s = s.clone();
        move || {
            let mut o = obj(json!({"min": 5, "max": 1}));
            s.admit(&mut o, None, FieldValidation::Warn).is_err()
        }
    });
    assert!(h.join().unwrap());
}

#[test]
fn a_rule_selecting_an_undeclared_field_is_rejected_when_the_crd_is_compiled() {
    let schema = |rule: &str| {
        json!({
            "type": "object",
            "properties": {"spec": {
                "type": "object",
                "properties": {
                    "items": {"type": "array", "items": {"type": "object", "properties": {"name": {"type": "string"}}}},
                    "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                    "raw": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}
                },
                "x-kubernetes-validations": [{"rule": rule}]
            }}
        })
    };
    for ok in [
        "self.items.all(i, i.name != '')",
        "has(self.labels) && self.labels.team == 'a'",
        "!has(self.raw) || has(self.raw.anything)",
    ] {
        CompiledSchema::compile(&schema(ok)).unwrap_or_else(|e| panic!("{ok}: {e:?}"));
    }
    for bad in [
        "self.nosuch > 0",
        "self.items.all(i, i.nope != '')",
        "has(self.itemz)",
    ] {
        let errs = CompiledSchema::compile(&schema(bad)).expect_err(bad);
        assert!(
            errs[0].message.contains("undefined field"),
            "{bad}: {errs:?}"
        );
    }
}

#[test]
fn a_root_rule_may_read_metadata_name_and_reports_at_nil() {
    let schema = json!({
        "type": "object",
        "properties": {"spec": {"type": "object", "properties": {"a": {"type": "string"}}}},
        "x-kubernetes-validations": [{"rule": "self.metadata.name != 'forbidden'", "message": "name is reserved"}]
    });
    let s = CompiledSchema::compile(&schema).unwrap();
    let mut bad = json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "forbidden"}, "spec": {}});
    let c = causes(s.admit(&mut bad, None, FieldValidation::Warn));
    assert_eq!(
        c,
        vec![cause(
            "FieldValueInvalid",
            "<nil>",
            r#"Invalid value: "object": name is reserved"#
        )]
    );
}

#[test]
fn a_rule_that_fails_to_evaluate_reports_the_error_and_the_rule_message() {
    let schema = json!({
        "type": "object",
        "properties": {"spec": {
            "type": "object",
            "properties": {"a": {"type": "string"}, "b": {"type": "string"}},
            "x-kubernetes-validations": [{"rule": "self.a == self.b", "message": "a must equal b"}]
        }}
    });
    let s = CompiledSchema::compile(&schema).unwrap();
    let mut o = obj(json!({"a": "x"}));
    let c = causes(s.admit(&mut o, None, FieldValidation::Warn));
    assert_eq!(c.len(), 1);
    assert_eq!(c[0].field, "spec");
    assert!(
        c[0].message
            .starts_with(r#"Invalid value: "object": no such key"#),
        "{c:?}"
    );
    assert!(
        c[0].message.ends_with("evaluating rule: a must equal b"),
        "{c:?}"
    );
}

#[test]
fn a_rule_may_read_only_name_and_generate_name_of_metadata() {
    let schema = |rule: &str| {
        json!({
            "type": "object",
            "properties": {"spec": {"type": "object"}},
            "x-kubernetes-validations": [{"rule": rule}]
        })
    };
    CompiledSchema::compile(&schema(
        "self.metadata.name.startsWith('a') || has(self.metadata.generateName)",
    ))
    .unwrap();
    let errs = CompiledSchema::compile(&schema("has(self.metadata.labels)")).unwrap_err();
    assert!(
        errs[0].message.contains("undefined field 'labels'"),
        "{errs:?}"
    );
}
