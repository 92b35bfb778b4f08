//! DELETE and DELETE-collection: preconditions, finalizer-blocked deletion
//! marks, propagation-policy finalizers, and the Status-vs-object response.

use super::write::{after_commit, has_spec_finalizers};
use super::{present, to_storage, Target};
use crate::error::{ApiError, ApiResult};
use crate::http::{Reply, Request};
use crate::meta::{self, metadata_mut};
use crate::resources::Builtin;
use crate::state::{Inner, Shared};
use serde_json::{json, Value};
use std::sync::Arc;

struct DeleteOpts {
    dry_run: bool,
    uid: Option<String>,
    rv: Option<String>,
    propagation: Option<String>,
}

fn delete_opts(req: &Request) -> ApiResult<DeleteOpts> {
    let body: Value = if req.body.iter().all(u8::is_ascii_whitespace) {
        json!({})
    } else {
        serde_json::from_slice(&req.body)
            .map_err(|e| ApiError::bad_request(format!("json: cannot decode DeleteOptions: {e}")))?
    };
    let q = &req.query;
    let dry = body["dryRun"]
        .as_array()
        .map(|a| a.iter().any(|v| v == "All"))
        .unwrap_or(false)
        || q.get("dryRun") == Some("All");
    if let Some(d) = q.get("dryRun").filter(|d| !d.is_empty() && *d != "All") {
        return Err(ApiError::bad_request(format!(
            "Unsupported value: \"{d}\": supported values: \"All\""
        )));
    }
    let propagation = body["propagationPolicy"]
        .as_str()
        .map(str::to_string)
        .or_else(|| q.get("propagationPolicy").map(str::to_string))
        .or_else(|| match body["orphanDependents"].as_bool() {
            Some(true) => Some("Orphan".into()),
            _ => None,
        });
    if let Some(p) = &propagation {
        if !matches!(p.as_str(), "Orphan" | "Background" | "Foreground") {
            return Err(ApiError::bad_request(format!(
                "DeleteOptions.meta.k8s.io \"\" is invalid: propagationPolicy: Unsupported value: \"{p}\": supported values: \"Foreground\", \"Background\", \"Orphan\", \"nil\""
            )));
        }
    }
    Ok(DeleteOpts {
        dry_run: dry,
        uid: body["preconditions"]["uid"].as_str().map(str::to_string),
        rv: body["preconditions"]["resourceVersion"]
            .as_str()
            .map(str::to_string),
        propagation,
    })
}

enum Deleted {
    /// Removed from the store (served last state).
    Gone(Value),
    /// Marked for deletion, still present (served state).
    Marked(Value),
}

