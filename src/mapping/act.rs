//! The acting layer of the ArtifactMapping controller: a short driver of named steps.
//!
//! observe ([`super::observe`]) → decide where it is served ([`crate::placement::decide`]) →
//! verify the candidates in order through the shared [`crate::verifier::Verifier`] (first match
//! wins) → decide the status ([`super::decide`]) → one status write (server-side apply on
//! `/status`, only when it changed) → events and metrics → requeue.
//!
//! Must not: list from the API server, write spec, or use a backend of another namespace.

use std::sync::Arc;
use std::time::Duration;

use kube::runtime::controller::Action;
use kube::runtime::reflector::ObjectRef;
use kube::ResourceExt;
use tracing::{debug, info, warn};

use super::decide::{self, Attempt, MappingState, Outcome};
use super::observe;
use super::{Context, Error};
use crate::api::{ArtifactMapping, StorageBackend};
use crate::cluster;
use crate::digest::Digest;
use crate::metrics::{ErrorLabels, MappingStateLabels, MismatchLabels, ResultLabels};
use crate::placement::{self, Candidate, Plan};
use crate::storage::verify::Verdict;

/// The controller name in metrics.
pub const CONTROLLER: &str = "artifactmapping";
/// Shortest pause before retrying a mapping with no verified replica.
pub const MIN_RETRY: Duration = Duration::from_secs(5);
/// Pause after a transient reconcile error.
pub const ERROR_RETRY: Duration = Duration::from_secs(10);

/// Reconciles one mapping. Writes its status at most once, and not at all when nothing changed.
pub async fn reconcile(obj: Arc<ArtifactMapping>, ctx: Arc<Context>) -> Result<Action, Error> {
    let started = tokio::time::Instant::now();
    let result = reconcile_steps(&obj, &ctx).await;
    ctx.metrics.observe_reconcile(CONTROLLER, started.elapsed());
    result
}

/// Counts the error and requeues: soon when transient, after `max_backoff` when terminal.
pub fn error_policy(obj: Arc<ArtifactMapping>, err: &Error, ctx: Arc<Context>) -> Action {
    ctx.metrics
        .reconcile_errors
        .get_or_create(&ErrorLabels {
            controller: CONTROLLER.to_string(),
            error: err.metric_label().to_string(),
        })
        .inc();
    warn!(
        namespace = obj.metadata.namespace.as_deref().unwrap_or(""),
        name = obj.metadata.name.as_deref().unwrap_or(""),
        error = %err,
        "ArtifactMapping reconcile failed"
    );
    if err.is_terminal() {
        Action::requeue(ctx.max_backoff)
    } else {
        Action::requeue(ERROR_RETRY.min(ctx.max_backoff))
    }
}

async fn reconcile_steps(obj: &ArtifactMapping, ctx: &Context) -> Result<Action, Error> {
    let namespace = obj
        .namespace()
        .ok_or(Error::IncompleteObject("metadata.namespace"))?;
    let digest: Digest = obj.spec.digest.parse().map_err(Error::InvalidDigest)?;
    if !crate::cluster::cache_synced(&ctx.backends).await {
        return Err(Error::CacheNotSynced);
    }
    let backends = observe::namespace_backends(ctx, &namespace);
    let replicas = observe::replicas(obj, &digest, &backends, ctx).await?;
    let plan = placement::decide(obj, &replicas);
    let mut attempts = match &plan {
        Plan::Stranded { candidates, .. } => {
            verify_candidates(obj, &namespace, &digest, candidates, &backends, ctx).await
        }
        _ => Vec::new(),
    };
    let remembered: Vec<Attempt> = observe::remembered(obj, &digest, &backends, ctx)
        .into_iter()
        .filter(|r| !attempts.iter().any(|a| a.backend == r.backend))
        .collect();
    attempts.extend(remembered);
    let now = ctx.clock.now_time();
    let outcome = decide::outcome(obj, &plan, &attempts, &now);
    write_status(obj, &namespace, &outcome, ctx).await?;
    cluster::publish(&ctx.recorder, obj, &outcome.events).await;
    record_metrics(&namespace, &plan, &outcome, ctx);
    Ok(
        match decide::retry_after(&outcome.status, &now, MIN_RETRY, ctx.max_backoff) {
            Some(pause) => Action::requeue(pause),
            None => Action::await_change(),
        },
    )
}

