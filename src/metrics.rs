//! Prometheus metrics: one registry, one struct, label sets as plain structs.
//!
//! Every failure mode has a counter; per-object series are removed when their object is deleted
//! (`forget_backend`, `set_mapping_states`), so dashboards never show ghosts.
//!
//! Must not: carry a label that can grow without bound (keys, digests, error texts).

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::{text::encode, EncodeLabelSet};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

/// Labels of per-backend series.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BackendLabels {
    pub namespace: String,
    pub backend: String,
}

/// Labels of validation outcomes.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ValidationLabels {
    pub namespace: String,
    pub backend: String,
    /// The condition reason of the outcome (`Validated`, `InvalidAccessKeyId`, ...).
    pub reason: String,
}

/// Labels of mapping-state gauges.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct MappingStateLabels {
    pub namespace: String,
    /// `declared`, `reassigned`, `stranded`, `pending`.
    pub state: String,
}

/// Labels of results (reassignments, verifications).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabels {
    pub result: String,
}

/// Labels of digest mismatches: which backend holds bad bytes.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct MismatchLabels {
    pub namespace: String,
    pub backend: String,
}

/// Labels of per-backend results (scrub reads, findings).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BackendResultLabels {
    pub namespace: String,
    pub backend: String,
    /// A verdict label (`verified`, `digest_mismatch`, ...) or a finding reason.
    pub result: String,
}

/// Labels of reconcile series.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ControllerLabels {
    pub controller: String,
}

/// Labels of reconcile errors.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabels {
    pub controller: String,
    /// A stable error label (the error variant).
    pub error: String,
}

/// All of the operator's metrics.
pub struct Metrics {
    registry: Registry,
    /// 1 when the backend is Ready, 0 otherwise.
    pub backend_ready: Family<BackendLabels, Gauge>,
    /// Validation outcomes by reason.
    pub validations: Family<ValidationLabels, Counter>,
    /// Probe latency.
    pub validation_duration: Family<BackendLabels, Histogram>,
    /// Mappings by state, per namespace.
    pub mappings: Family<MappingStateLabels, Gauge>,
    /// Reassignments by result (`reassigned`, `returned_home`, `no_verified_replica`).
    pub reassignments: Family<ResultLabels, Counter>,
    /// Verifications by result (`verified`, `digest_mismatch`, `size_mismatch`, `truncated`, `missing`, `error`).
    pub verifications: Family<ResultLabels, Counter>,
    /// Bytes streamed through digest verification.
    pub verified_bytes: Counter<u64, AtomicU64>,
    /// Digest mismatches by backend.
    pub digest_mismatches: Family<MismatchLabels, Counter>,
    /// Scrub reads by backend and result.
    pub scrub_verifications: Family<BackendResultLabels, Counter>,
    /// Bytes read by scrubbing, by backend.
    pub scrub_bytes: Family<BackendLabels, Counter>,
    /// Age of the oldest unverified copy a backend serves, at the start of its scrub pass.
    pub scrub_lag_seconds: Family<BackendLabels, Gauge<f64, std::sync::atomic::AtomicU64>>,
    /// New findings (copies corrupt or missing) by backend and reason.
    pub findings: Family<BackendResultLabels, Counter>,
    /// Repairs of bad copies by backend and result (`repaired`, `failed`).
    pub repairs: Family<BackendResultLabels, Counter>,
    /// Reconcile durations.
    pub reconcile_duration: Family<ControllerLabels, Histogram>,
    /// Reconcile errors by controller and error label.
    pub reconcile_errors: Family<ErrorLabels, Counter>,
}

