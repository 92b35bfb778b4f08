//! CRD schema enforcement on CR writes, and CRD validation.

use crate::common::*;
use kube::api::{Patch, PatchParams, PostParams};
use serde_json::{json, Value};

fn body(spec: Value) -> String {
    json!({"apiVersion":"example.com/v1","kind":"Widget","metadata":{"name":"w1"},"spec":spec})
        .to_string()
}

async fn create_raw(server: &Server, q: &str, spec: Value) -> Raw {
    let path = format!("{}{q}", server.widgets_path());
    raw(server, "POST", &path, &[JSON], &body(spec)).await
}

fn cause_reasons(r: &Raw) -> Vec<String> {
    r.json()["details"]["causes"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|c| {
                    format!(
                        "{}@{}",
                        c["reason"].as_str().unwrap(),
                        c["field"].as_str().unwrap()
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn missing_required_field_is_422_field_value_required() {
    let (server, _) = setup().await;
    let _ = widgets(&server).await;
    let r = create_raw(&server, "", json!({})).await;
    assert_eq!(r.status, 422, "{}", r.body);
    assert_eq!(r.json()["reason"], "Invalid");
    assert!(
        cause_reasons(&r).contains(&"FieldValueRequired@spec.size".to_string()),
        "{:?}",
        cause_reasons(&r)
    );
}

#[tokio::test]
async fn enum_violation_is_422_not_supported() {
    let (server, _) = setup().await;
    let _ = widgets(&server).await;
    let r = create_raw(&server, "", json!({"size":1,"mode":"medium"})).await;
    assert_eq!(r.status, 422, "{}", r.body);
    assert!(
        cause_reasons(&r).contains(&"FieldValueNotSupported@spec.mode".to_string()),
        "{}",
        r.body
    );
    assert!(r.json()["message"]
        .as_str()
        .unwrap()
        .starts_with("Widget.example.com \"w1\" is invalid: "));
}

#[tokio::test]
async fn pattern_minimum_maxlength_maxitems_are_422() {
    let (server, _) = setup().await;
    let _ = widgets(&server).await;
    for spec in [
        json!({"size":1,"label":"ABC"}),
        json!({"size":-1}),
        json!({"size":1,"label":"abcdefghijkl"}),
        json!({"size":1,"tags":["a","b","c","d"]}),
    ] {
        let r = create_raw(&server, "", spec.clone()).await;
        assert_eq!(r.status, 422, "{spec} → {}", r.body);
    }
}

#[tokio::test]
async fn wrong_type_is_422() {
    let (server, _) = setup().await;
    let _ = widgets(&server).await;
    let r = create_raw(&server, "", json!({"size":"big"})).await;
    assert_eq!(r.status, 422, "{}", r.body);
    assert!(
        cause_reasons(&r)
            .iter()
            .any(|c| c.starts_with("FieldValueTypeInvalid")),
        "{}",
        r.body
    );
}

#[tokio::test]
async fn cel_rule_false_is_422_and_transition_rules_see_old_self() {
    let (server, _) = setup().await;
    let api = widgets(&server).await;
    let r = create_raw(&server, "", json!({"size":13})).await;
    assert_eq!(r.status, 422, "{}", r.body);
    assert!(r.body.contains("thirteen is unlucky"), "{}", r.body);
    // Transition rule: not evaluated on create, enforced on update.
    let r = create_raw(&server, "", json!({"size":1,"replicas":5})).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let e = api_err(
        api.patch(
            "w1",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec":{"replicas":3}})),
        )
        .await
        .unwrap_err(),
    );
    assert_eq!(e.code, 422);
    assert!(
        e.message.contains("replicas may not decrease"),
        "{}",
        e.message
    );
}

#[tokio::test]
async fn unknown_field_warn_strict_ignore() {
    let (server, _) = setup().await;
    let _ = widgets(&server).await;
    let r = create_raw(&server, "", json!({"size":1,"bogus":1})).await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert!(r.json()["spec"].get("bogus").is_none());
    let w = r.all_headers("Warning");
    assert!(
        w.iter()
            .any(|h| h.starts_with("299 - ") && h.contains("spec.bogus")),
        "{w:?}"
    );
    let r = raw(&server, "POST", &format!("{}?fieldValidation=Strict", server.widgets_path()), &[JSON], &json!({"apiVersion":"example.com/v1","kind":"Widget","metadata":{"name":"w2"},"spec":{"size":1,"bogus":1}}).to_string()).await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(r.json()["reason"], "BadRequest");
    let r = raw(&server, "POST", &format!("{}?fieldValidation=Ignore", server.widgets_path()), &[JSON], &json!({"apiVersion":"example.com/v1","kind":"Widget","metadata":{"name":"w3"},"spec":{"size":1,"bogus":1}}).to_string()).await;
    assert_eq!(r.status, 201);
    assert!(r.header("Warning").is_none());
}

#[tokio::test]
async fn preserve_unknown_fields_keeps_them() {
    let (server, _) = setup().await;
    let _ = widgets(&server).await;
    let r = create_raw(
        &server,
        "",
        json!({"size":1,"extra":{"anything":{"goes":true}}}),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.json()["spec"]["extra"]["anything"]["goes"], true);
}

#[tokio::test]
async fn defaults_are_filled_in_response_and_get() {
    let (server, _) = setup().await;
    let api = widgets(&server).await;
    let o = api
        .create(&PostParams::default(), &widget("w1", 1))
        .await
        .unwrap();
    assert_eq!(o.data["spec"]["mode"], "fast");
    assert_eq!(api.get("w1").await.unwrap().data["spec"]["mode"], "fast");
}

#[tokio::test]
async fn null_non_nullable_pruned_then_defaulted_nullable_kept() {
    let (server, _) = setup().await;
    let _ = widgets(&server).await;
    let r = create_raw(&server, "", json!({"size":1,"plain":null,"note":null})).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let o = r.json();
    assert_eq!(o["spec"]["plain"], "dflt");
    assert!(o["spec"].get("note").is_some_and(Value::is_null), "{o}");
}

#[tokio::test]
async fn duplicate_in_set_list_is_422() {
    let (server, _) = setup().await;
    let _ = widgets(&server).await;
    let r = create_raw(&server, "", json!({"size":1,"tags":["a","a"]})).await;
    assert_eq!(r.status, 422, "{}", r.body);
    assert!(
        cause_reasons(&r)
            .iter()
            .any(|c| c.starts_with("FieldValueDuplicate")),
        "{}",
        r.body
    );
}

#[tokio::test]
async fn non_structural_or_misnamed_crd_is_422() {
    let (server, _client) = setup().await;
    // In a group of this test's own: none of these may be stored, and if one were it would not
    // be met as "already exists" on a shared server.
    let group = server.group();
    // Deleted at the end should one be accepted after all.
    server.delete_at_end(format!(
        "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/widgets.{group}"
    ));
    let mut crd = widget_crd_in(&group);
    crd["metadata"]["name"] = json!(format!("widgets.other-{group}"));
    let r = raw(
        &server,
        "POST",
        "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
        &[JSON],
        &crd.to_string(),
    )
    .await;
    assert_eq!(r.status, 422, "{}", r.body);
    let mut crd = widget_crd_in(&group);
    crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]
        ["untyped"] = json!({"description": "no type"});
    let r = raw(
        &server,
        "POST",
        "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
        &[JSON],
        &crd.to_string(),
    )
    .await;
    assert_eq!(r.status, 422, "{}", r.body);
    let mut crd = widget_crd_in(&group);
    crd["spec"]["versions"][0]["storage"] = json!(false);
    let r = raw(
        &server,
        "POST",
        "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
        &[JSON],
        &crd.to_string(),
    )
    .await;
    assert_eq!(r.status, 422, "{}", r.body);
}

#[tokio::test]
async fn new_crd_is_established_and_discoverable_at_once() {
    let (server, client) = setup().await;
    // A CRD of this test's own, so that it is new.
    let group = server.group();
    install(&server, widget_crd_in(&group)).await;
    let crd = crd_api(&client)
        .get(&format!("widgets.{group}"))
        .await
        .unwrap();
    let typed: k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition =
        serde_json::from_value(serde_json::to_value(&crd).unwrap()).unwrap();
    use kube::runtime::wait::Condition;
    assert!(kube::runtime::conditions::is_crd_established().matches_object(Some(&typed)));
    let st = typed.status.unwrap();
    assert_eq!(st.stored_versions, Some(vec!["v1".to_string()]));
    assert_eq!(st.accepted_names.unwrap().kind, "Widget");
    let d = kube::Discovery::new(client.clone())
        .run_aggregated()
        .await
        .unwrap();
    assert!(d.has_group(&group));
}
