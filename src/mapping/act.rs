//! The acting layer of the ArtifactMapping controller: a short driver of named steps.
//!
//! `observe` (backends of the mapping's namespace from the reflector cache, object facts from the
//! verifier's memory or the mapping's own status, a HEAD on the declared backend only when
//! nothing is known) → `decide` (pure) → `verify_candidates` (in order, through the shared,
//! bounded [`Verifier`](super::Verifier); first match wins) → `outcome` (pure) → one status write
//! (server-side apply on `/status`, only when the status changed) → events and metrics.
//!
//! Must not: list from the API server, write spec, or use a backend of another namespace.

use std::sync::Arc;
use std::time::{Duration, Instant};

use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType};
use kube::{Resource, ResourceExt};
use tracing::{debug, info, instrument, warn};

use super::decide::{
    self, Attempt, AttemptResult, BackendFacts, BackendState, Candidate, EventKind, MappingState,
    ObjectFact, Plan,
};
use super::verify::{Fact, Target, Verdict};
use super::Error;
use crate::api::condition;
use crate::api::reasons::mapping_condition;
use crate::api::{ArtifactMapping, ArtifactMappingStatus, StorageBackend};
use crate::context::{Context, FIELD_MANAGER};
use crate::digest::Digest;
use crate::metrics::{
    ControllerLabels, ErrorLabels, MappingStateLabels, MismatchLabels, ResultLabels,
};
use crate::storage::layout;

/// The controller name in metrics.
pub const CONTROLLER: &str = "artifactmapping";
/// Shortest pause before retrying a mapping with no verified replica.
pub const MIN_RETRY: Duration = Duration::from_secs(5);
/// Pause after a transient reconcile error.
pub const ERROR_RETRY: Duration = Duration::from_secs(10);

/// Reconciles one mapping. Writes its status at most once, and not at all when nothing changed.
#[instrument(skip_all, fields(namespace = obj.metadata.namespace.as_deref().unwrap_or(""), name = obj.metadata.name.as_deref().unwrap_or("")))]
pub async fn reconcile(obj: Arc<ArtifactMapping>, ctx: Arc<Context>) -> Result<Action, Error> {
    let started = Instant::now();
    let result = reconcile_steps(&obj, &ctx).await;
    ctx.metrics
        .reconcile_duration
        .get_or_create(&ControllerLabels {
            controller: CONTROLLER.to_string(),
        })
        .observe(started.elapsed().as_secs_f64());
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
        Action::requeue(ctx.settings.max_backoff)
    } else {
        Action::requeue(ERROR_RETRY.min(ctx.settings.max_backoff))
    }
}

async fn reconcile_steps(obj: &ArtifactMapping, ctx: &Context) -> Result<Action, Error> {
    let namespace = obj.namespace().ok_or(Error::MissingNamespace)?;
    let digest: Digest = obj.spec.digest.parse().map_err(Error::InvalidDigest)?;
    let backends = namespace_backends(ctx, &namespace);
    let facts = observe(obj, &digest, &backends, ctx).await?;
    let plan = decide::decide(obj, &facts);
    let attempts = match &plan {
        Plan::Stranded { candidates, .. } => {
            verify_candidates(obj, &namespace, &digest, candidates, &backends, ctx).await
        }
        _ => Vec::new(),
    };
    let now = ctx.clock.now_time();
    let outcome = decide::outcome(obj, &plan, &attempts, &now);
    write_status(obj, &namespace, &outcome.status, ctx).await?;
    publish(obj, &outcome.events, ctx).await;
    record_metrics(&namespace, &plan, &outcome, ctx);
    Ok(
        match decide::retry_after(&outcome.status, &now, MIN_RETRY, ctx.settings.max_backoff) {
            Some(pause) => Action::requeue(pause),
            None => Action::await_change(),
        },
    )
}

