//! Events: kube's Recorder (events.k8s.io/v1) and the core/v1 view.

use crate::common::*;
use k8s_openapi::api::core::v1::Event as CoreEvent;
use kube::api::{Api, ListParams, PostParams};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::Resource;
use serde_json::json;

#[tokio::test]
async fn recorder_events_are_readable_through_core_v1_with_involved_object_selectors() {
    let (server, client) = setup().await;
    let api = widgets(&server).await;
    let w = api
        .create(&PostParams::default(), &widget("w1", 1))
        .await
        .unwrap();
    let reporter = Reporter {
        controller: "castellan-test".into(),
        instance: Some("pod-1".into()),
    };
    let recorder = Recorder::new(client.clone(), reporter);
    let oref = w.object_ref(&widget_ar());
    let ev = Event {
        type_: EventType::Normal,
        reason: "Synced".into(),
        note: Some("all good".into()),
        action: "Reconcile".into(),
        secondary: None,
    };
    recorder.publish(&ev, &oref).await.unwrap();
    // A repeat is a merge patch with series.count=2.
    recorder.publish(&ev, &oref).await.unwrap();
    let core: Api<CoreEvent> = Api::namespaced(client.clone(), server.ns());
    let sel = format!(
        "involvedObject.name=w1,involvedObject.namespace={},involvedObject.kind=Widget,involvedObject.uid={}",
        server.ns(),
        w.metadata.uid.clone().unwrap()
    );
    let list = core
        .list(&ListParams::default().fields(&sel))
        .await
        .unwrap();
    assert_eq!(list.items.len(), 1);
    let e = &list.items[0];
    assert_eq!(e.message.as_deref(), Some("all good"));
    assert_eq!(e.reporting_component.as_deref(), Some("castellan-test"));
    assert_eq!(e.series.as_ref().unwrap().count, Some(2));
    let none = core
        .list(&ListParams::default().fields("involvedObject.name=other"))
        .await
        .unwrap();
    assert!(none.items.is_empty());
}

#[tokio::test]
async fn events_v1_validation() {
    let (server, _client) = setup().await;
    let base = json!({
        "apiVersion": "events.k8s.io/v1", "kind": "Event",
        "metadata": {"name": "e1", "namespace": server.ns()},
        "eventTime": "2026-01-01T00:00:00.000000Z",
        "type": "Normal", "reason": "R", "action": "A", "note": "n",
        "reportingController": "example.com/ctl", "reportingInstance": "i",
        "regarding": {"kind": "Widget", "name": "w1", "namespace": server.ns()}
    });
    let path = &format!("/apis/events.k8s.io/v1/namespaces/{}/events", server.ns());
    let mut bad = base.clone();
    bad["reportingController"] = json!("not a qualified name!");
    let r = raw(&server, "POST", path, &[JSON], &bad.to_string()).await;
    assert_eq!(r.status, 422, "{}", r.body);
    let mut bad = base.clone();
    bad["action"] = json!("x".repeat(129));
    let r = raw(&server, "POST", path, &[JSON], &bad.to_string()).await;
    assert_eq!(r.status, 422, "{}", r.body);
    let r = raw(&server, "POST", path, &[JSON], &base.to_string()).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let r = raw(
        &server,
        "PATCH",
        &format!("{path}/e1"),
        &[MERGE],
        r#"{"series":{"count":2,"lastObservedTime":"2026-01-01T00:01:00.000000Z"}}"#,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = raw(
        &server,
        "PATCH",
        &format!("{path}/e1"),
        &[MERGE],
        r#"{"note":"changed"}"#,
    )
    .await;
    assert_eq!(r.status, 422, "{}", r.body);
}
