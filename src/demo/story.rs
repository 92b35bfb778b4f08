//! The credential-rotation story, step by step. Each step does something real to the API server
//! or the S3 server, then waits until the operator's reaction shows in the watched objects, and
//! prints what it saw.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use kube::ResourceExt;
use serde_json::json;

use super::display::Console;
use super::env::Environment;
use super::observe::{BackendHealth, Counts, Observer};
use super::{report, scrape, Download, Summary, BUCKET, NAMESPACE};
use castellan::api::condition;
use castellan::api::reasons::{mapping_condition, BackendReason, MappingReason};
use castellan::api::StorageBackend;
use castellan::digest::Digest;
use castellan::mapping::decide::MappingState;
use castellan::transfer::{self, GetOptions, PutOptions};

pub const BACKEND_A: &str = "backend-a";
pub const BACKEND_B: &str = "backend-b";
const KEY_PREFIX: &str = "cas";
/// How often the demo's backends are validated. Short so that a revoked key shows within
/// seconds; a cluster would keep the default (5m) and rely on Secret watches for rotations.
const VALIDATION_INTERVAL: &str = "2s";
/// Uploads in flight at once while seeding.
const UPLOAD_CONCURRENCY: usize = 8;
/// Rows of `kubectl get am` shown in the final table.
const MAPPING_ROWS: usize = 5;
/// Mapping names (`sha256-` and 64 hex digits) are cut to this many characters in the table,
/// so that it fits a terminal; the DIGEST column and `kubectl get am` have the rest.
const NAME_CHARS: usize = 24;
/// The longest any single wait of the story may take before the demo gives up.
const STEP_TIMEOUT: Duration = Duration::from_secs(120);

/// An access key pair issued by the S3 server.
#[derive(Clone)]
pub struct Key {
    pub id: String,
    secret: String,
}

impl Key {
    /// A fresh key pair: a fixed, recognisable id and a random secret.
    fn issue(id: &str) -> Key {
        use rand::distr::{Alphanumeric, SampleString};
        Key {
            id: id.to_string(),
            secret: Alphanumeric.sample_string(&mut rand::rng(), 40),
        }
    }
}

/// The story's state: the servers, the watches, the keys, and the clock marks it reports.
pub struct Story<'e, W: std::io::Write> {
    pub env: &'e Environment,
    pub observer: Observer,
    pub console: Console<W>,
    pub artifacts: usize,
    pub size: usize,
    /// Play step 7: restore the old key and watch the mappings return home.
    pub restore_key: bool,
    k1: Key,
    k2: Key,
    digests: Vec<Digest>,
    sample: Option<(Digest, bytes::Bytes)>,
}

impl<'e, W: std::io::Write> Story<'e, W> {
    pub fn new(
        env: &'e Environment,
        observer: Observer,
        console: Console<W>,
        artifacts: usize,
        size: usize,
    ) -> Self {
        Story {
            env,
            observer,
            console,
            artifacts,
            size,
            restore_key: false,
            k1: Key::issue("AKIACASTELLANDEMO0001"),
            k2: Key::issue("AKIACASTELLANDEMO0002"),
            digests: Vec::new(),
            sample: None,
        }
    }

    /// Plays every step and returns what happened.
    pub async fn play(&mut self) -> anyhow::Result<Summary> {
        let started = Instant::now();
        self.first_backend().await?;
        self.seed().await?;
        self.rotate().await?;
        let rotation = self.revoke().await?;
        let mut summary = self.result(rotation).await?;
        summary.download = self.download().await?;
        if self.restore_key {
            summary.returned_home = Some(self.restore().await?);
        }
        summary.total = started.elapsed();
        Ok(summary)
    }

    fn backends(&self) -> Api<StorageBackend> {
        Api::namespaced(self.env.client.clone(), NAMESPACE)
    }

