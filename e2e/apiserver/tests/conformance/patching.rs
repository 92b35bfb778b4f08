//! Merge patch, SMP on CRs, server-side apply.

use crate::common::*;
use kube::api::{Patch, PatchParams, PostParams};
use serde_json::json;

fn applied(size: i64) -> serde_json::Value {
    json!({"apiVersion":"example.com/v1","kind":"Widget","metadata":{"name":"w1"},"spec":{"size":size}})
}

fn managers(o: &kube::api::DynamicObject) -> Vec<(String, String)> {
    o.metadata
        .managed_fields
        .clone()
        .unwrap_or_default()
        .into_iter()
        .map(|m| {
            (
                m.manager.unwrap_or_default(),
                m.operation.unwrap_or_default(),
            )
        })
        .collect()
}

#[tokio::test]
async fn merge_patch_null_removes_finalizers_field() {
    let (server, _) = setup().await;
    let api = widgets(&server).await;
    let mut w = widget("w1", 1);
    w.metadata.finalizers = Some(vec!["example.com/f".into()]);
    api.create(&PostParams::default(), &w).await.unwrap();
    let o = api
        .patch(
            "w1",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata":{"finalizers":null}})),
        )
        .await
        .unwrap();
    assert!(o.metadata.finalizers.is_none());
}

#[tokio::test]
async fn strategic_merge_patch_on_cr_is_415() {
    let (server, _) = setup().await;
    let api = widgets(&server).await;
    api.create(&PostParams::default(), &widget("w1", 1))
        .await
        .unwrap();
    let e = api_err(
        api.patch(
            "w1",
            &PatchParams::default(),
            &Patch::Strategic(json!({"spec":{"size":2}})),
        )
        .await
        .unwrap_err(),
    );
    assert_eq!(e.code, 415);
    assert_eq!(e.reason, "UnsupportedMediaType");
}

#[tokio::test]
async fn apply_to_missing_object_creates_it() {
    let (server, _) = setup().await;
    let _ = widgets(&server).await;
    let r = raw(
        &server,
        "PATCH",
        &format!("{}/w1?fieldManager=m", server.widgets_path()),
        &[("Content-Type", "application/apply-patch+yaml")],
        &applied(3).to_string(),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.json()["spec"]["size"], 3);
}

#[tokio::test]
async fn apply_without_field_manager_and_force_on_merge_are_422() {
    let (server, _) = setup().await;
    let api = widgets(&server).await;
    api.create(&PostParams::default(), &widget("w1", 1))
        .await
        .unwrap();
    let r = raw(
        &server,
        "PATCH",
        &format!("{}/w1?", server.widgets_path()),
        &[("Content-Type", "application/apply-patch+yaml")],
        &applied(3).to_string(),
    )
    .await;
    assert_eq!(r.status, 422);
    assert!(
        r.json()["message"]
            .as_str()
            .unwrap()
            .contains("fieldManager: Required value: is required for apply patch"),
        "{}",
        r.body
    );
    let r = raw(
        &server,
        "PATCH",
        &format!("{}/w1?force=true", server.widgets_path()),
        &[MERGE],
        r#"{"spec":{"size":2}}"#,
    )
    .await;
    assert_eq!(r.status, 422);
    assert!(r.json()["message"]
        .as_str()
        .unwrap()
        .contains("force: Forbidden: may not be specified for non-apply patch"));
}

