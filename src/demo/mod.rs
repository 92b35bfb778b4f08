//! `castellan demo`: the credential-rotation story played on one machine, with no cluster.
//!
//! It starts the emulated Kubernetes API server, an S3 server on loopback and the real operator
//! in-process ([`env`]), then plays the story ([`story`]): backend A with artifacts, backend B on
//! the same bucket with a new key made the default, A's key revoked. It shows what it observes
//! live ([`display`], from watches of the objects: [`observe`]) and ends with `kubectl get`-style
//! tables and a summary ([`report`], plus the operator's own metrics: [`scrape`]). Nothing is
//! scripted: every line comes from something read back from the servers.
//!
//! Lives in the binary, behind the default `demo` feature: the operator library and the image
//! (`--no-default-features`) carry none of it. Must not: reach into the operator's internals; it
//! drives the same public paths a user does.

pub mod display;
pub mod env;
pub mod observe;
#[cfg(test)]
mod printed_table;
pub mod report;
pub mod scrape;
pub mod story;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::future::Future;
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use castellan::api::{ArtifactMapping, StorageBackend};
use castellan::digest::Digest;
use display::{Console, Style};
use env::{EnvOptions, Environment};
use observe::Observer;

/// The namespace the demo plays in.
pub const NAMESPACE: &str = "demo";
/// The bucket both backends share.
pub const BUCKET: &str = "artifacts";

/// How to run the demo.
#[derive(Clone, Debug)]
pub struct DemoOptions {
    /// Artifacts to upload.
    pub artifacts: usize,
    /// Bytes per artifact.
    pub size: usize,
    /// After the story, restore the revoked key and watch the mappings return home.
    pub restore: bool,
    /// Stay up after the story until the `hold` future resolves.
    pub keep: bool,
    /// ANSI colours.
    pub color: bool,
    /// Draw a progress bar (the output is a terminal) rather than periodic lines.
    pub live: bool,
    /// Operator logs to stderr rather than a file in the demo's directory.
    pub verbose: bool,
    /// The API server's listen address (loopback).
    pub listen: SocketAddr,
    /// Keep the demo's files here (default: a temporary directory, removed at the end).
    pub data_dir: Option<PathBuf>,
}

impl Default for DemoOptions {
    fn default() -> Self {
        DemoOptions {
            artifacts: 200,
            size: 256 * 1024,
            restore: false,
            keep: false,
            color: false,
            live: false,
            verbose: false,
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            data_dir: None,
        }
    }
}

/// What happened, as read back from the servers at the end of the story.
#[derive(Clone, Debug)]
pub struct Summary {
    pub artifacts: usize,
    pub artifact_bytes: u64,
    /// Mappings served by backend-b with `Verified=True` at the end.
    pub reassigned: usize,
    /// Most mappings seen stranded at once.
    pub peak_stranded: usize,
    /// From the revoke until backend-a was seen `Ready=False`.
    pub revoke_to_invalid: Duration,
    /// From the revoke until every mapping was seen served by backend-b.
    pub revoke_to_reassigned: Duration,
    /// `status.history` entries over all mappings.
    pub history_entries: usize,
    /// Mappings served by a backend other than their declared one without `Verified=True`.
    pub unverified_served: usize,
    /// The operator's `castellan_verified_bytes_total`.
    pub verified_bytes: u64,
    /// The operator's `castellan_verifications_total{result="verified"}`.
    pub verifications: u64,
    /// The operator's `castellan_digest_mismatches_total`.
    pub digest_mismatches: u64,
    /// Events in the namespace: (type, reason, count).
    pub events: Vec<(String, String, usize)>,
    /// API writes from the revoke to the end, by `resource[/subresource]`, as the API server
    /// counted them.
    pub api_writes: BTreeMap<String, usize>,
    /// One uploaded artifact's digest.
    pub sample: Option<Digest>,
    /// That artifact downloaded after the rotation with `castellan get`'s code path.
    pub download: Option<Download>,
    /// With `restore`: from restoring the key until every mapping was back on backend-a.
    pub returned_home: Option<Duration>,
    /// The backends and mappings at the end (what the demo's tests check the story against).
    #[cfg_attr(not(test), allow(dead_code))]
    pub backends: Vec<StorageBackend>,
    #[cfg_attr(not(test), allow(dead_code))]
    pub mappings: Vec<ArtifactMapping>,
    /// The whole story (after the servers were up).
    pub total: Duration,
}

