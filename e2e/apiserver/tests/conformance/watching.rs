//! Watch semantics, selectors, paging, metadata-only responses.

use crate::common::*;
use futures::{StreamExt, TryStreamExt};
use kube::api::{
    Api, DynamicObject, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams,
};
use kube::runtime::watcher::{self, watcher, Event};
use serde_json::json;
use std::time::Duration;

#[tokio::test]
async fn watch_from_list_rv_gets_exactly_later_changes_in_order() {
    let (server, _) = setup().await;
    let api = widgets(&server).await;
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
    let (server, _) = setup().await;
    let api = widgets(&server).await;
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
            &format!("{}?watch=true&timeoutSeconds=1{q}", server.widgets_path()),
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
    let (server, _) = setup_exclusive().await;
    let api = widgets(&server).await;
    let a = api
        .create(&PostParams::default(), &widget("a", 1))
        .await
        .unwrap();
    api.create(&PostParams::default(), &widget("b", 1))
        .await
        .unwrap();
    server.compact().await;
    let r = raw(
        &server,
        "GET",
        &format!(
            "{}?watch=true&resourceVersion={}",
            server.widgets_path(),
            rv(&a)
        ),
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
    let (server, _) = setup_exclusive().await;
    let api = widgets(&server).await;
    api.create(&PostParams::default(), &widget("a", 1))
        .await
        .unwrap();
    let mut stream = watcher(api.clone(), watcher::Config::default()).boxed();
    let mut inits = 0;
    let mut init_done = 0;
    let mut dropped = false;
    while init_done < 2 {
        let ev = stream.next().await.unwrap();
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
                    server.compact_and_drop_watches().await;
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
    let (server, _) = setup().await;
    let api = widgets(&server).await;
    let list_rv = api
        .list(&ListParams::default())
        .await
        .unwrap()
        .metadata
        .resource_version
        .unwrap();
    let start = std::time::Instant::now();
    let r = raw(
        &server,
        "GET",
        &format!(
            "{}?watch=true&timeoutSeconds=1&resourceVersion={list_rv}",
            server.widgets_path()
        ),
        &[],
        "",
    )
    .await;
    assert_eq!(r.status, 200);
    assert!(start.elapsed() < Duration::from_secs(5));
    let cfg = watcher::Config::default().timeout(1);
    let mut stream = watcher(api.clone(), cfg).boxed();
    let mut inits = 0;
    loop {
        match stream.try_next().await.unwrap().unwrap() {
            Event::Init => inits += 1,
            Event::InitDone => break,
            _ => {}
        }
    }
    // Well past two watch timeouts, changes still arrive, each as an Apply: the watcher
    // re-watched from its resourceVersion, without listing again (no second Init).
    let t0 = std::time::Instant::now();
    let mut n = 0;
    while t0.elapsed() < Duration::from_millis(2500) {
        tokio::time::sleep(Duration::from_millis(300)).await; // let watches time out
        n += 1;
        let name = format!("n{n}");
        api.create(&PostParams::default(), &widget(&name, 1))
            .await
            .unwrap();
        loop {
            match stream.try_next().await.unwrap().unwrap() {
                Event::Init => inits += 1,
                Event::Apply(o) if o.metadata.name.as_deref() == Some(name.as_str()) => break,
                _ => {}
            }
        }
    }
    assert_eq!(inits, 1);
    if let Some(hooks) = server.hooks() {
        assert!(hooks.count("watch", "widgets") >= 2);
    }
}

#[tokio::test]
async fn bookmarks_carry_only_resource_version_of_requested_kind() {
    let (server, _) = setup().await;
    let api = widgets(&server).await;
    let list_rv = api
        .list(&ListParams::default())
        .await
        .unwrap()
        .metadata
        .resource_version
        .unwrap();
    // kube-apiserver sends a watch's bookmark 2 s before its timeout at the latest (none when the
    // timeout is shorter); the emulator just before it.
    let r = raw(
        &server,
        "GET",
        &format!(
            "{}?watch=true&timeoutSeconds=5&allowWatchBookmarks=true&resourceVersion={list_rv}",
            server.widgets_path()
        ),
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
    let (server, _) = setup().await;
    let api = widgets(&server).await;
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
    let (server, _) = setup().await;
    let api = widgets(&server).await;
    let a = api
        .create(&PostParams::default(), &widget("a", 1))
        .await
        .unwrap();
    // Not older than the create: with resourceVersion=0 ("any") kube-apiserver may answer
    // from a watch cache that has not seen it yet (the emulator is never behind).
    let r = raw(
        &server,
        "GET",
        &format!("{}?&watch=true&timeoutSeconds=1&allowWatchBookmarks=true&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&resourceVersion={}", server.widgets_path(), rv(&a)),
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
        &format!(
            "{}?watch=true&sendInitialEvents=true&allowWatchBookmarks=true",
            server.widgets_path()
        ),
        &[],
        "",
    )
    .await;
    assert_eq!(r.status, 422);
    // kube's streaming-list watcher initialises.
    let mut stream = watcher(api.clone(), watcher::Config::default().streaming_lists()).boxed();
    loop {
        if let Event::InitDone = stream.try_next().await.unwrap().unwrap() {
            break;
        }
    }
}

#[tokio::test]
async fn field_selector_metadata_name_on_list_and_watch() {
    let (server, _) = setup().await;
    let api = widgets(&server).await;
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
        &format!(
            "{}?watch=1&timeoutSeconds=1&fieldSelector=metadata.name%3D%3Dx",
            server.widgets_path()
        ),
        &[],
        "",
    )
    .await;
    assert_eq!(r.lines().len(), 1);
}

#[tokio::test]
async fn unsupported_field_selector_is_400() {
    let (server, _) = setup().await;
    let api = widgets(&server).await;
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
async fn limit_paging_shares_one_rv_and_bad_token_is_400_old_token_410() {
    let (server, _) = setup_exclusive().await;
    let api = widgets(&server).await;
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
    // A token that does not decode is a bad request; one too old for the store is 410 (below).
    let e = api_err(
        api.list(&ListParams::default().limit(1).continue_token("garbage"))
            .await
            .unwrap_err(),
    );
    assert_eq!((e.code, e.reason.as_str()), (400, "BadRequest"));
    assert!(
        e.message
            .starts_with("invalid continue token: continue key is not valid: "),
        "{}",
        e.message
    );
    server.compact().await;
    let e = api_err(
        api.list(&ListParams::default().limit(1).continue_token(&tok))
            .await
            .unwrap_err(),
    );
    assert_eq!(e.code, 410);
}

#[tokio::test]
async fn metadata_only_list_and_watch() {
    let (server, _) = setup().await;
    let api = widgets(&server).await;
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
    let (server, client) = setup().await;
    let here = widgets(&server).await;
    // A second namespace of this test's own; the label tells this test's widgets from those of
    // tests running beside it on a shared server.
    let second = format!("{}-b", server.ns());
    server.delete_at_end(format!("/api/v1/namespaces/{second}"));
    server.unfinalize_at_end(format!("/apis/example.com/v1/namespaces/{second}/widgets"));
    let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client.clone());
    namespaces
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": second}})).unwrap(),
        )
        .await
        .unwrap();
    let other: Api<DynamicObject> = Api::namespaced_with(client.clone(), &second, &widget_ar());
    let labelled = |name: &str| {
        let mut w = widget(name, 1);
        w.metadata.labels = Some([("test".to_string(), server.ns().to_string())].into());
        w
    };
    here.create(&PostParams::default(), &labelled("a"))
        .await
        .unwrap();
    other
        .create(&PostParams::default(), &labelled("a"))
        .await
        .unwrap();
    let all: Api<DynamicObject> = Api::all_with(client.clone(), &widget_ar());
    let list = all
        .list(&ListParams::default().labels(&format!("test={}", server.ns())))
        .await
        .unwrap();
    let mut found: Vec<_> = list
        .items
        .iter()
        .map(|o| o.metadata.namespace.clone().unwrap())
        .collect();
    found.sort();
    assert_eq!(found, [server.ns().to_string(), second]);
}
