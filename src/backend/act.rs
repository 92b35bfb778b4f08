//! The acting layer of the StorageBackend controller: a short driver of named steps —
//! observe (resolve the client, read the caches, the baseline of the last validation) → probe
//! (when due, under `validation.timeout`) → decide (pure, [`super::decide`]) → apply
//! (server-side apply on `/status` only when the status differs; events only on transitions;
//! metrics) → remember the probe → requeue (interval ± jitter).
//!
//! Owns: the I/O around the pure decision. Must not: write anything but `/status` (the spec is
//! the user's and GitOps'), log or emit credential material (errors arrive redacted from the
//! storage layer and name Secrets and keys, never values), or read Secrets of other namespaces.
//!
//! No finalizer: nothing outside the cluster is created for a backend, so deleting one needs no
//! cleanup that could block; the in-process state (cached client, probe memory, metric series)
//! is dropped by [`cleanup`], which the operator calls on the watcher's delete event (and which
//! reconcile itself calls when it sees a deletion timestamp).

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::runtime::controller::Action;
use kube::ResourceExt;
use tracing::{debug, info, warn};

use super::decide::{self, Decision, Facts, Failure, Outcome, Thresholds};
use super::duration;
use super::observe;
use super::schedule::{self, Baseline, Due};
use super::{Context, Error};
use crate::api::backend::{ProbeMode as SpecProbeMode, StorageBackend, StorageBackendStatus};
use crate::api::reasons::BackendReason;
use crate::cluster;
use crate::metrics::{BackendLabels, ErrorLabels, ValidationLabels};
use crate::resolve::{ResolveError, Resolved};
use crate::storage::{ObjectStore, ProbeMode, StorageError};

/// The `controller` label of this controller's metrics.
pub const CONTROLLER: &str = "storagebackend";

/// How long to wait after a failed reconcile (API errors), before jitter.
const ERROR_REQUEUE: Duration = Duration::from_secs(30);

/// `spec.validation`, parsed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Validation {
    interval: Duration,
    timeout: Duration,
    thresholds: Thresholds,
    mode: ProbeMode,
}

/// The bounds the operator applies to `validation.timeout` and the thresholds, whatever the
/// spec says (the schema enforces the same; the code does not rely on it).
const TIMEOUT_BOUNDS: (Duration, Duration) = (Duration::from_millis(100), Duration::from_secs(600));
const MAX_THRESHOLD: i32 = 100;

/// Parses `spec.validation` and brings every value within the operator's bounds (the interval
/// no shorter than `floor`); a duration the schema should have rejected is `InvalidSpec`.
fn validation_of(backend: &StorageBackend, floor: Duration) -> Result<Validation, ResolveError> {
    let v = &backend.spec.validation;
    let interval = duration::parse(&v.interval)
        .map_err(|e| ResolveError::InvalidSpec(format!("validation.interval: {e}")))?;
    let timeout = duration::parse(&v.timeout)
        .map_err(|e| ResolveError::InvalidSpec(format!("validation.timeout: {e}")))?;
    if timeout.is_zero() {
        return Err(ResolveError::InvalidSpec(
            "validation.timeout must be greater than zero".to_owned(),
        ));
    }
    Ok(Validation {
        interval: schedule::effective_interval(interval, floor),
        timeout: timeout.clamp(TIMEOUT_BOUNDS.0, TIMEOUT_BOUNDS.1),
        thresholds: Thresholds {
            success: v.success_threshold.clamp(1, MAX_THRESHOLD),
            failure: v.failure_threshold.clamp(1, MAX_THRESHOLD),
        },
        mode: match v.probe {
            SpecProbeMode::Read => ProbeMode::Read,
            SpecProbeMode::ReadWrite => ProbeMode::ReadWrite,
        },
    })
}

/// A configuration problem (Secret, spec) as a decision outcome.
fn config_error(e: &ResolveError) -> Outcome {
    let text = e.to_string();
    Outcome::ConfigError(Failure {
        reason: e.reason().unwrap_or(BackendReason::InvalidSpec),
        message: text.clone(),
        detail: text,
    })
}