/// One artifact fetched after the rotation through [`castellan::transfer::get_to_path`].
#[derive(Clone, Debug)]
pub struct Download {
    pub digest: Digest,
    /// The backend whose bytes verified.
    pub backend: String,
    pub bytes: u64,
    /// The file's bytes are the uploaded bytes.
    pub identical: bool,
}

/// Runs the demo, printing to `out`. With `options.keep` it waits for `hold` (e.g. Ctrl-C)
/// after the story before shutting everything down.
pub async fn run<W: Write>(
    options: DemoOptions,
    out: W,
    hold: impl Future<Output = ()>,
) -> anyhow::Result<Summary> {
    let style = Style {
        color: options.color,
    };
    let mut console = Console::new(out, style, options.live);
    console
        .line(&style.bold("castellan demo: credential rotation against real servers on loopback"));
    let env = Environment::start(&EnvOptions {
        listen: options.listen,
        data_dir: options.data_dir.clone(),
        verbose: options.verbose,
        namespace: NAMESPACE.to_string(),
        buckets: vec![BUCKET.to_string()],
    })
    .await?;
    announce(&mut console, &env);
    let played = async {
        let observer = Observer::start(&env.client, NAMESPACE).await?;
        let mut story = story::Story::new(&env, observer, console, options.artifacts, options.size);
        story.restore_key = options.restore;
        let summary = story.play().await;
        Ok::<_, anyhow::Error>((summary, story.console))
    }
    .await;
    let (summary, mut console) = match played {
        Ok((Ok(summary), console)) => (summary, console),
        Ok((Err(err), mut console)) => {
            console.finish_progress();
            let log = log_hint(&env);
            let _ = env.shutdown().await;
            return Err(err.context(format!("the demo failed{log}")));
        }
        Err(err) => {
            let _ = env.shutdown().await;
            return Err(err);
        }
    };
    print_summary(&mut console, &summary);
    if options.keep {
        print_explore(&mut console, &env, &summary);
        hold.await;
        console.line("stopping the operator and the servers");
    }
    env.shutdown().await?;
    Ok(summary)
}

fn log_hint(env: &Environment) -> String {
    match &env.log_path {
        Some(p) if env.dir_is_temporary() => {
            format!(" (the operator log {} is removed on exit; rerun with --verbose or --data-dir to keep it)", p.display())
        }
        Some(p) => format!(" (operator log: {})", p.display()),
        None => String::new(),
    }
}

/// What is running where.
fn announce<W: Write>(console: &mut Console<W>, env: &Environment) {
    let s = console.style;
    console.event(&format!(
        "Kubernetes API server (emulated, in-process)   {}",
        s.cyan(env.api.url())
    ));
    console.event(&format!(
        "S3 server (s3s-fs, SigV4, in-process)          {}  bucket {BUCKET}",
        s.cyan(&env.s3.endpoint())
    ));
    console.event("CustomResourceDefinitions established          storagebackends.castellan.io, artifactmappings.castellan.io");
    let logs = match &env.log_path {
        Some(p) => format!("logs to {}", p.display()),
        None => "logs to stderr".to_string(),
    };
    console.event(&format!(
        "operator running in-process, namespace {NAMESPACE}    {}",
        s.dim(&logs)
    ));
}

