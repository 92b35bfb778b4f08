//! Minimal OpenAPI v3: the `/openapi/v3` index with `?hash=` URLs and one
//! document per group/version whose PATCH operations carry
//! `x-kubernetes-group-version-kind` and a `fieldValidation` parameter, so
//! kubectl's default `apply` sends `fieldValidation=Strict`. Strategic merge
//! is advertised for no kind: custom resources do not support it, and the
//! built-ins have no schema here to compute it from. Following kube-openapi `handler3`: the
//! hash is the ETag, a stale hash gets a 301 to the current one, and a
//! matching hash is served `Cache-Control: public, immutable`.

use crate::error::ApiError;
use crate::http::{Reply, Request};
use crate::resources::ResourceInfo;
use crate::state::Registry;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

fn gv_path(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

fn schema_name(r: &ResourceInfo) -> String {
    if r.group.is_empty() {
        format!("io.k8s.api.core.{}.{}", r.version, r.kind)
    } else {
        let rev: Vec<&str> = r.group.split('.').rev().collect();
        format!("{}.{}.{}", rev.join("."), r.version, r.kind)
    }
}

fn param(name: &str, location: &str, description: &str) -> Value {
    json!({"name": name, "in": location, "description": description, "schema": {"type": "string", "uniqueItems": true}})
}

fn operations(r: &ResourceInfo, item: bool, status: bool) -> Value {
    let gvk = json!({"group": r.group, "version": r.version, "kind": r.kind});
    let schema_ref = json!({"$ref": format!("#/components/schemas/{}", schema_name(r))});
    let ok = |code: &str| json!({code: {"description": "OK", "content": {"application/json": {"schema": schema_ref}}}});
    let mut ops = Map::new();
    let mut common = vec![];
    if r.namespaced {
        common.push(json!({"name": "namespace", "in": "path", "required": true, "schema": {"type": "string"}}));
    }
    if item {
        common.push(
            json!({"name": "name", "in": "path", "required": true, "schema": {"type": "string"}}),
        );
    }
    let write_params = |extra: &[Value]| {
        let mut ps = common.clone();
        ps.push(param(
            "dryRun",
            "query",
            "When present, indicates that modifications should not be persisted.",
        ));
        ps.push(param("fieldManager", "query", "fieldManager is a name associated with the actor or entity that is making these changes."));
        ps.push(param("fieldValidation", "query", "fieldValidation instructs the server on how to handle objects in the request containing unknown or duplicate fields. Valid values are: Ignore, Warn, Strict."));
        ps.extend(extra.iter().cloned());
        Value::Array(ps)
    };
    if item {
        ops.insert("get".into(), json!({"operationId": format!("read{}", r.kind), "parameters": common, "responses": ok("200"), "x-kubernetes-action": "get", "x-kubernetes-group-version-kind": gvk}));
        ops.insert("put".into(), json!({"operationId": format!("replace{}", r.kind), "parameters": write_params(&[]), "requestBody": {"content": {"application/json": {"schema": schema_ref}}, "required": true}, "responses": ok("200"), "x-kubernetes-action": "put", "x-kubernetes-group-version-kind": gvk}));
        let patch_schema = json!({"schema": {"$ref": "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.Patch"}});
        let mut content = Map::new();
        content.insert("application/apply-patch+yaml".into(), patch_schema.clone());
        content.insert("application/json-patch+json".into(), patch_schema.clone());
        content.insert("application/merge-patch+json".into(), patch_schema.clone());
        // No "application/strategic-merge-patch+json" here, although the server accepts it for
        // built-ins: the emulator publishes no schemas of built-in kinds (their properties are
        // empty), and with strategic merge advertised `kubectl apply` computes its patch from
        // that empty schema and warns "unable to find api field". Without it kubectl computes
        // strategic merge patches from its compiled-in types.
        ops.insert("patch".into(), json!({
            "operationId": format!("patch{}", r.kind),
            "parameters": write_params(&[json!({"name": "force", "in": "query", "description": "Force is going to \"force\" Apply requests.", "schema": {"type": "boolean", "uniqueItems": true}})]),
            "requestBody": {"content": content, "required": true},
            "responses": ok("200"),
            "x-kubernetes-action": "patch",
            "x-kubernetes-group-version-kind": gvk,
        }));
        if !status {
            ops.insert("delete".into(), json!({"operationId": format!("delete{}", r.kind), "parameters": common, "responses": {"200": {"description": "OK"}}, "x-kubernetes-action": "delete", "x-kubernetes-group-version-kind": gvk}));
        }
    } else {
        ops.insert("get".into(), json!({"operationId": format!("list{}", r.kind), "parameters": common, "responses": {"200": {"description": "OK"}}, "x-kubernetes-action": "list", "x-kubernetes-group-version-kind": gvk}));
        ops.insert("post".into(), json!({"operationId": format!("create{}", r.kind), "parameters": write_params(&[]), "requestBody": {"content": {"application/json": {"schema": schema_ref}}, "required": true}, "responses": ok("201"), "x-kubernetes-action": "post", "x-kubernetes-group-version-kind": gvk}));
    }
    Value::Object(ops)
}

/// The OpenAPI document of one group/version.
pub fn document(reg: &Registry, group: &str, version: &str) -> Option<Value> {
    let resources: Vec<&ResourceInfo> = reg
        .all()
        .filter(|r| r.group == group && r.version == version)
        .collect();
    if resources.is_empty() {
        return None;
    }
    let base = format!("/{}", gv_path(group, version));
    let mut paths = Map::new();
    let mut schemas = Map::new();
    schemas.insert(
        "io.k8s.apimachinery.pkg.apis.meta.v1.Patch".into(),
        json!({"type": "object", "description": "Patch is provided to give a concrete name and type to the Kubernetes PATCH request body."}),
    );
    for r in resources {
        let prefix = if r.namespaced {
            format!("{base}/namespaces/{{namespace}}/{}", r.plural)
        } else {
            format!("{base}/{}", r.plural)
        };
        paths.insert(prefix.clone(), operations(r, false, false));
        paths.insert(format!("{prefix}/{{name}}"), operations(r, true, false));
        if r.has_status {
            paths.insert(
                format!("{prefix}/{{name}}/status"),
                operations(r, true, true),
            );
        }
        schemas.insert(schema_name(r), crate::openapi_schemas::resource(r));
    }
    schemas.extend(crate::openapi_schemas::meta().clone());
    Some(json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": crate::discovery::GIT_VERSION},
        "paths": paths,
        "components": {"schemas": schemas},
    }))
}

