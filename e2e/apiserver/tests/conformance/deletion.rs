//! Deletion, finalizers, the kube finalizer() helper, cascades.

use crate::common::*;

use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams, PostParams, Preconditions};
use kube::runtime::finalizer::{finalizer, Event as FinalizerEvent};
use serde_json::json;
use std::sync::Arc;

async fn wait_gone(api: &Api<DynamicObject>, name: &str) {
    wait_until(|| async { api.get_opt(name).await.unwrap().is_none() }).await;
}

#[tokio::test]
async fn delete_without_finalizers_returns_status_and_delete_rv_event() {
    let (server, _) = setup().await;
    let api = widgets(&server).await;
    let a = api
        .create(&PostParams::default(), &widget("w1", 1))
        .await
        .unwrap();
    let res = api.delete("w1", &DeleteParams::default()).await.unwrap();
    let status = res.right().expect("a Status for immediate deletion");
    assert_eq!(
        status.status,
        Some(kube::core::response::StatusSummary::Success)
    );
    let details = status.details.unwrap();
    assert_eq!(details.name, "w1");
    assert_eq!(details.kind, "widgets");
    assert!(api.get_opt("w1").await.unwrap().is_none());
    let r = raw(
        &server,
        "GET",
        &format!(
            "{}?watch=1&resourceVersion={}&timeoutSeconds=1",
            server.widgets_path(),
            rv(&a)
        ),
        &[],
        "",
    )
    .await;
    let ev = &r.lines()[0];
    assert_eq!(ev["type"], "DELETED");
    // The event carries the deletion's own (new) resourceVersion.
    let number = |v: &str| v.parse::<u64>().unwrap();
    let deleted_at = number(
        ev["object"]["metadata"]["resourceVersion"]
            .as_str()
            .unwrap(),
    );
    assert!(deleted_at > number(&rv(&a)), "{ev}");
    if let Some(hooks) = server.hooks() {
        assert_eq!(deleted_at, hooks.current_resource_version());
    }
}

#[tokio::test]
async fn delete_with_finalizers_marks_and_bumps_generation() {
    let (server, _) = setup().await;
    let api = widgets(&server).await;
    let mut w = widget("w1", 1);
    w.metadata.finalizers = Some(vec!["example.com/f".into()]);
    let a = api.create(&PostParams::default(), &w).await.unwrap();
    let obj = api
        .delete("w1", &DeleteParams::default())
        .await
        .unwrap()
        .left()
        .expect("the object");
    assert!(obj.metadata.deletion_timestamp.is_some());
    assert_eq!(obj.metadata.deletion_grace_period_seconds, Some(0));
    assert_eq!(obj.metadata.generation, Some(2));
    assert!(api.get_opt("w1").await.unwrap().is_some());
    let r = raw(
        &server,
        "GET",
        &format!(
            "{}?watch=1&resourceVersion={}&timeoutSeconds=1",
            server.widgets_path(),
            rv(&a)
        ),
        &[],
        "",
    )
    .await;
    assert_eq!(r.lines()[0]["type"], "MODIFIED");
    // A repeated delete changes nothing.
    let again = api
        .delete("w1", &DeleteParams::default())
        .await
        .unwrap()
        .left()
        .unwrap();
    assert_eq!(rv(&again), rv(&obj));
}

#[tokio::test]
async fn removing_last_finalizer_deletes() {
    let (server, _) = setup().await;
    let api = widgets(&server).await;
    let mut w = widget("w1", 1);
    w.metadata.finalizers = Some(vec!["example.com/f".into()]);
    api.create(&PostParams::default(), &w).await.unwrap();
    api.delete("w1", &DeleteParams::default()).await.unwrap();
    api.patch(
        "w1",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata":{"finalizers":null}})),
    )
    .await
    .unwrap();
    assert!(api.get_opt("w1").await.unwrap().is_none());
}

#[tokio::test]
async fn no_new_finalizers_while_deleting() {
    let (server, _) = setup().await;
    let api = widgets(&server).await;
    let mut w = widget("w1", 1);
    w.metadata.finalizers = Some(vec!["example.com/f".into()]);
    api.create(&PostParams::default(), &w).await.unwrap();
    api.delete("w1", &DeleteParams::default()).await.unwrap();
    let e = api_err(
        api.patch(
            "w1",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata":{"finalizers":["example.com/f","example.com/g"]}})),
        )
        .await
        .unwrap_err(),
    );
    assert_eq!(e.code, 422);
    assert!(
        e.message
            .contains("no new finalizers can be added if the object is being deleted"),
        "{}",
        e.message
    );
}

