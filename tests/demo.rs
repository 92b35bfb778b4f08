//! `castellan demo` end to end: the library entry point (real emulated API server, real S3 over
//! loopback, the real operator) and the built binary, plain output, `--keep` explored from
//! outside with a kube client and `castellan get`.

#![cfg(feature = "demo")]

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use castellan::api::condition;
use castellan::api::reasons::{backend_condition, backend_reason, mapping_reason};
use castellan::api::ArtifactMapping;
use castellan::demo::{self, DemoOptions};
use kube::api::{Api, ListParams};
use kube::ResourceExt;

/// The rows of the table printed under `$ <command>`, split on runs of spaces (no cell of the
/// demo's tables contains two spaces in a row).
fn printed_table(output: &str, command: &str) -> Vec<Vec<String>> {
    let mut lines = output
        .lines()
        .skip_while(|l| l.trim() != format!("$ {command}"))
        .skip(1);
    let mut rows = Vec::new();
    for line in lines.by_ref() {
        if line.trim().is_empty() || line.starts_with('…') {
            break;
        }
        rows.push(
            line.split("  ")
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .map(str::to_string)
                .collect(),
        );
    }
    rows
}

fn ready(
    conditions: &[k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition],
) -> (String, String) {
    condition::find(conditions, backend_condition::READY)
        .map(|c| (c.status.clone(), c.reason.clone()))
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_story_moves_every_mapping_to_backend_b_after_verifying_it() {
    let started = Instant::now();
    let mut out = Vec::new();
    // A directory of the test's own, so that the operator log survives a failure.
    let dir = tempfile::tempdir().unwrap();
    let result = demo::run(
        DemoOptions {
            artifacts: 5,
            size: 64 * 1024,
            data_dir: Some(dir.path().to_path_buf()),
            ..DemoOptions::default()
        },
        &mut out,
        std::future::ready(()),
    )
    .await;
    let output = String::from_utf8(out).unwrap();
    let summary = result.unwrap_or_else(|err| {
        let log = std::fs::read_to_string(dir.path().join("operator.log")).unwrap_or_default();
        panic!("the demo failed: {err:#}\n{output}\noperator log:\n{log}")
    });
    eprintln!("{output}\n(demo test: {:?})", started.elapsed());

    // Every mapping moved to backend-b, once, after its digest re-verified there.
    assert_eq!(summary.mappings.len(), 5);
    assert_eq!(summary.reassigned, 5);
    for m in &summary.mappings {
        let status = m.status.as_ref().expect("status");
        assert_eq!(
            status.backend.as_deref(),
            Some("backend-b"),
            "{}",
            m.name_any()
        );
        assert_eq!(
            ready(&status.conditions),
            (
                "True".to_string(),
                mapping_reason::DIGEST_VERIFIED.to_string()
            )
        );
        assert_eq!(
            status.history.len(),
            1,
            "{}: {:?}",
            m.name_any(),
            status.history
        );
        assert_eq!(status.history[0].from.as_deref(), Some("backend-a"));
        assert_eq!(status.history[0].to, "backend-b");
        assert_eq!(status.history[0].reason, mapping_reason::DIGEST_VERIFIED);
        assert_eq!(
            m.spec.backend_ref.name, "backend-a",
            "provenance is never rewritten"
        );
    }
    assert_eq!(summary.history_entries, 5);
    assert_eq!(summary.unverified_served, 0);
    assert!(summary.verified_bytes >= 5 * 64 * 1024, "{summary:?}");
    assert_eq!(summary.digest_mismatches, 0);
    assert!(summary.revoke_to_invalid <= summary.revoke_to_reassigned);

    // backend-a is invalid for the revoked key, and stalled; backend-b is Ready.
    let backend = |name: &str| {
        summary
            .backends
            .iter()
            .find(|b| b.name_any() == name)
            .unwrap()
    };
    let a = backend("backend-a").status.clone().unwrap();
    assert_eq!(
        ready(&a.conditions),
        (
            "False".to_string(),
            backend_reason::INVALID_ACCESS_KEY_ID.to_string()
        )
    );
    assert!(condition::is_true(
        &a.conditions,
        backend_condition::STALLED
    ));
    let b = backend("backend-b").status.clone().unwrap();
    assert_eq!(ready(&b.conditions).0, "True");

    // One Normal DigestVerified event per move.
    let moved = summary
        .events
        .iter()
        .find(|(type_, reason, _)| type_ == "Normal" && reason == mapping_reason::DIGEST_VERIFIED)
        .map(|e| e.2);
    assert_eq!(moved, Some(5), "{:?}", summary.events);
    assert!(summary
        .api_writes
        .get("artifactmappings/status")
        .is_some_and(|n| *n >= 5));

    // The download after the rotation came from backend-b and matched the upload.
    let download = summary.download.as_ref().expect("a download");
    assert_eq!(download.backend, "backend-b");
    assert_eq!(download.bytes, 64 * 1024);
    assert!(download.identical);

    // The printed tables say what the API says.
    let sbe = printed_table(&output, "kubectl get sbe -n demo");
    assert_eq!(
        sbe[0][..8],
        ["NAME", "BUCKET", "DEFAULT", "TRUST", "READY", "REASON", "SERVING", "STRANDED"]
    );
    assert_eq!(sbe.len(), 3, "{sbe:?}");
    for row in &sbe[1..] {
        let b = backend(&row[0]);
        let status = b.status.as_ref().unwrap();
        let (ready, reason) = ready(&status.conditions);
        let counts = status.mappings.unwrap();
        let serving_now = summary
            .mappings
            .iter()
            .filter(|m| {
                m.status.as_ref().and_then(|s| s.backend.as_deref()) == Some(row[0].as_str())
            })
            .count();
        assert_eq!(row[2], b.spec.default.to_string());
        assert_eq!(
            (row[4].as_str(), row[5].as_str()),
            (ready.as_str(), reason.as_str())
        );
        assert_eq!(row[6], counts.serving.to_string());
        assert_eq!(
            row[6],
            serving_now.to_string(),
            "SERVING matches the mappings"
        );
        assert_eq!(row[7], "0");
    }
    let am = printed_table(&output, "kubectl get am -n demo");
    assert_eq!(
        am[0],
        ["NAME", "DIGEST", "DECLARED", "SERVING", "READY", "REASON", "AGE"]
    );
    assert_eq!(am.len(), 6, "{am:?}");
    for row in &am[1..] {
        assert_eq!(
            &row[2..6],
            ["backend-a", "backend-b", "True", "DigestVerified"]
        );
        let m: &ArtifactMapping = summary
            .mappings
            .iter()
            .find(|m| {
                Some(row[1].as_str()) == m.status.as_ref().and_then(|s| s.short_digest.as_deref())
            })
            .expect("the row's digest is a mapping's");
        assert!(m.name_any().starts_with(row[0].trim_end_matches('…')));
    }
    assert!(output.contains("5/5 mappings on backend-b"), "{output}");
}

fn operator_log_dir(output: &str) -> PathBuf {
    let line = output
        .lines()
        .find(|l| l.contains("logs to "))
        .expect("the output names the operator log");
    let path = PathBuf::from(line.rsplit("logs to ").next().unwrap().trim());
    path.parent().unwrap().to_path_buf()
}

#[test]
fn the_binary_plays_the_story_and_the_restore_with_plain_output_and_cleans_up() {
    let output = Command::new(env!("CARGO_BIN_EXE_castellan"))
        .args(["demo", "--artifacts", "3", "--size", "16KiB", "--restore"])
        .output()
        .expect("run castellan demo");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "exit {:?}\n{stdout}\n{stderr}",
        output.status
    );
    assert!(
        !stdout.contains('\x1b'),
        "no escape codes when piped:\n{stdout}"
    );
    let sbe = printed_table(&stdout, "kubectl get sbe -n demo");
    assert_eq!(sbe.len(), 3, "{stdout}");
    let am = printed_table(&stdout, "kubectl get am -n demo");
    assert_eq!(am.len(), 4, "{stdout}");
    assert!(stdout.contains("3/3 mappings on backend-b"), "{stdout}");
    // --restore: backend-a comes back only after successThreshold good probes, then the
    // mappings return to it.
    let restored = stdout
        .split("the old key is restored")
        .nth(1)
        .expect("step 7 is played");
    assert!(
        restored.contains("backend-a Ready=True (Validated)"),
        "{stdout}"
    );
    assert!(
        restored.contains("3/3 mappings Ready=True (Declared), served by backend-a again"),
        "{stdout}"
    );
    assert!(stdout.contains("returned home"), "{stdout}");
    let dir = operator_log_dir(&stdout);
    assert!(!dir.exists(), "{} is removed at exit", dir.display());
}

