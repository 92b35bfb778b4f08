//! Deletion, finalizers, the kube finalizer() helper, cascades.

use crate::common::*;

use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams, PostParams, Preconditions};
use kube::runtime::finalizer::{finalizer, Event as FinalizerEvent};
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

async fn wait_gone(api: &Api<DynamicObject>, name: &str) {
    for _ in 0..100 {
        if api.get_opt(name).await.unwrap().is_none() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{name} still exists");
}

#[tokio::test]
async fn delete_without_finalizers_returns_status_and_delete_rv_event() {
    let (server, client) = setup().await;
    let api = widgets(&client).await;
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
        &format!("/apis/example.com/v1/namespaces/default/widgets?watch=1&resourceVersion={}&timeoutSeconds=1", rv(&a)),
        &[],
        "",
    )
    .await;
    let ev = &r.lines()[0];
    assert_eq!(ev["type"], "DELETED");
    assert_eq!(
        ev["object"]["metadata"]["resourceVersion"],
        server.hooks().current_resource_version().to_string()
    );
}

#[tokio::test]
async fn delete_with_finalizers_marks_and_bumps_generation() {
    let (server, client) = setup().await;
    let api = widgets(&client).await;
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
        &format!("/apis/example.com/v1/namespaces/default/widgets?watch=1&resourceVersion={}&timeoutSeconds=1", rv(&a)),
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
    let (_s, client) = setup().await;
    let api = widgets(&client).await;
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
    let (_s, client) = setup().await;
    let api = widgets(&client).await;
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
    let (_s, client) = setup().await;
    let api = widgets(&client).await;
    let a = api
        .create(&PostParams::default(), &widget("w1", 1))
        .await
        .unwrap();
    let o = api
        .patch(
            "w1",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata":{"deletionTimestamp":"2020-01-01T00:00:00Z"}})),
        )
        .await
        .unwrap();
    assert!(o.metadata.deletion_timestamp.is_none());
    assert_eq!(rv(&a), rv(&o));
}

#[tokio::test]
async fn kube_finalizer_helper_adds_first_finalizer_and_cleans_up() {
    let (_s, client) = setup().await;
    let api = widgets(&client).await;
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
    let (server, client) = setup().await;
    let api = widgets(&client).await;
    let a = api
        .create(&PostParams::default(), &widget("w1", 1))
        .await
        .unwrap();
    let r = raw(
        &server,
        "PATCH",
        "/apis/example.com/v1/namespaces/default/widgets/w1?",
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
    let (_s, client) = setup().await;
    let api = widgets(&client).await;
    api.create(&PostParams::default(), &widget("w1", 1))
        .await
        .unwrap();
    let dp = DeleteParams {
        preconditions: Some(Preconditions {
            uid: Some("not-it".into()),
            resource_version: None,
        }),
        ..Default::default()
    };
    let e = api_err(api.delete("w1", &dp).await.unwrap_err());
    assert_eq!(e.code, 409);
    assert!(
        e.message
            .contains("Precondition failed: UID in precondition"),
        "{}",
        e.message
    );
}

#[tokio::test]
async fn deleting_crd_deletes_its_crs_after_their_finalizers() {
    let (_s, client) = setup().await;
    let api = widgets(&client).await;
    let mut w = widget("w1", 1);
    w.metadata.finalizers = Some(vec!["example.com/f".into()]);
    api.create(&PostParams::default(), &w).await.unwrap();
    api.create(&PostParams::default(), &widget("w2", 1))
        .await
        .unwrap();
    crd_api(&client)
        .delete("widgets.example.com", &DeleteParams::default())
        .await
        .unwrap();
    wait_gone(&api, "w2").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    // w1 is held by its finalizer, and so is the CRD.
    assert!(api
        .get("w1")
        .await
        .unwrap()
        .metadata
        .deletion_timestamp
        .is_some());
    assert!(crd_api(&client)
        .get_opt("widgets.example.com")
        .await
        .unwrap()
        .is_some());
    api.patch(
        "w1",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata":{"finalizers":null}})),
    )
    .await
    .unwrap();
    for _ in 0..100 {
        if crd_api(&client)
            .get_opt("widgets.example.com")
            .await
            .unwrap()
            .is_none()
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("CRD not deleted");
}

#[tokio::test]
async fn deleting_owner_deletes_dependents_in_background() {
    let (_s, client) = setup().await;
    let api = widgets(&client).await;
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
    let (_s, client) = setup().await;
    use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
    let nss: Api<Namespace> = Api::all(client.clone());
    nss.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata":{"name":"tmp"}})).unwrap(),
    )
    .await
    .unwrap();
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "tmp");
    cms.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata":{"name":"c"}})).unwrap(),
    )
    .await
    .unwrap();
    let ns = nss
        .delete("tmp", &DeleteParams::default())
        .await
        .unwrap()
        .left()
        .unwrap();
    assert_eq!(ns.status.unwrap().phase.as_deref(), Some("Terminating"));
    for _ in 0..100 {
        if nss.get_opt("tmp").await.unwrap().is_none() {
            assert!(cms.get_opt("c").await.unwrap().is_none());
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("namespace not removed");
}

#[tokio::test]
async fn delete_collection_with_label_selector() {
    let (_s, client) = setup().await;
    let api = widgets(&client).await;
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
