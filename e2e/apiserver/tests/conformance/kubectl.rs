//! (K) behaviours through the pinned kubectl 1.33 binary (also against the real 1.37
//! apiserver: the version skew only shows in `kubectl version`), each test with its own
//! kubeconfig (its namespace as the context's) and cache dir. What kubectl sent is read from its
//! own `-v=6` log, on either server.

use crate::common::*;
use kube::api::{Patch, PatchParams, PostParams};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::Resource;
use serde_json::json;
use std::path::PathBuf;
use tokio::io::AsyncBufReadExt;

mod explain;
mod protobuf;

pub(crate) struct Kubectl {
    bin: PathBuf,
    kubeconfig: PathBuf,
    pub(crate) dir: PathBuf,
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

pub(crate) fn kubectl(server: &Server) -> Kubectl {
    let dir = server.dir().join("kubectl");
    std::fs::create_dir_all(dir.join("cache")).unwrap();
    Kubectl {
        bin: kubectl_133(),
        kubeconfig: server.kubeconfig_for_kubectl(),
        dir,
    }
}

/// One request as kubectl logs it at `-v=6`.
#[derive(Debug)]
pub(crate) struct Logged {
    pub verb: String,
    /// The URL's path.
    pub path: String,
    pub query: String,
    pub code: u16,
}

/// The requests in kubectl's log: at `-v=6` one line each,
/// `"Response" verb="POST" url="https://…/path?query" status="201 Created" milliseconds=5`; from
/// `-v=7` on, `"Request" verb=… url=… headers=<…>` and then `"Response" status=… headers=<…>`.
pub(crate) fn logged_requests(log: &str) -> Vec<Logged> {
    let field = |line: &str, key: &str| -> Option<String> {
        let start = line.find(&format!("{key}=\""))? + key.len() + 2;
        let len = line[start..].find('"')?;
        Some(line[start..start + len].to_string())
    };
    let mut requested: Option<(String, String)> = None;
    let mut logged = Vec::new();
    for l in log.lines() {
        if l.contains("\"Request\"") {
            requested = field(l, "verb").zip(field(l, "url"));
            continue;
        }
        if !l.contains("\"Response\"") {
            continue;
        }
        let Some((verb, url)) = field(l, "verb").zip(field(l, "url")).or(requested.take()) else {
            continue;
        };
        let Some(code) = field(l, "status").and_then(|s| s.split(' ').next()?.parse().ok()) else {
            continue;
        };
        let after_host = url.split_once("://").map(|(_, r)| r).unwrap_or(&url);
        let path_query = &after_host[after_host.find('/').unwrap_or(after_host.len())..];
        let (path, query) = path_query.split_once('?').unwrap_or((path_query, ""));
        logged.push(Logged {
            verb,
            path: path.to_string(),
            query: query.to_string(),
            code,
        });
    }
    logged
}

impl Kubectl {
    pub(crate) fn file(&self, name: &str, content: &str) -> String {
        let p = self.dir.join(name);
        std::fs::write(&p, content).unwrap();
        p.display().to_string()
    }
    pub(crate) fn command(&self, args: &[&str]) -> tokio::process::Command {
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
    pub(crate) async fn run(&self, args: &[&str]) -> (bool, String, String) {
        let out = self.command(args).output().await.expect("kubectl runs");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }
    pub(crate) async fn ok(&self, args: &[&str]) -> String {
        let (ok, out, err) = self.run(args).await;
        assert!(ok, "kubectl {args:?} failed:\n{out}\n{err}");
        out
    }
    /// Runs with `-v=6`, must succeed; its stdout and the requests it made.
    pub(crate) async fn ok_logged(&self, args: &[&str]) -> (String, Vec<Logged>) {
        // First: after a `--` it would be the container command's.
        let args = [&["-v=6"], args].concat();
        let (ok, out, err) = self.run(&args).await;
        assert!(ok, "kubectl {args:?} failed:\n{out}\n{err}");
        (out, logged_requests(&err))
    }
}

fn yaml(v: &serde_json::Value) -> String {
    serde_yaml::to_string(v).unwrap()
}

fn cr(group: &str, size: i64) -> serde_json::Value {
    json!({"apiVersion":format!("{group}/v1"),"kind":"Widget","metadata":{"name":"w1"},"spec":{"size":size}})
}

#[tokio::test]
async fn kubectl_apply_crd_then_cr_with_default_validation() {
    let (server, _client) = setup().await;
    // The CRD is applied here: one of this test's own.
    let group = server.group();
    server.delete_at_end(format!(
        "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/widgets.{group}"
    ));
    let k = kubectl(&server);
    let crd = k.file("crd.yaml", &yaml(&widget_crd_in(&group)));
    k.ok(&["apply", "-f", &crd]).await;
    // What a script does on any cluster before using a new CRD (the emulator establishes it at
    // once, kube-apiserver moments later).
    k.ok(&["wait", "--for=condition=Established", "-f", &crd])
        .await;
    let f = k.file("cr.yaml", &yaml(&cr(&group, 3)));
    let (_, first) = k.ok_logged(&["apply", "-f", &f]).await;
    // Second apply with a change uses a merge patch.
    let f = k.file("cr2.yaml", &yaml(&cr(&group, 4)));
    let (_, second) = k.ok_logged(&["apply", "-f", &f]).await;
    assert!(
        first.iter().any(|r| r.verb == "POST"
            && r.path.ends_with("/widgets")
            && r.code == 201
            && r.query.contains("fieldValidation=Strict")),
        "{first:#?}"
    );
    assert!(
        second
            .iter()
            .any(|r| r.verb == "PATCH" && r.path.ends_with("/widgets/w1") && r.code == 200),
        "{second:#?}"
    );
    let out = k
        .ok(&[
            "get",
            &format!("widgets.{group}"),
            "w1",
            "-o",
            "jsonpath={.spec.size}",
        ])
        .await;
    assert_eq!(out, "4");
}

#[tokio::test]
async fn kubectl_apply_with_typo_fails_strict() {
    let (server, _client) = setup().await;
    install(&server, widget_crd()).await;
    let k = kubectl(&server);
    let mut bad = cr(GROUP, 3);
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
    let (server, _client) = setup().await;
    install(&server, widget_crd()).await;
    let k = kubectl(&server);
    let f = k.file("cr.yaml", &yaml(&cr(GROUP, 3)));
    k.ok(&["apply", "-f", &f]).await;
    let f = k.file("cr2.yaml", &yaml(&cr(GROUP, 5)));
    k.ok(&["apply", "--server-side", "-f", &f]).await;
    let out = k
        .ok(&[
            "get",
            "widgets.example.com",
            "w1",
            "-o",
            "jsonpath={.spec.size}",
        ])
        .await;
    assert_eq!(out, "5");
}

#[tokio::test]
async fn kubectl_get_prints_printer_columns_age_and_namespace() {
    let (server, _client) = setup().await;
    let api = widgets(&server).await;
    api.create(&PostParams::default(), &widget("w1", 7))
        .await
        .unwrap();
    let k = kubectl(&server);
    let out = k.ok(&["get", "widgets.example.com"]).await;
    let mut lines = out.lines();
    let header: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(header, ["NAME", "SIZE", "MODE", "READY", "AGE"]);
    let row: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(&row[..3], ["w1", "7", "fast"]);
    assert!(row.last().unwrap().ends_with('s'), "{row:?}");
    // The short name, across namespaces (on a shared server, other tests' widgets too).
    let out = k.ok(&["get", "wd", "-A"]).await;
    assert!(out.starts_with("NAMESPACE"), "{out}");
    assert!(
        out.lines()
            .any(|l| l.split_whitespace().take(2).eq([server.ns(), "w1"])),
        "{out}"
    );
}

#[tokio::test]
async fn kubectl_wait_respects_observed_generation() {
    let (server, _client) = setup().await;
    let api = widgets(&server).await;
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
            "widgets.example.com/w1",
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
        "widgets.example.com/w1",
        "--timeout=10s",
    ])
    .await;
}

