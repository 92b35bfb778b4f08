//! Condition types and reasons: the stable CamelCase vocabulary that dashboards, alerts and
//! `kubectl wait` depend on. Renaming one is an API change.
//!
//! Owns: every reason a condition can carry, and everything the code needs to know about a
//! backend reason (terminal or transient, what it proves about the credentials and the endpoint,
//! its short condition message). Adding a reason is one variant here plus its row in
//! [`BackendReason::traits`]: the compiler points at every other place that must decide about it,
//! and [`BackendReason::all`] (metric series clean-up) follows by itself.
//!
//! Must not: depend on Kubernetes or storage types; it is the vocabulary they share.

use strum::{EnumCount, EnumIter, EnumString, IntoEnumIterator, IntoStaticStr};

/// Condition types of a `StorageBackend`.
pub mod backend_condition {
    pub const READY: &str = "Ready";
    pub const CREDENTIALS_VALID: &str = "CredentialsValid";
    pub const REACHABLE: &str = "Reachable";
    pub const STALLED: &str = "Stalled";
    /// More than one backend of the namespace has `default: true` (set on each of them).
    pub const DEFAULT_CONFLICT: &str = "DefaultConflict";
    /// More than one backend of the namespace has `fallback: true` (set on each of them).
    pub const FALLBACK_CONFLICT: &str = "FallbackConflict";
    /// Scrubbing found copies on this backend that are corrupt or missing (`Ready` still means
    /// "credentials and bucket work").
    pub const DEGRADED: &str = "Degraded";
}

/// Reasons of the `Degraded` condition of a `StorageBackend`.
pub mod integrity_reason {
    /// `Degraded=True`: some copies on the backend hold other bytes (digest or size).
    pub const CORRUPT_OBJECTS: &str = "CorruptObjects";
    /// `Degraded=True`: some copies are gone (and none is corrupt).
    pub const MISSING_OBJECTS: &str = "MissingObjects";
    /// `Degraded=False`: no finding stands.
    pub const NO_FINDINGS: &str = "NoFindings";
}

/// Condition types of an `ArtifactMapping`.
pub mod mapping_condition {
    pub const READY: &str = "Ready";
    pub const STRANDED: &str = "Stranded";
    pub const VERIFIED: &str = "Verified";
    pub const REASSIGNED: &str = "Reassigned";
}

/// Reasons of the `DefaultConflict` / `FallbackConflict` conditions (not validation outcomes).
pub mod conflict_reason {
    /// `DefaultConflict=True`: the other defaults are named in the message.
    pub const MULTIPLE_DEFAULTS: &str = "MultipleDefaults";
    /// `FallbackConflict=True`: the other fallbacks are named in the message.
    pub const MULTIPLE_FALLBACKS: &str = "MultipleFallbacks";
    /// A conflict condition that is False (the conflict was resolved).
    pub const NO_CONFLICT: &str = "NoConflict";
}

/// How a backend reason affects readiness and retries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Class {
    /// The backend works.
    Healthy,
    /// Nothing conclusive yet (first probe pending, success threshold not reached).
    Waiting,
    /// Does not heal by retrying: `Ready=False` and `Stalled=True` at once, until the spec or a
    /// Secret changes (or a probe succeeds again).
    Terminal,
    /// Retried; obeys `failureThreshold`; never sets `Stalled`.
    Transient,
}

/// What a validation outcome proves about the credentials (`CredentialsValid`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CredentialsVerdict {
    /// The server accepted them.
    Valid,
    /// The server (or the Secret) says they are unusable.
    Invalid,
    /// Nothing: keep what was known.
    Unproven,
}

/// What a validation outcome proves about the endpoint (`Reachable`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reach {
    /// The server answered (with success or with an error of its own).
    Answered,
    /// Nobody answered: refused, TLS failure, timeout.
    NoAnswer,
    /// Nothing was sent, or the answer proves nothing about reachability.
    Unproven,
}

