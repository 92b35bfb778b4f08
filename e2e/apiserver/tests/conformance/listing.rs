//! List bodies as the real server encodes them (the emulator encodes lists straight from its
//! store): read-time defaulting, served apiVersion, typed-list items without type meta,
//! PartialObjectMetadataList, pages that add up to the whole list.

use crate::common::*;
use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use serde_json::{json, Value};

fn plain_crd(group: &str, default_mode: Option<&str>, versions: &[&str]) -> Value {
    let mut mode = json!({"type": "string"});
    if let Some(d) = default_mode {
        mode["default"] = json!(d);
    }
    let versions: Vec<Value> = versions
        .iter()
        .enumerate()
        .map(|(i, v)| {
            json!({"name": v, "served": true, "storage": i == 0,
                "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                    "spec": {"type": "object", "properties": {"size": {"type": "integer"}, "mode": mode}}}}}})
        })
        .collect();
    json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": format!("things.{group}")},
        "spec": {"group": group, "scope": "Namespaced",
            "names": {"plural": "things", "singular": "thing", "kind": "Thing"},
            "versions": versions}
    })
}

/// `/apis/<this test's group>/<version>/namespaces/<ns>/things`.
fn things(server: &Server, version: &str) -> String {
    format!(
        "/apis/{}/{version}/namespaces/{}/things",
        server.group(),
        server.ns()
    )
}

async fn create_things(server: &Server, client: &kube::Client, n: usize) {
    let group = server.group();
    let ar = kube::core::ApiResource::from_gvk_with_plural(
        &kube::core::GroupVersionKind::gvk(&group, "v1", "Thing"),
        "things",
    );
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), server.ns(), &ar);
    for i in 0..n {
        let o: DynamicObject = serde_json::from_value(json!({
            "apiVersion": format!("{group}/v1"), "kind": "Thing",
            "metadata": {"name": format!("t{i:02}")}, "spec": {"size": i}
        }))
        .unwrap();
        api.create(&PostParams::default(), &o).await.unwrap();
    }
}

#[tokio::test]
async fn list_applies_schema_defaults_added_after_objects_were_stored() {
    let (server, client) = setup().await;
    install(&server, plain_crd(&server.group(), None, &["v1"])).await;
    create_things(&server, &client, 3).await;
    let l = raw(&server, "GET", &things(&server, "v1"), &[], "").await;
    assert!(l.json()["items"][0]["spec"].get("mode").is_none());
    // The CRD gains a default: objects already stored are served with it (defaulting on read).
    crd_api(&client)
        .patch(
            &format!("things.{}", server.group()),
            &PatchParams::default(),
            &Patch::Merge(plain_crd(&server.group(), Some("fast"), &["v1"])),
        )
        .await
        .unwrap();
    // kube-apiserver serves the changed schema moments after the CRD update (it rebuilds the
    // resource's storage, answering 429 "storage is (re)initializing" with Retry-After
    // meanwhile, which kube's client retries), the emulator at once: wait until a list shows
    // the new default on any item, then every stored item must have it.
    let items = wait_for(|| async {
        let l = raw(&server, "GET", &things(&server, "v1"), &[], "").await;
        if l.status == 429 && server.is_real() {
            assert_eq!(l.json()["message"], "storage is (re)initializing");
            return None;
        }
        assert_eq!(l.status, 200, "{}", l.body);
        let items = l.json()["items"].as_array().unwrap().clone();
        items
            .iter()
            .any(|i| i["spec"].get("mode").is_some())
            .then_some(items)
    })
    .await;
    assert_eq!(items.len(), 3);
    assert!(
        items.iter().all(|i| i["spec"]["mode"] == "fast"),
        "{items:?}"
    );
    let one = raw(
        &server,
        "GET",
        &format!("{}/t01", things(&server, "v1")),
        &[],
        "",
    )
    .await;
    assert_eq!(one.json(), items[1], "a list item is what a get returns");
}