#[tokio::test]
async fn deletion_timestamp_cannot_be_changed_by_update() {
    let (server, _) = setup().await;
    let api = widgets(&server).await;
    let a = api
        .create(&PostParams::default(), &widget("w1", 1))
        .await
        .unwrap();
    let e = api_err(
        api.patch(
            "w1",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata":{"deletionTimestamp":"2020-01-01T00:00:00Z"}})),
        )
        .await
        .unwrap_err(),
    );
    assert_eq!(e.code, 422);
    assert_eq!(
        e.message,
        "Widget.example.com \"w1\" is invalid: metadata.deletionTimestamp: Invalid value: \
         \"2020-01-01T00:00:00Z\": field is immutable"
    );
    // A custom resource's metadata is validated twice (the update's common fields, then the
    // CR strategy): the cause comes twice, the message (Go's aggregate) names it once.
    let causes = e.details.unwrap().causes;
    assert_eq!(causes.len(), 2, "{causes:?}");
    assert!(causes
        .iter()
        .all(|c| c.field == "metadata.deletionTimestamp" && c.reason == "FieldValueInvalid"));
    let o = api.get("w1").await.unwrap();
    assert!(o.metadata.deletion_timestamp.is_none());
    assert_eq!(rv(&a), rv(&o));
}

#[tokio::test]
async fn kube_finalizer_helper_adds_first_finalizer_and_cleans_up() {
    let (server, _) = setup().await;
    let api = widgets(&server).await;
    api.create(&PostParams::default(), &widget("w1", 1))
        .await
        .unwrap();
    let obj = Arc::new(api.get("w1").await.unwrap());
    let r = finalizer(&api, "example.com/cleanup", obj, |ev| async move {
        match ev {
            FinalizerEvent::Apply(_) => {
                Ok::<_, kube::Error>(kube::runtime::controller::Action::await_change())
            }
            FinalizerEvent::Cleanup(_) => Ok(kube::runtime::controller::Action::await_change()),
        }
    })
    .await;
    assert!(r.is_ok(), "{r:?}");
    let o = api.get("w1").await.unwrap();
    assert_eq!(
        o.metadata.finalizers,
        Some(vec!["example.com/cleanup".to_string()])
    );
    api.delete("w1", &DeleteParams::default()).await.unwrap();
    let obj = Arc::new(api.get("w1").await.unwrap());
    let r = finalizer(&api, "example.com/cleanup", obj, |ev| async move {
        match ev {
            FinalizerEvent::Apply(_) => {
                Ok::<_, kube::Error>(kube::runtime::controller::Action::await_change())
            }
            FinalizerEvent::Cleanup(_) => Ok(kube::runtime::controller::Action::await_change()),
        }
    })
    .await;
    assert!(r.is_ok(), "{r:?}");
    assert!(api.get_opt("w1").await.unwrap().is_none());
}

#[tokio::test]
async fn failed_json_patch_test_is_422_and_object_unchanged() {
    let (server, _) = setup().await;
    let api = widgets(&server).await;
    let a = api
        .create(&PostParams::default(), &widget("w1", 1))
        .await
        .unwrap();
    let r = raw(
        &server,
        "PATCH",
        &format!("{}/w1?", server.widgets_path()),
        &[("Content-Type", "application/json-patch+json")],
        r#"[{"op":"test","path":"/spec/size","value":7},{"op":"replace","path":"/spec/size","value":8}]"#,
    )
    .await;
    assert_eq!(r.status, 422, "{}", r.body);
    assert_eq!(r.json()["kind"], "Status");
    assert_eq!(rv(&api.get("w1").await.unwrap()), rv(&a));
}

