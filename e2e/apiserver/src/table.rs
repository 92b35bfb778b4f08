//! Server-side `meta.k8s.io/v1` Table output: `additionalPrinterColumns` for
//! custom resources (JSONPath cells, typed values, `date` → human age), a
//! default Name/Age table otherwise. Built-ins get the columns kube-apiserver's printers
//! give them where the emulator has them (Namespace, ConfigMap, Secret), with Age as a
//! `string` column. Rows carry PartialObjectMetadata.

use crate::resources::{Builtin, ResourceInfo};
use serde_json::{json, Value};

/// A built-in printer column: name, description, cell.
type BuiltinColumn = (&'static str, &'static str, fn(&Value) -> Value);

fn count(v: &Value) -> usize {
    v.as_object().map_or(0, |m| m.len())
}

/// The columns between Name and Age of kube-apiserver's printers (`pkg/printers/internalversion`).
fn builtin_columns(b: Builtin) -> &'static [BuiltinColumn] {
    match b {
        Builtin::Namespace => &[("Status", "The status of the namespace", |o| {
            o["status"]["phase"].clone()
        })],
        Builtin::ConfigMap => &[(
            "Data",
            "Data contains the configuration data. Each key must consist of alphanumeric characters, '-', '_' or '.'. Values with non-UTF-8 byte sequences must use the BinaryData field. The keys stored in Data must not overlap with the keys in the BinaryData field, this is enforced during validation process.",
            |o| json!(count(&o["data"]) + count(&o["binaryData"])),
        )],
        Builtin::Secret => &[
            (
                "Type",
                "Used to facilitate programmatic handling of secret data. More info: https://kubernetes.io/docs/concepts/configuration/secret/#secret-types",
                |o| o["type"].clone(),
            ),
            (
                "Data",
                "Data contains the secret data. Each key must consist of alphanumeric characters, '-', '_' or '.'. The serialized form of the secret data is a base64 encoded string, representing the arbitrary (possibly non-string) data value here. Described in https://tools.ietf.org/html/rfc4648#section-4",
                |o| json!(count(&o["data"])),
            ),
        ],
        _ => &[],
    }
}

/// Build a Table for `objects` (served form).
pub fn table(info: &ResourceInfo, objects: &[Value], list_meta: &Value) -> Value {
    let mut columns = vec![json!({
        "name": "Name",
        "type": "string",
        "format": "name",
        "description": "Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically. Name is primarily intended for creation idempotence and configuration definition. Cannot be updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names",
        "priority": 0,
    })];
    let mut paths: Vec<(String, String)> = Vec::new();
    let printer = info
        .custom()
        .map(|c| c.printer_columns.clone())
        .unwrap_or_default();
    let builtin = info.builtin().map(builtin_columns).unwrap_or_default();
    for (name, description, _) in builtin {
        columns.push(json!({
            "name": name,
            "type": "string",
            "format": "",
            "description": description,
            "priority": 0,
        }));
    }
    if printer.is_empty() {
        columns.push(json!({
            "name": "Age",
            // The printers of built-ins render the age themselves; a CRD's default column is a date.
            "type": if info.is_custom() { "date" } else { "string" },
            "format": "",
            "description": "CreationTimestamp is a timestamp representing the server time when this object was created. It is not guaranteed to be set in happens-before order across separate operations. Clients may not set this value. It is represented in RFC3339 form and is in UTC.\n\nPopulated by the system. Read-only. Null for lists. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata",
            "priority": 0,
        }));
        paths.push((".metadata.creationTimestamp".into(), "date".into()));
    } else {
        for c in &printer {
            columns.push(json!({
                "name": c["name"],
                "type": c["type"],
                "format": c.get("format").cloned().unwrap_or(json!("")),
                "description": c.get("description").cloned().unwrap_or(json!("")),
                "priority": c.get("priority").cloned().unwrap_or(json!(0)),
            }));
            paths.push((
                c["jsonPath"].as_str().unwrap_or("").to_string(),
                c["type"].as_str().unwrap_or("string").to_string(),
            ));
        }
    }
    let now = chrono::Utc::now();
    let rows: Vec<Value> = objects
        .iter()
        .map(|o| {
            let mut cells = vec![json!(crate::meta::name_of(o))];
            cells.extend(builtin.iter().map(|(_, _, cell)| cell(o)));
            for (path, ty) in &paths {
                cells.push(cell(o, path, ty, now));
            }
            json!({"cells": cells, "object": crate::api::partial(o)})
        })
        .collect();
    let mut md = json!({});
    for k in ["resourceVersion", "continue", "remainingItemCount"] {
        if let Some(v) = list_meta.get(k) {
            md[k] = v.clone();
        }
    }
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": md,
        "columnDefinitions": columns,
        "rows": rows,
    })
}