/// Everything the controllers need to know about a backend reason.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Traits {
    pub class: Class,
    pub credentials: CredentialsVerdict,
    pub reach: Reach,
    /// The cause is local configuration (a Secret or the spec), not the server: a backend that
    /// failed only for such a reason needs no hysteresis once it works (nothing flapped).
    pub local_config: bool,
    /// The short, stable condition message (no server text, no request ids, no times).
    pub summary: &'static str,
}

/// The reason of a `StorageBackend`'s `Ready` condition: the outcome of its validation.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, EnumIter, EnumCount, EnumString, IntoStaticStr,
)]
pub enum BackendReason {
    /// The last probe succeeded.
    Validated,
    /// Waiting for the first probe, or for `successThreshold` consecutive good probes.
    Pending,
    /// Probing is disabled (`validation.interval: 0`) and nothing is known yet.
    NotValidated,
    InvalidAccessKeyId,
    SignatureDoesNotMatch,
    ExpiredToken,
    AccessDenied,
    NoSuchBucket,
    SecretNotFound,
    SecretKeyMissing,
    InvalidSpec,
    EndpointUnreachable,
    EndpointNotAllowed,
    #[strum(serialize = "TLSHandshakeFailed")]
    TlsHandshakeFailed,
    Timeout,
    Throttled,
    ServerError,
}

impl BackendReason {
    /// The reason as written in conditions, events and metric labels.
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// The reason a condition carries, if it is one of ours.
    pub fn parse(text: &str) -> Option<BackendReason> {
        text.parse().ok()
    }

    /// The one table of what each reason means.
    pub const fn traits(self) -> Traits {
        use BackendReason::*;
        use Class::*;
        use CredentialsVerdict::{Invalid, Unproven as CredUnproven, Valid};
        use Reach::{Answered, NoAnswer, Unproven as ReachUnproven};
        let (class, credentials, reach, local_config, summary) = match self {
            Validated => (
                Healthy,
                Valid,
                Answered,
                false,
                "the last validation succeeded",
            ),
            Pending => (
                Waiting,
                CredUnproven,
                ReachUnproven,
                false,
                "waiting for validation",
            ),
            NotValidated => (
                Waiting,
                CredUnproven,
                ReachUnproven,
                false,
                "periodic validation is disabled and the backend was never validated",
            ),
            InvalidAccessKeyId => (
                Terminal,
                Invalid,
                Answered,
                false,
                "the server does not know the access key id",
            ),
            SignatureDoesNotMatch => (
                Terminal,
                Invalid,
                Answered,
                false,
                "the server rejected the request signature (wrong secret access key)",
            ),
            ExpiredToken => (
                Terminal,
                Invalid,
                Answered,
                false,
                "the session token has expired",
            ),
            AccessDenied => (
                Terminal,
                Invalid,
                Answered,
                false,
                "the credentials are not allowed to read the bucket",
            ),
            NoSuchBucket => (
                Terminal,
                CredUnproven,
                Answered,
                false,
                "the bucket does not exist on the server",
            ),
            SecretNotFound => (
                Terminal,
                Invalid,
                ReachUnproven,
                true,
                "the referenced Secret does not exist",
            ),
            SecretKeyMissing => (
                Terminal,
                Invalid,
                ReachUnproven,
                true,
                "a referenced Secret key is missing or empty",
            ),
            InvalidSpec => (
                Terminal,
                CredUnproven,
                ReachUnproven,
                true,
                "the server rejected the request as configured",
            ),
            EndpointUnreachable => (
                Transient,
                CredUnproven,
                NoAnswer,
                false,
                "the endpoint could not be reached",
            ),
            EndpointNotAllowed => (
                Terminal,
                CredUnproven,
                NoAnswer,
                true,
                "the endpoint is in a network the operator does not connect to (loopback, link-local, instance metadata)",
            ),
            TlsHandshakeFailed => (
                Transient,
                CredUnproven,
                NoAnswer,
                false,
                "the TLS handshake with the endpoint failed",
            ),
            Timeout => (
                Transient,
                CredUnproven,
                NoAnswer,
                false,
                "the probe timed out",
            ),
            Throttled => (
                Transient,
                CredUnproven,
                Answered,
                false,
                "the server is throttling requests",
            ),
            ServerError => (
                Transient,
                CredUnproven,
                Answered,
                false,
                "the server answered with an internal error",
            ),
        };
        Traits {
            class,
            credentials,
            reach,
            local_config,
            summary,
        }
    }

