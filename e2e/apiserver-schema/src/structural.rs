//! The checks the apiserver applies to a CRD's `openAPIV3Schema` before accepting the CRD:
//! structural-schema invariants (`pkg/apiserver/schema/validation.go`) and the keywords
//! `apiextensions` validation forbids or restricts (`pkg/apis/apiextensions/validation`).
//!
//! Paths are reported as the real server reports them: `<base>.properties[spec].type`,
//! `<base>.items`, `<base>.allOf[0]`, ...

use serde_json::{Map, Value};

use crate::errors::Cause;

const TYPES: [&str; 6] = ["array", "boolean", "integer", "number", "object", "string"];

#[derive(Clone, Copy, PartialEq, Eq)]
enum Level {
    Root,
    Field,
    Item,
    /// Inside `allOf`/`anyOf`/`oneOf`/`not` (a "value validation"): no structure allowed.
    Value,
}

/// Check `schema` (found at `base` in the CRD) and return every violation.
pub(crate) fn check(schema: &Value, base: &str) -> Vec<Cause> {
    let mut out = Vec::new();
    node(schema, base, Level::Root, &mut out);
    if let Some(meta) = schema.pointer("/properties/metadata") {
        check_root_metadata(meta, &format!("{base}.properties[metadata]"), &mut out);
    }
    out
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

fn node(schema: &Value, path: &str, level: Level, out: &mut Vec<Cause>) {
    let Some(m) = schema.as_object() else {
        out.push(Cause::invalid(path, schema, "must be a schema object"));
        return;
    };
    let at = |k: &str| format!("{path}.{k}");
    let flag = |k: &str| m.get(k).and_then(Value::as_bool);

    for (k, what) in [
        ("$ref", "$ref is not supported"),
        ("definitions", "definitions is not supported"),
        ("dependencies", "dependencies is not supported"),
        ("patternProperties", "patternProperties is not supported"),
        ("additionalItems", "additionalItems is not supported"),
        ("$schema", "$schema is not supported"),
        ("id", "id is not supported"),
    ] {
        if m.contains_key(k) {
            out.push(Cause::forbidden(&at(k), what));
        }
    }
    if flag("uniqueItems") == Some(true) {
        out.push(Cause::forbidden(
            &at("uniqueItems"),
            "uniqueItems cannot be set to true since the runtime complexity becomes quadratic",
        ));
    }
    match m.get("additionalProperties") {
        Some(Value::Bool(false)) => out.push(Cause::forbidden(
            &at("additionalProperties"),
            "additionalProperties cannot be set to false",
        )),
        Some(_) if m.contains_key("properties") => out.push(Cause::forbidden(
            &at("additionalProperties"),
            "additionalProperties and properties are mutual exclusive",
        )),
        _ => {}
    }
    if let Some(Value::Array(_)) = m.get("items") {
        out.push(Cause::forbidden(
            &at("items"),
            "items must be a schema object and not an array",
        ));
    }

    let ty = m.get("type").and_then(Value::as_str).unwrap_or("");
    let int_or_string = flag("x-kubernetes-int-or-string") == Some(true);
    let preserve = flag("x-kubernetes-preserve-unknown-fields");
    let embedded = flag("x-kubernetes-embedded-resource") == Some(true);

    if level == Level::Value {
        for k in [
            "type",
            "default",
            "nullable",
            "additionalProperties",
            "description",
            "title",
            "x-kubernetes-preserve-unknown-fields",
            "x-kubernetes-embedded-resource",
            "x-kubernetes-int-or-string",
            "x-kubernetes-list-type",
            "x-kubernetes-list-map-keys",
            "x-kubernetes-map-type",
            "x-kubernetes-validations",
        ] {
            if m.contains_key(k) {
                out.push(Cause::forbidden(&at(k), "must be empty to be structural"));
            }
        }
    } else {
        if let Some(t) = m.get("type") {
            match t.as_str() {
                Some(t) if TYPES.contains(&t) || t.is_empty() => {}
                _ => out.push(Cause::not_supported(
                    &at("type"),
                    t,
                    &TYPES.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
                )),
            }
        }
        if level == Level::Root && !ty.is_empty() && ty != "object" {
            out.push(Cause::invalid(
                &at("type"),
                &Value::String(ty.into()),
                "must be object at the root",
            ));
        }
        if int_or_string && !ty.is_empty() {
            out.push(Cause::invalid(
                &at("type"),
                &Value::String(ty.into()),
                "must be empty if x-kubernetes-int-or-string is true",
            ));
        }
        if embedded && ty != "object" {
            let detail = "must be object if x-kubernetes-embedded-resource is true";
            if ty.is_empty() {
                out.push(Cause::required(&at("type"), detail));
            } else {
                out.push(Cause::invalid(
                    &at("type"),
                    &Value::String(ty.into()),
                    detail,
                ));
            }
        } else if ty.is_empty() && !int_or_string && preserve != Some(true) {
            let detail = match level {
                Level::Root => "must not be empty at the root",
                Level::Item => "must not be empty for specified array items",
                _ => "must not be empty for specified object fields",
            };
            out.push(Cause::required(&at("type"), detail));
        }
        if preserve == Some(false) {
            out.push(Cause::invalid(
                &at("x-kubernetes-preserve-unknown-fields"),
                &Value::Bool(false),
                "must be true or undefined",
            ));
        }
        if ty == "array" && !m.contains_key("items") {
            out.push(Cause::required(&at("items"), "must be specified"));
        }
        if m.contains_key("default") && level == Level::Root {
            out.push(Cause::forbidden(
                &at("default"),
                "must not be set at the root",
            ));
        }
        list_and_map_types(m, ty, path, out);
    }

    if let Some(props) = m.get("properties").and_then(Value::as_object) {
        for (k, v) in props {
            let child_level = if level == Level::Value {
                Level::Value
            } else {
                Level::Field
            };
            node(v, &format!("{path}.properties[{k}]"), child_level, out);
        }
    }
    if let Some(ap) = m.get("additionalProperties").filter(|a| a.is_object()) {
        let child_level = if level == Level::Value {
            Level::Value
        } else {
            Level::Field
        };
        node(ap, &at("additionalProperties"), child_level, out);
    }
    if let Some(items) = m.get("items").filter(|a| a.is_object()) {
        let child_level = if level == Level::Value {
            Level::Value
        } else {
            Level::Item
        };
        node(items, &at("items"), child_level, out);
    }
    for k in ["allOf", "anyOf", "oneOf"] {
        if let Some(list) = m.get(k).and_then(Value::as_array) {
            for (i, b) in list.iter().enumerate() {
                if int_or_string && is_int_or_string_any_of(b) {
                    continue;
                }
                node(b, &format!("{path}.{k}[{i}]"), Level::Value, out);
            }
        }
    }
    if let Some(not) = m.get("not") {
        node(not, &at("not"), Level::Value, out);
    }
}

/// `{type: integer}` / `{type: string}` (or an `anyOf` of them), allowed under int-or-string.
fn is_int_or_string_any_of(b: &Value) -> bool {
    let simple = |v: &Value| {
        v.as_object().is_some_and(|o| {
            o.len() == 1
                && matches!(
                    o.get("type").and_then(Value::as_str),
                    Some("integer" | "string")
                )
        })
    };
    simple(b)
        || b.get("anyOf")
            .and_then(Value::as_array)
            .is_some_and(|a| a.iter().all(simple))
}

fn list_and_map_types(m: &Map<String, Value>, ty: &str, path: &str, out: &mut Vec<Cause>) {
    let at = |k: &str| format!("{path}.{k}");
    let list_type = m.get("x-kubernetes-list-type").and_then(Value::as_str);
    if let Some(lt) = list_type {
        if !matches!(lt, "atomic" | "set" | "map") {
            out.push(Cause::not_supported(
                &at("x-kubernetes-list-type"),
                &Value::String(lt.into()),
                &["atomic".into(), "set".into(), "map".into()],
            ));
        } else if ty != "array" {
            out.push(Cause::invalid(
                &at("x-kubernetes-list-type"),
                &Value::String(lt.into()),
                "must only be used if type is array",
            ));
        }
    }
    if list_type == Some("set") {
        if let Some(items) = m.get("items") {
            let item_type = items.get("type").and_then(Value::as_str);
            if item_type == Some("object")
                && items.get("x-kubernetes-map-type").and_then(Value::as_str) != Some("atomic")
            {
                out.push(Cause::required(
                    &format!("{path}.items.x-kubernetes-map-type"),
                    "must be atomic as item of a list with x-kubernetes-list-type=set",
                ));
            }
            if item_type == Some("array")
                && items.get("x-kubernetes-list-type").and_then(Value::as_str) != Some("atomic")
            {
                out.push(Cause::required(
                    &format!("{path}.items.x-kubernetes-list-type"),
                    "must be atomic as item of a list with x-kubernetes-list-type=set",
                ));
            }
        }
    }
    let keys = m.get("x-kubernetes-list-map-keys");
    match (list_type, keys) {
        (Some("map"), None) => out.push(Cause::required(
            &at("x-kubernetes-list-map-keys"),
            "must not be empty if x-kubernetes-list-type is map",
        )),
        (Some("map"), Some(k)) => {
            let keys = strings(k);
            if keys.is_empty() {
                out.push(Cause::required(
                    &at("x-kubernetes-list-map-keys"),
                    "must not be empty if x-kubernetes-list-type is map",
                ));
            }
            let item_props = m.get("items").and_then(|i| i.get("properties"));
            for key in keys {
                let Some(prop) = item_props.and_then(|p| p.get(&key)) else {
                    out.push(Cause::invalid(
                        &at("x-kubernetes-list-map-keys"),
                        k,
                        &format!("entries must all be names of item properties (\"{key}\" is not)"),
                    ));
                    continue;
                };
                let scalar = matches!(
                    prop.get("type").and_then(Value::as_str),
                    Some("string" | "integer" | "number" | "boolean")
                );
                if !scalar {
                    out.push(Cause::invalid(
                        &format!("{path}.items.properties[{key}].type"),
                        prop.get("type").unwrap_or(&Value::Null),
                        "must be a scalar type if parent array's x-kubernetes-list-type is map",
                    ));
                }
                let required = m
                    .get("items")
                    .and_then(|i| i.get("required"))
                    .is_some_and(|r| strings(r).contains(&key));
                if !required && prop.get("default").is_none() {
                    out.push(Cause::required(
                        &format!("{path}.items.properties[{key}]"),
                        "this property is in x-kubernetes-list-map-keys, so it must have a default or be a required property",
                    ));
                }
            }
        }
        (_, Some(_)) => out.push(Cause::forbidden(
            &at("x-kubernetes-list-map-keys"),
            "must not be set if x-kubernetes-list-type is not map",
        )),
        _ => {}
    }
    if let Some(mt) = m.get("x-kubernetes-map-type").and_then(Value::as_str) {
        if !matches!(mt, "granular" | "atomic") {
            out.push(Cause::not_supported(
                &at("x-kubernetes-map-type"),
                &Value::String(mt.into()),
                &["granular".into(), "atomic".into()],
            ));
        } else if ty != "object" {
            out.push(Cause::invalid(
                &at("x-kubernetes-map-type"),
                &Value::String(mt.into()),
                "must only be used if type is object",
            ));
        }
    }
}

/// At the root, `metadata` may only restrict `name` and `generateName`.
fn check_root_metadata(meta: &Value, path: &str, out: &mut Vec<Cause>) {
    let Some(m) = meta.as_object() else { return };
    let props_ok = m
        .get("properties")
        .and_then(Value::as_object)
        .is_none_or(|p| p.keys().all(|k| k == "name" || k == "generateName"));
    let keys_ok = m
        .keys()
        .all(|k| matches!(k.as_str(), "type" | "properties" | "description"));
    let type_ok = m
        .get("type")
        .and_then(Value::as_str)
        .is_none_or(|t| t == "object");
    if !(props_ok && keys_ok && type_ok) {
        out.push(Cause::forbidden(
            path,
            "must not specify anything other than name and generateName, but metadata is implicitly specified",
        ));
    }
}
