//! Storage errors: one type, [`StorageError`], carrying a classified [`ErrorKind`], whether it
//! is terminal, and a short redacted message.
//!
//! Owns: the mapping from what an S3 server said (HTTP status, error code, message) or how the
//! request failed before any answer (refused, TLS, timeout) onto DESIGN's reasons. The mapping is
//! the pure function [`classify`]; [`from_sdk_error`] only gathers facts from an aws-sdk error
//! and feeds them in. Servers disagree (see `docs/s3-servers.md`): Garage reports an unknown key
//! as `AccessDenied` "Forbidden: No such key", s3s as `NotSignedUp`; both become
//! `InvalidAccessKeyId` here.
//!
//! Must not: keep request ids, signatures, presigned query strings or credential material in a
//! message.

use std::fmt;

use crate::api::reasons::BackendReason;

/// What went wrong: a failure of the backend (a reason of DESIGN's vocabulary, which says
/// whether it is terminal), or an outcome about one object that says nothing about the backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The backend failed: credentials, bucket, configuration, network or server.
    Backend(BackendReason),
    /// The key does not exist (`NoSuchKey`, or 404 on HEAD).
    NotFound,
    /// A response body stopped before its end (connection cut mid-stream).
    BodyInterrupted,
}

impl ErrorKind {
    /// Terminal failures do not heal by retrying: they need a spec or Secret change.
    pub fn is_terminal(self) -> bool {
        self.backend_reason()
            .is_some_and(BackendReason::is_terminal)
    }

    /// The `StorageBackend` condition reason for a backend failure; `None` for object-level
    /// outcomes, which say nothing about the backend's health.
    pub fn backend_reason(self) -> Option<BackendReason> {
        match self {
            ErrorKind::Backend(reason) => Some(reason),
            ErrorKind::NotFound | ErrorKind::BodyInterrupted => None,
        }
    }

    /// A stable CamelCase label (metrics, logs): the backend reason, or the object outcome.
    pub fn label(self) -> &'static str {
        match self {
            ErrorKind::Backend(reason) => reason.as_str(),
            ErrorKind::NotFound => "NotFound",
            ErrorKind::BodyInterrupted => "BodyInterrupted",
        }
    }
}

impl From<BackendReason> for ErrorKind {
    fn from(reason: BackendReason) -> ErrorKind {
        ErrorKind::Backend(reason)
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// A classified storage failure with a short, redacted message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorageError {
    kind: ErrorKind,
    message: String,
}

impl StorageError {
    /// `message` is redacted and shortened here; callers may pass raw server text.
    pub fn new(kind: impl Into<ErrorKind>, message: impl AsRef<str>) -> StorageError {
        StorageError {
            kind: kind.into(),
            message: redact(message.as_ref(), &[]),
        }
    }

    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    pub fn is_terminal(&self) -> bool {
        self.kind.is_terminal()
    }

    pub fn is_transient(&self) -> bool {
        !self.kind.is_terminal()
    }

    pub fn backend_reason(&self) -> Option<BackendReason> {
        self.kind.backend_reason()
    }

    /// The redacted message (without the kind).
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Removes `secrets` from the message (used by the store, which knows its credentials).
    pub(crate) fn scrub(mut self, secrets: &[&str]) -> StorageError {
        self.message = redact(&self.message, secrets);
        self
    }
}

impl fmt::Display for StorageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind, self.message)
    }
}

impl std::error::Error for StorageError {}

/// How a request failed before (or while) any answer arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// Connection refused, reset, DNS failure: nobody answered.
    Unreachable,
    /// The TLS handshake failed (unknown CA, bad certificate, protocol mismatch).
    Tls,
    /// A connect, read or operation timeout fired.
    Timeout,
    /// The request could not even be built (bad endpoint URL, bad configuration).
    Construction,
    /// The response body stopped before its end.
    BodyInterrupted,
    /// The response could not be parsed.
    MalformedResponse,
}

/// What the request was about: a 404 on a bucket-level call means the bucket is missing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Bucket,
    Object,
}

/// Everything [`classify`] looks at.
#[derive(Debug, Clone, Copy)]
pub struct Facts<'a> {
    pub status: Option<u16>,
    pub code: Option<&'a str>,
    pub message: Option<&'a str>,
    pub transport: Option<Transport>,
    pub target: Target,
}