/// The backends of the mapping's namespace, and only those, from the reflector cache.
fn namespace_backends(ctx: &Context, namespace: &str) -> Vec<Arc<StorageBackend>> {
    let mut backends: Vec<_> = ctx
        .backends
        .state()
        .into_iter()
        .filter(|b| b.metadata.namespace.as_deref() == Some(namespace))
        .collect();
    backends.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    backends
}

/// The object key of the mapping on a backend with `key_prefix` (`spec.key` when set, else the
/// layout key). Clients reading a mapping (`castellan get`) use it too.
pub fn key_on(obj: &ArtifactMapping, key_prefix: &str, digest: &Digest) -> String {
    match obj.spec.key.as_deref() {
        Some(key) => key.to_string(),
        None => layout::key_for(key_prefix, digest),
    }
}

fn declared_size(obj: &ArtifactMapping) -> Option<u64> {
    obj.spec.size.and_then(|s| u64::try_from(s).ok())
}

/// Gathers what is known about each backend and the object on it. I/O only for the declared
/// backend, only when usable and nothing is known (not from the verifier's memory, not from the
/// mapping's own status): one HEAD.
async fn observe(
    obj: &ArtifactMapping,
    digest: &Digest,
    backends: &[Arc<StorageBackend>],
    ctx: &Context,
) -> Result<Vec<BackendFacts>, Error> {
    let status = obj.status.clone().unwrap_or_default();
    let mut facts = Vec::with_capacity(backends.len());
    for backend in backends {
        let name = backend.name_any();
        let state = BackendState::of(backend);
        let key = key_on(obj, &state.key_prefix, digest);
        let mut object = remembered(ctx, &state.location, &key, digest)
            .or_else(|| from_status(obj, &status, &name, &key))
            .unwrap_or(ObjectFact::Unknown);
        if object == ObjectFact::Unknown && name == obj.spec.backend_ref.name && state.usable() {
            let store = ctx
                .resolver
                .store_for(backend)
                .await
                .map_err(|source| Error::Resolve {
                    backend: name.clone(),
                    source,
                })?;
            let target = Target {
                location: state.location.clone(),
                key: key.clone(),
                digest: digest.clone(),
                size: declared_size(obj),
            };
            object = match ctx.verifier.head(store, &target).await {
                Ok(Some(size)) => ObjectFact::Present { size },
                Ok(None) => ObjectFact::Missing,
                Err(source) => {
                    return Err(Error::Storage {
                        backend: name.clone(),
                        source,
                    })
                }
            };
        }
        facts.push(BackendFacts {
            name,
            ready: state.ready,
            trust: state.trust,
            location: state.location,
            default: state.default,
            fallback: state.fallback,
            priority: state.priority,
            key,
            object,
        });
    }
    Ok(facts)
}

/// The verifier's memory of the object at `(location, key)`.
fn remembered(ctx: &Context, location: &str, key: &str, digest: &Digest) -> Option<ObjectFact> {
    Some(match ctx.verifier.known(location, key, digest)? {
        Fact::Present { size } => ObjectFact::Present { size },
        Fact::Verdict { verdict, .. } => match verdict {
            Verdict::Verified { .. } => ObjectFact::Verified,
            Verdict::DigestMismatch { .. } => ObjectFact::Mismatch,
            Verdict::SizeMismatch { actual, .. } => ObjectFact::Present { size: actual },
            Verdict::Missing => ObjectFact::Missing,
            Verdict::Truncated { .. } | Verdict::Failed(_) => return None,
        },
    })
}

