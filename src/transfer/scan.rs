//! The operator-side pass over one backend, run by hand (`castellan verify --backend`): list every
//! object under the backend's key prefix, verify each layout object against the digest its key
//! claims, count (and list, unverified) the objects outside the layout, and check that every
//! mapping declared on or served by the backend has its object. With `record`, the findings
//! become events; without it the pass only reads.
//!
//! Steps, observe → decide → act: [`observe`] (backend, mappings, listing) → [`expectations`] and
//! [`plan`] (pure: what to read, what is already missing) → [`verify_all`] (bounded concurrency,
//! one shared byte budget) → [`report`] (pure) → [`event_notes`] (pure) and [`record`].
//!
//! Owns: the scan's report (the JSON the CLI prints), its exit verdict ([`Outcome`]) and the event
//! reasons it publishes ([`SCRUB_CLEAN`], [`SCRUB_FINDINGS`], [`SCRUB_INCOMPLETE`], and the
//! mapping reasons of [`crate::api::reasons::MappingReason`]).
//!
//! Must not: write anything to a bucket or to an object's spec or status (events only, and only
//! when asked), print, or build keys itself ([`crate::storage::layout`] and
//! [`crate::placement::view::key_on`] do).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::core::v1::ObjectReference;
use kube::api::{Api, ListParams};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::{Client, Resource, ResourceExt};
use serde::Serialize;

use super::LOCAL_CREDENTIALS_HINT;
use crate::api::reasons::BackendReason;
use crate::api::{ArtifactMapping, StorageBackend};
use crate::digest::Digest;
use crate::placement::view::key_on;
use crate::resolve::{AmbientCredentials, Resolver};
use crate::storage::layout;
use crate::storage::verify::{read_verified, ByteBudget, ReadOptions, Sink, Verdict};
use crate::storage::{ListedObject, ObjectStore, StorageError};

/// Summary reason on the backend: every object verified, every mapping has its object.
pub const SCRUB_CLEAN: &str = "ScrubClean";
/// Summary reason on the backend: some object is corrupt, has another size, or is missing.
pub const SCRUB_FINDINGS: &str = "ScrubFindings";
/// Summary reason on the backend: nothing conclusive was found, but some reads did not finish
/// (refused, cut off): the pass is incomplete.
pub const SCRUB_INCOMPLETE: &str = "ScrubIncomplete";
/// The action of every event the pass publishes.
pub const SCRUB_ACTION: &str = "Scrub";
/// Who publishes the events (`reportingController`).
pub const REPORTING_CONTROLLER: &str = "castellan.io/verify";
/// Mappings per page when listing the namespace.
const LIST_PAGE: u32 = 500;
/// The events API's limit on a note.
const MAX_NOTE: usize = 1024;

/// How the pass runs.
#[derive(Clone)]
pub struct ScanOptions {
    /// Objects read at once (at least 1).
    pub concurrency: usize,
    /// Bytes per second for the whole pass; 0 is unlimited.
    pub bytes_per_second: u64,
    /// Whether a backend without a Secret may be read with the user's own AWS credentials.
    pub ambient: AmbientCredentials,
    /// Receives progress; `None` for none.
    pub progress: Option<Arc<dyn ScanProgress>>,
}

impl Default for ScanOptions {
    fn default() -> ScanOptions {
        ScanOptions {
            concurrency: 8,
            bytes_per_second: 0,
            ambient: AmbientCredentials::default(),
            progress: None,
        }
    }
}

/// Receives progress of a pass (from several tasks): `planned` once, then `advance` and
/// `object_done` any number of times, then `finished`.
pub trait ScanProgress: Send + Sync {
    /// `objects` will be read, `bytes` in all (as listed).
    fn planned(&self, objects: usize, bytes: u64);
    /// `bytes` more body bytes arrived.
    fn advance(&self, bytes: u64);
    /// One object's verdict is in.
    fn object_done(&self);
    /// The reads are over.
    fn finished(&self);
}

