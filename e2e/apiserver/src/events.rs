//! Events: one store in core/v1 form, served also as events.k8s.io/v1 with
//! the field renames, and the events.k8s.io/v1 write validation
//! (`pkg/apis/core/validation/events.go`).

use crate::error::Cause;
use crate::meta;
use serde_json::{Map, Value};

/// (core/v1 name, events.k8s.io/v1 name)
const RENAMES: &[(&str, &str)] = &[
    ("involvedObject", "regarding"),
    ("message", "note"),
    ("reportingComponent", "reportingController"),
    ("source", "deprecatedSource"),
    ("count", "deprecatedCount"),
    ("firstTimestamp", "deprecatedFirstTimestamp"),
    ("lastTimestamp", "deprecatedLastTimestamp"),
];

fn rename(obj: &Value, from_core: bool) -> Value {
    let Some(o) = obj.as_object() else {
        return obj.clone();
    };
    let mut out = Map::new();
    for (k, v) in o {
        let mapped = RENAMES.iter().find_map(|(c, e)| {
            if from_core && k == c {
                Some(*e)
            } else if !from_core && k == e {
                Some(*c)
            } else {
                None
            }
        });
        out.insert(mapped.unwrap_or(k).to_string(), v.clone());
    }
    Value::Object(out)
}

/// core/v1 Event → events.k8s.io/v1 Event.
pub fn core_to_v1(core: &Value) -> Value {
    let mut v = rename(core, true);
    if let Some(o) = v.as_object_mut() {
        // Zero-valued deprecated fields are omitted in the v1 form.
        if o.get("deprecatedCount").and_then(Value::as_i64) == Some(0) {
            o.remove("deprecatedCount");
        }
        if o.get("deprecatedSource")
            .is_some_and(|s| s.as_object().is_some_and(Map::is_empty))
        {
            o.remove("deprecatedSource");
        }
        for k in ["deprecatedFirstTimestamp", "deprecatedLastTimestamp"] {
            if o.get(k).is_some_and(Value::is_null) {
                o.remove(k);
            }
        }
    }
    v
}

/// events.k8s.io/v1 Event → core/v1 Event.
pub fn v1_to_core(v1: &Value) -> Value {
    let mut c = rename(v1, false);
    if let Some(o) = c.as_object_mut() {
        if !o.contains_key("involvedObject") {
            o.insert("involvedObject".into(), Value::Object(Map::new()));
        }
        if !o.contains_key("source") {
            o.insert("source".into(), Value::Object(Map::new()));
        }
        o.entry("firstTimestamp").or_insert(Value::Null);
        o.entry("lastTimestamp").or_insert(Value::Null);
    }
    c
}

fn req_str<'a>(obj: &'a Value, field: &str, causes: &mut Vec<Cause>) -> Option<&'a str> {
    match obj.get(field).and_then(Value::as_str) {
        Some(s) if !s.is_empty() => Some(s),
        _ => {
            causes.push(Cause::new("FieldValueRequired", "Required value", field));
            None
        }
    }
}

fn too_long(obj: &Value, field: &str, max: usize, causes: &mut Vec<Cause>) {
    if let Some(s) = obj.get(field).and_then(Value::as_str) {
        if s.len() > max {
            causes.push(Cause::new(
                "FieldValueTooLong",
                format!("Too long: may not be more than {max} bytes"),
                field,
            ));
        }
    }
}

