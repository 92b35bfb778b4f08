//! Object-metadata helpers: timestamps, identity, name/label validation and
//! the Go `omitempty` normalisation of empty metadata collections.

use crate::error::Cause;
use serde_json::{Map, Value};

/// RFC 3339 with seconds precision (`metav1.Time`).
pub fn now_seconds() -> String {
    chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// RFC 3339 with microseconds (`metav1.MicroTime`).
pub fn now_micros() -> String {
    chrono::Utc::now()
        .format("%Y-%m-%dT%H:%M:%S%.6fZ")
        .to_string()
}

pub fn new_uid() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// The 5 random characters `generateName` appends (same alphabet as the
/// apiserver: no vowels, no confusable digits).
pub fn random_suffix() -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut rng = rand::rng();
    (0..5)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

/// `metadata.*` collections Go serialises with `omitempty`: drop them when empty.
pub fn omit_empty(obj: &mut Value) {
    if let Some(md) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        for key in [
            "finalizers",
            "labels",
            "annotations",
            "ownerReferences",
            "managedFields",
        ] {
            let empty = match md.get(key) {
                Some(Value::Null) => true,
                Some(Value::Array(a)) => a.is_empty(),
                Some(Value::Object(o)) => o.is_empty(),
                _ => false,
            };
            if empty {
                md.remove(key);
            }
        }
        for key in ["generateName", "namespace", "resourceVersion", "uid"] {
            if matches!(md.get(key), Some(Value::String(s)) if s.is_empty())
                || matches!(md.get(key), Some(Value::Null))
            {
                md.remove(key);
            }
        }
        for key in [
            "deletionTimestamp",
            "creationTimestamp",
            "deletionGracePeriodSeconds",
            "generation",
        ] {
            if matches!(md.get(key), Some(Value::Null)) {
                md.remove(key);
            }
        }
    }
}

pub fn metadata(obj: &Value) -> Option<&Map<String, Value>> {
    obj.get("metadata").and_then(Value::as_object)
}

pub fn metadata_mut(obj: &mut Value) -> &mut Map<String, Value> {
    if !obj.is_object() {
        *obj = Value::Object(Map::new());
    }
    let o = obj.as_object_mut().unwrap();
    let md = o
        .entry("metadata")
        .or_insert_with(|| Value::Object(Map::new()));
    if !md.is_object() {
        *md = Value::Object(Map::new());
    }
    md.as_object_mut().unwrap()
}

pub fn meta_str<'a>(obj: &'a Value, key: &str) -> Option<&'a str> {
    metadata(obj)
        .and_then(|m| m.get(key))
        .and_then(Value::as_str)
}

pub fn name_of(obj: &Value) -> &str {
    meta_str(obj, "name").unwrap_or("")
}

pub fn namespace_of(obj: &Value) -> &str {
    meta_str(obj, "namespace").unwrap_or("")
}

