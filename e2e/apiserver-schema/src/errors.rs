//! Field errors with the real apiserver's reasons and message wording.
//!
//! The wording follows `k8s.io/apimachinery/pkg/util/validation/field` (`ErrorBody`): the error
//! type's text (`Invalid value`, `Required value`, ...), then the offending value rendered the way
//! Go's `fmt` renders it (`%q` for strings, `%v` for numbers and booleans, `%#v` otherwise), then
//! the detail.

use serde_json::Value;

/// One `details.causes[]` entry of a 422 `Status`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cause {
    /// `FieldValueRequired`, `FieldValueNotSupported`, `FieldValueInvalid`, ...
    pub reason: String,
    /// The error body, e.g. `Required value`.
    pub message: String,
    /// The field path, e.g. `spec.size`.
    pub field: String,
}

impl Cause {
    fn new(reason: &str, message: String, field: &str) -> Cause {
        Cause {
            reason: reason.to_owned(),
            message,
            field: field.to_owned(),
        }
    }

    /// `field.Required`: `Required value` (`: <detail>` when given).
    pub(crate) fn required(field: &str, detail: &str) -> Cause {
        Cause::new(
            "FieldValueRequired",
            with_detail("Required value", detail),
            field,
        )
    }

    /// `field.Forbidden`: `Forbidden: <detail>`.
    pub(crate) fn forbidden(field: &str, detail: &str) -> Cause {
        Cause::new(
            "FieldValueForbidden",
            with_detail("Forbidden", detail),
            field,
        )
    }

    /// `field.Invalid`: `Invalid value: <value>: <detail>`.
    pub(crate) fn invalid(field: &str, value: &Value, detail: &str) -> Cause {
        let body = with_detail(&format!("Invalid value: {}", go_value(value)), detail);
        Cause::new("FieldValueInvalid", body, field)
    }

    /// `field.Invalid` with a value already rendered (e.g. a Go struct dump).
    pub(crate) fn invalid_raw(field: &str, rendered: &str, detail: &str) -> Cause {
        let body = with_detail(&format!("Invalid value: {rendered}"), detail);
        Cause::new("FieldValueInvalid", body, field)
    }

    /// `field.TypeInvalid`: `Invalid value: <value>: <detail>`.
    pub(crate) fn type_invalid(field: &str, value: &Value, detail: &str) -> Cause {
        let body = with_detail(&format!("Invalid value: {}", go_value(value)), detail);
        Cause::new("FieldValueTypeInvalid", body, field)
    }

    /// `field.NotSupported`: `Unsupported value: <value>: supported values: "a", "b"`.
    pub(crate) fn not_supported(field: &str, value: &Value, supported: &[String]) -> Cause {
        let mut body = format!("Unsupported value: {}", go_value(value));
        if !supported.is_empty() {
            let quoted: Vec<String> = supported.iter().map(|s| go_quote(s)).collect();
            body.push_str(": supported values: ");
            body.push_str(&quoted.join(", "));
        }
        Cause::new("FieldValueNotSupported", body, field)
    }

    /// `field.Duplicate`: `Duplicate value: <value>`.
    pub(crate) fn duplicate(field: &str, value: &Value) -> Cause {
        Cause::new(
            "FieldValueDuplicate",
            format!("Duplicate value: {}", go_value(value)),
            field,
        )
    }

    /// `field.TooLong`: `Too long: may not be more than <n> bytes`.
    pub(crate) fn too_long(field: &str, max: u64) -> Cause {
        let unit = if max == 1 { "byte" } else { "bytes" };
        Cause::new(
            "FieldValueTooLong",
            format!("Too long: may not be more than {max} {unit}"),
            field,
        )
    }

    /// `field.TooMany`: `Too many: <actual>: must have at most <max> items`.
    pub(crate) fn too_many(field: &str, actual: usize, max: u64) -> Cause {
        Cause::new(
            "FieldValueTooMany",
            format!("Too many: {actual}: must have at most {max} items"),
            field,
        )
    }

    /// Whether `hasBlockingErr` (CR `strategy.go`) counts this error as blocking CEL rules.
    pub(crate) fn is_blocking(&self) -> bool {
        matches!(
            self.reason.as_str(),
            "FieldValueNotSupported"
                | "FieldValueRequired"
                | "FieldValueTooLong"
                | "FieldValueTooMany"
                | "FieldValueTypeInvalid"
        )
    }

    /// The text of `field.Error.Error()`: `<field>: <message>`.
    pub fn to_error_string(&self) -> String {
        format!("{}: {}", self.field, self.message)
    }
}

fn with_detail(head: &str, detail: &str) -> String {
    if detail.is_empty() {
        head.to_owned()
    } else {
        format!("{head}: {detail}")
    }
}

