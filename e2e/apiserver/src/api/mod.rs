//! Routing of API paths to the handlers, and the shared helpers that turn
//! stored objects into what a client sees.

pub mod delete;
pub mod read;
pub mod write;

use crate::error::{ApiError, ApiResult};
use crate::hooks::RequestRecord;
use crate::http::{Reply, Request};
use crate::resources::{Builtin, ResourceInfo};
use crate::state::{Inner, Shared};
use serde_json::{json, Value};
use std::sync::Arc;

/// The resource (and object) a request addresses.
#[derive(Clone)]
pub struct Target {
    pub info: ResourceInfo,
    /// `Some` for namespaced paths.
    pub namespace: Option<String>,
    pub name: Option<String>,
    /// `Some("status")` for the status subresource.
    pub subresource: Option<String>,
}

impl Target {
    pub fn ns(&self) -> &str {
        self.namespace.as_deref().unwrap_or("")
    }
    pub fn name(&self) -> &str {
        self.name.as_deref().unwrap_or("")
    }
    pub fn is_status(&self) -> bool {
        self.subresource.as_deref() == Some("status")
    }
}

fn decode_segments(path: &str) -> Vec<String> {
    path.split('/')
        .filter(|s| !s.is_empty())
        .map(|s| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8_lossy()
                .into_owned()
        })
        .collect()
}

/// Resolve `/api/v1/...` or `/apis/g/v/...` remainder segments.
fn resolve(inner: &Inner, group: &str, version: &str, rest: &[String]) -> ApiResult<Target> {
    let (namespace, rest) = if rest.len() >= 3
        && rest[0] == "namespaces"
        && !(group.is_empty() && rest.len() == 3 && (rest[2] == "status" || rest[2] == "finalize"))
    {
        (Some(rest[1].clone()), &rest[2..])
    } else {
        (None, rest)
    };
    if rest.is_empty() || rest.len() > 3 {
        return Err(ApiError::not_found_path());
    }
    let info = inner
        .registry
        .lookup(group, version, &rest[0])
        .ok_or_else(ApiError::not_found_path)?
        .clone();
    let name = rest.get(1).cloned();
    let subresource = rest.get(2).cloned();
    if namespace.is_some() && !info.namespaced {
        return Err(ApiError::not_found_path());
    }
    if info.namespaced && namespace.is_none() && name.is_some() {
        return Err(ApiError::not_found_path());
    }
    if let Some(sub) = &subresource {
        if !(sub == "status" && info.has_status) {
            return Err(ApiError::not_found_path());
        }
    }
    Ok(Target {
        info,
        namespace,
        name,
        subresource,
    })
}

fn verb_of(req: &Request, t: &Target) -> &'static str {
    use hyper::Method;
    let named = t.name.is_some();
    match req.method {
        Method::GET if named => "get",
        Method::GET if req.query.flag("watch") => "watch",
        Method::GET => "list",
        Method::POST if !named => "create",
        Method::PUT if named => "update",
        Method::PATCH if named => "patch",
        Method::DELETE if named => "delete",
        Method::DELETE => "deletecollection",
        _ => "unsupported",
    }
}

