//! `castellan demo` end to end through the built binary: plain output, the restore, and
//! `--keep` explored from outside with a kube client and `castellan get`. (The story's own
//! assertions on what it returns live with the demo, in the binary's tests.)

#![cfg(feature = "demo")]

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use castellan::api::ArtifactMapping;
use kube::api::{Api, ListParams};

#[path = "../src/demo/printed_table.rs"]
mod printed_table;
use printed_table::printed_table;

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
