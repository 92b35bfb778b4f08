//! OpenAPI validation of an admitted object, as the apiserver's `kube-openapi` validator does it,
//! with errors converted to field errors the way `apiextensions-apiserver`'s
//! `pkg/apiserver/validation` converts them (`Required value`, `Unsupported value`, `Too long`,
//! `Too many`, `Invalid value: "<type>": <path> in body must be of type ...`, and
//! `Invalid value: <value>: <path> in body should ...` for everything else).

use serde_json::Value;

use crate::errors::{go_number, json_type_name, Cause};
use crate::node::Node;

/// Validate the whole object (`metadata` at the root excluded: the server validates it).
pub(crate) fn validate_object(root: &Node, obj: &Value) -> Vec<Cause> {
    let mut out = Vec::new();
    validate(root, obj, "", true, &mut out);
    out
}

/// Validate a value against one node, e.g. a schema `default`. `path` names the value.
pub(crate) fn validate_value(node: &Node, v: &Value, path: &str) -> Vec<Cause> {
    let mut out = Vec::new();
    validate(node, v, path, false, &mut out);
    out
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

/// go-openapi's `<name> in body` prefix.
fn subject(path: &str) -> String {
    format!("{path} in body")
}

fn is_integer(v: &Value) -> bool {
    match v {
        Value::Number(n) => {
            n.is_i64()
                || n.is_u64()
                || n.as_f64()
                    .is_some_and(|f| f.is_finite() && f.fract() == 0.0)
        }
        _ => false,
    }
}

fn type_matches(ty: &str, v: &Value) -> bool {
    match ty {
        "object" => v.is_object(),
        "array" => v.is_array(),
        "string" => v.is_string(),
        "boolean" => v.is_boolean(),
        "number" => v.is_number(),
        "integer" => is_integer(v),
        _ => true,
    }
}

/// JSON equality with numbers compared by value (`1` equals `1.0`), as Go's unstructured
/// comparisons after decoding do for enum checks.
pub(crate) fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_i64(), y.as_i64()) {
            (Some(i), Some(j)) => i == j,
            _ => x.as_f64() == y.as_f64(),
        },
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| json_eq(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_eq(v, w)))
        }
        _ => a == b,
    }
}

fn validate(node: &Node, v: &Value, path: &str, resource_root: bool, out: &mut Vec<Cause>) {
    // Null: accepted when nullable; otherwise a type error (nulls of declared, non-nullable
    // object fields were pruned before validation, so these are list items and the like).
    if v.is_null() {
        if node.nullable {
            // kube-openapi exits early on null, but still runs the enum check: a nullable field
            // with an `enum` that does not list `null` rejects `null`.
            check_enum(node, v, path, out);
            return;
        }
        if let Some(ty) = &node.ty {
            out.push(type_error(path, ty, v));
        } else if node.int_or_string {
            out.push(type_error(path, "integer,string", v));
        }
        return;
    }

    // typeValidator
    if let Some(ty) = &node.ty {
        if !type_matches(ty, v) {
            out.push(type_error(path, ty, v));
        }
    } else if node.int_or_string && !(is_integer(v) || v.is_string()) {
        out.push(type_error(path, "integer,string", v));
    }

    // schemaPropsValidator: allOf / anyOf / oneOf / not
    validate_combinators(node, v, path, out);

    // stringValidator, formatValidator
    if let Value::String(s) = v {
        let chars = s.chars().count() as u64;
        if let Some(max) = node.max_length {
            if chars > max {
                out.push(Cause::too_long(path, max));
            }
        }
        if let Some(min) = node.min_length {
            if chars < min {
                out.push(Cause::invalid(
                    path,
                    v,
                    &format!("{} should be at least {min} chars long", subject(path)),
                ));
            }
        }
        if let Some((pattern, re)) = &node.pattern {
            if !re.is_match(s) {
                out.push(Cause::invalid(
                    path,
                    v,
                    &format!("{} should match '{pattern}'", subject(path)),
                ));
            }
        }
        if let Some(format) = &node.format {
            if !crate::formats::valid(format, s) {
                out.push(Cause::type_invalid(
                    path,
                    v,
                    &format!(
                        "{} must be of type {format}: {}",
                        subject(path),
                        Value::String(s.clone())
                    ),
                ));
            }
        }
    }

    // numberValidator
    if let Some(n) = v.as_f64().filter(|_| v.is_number()) {
        if let Some(m) = node.multiple_of {
            if m != 0.0 && (n / m).fract() != 0.0 {
                out.push(Cause::invalid(
                    path,
                    v,
                    &format!("{} should be a multiple of {}", subject(path), go_number(m)),
                ));
            }
        }
        if let Some(max) = node.maximum {
            if node.exclusive_maximum && n >= max {
                let d = format!("{} should be less than {}", subject(path), go_number(max));
                out.push(Cause::invalid(path, v, &d));
            } else if !node.exclusive_maximum && n > max {
                let d = format!(
                    "{} should be less than or equal to {}",
                    subject(path),
                    go_number(max)
                );
                out.push(Cause::invalid(path, v, &d));
            }
        }
        if let Some(min) = node.minimum {
            if node.exclusive_minimum && n <= min {
                let d = format!(
                    "{} should be greater than {}",
                    subject(path),
                    go_number(min)
                );
                out.push(Cause::invalid(path, v, &d));
            } else if !node.exclusive_minimum && n < min {
                let d = format!(
                    "{} should be greater than or equal to {}",
                    subject(path),
                    go_number(min)
                );
                out.push(Cause::invalid(path, v, &d));
            }
        }
    }

    // sliceValidator
    if let Value::Array(items) = v {
        if let Some(item_node) = node.items.as_deref() {
            for (i, item) in items.iter().enumerate() {
                validate(
                    item_node,
                    item,
                    &format!("{path}[{i}]"),
                    item_node.embedded,
                    out,
                );
            }
        }
        if let Some(min) = node.min_items {
            if (items.len() as u64) < min {
                let d = format!("{} should have at least {min} items", subject(path));
                out.push(Cause::invalid(path, &Value::from(items.len()), &d));
            }
        }
        if let Some(max) = node.max_items {
            if items.len() as u64 > max {
                out.push(Cause::too_many(path, items.len(), max));
            }
        }
    }

    // commonValidator: enum
    check_enum(node, v, path, out);

    // objectValidator
    if let Value::Object(map) = v {
        let n = map.len();
        if let Some(min) = node.min_properties {
            if (n as u64) < min {
                let d = format!("{} should have at least {min} properties", subject(path));
                out.push(Cause::invalid(path, &Value::from(n), &d));
            }
        }
        if let Some(max) = node.max_properties {
            if n as u64 > max {
                out.push(Cause::too_many(path, n, max));
            }
        }
        let mut keys: Vec<&String> = map.keys().collect();
        keys.sort();
        for k in keys {
            if resource_root && k == "metadata" {
                // Only the `name`/`generateName` restrictions a schema may carry apply here.
                if let (Some(meta_node), Some(meta)) =
                    (node.properties.get("metadata"), map[k.as_str()].as_object())
                {
                    for f in ["name", "generateName"] {
                        if let (Some(sub), Some(val)) = (meta_node.properties.get(f), meta.get(f)) {
                            validate(sub, val, &join(&join(path, "metadata"), f), false, out);
                        }
                    }
                }
                continue;
            }
            let child = if let Some(p) = node.properties.get(k) {
                p
            } else if let Some(a) = node.additional.as_deref() {
                a
            } else {
                continue;
            };
            validate(child, &map[k.as_str()], &join(path, k), child.embedded, out);
        }
        for r in &node.required {
            if !map.contains_key(r) {
                out.push(Cause::required(&join(path, r), ""));
            }
        }
        if node.embedded {
            for k in ["apiVersion", "kind"] {
                if map
                    .get(k)
                    .is_none_or(|v| v.as_str().is_some_and(str::is_empty) || v.is_null())
                {
                    out.push(Cause::required(&join(path, k), "must not be empty"));
                }
            }
        }
    }
}