/// Maps what happened onto an [`ErrorKind`]. Pure: no I/O, no clock.
pub fn classify(f: &Facts<'_>) -> ErrorKind {
    use BackendReason::*;
    if let Some(t) = f.transport {
        return match t {
            Transport::Unreachable => EndpointUnreachable.into(),
            Transport::Tls => TlsHandshakeFailed.into(),
            Transport::Timeout => Timeout.into(),
            Transport::Construction => InvalidSpec.into(),
            Transport::BodyInterrupted => ErrorKind::BodyInterrupted,
            Transport::MalformedResponse => ServerError.into(),
        };
    }
    let message = f.message.unwrap_or("");
    if let Some(code) = f.code {
        match code {
            "InvalidAccessKeyId"
            | "NotSignedUp"
            | "InvalidClientTokenId"
            | "UnrecognizedClientException" => return InvalidAccessKeyId.into(),
            "SignatureDoesNotMatch" | "IncompleteSignature" => return SignatureDoesNotMatch.into(),
            "ExpiredToken" | "TokenRefreshRequired" | "InvalidToken" | "ExpiredTokenException" => {
                return ExpiredToken.into()
            }
            // Garage reports credential problems as AccessDenied with a telling message.
            "AccessDenied" if message.contains("No such key") => return InvalidAccessKeyId.into(),
            "AccessDenied" if message.contains("Invalid signature") => {
                return SignatureDoesNotMatch.into()
            }
            // Ceph RGW answers every request of a suspended user (`radosgw-admin user suspend`)
            // 403 UserSuspended: the key is known and the signature valid, access is refused.
            "AccessDenied" | "AllAccessDisabled" | "AccountProblem" | "Forbidden"
            | "UserSuspended" => return AccessDenied.into(),
            "NoSuchBucket" => return NoSuchBucket.into(),
            "NoSuchKey" | "NoSuchVersion" => return ErrorKind::NotFound,
            "NotFound" if f.target == Target::Bucket => return NoSuchBucket.into(),
            "NotFound" => return ErrorKind::NotFound,
            "SlowDown"
            | "Throttling"
            | "ThrottlingException"
            | "RequestLimitExceeded"
            | "TooManyRequests"
            | "RequestThrottled"
            | "ProvisionedThroughputExceededException" => return Throttled.into(),
            "RequestTimeout" | "RequestTimeoutException" => return Timeout.into(),
            "InternalError" | "ServiceUnavailable" | "InternalServerError" => {
                return ServerError.into()
            }
            "InvalidBucketName"
            | "AuthorizationHeaderMalformed"
            | "PermanentRedirect"
            | "InvalidStorageClass"
            | "InvalidArgument"
            | "InvalidRequest"
            | "KMS.NotFoundException"
            | "KMS.DisabledException"
            | "InvalidEncryptionAlgorithmError" => return InvalidSpec.into(),
            _ => {}
        }
    }
    match f.status {
        Some(429) => Throttled.into(),
        Some(401 | 403) => AccessDenied.into(),
        Some(404) if f.target == Target::Bucket => NoSuchBucket.into(),
        Some(404) => ErrorKind::NotFound,
        Some(408) => Timeout.into(),
        Some(s) if s >= 500 => ServerError.into(),
        // Any other client error: the request as configured is rejected.
        Some(s) if s >= 300 => InvalidSpec.into(),
        // No status, no transport cause: an answer we could not understand.
        _ => ServerError.into(),
    }
}

const MAX_MESSAGE: usize = 200;

/// Shortens `text` and removes anything that could carry credentials or request identity:
/// query strings of URLs, signature, credential and token parameters in query form
/// (`X-Amz-Signature=…`) and header form (`X-Amz-Security-Token: …`, `Authorization: …`), in
/// any letter case, and the given secrets. Everything is scrubbed before the text is cut, so no
/// prefix of a secret survives the cut.
pub fn redact(text: &str, secrets: &[&str]) -> String {
    let mut out = String::with_capacity(text.len().min(MAX_MESSAGE + 16));
    let mut hide_next = false;
    for piece in text.split_inclusive(char::is_whitespace) {
        let word = piece.trim_end_matches(char::is_whitespace);
        let separator = &piece[word.len()..];
        if !word.is_empty() {
            if hide_next {
                out.push_str("[redacted]");
                hide_next = false;
            } else {
                let (kept, value_follows) = redact_word(word);
                out.push_str(&kept);
                hide_next = value_follows;
            }
        }
        out.push_str(separator);
    }
    for secret in secrets.iter().filter(|s| s.len() >= 4) {
        out = out.replace(secret, "[redacted]");
    }
    if out.len() > MAX_MESSAGE {
        let mut cut = MAX_MESSAGE;
        while !out.is_char_boundary(cut) {
            cut -= 1;
        }
        out.truncate(cut);
        out.push('…');
    }
    out
}