/// Why the pass could not run at all.
#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    /// A Kubernetes API call failed (unreachable, forbidden, ...).
    #[error("{action}: {source}")]
    Kube {
        action: String,
        #[source]
        source: kube::Error,
    },
    /// No StorageBackend of that name in the namespace.
    #[error("no StorageBackend {name} in namespace {namespace}")]
    BackendNotFound { name: String, namespace: String },
    /// The backend's client could not be built (Secret, spec, policy).
    #[error("backend {backend}: {reason}: {message}")]
    Resolve {
        backend: String,
        reason: &'static str,
        message: String,
    },
    /// Listing the bucket failed (classified by the storage layer).
    #[error("backend {backend}: listing {prefix:?} failed: {reason}: {message}")]
    List {
        backend: String,
        prefix: String,
        reason: &'static str,
        message: String,
    },
}

/// What the pass gathered before reading any body.
pub struct Observed {
    pub backend: StorageBackend,
    pub store: Arc<dyn ObjectStore>,
    /// The mappings declared on or served by the backend.
    pub mappings: Vec<ArtifactMapping>,
    /// Every object under the key prefix.
    pub listed: Vec<ListedObject>,
}

/// What the mappings expect under one key of the backend.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Expected {
    pub digest: Digest,
    pub size: Option<u64>,
    /// The mappings expecting it, sorted.
    pub mappings: Vec<String>,
}

/// One object to read and verify.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    pub key: String,
    pub digest: Digest,
    pub expected_size: Option<u64>,
    /// The listed size; `None` when the key was not listed (outside the prefix).
    pub listed_size: Option<u64>,
    pub mappings: Vec<String>,
}

/// An object outside the key layout: counted and listed, not verified.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct OutsideObject {
    pub key: String,
    pub size: u64,
}

/// What to do with the listing and the mappings' expectations.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// Objects to read, sorted by key.
    pub targets: Vec<Target>,
    /// Expected under the prefix but not listed: missing without a request.
    pub missing: Vec<Target>,
    /// Listed, outside the layout, expected by no mapping.
    pub outside: Vec<OutsideObject>,
}

/// How many objects ended how.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    /// Objects listed under the prefix.
    pub listed: usize,
    /// Mappings declared on or served by the backend.
    pub mappings: usize,
    pub verified: usize,
    /// The bytes hash to another digest.
    pub corrupt: usize,
    pub size_mismatch: usize,
    /// A mapping's object is not there.
    pub missing: usize,
    /// The body stopped or failed: nothing is known about the content.
    pub interrupted: usize,
    /// The GET was refused or failed before any body.
    pub failed: usize,
    pub outside_layout: usize,
}

/// One object that did not verify.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub key: String,
    pub digest: String,
    /// `DigestMismatch`, `SizeMismatch`, `ObjectMissing`, `Truncated`, or the backend reason of a
    /// read that failed.
    pub verdict: String,
    /// What exactly was seen.
    pub detail: String,
    /// Mappings declared on or served by the backend with this object.
    pub mappings: Vec<String>,
}

/// The result of a pass: `castellan verify --backend --output json` prints it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ScanReport {
    pub backend: String,
    pub namespace: String,
    pub bucket: String,
    pub prefix: String,
    pub outcome: Outcome,
    pub counts: Counts,
    /// Body bytes received.
    pub bytes: u64,
    pub elapsed_seconds: f64,
    /// Sorted by key.
    pub findings: Vec<Finding>,
    pub outside_layout: Vec<OutsideObject>,
}

/// The pass's verdict on the backend.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Outcome {
    /// Every object verified and every mapping has its object.
    Clean,
    /// Some object is corrupt, has another size, or is missing.
    Findings,
    /// Nothing conclusive was found, but some reads did not finish.
    Incomplete,
}

/// The mappings of `namespace` declared on or served by `backend`, sorted by name.
pub fn on_backend(mappings: Vec<ArtifactMapping>, backend: &str) -> Vec<ArtifactMapping> {
    let mut on: Vec<ArtifactMapping> = mappings
        .into_iter()
        .filter(|m| {
            m.spec.backend_ref.name == backend
                || m.status.as_ref().and_then(|s| s.backend.as_deref()) == Some(backend)
        })
        .collect();
    on.sort_by_key(|m| m.name_any());
    on
}

