//! The StorageBackend reconciler: a short driver of named steps —
//! observe (resolve the client, read the caches) → probe (when due, under `validation.timeout`)
//! → decide (pure, [`super::decide`]) → apply (server-side apply on `/status` only when the status
//! differs; Events only on transitions; metrics) → requeue (interval ± jitter).
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
use std::time::{Duration, Instant};

use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::Event;
use kube::{Resource, ResourceExt};
use tracing::{debug, info, instrument, warn};

use super::decide::{self, Decision, Facts, Failure, Outcome, Thresholds};
use super::duration;
use super::error::Error;
use super::observe;
use super::schedule::{self, Due};
use crate::api::backend::{ProbeMode as SpecProbeMode, StorageBackend, StorageBackendStatus};
use crate::api::reasons::backend_reason;
use crate::context::{Context, FIELD_MANAGER};
use crate::metrics::{BackendLabels, ControllerLabels, ErrorLabels, ValidationLabels};
use crate::resolve::{LastProbe, ResolveError};
use crate::storage::{ErrorKind, ObjectStore, ProbeMode, StorageError};

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

/// Parses `spec.validation`; a duration the schema should have rejected is `InvalidSpec`.
fn validation_of(backend: &StorageBackend) -> Result<Validation, ResolveError> {
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
        interval,
        timeout,
        thresholds: Thresholds {
            success: v.success_threshold.max(1),
            failure: v.failure_threshold.max(1),
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
        reason: e.reason().unwrap_or(backend_reason::INVALID_SPEC),
        terminal: true,
        message: text.clone(),
        detail: text,
    })
}

/// A probe failure as a decision outcome. Object-level kinds say nothing about the backend and
/// never reach here as such (see [`probe`]); a body cut mid-stream is a server problem.
fn probe_failure(e: &StorageError) -> Outcome {
    let reason = e.backend_reason().unwrap_or(backend_reason::SERVER_ERROR);
    Outcome::ProbeFailed(Failure {
        reason,
        terminal: e.is_terminal(),
        message: decide::summary(reason).to_owned(),
        detail: e.to_string(),
    })
}

/// Runs the probe under `timeout`. A known mapped object that is missing is the mapping
/// controller's business (`ObjectMissing`), not a backend failure: the probe is then repeated
/// without it, so that the bucket and the credentials are still judged.
async fn probe(
    store: &dyn ObjectStore,
    mode: ProbeMode,
    known_key: Option<&str>,
    timeout: Duration,
) -> Outcome {
    let run = async {
        match store.probe(mode, known_key).await {
            Err(e) if e.kind() == ErrorKind::NotFound && known_key.is_some() => {
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
            ErrorKind::Timeout,
            format!(
                "the probe did not finish within {}",
                humantime::format_duration(timeout)
            ),
        )),
    }
}