    pub fn is_terminal(self) -> bool {
        self.traits().class == Class::Terminal
    }

    /// The short, stable condition message.
    pub fn summary(self) -> &'static str {
        self.traits().summary
    }

    /// Every reason, for code that must visit all of them (e.g. removing metric series).
    pub fn all() -> impl Iterator<Item = BackendReason> {
        BackendReason::iter()
    }
}

impl std::fmt::Display for BackendReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The reasons an `ArtifactMapping` condition carries.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, EnumIter, EnumCount, EnumString, IntoStaticStr,
)]
pub enum MappingReason {
    /// Served by the backend it was written to.
    Declared,
    /// Served by another backend whose bytes re-verified against the digest.
    DigestVerified,
    /// Kept on a previously verified backend while the declared one is unusable.
    Sticky,
    BackendInvalid,
    BackendMissing,
    BackendQuarantined,
    ObjectMissing,
    NoVerifiedReplica,
    DigestMismatch,
    SizeMismatch,
    /// `reassignment: Never`: stranded, and left where it is on purpose.
    ReassignmentDisabled,
    NotStranded,
    NotReassigned,
}

impl MappingReason {
    /// The reason as written in conditions, events and metric labels.
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// The reason a condition carries, if it is one of ours.
    pub fn parse(text: &str) -> Option<MappingReason> {
        text.parse().ok()
    }
}

impl std::fmt::Display for MappingReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_strings_are_the_documented_camel_case_names() {
        let cases = [
            (BackendReason::Validated, "Validated"),
            (BackendReason::TlsHandshakeFailed, "TLSHandshakeFailed"),
            (BackendReason::InvalidAccessKeyId, "InvalidAccessKeyId"),
            (BackendReason::SecretKeyMissing, "SecretKeyMissing"),
            (
                BackendReason::SignatureDoesNotMatch,
                "SignatureDoesNotMatch",
            ),
            (BackendReason::ServerError, "ServerError"),
            (BackendReason::Throttled, "Throttled"),
        ];
        for (reason, wire) in cases {
            assert_eq!(reason.as_str(), wire);
            assert_eq!(
                BackendReason::parse(wire),
                Some(reason),
                "{wire} parses back"
            );
        }
        assert_eq!(
            MappingReason::NoVerifiedReplica.as_str(),
            "NoVerifiedReplica"
        );
        assert_eq!(BackendReason::parse("Nonsense"), None);
    }

    #[test]
    fn auth_and_config_failures_are_terminal_and_network_failures_transient() {
        use BackendReason::*;
        for r in [
            InvalidAccessKeyId,
            SignatureDoesNotMatch,
            ExpiredToken,
            AccessDenied,
            NoSuchBucket,
            SecretNotFound,
            SecretKeyMissing,
            InvalidSpec,
        ] {
            assert!(r.is_terminal(), "{r} is terminal");
        }
        for r in [
            EndpointUnreachable,
            TlsHandshakeFailed,
            Timeout,
            Throttled,
            ServerError,
        ] {
            assert_eq!(r.traits().class, Class::Transient, "{r} is transient");
        }
    }

    #[test]
    fn every_failure_has_its_own_summary() {
        let summaries: std::collections::HashSet<_> =
            BackendReason::all().map(BackendReason::summary).collect();
        assert_eq!(summaries.len(), BackendReason::COUNT);
    }
}
