//! Condition types and reasons: stable CamelCase constants that dashboards, alerts and
//! `kubectl wait` depend on. Renaming one is an API change.

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
}

/// Condition types of an `ArtifactMapping`.
pub mod mapping_condition {
    pub const READY: &str = "Ready";
    pub const STRANDED: &str = "Stranded";
    pub const VERIFIED: &str = "Verified";
    pub const REASSIGNED: &str = "Reassigned";
}

/// Reasons a `StorageBackend` condition carries.
pub mod backend_reason {
    /// The last probe succeeded.
    pub const VALIDATED: &str = "Validated";
    /// Waiting for the first probe, or for `successThreshold` consecutive good probes.
    pub const PENDING: &str = "Pending";
    /// Probing is disabled (`validation.interval: 0`) and nothing is known yet.
    pub const NOT_VALIDATED: &str = "NotValidated";

    // Terminal until the spec or the Secret changes (Ready=False, Stalled=True).
    pub const INVALID_ACCESS_KEY_ID: &str = "InvalidAccessKeyId";
    pub const SIGNATURE_DOES_NOT_MATCH: &str = "SignatureDoesNotMatch";
    pub const EXPIRED_TOKEN: &str = "ExpiredToken";
    pub const ACCESS_DENIED: &str = "AccessDenied";
    pub const NO_SUCH_BUCKET: &str = "NoSuchBucket";
    pub const SECRET_NOT_FOUND: &str = "SecretNotFound";
    pub const SECRET_KEY_MISSING: &str = "SecretKeyMissing";
    pub const INVALID_SPEC: &str = "InvalidSpec";

    // Transient: obey failureThreshold, never set Stalled.
    pub const ENDPOINT_UNREACHABLE: &str = "EndpointUnreachable";
    pub const TLS_HANDSHAKE_FAILED: &str = "TLSHandshakeFailed";
    pub const TIMEOUT: &str = "Timeout";
    pub const THROTTLED: &str = "Throttled";
    pub const SERVER_ERROR: &str = "ServerError";

    // Reasons of the DefaultConflict / FallbackConflict conditions (not validation outcomes).
    /// `DefaultConflict=True`: the other defaults are named in the message.
    pub const MULTIPLE_DEFAULTS: &str = "MultipleDefaults";
    /// `FallbackConflict=True`: the other fallbacks are named in the message.
    pub const MULTIPLE_FALLBACKS: &str = "MultipleFallbacks";
    /// A conflict condition that is False (the conflict was resolved).
    pub const NO_CONFLICT: &str = "NoConflict";

    /// Every validation-outcome reason above, for code that must visit all of them (e.g.
    /// removing metric series); the conflict reasons are not validation outcomes.
    pub const ALL: &[&str] = &[
        VALIDATED,
        PENDING,
        NOT_VALIDATED,
        INVALID_ACCESS_KEY_ID,
        SIGNATURE_DOES_NOT_MATCH,
        EXPIRED_TOKEN,
        ACCESS_DENIED,
        NO_SUCH_BUCKET,
        SECRET_NOT_FOUND,
        SECRET_KEY_MISSING,
        INVALID_SPEC,
        ENDPOINT_UNREACHABLE,
        TLS_HANDSHAKE_FAILED,
        TIMEOUT,
        THROTTLED,
        SERVER_ERROR,
    ];
}

/// Reasons an `ArtifactMapping` condition carries.
pub mod mapping_reason {
    /// Served by the backend it was written to.
    pub const DECLARED: &str = "Declared";
    /// Served by another backend whose bytes re-verified against the digest.
    pub const DIGEST_VERIFIED: &str = "DigestVerified";
    /// Kept on a previously verified backend while the declared one is unusable.
    pub const STICKY: &str = "Sticky";
    pub const BACKEND_INVALID: &str = "BackendInvalid";
    pub const BACKEND_MISSING: &str = "BackendMissing";
    pub const BACKEND_QUARANTINED: &str = "BackendQuarantined";
    pub const OBJECT_MISSING: &str = "ObjectMissing";
    pub const NO_VERIFIED_REPLICA: &str = "NoVerifiedReplica";
    pub const DIGEST_MISMATCH: &str = "DigestMismatch";
    pub const SIZE_MISMATCH: &str = "SizeMismatch";
    /// `reassignment: Never`: stranded, and left where it is on purpose.
    pub const REASSIGNMENT_DISABLED: &str = "ReassignmentDisabled";
    pub const NOT_STRANDED: &str = "NotStranded";
    pub const NOT_REASSIGNED: &str = "NotReassigned";
}