fn cell(obj: &Value, path: &str, ty: &str, now: chrono::DateTime<chrono::Utc>) -> Value {
    let results = jsonpath(obj, path);
    if results.is_empty() {
        return Value::Null;
    }
    match ty {
        "integer" => results[0].as_i64().map(Value::from).unwrap_or(Value::Null),
        "number" => results[0].as_f64().map(Value::from).unwrap_or(Value::Null),
        "boolean" => results[0].as_bool().map(Value::from).unwrap_or(Value::Null),
        "date" => match results[0]
            .as_str()
            .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
        {
            Some(t) => json!(human_duration(
                now.signed_duration_since(t.with_timezone(&chrono::Utc))
            )),
            None => Value::Null,
        },
        _ => {
            let parts: Vec<String> = results
                .iter()
                .map(|v| match v {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
                .collect();
            json!(parts.join(","))
        }
    }
}

/// kubectl's `duration.HumanDuration`.
pub fn human_duration(d: chrono::TimeDelta) -> String {
    let secs = d.num_seconds();
    if secs < -1 {
        return "<invalid>".into();
    }
    if secs < 0 {
        return "0s".into();
    }
    if secs < 60 * 2 {
        return format!("{secs}s");
    }
    let minutes = secs / 60;
    if minutes < 10 {
        let s = secs % 60;
        return if s == 0 {
            format!("{minutes}m")
        } else {
            format!("{minutes}m{s}s")
        };
    }
    if minutes < 60 * 3 {
        return format!("{minutes}m");
    }
    let hours = secs / 3600;
    if hours < 8 {
        let m = minutes % 60;
        return if m == 0 {
            format!("{hours}h")
        } else {
            format!("{hours}h{m}m")
        };
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    if hours < 24 * 8 {
        let h = hours % 24;
        return if h == 0 {
            format!("{}d", hours / 24)
        } else {
            format!("{}d{h}h", hours / 24)
        };
    }
    if hours < 24 * 365 * 2 {
        return format!("{}d", hours / 24);
    }
    if hours < 24 * 365 * 8 {
        let dy = (hours / 24) % 365;
        return if dy == 0 {
            format!("{}y", hours / 24 / 365)
        } else {
            format!("{}y{dy}d", hours / 24 / 365)
        };
    }
    format!("{}y", hours / 24 / 365)
}

#[derive(Debug, PartialEq)]
enum Step {
    Field(String),
    Index(usize),
    All,
    Filter(String, String),
}

fn parse_path(path: &str) -> Vec<Step> {
    let p = path.trim().trim_start_matches('{').trim_end_matches('}');
    let mut steps = Vec::new();
    let mut chars = p.chars().peekable();
    let mut cur = String::new();
    while let Some(c) = chars.next() {
        match c {
            '.' => {
                if !cur.is_empty() {
                    steps.push(Step::Field(std::mem::take(&mut cur)));
                }
            }
            '[' => {
                if !cur.is_empty() {
                    steps.push(Step::Field(std::mem::take(&mut cur)));
                }
                let mut inner = String::new();
                let mut depth = 1;
                for c in chars.by_ref() {
                    match c {
                        '[' => depth += 1,
                        ']' => {
                            depth -= 1;
                            if depth == 0 {
                                break;
                            }
                        }
                        _ => {}
                    }
                    inner.push(c);
                }
                let inner = inner.trim();
                if inner == "*" {
                    steps.push(Step::All);
                } else if let Ok(i) = inner.parse() {
                    steps.push(Step::Index(i));
                } else if let Some(f) = inner.strip_prefix("?(@.").and_then(|f| f.strip_suffix(')'))
                {
                    if let Some((k, v)) = f.split_once("==") {
                        let v = v.trim().trim_matches('"').trim_matches('\'').to_string();
                        steps.push(Step::Filter(k.trim().to_string(), v));
                    }
                } else {
                    steps.push(Step::Field(
                        inner.trim_matches('\'').trim_matches('"').to_string(),
                    ));
                }
            }
            _ => cur.push(c),
        }
    }
    if !cur.is_empty() {
        steps.push(Step::Field(cur));
    }
    steps
}

/// A small client-go JSONPath subset: `.a.b`, `[n]`, `[*]`, `['k']`,
/// `[?(@.k=="v")]`. Missing keys give no result.
pub fn jsonpath(obj: &Value, path: &str) -> Vec<Value> {
    let mut cur = vec![obj.clone()];
    for step in parse_path(path) {
        let mut next = Vec::new();
        for v in cur {
            match &step {
                Step::Field(f) => {
                    if let Some(x) = v.get(f) {
                        next.push(x.clone())
                    }
                }
                Step::Index(i) => {
                    if let Some(x) = v.get(i) {
                        next.push(x.clone())
                    }
                }
                Step::All => match v {
                    Value::Array(a) => next.extend(a),
                    Value::Object(o) => next.extend(o.into_iter().map(|(_, x)| x)),
                    _ => {}
                },
                Step::Filter(k, want) => {
                    if let Value::Array(a) = v {
                        for x in a {
                            let got = match x.get(k) {
                                Some(Value::String(s)) => s.clone(),
                                Some(other) => other.to_string(),
                                None => continue,
                            };
                            if &got == want {
                                next.push(x);
                            }
                        }
                    }
                }
            }
        }
        cur = next;
    }
    cur
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_durations() {
        let s = |n: i64| human_duration(chrono::TimeDelta::seconds(n));
        assert_eq!(s(5), "5s");
        assert_eq!(s(119), "119s");
        assert_eq!(s(300), "5m");
        assert_eq!(s(330), "5m30s");
        assert_eq!(s(3600), "60m");
        assert_eq!(s(4 * 3600 + 60), "4h1m");
        assert_eq!(s(30 * 3600), "30h");
        assert_eq!(s(3 * 86400 + 3600), "3d1h");
        assert_eq!(s(100 * 86400), "100d");
    }

    #[test]
    fn jsonpath_subset() {
        let o = json!({"spec":{"n":3},"status":{"conditions":[{"type":"A","status":"False"},{"type":"Ready","status":"True"}]}});
        assert_eq!(jsonpath(&o, ".spec.n"), vec![json!(3)]);
        assert_eq!(
            jsonpath(&o, ".status.conditions[?(@.type==\"Ready\")].status"),
            vec![json!("True")]
        );
        assert_eq!(jsonpath(&o, ".status.conditions[*].type").len(), 2);
        assert!(jsonpath(&o, ".spec.missing").is_empty());
    }
}