/// A probe failure as a decision outcome. Object-level kinds say nothing about the backend and
/// never reach here as such (see [`probe`]); a body cut mid-stream is a server problem.
fn probe_failure(e: &StorageError) -> Outcome {
    let reason = e.backend_reason().unwrap_or(BackendReason::ServerError);
    Outcome::ProbeFailed(Failure {
        reason,
        message: reason.summary().to_owned(),
        detail: e.to_string(),
    })
}

/// Runs the probe under `timeout`, once more without the known key when
/// [`observe::probe_again_without_key`] says so.
async fn probe(
    store: &dyn ObjectStore,
    mode: ProbeMode,
    known_key: Option<&str>,
    timeout: Duration,
) -> Outcome {
    let run = async {
        match store.probe(mode, known_key).await {
            Err(e) if observe::probe_again_without_key(&e, known_key) => {
                debug!("the known mapped object is missing; probing the bucket without it");
                store.probe(mode, None).await
            }
            other => other,
        }
    };
    match tokio::time::timeout(timeout, run).await {
        Ok(Ok(_report)) => Outcome::Success,
        Ok(Err(e)) => probe_failure(&e),
        Err(_) => probe_failure(&StorageError::new(
            BackendReason::Timeout,
            format!(
                "the probe did not finish within {}",
                humantime::format_duration(timeout)
            ),
        )),
    }
}

/// Reconciles one StorageBackend: validates it when due and records the outcome in its status.
pub async fn reconcile(obj: Arc<StorageBackend>, ctx: Arc<Context>) -> Result<Action, Error> {
    let started = tokio::time::Instant::now();
    let result = reconcile_steps(&obj, &ctx).await;
    ctx.metrics.observe_reconcile(CONTROLLER, started.elapsed());
    result
}

/// Requeue policy after a failed reconcile: the error is counted and the backend comes back
/// after about 30 s (±10%). Backend health problems are not errors and never come here.
pub fn error_policy(obj: Arc<StorageBackend>, err: &Error, ctx: Arc<Context>) -> Action {
    warn!(
        namespace = %obj.namespace().unwrap_or_default(),
        backend = %obj.name_any(),
        error = %err,
        "StorageBackend reconcile failed"
    );
    ctx.metrics
        .reconcile_errors
        .get_or_create(&ErrorLabels {
            controller: CONTROLLER.to_owned(),
            error: err.metric_label().to_owned(),
        })
        .inc();
    Action::requeue(ERROR_REQUEUE.mul_f64(1.0 + jitter()))
}

/// Drops what the operator keeps for a deleted backend: its metric series, cached client and
/// probe memory.
pub fn cleanup(obj: &StorageBackend, ctx: &Context) {
    if let Some(namespace) = obj.namespace() {
        ctx.metrics.forget_backend(&namespace, &obj.name_any());
    }
    if let Some(uid) = obj.uid() {
        ctx.clients.forget(&uid);
        ctx.probes.forget(&uid);
    }
}

fn jitter() -> f64 {
    rand::random_range(-schedule::JITTER..=schedule::JITTER)
}

async fn reconcile_steps(obj: &StorageBackend, ctx: &Context) -> Result<Action, Error> {
    if obj.metadata.deletion_timestamp.is_some() {
        cleanup(obj, ctx);
        return Ok(Action::await_change());
    }
    let namespace = obj
        .namespace()
        .ok_or(Error::IncompleteObject("metadata.namespace"))?;
    let name = obj.name_any();
    let now = ctx.clock.now();
    // The status carries counts of the namespace's mappings: never from a half-filled cache.
    if !crate::cluster::cache_synced(&ctx.mappings).await {
        return Err(Error::CacheNotSynced);
    }

    let resolved = ctx.clients.resolve(obj).await.map_err(Error::Resolve)?;
    let validation = validation_of(obj, ctx.min_interval);
    let own = ctx.probes.get(&resolved.inputs.uid);
    let baseline = schedule::baseline(
        own.as_ref(),
        &resolved.inputs,
        obj.status.as_ref().and_then(|s| s.observed_generation),
        obj.status
            .as_ref()
            .and_then(|s| s.last_validation_time.as_ref())
            .map(|t| t.0),
    );
    let interval = validation.as_ref().map(|v| v.interval).unwrap_or_default();
    let due = schedule::probe_due(&Due {
        inputs_changed: baseline.inputs_changed,
        last_validation: baseline.last_validation,
        interval,
        now,
    });
    let outcome = match due {
        true => Some(validate(obj, ctx, &namespace, &name, &validation, &resolved).await),
        false => None,
    };
    let decision = decide_status(obj, ctx, &baseline, &validation, outcome.as_ref(), now);
    apply(obj, ctx, &namespace, &name, &decision).await?;
    // Remembered only once the outcome is written: a failed write is probed again.
    let probed_at = outcome.is_some().then_some(now);
    if let Some(memory) =
        schedule::remember_after(probed_at, own.as_ref(), &resolved.inputs, &baseline)
    {
        ctx.probes.record(memory);
    }
    let last = probed_at.or(baseline.last_validation);
    Ok(
        match schedule::requeue_after(interval, last, now, jitter()) {
            Some(after) => Action::requeue(after),
            None => Action::await_change(),
        },
    )
}