fn delete_locked(
    inner: &mut Inner,
    t: &Target,
    ns: &str,
    name: &str,
    opts: &DeleteOpts,
) -> ApiResult<Deleted> {
    let key = t.info.store_key();
    let subject = t.info.subject(name);
    let stored = inner
        .store
        .get(&key, ns, name)
        .cloned()
        .ok_or_else(|| ApiError::not_found(&subject))?;
    let live = present(&t.info, &stored);
    if let Some(uid) = &opts.uid {
        let have = meta::meta_str(&live, "uid").unwrap_or("");
        if uid != have {
            return Err(ApiError::precondition_conflict(
                &subject,
                &format!(
                    "the UID in the precondition ({uid}) does not match the UID in record ({have}). The object might have been deleted and then recreated"
                ),
            ));
        }
    }
    if let Some(rv) = &opts.rv {
        let have = meta::meta_str(&live, "resourceVersion").unwrap_or("");
        if rv != have {
            return Err(ApiError::precondition_conflict(
                &subject,
                &format!("the ResourceVersion in the precondition ({rv}) does not match the ResourceVersion in record ({have}). The object might have been modified"),
            ));
        }
    }
    let mut marked = live.clone();
    let mut finalizers = meta::finalizers(&marked);
    let gc_finalizer = match opts.propagation.as_deref() {
        Some("Orphan") => Some("orphan"),
        Some("Foreground") => Some("foregroundDeletion"),
        _ => None,
    };
    if let Some(f) = gc_finalizer {
        if !meta::is_deleting(&live) && !finalizers.iter().any(|x| x == f) {
            finalizers.push(f.to_string());
        }
    }
    let is_ns = t.info.builtin() == Some(Builtin::Namespace);
    if finalizers.is_empty() && !(is_ns || has_spec_finalizers(t, &live)) {
        if opts.dry_run {
            return Ok(Deleted::Gone(live));
        }
        let last = inner.store.delete(&key, ns, name).unwrap();
        after_commit(inner, &key);
        return Ok(Deleted::Gone(present(&t.info, &last)));
    }
    if meta::is_deleting(&live) {
        return Ok(Deleted::Marked(live));
    }
    {
        let md = metadata_mut(&mut marked);
        md.insert("deletionTimestamp".into(), json!(meta::now_seconds()));
        md.insert("deletionGracePeriodSeconds".into(), json!(0));
        md.insert("finalizers".into(), json!(finalizers));
        if let Some(g) = md.get("generation").and_then(Value::as_i64) {
            if g > 0 {
                md.insert("generation".into(), json!(g + 1));
            }
        }
    }
    if is_ns {
        marked["status"]["phase"] = json!("Terminating");
    }
    meta::omit_empty(&mut marked);
    if opts.dry_run {
        return Ok(Deleted::Marked(marked));
    }
    let stored = inner.store.put(&key, to_storage(&t.info, marked));
    after_commit(inner, &key);
    Ok(Deleted::Marked(present(&t.info, &stored)))
}

fn success_status(t: &Target, obj: &Value) -> Value {
    let mut details = json!({"name": meta::name_of(obj), "kind": t.info.plural, "uid": meta::meta_str(obj, "uid").unwrap_or("")});
    if !t.info.group.is_empty() {
        details["group"] = json!(t.info.group);
    }
    json!({"kind":"Status","apiVersion":"v1","metadata":{},"status":"Success","details":details})
}

pub fn delete(shared: &Arc<Shared>, req: &Request, t: &Target) -> ApiResult<Reply> {
    let opts = delete_opts(req)?;
    let mut inner = shared.inner.lock().unwrap();
    match delete_locked(&mut inner, t, t.ns(), t.name(), &opts)? {
        Deleted::Gone(obj) => Ok(Reply::json(200, &success_status(t, &obj))),
        Deleted::Marked(obj) => Ok(Reply::json(200, &obj)),
    }
}

pub fn delete_collection(shared: &Arc<Shared>, req: &Request, t: &Target) -> ApiResult<Reply> {
    let opts = delete_opts(req)?;
    let (ls, fs) = super::read::selectors(req, &t.info)?;
    let mut inner = shared.inner.lock().unwrap();
    let key = t.info.store_key();
    let targets: Vec<(String, String)> = inner
        .store
        .iter(&key)
        .filter(|(_, o)| super::read::selected(o, t.namespace.as_deref(), &ls, &fs))
        .map(|(k, _)| k.clone())
        .collect();
    let mut items = Vec::new();
    for (ns, name) in targets {
        match delete_locked(&mut inner, t, &ns, &name, &opts)? {
            Deleted::Gone(o) | Deleted::Marked(o) => items.push(o),
        }
    }
    let rv = inner.store.rv();
    Ok(Reply::json(
        200,
        &json!({
            "apiVersion": t.info.api_version(),
            "kind": format!("{}List", t.info.kind),
            "metadata": {"resourceVersion": rv.to_string()},
            "items": items,
        }),
    ))
}

/// Delete an object on behalf of a built-in controller (namespace and CRD
/// cleanup, garbage collection). Returns whether anything changed.
pub fn controller_delete(inner: &mut Inner, t: &Target, ns: &str, name: &str) -> bool {
    let opts = DeleteOpts {
        dry_run: false,
        uid: None,
        rv: None,
        propagation: None,
    };
    let before = inner.store.rv();
    let _ = delete_locked(inner, t, ns, name, &opts);
    inner.store.rv() != before
}
