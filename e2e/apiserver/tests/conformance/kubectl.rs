//! (K) behaviours through the pinned kubectl 1.33 binary, each test with its
//! own kubeconfig and cache dir.

use crate::common::*;
use castellan_apiserver::ApiServer;
use kube::api::{Patch, PatchParams, PostParams};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::Resource;
use serde_json::json;
use std::path::PathBuf;
use std::time::Duration;

mod explain;
mod protobuf;

struct Kubectl {
    bin: PathBuf,
    kubeconfig: PathBuf,
    dir: PathBuf,
}

impl Drop for Kubectl {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The versioned kubectl next to the dispatcher on PATH.
fn kubectl_133() -> PathBuf {
    let which = std::process::Command::new("sh")
        .args(["-c", "readlink -f \"$(command -v kubectl)\""])
        .output()
        .expect("sh");
    let dispatcher = PathBuf::from(String::from_utf8(which.stdout).unwrap().trim());
    let bin = dispatcher
        .parent()
        .expect("kubectl directory")
        .join("kubectl.1.33");
    assert!(
        bin.exists(),
        "kubectl.1.33 not found next to {}",
        dispatcher.display()
    );
    bin
}

fn kubectl(server: &ApiServer) -> Kubectl {
    let dir = std::env::temp_dir().join(format!(
        "castellan-kubectl-{}-{}",
        std::process::id(),
        server.addr().port()
    ));
    std::fs::create_dir_all(dir.join("cache")).unwrap();
    Kubectl {
        bin: kubectl_133(),
        kubeconfig: server.kubeconfig_path().to_path_buf(),
        dir,
    }
}

impl Kubectl {
    fn file(&self, name: &str, content: &str) -> String {
        let p = self.dir.join(name);
        std::fs::write(&p, content).unwrap();
        p.display().to_string()
    }
    fn command(&self, args: &[&str]) -> tokio::process::Command {
        let mut c = tokio::process::Command::new(&self.bin);
        c.env("KUBECONFIG", &self.kubeconfig)
            .env("KUBECACHEDIR", self.dir.join("cache"))
            .env("HOME", &self.dir)
            .arg("--cache-dir")
            .arg(self.dir.join("cache"))
            .args(args)
            .kill_on_drop(true);
        c
    }
    async fn run(&self, args: &[&str]) -> (bool, String, String) {
        let out = tokio::time::timeout(Duration::from_secs(60), self.command(args).output())
            .await
            .expect("kubectl timed out")
            .expect("kubectl runs");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }
    async fn ok(&self, args: &[&str]) -> String {
        let (ok, out, err) = self.run(args).await;
        assert!(ok, "kubectl {args:?} failed:\n{out}\n{err}");
        out
    }
}

fn yaml(v: &serde_json::Value) -> String {
    serde_yaml::to_string(v).unwrap()
}

fn cr(size: i64) -> serde_json::Value {
    json!({"apiVersion":"example.com/v1","kind":"Widget","metadata":{"name":"w1","namespace":"default"},"spec":{"size":size}})
}

#[tokio::test]
async fn kubectl_apply_crd_then_cr_with_default_validation() {
    let (server, _client) = setup().await;
    let k = kubectl(&server);
    let crd = k.file("crd.yaml", &yaml(&widget_crd()));
    k.ok(&["apply", "-f", &crd]).await;
    let f = k.file("cr.yaml", &yaml(&cr(3)));
    k.ok(&["apply", "-f", &f]).await;
    // Second apply with a change uses a merge patch.
    let f = k.file("cr2.yaml", &yaml(&cr(4)));
    k.ok(&["apply", "-f", &f]).await;
    let log = server.hooks().requests();
    assert!(
        log.iter().any(|r| r.verb == "create"
            && r.resource == "widgets"
            && r.query.contains("fieldValidation=Strict")),
        "{log:#?}"
    );
    assert!(log
        .iter()
        .any(|r| r.verb == "patch" && r.resource == "widgets" && r.code == 200));
    let out = k
        .ok(&["get", "widgets", "w1", "-o", "jsonpath={.spec.size}"])
        .await;
    assert_eq!(out, "4");
}

#[tokio::test]
async fn kubectl_apply_with_typo_fails_strict() {
    let (server, client) = setup().await;
    install(&client, widget_crd()).await;
    let k = kubectl(&server);
    let mut bad = cr(3);
    bad["spec"]["sise"] = json!(3);
    let f = k.file("typo.yaml", &yaml(&bad));
    let (ok, out, err) = k.run(&["apply", "-f", &f]).await;
    assert!(!ok, "{out}");
    assert!(
        err.contains("unknown field") && err.contains("sise"),
        "{err}"
    );
}

#[tokio::test]
async fn kubectl_client_side_then_server_side_apply_succeeds() {
    let (server, client) = setup().await;
    install(&client, widget_crd()).await;
    let k = kubectl(&server);
    let f = k.file("cr.yaml", &yaml(&cr(3)));
    k.ok(&["apply", "-f", &f]).await;
    let f = k.file("cr2.yaml", &yaml(&cr(5)));
    k.ok(&["apply", "--server-side", "-f", &f]).await;
    let out = k
        .ok(&["get", "widgets", "w1", "-o", "jsonpath={.spec.size}"])
        .await;
    assert_eq!(out, "5");
}

#[tokio::test]
async fn kubectl_get_prints_printer_columns_age_and_namespace() {
    let (server, client) = setup().await;
    let api = widgets(&client).await;
    api.create(&PostParams::default(), &widget("w1", 7))
        .await
        .unwrap();
    let k = kubectl(&server);
    let out = k.ok(&["get", "widgets"]).await;
    let mut lines = out.lines();
    let header: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(header, ["NAME", "SIZE", "MODE", "READY", "AGE"]);
    let row: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(&row[..3], ["w1", "7", "fast"]);
    assert!(row.last().unwrap().ends_with('s'), "{row:?}");
    let out = k.ok(&["get", "wd", "-A"]).await;
    assert!(out.starts_with("NAMESPACE"), "{out}");
    assert!(out.lines().nth(1).unwrap().starts_with("default"), "{out}");
}

#[tokio::test]
async fn kubectl_wait_respects_observed_generation() {
    let (server, client) = setup().await;
    let api = widgets(&client).await;
    api.create(&PostParams::default(), &widget("w1", 1))
        .await
        .unwrap();
    api.patch(
        "w1",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec":{"size":2}})),
    )
    .await
    .unwrap();
    let ready = |g: i64| {
        Patch::Merge(
            json!({"status":{"conditions":[{"type":"Ready","status":"True","observedGeneration":g}]}}),
        )
    };
    api.patch_status("w1", &PatchParams::default(), &ready(1))
        .await
        .unwrap();
    let k = kubectl(&server);
    let (ok, _, _) = k
        .run(&[
            "wait",
            "--for=condition=Ready",
            "widgets/w1",
            "--timeout=2s",
        ])
        .await;
    assert!(!ok, "generation 2 is not observed yet");
    api.patch_status("w1", &PatchParams::default(), &ready(2))
        .await
        .unwrap();
    k.ok(&[
        "wait",
        "--for=condition=Ready",
        "widgets/w1",
        "--timeout=10s",
    ])
    .await;
}

#[tokio::test]
async fn kubectl_delete_blocks_until_finalizer_removed() {
    let (server, client) = setup().await;
    let api = widgets(&client).await;
    let mut w = widget("w1", 1);
    w.metadata.finalizers = Some(vec!["example.com/f".into()]);
    api.create(&PostParams::default(), &w).await.unwrap();
    let k = kubectl(&server);
    let mut child = k
        .command(&["delete", "widgets", "w1", "--timeout=30s"])
        .spawn()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        child.try_wait().unwrap().is_none(),
        "kubectl delete returned while the finalizer is present"
    );
    api.patch(
        "w1",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata":{"finalizers":null}})),
    )
    .await
    .unwrap();
    let status = tokio::time::timeout(Duration::from_secs(20), child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success());
}

#[tokio::test]
async fn kubectl_describe_shows_recorder_events() {
    let (server, client) = setup().await;
    let api = widgets(&client).await;
    let w = api
        .create(&PostParams::default(), &widget("w1", 1))
        .await
        .unwrap();
    let recorder = Recorder::new(
        client.clone(),
        Reporter {
            controller: "castellan-test".into(),
            instance: None,
        },
    );
    recorder
        .publish(
            &Event {
                type_: EventType::Warning,
                reason: "Trouble".into(),
                note: Some("backend unreachable".into()),
                action: "Reconcile".into(),
                secondary: None,
            },
            &w.object_ref(&widget_ar()),
        )
        .await
        .unwrap();
    let k = kubectl(&server);
    let out = k.ok(&["describe", "widgets", "w1"]).await;
    assert!(
        out.contains("Trouble") && out.contains("backend unreachable"),
        "{out}"
    );
}