/// The closing figures.
fn print_summary<W: Write>(console: &mut Console<W>, summary: &Summary) {
    let s = console.style;
    console.line("");
    console.line(&s.bold("summary"));
    let rows: Vec<(&str, String)> = vec![
        (
            "artifacts",
            format!(
                "{} ({}), uploaded to backend-a",
                summary.artifacts,
                report::bytes(summary.artifact_bytes)
            ),
        ),
        (
            "backend-a invalid",
            format!(
                "{} after the revoke",
                report::seconds(summary.revoke_to_invalid)
            ),
        ),
        (
            "all reassigned",
            format!(
                "{}/{} mappings on backend-b {} after the revoke (at most {} stranded at once)",
                summary.reassigned,
                summary.artifacts,
                report::seconds(summary.revoke_to_reassigned),
                summary.peak_stranded
            ),
        ),
        (
            "bytes verified",
            format!(
                "{} streamed through the digest, {} verifications, {} mismatches (operator metrics)",
                report::bytes(summary.verified_bytes),
                summary.verifications,
                summary.digest_mismatches
            ),
        ),
        (
            "history",
            format!("{} entries in status.history", summary.history_entries),
        ),
        ("events", events_line(&summary.events)),
        (
            "download",
            match &summary.download {
                Some(d) => format!(
                    "{} from {}: {} verified against the digest{}",
                    report::short_name(&d.digest.to_string(), 19),
                    d.backend,
                    report::bytes(d.bytes),
                    if d.identical {
                        ", identical to the upload"
                    } else {
                        ", DIFFERENT from the upload"
                    }
                ),
                None => "none".to_string(),
            },
        ),
        ("API writes", writes_line(&summary.api_writes)),
        (
            "unverified served",
            format!(
                "{} mappings served by another backend without Verified=True",
                summary.unverified_served
            ),
        ),
        ("total", report::seconds(summary.total)),
    ];
    let mut rows = rows;
    if let Some(home) = summary.returned_home {
        rows.insert(
            rows.len() - 1,
            (
                "returned home",
                format!(
                    "every mapping back on backend-a {} after the key was restored",
                    report::seconds(home)
                ),
            ),
        );
    }
    for (label, value) in rows {
        console.line(&format!("  {} {value}", s.dim(&format!("{label:<18}"))));
    }
}

/// `52: 50 Normal DigestVerified, 1 Warning InvalidAccessKeyId, ...`.
fn events_line(events: &[(String, String, usize)]) -> String {
    let total: usize = events.iter().map(|e| e.2).sum();
    let mut sorted = events.to_vec();
    sorted.sort_by(|a, b| b.2.cmp(&a.2).then_with(|| a.1.cmp(&b.1)));
    let parts: Vec<String> = sorted
        .iter()
        .map(|(type_, reason, count)| format!("{count} {type_} {reason}"))
        .collect();
    format!("{total}: {}", parts.join(", "))
}

/// `61 since the revoke: 50 artifactmappings/status, ...`.
fn writes_line(writes: &BTreeMap<String, usize>) -> String {
    let total: usize = writes.values().sum();
    let mut sorted: Vec<(&String, &usize)> = writes.iter().collect();
    sorted.sort_by(|a, b| b.1.cmp(a.1).then_with(|| a.0.cmp(b.0)));
    let parts: Vec<String> = sorted
        .iter()
        .map(|(resource, count)| format!("{count} {resource}"))
        .collect();
    format!(
        "{total} from the revoke to the result, counted by the API server: {}",
        parts.join(", ")
    )
}

/// With `--keep`: how to look around from another shell.
fn print_explore<W: Write>(console: &mut Console<W>, env: &Environment, summary: &Summary) {
    let s = console.style;
    console.line("");
    console.line(
        &s.bold("still running (--keep); from another shell (Ctrl-C here stops everything):"),
    );
    console.line(&format!(
        "  export KUBECONFIG={}",
        env.api.kubeconfig_path().display()
    ));
    console.line("  kubectl get sbe,am -n demo");
    console.line("  kubectl describe sbe backend-a -n demo");
    console.line("  kubectl get events -n demo");
    if let Some(digest) = &summary.sample {
        console.line(&format!(
            "  castellan get {digest} -n demo -o /tmp/artifact"
        ));
    }
    console.line(&format!(
        "  curl -s http://{}/metrics | grep castellan_",
        env.metrics_addr
    ));
}

#[cfg(test)]
mod summary_lines {
    use super::*;

    #[test]
    fn events_are_listed_most_frequent_first() {
        let events = vec![
            ("Warning".to_string(), "InvalidAccessKeyId".to_string(), 1),
            ("Normal".to_string(), "DigestVerified".to_string(), 50),
        ];
        assert_eq!(
            events_line(&events),
            "51: 50 Normal DigestVerified, 1 Warning InvalidAccessKeyId"
        );
    }

    #[test]
    fn writes_are_totalled_and_listed_most_frequent_first() {
        let writes = BTreeMap::from([
            ("events".to_string(), 51),
            ("artifactmappings/status".to_string(), 100),
        ]);
        assert_eq!(
            writes_line(&writes),
            "151 from the revoke to the result, counted by the API server: 100 artifactmappings/status, 51 events"
        );
    }
}