#[tokio::test]
async fn delete_preconditions_mismatch_is_409() {
    let (server, _) = setup().await;
    let api = widgets(&server).await;
    let w = api
        .create(&PostParams::default(), &widget("w1", 1))
        .await
        .unwrap();
    let uid = w.metadata.uid.unwrap();
    let dp = DeleteParams {
        preconditions: Some(Preconditions {
            uid: Some("not-it".into()),
            resource_version: None,
        }),
        ..Default::default()
    };
    let e = api_err(api.delete("w1", &dp).await.unwrap_err());
    assert_eq!(e.code, 409);
    assert_eq!(e.reason, "Conflict");
    // The kind, not the resource, as registry.Store words a failed precondition.
    assert_eq!(
        e.message,
        format!(
            "Operation cannot be fulfilled on Widget.example.com \"w1\": the UID in the \
             precondition (not-it) does not match the UID in record ({uid}). The object might \
             have been deleted and then recreated"
        )
    );
    let details = e.details.unwrap();
    assert_eq!(
        (details.kind.as_str(), details.group.as_str()),
        ("Widget", GROUP)
    );
}

#[tokio::test]
async fn deleting_crd_deletes_its_crs_after_their_finalizers() {
    let (server, client) = setup().await;
    // A CRD of this test's own.
    let group = server.group();
    let crd_name = format!("widgets.{group}");
    install(&server, widget_crd_in(&group)).await;
    let api: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), server.ns(), &widget_ar_in(&group));
    let widget = |name: &str, size: i64| widget_in(&group, name, size);
    let mut w = widget("w1", 1);
    w.metadata.finalizers = Some(vec!["example.com/f".into()]);
    api.create(&PostParams::default(), &w).await.unwrap();
    api.create(&PostParams::default(), &widget("w2", 1))
        .await
        .unwrap();
    crd_api(&client)
        .delete(&crd_name, &DeleteParams::default())
        .await
        .unwrap();
    wait_gone(&api, "w2").await;
    // w1 is marked for deletion and held by its finalizer, and so is the CRD.
    wait_until(|| async {
        api.get("w1")
            .await
            .unwrap()
            .metadata
            .deletion_timestamp
            .is_some()
    })
    .await;
    assert!(crd_api(&client).get_opt(&crd_name).await.unwrap().is_some());
    api.patch(
        "w1",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata":{"finalizers":null}})),
    )
    .await
    .unwrap();
    wait_until(|| async { crd_api(&client).get_opt(&crd_name).await.unwrap().is_none() }).await;
}

#[tokio::test]
async fn deleting_owner_deletes_dependents_in_background() {
    let (server, _) = setup().await;
    let api = widgets(&server).await;
    let owner = api
        .create(&PostParams::default(), &widget("owner", 1))
        .await
        .unwrap();
    let mut child = widget("child", 1);
    child.metadata.owner_references = Some(vec![serde_json::from_value(json!({
        "apiVersion":"example.com/v1","kind":"Widget","name":"owner","uid": owner.metadata.uid.clone().unwrap()
    }))
    .unwrap()]);
    api.create(&PostParams::default(), &child).await.unwrap();
    api.delete("owner", &DeleteParams::background())
        .await
        .unwrap();
    wait_gone(&api, "child").await;
}

#[tokio::test]
async fn namespace_deletion_empties_it_then_removes_it() {
    let (server, client) = setup().await;
    use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
    let nss: Api<Namespace> = Api::all(client.clone());
    let tmp = format!("{}-tmp", server.ns());
    server.delete_at_end(format!("/api/v1/namespaces/{tmp}"));
    nss.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata":{"name":tmp}})).unwrap(),
    )
    .await
    .unwrap();
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), &tmp);
    cms.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata":{"name":"c"}})).unwrap(),
    )
    .await
    .unwrap();
    let ns = nss
        .delete(&tmp, &DeleteParams::default())
        .await
        .unwrap()
        .left()
        .unwrap();
    assert_eq!(ns.status.unwrap().phase.as_deref(), Some("Terminating"));
    wait_until(|| async { nss.get_opt(&tmp).await.unwrap().is_none() }).await;
    assert!(cms.get_opt("c").await.unwrap().is_none());
}

#[tokio::test]
async fn delete_collection_with_label_selector() {
    let (server, _) = setup().await;
    let api = widgets(&server).await;
    let mut a = widget("a", 1);
    a.metadata.labels = Some([("x".to_string(), "1".to_string())].into());
    api.create(&PostParams::default(), &a).await.unwrap();
    api.create(&PostParams::default(), &widget("b", 1))
        .await
        .unwrap();
    let lp = kube::api::ListParams::default().labels("x=1");
    api.delete_collection(&DeleteParams::default(), &lp)
        .await
        .unwrap();
    assert!(api.get_opt("a").await.unwrap().is_none());
    assert!(api.get_opt("b").await.unwrap().is_some());
}
