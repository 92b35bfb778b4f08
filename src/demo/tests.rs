//! The story played in-process, checked against what it returns: the real emulated API server,
//! real S3 over loopback and the real operator.

use std::time::Instant;

use castellan::api::condition;
use castellan::api::reasons::{backend_condition, BackendReason, MappingReason};
use castellan::api::ArtifactMapping;
use kube::ResourceExt;

use super::printed_table::printed_table;
use super::{run, DemoOptions};

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
    let result = run(
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
                MappingReason::DigestVerified.as_str().to_string()
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
        assert_eq!(
            status.history[0].reason,
            MappingReason::DigestVerified.as_str()
        );
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
            BackendReason::InvalidAccessKeyId.as_str().to_string()
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
        .find(|(type_, reason, _)| {
            type_ == "Normal" && reason == MappingReason::DigestVerified.as_str()
        })
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