#[tokio::test]
async fn apply_conflict_409_then_force_takes_ownership() {
    let (server, _) = setup().await;
    let api = widgets(&server).await;
    api.patch("w1", &PatchParams::apply("a"), &Patch::Apply(applied(1)))
        .await
        .unwrap();
    let e = api_err(
        api.patch("w1", &PatchParams::apply("b"), &Patch::Apply(applied(2)))
            .await
            .unwrap_err(),
    );
    assert_eq!(e.code, 409);
    assert_eq!(e.reason, "Conflict");
    let causes = e.details.unwrap().causes;
    assert_eq!(causes[0].reason, "FieldManagerConflict");
    assert_eq!(causes[0].field, ".spec.size");
    let o = api
        .patch(
            "w1",
            &PatchParams::apply("b").force(),
            &Patch::Apply(applied(2)),
        )
        .await
        .unwrap();
    assert_eq!(o.data["spec"]["size"], 2);
    let a_entry = o
        .metadata
        .managed_fields
        .unwrap()
        .into_iter()
        .find(|m| m.manager.as_deref() == Some("a"));
    if let Some(a) = a_entry {
        let fields = serde_json::to_string(&a.fields_v1).unwrap();
        assert!(!fields.contains("f:size"), "{fields}");
    }
}

#[tokio::test]
async fn apply_same_value_shares_ownership() {
    let (server, _) = setup().await;
    let api = widgets(&server).await;
    api.patch("w1", &PatchParams::apply("a"), &Patch::Apply(applied(1)))
        .await
        .unwrap();
    let o = api
        .patch("w1", &PatchParams::apply("b"), &Patch::Apply(applied(1)))
        .await
        .unwrap();
    let m = managers(&o);
    assert!(
        m.contains(&("a".into(), "Apply".into())) && m.contains(&("b".into(), "Apply".into())),
        "{m:?}"
    );
}

#[tokio::test]
async fn apply_omitting_field_removes_it() {
    let (server, _) = setup().await;
    let api = widgets(&server).await;
    let mut first = applied(1);
    first["spec"]["label"] = json!("abc");
    api.patch("w1", &PatchParams::apply("a"), &Patch::Apply(first))
        .await
        .unwrap();
    let o = api
        .patch("w1", &PatchParams::apply("a"), &Patch::Apply(applied(1)))
        .await
        .unwrap();
    assert!(o.data["spec"].get("label").is_none(), "{:?}", o.data);
}

#[tokio::test]
async fn update_operations_record_managed_fields_and_never_conflict() {
    let (server, _) = setup().await;
    let api = widgets(&server).await;
    api.patch("w1", &PatchParams::apply("a"), &Patch::Apply(applied(1)))
        .await
        .unwrap();
    let o = api
        .patch(
            "w1",
            &PatchParams {
                field_manager: Some("upd".into()),
                ..Default::default()
            },
            &Patch::Merge(json!({"spec":{"size":5}})),
        )
        .await
        .unwrap();
    assert_eq!(o.data["spec"]["size"], 5);
    assert!(
        managers(&o).contains(&("upd".into(), "Update".into())),
        "{:?}",
        managers(&o)
    );
}

#[tokio::test]
async fn apply_on_status_records_subresource_and_cannot_change_spec() {
    let (server, _) = setup().await;
    let api = widgets(&server).await;
    api.create(&PostParams::default(), &widget("w1", 1))
        .await
        .unwrap();
    let body = json!({"apiVersion":"example.com/v1","kind":"Widget","metadata":{"name":"w1"},"spec":{"size":50},"status":{"phase":"Ready"}});
    let o = api
        .patch_status(
            "w1",
            &PatchParams::apply("ctl").force(),
            &Patch::Apply(body),
        )
        .await
        .unwrap();
    assert_eq!(o.data["status"]["phase"], "Ready");
    assert_eq!(o.data["spec"]["size"], 1);
    let entry = o
        .metadata
        .managed_fields
        .unwrap()
        .into_iter()
        .find(|m| m.manager.as_deref() == Some("ctl"))
        .unwrap();
    assert_eq!(entry.subresource.as_deref(), Some("status"));
}

#[tokio::test]
async fn apply_with_managed_fields_is_400() {
    let (server, _) = setup().await;
    let api = widgets(&server).await;
    let mut body = applied(1);
    body["metadata"]["managedFields"] = json!([{"manager":"x","operation":"Apply"}]);
    let e = api_err(
        api.patch("w1", &PatchParams::apply("a"), &Patch::Apply(body))
            .await
            .unwrap_err(),
    );
    assert_eq!(e.code, 400);
}