#[tokio::test]
async fn kubectl_delete_blocks_until_finalizer_removed() {
    let (server, _client) = setup().await;
    let api = widgets(&server).await;
    let mut w = widget("w1", 1);
    w.metadata.finalizers = Some(vec!["example.com/f".into()]);
    api.create(&PostParams::default(), &w).await.unwrap();
    let k = kubectl(&server);
    let mut child = k
        .command(&["delete", "widgets.example.com", "w1", "-v=6"])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Read kubectl's log until, after its DELETE was answered, it made its next request: it is
    // then waiting for the object to go.
    let mut log = tokio::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let mut deleted = false;
    let mut seen = String::new();
    loop {
        let line = log
            .next_line()
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("kubectl's log ended:\n{seen}"));
        seen.push_str(&line);
        seen.push('\n');
        if let Some(r) = logged_requests(&line).pop() {
            if deleted {
                break;
            }
            deleted = r.verb == "DELETE";
        }
    }
    let drain = tokio::spawn(async move { while let Ok(Some(_)) = log.next_line().await {} });
    assert!(
        api.get("w1")
            .await
            .unwrap()
            .metadata
            .deletion_timestamp
            .is_some(),
        "{seen}"
    );
    assert!(
        child.try_wait().unwrap().is_none(),
        "kubectl delete returned while the finalizer is present:\n{seen}"
    );
    api.patch(
        "w1",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata":{"finalizers":null}})),
    )
    .await
    .unwrap();
    let status = child.wait().await.unwrap();
    drain.await.unwrap();
    assert!(status.success());
}

#[tokio::test]
async fn kubectl_describe_shows_recorder_events() {
    let (server, client) = setup().await;
    let api = widgets(&server).await;
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
    let out = k.ok(&["describe", "widgets.example.com", "w1"]).await;
    assert!(
        out.contains("Trouble") && out.contains("backend unreachable"),
        "{out}"
    );
}