/// The keys the mappings expect on `backend` (prefix `key_prefix`): the declared key of a
/// mapping declared there, the status key of one served from there. A mapping with an invalid
/// digest expects nothing (the API server refuses those).
pub fn expectations(
    backend: &str,
    key_prefix: &str,
    mappings: &[ArtifactMapping],
) -> BTreeMap<String, Expected> {
    let mut expected: BTreeMap<String, Expected> = BTreeMap::new();
    for m in mappings {
        let Ok(digest) = m.spec.digest.parse::<Digest>() else {
            continue;
        };
        let status = m.status.as_ref();
        let mut keys = Vec::new();
        if m.spec.backend_ref.name == backend {
            keys.push(key_on(m, key_prefix, &digest));
        }
        if status.and_then(|s| s.backend.as_deref()) == Some(backend) {
            let served = status.and_then(|s| s.key.clone());
            keys.push(served.unwrap_or_else(|| key_on(m, key_prefix, &digest)));
        }
        keys.dedup();
        let size = m.spec.size.and_then(|s| u64::try_from(s).ok());
        for key in keys {
            let entry = expected.entry(key).or_insert_with(|| Expected {
                digest: digest.clone(),
                size,
                mappings: Vec::new(),
            });
            entry.size = entry.size.or(size);
            entry.mappings.push(m.name_any());
        }
    }
    for e in expected.values_mut() {
        e.mappings.sort();
        e.mappings.dedup();
    }
    expected
}

/// The prefix the pass lists: everything under the key prefix.
pub fn list_prefix(key_prefix: &str) -> String {
    layout::join(key_prefix, "")
}

/// Decides what to read. A listed key in the layout is read against the digest it claims; a
/// listed key outside it only when a mapping expects it (against the mapping's digest); an
/// expected key that was not listed is missing when it lies under the listed prefix, and read
/// (a GET tells) when it lies elsewhere.
pub fn plan(
    key_prefix: &str,
    listed: &[ListedObject],
    mut expected: BTreeMap<String, Expected>,
) -> Plan {
    let mut plan = Plan::default();
    for object in listed {
        let wanted = expected.remove(&object.key);
        let digest = layout::digest_for(key_prefix, &object.key)
            .or_else(|| wanted.as_ref().map(|e| e.digest.clone()));
        let Some(digest) = digest else {
            plan.outside.push(OutsideObject {
                key: object.key.clone(),
                size: object.size,
            });
            continue;
        };
        plan.targets.push(Target {
            key: object.key.clone(),
            digest,
            expected_size: wanted.as_ref().and_then(|e| e.size),
            listed_size: Some(object.size),
            mappings: wanted.map(|e| e.mappings).unwrap_or_default(),
        });
    }
    let under = list_prefix(key_prefix);
    for (key, e) in expected {
        let target = Target {
            listed_size: None,
            expected_size: e.size,
            digest: e.digest,
            mappings: e.mappings,
            key,
        };
        if target.key.starts_with(&under) {
            plan.missing.push(target);
        } else {
            plan.targets.push(target);
        }
    }
    plan.targets.sort_by(|a, b| a.key.cmp(&b.key));
    plan.outside.sort_by(|a, b| a.key.cmp(&b.key));
    plan
}

/// Reads every target through its digest, `concurrency` at a time, all paying from one budget
/// of `bytes_per_second` (0: unlimited). Verdicts come back in the targets' order.
pub async fn verify_all(
    store: &dyn ObjectStore,
    targets: &[Target],
    opts: &ScanOptions,
) -> Vec<(Verdict, u64)> {
    let budgets = match opts.bytes_per_second {
        0 => Vec::new(),
        rate => vec![Arc::new(ByteBudget::new(rate))],
    };
    let on_bytes = opts.progress.clone().map(|p| {
        let hook: Arc<dyn Fn(u64) + Send + Sync> = Arc::new(move |n| p.advance(n));
        hook
    });
    let read = ReadOptions {
        budgets,
        on_bytes,
        ..ReadOptions::default()
    };
    let reads = targets.iter().enumerate().map(|(i, t)| {
        let read = &read;
        let progress = opts.progress.clone();
        async move {
            let v = read_verified(
                store,
                &t.key,
                &t.digest,
                t.expected_size,
                Sink::Discard,
                read,
            )
            .await
            .expect("discarding bytes cannot fail");
            if let Some(p) = progress {
                p.object_done();
            }
            (i, (v.verdict, v.bytes))
        }
    });
    let mut done: Vec<(usize, (Verdict, u64))> = futures::stream::iter(reads)
        .buffer_unordered(opts.concurrency.max(1))
        .collect()
        .await;
    done.sort_by_key(|(i, _)| *i);
    done.into_iter().map(|(_, v)| v).collect()
}

