//! Watch semantics, selectors, paging, metadata-only responses.

use crate::common::*;
use futures::{StreamExt, TryStreamExt};
use kube::api::{
    Api, DynamicObject, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams,
};
use kube::runtime::watcher::{self, watcher, Event};
use serde_json::json;
use std::time::Duration;

const W: &str = "/apis/example.com/v1/namespaces/default/widgets";

#[tokio::test]
async fn watch_from_list_rv_gets_exactly_later_changes_in_order() {
    let (_s, client) = setup().await;
    let api = widgets(&client).await;
    api.create(&PostParams::default(), &widget("a", 1))
        .await
        .unwrap();
    let list = api.list(&ListParams::default()).await.unwrap();
    let lrv = list.metadata.resource_version.clone().unwrap();
    let mut stream = api
        .watch(&WatchParams::default().timeout(5), &lrv)
        .await
        .unwrap()
        .boxed();
    api.create(&PostParams::default(), &widget("b", 1))
        .await
        .unwrap();
    api.patch(
        "a",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec":{"size":2}})),
    )
    .await
    .unwrap();
    api.delete("b", &Default::default()).await.unwrap();
    let mut seen = vec![];
    while seen.len() < 3 {
        match stream.try_next().await.unwrap().unwrap() {
            WatchEvent::Added(o) => seen.push(format!("ADDED {}", o.metadata.name.unwrap())),
            WatchEvent::Modified(o) => seen.push(format!("MODIFIED {}", o.metadata.name.unwrap())),
            WatchEvent::Deleted(o) => seen.push(format!("DELETED {}", o.metadata.name.unwrap())),
            WatchEvent::Bookmark(_) => {}
            WatchEvent::Error(e) => panic!("{e:?}"),
        }
    }
    assert_eq!(seen, ["ADDED b", "MODIFIED a", "DELETED b"]);
}

#[tokio::test]
async fn watch_without_rv_or_rv_0_starts_with_synthetic_added() {
    let (server, client) = setup().await;
    let api = widgets(&client).await;
    api.create(&PostParams::default(), &widget("a", 1))
        .await
        .unwrap();
    api.create(&PostParams::default(), &widget("b", 1))
        .await
        .unwrap();
    for q in ["", "&resourceVersion=0"] {
        let r = raw(
            &server,
            "GET",
            &format!("{W}?watch=true&timeoutSeconds=1{q}"),
            &[],
            "",
        )
        .await;
        let lines = r.lines();
        assert_eq!(lines.len(), 2, "{}", r.body);
        assert!(lines.iter().all(|l| l["type"] == "ADDED"));
    }
}

#[tokio::test]
async fn watch_from_compacted_rv_gets_in_stream_410() {
    let (server, client) = setup().await;
    let api = widgets(&client).await;
    let a = api
        .create(&PostParams::default(), &widget("a", 1))
        .await
        .unwrap();
    api.create(&PostParams::default(), &widget("b", 1))
        .await
        .unwrap();
    server.hooks().compact();
    let r = raw(
        &server,
        "GET",
        &format!("{W}?watch=true&resourceVersion={}", rv(&a)),
        &[],
        "",
    )
    .await;
    assert_eq!(r.status, 200);
    let lines = r.lines();
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["type"], "ERROR");
    assert_eq!(lines[0]["object"]["code"], 410);
    assert_eq!(lines[0]["object"]["reason"], "Expired");
}

#[tokio::test]
async fn kube_watcher_relists_after_forced_410() {
    let (server, client) = setup().await;
    let api = widgets(&client).await;
    api.create(&PostParams::default(), &widget("a", 1))
        .await
        .unwrap();
    let mut stream = watcher(api.clone(), watcher::Config::default()).boxed();
    let mut inits = 0;
    let mut init_done = 0;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let mut dropped = false;
    while init_done < 2 {
        let ev = tokio::time::timeout_at(deadline, stream.next())
            .await
            .expect("timed out")
            .unwrap();
        match ev {
            Ok(Event::Init) => inits += 1,
            Ok(Event::InitDone) => {
                init_done += 1;
                if !dropped {
                    dropped = true;
                    // Make history too short for the watcher's RV, then cut its stream.
                    api.create(&PostParams::default(), &widget("b", 1))
                        .await
                        .unwrap();
                    server.hooks().compact();
                    server.hooks().drop_watches();
                }
            }
            Ok(_) => {}
            Err(_) => {}
        }
    }
    assert_eq!(inits, 2);
}