fn hash(doc: &[u8]) -> String {
    hex::encode_upper(Sha256::digest(doc))
}

pub fn serve(reg: &Registry, rest: &[&str], req: &Request) -> Reply {
    if rest.is_empty() {
        let mut paths = Map::new();
        for (g, vs) in reg.groups() {
            for v in vs {
                if let Some(doc) = document(reg, &g, &v) {
                    let h = hash(&serde_json::to_vec(&doc).unwrap_or_default());
                    let p = gv_path(&g, &v);
                    paths.insert(
                        p.clone(),
                        json!({"serverRelativeURL": format!("/openapi/v3/{p}?hash={h}")}),
                    );
                }
            }
        }
        let mut r = Reply::json(200, &json!({"paths": paths}));
        r.headers
            .push(("Cache-Control".into(), "no-cache, private".into()));
        return r;
    }
    let (group, version) = match rest {
        ["api", v] => ("", *v),
        ["apis", g, v] => (*g, *v),
        _ => return Reply::error(&ApiError::not_found_path()),
    };
    let Some(doc) = document(reg, group, version) else {
        return Reply::error(&ApiError::not_found_path());
    };
    let bytes = serde_json::to_vec(&doc).unwrap_or_default();
    let h = hash(&bytes);
    let mut reply = Reply {
        status: 200,
        headers: vec![
            ("Content-Type".into(), "application/json".into()),
            ("Etag".into(), format!("\"{h}\"")),
        ],
        body: crate::http::full(bytes),
    };
    match req.query.get("hash") {
        Some(given) if given != h => {
            let loc = format!("/openapi/v3/{}?hash={h}", gv_path(group, version));
            return Reply {
                status: 301,
                headers: vec![
                    ("Location".into(), loc),
                    ("Cache-Control".into(), "no-cache, private".into()),
                ],
                body: crate::http::full(""),
            };
        }
        Some(_) => reply
            .headers
            .push(("Cache-Control".into(), "public, immutable".into())),
        None => reply
            .headers
            .push(("Cache-Control".into(), "no-cache, private".into())),
    }
    reply
}