/// A finding about `target`, or `None` when it verified.
fn finding(target: &Target, verdict: &Verdict) -> Option<Finding> {
    if verdict.is_verified() {
        return None;
    }
    Some(Finding {
        key: target.key.clone(),
        digest: target.digest.to_string(),
        verdict: verdict.label().to_owned(),
        detail: verdict.to_string(),
        mappings: target.mappings.clone(),
    })
}

fn count(counts: &mut Counts, verdict: &Verdict) {
    match verdict {
        Verdict::Verified { .. } => counts.verified += 1,
        Verdict::DigestMismatch { .. } => counts.corrupt += 1,
        Verdict::SizeMismatch { .. } => counts.size_mismatch += 1,
        Verdict::Missing => counts.missing += 1,
        Verdict::Truncated { .. } | Verdict::Interrupted(_) => counts.interrupted += 1,
        Verdict::Failed(_) => counts.failed += 1,
    }
}

/// The outcome the counts say: anything conclusive wins over reads that did not finish.
pub fn outcome(counts: &Counts) -> Outcome {
    if counts.corrupt + counts.size_mismatch + counts.missing > 0 {
        Outcome::Findings
    } else if counts.interrupted + counts.failed > 0 {
        Outcome::Incomplete
    } else {
        Outcome::Clean
    }
}

/// Where the report is about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Subject {
    pub backend: String,
    pub namespace: String,
    pub bucket: String,
    pub prefix: String,
    pub listed: usize,
    pub mappings: usize,
}

/// The report of a pass: `verdicts` are those of `plan.targets`, in order.
pub fn report(
    subject: Subject,
    plan: &Plan,
    verdicts: &[(Verdict, u64)],
    elapsed: Duration,
) -> ScanReport {
    let mut counts = Counts {
        listed: subject.listed,
        mappings: subject.mappings,
        outside_layout: plan.outside.len(),
        ..Counts::default()
    };
    let mut findings = Vec::new();
    let mut bytes = 0;
    let missing = plan.missing.iter().map(|t| (t, &Verdict::Missing, 0));
    let read = plan
        .targets
        .iter()
        .zip(verdicts)
        .map(|(t, (v, b))| (t, v, *b));
    for (target, verdict, received) in read.chain(missing) {
        count(&mut counts, verdict);
        bytes += received;
        findings.extend(finding(target, verdict));
    }
    findings.sort_by(|a, b| a.key.cmp(&b.key));
    ScanReport {
        backend: subject.backend,
        namespace: subject.namespace,
        bucket: subject.bucket,
        prefix: subject.prefix,
        outcome: outcome(&counts),
        counts,
        bytes,
        elapsed_seconds: elapsed.as_secs_f64(),
        findings,
        outside_layout: plan.outside.clone(),
    }
}

/// An event to publish: about the mapping named `mapping`, or the backend when `None`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Note {
    pub mapping: Option<String>,
    pub type_: EventType,
    pub reason: String,
    pub note: String,
}