/// Parameters whose value is a credential, a signature or a token (lowercase).
const SECRET_PARAMETERS: [&str; 6] = [
    "signature",
    "credential",
    "x-amz-security-token",
    "x-amz-signature",
    "x-amz-credential",
    "awsaccesskeyid",
];
/// Headers whose value is secret (lowercase), written `name: value` or `name:value`.
const SECRET_HEADERS: [&str; 4] = [
    "authorization",
    "x-amz-security-token",
    "x-amz-signature",
    "x-amz-credential",
];

/// One whitespace-free word, redacted; `true` when the word is a header name whose value is the
/// next word.
fn redact_word(word: &str) -> (String, bool) {
    let lower = word.to_ascii_lowercase();
    if lower.contains("://") {
        if let Some(q) = word.find('?') {
            return (format!("{}?[redacted]", &word[..q]), false);
        }
    }
    let earliest = SECRET_PARAMETERS
        .iter()
        .filter_map(|p| find_marker(&lower, p, '=').map(|at| at + p.len() + 1))
        .chain(
            SECRET_HEADERS
                .iter()
                .filter_map(|h| find_marker(&lower, h, ':').map(|at| at + h.len() + 1)),
        )
        .min();
    match earliest {
        Some(end) if end == word.len() && lower.ends_with(':') => (word.to_owned(), true),
        Some(end) => (format!("{}[redacted]", &word[..end]), false),
        None => (word.to_owned(), false),
    }
}

/// The first error of type `T` in `err`'s source chain.
fn cause<'e, T: std::error::Error + 'static>(
    err: &'e (dyn std::error::Error + 'static),
) -> Option<&'e T> {
    let mut next = Some(err);
    while let Some(e) = next {
        if let Some(found) = e.downcast_ref::<T>() {
            return Some(found);
        }
        next = e.source();
    }
    None
}

/// Where `name` followed by `delimiter` starts in `lower`.
fn find_marker(lower: &str, name: &str, delimiter: char) -> Option<usize> {
    lower
        .match_indices(name)
        .map(|(at, _)| at)
        .find(|&at| lower[at + name.len()..].starts_with(delimiter))
}

/// Gathers facts from an aws-sdk error and classifies them.
pub fn from_sdk_error<E>(
    err: &aws_smithy_runtime_api::client::result::SdkError<
        E,
        aws_smithy_runtime_api::http::Response,
    >,
    target: Target,
) -> StorageError
where
    E: aws_smithy_types::error::metadata::ProvideErrorMetadata + std::error::Error + 'static,
{
    use aws_smithy_runtime_api::client::result::SdkError;
    if let Some(refused) = cause::<super::network::Refused>(err) {
        return StorageError::new(BackendReason::EndpointNotAllowed, refused.to_string());
    }
    let (facts_status, code, message, transport, description) = match err {
        SdkError::ConstructionFailure(_) => (
            None,
            None,
            None,
            Some(Transport::Construction),
            chain_text(err),
        ),
        SdkError::TimeoutError(_) => (
            None,
            None,
            None,
            Some(Transport::Timeout),
            "timed out".into(),
        ),
        SdkError::DispatchFailure(d) => {
            let transport = if d.is_timeout() {
                Transport::Timeout
            } else if chain_mentions_tls(err) {
                Transport::Tls
            } else if d.is_user() {
                Transport::Construction
            } else {
                Transport::Unreachable
            };
            (None, None, None, Some(transport), chain_text(err))
        }
        SdkError::ResponseError(r) => (
            Some(r.raw().status().as_u16()),
            None,
            None,
            Some(Transport::MalformedResponse),
            "malformed response".to_owned(),
        ),
        SdkError::ServiceError(s) => {
            let e = s.err();
            let status = s.raw().status().as_u16();
            let code = e.code().map(str::to_owned);
            let message = e.message().map(str::to_owned);
            let description = match (&code, &message) {
                (Some(c), Some(m)) => format!("HTTP {status} {c}: {m}"),
                (Some(c), None) => format!("HTTP {status} {c}"),
                (None, Some(m)) => format!("HTTP {status}: {m}"),
                (None, None) => format!("HTTP {status}"),
            };
            return StorageError::new(
                classify(&Facts {
                    status: Some(status),
                    code: code.as_deref(),
                    message: message.as_deref(),
                    transport: None,
                    target,
                }),
                description,
            );
        }
        _ => (None, None, None, None, chain_text(err)),
    };
    let kind = classify(&Facts {
        status: facts_status,
        code,
        message,
        transport,
        target,
    });
    StorageError::new(kind, description)
}