/// Reconciles one StorageBackend: validates it when due and records the outcome in its status.
#[instrument(skip(obj, ctx), fields(namespace = %obj.namespace().unwrap_or_default(), backend = %obj.name_any()))]
pub async fn reconcile(obj: Arc<StorageBackend>, ctx: Arc<Context>) -> Result<Action, Error> {
    let started = Instant::now();
    let result = reconcile_steps(&obj, &ctx).await;
    ctx.metrics
        .reconcile_duration
        .get_or_create(&ControllerLabels {
            controller: CONTROLLER.to_owned(),
        })
        .observe(started.elapsed().as_secs_f64());
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
        ctx.resolver.forget(&uid);
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

    // Observe.
    let resolved = ctx.resolver.resolve(obj).await.map_err(Error::Resolve)?;
    let validation = validation_of(obj);
    let previous = obj.status.as_ref();
    let last_probe = ctx.resolver.last_probe(&resolved.inputs.uid);
    // Our own memory knows generation and Secret versions (and is never older than our last
    // write); after a restart only the generation can be compared, against the status.
    let inputs_changed = match &last_probe {
        Some(p) => p.inputs != resolved.inputs,
        None => previous.and_then(|s| s.observed_generation) != obj.metadata.generation,
    };
    let status_time = previous
        .and_then(|s| s.last_validation_time.as_ref())
        .map(|t| t.0);
    let own_time = last_probe
        .as_ref()
        .filter(|p| p.inputs == resolved.inputs)
        .map(|p| p.at);
    let last_validation = status_time.max(own_time);
    let interval = validation.as_ref().map(|v| v.interval).unwrap_or_default();
    let due = schedule::probe_due(&Due {
        inputs_changed,
        last_validation,
        interval,
        now,
    });

    // Probe.
    let outcome = if due {
        let started = Instant::now();
        let outcome = match (&validation, &resolved.store) {
            (Err(e), _) | (_, Err(e)) => config_error(e),
            (Ok(v), Ok(store)) => {
                let key = observe::known_key(obj, &ctx.mappings.state());
                probe(store.as_ref(), v.mode, key.as_deref(), v.timeout).await
            }
        };
        let labels = BackendLabels {
            namespace: namespace.clone(),
            backend: name.clone(),
        };
        ctx.metrics
            .validation_duration
            .get_or_create(&labels)
            .observe(started.elapsed().as_secs_f64());
        let reason = match &outcome {
            Outcome::Success => backend_reason::VALIDATED,
            Outcome::ProbeFailed(f) | Outcome::ConfigError(f) => f.reason,
        };
        ctx.metrics
            .validations
            .get_or_create(&ValidationLabels {
                namespace: namespace.clone(),
                backend: name.clone(),
                reason: reason.to_owned(),
            })
            .inc();
        Some(outcome)
    } else {
        None
    };

    // Decide.
    let (other_defaults, other_fallbacks) = observe::conflicts(obj, &ctx.backends.state());
    let decision = decide::decide(&Facts {
        generation: obj.metadata.generation,
        previous,
        inputs_changed,
        outcome: outcome.as_ref(),
        thresholds: validation
            .as_ref()
            .map(|v| v.thresholds)
            .unwrap_or(Thresholds {
                success: 1,
                failure: 1,
            }),
        location: ctx.resolver.location_of(obj),
        mappings: observe::mapping_counts(obj, &ctx.mappings.state()),
        other_defaults,
        other_fallbacks,
        now: k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
            k8s_openapi::jiff::Timestamp::from_second(now.as_second()).unwrap_or(now),
        ),
    });

    // Apply.
    apply(obj, ctx, &namespace, &name, &decision).await?;
    // Remembered only once the outcome is written: a failed write is probed again.
    if outcome.is_some() {
        ctx.resolver.record_probe(LastProbe {
            inputs: resolved.inputs.clone(),
            at: now,
        });
    } else if last_probe.is_none() {
        // After a restart: adopt what we see as the baseline (see `schedule`).
        if let Some(at) = last_validation {
            ctx.resolver.record_probe(LastProbe {
                inputs: resolved.inputs.clone(),
                at,
            });
        }
    }

    // Requeue.
    let last = if outcome.is_some() {
        Some(now)
    } else {
        last_validation
    };
    Ok(
        match schedule::requeue_after(interval, last, now, jitter()) {
            Some(after) => Action::requeue(after),
            None => Action::await_change(),
        },
    )
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

    let unchanged = obj.status.as_ref() == Some(&decision.status);
    if unchanged {
        debug!("status unchanged; nothing to write");
    } else {
        write_status(ctx, namespace, name, &decision.status).await?;
    }
    // Events after the write: a failed write is retried, and the transition with it.
    let reference = obj.object_ref(&());
    for transition in &decision.events {
        info!(reason = %transition.reason, "StorageBackend transition");
        let event = Event {
            type_: transition.type_,
            reason: transition.reason.clone(),
            note: Some(truncate(&transition.note, 1000)),
            action: "Validate".to_owned(),
            secondary: None,
        };
        if let Err(e) = ctx.recorder.publish(&event, &reference).await {
            // An event is best effort; the status already says it.
            warn!(error = %e, "publishing an event failed");
        }
    }
    Ok(())
}

async fn write_status(
    ctx: &Context,
    namespace: &str,
    name: &str,
    status: &StorageBackendStatus,
) -> Result<(), Error> {
    let api: Api<StorageBackend> = Api::namespaced(ctx.client.clone(), namespace);
    let patch = serde_json::json!({
        "apiVersion": StorageBackend::api_version(&()),
        "kind": StorageBackend::kind(&()),
        "status": status,
    });
    api.patch_status(
        name,
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&patch),
    )
    .await
    .map_err(Error::PatchStatus)?;
    Ok(())
}

fn truncate(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut cut = max;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}…", &text[..cut])
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
        let v = validation_of(&backend(serde_json::json!({"interval": "1h30m", "timeout": "500ms", "successThreshold": 3, "failureThreshold": 2, "probe": "ReadWrite"}))).unwrap();
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

        let defaults = validation_of(&backend(serde_json::json!({}))).unwrap();
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
            let err = validation_of(&backend(v)).expect_err(name);
            assert_eq!(err.reason(), Some("InvalidSpec"), "{name}");
        }
    }

    #[test]
    fn outcomes_carry_stable_messages_and_redacted_details() {
        let e = StorageError::new(
            ErrorKind::InvalidAccessKeyId,
            "HeadBucket: HTTP 403 InvalidAccessKeyId: no such key AKID",
        );
        match probe_failure(&e) {
            Outcome::ProbeFailed(f) => {
                assert_eq!(f.reason, "InvalidAccessKeyId");
                assert!(f.terminal);
                assert_eq!(
                    f.message,
                    decide::summary("InvalidAccessKeyId"),
                    "the condition message is the stable summary"
                );
                assert!(
                    f.detail.contains("HTTP 403"),
                    "the event detail keeps the server's words"
                );
            }
            other => panic!("unexpected {other:?}"),
        }
        match probe_failure(&StorageError::new(ErrorKind::BodyInterrupted, "cut")) {
            Outcome::ProbeFailed(f) => assert_eq!(
                (f.reason, f.terminal),
                ("ServerError", false),
                "a cut body is a transient server problem"
            ),
            other => panic!("unexpected {other:?}"),
        }
        match config_error(&ResolveError::SecretNotFound {
            name: "creds".into(),
        }) {
            Outcome::ConfigError(f) => assert_eq!(
                (f.reason, f.terminal, f.message.as_str()),
                ("SecretNotFound", true, "Secret \"creds\" not found")
            ),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn long_event_notes_are_cut_on_a_character_boundary() {
        assert_eq!(truncate("short", 10), "short");
        let cut = truncate(&"é".repeat(10), 5);
        assert_eq!(cut, "éé…");
    }
}