/// The events a recorded pass publishes: a Warning on every mapping with a conclusive finding
/// (`DigestMismatch`, `SizeMismatch`, `ObjectMissing`; a read that did not finish says nothing
/// about a mapping), then one summary on the backend.
pub fn event_notes(report: &ScanReport) -> Vec<Note> {
    let conclusive = ["DigestMismatch", "SizeMismatch", "ObjectMissing"];
    let mut notes: Vec<Note> = report
        .findings
        .iter()
        .filter(|f| conclusive.contains(&f.verdict.as_str()))
        .flat_map(|f| {
            f.mappings.iter().map(move |m| Note {
                mapping: Some(m.clone()),
                type_: EventType::Warning,
                reason: f.verdict.clone(),
                note: format!(
                    "backend {}: object {}: {} (castellan verify --backend)",
                    report.backend, f.key, f.detail
                ),
            })
        })
        .collect();
    let c = &report.counts;
    let (type_, reason) = match report.outcome {
        Outcome::Clean => (EventType::Normal, SCRUB_CLEAN),
        Outcome::Findings => (EventType::Warning, SCRUB_FINDINGS),
        Outcome::Incomplete => (EventType::Warning, SCRUB_INCOMPLETE),
    };
    notes.push(Note {
        mapping: None,
        type_,
        reason: reason.to_owned(),
        note: format!(
            "{} listed, {} verified, {} corrupt, {} size mismatch, {} missing, {} interrupted, \
             {} failed, {} outside the layout; {} mappings checked (castellan verify --backend)",
            c.listed,
            c.verified,
            c.corrupt,
            c.size_mismatch,
            c.missing,
            c.interrupted,
            c.failed,
            c.outside_layout,
            c.mappings
        ),
    });
    notes
}

/// Gathers the backend, its client, its mappings and its listing.
pub async fn observe(
    client: &Client,
    namespace: &str,
    name: &str,
    opts: &ScanOptions,
) -> Result<Observed, ScanError> {
    let backends: Api<StorageBackend> = Api::namespaced(client.clone(), namespace);
    let backend = backends
        .get_opt(name)
        .await
        .map_err(|source| ScanError::Kube {
            action: format!("reading StorageBackend {name}"),
            source,
        })?
        .ok_or_else(|| ScanError::BackendNotFound {
            name: name.to_owned(),
            namespace: namespace.to_owned(),
        })?;
    let resolver = Resolver::new(client.clone())
        .with_ambient_credentials(opts.ambient.clone(), LOCAL_CREDENTIALS_HINT);
    let store = resolver
        .store_for(&backend)
        .await
        .map_err(|e| ScanError::Resolve {
            backend: name.to_owned(),
            reason: e.reason().map_or("ResolveFailed", BackendReason::as_str),
            message: e.to_string(),
        })?;
    let mappings = on_backend(all_mappings(client, namespace).await?, name);
    let prefix = list_prefix(store.key_prefix());
    let listed = list_all(&*store, &prefix)
        .await
        .map_err(|e| ScanError::List {
            backend: name.to_owned(),
            prefix: prefix.clone(),
            reason: e.kind().label(),
            message: e.message().to_owned(),
        })?;
    Ok(Observed {
        backend,
        store,
        mappings,
        listed,
    })
}

/// Every ArtifactMapping of `namespace`, page by page.
async fn all_mappings(client: &Client, namespace: &str) -> Result<Vec<ArtifactMapping>, ScanError> {
    let api: Api<ArtifactMapping> = Api::namespaced(client.clone(), namespace);
    let mut params = ListParams::default().limit(LIST_PAGE);
    let mut all = Vec::new();
    loop {
        let page = api.list(&params).await.map_err(|source| ScanError::Kube {
            action: format!("listing ArtifactMappings in namespace {namespace}"),
            source,
        })?;
        all.extend(page.items);
        match page.metadata.continue_.filter(|c| !c.is_empty()) {
            Some(token) => params = params.continue_token(&token),
            None => return Ok(all),
        }
    }
}

/// Every object under `prefix`, page by page.
pub async fn list_all(
    store: &dyn ObjectStore,
    prefix: &str,
) -> Result<Vec<ListedObject>, StorageError> {
    let mut objects = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let page = store.list(prefix, token.as_deref()).await?;
        objects.extend(page.objects);
        match page.next_continuation_token {
            Some(next) => token = Some(next),
            None => return Ok(objects),
        }
    }
}