/// Verifies candidates in order until one matches. A mismatch is counted and skipped; a failure
/// (truncated after retries, credentials, network) says nothing about the bytes and is skipped.
async fn verify_candidates(
    obj: &ArtifactMapping,
    namespace: &str,
    digest: &Digest,
    candidates: &[Candidate],
    backends: &[Arc<StorageBackend>],
    ctx: &Context,
) -> Vec<Attempt> {
    let mut attempts = Vec::new();
    for candidate in candidates {
        let Some(backend) = backends.iter().find(|b| b.name_any() == candidate.backend) else {
            continue;
        };
        let now = ctx.clock.now_time();
        let (verdict, at) = match ctx.clients.store_for(backend).await {
            Err(err) => (Verdict::Failed(err.as_storage_error()), now),
            Ok(store) => {
                let target = observe::target(obj, digest, backend, &candidate.key);
                ctx.verifier.verify(store, &target, now).await
            }
        };
        if verdict.is_mismatch() {
            ctx.metrics
                .digest_mismatches
                .get_or_create(&MismatchLabels {
                    namespace: namespace.to_string(),
                    backend: candidate.backend.clone(),
                })
                .inc();
        }
        debug!(backend = %candidate.backend, verdict = %verdict, "candidate verified");
        let done = verdict.is_verified();
        attempts.push(Attempt {
            backend: candidate.backend.clone(),
            key: candidate.key.clone(),
            verdict,
            at,
        });
        if done {
            break;
        }
    }
    attempts
}

/// One server-side apply of the whole status on `/status`, only when it changed.
async fn write_status(
    obj: &ArtifactMapping,
    namespace: &str,
    outcome: &Outcome,
    ctx: &Context,
) -> Result<(), Error> {
    if obj.status.as_ref() == Some(&outcome.status) {
        return Ok(());
    }
    cluster::apply_status::<ArtifactMapping, _>(
        &ctx.client,
        namespace,
        &obj.name_any(),
        &outcome.status,
    )
    .await
    .map_err(Error::StatusPatch)?;
    if let Some(m) = &outcome.moved {
        info!(to = %m.to, reason = m.reason.as_str(), "mapping moved");
    }
    nudge_backends_with_changed_findings(obj, namespace, outcome, ctx);
    Ok(())
}

/// Backends gaining or losing a bad-replica record of this mapping report it in
/// `status.integrity` without waiting for their next validation.
fn nudge_backends_with_changed_findings(
    obj: &ArtifactMapping,
    namespace: &str,
    outcome: &Outcome,
    ctx: &Context,
) {
    let Some(nudge) = &ctx.backend_nudge else {
        return;
    };
    let before = obj
        .status
        .as_ref()
        .map(|s| s.bad_replicas.as_slice())
        .unwrap_or_default();
    let after = outcome.status.bad_replicas.as_slice();
    let mut changed: Vec<&str> = before
        .iter()
        .filter(|b| !after.contains(b))
        .chain(after.iter().filter(|b| !before.contains(b)))
        .map(|b| b.backend.as_str())
        .collect();
    changed.sort_unstable();
    changed.dedup();
    for backend in changed {
        let _ = nudge.unbounded_send(ObjectRef::new(backend).within(namespace));
    }
}

fn record_metrics(namespace: &str, plan: &Plan, outcome: &Outcome, ctx: &Context) {
    if let Some(result) = decide::reassignment_result(plan, outcome) {
        ctx.metrics
            .reassignments
            .get_or_create(&ResultLabels {
                result: result.to_string(),
            })
            .inc();
    }
    // The index follows the watch, so it may lag this reconcile's own write by one event; the
    // reconcile that write triggers sets the gauges again.
    for state in MappingState::ALL {
        ctx.metrics
            .mappings
            .get_or_create(&MappingStateLabels {
                namespace: namespace.to_string(),
                state: state.label().to_string(),
            })
            .set(ctx.index.count(namespace, state));
    }
}