fn check_enum(node: &Node, v: &Value, path: &str, out: &mut Vec<Cause>) {
    if let Some(values) = &node.enum_values {
        if !values.iter().any(|e| json_eq(e, v)) {
            let supported: Vec<String> = values
                .iter()
                .map(|e| match e {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
                .collect();
            out.push(Cause::not_supported(path, v, &supported));
        }
    }
}

fn type_error(path: &str, ty: &str, v: &Value) -> Cause {
    let actual = json_type_name(v);
    Cause::type_invalid(
        path,
        &Value::String(actual.to_owned()),
        &format!(
            "{} must be of type {ty}: {}",
            subject(path),
            Value::String(actual.to_owned())
        ),
    )
}

fn validate_combinators(node: &Node, v: &Value, path: &str, out: &mut Vec<Cause>) {
    let empty = Value::String(String::new());
    if !node.all_of.is_empty() {
        let mut errs = Vec::new();
        for branch in &node.all_of {
            validate(branch, v, path, false, &mut errs);
        }
        if !errs.is_empty() {
            let d = format!("{} must validate all the schemas (allOf)", subject(path));
            out.push(Cause::invalid(path, &empty, &d));
            out.extend(errs);
        }
    }
    if !node.any_of.is_empty() {
        let mut best: Option<Vec<Cause>> = None;
        let mut ok = false;
        for branch in &node.any_of {
            let mut errs = Vec::new();
            validate(branch, v, path, false, &mut errs);
            if errs.is_empty() {
                ok = true;
                break;
            }
            if best.as_ref().is_none_or(|b| errs.len() < b.len()) {
                best = Some(errs);
            }
        }
        if !ok {
            let d = format!(
                "{} must validate at least one schema (anyOf)",
                subject(path)
            );
            out.push(Cause::invalid(path, &empty, &d));
            out.extend(best.unwrap_or_default());
        }
    }
    if !node.one_of.is_empty() {
        let mut best: Option<Vec<Cause>> = None;
        let mut valid = 0usize;
        for branch in &node.one_of {
            let mut errs = Vec::new();
            validate(branch, v, path, false, &mut errs);
            if errs.is_empty() {
                valid += 1;
            } else if best.as_ref().is_none_or(|b| errs.len() < b.len()) {
                best = Some(errs);
            }
        }
        if valid == 0 {
            let d = format!(
                "{} must validate one and only one schema (oneOf)",
                subject(path)
            );
            out.push(Cause::invalid(path, &empty, &d));
            out.extend(best.unwrap_or_default());
        } else if valid > 1 {
            let d = format!(
                "{} must validate one and only one schema (oneOf). Found {valid} valid alternatives",
                subject(path)
            );
            out.push(Cause::invalid(path, &empty, &d));
        }
    }
    if let Some(not) = node.not.as_deref() {
        let mut errs = Vec::new();
        validate(not, v, path, false, &mut errs);
        if errs.is_empty() {
            let d = format!("{} must not validate the schema (not)", subject(path));
            out.push(Cause::invalid(path, &empty, &d));
        }
    }
}