#[tokio::test]
async fn stream_closes_at_timeout_and_watcher_rewatches_without_relist() {
    let (server, client) = setup().await;
    let api = widgets(&client).await;
    let start = std::time::Instant::now();
    let r = raw(
        &server,
        "GET",
        &format!("{W}?watch=true&timeoutSeconds=1&resourceVersion=1"),
        &[],
        "",
    )
    .await;
    assert_eq!(r.status, 200);
    assert!(start.elapsed() < Duration::from_secs(5));
    let cfg = watcher::Config::default().timeout(1);
    let mut stream = watcher(api.clone(), cfg).boxed();
    let mut inits = 0;
    let t0 = tokio::time::Instant::now();
    while t0.elapsed() < Duration::from_millis(2500) {
        if let Ok(Some(Ok(Event::Init))) =
            tokio::time::timeout(Duration::from_millis(200), stream.next()).await
        {
            inits += 1;
        }
    }
    assert_eq!(inits, 1);
    assert!(server.hooks().count("watch", "widgets") >= 2);
}

#[tokio::test]
async fn bookmarks_carry_only_resource_version_of_requested_kind() {
    let (server, client) = setup().await;
    let _ = widgets(&client).await;
    let r = raw(
        &server,
        "GET",
        &format!("{W}?watch=true&timeoutSeconds=1&allowWatchBookmarks=true&resourceVersion=1"),
        &[],
        "",
    )
    .await;
    let lines = r.lines();
    let bm = lines
        .iter()
        .find(|l| l["type"] == "BOOKMARK")
        .expect("a bookmark before timeout");
    assert_eq!(bm["object"]["kind"], "Widget");
    assert_eq!(bm["object"]["apiVersion"], "example.com/v1");
    assert_eq!(bm["object"]["metadata"].as_object().unwrap().len(), 1);
    assert!(bm["object"].get("spec").is_none());
}

#[tokio::test]
async fn label_selector_transitions_are_added_and_deleted() {
    let (_s, client) = setup().await;
    let api = widgets(&client).await;
    let mut a = widget("a", 1);
    a.metadata.labels = Some([("app".to_string(), "x".to_string())].into());
    let a = api.create(&PostParams::default(), &a).await.unwrap();
    let mut stream = api
        .watch(&WatchParams::default().labels("app=x").timeout(5), &rv(&a))
        .await
        .unwrap()
        .boxed();
    let off = api
        .patch(
            "a",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata":{"labels":{"app":"y"}}})),
        )
        .await
        .unwrap();
    api.patch(
        "a",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata":{"labels":{"app":"x"}}})),
    )
    .await
    .unwrap();
    match stream.try_next().await.unwrap().unwrap() {
        WatchEvent::Deleted(o) => {
            assert_eq!(
                o.metadata.labels.clone().unwrap()["app"],
                "x",
                "previous content"
            );
            assert_eq!(rv(&o), rv(&off), "new RV");
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        stream.try_next().await.unwrap().unwrap(),
        WatchEvent::Added(_)
    ));
}

#[tokio::test]
async fn streaming_list_sends_initial_events_end_bookmark() {
    let (server, client) = setup().await;
    let api = widgets(&client).await;
    api.create(&PostParams::default(), &widget("a", 1))
        .await
        .unwrap();
    let r = raw(
        &server,
        "GET",
        &format!("{W}?&watch=true&timeoutSeconds=1&allowWatchBookmarks=true&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&resourceVersion=0"),
        &[],
        "",
    )
    .await;
    let lines = r.lines();
    assert_eq!(lines[0]["type"], "ADDED");
    assert_eq!(lines[1]["type"], "BOOKMARK");
    assert_eq!(
        lines[1]["object"]["metadata"]["annotations"]["k8s.io/initial-events-end"],
        "true"
    );
    let r = raw(
        &server,
        "GET",
        &format!("{W}?watch=true&sendInitialEvents=true&allowWatchBookmarks=true"),
        &[],
        "",
    )
    .await;
    assert_eq!(r.status, 422);
    // kube's streaming-list watcher initialises.
    let mut stream = watcher(api.clone(), watcher::Config::default().streaming_lists()).boxed();
    let done = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(ev) = stream.next().await {
            if let Ok(Event::InitDone) = ev {
                return true;
            }
        }
        false
    })
    .await
    .unwrap();
    assert!(done);
}

