//! Discovery, OpenAPI v3, Table, /version.

use crate::common::*;
use kube::api::{Patch, PatchParams, PostParams};
use serde_json::json;

const AGG: &str = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json";

#[tokio::test]
async fn aggregated_and_legacy_discovery_follow_crds() {
    let (server, _client) = setup().await;
    let group = server.group();
    let r = raw(&server, "GET", "/apis?timeout=32s", &[("Accept", AGG)], "").await;
    assert_eq!(
        r.header("Content-Type"),
        Some("application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList")
    );
    assert!(!r.body.contains(&group));
    install(&server, widget_crd_in(&group)).await;
    // kube-apiserver updates discovery shortly after the CRD is Established; the emulator at once.
    let find = |v: &serde_json::Value| {
        v["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["metadata"]["name"] == group.as_str())
            .cloned()
    };
    let v = wait_for(|| async {
        let v = raw(&server, "GET", "/apis", &[("Accept", AGG)], "")
            .await
            .json();
        find(&v).is_some().then_some(v)
    })
    .await;
    assert_eq!(v["kind"], "APIGroupDiscoveryList");
    let g = find(&v).unwrap();
    let res = &g["versions"][0]["resources"][0];
    assert_eq!(res["resource"], "widgets");
    assert_eq!(res["scope"], "Namespaced");
    assert_eq!(res["subresources"][0]["subresource"], "status");
    assert_eq!(g["versions"][0]["freshness"], "Current");
    let r = raw(&server, "GET", "/api", &[("Accept", AGG)], "").await;
    assert!(r.body.contains("\"configmaps\""));
    // Legacy.
    let r = raw(&server, "GET", "/apis", &[], "").await;
    assert_eq!(r.json()["kind"], "APIGroupList");
    let r = raw(&server, "GET", &format!("/apis/{group}/v1"), &[], "").await;
    let names: Vec<String> = r.json()["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, ["widgets", "widgets/status"]);
    let r = raw(&server, "GET", "/api", &[], "").await;
    assert_eq!(r.json()["kind"], "APIVersions");
}

#[tokio::test]
async fn openapi_v3_index_hash_etag_and_301() {
    let (server, _) = setup().await;
    install(&server, widget_crd()).await;
    // kube-apiserver publishes a new CRD's OpenAPI shortly after it is Established.
    let idx = wait_for(|| async {
        let idx = raw(&server, "GET", "/openapi/v3", &[], "").await.json();
        idx["paths"]["apis/example.com/v1"]
            .is_object()
            .then_some(idx)
    })
    .await;
    let url = idx["paths"]["apis/example.com/v1"]["serverRelativeURL"]
        .as_str()
        .unwrap()
        .to_string();
    let r = raw(&server, "GET", &url, &[], "").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("Cache-Control"), Some("public, immutable"));
    let hash = url.split("hash=").nth(1).unwrap();
    assert_eq!(r.header("Etag"), Some(format!("\"{hash}\"").as_str()));
    let doc = r.json();
    let patch =
        &doc["paths"]["/apis/example.com/v1/namespaces/{namespace}/widgets/{name}"]["patch"];
    assert_eq!(patch["x-kubernetes-group-version-kind"]["kind"], "Widget");
    assert!(patch["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p["name"] == "fieldValidation"));
    assert!(patch["requestBody"]["content"]
        .get("application/strategic-merge-patch+json")
        .is_none());
    let r = raw(
        &server,
        "GET",
        "/openapi/v3/apis/example.com/v1?hash=stale",
        &[],
        "",
    )
    .await;
    assert_eq!(r.status, 301);
    assert_eq!(r.header("Location"), Some(url.as_str()));
    let core = raw(&server, "GET", "/openapi/v3/api/v1", &[], "")
        .await
        .json();
    let ns_patch = &core["paths"]["/api/v1/namespaces/{name}"]["patch"];
    // kube-apiserver advertises strategic merge for built-ins; the emulator, which has no
    // schemas of them to compute it from, does not (a known difference, in the README).
    assert_eq!(
        ns_patch["requestBody"]["content"]
            .get("application/strategic-merge-patch+json")
            .is_some(),
        server.is_real(),
        "{ns_patch}"
    );
}

#[tokio::test]
async fn version_reports_1_33() {
    let (server, client) = setup().await;
    let v = client.apiserver_version().await.unwrap();
    assert_eq!(v.major, "1");
    assert!(
        v.git_version.starts_with(&format!("v1.{}.", v.minor)),
        "{v:?}"
    );
    if server.hooks().is_some() {
        // The emulator reports 1.33 on purpose (see its README); e2e/kube runs 1.37.
        assert_eq!(v.minor, "33");
    }
}

#[tokio::test]
async fn table_for_crs_uses_printer_columns() {
    let (server, _) = setup().await;
    let api = widgets(&server).await;
    api.create(&PostParams::default(), &widget("w1", 4))
        .await
        .unwrap();
    api.patch_status(
        "w1",
        &PatchParams::default(),
        &Patch::Merge(json!({"status":{"conditions":[{"type":"Ready","status":"True"}]}})),
    )
    .await
    .unwrap();
    let accept = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json";
    let t = raw(
        &server,
        "GET",
        &format!("{}?limit=500", server.widgets_path()),
        &[("Accept", accept)],
        "",
    )
    .await
    .json();
    assert_eq!(t["kind"], "Table");
    let cols: Vec<&str> = t["columnDefinitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(cols, ["Name", "Size", "Mode", "Ready", "Age"]);
    let row = &t["rows"][0];
    assert_eq!(row["cells"][0], "w1");
    assert_eq!(row["cells"][1], 4);
    assert_eq!(row["cells"][2], "fast");
    assert_eq!(row["cells"][3], "True");
    assert!(row["cells"][4].as_str().unwrap().ends_with('s'));
    assert_eq!(row["object"]["kind"], "PartialObjectMetadata");
    assert_eq!(row["object"]["metadata"]["namespace"], server.ns());
    // Built-ins: their printers' columns, Age a string.
    let t = raw(
        &server,
        "GET",
        &format!("/api/v1/namespaces/{}", server.ns()),
        &[("Accept", accept)],
        "",
    )
    .await
    .json();
    let cols: Vec<(&str, &str)> = t["columnDefinitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["name"].as_str().unwrap(), c["type"].as_str().unwrap()))
        .collect();
    assert_eq!(
        cols,
        [("Name", "string"), ("Status", "string"), ("Age", "string")]
    );
    assert_eq!(t["rows"][0]["cells"][0], server.ns());
    assert_eq!(t["rows"][0]["cells"][1], "Active");
    let t = raw(
        &server,
        "GET",
        &format!("/api/v1/namespaces/{}/serviceaccounts", server.ns()),
        &[("Accept", accept)],
        "",
    )
    .await
    .json();
    let cols: Vec<&str> = t["columnDefinitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(cols, ["Name", "Age"]);
}

#[tokio::test]
async fn status_errors_are_metav1_status() {
    let (server, _client) = setup().await;
    // A group no CRD serves, or an unknown resource in a CRD's group: not a Status but Go's
    // plain-text NotFound (what kube-rs turns into an Api error with code 404 all the same).
    install(&server, widget_crd()).await;
    for path in [
        format!(
            "/apis/{}/v1/namespaces/{}/widgets/x",
            server.group(),
            server.ns()
        ),
        format!("/apis/{}", server.group()),
        format!("/apis/{GROUP}/v1/namespaces/{}/nopes", server.ns()),
        "/nope".to_string(),
    ] {
        let r = raw(&server, "GET", &path, &[], "").await;
        assert_eq!(r.status, 404, "{path}");
        assert_eq!(r.body, "404 page not found\n", "{path}");
        assert_eq!(
            r.header("Content-Type"),
            Some("text/plain; charset=utf-8"),
            "{path}"
        );
    }
    // Inside a built-in group-version: a Status.
    let r = raw(
        &server,
        "GET",
        &format!("/api/v1/namespaces/{}/nopes", server.ns()),
        &[],
        "",
    )
    .await;
    assert_eq!(r.status, 404);
    let s = r.json();
    assert_eq!(
        s["message"],
        "the server could not find the requested resource"
    );
    assert_eq!(s["kind"], "Status");
    assert_eq!(s["status"], "Failure");
    assert_eq!(s["code"], 404);
    assert_eq!(s["reason"], "NotFound");
    let r = raw(
        &server,
        "GET",
        &format!("/api/v1/namespaces/{}/configmaps/nope", server.ns()),
        &[],
        "",
    )
    .await;
    assert_eq!(r.json()["message"], "configmaps \"nope\" not found");
    assert_eq!(r.json()["details"]["kind"], "configmaps");
}