/// The whole pass over backend `name` of `namespace`: observe, plan, read, report. Reads only.
pub async fn scan_backend(
    client: &Client,
    namespace: &str,
    name: &str,
    opts: &ScanOptions,
) -> Result<(ScanReport, Observed), ScanError> {
    let start = Instant::now();
    let observed = observe(client, namespace, name, opts).await?;
    let key_prefix = observed.store.key_prefix().to_owned();
    let expected = expectations(name, &key_prefix, &observed.mappings);
    let plan = plan(&key_prefix, &observed.listed, expected);
    if let Some(p) = &opts.progress {
        let bytes = plan.targets.iter().filter_map(|t| t.listed_size).sum();
        p.planned(plan.targets.len(), bytes);
    }
    let verdicts = verify_all(&*observed.store, &plan.targets, opts).await;
    if let Some(p) = &opts.progress {
        p.finished();
    }
    let subject = Subject {
        backend: name.to_owned(),
        namespace: namespace.to_owned(),
        bucket: observed.backend.spec.s3.bucket.clone(),
        prefix: key_prefix,
        listed: observed.listed.len(),
        mappings: observed.mappings.len(),
    };
    let report = report(subject, &plan, &verdicts, start.elapsed());
    Ok((report, observed))
}

/// Publishes [`event_notes`] about the backend and its mappings. Returns how many events could
/// not be published (each with its error), so the caller can say so.
pub async fn record(
    client: &Client,
    instance: &str,
    report: &ScanReport,
    observed: &Observed,
) -> Vec<String> {
    let recorder = Recorder::new(
        client.clone(),
        Reporter {
            controller: REPORTING_CONTROLLER.to_owned(),
            instance: Some(instance.to_owned()),
        },
    );
    let by_name: BTreeMap<String, &ArtifactMapping> = observed
        .mappings
        .iter()
        .map(|m| (m.name_any(), m))
        .collect();
    let mut failures = Vec::new();
    for note in event_notes(report) {
        let reference: ObjectReference = match &note.mapping {
            Some(m) => match by_name.get(m) {
                Some(mapping) => mapping.object_ref(&()),
                None => continue,
            },
            None => observed.backend.object_ref(&()),
        };
        let event = Event {
            type_: note.type_,
            reason: note.reason.clone(),
            note: Some(truncate(&note.note, MAX_NOTE)),
            action: SCRUB_ACTION.to_owned(),
            secondary: None,
        };
        if let Err(e) = recorder.publish(&event, &reference).await {
            let about = note.mapping.as_deref().unwrap_or(&report.backend);
            failures.push(format!("event {} on {about}: {e}", note.reason));
        }
    }
    failures
}