#[tokio::test]
async fn field_selector_metadata_name_on_list_and_watch() {
    let (server, client) = setup().await;
    let api = widgets(&client).await;
    api.create(&PostParams::default(), &widget("x", 1))
        .await
        .unwrap();
    api.create(&PostParams::default(), &widget("y", 1))
        .await
        .unwrap();
    let l = api
        .list(&ListParams::default().fields("metadata.name=x"))
        .await
        .unwrap();
    assert_eq!(l.items.len(), 1);
    let l = api
        .list(&ListParams::default().fields("metadata.name!=x"))
        .await
        .unwrap();
    assert_eq!(l.items[0].metadata.name.as_deref(), Some("y"));
    let r = raw(
        &server,
        "GET",
        &format!("{W}?watch=1&timeoutSeconds=1&fieldSelector=metadata.name%3D%3Dx"),
        &[],
        "",
    )
    .await;
    assert_eq!(r.lines().len(), 1);
}

#[tokio::test]
async fn unsupported_field_selector_is_400() {
    let (_s, client) = setup().await;
    let api = widgets(&client).await;
    let e = api_err(
        api.list(&ListParams::default().fields("spec.size=1"))
            .await
            .unwrap_err(),
    );
    assert_eq!(e.code, 400);
    assert!(
        e.message.contains("field label not supported: spec.size"),
        "{}",
        e.message
    );
    let e = api_err(
        api.list(&ListParams::default().labels("a in (b"))
            .await
            .unwrap_err(),
    );
    assert_eq!(e.code, 400);
}

#[tokio::test]
async fn limit_paging_shares_one_rv_and_bad_token_is_410() {
    let (server, client) = setup().await;
    let api = widgets(&client).await;
    for n in ["a", "b", "c"] {
        api.create(&PostParams::default(), &widget(n, 1))
            .await
            .unwrap();
    }
    let p1 = api.list(&ListParams::default().limit(1)).await.unwrap();
    let tok = p1.metadata.continue_.clone().unwrap();
    // A change between pages does not show on later pages.
    api.patch(
        "b",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec":{"size":9}})),
    )
    .await
    .unwrap();
    let p2 = api
        .list(&ListParams::default().limit(1).continue_token(&tok))
        .await
        .unwrap();
    assert_eq!(p1.metadata.resource_version, p2.metadata.resource_version);
    assert_eq!(p2.items[0].data["spec"]["size"], 1);
    let e = api_err(
        api.list(&ListParams::default().limit(1).continue_token("garbage"))
            .await
            .unwrap_err(),
    );
    assert_eq!(e.code, 410);
    server.hooks().compact();
    let e = api_err(
        api.list(&ListParams::default().limit(1).continue_token(&tok))
            .await
            .unwrap_err(),
    );
    assert_eq!(e.code, 410);
}

#[tokio::test]
async fn metadata_only_list_and_watch() {
    let (_s, client) = setup().await;
    let api = widgets(&client).await;
    api.create(&PostParams::default(), &widget("a", 1))
        .await
        .unwrap();
    let l = api.list_metadata(&ListParams::default()).await.unwrap();
    assert_eq!(l.items.len(), 1);
    assert_eq!(
        l.items[0].types.as_ref().unwrap().kind,
        "PartialObjectMetadata"
    );
    let mut s = api
        .watch_metadata(&WatchParams::default().timeout(2), "0")
        .await
        .unwrap()
        .boxed();
    match s.try_next().await.unwrap().unwrap() {
        WatchEvent::Added(o) => assert_eq!(o.types.unwrap().kind, "PartialObjectMetadata"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn cluster_wide_list_spans_namespaces() {
    let (_s, client) = setup().await;
    let _ = widgets(&client).await;
    let other: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), "kube-system", &widget_ar());
    let mut w = widget("a", 1);
    w.metadata.namespace = Some("kube-system".into());
    other.create(&PostParams::default(), &w).await.unwrap();
    let all: Api<DynamicObject> = Api::all_with(client.clone(), &widget_ar());
    assert_eq!(
        all.list(&ListParams::default()).await.unwrap().items.len(),
        1
    );
}
