//! Discovery: aggregated `apidiscovery.k8s.io/v2` and legacy
//! (APIVersions / APIGroupList / APIGroup / APIResourceList), chosen by
//! `Accept`, always computed from the live registry so CRD changes show at
//! once; and `/version`.

use crate::error::ApiError;
use crate::http::{Reply, Request};
use crate::resources::ResourceInfo;
use crate::state::Registry;
use serde_json::{json, Value};

/// The Kubernetes version reported. v1.33 on purpose: kube 5 types are
/// v1.33+, kubectl 1.32 and 1.33 both support a 1.33 server, and the kubectl
/// dispatcher on the build machines then runs kubectl 1.33 (§0 of the
/// contract).
pub const GIT_VERSION: &str = "v1.33.1";

pub fn version() -> Value {
    json!({
        "major": "1",
        "minor": "33",
        "emulationMajor": "1",
        "emulationMinor": "33",
        "minCompatibilityMajor": "1",
        "minCompatibilityMinor": "32",
        "gitVersion": GIT_VERSION,
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2025-05-15T00:00:00Z",
        "goVersion": "go1.24.2",
        "compiler": "gc",
        "platform": "linux/amd64",
    })
}

const AGGREGATED_CT: &str = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";

fn wants_aggregated(req: &Request) -> bool {
    req.header("accept").is_some_and(|a| {
        a.split(',').any(|m| {
            m.contains("as=APIGroupDiscoveryList")
                && m.contains("g=apidiscovery.k8s.io")
                && m.split(';').any(|p| p.trim() == "v=v2")
        })
    })
}

fn resource_v2(r: &ResourceInfo) -> Value {
    let mut v = json!({
        "resource": r.plural,
        "responseKind": {"group": r.group, "version": r.version, "kind": r.kind},
        "scope": if r.namespaced { "Namespaced" } else { "Cluster" },
        "singularResource": r.singular,
        "verbs": r.verbs(),
    });
    if !r.short_names.is_empty() {
        v["shortNames"] = json!(r.short_names);
    }
    if !r.categories.is_empty() {
        v["categories"] = json!(r.categories);
    }
    if r.has_status {
        v["subresources"] = json!([{
            "subresource": "status",
            "responseKind": {"group": r.group, "version": r.version, "kind": r.kind},
            "verbs": ["get", "patch", "update"],
        }]);
    }
    v
}

fn group_v2(reg: &Registry, group: &str, versions: &[String]) -> Value {
    let versions: Vec<Value> = versions
        .iter()
        .map(|v| {
            let resources: Vec<Value> = reg
                .all()
                .filter(|r| r.group == group && &r.version == v)
                .map(resource_v2)
                .collect();
            json!({"version": v, "resources": resources, "freshness": "Current"})
        })
        .collect();
    let mut md = json!({"creationTimestamp": null});
    if !group.is_empty() {
        md["name"] = json!(group);
    }
    json!({"metadata": md, "versions": versions})
}

fn resource_list(reg: &Registry, group: &str, version: &str) -> Value {
    let mut resources = Vec::new();
    for r in reg
        .all()
        .filter(|r| r.group == group && r.version == version)
    {
        let mut v = json!({
            "name": r.plural,
            "singularName": r.singular,
            "namespaced": r.namespaced,
            "kind": r.kind,
            "verbs": r.verbs(),
        });
        if !r.short_names.is_empty() {
            v["shortNames"] = json!(r.short_names);
        }
        if !r.categories.is_empty() {
            v["categories"] = json!(r.categories);
        }
        resources.push(v);
        if r.has_status {
            resources.push(json!({
                "name": format!("{}/status", r.plural),
                "singularName": "",
                "namespaced": r.namespaced,
                "kind": r.kind,
                "verbs": ["get", "patch", "update"],
            }));
        }
    }
    let gv = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources})
}

fn api_group(group: &str, versions: &[String]) -> Value {
    let vs: Vec<Value> = versions
        .iter()
        .map(|v| json!({"groupVersion": format!("{group}/{v}"), "version": v}))
        .collect();
    json!({"name": group, "versions": vs, "preferredVersion": vs[0]})
}

pub fn serve(reg: &Registry, segs: &[&str], req: &Request) -> Reply {
    let groups = reg.groups();
    match segs {
        ["api"] => {
            if wants_aggregated(req) {
                let items: Vec<Value> = groups
                    .iter()
                    .filter(|(g, _)| g.is_empty())
                    .map(|(g, vs)| group_v2(reg, g, vs))
                    .collect();
                return Reply::json_ct(
                    200,
                    AGGREGATED_CT,
                    &json!({"kind": "APIGroupDiscoveryList", "apiVersion": "apidiscovery.k8s.io/v2", "metadata": {}, "items": items}),
                );
            }
            let host = req.header("host").unwrap_or("127.0.0.1").to_string();
            Reply::json(
                200,
                &json!({"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": host}]}),
            )
        }
        ["apis"] => {
            if wants_aggregated(req) {
                let items: Vec<Value> = groups
                    .iter()
                    .filter(|(g, _)| !g.is_empty())
                    .map(|(g, vs)| group_v2(reg, g, vs))
                    .collect();
                return Reply::json_ct(
                    200,
                    AGGREGATED_CT,
                    &json!({"kind": "APIGroupDiscoveryList", "apiVersion": "apidiscovery.k8s.io/v2", "metadata": {}, "items": items}),
                );
            }
            let gs: Vec<Value> = groups
                .iter()
                .filter(|(g, _)| !g.is_empty())
                .map(|(g, vs)| api_group(g, vs))
                .collect();
            Reply::json(
                200,
                &json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": gs}),
            )
        }
        ["api", "v1"] => Reply::json(200, &resource_list(reg, "", "v1")),
        ["apis", g] => match groups.iter().find(|(name, _)| name == g) {
            Some((name, vs)) => {
                let mut v = api_group(name, vs);
                v["kind"] = json!("APIGroup");
                v["apiVersion"] = json!("v1");
                Reply::json(200, &v)
            }
            // Not a Status: kube-apiserver's handler chain ends in Go's plain-text NotFound.
            None => Reply::text(404, "404 page not found\n"),
        },
        ["apis", g, v] => {
            if reg.has_group_version(g, v) {
                Reply::json(200, &resource_list(reg, g, v))
            } else {
                Reply::text(404, "404 page not found\n")
            }
        }
        _ => Reply::error(&ApiError::not_found_path()),
    }
}