/// The `Status.message` of a 422: `<Kind>.<group> "<name>" is invalid: <field>: <message>`, or a
/// bracketed, comma-separated list when there are several causes (as `errors.NewInvalid` does).
/// `qualified_kind` is e.g. `Widget.example.com`.
pub fn invalid_message(qualified_kind: &str, name: &str, causes: &[Cause]) -> String {
    let errs: Vec<String> = causes.iter().map(Cause::to_error_string).collect();
    let body = match errs.len() {
        0 => String::new(),
        1 => errs[0].clone(),
        _ => format!("[{}]", errs.join(", ")),
    };
    format!("{qualified_kind} {} is invalid: {body}", go_quote(name))
}

/// The message of a 400 for a body the strict decoder rejected, as the real server words it:
/// `<Kind> in version "<version>" cannot be handled as a <Kind>: <detail>` where `detail` is
/// [`crate::AdmitError::BadRequest`]'s text.
pub fn bad_request_message(kind: &str, version: &str, detail: &str) -> String {
    format!(
        "{kind} in version {} cannot be handled as a {kind}: {detail}",
        go_quote(version)
    )
}

/// Go's `%q` for a string (close enough: JSON escaping matches for printable text).
pub(crate) fn go_quote(s: &str) -> String {
    Value::String(s.to_owned()).to_string()
}

/// A number the way Go's `%v` prints a `float64` (or an `int64` for integers).
pub(crate) fn go_number(n: f64) -> String {
    if n.is_finite() && n.fract() == 0.0 && n.abs() < 1e21 {
        format!("{}", n as i128)
    } else if n != 0.0 && (n.abs() < 1e-4 || n.abs() >= 1e21) {
        let s = format!("{n:e}");
        // Rust prints `1e21` / `1.5e-5`; Go prints `1e+21` / `1.5e-05`.
        match s.split_once('e') {
            Some((m, e)) => {
                let (sign, digits) = match e.strip_prefix('-') {
                    Some(d) => ('-', d),
                    None => ('+', e),
                };
                format!("{m}e{sign}{digits:0>2}")
            }
            None => s,
        }
    } else {
        format!("{n}")
    }
}

/// The value part of an error body, rendered as Go's `ErrorBody` renders unstructured values.
pub(crate) fn go_value(v: &Value) -> String {
    match v {
        Value::Null => go_quote("null"),
        Value::String(s) => go_quote(s),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => number_value(n),
        other => go_sharp(other),
    }
}

fn number_value(n: &serde_json::Number) -> String {
    if let Some(i) = n.as_i64() {
        i.to_string()
    } else if let Some(u) = n.as_u64() {
        u.to_string()
    } else {
        go_number(n.as_f64().unwrap_or(0.0))
    }
}

/// Go's `%#v` of an unstructured value (`map[string]interface {}{"a":1}`, `[]interface {}{...}`).
pub(crate) fn go_sharp(v: &Value) -> String {
    match v {
        Value::Null => "interface {}(nil)".to_owned(),
        Value::String(s) => go_quote(s),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => number_value(n),
        Value::Array(a) => {
            let parts: Vec<String> = a.iter().map(go_sharp).collect();
            format!("[]interface {{}}{{{}}}", parts.join(", "))
        }
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            let parts: Vec<String> = keys
                .iter()
                .map(|k| format!("{}:{}", go_quote(k), go_sharp(&m[k.as_str()])))
                .collect();
            format!("map[string]interface {{}}{{{}}}", parts.join(", "))
        }
    }
}

/// The go-openapi name of a JSON value's type, as used in `must be of type X: "<actual>"`.
pub(crate) fn json_type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_f64() => "number",
        Value::Number(_) => "integer",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn values_render_as_go_prints_them() {
        let cases = [
            (json!("a\"b"), r#""a\"b""#),
            (json!(11), "11"),
            (json!(1.5), "1.5"),
            (json!(true), "true"),
            (json!(null), r#""null""#),
            (
                json!({"name": "a", "port": 80}),
                r#"map[string]interface {}{"name":"a", "port":80}"#,
            ),
            (json!(["x"]), r#"[]interface {}{"x"}"#),
        ];
        for (v, want) in cases {
            assert_eq!(go_value(&v), want, "{v}");
        }
    }

    #[test]
    fn floats_render_as_go_percent_v() {
        assert_eq!(go_number(10.0), "10");
        assert_eq!(go_number(0.5), "0.5");
        assert_eq!(go_number(1e21), "1e+21");
        assert_eq!(go_number(0.00001), "1e-05");
    }

    #[test]
    fn several_causes_are_bracketed_in_the_status_message() {
        let causes = vec![
            Cause::required("spec.size", ""),
            Cause::too_long("spec.name", 63),
        ];
        assert_eq!(
            invalid_message("Widget.example.com", "w1", &causes),
            "Widget.example.com \"w1\" is invalid: [spec.size: Required value, spec.name: Too long: may not be more than 63 bytes]"
        );
        assert_eq!(
            invalid_message("Widget.example.com", "w1", &causes[..1]),
            "Widget.example.com \"w1\" is invalid: spec.size: Required value"
        );
    }
}