#[tokio::test]
async fn list_items_carry_the_served_version() {
    let (server, client) = setup().await;
    install(&server, plain_crd(&server.group(), None, &["v1", "v2"])).await;
    create_things(&server, &client, 2).await;
    let l = raw(&server, "GET", &things(&server, "v2"), &[], "").await;
    let body = l.json();
    assert_eq!(body["apiVersion"], format!("{}/v2", server.group()));
    assert_eq!(body["kind"], "ThingList");
    for i in body["items"].as_array().unwrap() {
        assert_eq!(i["apiVersion"], format!("{}/v2", server.group()));
        assert_eq!(i["kind"], "Thing");
    }
}

#[tokio::test]
async fn typed_list_items_have_no_type_meta_and_custom_ones_do() {
    let (server, client) = setup().await;
    let cms: Api<k8s_openapi::api::core::v1::ConfigMap> =
        Api::namespaced(client.clone(), server.ns());
    let cm: k8s_openapi::api::core::v1::ConfigMap =
        serde_json::from_value(json!({"metadata": {"name": "c"}, "data": {"a": "b"}})).unwrap();
    cms.create(&PostParams::default(), &cm).await.unwrap();
    let l = raw(
        &server,
        "GET",
        &format!("/api/v1/namespaces/{}/configmaps", server.ns()),
        &[],
        "",
    )
    .await
    .json();
    assert_eq!(l["kind"], "ConfigMapList");
    assert!(l["metadata"].get("continue").is_none(), "{}", l["metadata"]);
    assert_eq!(l["apiVersion"], "v1");
    let item = &l["items"][0];
    assert!(
        item.get("apiVersion").is_none() && item.get("kind").is_none(),
        "{item}"
    );
    assert_eq!(item["data"]["a"], "b");

    install(&server, plain_crd(&server.group(), None, &["v1"])).await;
    create_things(&server, &client, 1).await;
    let l = raw(&server, "GET", &things(&server, "v1"), &[], "")
        .await
        .json();
    assert_eq!(l["items"][0]["kind"], "Thing");
}

#[tokio::test]
async fn pages_add_up_to_the_whole_list_and_metadata_lists_match_it() {
    let (server, client) = setup().await;
    install(&server, plain_crd(&server.group(), Some("fast"), &["v1"])).await;
    create_things(&server, &client, 7).await;
    let path = &things(&server, "v1");
    let whole = raw(&server, "GET", path, &[], "").await.json();
    let whole_items = whole["items"].as_array().unwrap().clone();
    assert_eq!(whole_items.len(), 7);
    // A custom resource's whole list says so with an empty continue (unstructured lists
    // always carry the field); its metadata list below and typed lists omit it.
    assert_eq!(whole["metadata"]["continue"], "", "{}", whole["metadata"]);

    let mut paged = Vec::new();
    let mut url = format!("{path}?limit=3");
    loop {
        let page = raw(&server, "GET", &url, &[], "").await.json();
        paged.extend(page["items"].as_array().unwrap().iter().cloned());
        match page["metadata"]["continue"].as_str() {
            Some(c) if !c.is_empty() => {
                assert!(page["items"].as_array().unwrap().len() == 3);
                url = format!("{path}?limit=3&continue={c}");
            }
            _ => break,
        }
    }
    assert_eq!(paged, whole_items);

    let meta = raw(
        &server,
        "GET",
        path,
        &[(
            "Accept",
            "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1",
        )],
        "",
    )
    .await
    .json();
    assert_eq!(meta["kind"], "PartialObjectMetadataList");
    assert!(
        meta["metadata"].get("continue").is_none(),
        "{}",
        meta["metadata"]
    );
    assert_eq!(meta["apiVersion"], "meta.k8s.io/v1");
    let metas = meta["items"].as_array().unwrap();
    assert_eq!(metas.len(), 7);
    for (m, full) in metas.iter().zip(&whole_items) {
        assert_eq!(m["kind"], "PartialObjectMetadata");
        assert_eq!(m["apiVersion"], "meta.k8s.io/v1");
        assert_eq!(m["metadata"], full["metadata"]);
    }
}