fn latency_histogram() -> Histogram {
    // 1 ms .. ~33 s
    Histogram::new(exponential_buckets(0.001, 2.0, 16))
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("castellan");
        let backend_ready = Family::<BackendLabels, Gauge>::default();
        registry.register(
            "backend_ready",
            "Whether a StorageBackend is Ready (1) or not (0)",
            backend_ready.clone(),
        );
        let validations = Family::<ValidationLabels, Counter>::default();
        registry.register(
            "backend_validations",
            "Backend validation outcomes by reason",
            validations.clone(),
        );
        let validation_duration = Family::<BackendLabels, Histogram>::new_with_constructor(
            latency_histogram as fn() -> Histogram,
        );
        registry.register(
            "backend_validation_duration_seconds",
            "Time taken by one backend validation probe",
            validation_duration.clone(),
        );
        let mappings = Family::<MappingStateLabels, Gauge>::default();
        registry.register("mappings", "ArtifactMappings by state", mappings.clone());
        let reassignments = Family::<ResultLabels, Counter>::default();
        registry.register(
            "reassignments",
            "Mapping reassignments by result",
            reassignments.clone(),
        );
        let verifications = Family::<ResultLabels, Counter>::default();
        registry.register(
            "verifications",
            "Digest verifications by result",
            verifications.clone(),
        );
        let verified_bytes = Counter::<u64, AtomicU64>::default();
        registry.register(
            "verified_bytes",
            "Bytes streamed through digest verification",
            verified_bytes.clone(),
        );
        let digest_mismatches = Family::<MismatchLabels, Counter>::default();
        registry.register(
            "digest_mismatches",
            "Replicas whose bytes did not match the digest, by backend",
            digest_mismatches.clone(),
        );
        let scrub_verifications = Family::<BackendResultLabels, Counter>::default();
        registry.register(
            "scrub_verifications",
            "Scrub reads of served and bad copies, by backend and result",
            scrub_verifications.clone(),
        );
        let scrub_bytes = Family::<BackendLabels, Counter>::default();
        registry.register(
            "scrub_bytes",
            "Bytes read by scrubbing, by backend",
            scrub_bytes.clone(),
        );
        let scrub_lag_seconds =
            Family::<BackendLabels, Gauge<f64, std::sync::atomic::AtomicU64>>::default();
        registry.register(
            "scrub_lag_seconds",
            "Age of the oldest unverified copy a backend serves, at the start of its scrub pass",
            scrub_lag_seconds.clone(),
        );
        let findings = Family::<BackendResultLabels, Counter>::default();
        registry.register(
            "findings",
            "Copies found corrupt or missing, by backend and reason",
            findings.clone(),
        );
        let repairs = Family::<BackendResultLabels, Counter>::default();
        registry.register(
            "repairs",
            "Repairs of bad copies from verified ones, by backend and result",
            repairs.clone(),
        );
        let reconcile_duration = Family::<ControllerLabels, Histogram>::new_with_constructor(
            latency_histogram as fn() -> Histogram,
        );
        registry.register(
            "reconcile_duration_seconds",
            "Reconcile durations by controller",
            reconcile_duration.clone(),
        );
        let reconcile_errors = Family::<ErrorLabels, Counter>::default();
        registry.register(
            "reconcile_errors",
            "Reconcile errors by controller and error",
            reconcile_errors.clone(),
        );
        Self {
            registry,
            backend_ready,
            validations,
            validation_duration,
            mappings,
            reassignments,
            verifications,
            verified_bytes,
            digest_mismatches,
            scrub_verifications,
            scrub_bytes,
            scrub_lag_seconds,
            findings,
            repairs,
            reconcile_duration,
            reconcile_errors,
        }
    }

    /// The metrics in the Prometheus text exposition format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        encode(&mut out, &self.registry).expect("writing to a String cannot fail");
        out
    }

    /// Records how long one reconcile of `controller` took.
    pub fn observe_reconcile(&self, controller: &str, elapsed: std::time::Duration) {
        self.reconcile_duration
            .get_or_create(&ControllerLabels {
                controller: controller.to_string(),
            })
            .observe(elapsed.as_secs_f64());
    }

    /// Sets `castellan_mappings{namespace, state}` from `(state label, count)` pairs; a namespace
    /// with no mappings left loses its series instead of reporting zeros forever.
    pub fn set_mapping_states(&self, namespace: &str, counts: &[(&str, i64)]) {
        let empty = counts.iter().all(|(_, n)| *n == 0);
        for (state, count) in counts {
            let labels = MappingStateLabels {
                namespace: namespace.to_string(),
                state: state.to_string(),
            };
            if empty {
                self.mappings.remove(&labels);
            } else {
                self.mappings.get_or_create(&labels).set(*count);
            }
        }
    }

    /// Remove every series of a deleted backend.
    pub fn forget_backend(&self, namespace: &str, backend: &str) {
        let labels = BackendLabels {
            namespace: namespace.to_string(),
            backend: backend.to_string(),
        };
        self.backend_ready.remove(&labels);
        self.scrub_bytes.remove(&labels);
        self.scrub_lag_seconds.remove(&labels);
        for result in crate::storage::verify::Verdict::METRIC_LABELS
            .iter()
            .chain(&[
                "DigestMismatch",
                "SizeMismatch",
                "ObjectMissing",
                "repaired",
                "failed",
            ])
        {
            let labels = BackendResultLabels {
                namespace: namespace.to_string(),
                backend: backend.to_string(),
                result: result.to_string(),
            };
            self.scrub_verifications.remove(&labels);
            self.findings.remove(&labels);
            self.repairs.remove(&labels);
        }
        self.validation_duration.remove(&labels);
        for reason in crate::api::reasons::BackendReason::all() {
            self.validations.remove(&ValidationLabels {
                namespace: namespace.to_string(),
                backend: backend.to_string(),
                reason: reason.as_str().to_string(),
            });
        }
        self.digest_mismatches.remove(&MismatchLabels {
            namespace: namespace.to_string(),
            backend: backend.to_string(),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_namespace_without_mappings_loses_its_series() {
        let metrics = Metrics::new();
        metrics.set_mapping_states("team-a", &[("declared", 2), ("stranded", 0)]);
        let text = metrics.render();
        assert!(
            text.contains(r#"namespace="team-a",state="declared"} 2"#),
            "{text}"
        );
        assert!(
            text.contains(r#"namespace="team-a",state="stranded"} 0"#),
            "{text}"
        );
        metrics.set_mapping_states("team-a", &[("declared", 0), ("stranded", 0)]);
        assert!(!metrics.render().contains("team-a"));
    }

    #[test]
    fn a_deleted_backend_loses_its_series() {
        let metrics = Metrics::new();
        let labels = BackendLabels {
            namespace: "team-a".into(),
            backend: "b".into(),
        };
        metrics.backend_ready.get_or_create(&labels).set(1);
        metrics
            .validations
            .get_or_create(&ValidationLabels {
                namespace: "team-a".into(),
                backend: "b".into(),
                reason: "InvalidAccessKeyId".into(),
            })
            .inc();
        assert!(metrics.render().contains(r#"backend="b""#));
        metrics.forget_backend("team-a", "b");
        assert!(!metrics.render().contains(r#"backend="b""#));
    }
}
