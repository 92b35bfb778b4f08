//! CustomResourceDefinition validation, defaulting and the status the real
//! apiextensions controllers would set at once (NamesAccepted, Established,
//! acceptedNames, storedVersions).

use crate::error::Cause;
use crate::meta;
use serde_json::{json, Value};

pub const CLEANUP_FINALIZER: &str = "customresourcecleanup.apiextensions.k8s.io";

fn invalid(field: &str, msg: String) -> Cause {
    Cause::new("FieldValueInvalid", msg, field)
}

fn required(field: &str) -> Cause {
    Cause::new("FieldValueRequired", "Required value", field)
}

/// Validate, default and establish a CRD on create (`old = None`) or update.
pub fn prepare(obj: &mut Value, old: Option<&Value>) -> Result<(), Vec<Cause>> {
    let mut causes = Vec::new();
    let name = meta::name_of(obj).to_string();
    let spec = obj.get_mut("spec");
    let Some(spec) = spec.filter(|s| s.is_object()) else {
        return Err(vec![required("spec")]);
    };
    let group = spec["group"].as_str().unwrap_or("").to_string();
    if group.is_empty() {
        causes.push(required("spec.group"));
    } else if !group.contains('.') {
        causes.push(invalid(
            "spec.group",
            format!("Invalid value: {group:?}: should be a domain with at least one dot"),
        ));
    }
    let names = &mut spec["names"];
    let plural = names["plural"].as_str().unwrap_or("").to_string();
    let kind = names["kind"].as_str().unwrap_or("").to_string();
    if plural.is_empty() {
        causes.push(required("spec.names.plural"));
    } else if !meta::is_dns1123_label(&plural) {
        causes.push(invalid("spec.names.plural", format!("Invalid value: {plural:?}: a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character")));
    }
    if kind.is_empty() {
        causes.push(required("spec.names.kind"));
    }
    if names
        .get("singular")
        .and_then(Value::as_str)
        .unwrap_or("")
        .is_empty()
        && !kind.is_empty()
    {
        names["singular"] = json!(kind.to_lowercase());
    }
    if names
        .get("listKind")
        .and_then(Value::as_str)
        .unwrap_or("")
        .is_empty()
        && !kind.is_empty()
    {
        names["listKind"] = json!(format!("{kind}List"));
    }
    if !plural.is_empty() && !group.is_empty() && name != format!("{plural}.{group}") {
        causes.push(invalid(
            "metadata.name",
            format!("Invalid value: {name:?}: must be spec.names.plural+\".\"+spec.group"),
        ));
    }
    match spec["scope"].as_str() {
        Some("Namespaced") | Some("Cluster") => {}
        Some(s) => causes.push(Cause::new(
            "FieldValueNotSupported",
            format!("Unsupported value: {s:?}: supported values: \"Cluster\", \"Namespaced\""),
            "spec.scope",
        )),
        None => causes.push(required("spec.scope")),
    }
    if spec.get("conversion").is_none() {
        spec["conversion"] = json!({"strategy": "None"});
    }
    let versions = spec["versions"].as_array_mut();
    let mut storage_version = None;
    match versions {
        None => causes.push(required("spec.versions")),
        Some(vs) if vs.is_empty() => causes.push(Cause::new(
            "FieldValueInvalid",
            "Invalid value: \"null\": must have exactly one version marked as storage version",
            "spec.versions",
        )),
        Some(vs) => {
            let storage: Vec<String> = vs
                .iter()
                .filter(|v| v["storage"].as_bool() == Some(true))
                .filter_map(|v| v["name"].as_str().map(str::to_string))
                .collect();
            if storage.len() != 1 {
                causes.push(Cause::new(
                    "FieldValueInvalid",
                    format!(
                        "Invalid value: {}: must have exactly one version marked as storage version",
                        json!(vs)
                    ),
                    "spec.versions",
                ));
            } else {
                storage_version = Some(storage[0].clone());
            }
            for (i, v) in vs.iter().enumerate() {
                if v["name"].as_str().unwrap_or("").is_empty() {
                    causes.push(required(&format!("spec.versions[{i}].name")));
                }
                let schema = &v["schema"]["openAPIV3Schema"];
                if schema.is_object() {
                    if let Err(cs) = crate::ext::compile_schema(
                        schema,
                        &format!("spec.versions[{i}].schema.openAPIV3Schema"),
                    ) {
                        causes.extend(cs);
                    }
                } else {
                    causes.push(required(&format!(
                        "spec.versions[{i}].schema.openAPIV3Schema"
                    )));
                }
            }
        }
    }
    if !causes.is_empty() {
        return Err(causes);
    }
    // Finalizer the apiextensions controller adds so it can delete the CRs.
    let md = meta::metadata_mut(obj);
    let mut fins: Vec<String> = md
        .get("finalizers")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    if !md.contains_key("deletionTimestamp") && !fins.iter().any(|f| f == CLEANUP_FINALIZER) {
        fins.push(CLEANUP_FINALIZER.to_string());
        md.insert("finalizers".into(), json!(fins));
    }
    establish(obj, old, storage_version.unwrap_or_default());
    Ok(())
}

fn condition(ty: &str, reason: &str, message: &str, prev: Option<&Value>) -> Value {
    let time = prev
        .and_then(|p| p["conditions"].as_array())
        .and_then(|cs| cs.iter().find(|c| c["type"] == ty && c["status"] == "True"))
        .and_then(|c| c["lastTransitionTime"].as_str().map(str::to_string))
        .unwrap_or_else(meta::now_seconds);
    json!({"type": ty, "status": "True", "lastTransitionTime": time, "reason": reason, "message": message})
}

fn establish(obj: &mut Value, old: Option<&Value>, storage: String) {
    let prev_status = old.and_then(|o| o.get("status"));
    let names = obj["spec"]["names"].clone();
    let mut stored: Vec<String> = prev_status
        .and_then(|s| s["storedVersions"].as_array())
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    if !stored.contains(&storage) {
        stored.push(storage);
    }
    let mut conditions = vec![
        condition(
            "NamesAccepted",
            "NoConflicts",
            "no conflicts found",
            prev_status,
        ),
        condition(
            "Established",
            "InitialNamesAccepted",
            "the initial names have been accepted",
            prev_status,
        ),
    ];
    if meta::is_deleting(obj) {
        conditions.push(json!({"type":"Terminating","status":"True","lastTransitionTime": meta::now_seconds(),"reason":"InstanceDeletionInProgress","message":"CustomResource deletion is in progress"}));
    }
    obj["status"] = json!({
        "conditions": conditions,
        "acceptedNames": names,
        "storedVersions": stored,
    });
}