/// Probes the backend (or reports why it cannot be probed), with latency and outcome metrics.
async fn validate(
    obj: &StorageBackend,
    ctx: &Context,
    namespace: &str,
    name: &str,
    validation: &Result<Validation, ResolveError>,
    resolved: &Resolved,
) -> Outcome {
    let started = tokio::time::Instant::now();
    let outcome = match (validation, &resolved.store) {
        (Err(e), _) | (_, Err(e)) => config_error(e),
        (Ok(v), Ok(store)) => {
            let key = observe::known_key(obj, &ctx.mappings.state());
            probe(store.as_ref(), v.mode, key.as_deref(), v.timeout).await
        }
    };
    let labels = BackendLabels {
        namespace: namespace.to_owned(),
        backend: name.to_owned(),
    };
    ctx.metrics
        .validation_duration
        .get_or_create(&labels)
        .observe(started.elapsed().as_secs_f64());
    ctx.metrics
        .validations
        .get_or_create(&ValidationLabels {
            namespace: namespace.to_owned(),
            backend: name.to_owned(),
            reason: outcome.reason().as_str().to_owned(),
        })
        .inc();
    outcome
}

fn decide_status(
    obj: &StorageBackend,
    ctx: &Context,
    baseline: &Baseline,
    validation: &Result<Validation, ResolveError>,
    outcome: Option<&Outcome>,
    now: Timestamp,
) -> Decision {
    let (other_defaults, other_fallbacks) = observe::conflicts(obj, &ctx.backends.state());
    let mappings = ctx.mappings.state();
    decide::decide(&Facts {
        generation: obj.metadata.generation,
        previous: obj.status.as_ref(),
        inputs_changed: baseline.inputs_changed,
        outcome,
        thresholds: validation
            .as_ref()
            .map(|v| v.thresholds)
            .unwrap_or(Thresholds {
                success: 1,
                failure: 1,
            }),
        location: crate::placement::location_of(obj),
        mappings: observe::mapping_counts(obj, &mappings),
        integrity: observe::integrity(
            obj,
            &mappings,
            crate::scrub::settings_of(obj).map(|s| s.interval),
            now,
            obj.uid().and_then(|uid| ctx.scrub_passes.last(&uid)),
        ),
        other_defaults,
        other_fallbacks,
        now: Time(Timestamp::from_second(now.as_second()).unwrap_or(now)),
    })
}

async fn apply(
    obj: &StorageBackend,
    ctx: &Context,
    namespace: &str,
    name: &str,
    decision: &Decision,
) -> Result<(), Error> {
    ctx.metrics
        .backend_ready
        .get_or_create(&BackendLabels {
            namespace: namespace.to_owned(),
            backend: name.to_owned(),
        })
        .set(i64::from(decision.ready));
    if obj.status.as_ref() == Some(&decision.status) {
        debug!("status unchanged; nothing to write");
    } else {
        write_status(ctx, namespace, name, &decision.status).await?;
    }
    // Events after the write: a failed write is retried, and the transition with it.
    for event in &decision.events {
        info!(reason = event.reason, "StorageBackend transition");
    }
    cluster::publish(&ctx.recorder, obj, &decision.events).await;
    Ok(())
}