fn truncate(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut cut = max - '…'.len_utf8();
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}…", &text[..cut])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::Algorithm;
    use crate::storage::ErrorKind;
    use serde_json::json;

    fn digest(seed: &[u8]) -> Digest {
        Digest::of_bytes(Algorithm::Sha256, seed)
    }

    fn mapping(
        name: &str,
        d: &Digest,
        declared: &str,
        served: Option<(&str, Option<&str>)>,
    ) -> ArtifactMapping {
        let mut status = json!({});
        if let Some((backend, key)) = served {
            status = json!({"backend": backend, "key": key});
        }
        serde_json::from_value(json!({
            "apiVersion": "castellan.io/v1alpha1",
            "kind": "ArtifactMapping",
            "metadata": {"name": name, "namespace": "ns"},
            "spec": {"digest": d.to_string(), "size": 10, "backendRef": {"name": declared}},
            "status": status,
        }))
        .unwrap()
    }

    fn listed(key: &str, size: u64) -> ListedObject {
        ListedObject {
            key: key.to_owned(),
            size,
            etag: None,
        }
    }

    fn names(ms: &[ArtifactMapping]) -> Vec<String> {
        ms.iter().map(|m| m.name_any()).collect()
    }

    #[test]
    fn the_mappings_on_a_backend_are_those_declared_there_or_served_from_there() {
        let d = digest(b"x");
        let all = vec![
            mapping("c-served", &d, "other", Some(("a", None))),
            mapping("a-declared", &d, "a", None),
            mapping("b-elsewhere", &d, "other", Some(("other", None))),
        ];
        assert_eq!(names(&on_backend(all, "a")), ["a-declared", "c-served"]);
    }

    #[test]
    fn expectations_follow_the_declared_key_and_the_served_key() {
        let (d1, d2) = (digest(b"1"), digest(b"2"));
        let cases = [
            (
                "a mapping declared here expects its layout key",
                mapping("m", &d1, "a", None),
                vec![layout::key_for("cas", &d1)],
            ),
            (
                "a mapping served from here expects its status key",
                mapping("m", &d2, "other", Some(("a", Some("moved/blob")))),
                vec!["moved/blob".to_owned()],
            ),
            (
                "a mapping served from here without a status key expects its layout key",
                mapping("m", &d2, "other", Some(("a", None))),
                vec![layout::key_for("cas", &d2)],
            ),
            (
                "a mapping declared and served here expects one key",
                mapping("m", &d1, "a", Some(("a", None))),
                vec![layout::key_for("cas", &d1)],
            ),
        ];
        for (name, m, keys) in cases {
            let got = expectations("a", "cas", &[m]);
            assert_eq!(got.keys().cloned().collect::<Vec<_>>(), keys, "{name}");
            assert!(
                got.values()
                    .all(|e| e.mappings == ["m"] && e.size == Some(10)),
                "{name}"
            );
        }
    }

    #[test]
    fn the_plan_reads_layout_objects_lists_strangers_and_misses_what_is_not_listed() {
        let (d1, d2, d3) = (digest(b"1"), digest(b"2"), digest(b"3"));
        let mappings = vec![
            mapping("m1", &d1, "a", None),
            mapping("m2", &d2, "a", None),
            mapping("m3", &d3, "other", Some(("a", Some("elsewhere/blob")))),
        ];
        let orphan = digest(b"orphan");
        let listing = vec![
            listed(&layout::key_for("cas", &d1), 10),
            listed(&layout::key_for("cas", &orphan), 4),
            listed("cas/notes.txt", 7),
        ];
        let p = plan("cas", &listing, expectations("a", "cas", &mappings));
        let want_read = |key: String, d: &Digest, size, listed_size, mappings: &[&str]| Target {
            key,
            digest: d.clone(),
            expected_size: size,
            listed_size,
            mappings: mappings.iter().map(|m| m.to_string()).collect(),
        };
        let mut want = [
            want_read(
                layout::key_for("cas", &d1),
                &d1,
                Some(10),
                Some(10),
                &["m1"],
            ),
            want_read(layout::key_for("cas", &orphan), &orphan, None, Some(4), &[]),
            want_read("elsewhere/blob".into(), &d3, Some(10), None, &["m3"]),
        ];
        want.sort_by(|a, b| a.key.cmp(&b.key));
        assert_eq!(
            p.targets, want,
            "a listed layout object is read against the digest its key claims; a mapping's \
             key outside the prefix is read to learn whether it is there"
        );
        assert_eq!(
            p.missing.iter().map(|t| t.key.clone()).collect::<Vec<_>>(),
            [layout::key_for("cas", &d2)],
            "an expected key under the prefix that was not listed is missing without a request"
        );
        assert_eq!(
            p.outside,
            [OutsideObject {
                key: "cas/notes.txt".into(),
                size: 7
            }],
            "an object outside the layout is listed, not read"
        );
    }

    #[test]
    fn the_listing_prefix_is_the_key_prefix_as_a_directory() {
        let cases = [("cas", "cas/"), ("cas/", "cas/"), ("", ""), ("a/b", "a/b/")];
        for (prefix, want) in cases {
            assert_eq!(list_prefix(prefix), want, "{prefix:?}");
        }
    }

    #[test]
    fn a_conclusive_finding_outweighs_reads_that_did_not_finish() {
        let none = Counts::default();
        let cases = [
            ("nothing read is clean", none.clone(), Outcome::Clean),
            (
                "verified objects are clean",
                Counts {
                    verified: 3,
                    ..none.clone()
                },
                Outcome::Clean,
            ),
            (
                "objects outside the layout are not findings",
                Counts {
                    outside_layout: 2,
                    ..none.clone()
                },
                Outcome::Clean,
            ),
            (
                "a missing object is a finding",
                Counts {
                    missing: 1,
                    ..none.clone()
                },
                Outcome::Findings,
            ),
            (
                "an interrupted read alone leaves the pass incomplete",
                Counts {
                    interrupted: 1,
                    ..none.clone()
                },
                Outcome::Incomplete,
            ),
            (
                "a corrupt object with a failed read is a finding",
                Counts {
                    corrupt: 1,
                    failed: 1,
                    ..none.clone()
                },
                Outcome::Findings,
            ),
        ];
        for (name, counts, want) in cases {
            assert_eq!(outcome(&counts), want, "{name}");
        }
    }

    fn subject() -> Subject {
        Subject {
            backend: "a".into(),
            namespace: "ns".into(),
            bucket: "b".into(),
            prefix: "cas".into(),
            listed: 3,
            mappings: 2,
        }
    }

    fn target(key: &str, mappings: &[&str]) -> Target {
        Target {
            key: key.into(),
            digest: digest(key.as_bytes()),
            expected_size: None,
            listed_size: Some(1),
            mappings: mappings.iter().map(|m| m.to_string()).collect(),
        }
    }

    #[test]
    fn the_report_counts_each_verdict_and_lists_each_finding_with_its_mappings() {
        let plan = Plan {
            targets: vec![
                target("k1", &["m1"]),
                target("k2", &["m2"]),
                target("k3", &[]),
            ],
            missing: vec![target("k0", &["m0"])],
            outside: vec![OutsideObject {
                key: "x".into(),
                size: 1,
            }],
        };
        let cut = StorageError::new(ErrorKind::BodyInterrupted, "cut");
        let verdicts = vec![
            (Verdict::Verified { bytes: 5 }, 5),
            (
                Verdict::SizeMismatch {
                    expected: 10,
                    actual: 4,
                },
                0,
            ),
            (Verdict::Interrupted(cut), 2),
        ];
        let r = report(subject(), &plan, &verdicts, Duration::from_millis(10));
        assert_eq!(
            r.counts,
            Counts {
                listed: 3,
                mappings: 2,
                verified: 1,
                size_mismatch: 1,
                missing: 1,
                interrupted: 1,
                outside_layout: 1,
                ..Counts::default()
            }
        );
        assert_eq!(r.bytes, 7);
        assert_eq!(r.outcome, Outcome::Findings);
        let found: Vec<(&str, &str, Vec<String>)> = r
            .findings
            .iter()
            .map(|f| (f.key.as_str(), f.verdict.as_str(), f.mappings.clone()))
            .collect();
        assert_eq!(
            found,
            [
                ("k0", "ObjectMissing", vec!["m0".to_owned()]),
                ("k2", "SizeMismatch", vec!["m2".to_owned()]),
                ("k3", "BodyInterrupted", vec![]),
            ]
        );
    }

    #[test]
    fn recorded_events_warn_each_affected_mapping_and_summarise_on_the_backend() {
        let plan = Plan {
            targets: vec![target("k1", &["m1", "m1b"]), target("k2", &["m2"])],
            missing: vec![target("k0", &["m0"])],
            outside: vec![],
        };
        let cut = StorageError::new(ErrorKind::BodyInterrupted, "cut");
        let verdicts = vec![
            (
                Verdict::DigestMismatch {
                    actual: digest(b"other"),
                },
                1,
            ),
            (Verdict::Interrupted(cut), 0),
        ];
        let r = report(subject(), &plan, &verdicts, Duration::ZERO);
        let notes: Vec<(Option<String>, String)> = event_notes(&r)
            .into_iter()
            .map(|n| (n.mapping, n.reason))
            .collect();
        let want: Vec<(Option<String>, String)> = [
            (Some("m0"), "ObjectMissing"),
            (Some("m1"), "DigestMismatch"),
            (Some("m1b"), "DigestMismatch"),
            (None, SCRUB_FINDINGS),
        ]
        .iter()
        .map(|(m, r)| (m.map(str::to_owned), r.to_string()))
        .collect();
        assert_eq!(
            notes, want,
            "an interrupted read says nothing about its mapping"
        );
        let clean = report(subject(), &Plan::default(), &[], Duration::ZERO);
        let notes = event_notes(&clean);
        assert_eq!(notes.len(), 1);
        assert_eq!(
            (notes[0].type_, notes[0].reason.as_str()),
            (EventType::Normal, SCRUB_CLEAN)
        );
    }

    #[test]
    fn long_notes_are_cut_within_the_events_limit() {
        let cut = truncate(&"é".repeat(600), MAX_NOTE);
        assert!(cut.len() <= MAX_NOTE && cut.ends_with('…'));
        assert_eq!(truncate("short", MAX_NOTE), "short");
    }
}