/// The error and its sources, joined; the top level of an SdkError is uninformative
/// ("dispatch failure"), the cause is in the chain.
fn chain_text(err: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![err.to_string()];
    let mut cur = err.source();
    while let Some(e) = cur {
        let s = e.to_string();
        if !parts.iter().any(|p| p.contains(&s)) {
            parts.push(s);
        }
        cur = e.source();
    }
    parts.join(": ")
}

fn chain_mentions_tls(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = cur {
        let s = e.to_string().to_ascii_lowercase();
        if s.contains("certificate") || s.contains("tls") || s.contains("handshake") {
            return true;
        }
        cur = e.source();
    }
    false
}

/// Classifies a failure of a streamed response body (after the headers arrived).
pub fn from_body_error(err: &(dyn std::error::Error + 'static)) -> StorageError {
    let transport = if chain_mentions_timeout(err) {
        Transport::Timeout
    } else {
        Transport::BodyInterrupted
    };
    let kind = classify(&Facts {
        status: None,
        code: None,
        message: None,
        transport: Some(transport),
        target: Target::Object,
    });
    StorageError::new(kind, chain_text(err))
}

fn chain_mentions_timeout(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = cur {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            if io.kind() == std::io::ErrorKind::TimedOut {
                return true;
            }
        }
        cur = e.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resp(
        status: u16,
        code: Option<&'static str>,
        message: Option<&'static str>,
    ) -> Facts<'static> {
        Facts {
            status: Some(status),
            code,
            message,
            transport: None,
            target: Target::Object,
        }
    }

    fn transport(t: Transport) -> Facts<'static> {
        Facts {
            status: None,
            code: None,
            message: None,
            transport: Some(t),
            target: Target::Object,
        }
    }

    fn on_bucket(mut f: Facts<'static>) -> Facts<'static> {
        f.target = Target::Bucket;
        f
    }

    #[test]
    fn classification_follows_the_servers_measured_answers() {
        use BackendReason::*;
        use ErrorKind::{BodyInterrupted, NotFound};
        let b = ErrorKind::Backend;
        let cases: Vec<(&str, Facts<'static>, ErrorKind)> = vec![
            ("an unknown key on AWS, moto and RGW is InvalidAccessKeyId", resp(403, Some("InvalidAccessKeyId"), None), b(InvalidAccessKeyId)),
            ("an unknown key on s3s (NotSignedUp) is InvalidAccessKeyId", resp(403, Some("NotSignedUp"), Some("Your account is not signed up")), b(InvalidAccessKeyId)),
            ("an unknown key on Garage (AccessDenied, No such key) is InvalidAccessKeyId", resp(403, Some("AccessDenied"), Some("Forbidden: No such key: GK0123")), b(InvalidAccessKeyId)),
            ("a wrong secret is SignatureDoesNotMatch", resp(403, Some("SignatureDoesNotMatch"), None), b(SignatureDoesNotMatch)),
            ("a wrong secret on Garage (AccessDenied, Invalid signature) is SignatureDoesNotMatch", resp(403, Some("AccessDenied"), Some("Forbidden: Invalid signature")), b(SignatureDoesNotMatch)),
            ("an expired session token is ExpiredToken", resp(400, Some("ExpiredToken"), None), b(ExpiredToken)),
            ("a plain AccessDenied stays AccessDenied", resp(403, Some("AccessDenied"), Some("Access Denied")), b(AccessDenied)),
            ("a 403 without a code (HEAD) is AccessDenied", resp(403, None, None), b(AccessDenied)),
            ("a suspended user on Ceph RGW 16.2.15 (403 UserSuspended, empty message; tests/s3_contract rgw fixture) is AccessDenied", resp(403, Some("UserSuspended"), None), b(AccessDenied)),
            ("UserSuspended is AccessDenied whatever the status", resp(400, Some("UserSuspended"), None), b(AccessDenied)),
            ("a missing bucket is NoSuchBucket", resp(404, Some("NoSuchBucket"), None), b(NoSuchBucket)),
            ("a bucket missing from the index with HTTP 500 is still NoSuchBucket", resp(500, Some("NoSuchBucket"), None), b(NoSuchBucket)),
            ("a 404 on a bucket-level HEAD is NoSuchBucket", on_bucket(resp(404, Some("NotFound"), None)), b(NoSuchBucket)),
            ("a 404 on an object HEAD is NotFound", resp(404, Some("NotFound"), None), NotFound),
            ("a missing key is NotFound", resp(404, Some("NoSuchKey"), None), NotFound),
            ("a codeless 404 on an object is NotFound", resp(404, None, None), NotFound),
            ("503 SlowDown is Throttled", resp(503, Some("SlowDown"), Some("Please reduce your request rate.")), b(Throttled)),
            ("429 without a code is Throttled", resp(429, None, None), b(Throttled)),
            ("500 InternalError is ServerError", resp(500, Some("InternalError"), None), b(ServerError)),
            ("503 without a code is ServerError", resp(503, None, None), b(ServerError)),
            ("an unknown code with a 5xx status is ServerError", resp(502, Some("BadGateway"), None), b(ServerError)),
            ("a wrong region (AuthorizationHeaderMalformed) is InvalidSpec", resp(400, Some("AuthorizationHeaderMalformed"), None), b(InvalidSpec)),
            ("an invalid bucket name is InvalidSpec", resp(400, Some("InvalidBucketName"), None), b(InvalidSpec)),
            ("an unknown 4xx code is InvalidSpec", resp(400, Some("SomethingNew"), None), b(InvalidSpec)),
            ("a request timeout answered by the server is Timeout", resp(400, Some("RequestTimeout"), None), b(Timeout)),
            ("a refused connection is EndpointUnreachable", transport(Transport::Unreachable), b(EndpointUnreachable)),
            ("a failed TLS handshake is TLSHandshakeFailed", transport(Transport::Tls), b(TlsHandshakeFailed)),
            ("a client-side timeout is Timeout", transport(Transport::Timeout), b(Timeout)),
            ("a request that cannot be built is InvalidSpec", transport(Transport::Construction), b(InvalidSpec)),
            ("a body cut off mid-stream is BodyInterrupted", transport(Transport::BodyInterrupted), BodyInterrupted),
            ("an unparseable answer is ServerError", transport(Transport::MalformedResponse), b(ServerError)),
        ];
        for (name, facts, want) in cases {
            assert_eq!(classify(&facts), want, "{name}");
        }
    }

    #[test]
    fn terminality_and_reasons_follow_the_design() {
        use BackendReason::*;
        use ErrorKind::{Backend, BodyInterrupted, NotFound};
        for k in [
            InvalidAccessKeyId,
            SignatureDoesNotMatch,
            ExpiredToken,
            AccessDenied,
            NoSuchBucket,
            InvalidSpec,
        ]
        .map(Backend)
        {
            assert!(k.is_terminal(), "{k} is terminal");
            assert!(k.backend_reason().is_some());
        }
        for k in [
            Backend(EndpointUnreachable),
            Backend(TlsHandshakeFailed),
            Backend(Timeout),
            Backend(Throttled),
            Backend(ServerError),
            NotFound,
            BodyInterrupted,
        ] {
            assert!(!k.is_terminal(), "{k} is transient");
        }
        assert_eq!(
            Backend(TlsHandshakeFailed)
                .backend_reason()
                .map(BackendReason::as_str),
            Some("TLSHandshakeFailed")
        );
        assert_eq!(
            NotFound.backend_reason(),
            None,
            "a missing key says nothing about the backend"
        );
        assert_eq!(BodyInterrupted.backend_reason(), None);
    }

    #[test]
    fn messages_lose_signatures_query_strings_and_secrets() {
        let cases = [
            (
                "a presigned URL loses its query string",
                "GET http://127.0.0.1:9000/b/k?X-Amz-Algorithm=AWS4&X-Amz-Signature=abcdef failed",
                "GET http://127.0.0.1:9000/b/k?[redacted] failed",
            ),
            (
                "an authorization header loses its value, credential and signature",
                "Authorization: AWS4-HMAC-SHA256 Credential=AKIA/2026/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=0123abcd",
                "Authorization: [redacted] Credential=[redacted] SignedHeaders=host, Signature=[redacted]",
            ),
            (
                "a session token header loses its value, whatever the case and spacing",
                "sent X-AMZ-SECURITY-TOKEN:\tFwoGZXIvYXdzEJr and x-amz-security-token:IQoJb3JpZ2lu",
                "sent X-AMZ-SECURITY-TOKEN:\t[redacted] and x-amz-security-token:[redacted]",
            ),
            ("a known secret is removed", "secret is wJalrXUtnFEMI here", "secret is [redacted] here"),
        ];
        for (name, input, want) in cases {
            assert_eq!(redact(input, &["wJalrXUtnFEMI"]), want, "{name}");
        }
        let long = "x".repeat(1000);
        assert!(
            redact(&long, &[]).chars().count() <= MAX_MESSAGE + 1,
            "long messages are cut"
        );
    }
}