/// Validate an events.k8s.io/v1 write (served form); `old` on update.
pub fn validate_v1(obj: &Value, old: Option<&Value>) -> Result<(), Vec<Cause>> {
    let mut causes = Vec::new();
    if obj.get("eventTime").is_none_or(Value::is_null) {
        causes.push(Cause::new(
            "FieldValueRequired",
            "Required value",
            "eventTime",
        ));
    }
    match obj.get("type").and_then(Value::as_str) {
        Some("Normal") | Some("Warning") => {}
        other => causes.push(Cause::new(
            "FieldValueNotSupported",
            format!(
                "Unsupported value: {}: supported values: \"Normal\", \"Warning\"",
                other
                    .map(|s| format!("{s:?}"))
                    .unwrap_or_else(|| "\"\"".into())
            ),
            "type",
        )),
    }
    if let Some(rc) = req_str(obj, "reportingController", &mut causes) {
        if !meta::is_qualified_name(rc) {
            causes.push(Cause::new(
                "FieldValueInvalid",
                format!("Invalid value: {rc:?}: name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"),
                "reportingController",
            ));
        }
    }
    req_str(obj, "reportingInstance", &mut causes);
    too_long(obj, "reportingInstance", 128, &mut causes);
    req_str(obj, "action", &mut causes);
    too_long(obj, "action", 128, &mut causes);
    req_str(obj, "reason", &mut causes);
    too_long(obj, "reason", 128, &mut causes);
    too_long(obj, "note", 1024, &mut causes);
    let ev_ns = meta::namespace_of(obj);
    let reg_ns = obj["regarding"]["namespace"].as_str().unwrap_or("");
    if reg_ns.is_empty() && ev_ns != "default" && ev_ns != "kube-system" {
        causes.push(Cause::new(
            "FieldValueInvalid",
            format!("Invalid value: {ev_ns:?}: event namespace must be default or kube-system when the regarding object is cluster-scoped"),
            "metadata.namespace",
        ));
    }
    for f in [
        "deprecatedSource",
        "deprecatedFirstTimestamp",
        "deprecatedLastTimestamp",
    ] {
        let set = match obj.get(f) {
            None | Some(Value::Null) => false,
            Some(Value::Object(m)) => !m.is_empty(),
            Some(Value::String(s)) => !s.is_empty(),
            Some(_) => true,
        };
        if set {
            causes.push(Cause::new(
                "FieldValueInvalid",
                "Invalid value: must be unset",
                f,
            ));
        }
    }
    if obj
        .get("deprecatedCount")
        .and_then(Value::as_i64)
        .unwrap_or(0)
        != 0
    {
        causes.push(Cause::new(
            "FieldValueInvalid",
            "Invalid value: must be unset",
            "deprecatedCount",
        ));
    }
    if let Some(old) = old {
        if obj.get("series") != old.get("series") {
            if let Some(series) = obj.get("series").filter(|s| !s.is_null()) {
                if series["count"].as_i64().unwrap_or(0) < 2 {
                    causes.push(Cause::new(
                        "FieldValueInvalid",
                        format!(
                            "Invalid value: {}: should be at least 2",
                            series["count"].as_i64().unwrap_or(0)
                        ),
                        "series.count",
                    ));
                }
                if series.get("lastObservedTime").is_none_or(Value::is_null) {
                    causes.push(Cause::new(
                        "FieldValueRequired",
                        "Required value",
                        "series.lastObservedTime",
                    ));
                }
            }
        }
        for f in [
            "regarding",
            "reason",
            "note",
            "type",
            "eventTime",
            "action",
            "related",
            "reportingController",
            "reportingInstance",
        ] {
            let norm = |v: Option<&Value>| v.filter(|x| !x.is_null()).cloned();
            if norm(obj.get(f)) != norm(old.get(f)) {
                causes.push(Cause::new(
                    "FieldValueInvalid",
                    format!(
                        "Invalid value: {}: field is immutable",
                        obj.get(f).cloned().unwrap_or(Value::Null)
                    ),
                    f,
                ));
            }
        }
    }
    if causes.is_empty() {
        Ok(())
    } else {
        Err(causes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn round_trip_renames() {
        let v1 =
            json!({"regarding":{"name":"w"},"note":"hi","reportingController":"c","eventTime":"t"});
        let core = v1_to_core(&v1);
        assert_eq!(core["involvedObject"]["name"], "w");
        assert_eq!(core["message"], "hi");
        assert_eq!(core["reportingComponent"], "c");
        let back = core_to_v1(&core);
        assert_eq!(back["regarding"]["name"], "w");
        assert!(back.get("deprecatedSource").is_none());
    }
}