/// Reads stdout lines of `child` until one contains `needle`; returns everything read.
fn read_until(reader: &mut impl BufRead, needle: &str, timeout: Duration) -> String {
    let deadline = Instant::now() + timeout;
    let mut text = String::new();
    while Instant::now() < deadline {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap() == 0 {
            break;
        }
        text.push_str(&line);
        if line.contains(needle) {
            return text;
        }
    }
    panic!("'{needle}' not printed:\n{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keep_stays_up_for_kubectl_and_castellan_get_until_sigterm() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_castellan"))
        .args(["demo", "--artifacts", "2", "--size", "4KiB", "--keep"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start castellan demo --keep");
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let text = tokio::task::block_in_place(|| {
        read_until(&mut stdout, "-n demo -o ", Duration::from_secs(120))
    });
    let kubeconfig = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("export KUBECONFIG="))
        .expect("the KUBECONFIG to use is printed")
        .to_string();
    let get_line = text.lines().last().unwrap();
    let digest = get_line.split_whitespace().nth(2).unwrap().to_string();

    // The cluster is there, as printed.
    let client = castellan::cluster::client_from_kubeconfig(std::path::Path::new(&kubeconfig))
        .await
        .unwrap();
    let mappings = Api::<ArtifactMapping>::namespaced(client, "demo")
        .list(&ListParams::default())
        .await
        .unwrap()
        .items;
    assert_eq!(mappings.len(), 2);
    assert!(mappings
        .iter()
        .all(|m| m.status.as_ref().and_then(|s| s.backend.as_deref()) == Some("backend-b")));
    assert!(mappings.iter().any(|m| m.spec.digest == digest), "{digest}");

    // The printed `castellan get` works from another process: the S3 server is up and the
    // Secrets hold working keys.
    let dest = tempfile::tempdir().unwrap();
    let target = dest.path().join("artifact");
    let get = Command::new(env!("CARGO_BIN_EXE_castellan"))
        .env("KUBECONFIG", &kubeconfig)
        .args(["get", &digest, "-n", "demo", "-o"])
        .arg(&target)
        .output()
        .unwrap();
    assert!(
        get.status.success(),
        "castellan get: {}\n{}",
        String::from_utf8_lossy(&get.stdout),
        String::from_utf8_lossy(&get.stderr)
    );
    assert_eq!(std::fs::metadata(&target).unwrap().len(), 4096);

    // SIGTERM stops everything cleanly and removes the demo's directory.
    let dir = operator_log_dir(&text);
    assert!(dir.exists());
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = tokio::task::block_in_place(|| child.wait()).unwrap();
    assert!(status.success(), "exit after SIGTERM: {status:?}");
    assert!(!dir.exists(), "{} is removed at exit", dir.display());
}