/// What the mapping's own status says about the object on `backend`: the status is what this
/// controller concluded earlier, so a restart does not re-HEAD every served mapping.
fn from_status(
    obj: &ArtifactMapping,
    status: &ArtifactMappingStatus,
    backend: &str,
    key: &str,
) -> Option<ObjectFact> {
    let serving = status.backend.as_deref() == Some(backend)
        && status.key.as_deref() == Some(key)
        && condition::is_true(&status.conditions, mapping_condition::READY);
    if !serving {
        return None;
    }
    if condition::is_true(&status.conditions, mapping_condition::VERIFIED) {
        Some(ObjectFact::Verified)
    } else {
        Some(ObjectFact::Present {
            size: declared_size(obj).unwrap_or(0),
        })
    }
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
        let target = Target {
            location: candidate.location.clone(),
            key: candidate.key.clone(),
            digest: digest.clone(),
            size: declared_size(obj),
        };
        let result = match ctx.resolver.store_for(backend).await {
            Err(err) => AttemptResult::Failed {
                message: err.to_string(),
            },
            Ok(store) => {
                let (verdict, at) = ctx
                    .verifier
                    .verify(store, &target, ctx.clock.now_time())
                    .await;
                match verdict {
                    Verdict::Verified { .. } => AttemptResult::Verified { at },
                    Verdict::DigestMismatch { actual } => {
                        ctx.metrics
                            .digest_mismatches
                            .get_or_create(&MismatchLabels {
                                namespace: namespace.to_string(),
                                backend: candidate.backend.clone(),
                            })
                            .inc();
                        AttemptResult::DigestMismatch {
                            actual: actual.to_string(),
                        }
                    }
                    Verdict::SizeMismatch { expected, actual } => {
                        AttemptResult::SizeMismatch { expected, actual }
                    }
                    Verdict::Missing => AttemptResult::Missing,
                    Verdict::Truncated { expected, received } => AttemptResult::Failed {
                        message: format!("download truncated at {received} of {expected} bytes"),
                    },
                    Verdict::Failed(err) => AttemptResult::Failed {
                        message: err.to_string(),
                    },
                }
            }
        };
        debug!(backend = %candidate.backend, ?result, "candidate verified");
        let done = matches!(result, AttemptResult::Verified { .. });
        attempts.push(Attempt {
            backend: candidate.backend.clone(),
            result,
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
    status: &ArtifactMappingStatus,
    ctx: &Context,
) -> Result<(), Error> {
    if obj.status.as_ref() == Some(status) {
        return Ok(());
    }
    let api: Api<ArtifactMapping> = Api::namespaced(ctx.client.clone(), namespace);
    let body = serde_json::json!({
        "apiVersion": ArtifactMapping::api_version(&()),
        "kind": ArtifactMapping::kind(&()),
        "status": status,
    });
    api.patch_status(
        &obj.name_any(),
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&body),
    )
    .await
    .map_err(Error::StatusPatch)?;
    Ok(())
}

/// Publishes the outcome's events; a failed publish is logged, never fails the reconcile.
async fn publish(obj: &ArtifactMapping, events: &[decide::EventSpec], ctx: &Context) {
    if events.is_empty() {
        return;
    }
    let reference = obj.object_ref(&());
    for event in events {
        let type_ = match event.kind {
            EventKind::Normal => EventType::Normal,
            EventKind::Warning => EventType::Warning,
        };
        if event.kind == EventKind::Normal {
            info!(reason = event.reason, note = %event.note, "mapping moved");
        }
        let published = ctx
            .recorder
            .publish(
                &Event {
                    type_,
                    reason: event.reason.to_string(),
                    note: Some(event.note.clone()),
                    action: event.action.to_string(),
                    secondary: None,
                },
                &reference,
            )
            .await;
        if let Err(err) = published {
            warn!(error = %err, reason = event.reason, "publishing an event failed");
        }
    }
}

fn record_metrics(namespace: &str, plan: &Plan, outcome: &decide::Outcome, ctx: &Context) {
    let result = match (&outcome.moved, outcome.state, plan) {
        (Some(m), _, _) if m.reason == crate::api::reasons::mapping_reason::DECLARED => {
            Some("returned_home")
        }
        (Some(_), _, _) => Some("reassigned"),
        (
            None,
            MappingState::Stranded,
            Plan::Stranded {
                reassignment_disabled: false,
                ..
            },
        ) => Some("no_verified_replica"),
        _ => None,
    };
    if let Some(result) = result {
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
