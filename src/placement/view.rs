//! A backend as placement sees it: the few facts of a `StorageBackend` that decide where a
//! mapping may be served from and where a write may go, and the object key a mapping has on it.
//!
//! Owns: [`BackendView`], the replication group ([`location_of`]), who reads through a backend
//! ([`reader_of`]) and the key a mapping has on a
//! backend ([`key_on`]). Must not: do I/O or read anything but the API objects it is handed.

use crate::api::backend::Trust;
use crate::api::condition;
use crate::api::reasons::backend_condition;
use crate::api::{ArtifactMapping, StorageBackend};
use crate::digest::Digest;
use crate::storage::layout;

/// Who reads through `backend`: its namespace, uid and generation (an edited endpoint or
/// bucket is another reader) and the credentials it names. Verification facts are keyed by it,
/// never by the free-form `spec.location` alone.
pub fn reader_of(backend: &StorageBackend) -> String {
    let meta = &backend.metadata;
    let credentials = match &backend.spec.s3.credentials_secret_ref {
        Some(r) => format!(
            "secret:{}:{}:{}",
            r.name, r.access_key_id_key, r.secret_access_key_key
        ),
        None => "ambient".to_owned(),
    };
    format!(
        "{}/{}/{}/{credentials}",
        meta.namespace.as_deref().unwrap_or(""),
        meta.uid.as_deref().unwrap_or(""),
        meta.generation.unwrap_or(0)
    )
}

/// The placement-relevant state of one backend. Two views that compare equal place mappings
/// identically, which is what the mapping index uses to fan out only on real transitions.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct BackendView {
    pub name: String,
    /// `Ready=True`, and not being deleted.
    pub ready: bool,
    pub trust: Trust,
    /// The replication group: same location, same bytes.
    pub location: String,
    pub default: bool,
    pub fallback: bool,
    pub priority: i32,
    pub key_prefix: String,
}

impl BackendView {
    /// The view of `backend` as the API object says it. A backend being deleted is not ready.
    pub fn of(backend: &StorageBackend) -> BackendView {
        let ready = backend.metadata.deletion_timestamp.is_none()
            && backend
                .status
                .as_ref()
                .is_some_and(|s| condition::is_true(&s.conditions, backend_condition::READY));
        BackendView {
            name: backend.metadata.name.clone().unwrap_or_default(),
            ready,
            trust: backend.spec.trust,
            location: location_of(backend),
            default: backend.spec.default,
            fallback: backend.spec.fallback,
            priority: backend.spec.priority,
            key_prefix: backend.spec.s3.key_prefix.clone().unwrap_or_default(),
        }
    }

    /// Ready and not Quarantined: may serve and be a reassignment target.
    pub fn usable(&self) -> bool {
        self.ready && self.trust != Trust::Quarantined
    }

    /// The object key of `mapping` on this backend.
    pub fn key_of(&self, mapping: &ArtifactMapping, digest: &Digest) -> String {
        key_on(mapping, &self.key_prefix, digest)
    }
}

impl AsRef<BackendView> for BackendView {
    fn as_ref(&self) -> &BackendView {
        self
    }
}

/// The replication group of a backend: `spec.location` when set, otherwise
/// `<endpoint>|<bucket>|<keyPrefix>` with the endpoint without trailing `/`, and
/// `s3.<region>.amazonaws.com` for AWS (no endpoint).
pub fn location_of(backend: &StorageBackend) -> String {
    if let Some(location) = backend.spec.location.as_deref().filter(|l| !l.is_empty()) {
        return location.to_owned();
    }
    let s3 = &backend.spec.s3;
    let endpoint = match s3.endpoint.as_deref() {
        Some(e) => e.trim_end_matches('/').to_owned(),
        None => format!("s3.{}.amazonaws.com", s3.region),
    };
    let prefix = s3.key_prefix.as_deref().unwrap_or("").trim_end_matches('/');
    format!("{endpoint}|{}|{prefix}", s3.bucket)
}

/// The object key of `mapping` on a backend with `key_prefix`: `spec.key` when set, else the
/// layout key of its digest.
pub fn key_on(mapping: &ArtifactMapping, key_prefix: &str, digest: &Digest) -> String {
    match mapping.spec.key.as_deref() {
        Some(key) => key.to_string(),
        None => layout::key_for(key_prefix, digest),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::backend::S3Spec;
    use crate::api::StorageBackendSpec;

    fn spec() -> S3Spec {
        serde_json::from_value(serde_json::json!({"bucket": "my-bucket"})).unwrap()
    }

    fn backend(s3: S3Spec, location: Option<&str>) -> StorageBackend {
        let mut spec: StorageBackendSpec =
            serde_json::from_value(serde_json::json!({"s3": {"bucket": "x"}})).unwrap();
        spec.s3 = s3;
        spec.location = location.map(str::to_owned);
        StorageBackend::new("b", spec)
    }

    #[test]
    fn locations_are_derived_from_endpoint_bucket_and_prefix() {
        let mut rgw = spec();
        rgw.endpoint = Some("https://rgw.internal:7480/".into());
        rgw.key_prefix = Some("cas".into());
        let mut aws = spec();
        aws.region = "eu-west-1".into();
        aws.key_prefix = Some("p".into());
        let cases = [
            (
                "an endpoint, bucket and prefix are joined with bars",
                backend(rgw.clone(), None),
                "https://rgw.internal:7480|my-bucket|cas",
            ),
            (
                "AWS is named by its regional endpoint",
                backend(aws, None),
                "s3.eu-west-1.amazonaws.com|my-bucket|p",
            ),
            (
                "no prefix leaves the last part empty",
                backend(spec(), None),
                "s3.us-east-1.amazonaws.com|my-bucket|",
            ),
            (
                "an explicit location wins",
                backend(rgw.clone(), Some("group-a")),
                "group-a",
            ),
            (
                "an empty location is derived",
                backend(rgw, Some("")),
                "https://rgw.internal:7480|my-bucket|cas",
            ),
        ];
        for (name, b, want) in cases {
            assert_eq!(location_of(&b), want, "{name}");
        }
    }
}
