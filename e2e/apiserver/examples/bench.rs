//! Benchmark: sustained writes/s with watchers attached, and listing 100k
//! small custom objects. Run with
//! `cargo run -p castellan-apiserver --release --example bench [N]`.

use castellan_apiserver::ApiServer;
use futures::{StreamExt, TryStreamExt};
use kube::api::{Api, DynamicObject, ListParams, PostParams, WatchEvent, WatchParams};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::json;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

fn crd() -> serde_json::Value {
    json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {"group": "example.com", "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
            "versions": [{"name": "v1", "served": true, "storage": true,
                "subresources": {"status": {}},
                "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                    "spec": {"type": "object", "properties": {"size": {"type": "integer"}, "mode": {"type": "string", "default": "fast"}}},
                    "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}}}]}
    })
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(100_000);
    let server = ApiServer::start_with(castellan_apiserver::ServerConfig {
        options: castellan_apiserver::Options {
            history_capacity: 200_000,
            ..Default::default()
        },
        ..Default::default()
    })
    .await?;
    let client = kube::Client::try_from(kube::Config::new(server.url().parse()?))?;
    let crds: Api<DynamicObject> = Api::all_with(
        client.clone(),
        &ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk("apiextensions.k8s.io", "v1", "CustomResourceDefinition"),
            "customresourcedefinitions",
        ),
    );
    crds.create(&PostParams::default(), &serde_json::from_value(crd())?)
        .await?;
    let ar = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("example.com", "v1", "Widget"),
        "widgets",
    );
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), "default", &ar);

    // Three watchers attached while writing.
    let seen = Arc::new(AtomicUsize::new(0));
    let rv = api
        .list(&ListParams::default().limit(1))
        .await?
        .metadata
        .resource_version
        .unwrap();
    for _ in 0..3 {
        let mut s = api
            .watch(&WatchParams::default().timeout(290), &rv)
            .await?
            .boxed();
        let seen = seen.clone();
        tokio::spawn(async move {
            while let Ok(Some(ev)) = s.try_next().await {
                if matches!(ev, WatchEvent::Added(_)) {
                    seen.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
    }

    let start = Instant::now();
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let api = api.clone();
        let next = next.clone();
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    break;
                }
                let o: DynamicObject = serde_json::from_value(json!({
                    "apiVersion": "example.com/v1", "kind": "Widget",
                    "metadata": {"name": format!("w{i:06}")}, "spec": {"size": i}
                }))
                .unwrap();
                api.create(&PostParams::default(), &o).await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await?;
    }
    let write_secs = start.elapsed().as_secs_f64();
    while seen.load(Ordering::Relaxed) < 3 * n && start.elapsed().as_secs() < 120 {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let deliver_secs = start.elapsed().as_secs_f64();
    println!(
        "writes: {n} creates in {write_secs:.2}s = {:.0} writes/s (16 concurrent clients, 3 watchers attached; all {} watch events delivered after {deliver_secs:.2}s)",
        n as f64 / write_secs,
        seen.load(Ordering::Relaxed)
    );

    // Where a one-request list spends its time: the server (building and encoding the list)
    // plus the transfer, then kube's decoding into DynamicObjects.
    let t = Instant::now();
    let req = http::Request::get("/apis/example.com/v1/namespaces/default/widgets")
        .header("accept", "application/json")
        .body(Vec::new())?;
    let text = client.request_text(req).await?;
    let server_secs = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let decoded: kube::core::ObjectList<DynamicObject> = serde_json::from_str(&text)?;
    println!(
        "list: {} objects in one request: server + transfer {server_secs:.2}s ({:.1} MB), decoding into DynamicObjects {:.2}s",
        decoded.items.len(),
        text.len() as f64 / 1e6,
        t.elapsed().as_secs_f64()
    );
    drop((text, decoded));

    let t = Instant::now();
    let all = api.list(&ListParams::default()).await?;
    println!(
        "list: {} objects in one request in {:.2}s",
        all.items.len(),
        t.elapsed().as_secs_f64()
    );
    let t = Instant::now();
    let mut count = 0;
    let mut lp = ListParams::default().limit(500);
    loop {
        let page = api.list(&lp).await?;
        count += page.items.len();
        match page.metadata.continue_ {
            Some(c) if !c.is_empty() => lp = lp.continue_token(&c),
            _ => break,
        }
    }
    println!(
        "list: {count} objects in pages of 500 in {:.2}s",
        t.elapsed().as_secs_f64()
    );
    let t = Instant::now();
    let meta = api.list_metadata(&ListParams::default()).await?;
    println!(
        "list: {} objects as PartialObjectMetadataList in {:.2}s",
        meta.items.len(),
        t.elapsed().as_secs_f64()
    );
    Ok(())
}