/// Entry point for every request.
pub async fn dispatch(shared: &Arc<Shared>, req: &Request, rec: &mut RequestRecord) -> Reply {
    let segs = decode_segments(&req.path);
    let s: Vec<&str> = segs.iter().map(String::as_str).collect();
    match s.as_slice() {
        ["version"] => return Reply::json(200, &crate::discovery::version()),
        ["healthz" | "readyz" | "livez", ..] => return Reply::text(200, "ok"),
        ["api"] | ["apis"] | ["api", "v1"] | ["apis", _] | ["apis", _, _] => {
            let inner = shared.inner.lock().unwrap();
            return crate::discovery::serve(&inner.registry, &s, req);
        }
        ["openapi", "v3", rest @ ..] => {
            let inner = shared.inner.lock().unwrap();
            return crate::openapi::serve(&inner.registry, rest, req);
        }
        _ => {}
    }
    let (group, version, rest) = match s.as_slice() {
        ["api", "v1", rest @ ..] => ("", "v1", rest),
        ["apis", g, v, rest @ ..] => (*g, *v, rest),
        ["api", ..] => return Reply::error(&ApiError::not_found_path()),
        _ => return Reply::text(404, "404 page not found\n"),
    };
    let rest: Vec<String> = rest.iter().map(|s| s.to_string()).collect();
    let target = {
        let inner = shared.inner.lock().unwrap();
        match resolve(&inner, group, version, &rest) {
            Ok(t) => t,
            // kube-apiserver answers a Status only inside the group-versions it serves itself;
            // any other path (a group no CRD serves, an unknown resource in a CRD's group)
            // falls through its handler chain to Go's plain-text NotFound.
            Err(e)
                if e.code == 404
                    && !inner
                        .registry
                        .all()
                        .any(|r| !r.is_custom() && r.group == group && r.version == version) =>
            {
                return Reply::text(404, "404 page not found\n")
            }
            Err(e) => return Reply::error(&e),
        }
    };
    let verb = verb_of(req, &target);
    rec.verb = verb.to_string();
    rec.group = target.info.group.clone();
    rec.resource = target.info.plural.clone();
    rec.subresource = target.subresource.clone().unwrap_or_default();
    rec.namespace = target.ns().to_string();
    rec.name = target.name().to_string();
    if let Some(code) = shared.hooks.take_fault(
        verb,
        &target.info.plural,
        target.subresource.as_deref().unwrap_or(""),
    ) {
        return Reply::error(&injected(code, &target));
    }
    // Writes answer JSON; a client that accepts only protobuf (or nothing servable) gets
    // 406 before anything is written, as the real handlers negotiate first.
    if matches!(
        verb,
        "create" | "update" | "patch" | "delete" | "deletecollection"
    ) && crate::http::negotiate::negotiate(req.header("accept")).is_none()
    {
        return Reply::error(&read::not_acceptable());
    }
    let result = match verb {
        "get" => read::get(shared, req, &target),
        "list" => read::list(shared, req, &target),
        "watch" => crate::watch::serve(shared, req, &target),
        "create" => write::create(shared, req, &target),
        "update" => write::update(shared, req, &target),
        "patch" => write::patch(shared, req, &target),
        "delete" => delete::delete(shared, req, &target),
        "deletecollection" => delete::delete_collection(shared, req, &target),
        _ => Err(ApiError::method_not_allowed()),
    };
    match result {
        Ok(r) => r,
        Err(e) => Reply::error(&e),
    }
}

fn injected(code: u16, t: &Target) -> ApiError {
    match code {
        409 => ApiError::conflict(&t.info.subject(t.name())),
        429 => ApiError::too_many_requests(),
        500 => ApiError::internal("injected fault"),
        410 => ApiError::gone("injected fault"),
        404 => ApiError::not_found(&t.info.subject(t.name())),
        c => ApiError::new(c, "", format!("injected fault with status {c}")),
    }
}

/// The served representation of a stored object at `info`'s group/version.
pub fn present(info: &ResourceInfo, stored: &Value) -> Value {
    let mut v = match info.builtin() {
        Some(Builtin::EventsV1Event) => crate::events::core_to_v1(stored),
        _ => stored.clone(),
    };
    if let Some(o) = v.as_object_mut() {
        o.insert("apiVersion".into(), json!(info.api_version()));
        o.insert("kind".into(), json!(info.kind));
    }
    if let Some(c) = info.custom() {
        if let Some(s) = &c.schema {
            s.default_object(&mut v);
        }
    }
    v
}

/// The stored form of a served object.
pub fn to_storage(info: &ResourceInfo, served: Value) -> Value {
    match info.builtin() {
        Some(Builtin::EventsV1Event) => crate::events::v1_to_core(&served),
        _ => served,
    }
}

/// `PartialObjectMetadata` for an object.
pub fn partial(obj: &Value) -> Value {
    json!({
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": obj.get("metadata").cloned().unwrap_or_else(|| json!({})),
    })
}

/// Namespace checks for writes into a namespace: 404 if missing, 403 if terminating.
pub fn check_namespace(inner: &Inner, ns: &str, creating: bool) -> ApiResult<()> {
    let key = crate::resources::StoreKey::new("", "namespaces");
    match inner.store.get(&key, "", ns) {
        None => Err(ApiError::not_found(&crate::error::Subject {
            group: String::new(),
            resource: "namespaces".into(),
            kind: "Namespace".into(),
            name: ns.to_string(),
        })),
        Some(n) if creating && crate::meta::is_deleting(n) => Err(ApiError::forbidden(format!(
            "unable to create new content in namespace {ns} because it is being terminated"
        ))
        .with_details(json!({"causes":[{"reason":"NamespaceTerminating","message":format!("namespace {ns} is being terminated"),"field":"metadata.namespace"}]}))),
        Some(_) => Ok(()),
    }
}