pub fn finalizers(obj: &Value) -> Vec<String> {
    metadata(obj)
        .and_then(|m| m.get("finalizers"))
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

pub fn labels(obj: &Value) -> Map<String, Value> {
    metadata(obj)
        .and_then(|m| m.get("labels"))
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default()
}

pub fn is_deleting(obj: &Value) -> bool {
    metadata(obj)
        .and_then(|m| m.get("deletionTimestamp"))
        .map(|v| !v.is_null())
        .unwrap_or(false)
}

pub fn resource_version(obj: &Value) -> Option<u64> {
    meta_str(obj, "resourceVersion").and_then(|s| s.parse().ok())
}

/// DNS-1123 label: `[a-z0-9]([-a-z0-9]*[a-z0-9])?`, at most 63 characters.
pub fn is_dns1123_label(s: &str) -> bool {
    s.len() <= 63 && is_label_shaped(s)
}

/// One dot-separated segment of a subdomain: the label regex, with no length limit of its own.
fn is_label_shaped(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && s.as_bytes()[0].is_ascii_alphanumeric()
        && s.as_bytes()[s.len() - 1].is_ascii_alphanumeric()
}

/// DNS-1123 subdomain as kube-apiserver's `IsDNS1123Subdomain`: the regex and a total length
/// of at most 253. Unlike DNS names, a segment may be longer than 63 characters.
pub fn is_dns1123_subdomain(s: &str) -> bool {
    !s.is_empty() && s.len() <= 253 && s.split('.').all(is_label_shaped)
}

pub fn dns1123_label_errors(field: &str, s: &str) -> Vec<Cause> {
    if is_dns1123_label(s) {
        vec![]
    } else {
        vec![Cause::new(
            "FieldValueInvalid",
            format!("Invalid value: {s:?}: a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"),
            field,
        )]
    }
}

pub fn dns1123_subdomain_errors(field: &str, s: &str) -> Vec<Cause> {
    if is_dns1123_subdomain(s) {
        vec![]
    } else {
        vec![Cause::new(
            "FieldValueInvalid",
            format!("Invalid value: {s:?}: a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"),
            field,
        )]
    }
}

/// A Kubernetes "qualified name" part: `[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?`, ≤ 63.
fn is_name_part(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
        && s.as_bytes()[0].is_ascii_alphanumeric()
        && s.as_bytes()[s.len() - 1].is_ascii_alphanumeric()
}

/// `[prefix/]name` with a DNS-1123 subdomain prefix.
pub fn is_qualified_name(s: &str) -> bool {
    match s.split_once('/') {
        Some((prefix, name)) => is_dns1123_subdomain(prefix) && is_name_part(name),
        None => is_name_part(s),
    }
}

pub fn is_label_value(s: &str) -> bool {
    s.is_empty() || is_name_part(s)
}

/// Validation of `metadata` common to every write (labels, annotations, finalizers).
pub fn validate_common_metadata(obj: &Value) -> Vec<Cause> {
    let mut causes = Vec::new();
    let Some(md) = metadata(obj) else {
        return causes;
    };
    if let Some(labels) = md.get("labels").and_then(Value::as_object) {
        for (k, v) in labels {
            if !is_qualified_name(k) {
                causes.push(Cause::new(
                    "FieldValueInvalid",
                    format!("Invalid value: {k:?}: name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character"),
                    "metadata.labels",
                ));
            }
            match v.as_str() {
                Some(s) if is_label_value(s) => {}
                _ => causes.push(Cause::new(
                    "FieldValueInvalid",
                    format!("Invalid value: {v}: a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character"),
                    "metadata.labels",
                )),
            }
        }
    }
    if let Some(ann) = md.get("annotations").and_then(Value::as_object) {
        let mut total = 0;
        for (k, v) in ann {
            total += k.len() + v.as_str().map(str::len).unwrap_or(0);
            if !is_qualified_name(&k.to_lowercase()) {
                causes.push(Cause::new(
                    "FieldValueInvalid",
                    format!("Invalid value: {k:?}: name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character"),
                    "metadata.annotations",
                ));
            }
        }
        if total > 256 * 1024 {
            causes.push(Cause::new(
                "FieldValueTooLong",
                "Too long: must have at most 262144 bytes",
                "metadata.annotations",
            ));
        }
    }
    if let Some(fins) = md.get("finalizers").and_then(Value::as_array) {
        for (i, f) in fins.iter().enumerate() {
            match f.as_str() {
                Some(s) if is_qualified_name(s) => {}
                _ => causes.push(Cause::new(
                    "FieldValueInvalid",
                    format!("Invalid value: {f}: name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character"),
                    format!("metadata.finalizers[{i}]"),
                )),
            }
        }
    }
    causes
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn omit_empty_drops_empty_collections() {
        let mut v = json!({"metadata":{"name":"a","finalizers":[],"labels":{},"annotations":null,"ownerReferences":[],"managedFields":[]}});
        omit_empty(&mut v);
        assert_eq!(v, json!({"metadata":{"name":"a"}}));
    }

    #[test]
    fn names() {
        assert!(is_dns1123_subdomain("a.b-c"));
        assert!(!is_dns1123_subdomain("A"));
        assert!(!is_dns1123_subdomain("-a"));
        // kube-apiserver has no per-segment limit: a 71-character single-segment name is valid.
        assert!(is_dns1123_subdomain(&format!("sha256-{}", "a".repeat(64))));
        assert!(!is_dns1123_label(&format!("sha256-{}", "a".repeat(64))));
        assert!(!is_dns1123_subdomain(&"a".repeat(254)));
        assert!(is_qualified_name("example.com/x"));
        assert!(!is_qualified_name("a b"));
        assert_eq!(random_suffix().len(), 5);
        assert!(now_seconds().ends_with('Z') && !now_seconds().contains('.'));
    }
}
