//! Test hooks: forced errors, request log, watch delay.

use crate::common::*;
use futures::{StreamExt, TryStreamExt};
use kube::api::{Patch, PatchParams, PostParams, WatchEvent, WatchParams};
use serde_json::json;
use std::time::{Duration, Instant};

#[tokio::test]
async fn forced_errors_hit_next_matching_requests_only() {
    let (server, client) = setup().await;
    let api = widgets(&client).await;
    api.create(&PostParams::default(), &widget("w1", 1))
        .await
        .unwrap();
    server.hooks().fail_next("patch", "widgets", 2, 409);
    server.hooks().fail_next("get", "widgets", 1, 500);
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
    server.hooks().fail_next("patch", "widgets/status", 1, 500);
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
    server.hooks().fail_next("*", "*", 1, 429);
    // (kube-client retries 429 itself, so check it on the wire.)
    let r = raw(
        &server,
        "GET",
        "/apis/example.com/v1/namespaces/default/widgets/w1",
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
    let (server, client) = setup().await;
    let api = widgets(&client).await;
    server.hooks().clear_requests();
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
    assert_eq!(server.hooks().writes_to("widgets"), 2);
    assert_eq!(server.hooks().count("get", "widgets"), 1);
    let log = server.hooks().requests();
    let create = log.iter().find(|r| r.verb == "create").unwrap();
    assert_eq!(create.code, 201);
    assert_eq!(create.namespace, "default");
    assert_eq!(create.group, "example.com");
    assert_eq!(server.hooks().writes_to("configmaps"), 0);
}

#[tokio::test]
async fn watch_delivery_delay_is_applied() {
    let (server, client) = setup().await;
    let api = widgets(&client).await;
    let a = api
        .create(&PostParams::default(), &widget("a", 1))
        .await
        .unwrap();
    server
        .hooks()
        .set_watch_delay(Duration::from_millis(300), Duration::from_millis(50));
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