    /// Issues `key` on the S3 server and stores it in the Secret `name`.
    async fn issue_key(&mut self, key: &Key, secret: &str) -> anyhow::Result<()> {
        self.env.s3.keys().add(&key.id, &key.secret);
        let s = self.console.style;
        self.console
            .event(&format!("S3 server issued access key {}", s.cyan(&key.id)));
        let object: Secret = serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": secret, "namespace": NAMESPACE},
            "stringData": {"accessKeyId": key.id, "secretAccessKey": key.secret},
        }))?;
        Api::<Secret>::namespaced(self.env.client.clone(), NAMESPACE)
            .create(&PostParams::default(), &object)
            .await
            .with_context(|| format!("creating Secret {secret}"))?;
        self.console.event(&format!(
            "created Secret {NAMESPACE}/{secret} (accessKeyId {})",
            key.id
        ));
        Ok(())
    }

    async fn create_backend(&mut self, name: &str, secret: &str) -> anyhow::Result<()> {
        let backend: StorageBackend = serde_json::from_value(json!({
            "apiVersion": "castellan.io/v1alpha1", "kind": "StorageBackend",
            "metadata": {"name": name, "namespace": NAMESPACE},
            "spec": {
                "s3": {
                    "bucket": BUCKET,
                    "endpoint": self.env.s3.endpoint(),
                    "forcePathStyle": true,
                    "keyPrefix": KEY_PREFIX,
                    "credentialsSecretRef": {"name": secret},
                },
                "default": true,
                "validation": {"interval": VALIDATION_INTERVAL, "timeout": "2s", "successThreshold": 2, "failureThreshold": 1},
            },
        }))?;
        self.backends()
            .create(&PostParams::default(), &backend)
            .await
            .with_context(|| format!("creating StorageBackend {name}"))?;
        self.console.event(&format!(
            "created StorageBackend {NAMESPACE}/{name}: bucket {BUCKET}, default, credentials from {secret}, validated every {VALIDATION_INTERVAL}"
        ));
        Ok(())
    }

    /// Waits until `name` reports `Ready=True` (Validated) and says so.
    async fn wait_ready(&mut self, name: &str) -> anyhow::Result<()> {
        let since = Instant::now();
        let health = self
            .observer
            .wait_for(
                &format!("StorageBackend {name} Ready=True"),
                STEP_TIMEOUT,
                || self.env.operator_stopped(),
                |o| {
                    let health = BackendHealth::of(&o.backend(name)?);
                    health
                        .is_ready_with(BackendReason::Validated.as_str())
                        .then_some(health)
                },
                |o| format!("{:?}", o.backend(name).and_then(|b| b.status)),
            )
            .await?;
        let line = self.health_line(name, &health);
        self.console.event(&format!(
            "{line} {}",
            self.console
                .style
                .dim(&format!("(after {})", report::seconds(since.elapsed())))
        ));
        Ok(())
    }

    /// `backend-a Ready=False InvalidAccessKeyId, Stalled=True: <message>`.
    fn health_line(&self, name: &str, health: &BackendHealth) -> String {
        let s = self.console.style;
        let mut line = s.bold(name);
        if let Some((status, reason, message)) = &health.ready {
            line.push_str(&format!(" Ready={} ({reason})", s.status(status)));
            if status == "False" {
                if let Some((stalled, _)) = &health.stalled {
                    line.push_str(&format!(" Stalled={stalled}"));
                }
                if !message.is_empty() {
                    line.push_str(&format!(": {}", s.dim(message)));
                }
            }
        } else {
            line.push_str(" has no Ready condition yet");
        }
        line
    }

    /// Step 1: the namespace's first backend, with the first keys.
    async fn first_backend(&mut self) -> anyhow::Result<()> {
        self.console
            .step(1, "backend-a: the bucket with its first access key");
        let k1 = self.k1.clone();
        self.issue_key(&k1, "backend-a-creds").await?;
        self.create_backend(BACKEND_A, "backend-a-creds").await?;
        self.wait_ready(BACKEND_A).await
    }

    /// Step 2: artifacts written through the put path; their mappings become Ready.
    async fn seed(&mut self) -> anyhow::Result<()> {
        let (n, size) = (self.artifacts, self.size);
        self.console.step(
            2,
            &format!(
                "{n} artifacts of {} uploaded through the put path",
                report::bytes(size as u64)
            ),
        );
        let client = self.env.client.clone();
        self.console.start_progress(n as u64);
        let since = Instant::now();
        let mut uploads = futures::stream::iter(0..n)
            .map(|_| {
                let client = client.clone();
                async move {
                    let bytes = random_bytes(size);
                    let put = transfer::put_bytes(
                        &client,
                        NAMESPACE,
                        bytes.clone(),
                        &PutOptions::default(),
                    )
                    .await?;
                    Ok::<_, anyhow::Error>((put, bytes))
                }
            })
            .buffer_unordered(UPLOAD_CONCURRENCY);
        let mut written_to = BTreeMap::<String, usize>::new();
        while let Some((put, bytes)) = uploads.try_next().await? {
            *written_to.entry(put.backend.clone()).or_default() += 1;
            if self.sample.is_none() {
                self.sample = Some((put.digest.clone(), bytes));
            }
            self.digests.push(put.digest);
            let done = self.digests.len() as u64;
            self.console.set_progress(done, n as u64, "uploaded");
        }
        self.console.finish_progress();
        let targets: Vec<String> = written_to
            .iter()
            .map(|(backend, count)| format!("{count} to {backend}"))
            .collect();
        self.console.event(&format!(
            "put {n} objects ({}): {}, and created {n} ArtifactMappings {}",
            report::bytes((n * size) as u64),
            targets.join(", "),
            self.console
                .style
                .dim(&format!("(in {})", report::seconds(since.elapsed())))
        ));
        self.observer
            .wait_for(
                "every mapping Ready, served by backend-a",
                STEP_TIMEOUT,
                || self.env.operator_stopped(),
                |o| o.counts(BACKEND_B).all_declared(n).then_some(()),
                |o| format!("{:?}", o.counts(BACKEND_B)),
            )
            .await?;
        let s = self.console.style;
        self.console.event(&format!(
            "{n}/{n} mappings Ready={} ({}), served by {}",
            s.status("True"),
            MappingReason::Declared.as_str(),
            s.bold(BACKEND_A)
        ));
        Ok(())
    }

    /// Step 3: rotation as teams do it: a new backend on the same bucket with new keys becomes
    /// the default; the old one stays.
    async fn rotate(&mut self) -> anyhow::Result<()> {
        self.console.step(
            3,
            "rotation: backend-b, same bucket, new key, becomes the default",
        );
        let k2 = self.k2.clone();
        self.issue_key(&k2, "backend-b-creds").await?;
        self.backends()
            .patch(
                BACKEND_A,
                &PatchParams::default(),
                &Patch::Merge(json!({"spec": {"default": false}})),
            )
            .await
            .context("patching backend-a default=false")?;
        self.console
            .event("patched StorageBackend demo/backend-a: default=false");
        self.create_backend(BACKEND_B, "backend-b-creds").await?;
        self.wait_ready(BACKEND_B).await?;
        let counts = self.observer.counts(BACKEND_B);
        self.console.event(&format!(
            "mappings served by backend-a: {}/{} (their declared backend is still Ready: nothing moves)",
            counts.declared, counts.total
        ));
        Ok(())
    }

    /// Step 4: the old key is revoked on the S3 server; watch the operator react.
    async fn revoke(&mut self) -> anyhow::Result<Rotation> {
        let n = self.artifacts;
        self.console
            .step(4, "the old key is revoked on the S3 server");
        let log_mark = self.env.api.hooks().requests().len();
        let revoked_at = Instant::now();
        anyhow::ensure!(
            self.env.s3.keys().revoke(&self.k1.id),
            "key {} was not issued",
            self.k1.id
        );
        let s = self.console.style;
        self.console.event(&format!(
            "S3 server revoked access key {} (backend-a's Secret still holds it)",
            s.cyan(&self.k1.id)
        ));

        let marks = self.follow(revoked_at, BACKEND_B, |c| c.reassigned).await?;
        self.console.event(&format!(
            "{n}/{n} mappings Ready={} ({}), served by {} {}",
            s.status("True"),
            MappingReason::DigestVerified.as_str(),
            s.bold(BACKEND_B),
            s.dim(&format!(
                "({} after the revoke)",
                report::seconds(marks.done_after)
            ))
        ));
        Ok(Rotation {
            log_mark,
            invalid_after: marks.not_ready_after.unwrap_or(marks.done_after),
            reassigned_after: marks.done_after,
            peak_stranded: marks.peak_stranded,
        })
    }

    /// Watches backends and mappings from `since` until `goal(counts)` mappings (of all) are
    /// where they should be, printing backend transitions, the first stranding and progress.
    /// `target` is the backend the mappings are moving to.
    async fn follow(
        &mut self,
        since: Instant,
        target: &str,
        goal: impl Fn(&Counts) -> usize,
    ) -> anyhow::Result<Marks> {
        let n = self.artifacts;
        let mut seen: BTreeMap<String, (BackendHealth, i32)> = self
            .observer
            .backends()
            .iter()
            .map(|b| (b.name_any(), (BackendHealth::of(b), successes(b))))
            .collect();
        let mut marks = Marks::default();
        let mut first_stranded = false;
        self.console.start_progress(n as u64);
        loop {
            for backend in self.observer.backends() {
                let name = backend.name_any();
                let health = BackendHealth::of(&backend);
                let good = successes(&backend);
                let before = seen.get(&name).cloned();
                if before.as_ref().map(|b| &b.0) != Some(&health) {
                    if health.is_not_ready() && marks.not_ready_after.is_none() {
                        marks.not_ready_after = Some(since.elapsed());
                    }
                    let line = self.health_line(&name, &health);
                    self.console.event(&line);
                } else if !health.is_ready() && good > 0 && before.is_some_and(|b| b.1 != good) {
                    let threshold = backend.spec.validation.success_threshold;
                    self.console.event(&format!(
                        "{} passed {good} probe(s) in a row; Ready again after successThreshold={threshold}",
                        self.console.style.bold(&name)
                    ));
                }
                seen.insert(name, (health, good));
            }
            let counts = self.observer.counts(target);
            marks.peak_stranded = marks.peak_stranded.max(counts.stranded);
            if counts.stranded > 0 && !first_stranded {
                first_stranded = true;
                self.console.event(&format!(
                    "{} mappings stranded ({}); the operator re-verifies their digests on the other backends",
                    counts.stranded,
                    self.stranded_why()
                ));
            }
            let done = goal(&counts);
            self.console.set_progress(
                done as u64,
                n as u64,
                &progress_message(target, &counts, since.elapsed()),
            );
            if done == n {
                break;
            }
            if let Some(why) = self.env.operator_stopped() {
                anyhow::bail!("{why}");
            }
            anyhow::ensure!(
                since.elapsed() < STEP_TIMEOUT,
                "not every mapping reached {target} within {STEP_TIMEOUT:?}: {counts:?}"
            );
            tokio::time::sleep(super::observe::TICK).await;
        }
        marks.done_after = since.elapsed();
        self.console.finish_progress();
        Ok(marks)
    }

    /// Why mappings are stranded, from the first stranded mapping's status.
    fn stranded_why(&self) -> String {
        let reason = self
            .observer
            .mappings()
            .iter()
            .filter(|m| MappingState::of(m) == MappingState::Stranded)
            .find_map(|m| {
                let status = m.status.as_ref()?;
                condition::find(&status.conditions, mapping_condition::STRANDED)
                    .map(|c| c.reason.clone())
            });
        match reason {
            Some(reason) => format!("Stranded=True, {reason}"),
            None => "served by a backend that is no longer Ready".to_string(),
        }
    }

    /// Step 7 (`--restore`): the old key comes back; after `successThreshold` good probes
    /// backend-a is Ready again and the mappings return to their declared backend.
    async fn restore(&mut self) -> anyhow::Result<Duration> {
        let n = self.artifacts;
        self.console
            .step(7, "the old key is restored: mappings return home");
        let restored_at = Instant::now();
        self.env.s3.keys().add(&self.k1.id, &self.k1.secret);
        let s = self.console.style;
        self.console.event(&format!(
            "S3 server accepts access key {} again",
            s.cyan(&self.k1.id)
        ));
        let marks = self.follow(restored_at, BACKEND_A, |c| c.declared).await?;
        self.console.event(&format!(
            "{n}/{n} mappings Ready={} ({}), served by {} again {}",
            s.status("True"),
            MappingReason::Declared.as_str(),
            s.bold(BACKEND_A),
            s.dim(&format!(
                "({} after the restore)",
                report::seconds(marks.done_after)
            ))
        ));
        Ok(marks.done_after)
    }

    /// Step 6: one artifact downloaded the way `castellan get` does it, after the rotation.
    async fn download(&mut self) -> anyhow::Result<Option<Download>> {
        let Some((digest, uploaded)) = self.sample.clone() else {
            return Ok(None);
        };
        self.console
            .step(6, "download after the rotation (castellan get)");
        let dest = self.env.dir().join("download");
        let outcome = transfer::get_to_path(
            &self.env.client,
            NAMESPACE,
            &digest,
            &dest,
            &GetOptions::default(),
        )
        .await
        .with_context(|| format!("downloading {digest}"))?;
        let written = tokio::fs::read(&outcome.path)
            .await
            .with_context(|| format!("reading {}", outcome.path.display()))?;
        let identical = written == uploaded;
        let _ = tokio::fs::remove_file(&outcome.path).await;
        let s = self.console.style;
        self.console.event(&format!(
            "castellan get {}: {} from {} verified against the digest, {}",
            report::short_name(&digest.to_string(), 19),
            report::bytes(outcome.bytes),
            s.bold(&outcome.backend),
            if identical {
                s.green("identical to the uploaded bytes")
            } else {
                s.red("DIFFERENT from the uploaded bytes")
            }
        ));
        if outcome.attempts.len() > 1 {
            let attempts: Vec<String> = outcome.attempts.iter().map(|a| a.to_string()).collect();
            self.console
                .event(&format!("backends tried: {}", attempts.join("; ")));
        }
        Ok(Some(Download {
            digest,
            backend: outcome.backend,
            bytes: outcome.bytes,
            identical,
        }))
    }

    /// Step 5: the final tables and the figures of the summary, all read back from the API
    /// server, the S3 server and the operator's metrics.
    async fn result(&mut self, rotation: Rotation) -> anyhow::Result<Summary> {
        let n = self.artifacts;
        // Backend status counts are refreshed by the backend controller's next pass; wait for
        // them to agree with the mappings so the table is the settled state.
        let settled = self
            .observer
            .wait_for(
                "backend status counts settled",
                Duration::from_secs(15),
                || self.env.operator_stopped(),
                |o| {
                    let serving = |name: &str| {
                        o.backend(name)
                            .and_then(|b| b.status)
                            .and_then(|s| s.mappings)
                            .map(|m| (m.serving, m.stranded))
                    };
                    (serving(BACKEND_A) == Some((0, 0))
                        && serving(BACKEND_B) == Some((n as i64, 0)))
                    .then_some(())
                },
                |_| String::new(),
            )
            .await
            .is_ok();
        // One Normal event per reassignment is published after its status write.
        let events_api: Api<Event> = Api::namespaced(self.env.client.clone(), NAMESPACE);
        let deadline = Instant::now() + Duration::from_secs(10);
        let events = loop {
            let events = events_api.list(&ListParams::default()).await?.items;
            let moved = events
                .iter()
                .filter(|e| e.reason.as_deref() == Some(MappingReason::DigestVerified.as_str()))
                .count();
            if moved >= n || Instant::now() >= deadline {
                break events;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        };

        self.console.step(5, "result");
        if !settled {
            self.console.event(
                "backend status counts had not caught up after 15s; showing them as they are",
            );
        }
        let now = k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
            k8s_openapi::jiff::Timestamp::now(),
        );
        let backends = self.observer.backends();
        let mappings = self.observer.mappings();
        self.console.table(
            "kubectl get sbe -n demo",
            &report::backends_table(&backends, &now),
            0,
        );
        self.console.line("");
        let (table, more) = report::mappings_table(&mappings, MAPPING_ROWS, NAME_CHARS, &now);
        self.console.table("kubectl get am -n demo", &table, more);

        let metrics = scrape::fetch(self.env.metrics_addr).await?;
        let writes = writes_by_resource(&self.env.api.hooks().requests()[rotation.log_mark..]);
        let mut event_counts: BTreeMap<(String, String), usize> = BTreeMap::new();
        for e in &events {
            *event_counts
                .entry((
                    e.type_.clone().unwrap_or_default(),
                    e.reason.clone().unwrap_or_default(),
                ))
                .or_default() += 1;
        }
        let counts = self.observer.counts(BACKEND_B);
        Ok(Summary {
            artifacts: n,
            artifact_bytes: (n * self.size) as u64,
            history_entries: mappings
                .iter()
                .map(|m| m.status.as_ref().map_or(0, |s| s.history.len()))
                .sum(),
            unverified_served: mappings
                .iter()
                .filter(|m| {
                    let st = m.status.as_ref();
                    let serving = st.and_then(|s| s.backend.as_deref());
                    serving.is_some()
                        && serving != Some(m.spec.backend_ref.name.as_str())
                        && !st.is_some_and(|s| {
                            castellan::api::condition::is_true(
                                &s.conditions,
                                mapping_condition::VERIFIED,
                            )
                        })
                })
                .count(),
            reassigned: counts.reassigned,
            peak_stranded: rotation.peak_stranded,
            revoke_to_invalid: rotation.invalid_after,
            revoke_to_reassigned: rotation.reassigned_after,
            verified_bytes: scrape::sum(&metrics, "castellan_verified_bytes_total", "") as u64,
            verifications: scrape::sum(
                &metrics,
                "castellan_verifications_total",
                "result=\"verified\"",
            ) as u64,
            digest_mismatches: scrape::sum(&metrics, "castellan_digest_mismatches_total", "")
                as u64,
            events: event_counts
                .into_iter()
                .map(|((type_, reason), count)| (type_, reason, count))
                .collect(),
            api_writes: writes,
            sample: self.sample.as_ref().map(|(d, _)| d.clone()),
            download: None,
            returned_home: None,
            backends,
            mappings,
            total: Duration::ZERO,
        })
    }
}