async fn write_status(
    ctx: &Context,
    namespace: &str,
    name: &str,
    status: &StorageBackendStatus,
) -> Result<(), Error> {
    cluster::apply_status::<StorageBackend, _>(&ctx.client, namespace, name, status)
        .await
        .map_err(Error::PatchStatus)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn backend(validation: serde_json::Value) -> StorageBackend {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "castellan.io/v1alpha1",
            "kind": "StorageBackend",
            "metadata": {"name": "b", "namespace": "org"},
            "spec": {"s3": {"bucket": "bucket"}, "validation": validation}
        }))
        .unwrap()
    }

    #[test]
    fn validation_settings_are_parsed_or_invalid_spec() {
        let floor = schedule::DEFAULT_MIN_INTERVAL;
        let v = validation_of(&backend(serde_json::json!({"interval": "1h30m", "timeout": "500ms", "successThreshold": 3, "failureThreshold": 2, "probe": "ReadWrite"})), floor).unwrap();
        assert_eq!(v.interval, Duration::from_secs(5400));
        assert_eq!(v.timeout, Duration::from_millis(500));
        assert_eq!(
            v.thresholds,
            Thresholds {
                success: 3,
                failure: 2
            }
        );
        assert_eq!(v.mode, ProbeMode::ReadWrite);

        let defaults = validation_of(&backend(serde_json::json!({})), floor).unwrap();
        assert_eq!(
            (defaults.interval, defaults.timeout),
            (Duration::from_secs(300), Duration::from_secs(10))
        );

        let cases = [
            (
                "an interval without unit is invalid",
                serde_json::json!({"interval": "30"}),
            ),
            (
                "a timeout in days is invalid",
                serde_json::json!({"timeout": "1d"}),
            ),
            (
                "a zero timeout is invalid",
                serde_json::json!({"timeout": "0s"}),
            ),
        ];
        for (name, v) in cases {
            let err = validation_of(&backend(v), floor).expect_err(name);
            assert_eq!(err.reason(), Some(BackendReason::InvalidSpec), "{name}");
        }
    }

    #[test]
    fn extreme_validation_settings_are_brought_within_bounds() {
        let floor = schedule::DEFAULT_MIN_INTERVAL;
        let extreme = serde_json::json!({
            "interval": "5124095576030431h",
            "timeout": "5124095576030431h",
            "successThreshold": i32::MAX,
            "failureThreshold": i32::MIN,
        });
        let v = validation_of(&backend(extreme), floor).unwrap();
        assert_eq!(v.interval, schedule::MAX_INTERVAL);
        assert_eq!(v.timeout, TIMEOUT_BOUNDS.1);
        assert_eq!(
            v.thresholds,
            Thresholds {
                success: MAX_THRESHOLD,
                failure: 1
            }
        );
        let tiny = serde_json::json!({"interval": "1ns", "timeout": "1ns"});
        let v = validation_of(&backend(tiny), floor).unwrap();
        assert_eq!((v.interval, v.timeout), (floor, TIMEOUT_BOUNDS.0));
    }

    #[test]
    fn outcomes_carry_stable_messages_and_redacted_details() {
        let e = StorageError::new(
            BackendReason::InvalidAccessKeyId,
            "HeadBucket: HTTP 403 InvalidAccessKeyId: no such key AKID",
        );
        match probe_failure(&e) {
            Outcome::ProbeFailed(f) => {
                assert_eq!(f.reason, BackendReason::InvalidAccessKeyId);
                assert!(f.reason.is_terminal());
                assert_eq!(
                    f.message,
                    BackendReason::InvalidAccessKeyId.summary(),
                    "the condition message is the stable summary"
                );
                assert!(
                    f.detail.contains("HTTP 403"),
                    "the event detail keeps the server's words"
                );
            }
            other => panic!("unexpected {other:?}"),
        }
        match probe_failure(&StorageError::new(
            crate::storage::ErrorKind::BodyInterrupted,
            "cut",
        )) {
            Outcome::ProbeFailed(f) => assert_eq!(
                (f.reason, f.reason.is_terminal()),
                (BackendReason::ServerError, false),
                "a cut body is a transient server problem"
            ),
            other => panic!("unexpected {other:?}"),
        }
        match config_error(&ResolveError::SecretNotFound {
            name: "creds".into(),
        }) {
            Outcome::ConfigError(f) => assert_eq!(
                (f.reason, f.reason.is_terminal(), f.message.as_str()),
                (
                    BackendReason::SecretNotFound,
                    true,
                    "Secret \"creds\" not found"
                )
            ),
            other => panic!("unexpected {other:?}"),
        }
    }
}
