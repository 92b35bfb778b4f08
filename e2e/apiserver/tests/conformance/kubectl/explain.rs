//! (K) `kubectl explain` reads `/openapi/v3` and the group/version document: CRD schemas are
//! published with their descriptions, `metadata` resolves to ObjectMeta, and a CRD change is
//! visible at once.

use super::kubectl;
use crate::common::*;
use serde_json::{json, Value};

fn repo_crds() -> String {
    format!("{}/../../crds/", env!("CARGO_MANIFEST_DIR"))
}

/// The description of `path` (property names) in a CRD file's first version's schema.
fn description(file: &str, path: &[&str]) -> String {
    let text = std::fs::read_to_string(format!("{}{file}", repo_crds())).unwrap();
    let crd: Value = serde_yaml::from_str(&text).unwrap();
    let mut s = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"];
    for p in path {
        s = &s["properties"][p];
    }
    s["description"].as_str().unwrap().to_string()
}

/// kubectl wraps long descriptions at 80 columns; compare word sequences.
fn words(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[tokio::test]
async fn kubectl_explain_shows_crd_field_descriptions() {
    let (server, client) = setup().await;
    // Castellan's CRDs are cluster-wide: deleted at the end only if this test made them.
    for name in [
        "storagebackends.castellan.io",
        "artifactmappings.castellan.io",
    ] {
        if crd_api(&client).get_opt(name).await.unwrap().is_none() {
            server.delete_at_end(format!(
                "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}"
            ));
        }
    }
    let k = kubectl(&server);
    k.ok(&["apply", "-f", &repo_crds()]).await;
    k.ok(&["wait", "--for=condition=Established", "-f", &repo_crds()])
        .await;
    // kubectl expands short names from its discovery cache, which `apply` filled before the
    // CRDs existed; `explain` (ResourcesFor) does not re-expand after refreshing it, while
    // `get` (KindFor) does, so a real server needs the same first step for `explain sbe`.
    k.ok(&["get", "sbe"]).await;
    // And kube-apiserver publishes a new CRD's OpenAPI moments after it is Established (the
    // emulator at once): until then `explain` finds no such resource.
    let out = wait_for(|| async {
        let (ok, stdout, _) = k.run(&["explain", "sbe"]).await;
        ok.then_some(stdout)
    })
    .await;
    assert!(out.contains("KIND:       StorageBackend"), "{out}");
    assert!(
        words(&out).contains(&words(&description(
            "storagebackends.castellan.io.yaml",
            &["spec"]
        ))),
        "{out}"
    );
    assert!(out.contains("metadata\t<ObjectMeta>"), "{out}");
    assert!(
        words(&out).contains("APIVersion defines the versioned schema"),
        "{out}"
    );

    let out = k.ok(&["explain", "sbe.spec.s3"]).await;
    assert!(out.contains("FIELD: s3 <Object>"), "{out}");
    assert!(
        words(&out).contains(&words(&description(
            "storagebackends.castellan.io.yaml",
            &["spec", "s3"]
        ))),
        "{out}"
    );
    for field in [
        "bucket",
        "endpoint",
        "credentialsSecretRef",
        "forcePathStyle",
    ] {
        assert!(out.contains(&format!("  {field}\t<")), "{field}: {out}");
    }

    let out = k.ok(&["explain", "sbe.metadata.labels"]).await;
    assert!(out.contains("map[string]string"), "{out}");
    assert!(
        words(&out).contains("Map of string keys and values"),
        "{out}"
    );

    k.ok(&["get", "am"]).await;
    let out = k.ok(&["explain", "am.status", "--recursive"]).await;
    assert!(
        words(&out).contains(&words(&description(
            "artifactmappings.castellan.io.yaml",
            &["status"]
        ))),
        "{out}"
    );
    for field in [
        "conditions",
        "observedGeneration",
        "lastTransitionTime",
        "backend",
    ] {
        assert!(out.contains(field), "{field}: {out}");
    }
}

#[tokio::test]
async fn kubectl_explain_follows_crd_changes() {
    let (server, _client) = setup().await;
    // This test changes the CRD: one of its own.
    let group = server.group();
    install(&server, widget_crd_in(&group)).await;
    let k = kubectl(&server);
    let version = format!("--api-version={group}/v1");
    // kube-apiserver publishes a new CRD's OpenAPI moments after it is Established, the
    // emulator at once: until then kubectl explain finds no such resource.
    let out = wait_for(|| async {
        let (ok, stdout, _) = k.run(&["explain", "widgets.spec", &version]).await;
        ok.then_some(stdout)
    })
    .await;
    assert!(out.contains("FIELD: spec <Object>"), "{out}");
    assert!(!out.contains("colour"), "{out}");
    let mut crd = widget_crd_in(&group);
    crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]
        ["colour"] = json!({"type": "string", "description": "The paint on the widget."});
    let f = k.file("crd.yaml", &serde_yaml::to_string(&crd).unwrap());
    k.ok(&["apply", "-f", &f]).await;
    // kube-apiserver republishes the OpenAPI moments after the change, the emulator at once.
    let out = wait_for(|| async {
        let (ok, stdout, _) = k.run(&["explain", "widgets.spec.colour", &version]).await;
        ok.then_some(stdout)
    })
    .await;
    assert!(out.contains("FIELD: colour <string>"), "{out}");
    assert!(out.contains("The paint on the widget."), "{out}");
}

#[tokio::test]
async fn openapi_v3_crd_schema_has_gvk_type_meta_and_object_meta() {
    let (server, _) = setup().await;
    install(&server, widget_crd()).await;
    let index = wait_for(|| async {
        let index = raw(&server, "GET", "/openapi/v3", &[], "").await.json();
        index["paths"]["apis/example.com/v1"]
            .is_object()
            .then_some(index)
    })
    .await;
    let url = index["paths"]["apis/example.com/v1"]["serverRelativeURL"]
        .as_str()
        .unwrap()
        .to_string();
    let doc = raw(&server, "GET", &url, &[], "").await.json();
    let schemas = &doc["components"]["schemas"];
    let w = &schemas["com.example.v1.Widget"];
    assert_eq!(
        w["x-kubernetes-group-version-kind"],
        json!([{"group": "example.com", "version": "v1", "kind": "Widget"}])
    );
    assert_eq!(
        w["properties"]["metadata"]["allOf"][0]["$ref"],
        "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
    );
    assert!(w["properties"]["kind"]["description"].is_string());
    let om = &schemas["io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"];
    assert!(om["properties"]["name"]["description"].is_string());
}