/// What [`Story::follow`] saw.
#[derive(Default)]
struct Marks {
    /// First time a backend was seen `Ready=False`.
    not_ready_after: Option<Duration>,
    /// Every mapping arrived.
    done_after: Duration,
    peak_stranded: usize,
}

/// `status.consecutiveSuccesses` of a backend.
fn successes(backend: &StorageBackend) -> i32 {
    backend
        .status
        .as_ref()
        .map_or(0, |s| s.consecutive_successes)
}

/// Marks taken during the revoke step.
struct Rotation {
    /// Length of the API server's request log at the revoke.
    log_mark: usize,
    invalid_after: Duration,
    reassigned_after: Duration,
    peak_stranded: usize,
}

/// `→ backend-b · 12 stranded · 7.5 MiB verified · 2.1s` (short: bar and message fit 80
/// columns).
fn progress_message(target: &str, counts: &Counts, elapsed: Duration) -> String {
    let mut text = format!("→ {target} · {} stranded", counts.stranded);
    if counts.reassigned_bytes > 0 {
        text.push_str(&format!(
            " · {} verified",
            report::bytes(counts.reassigned_bytes)
        ));
    }
    text.push_str(&format!(" · {}", report::seconds(elapsed)));
    text
}

/// Writes in `log`, keyed `resource` or `resource/subresource`.
fn writes_by_resource(log: &[castellan_apiserver::RequestRecord]) -> BTreeMap<String, usize> {
    let mut writes = BTreeMap::new();
    for r in log.iter().filter(|r| r.is_write()) {
        let key = if r.subresource.is_empty() {
            r.resource.clone()
        } else {
            format!("{}/{}", r.resource, r.subresource)
        };
        *writes.entry(key).or_default() += 1;
    }
    writes
}

/// `size` random bytes: every run uploads new content, with new digests.
fn random_bytes(size: usize) -> bytes::Bytes {
    use rand::RngCore;
    let mut data = vec![0u8; size];
    rand::rng().fill_bytes(&mut data);
    bytes::Bytes::from(data)
}
