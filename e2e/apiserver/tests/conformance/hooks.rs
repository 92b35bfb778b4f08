//! Test hooks: forced errors, request log, watch delay. These test the emulator's own
//! fault-injection and observation hooks, which a real apiserver has no counterpart of: they
//! are skipped there (tests elsewhere produce real 409s, 410s and restarts instead).

use crate::common::*;
use futures::{StreamExt, TryStreamExt};
use kube::api::{Patch, PatchParams, PostParams, WatchEvent, WatchParams};
use serde_json::json;
use std::time::{Duration, Instant};

#[tokio::test]
async fn forced_errors_hit_next_matching_requests_only() {
    if emulator_only(
        "forced_errors_hit_next_matching_requests_only",
        "tests the emulator's fault-injection hook itself",
    ) {
        return;
    }
    let (server, _) = setup().await;
    let hooks = server.hooks().unwrap();
    let api = widgets(&server).await;
    api.create(&PostParams::default(), &widget("w1", 1))
        .await
        .unwrap();
    hooks.fail_next("patch", "widgets", 2, 409);
    hooks.fail_next("get", "widgets", 1, 500);
    for _ in 0..2 {
        let e = api_err(
            api.patch(
                "w1",
                &PatchParams::default(),
                &Patch::Merge(json!({"spec":{"size":2}})),
            )
            .await
            .unwrap_err(),
        );
        assert_eq!(e.code, 409);
        assert_eq!(e.reason, "Conflict");
    }
    assert_eq!(api_err(api.get("w1").await.unwrap_err()).code, 500);
    // A status-only fault leaves the main endpoint alone.
    hooks.fail_next("patch", "widgets/status", 1, 500);
    api.patch(
        "w1",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec":{"size":3}})),
    )
    .await
    .unwrap();
    let e = api_err(
        api.patch_status(
            "w1",
            &PatchParams::default(),
            &Patch::Merge(json!({"status":{"phase":"x"}})),
        )
        .await
        .unwrap_err(),
    );
    assert_eq!(e.code, 500);
    hooks.fail_next("*", "*", 1, 429);
    // (kube-client retries 429 itself, so check it on the wire.)
    let r = raw(
        &server,
        "GET",
        &format!("{}/w1", server.widgets_path()),
        &[],
        "",
    )
    .await;
    assert_eq!(r.status, 429);
    assert_eq!(r.json()["reason"], "TooManyRequests");
    api.patch(
        "w1",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec":{"size":2}})),
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn request_log_counts_writes_per_resource() {
    if emulator_only(
        "request_log_counts_writes_per_resource",
        "tests the emulator's request log itself",
    ) {
        return;
    }
    let (server, _) = setup().await;
    let hooks = server.hooks().unwrap();
    let api = widgets(&server).await;
    hooks.clear_requests();
    api.create(&PostParams::default(), &widget("w1", 1))
        .await
        .unwrap();
    api.get("w1").await.unwrap();
    api.patch(
        "w1",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec":{"size":1}})),
    )
    .await
    .unwrap();
    assert_eq!(hooks.writes_to("widgets"), 2);
    assert_eq!(hooks.count("get", "widgets"), 1);
    let log = hooks.requests();
    let create = log.iter().find(|r| r.verb == "create").unwrap();
    assert_eq!(create.code, 201);
    assert_eq!(create.namespace, server.ns());
    assert_eq!(create.group, "example.com");
    assert_eq!(hooks.writes_to("configmaps"), 0);
}

#[tokio::test]
async fn watch_delivery_delay_is_applied() {
    if emulator_only(
        "watch_delivery_delay_is_applied",
        "tests the emulator's watch-delay hook itself",
    ) {
        return;
    }
    let (server, _) = setup().await;
    let hooks = server.hooks().unwrap();
    let api = widgets(&server).await;
    let a = api
        .create(&PostParams::default(), &widget("a", 1))
        .await
        .unwrap();
    hooks.set_watch_delay(Duration::from_millis(300), Duration::from_millis(50));
    let mut s = api
        .watch(&WatchParams::default().timeout(5), &rv(&a))
        .await
        .unwrap()
        .boxed();
    let t = Instant::now();
    api.create(&PostParams::default(), &widget("b", 1))
        .await
        .unwrap();
    match s.try_next().await.unwrap().unwrap() {
        WatchEvent::Added(o) => assert_eq!(o.metadata.name.as_deref(), Some("b")),
        other => panic!("{other:?}"),
    }
    assert!(t.elapsed() >= Duration::from_millis(300));
}
