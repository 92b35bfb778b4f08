//! Turns a `StorageBackend` spec plus the Secrets it references into an S3 client
//! (`Arc<dyn ObjectStore>`), cached per backend.
//!
//! Owns: reading the referenced Secrets (only in the backend's own namespace), mapping the spec
//! onto [`S3Config`] (the pure [`s3_config`]), the client cache keyed by [`Inputs`] (backend
//! uid, generation and the referenced Secrets' resourceVersions: a change of any rebuilds the
//! client).
//!
//! Must not: log, store (outside the client it builds) or emit credential material. Errors name
//! the Secret and the key, never a value; `Debug` of everything here is redacted. Must not read a
//! Secret of another namespace: a backend only ever sees Secrets next to it.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};

use k8s_openapi::api::core::v1::Secret;
use kube::api::Api;
use kube::core::PartialObjectMeta;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Client, ResourceExt};

use crate::api::backend::{S3Spec, SseType, StorageBackend};
use crate::api::reasons::BackendReason;
use crate::storage::network::EndpointPolicy;
use crate::storage::{
    layout, ObjectStore, S3Config, S3Store, Sse, StaticCredentials, StorageError,
};

/// How long a resolve waits for the Secret cache's first list before failing the reconcile.
const SECRET_CACHE_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// Why a backend could not be turned into a client.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    /// A referenced Secret does not exist (in the backend's namespace).
    #[error("Secret {name:?} not found")]
    SecretNotFound { name: String },
    /// A referenced key is absent, empty or not UTF-8. Names the key, never shows a value.
    #[error("Secret {name:?}: key {key:?} {problem}")]
    SecretKeyMissing {
        name: String,
        key: String,
        problem: KeyProblem,
    },
    /// The spec cannot be mapped onto a client configuration.
    #[error("invalid spec: {0}")]
    InvalidSpec(String),
    /// Building the client failed (classified by the storage layer).
    #[error("{0}")]
    Storage(StorageError),
    /// Reading a Secret failed for another reason than its absence (API server down,
    /// forbidden): not the backend's fault, retried by the controller.
    #[error("reading Secret {name:?}: {source}")]
    ReadSecret {
        name: String,
        #[source]
        source: kube::Error,
    },
    /// The Secret cache has not completed its first list (or stopped): not the backend's fault,
    /// so never a reason; the reconcile fails and is retried. If it persists, the operator
    /// probably may not list or watch Secrets (its RBAC).
    #[error("the Secret cache is not synced yet (can the operator list and watch Secrets?)")]
    SecretCacheNotSynced,
    /// The object lacks metadata the API server always sets (namespace, uid).
    #[error("the StorageBackend has no {0}")]
    IncompleteObject(&'static str),
}

/// Who may use the ambient credentials of the process that resolves (the operator's IRSA role,
/// instance profile or environment; a user's own AWS configuration for the CLI) for a backend
/// that names no `credentialsSecretRef`. Lending them to any namespace would let any tenant
/// read with the operator's identity what it could not read with its own.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum AmbientCredentials {
    /// Nobody: a backend without a Secret is `InvalidSpec`.
    #[default]
    Nowhere,
    /// Backends in these namespaces.
    Namespaces(std::collections::BTreeSet<String>),
    /// Every backend (the CLI when asked to, or a single-tenant operator).
    Everywhere,
}

impl AmbientCredentials {
    /// From `--allow-ambient-credentials` values: `*` means every namespace.
    pub fn from_namespaces(values: &[String]) -> AmbientCredentials {
        if values.iter().any(|v| v == "*") {
            AmbientCredentials::Everywhere
        } else if values.is_empty() {
            AmbientCredentials::Nowhere
        } else {
            AmbientCredentials::Namespaces(values.iter().cloned().collect())
        }
    }

    pub fn allows(&self, namespace: &str) -> bool {
        match self {
            AmbientCredentials::Nowhere => false,
            AmbientCredentials::Namespaces(allowed) => allowed.contains(namespace),
            AmbientCredentials::Everywhere => true,
        }
    }
}

/// What is wrong with a Secret key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyProblem {
    Missing,
    Empty,
    NotUtf8,
}

impl fmt::Display for KeyProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            KeyProblem::Missing => "is missing",
            KeyProblem::Empty => "is empty",
            KeyProblem::NotUtf8 => "is not valid UTF-8",
        })
    }
}

impl ResolveError {
    /// This failure as a storage failure of the backend: its reason, or `InvalidSpec` when the
    /// failure is not the backend's (a reader trying backends in turn treats both alike).
    pub fn as_storage_error(&self) -> StorageError {
        StorageError::new(
            self.reason().unwrap_or(BackendReason::InvalidSpec),
            self.to_string(),
        )
    }

    /// The backend condition reason, or `None` when the failure is not the backend's (reading
    /// the Secret failed, or the object is incomplete): such errors fail the reconcile instead.
    pub fn reason(&self) -> Option<BackendReason> {
        match self {
            ResolveError::SecretNotFound { .. } => Some(BackendReason::SecretNotFound),
            ResolveError::SecretKeyMissing { .. } => Some(BackendReason::SecretKeyMissing),
            ResolveError::InvalidSpec(_) => Some(BackendReason::InvalidSpec),
            ResolveError::Storage(e) => {
                Some(e.backend_reason().unwrap_or(BackendReason::InvalidSpec))
            }
            ResolveError::ReadSecret { .. }
            | ResolveError::SecretCacheNotSynced
            | ResolveError::IncompleteObject(_) => None,
        }
    }
}

/// What a client was built from: when any of it changes, the client is rebuilt and the backend
/// controller restarts its counters.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Inputs {
    pub uid: String,
    pub generation: Option<i64>,
    /// `(Secret name, resourceVersion)` of each referenced Secret, in reference order
    /// (credentials, then CA bundle); `None` when the Secret does not exist.
    pub secrets: Vec<(String, Option<String>)>,
}

/// The result of [`Resolver::resolve`]: the inputs seen, and the client or why there is none.
pub struct Resolved {
    pub inputs: Inputs,
    pub store: Result<Arc<dyn ObjectStore>, ResolveError>,
}

impl fmt::Debug for Resolved {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Resolved")
            .field("inputs", &self.inputs)
            .field("store", &self.store.as_ref().map(|_| "<client>"))
            .finish()
    }
}

struct Entry {
    inputs: Inputs,
    store: Arc<dyn ObjectStore>,
}

/// Backend spec + Secrets → `Arc<dyn ObjectStore>`, cached by backend uid, generation and the
/// referenced Secrets' resourceVersions.
pub struct Resolver {
    client: Client,
    /// When set, which Secrets exist (and their resourceVersions) is read from this metadata
    /// cache, and a Secret's data is read with one GET only when its resourceVersion is new; it
    /// must be ready before the first resolve (a Secret not yet in it reads as missing).
    secrets: Option<Store<PartialObjectMeta<Secret>>>,
    /// The referenced Secrets read so far, by `(namespace, name)`: what memory holds of Secrets
    /// follows the number of backends, not the number of Secrets in the cluster.
    fetched: Mutex<HashMap<(String, String), Arc<Secret>>>,
    cache: Mutex<HashMap<String, Entry>>,
    ambient: AmbientCredentials,
    /// How to ask for the ambient credentials, in the refusal (a flag of the caller).
    ambient_hint: &'static str,
    /// Which addresses endpoints may be in (`None`: any).
    endpoint_policy: Option<Arc<EndpointPolicy>>,
}

impl fmt::Debug for Resolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let cached = self.cache.lock().map(|c| c.len()).unwrap_or(0);
        f.debug_struct("Resolver")
            .field("secrets_from_cache", &self.secrets.is_some())
            .field("cached_clients", &cached)
            .finish_non_exhaustive()
    }
}

impl Resolver {
    /// A resolver that reads each referenced Secret with one GET per resolve.
    pub fn new(client: Client) -> Resolver {
        Resolver {
            client,
            secrets: None,
            fetched: Mutex::new(HashMap::new()),
            cache: Mutex::new(HashMap::new()),
            ambient: AmbientCredentials::Nowhere,
            ambient_hint: "",
            endpoint_policy: None,
        }
    }

    /// Connects only to endpoints `policy` allows (checked on literal IPs and on every DNS
    /// answer).
    pub fn with_endpoint_policy(mut self, policy: Option<Arc<EndpointPolicy>>) -> Resolver {
        self.endpoint_policy = policy;
        self
    }

    /// Lends the ambient credentials as `policy` says; `hint` tells a refused user how to ask
    /// for them (e.g. "start the operator with --allow-ambient-credentials NAMESPACE").
    pub fn with_ambient_credentials(
        mut self,
        policy: AmbientCredentials,
        hint: &'static str,
    ) -> Resolver {
        self.ambient = policy;
        self.ambient_hint = hint;
        self
    }

    /// A resolver that learns from a metadata cache which Secrets exist and which changed, and
    /// reads a Secret's data (one GET) only when it is referenced and changed: no API call per
    /// resolve, and no copy of unreferenced Secrets. The store must be ready before controllers
    /// start.
    pub fn with_secret_metadata(
        client: Client,
        secrets: Store<PartialObjectMeta<Secret>>,
    ) -> Resolver {
        Resolver {
            secrets: Some(secrets),
            ..Resolver::new(client)
        }
    }

    /// The client of `backend`, built or reused.
    pub async fn store_for(
        &self,
        backend: &StorageBackend,
    ) -> Result<Arc<dyn ObjectStore>, ResolveError> {
        self.resolve(backend).await?.store
    }

    /// Reads the referenced Secrets and returns the inputs with the client (cached while the
    /// inputs are unchanged) or the reason there is none. `Err` only when the Secrets could not
    /// be read at all ([`ResolveError::ReadSecret`]) or the object is incomplete.
    pub async fn resolve(&self, backend: &StorageBackend) -> Result<Resolved, ResolveError> {
        let uid = backend
            .uid()
            .ok_or(ResolveError::IncompleteObject("metadata.uid"))?;
        let namespace = backend
            .namespace()
            .ok_or(ResolveError::IncompleteObject("metadata.namespace"))?;
        let s3 = &backend.spec.s3;
        let credentials = self
            .referenced(
                &namespace,
                s3.credentials_secret_ref.as_ref().map(|r| &r.name),
            )
            .await?;
        let ca = self
            .referenced(
                &namespace,
                s3.ca_bundle_secret_ref.as_ref().map(|r| &r.name),
            )
            .await?;
        let inputs = Inputs {
            uid: uid.clone(),
            generation: backend.metadata.generation,
            secrets: [&credentials, &ca]
                .into_iter()
                .flatten()
                .map(|(name, secret)| {
                    (
                        name.clone(),
                        secret.as_ref().and_then(|s| s.resource_version()),
                    )
                })
                .collect(),
        };
        if let Some(store) = self.cached(&uid, &inputs) {
            return Ok(Resolved {
                inputs,
                store: Ok(store),
            });
        }
        let store = self.build(s3, &namespace, &credentials, &ca).await;
        self.remember(uid, &inputs, &store);
        Ok(Resolved { inputs, store })
    }

    /// The Secret `name` names, if any, with what was read of it (`None`: it does not exist).
    async fn referenced(
        &self,
        namespace: &str,
        name: Option<&String>,
    ) -> Result<Option<(String, Option<Arc<Secret>>)>, ResolveError> {
        match name {
            Some(name) => Ok(Some((name.clone(), self.secret(namespace, name).await?))),
            None => Ok(None),
        }
    }

    fn cached(&self, uid: &str, inputs: &Inputs) -> Option<Arc<dyn ObjectStore>> {
        self.lock_cache()
            .get(uid)
            .filter(|entry| &entry.inputs == inputs)
            .map(|entry| entry.store.clone())
    }

    /// A new client, or why there is none: the ambient credentials refused, a spec or Secret the
    /// client cannot be configured from, or a client the SDK refuses to build.
    async fn build(
        &self,
        s3: &S3Spec,
        namespace: &str,
        credentials: &Option<(String, Option<Arc<Secret>>)>,
        ca: &Option<(String, Option<Arc<Secret>>)>,
    ) -> Result<Arc<dyn ObjectStore>, ResolveError> {
        if s3.credentials_secret_ref.is_none() && !self.ambient.allows(namespace) {
            return Err(ResolveError::InvalidSpec(format!(
                "spec.s3.credentialsSecretRef is not set, and the ambient credentials (IRSA, \
                 instance profile, environment) are not lent to namespace {namespace:?}: {}",
                self.ambient_hint
            )));
        }
        let secret = |s: &Option<(String, Option<Arc<Secret>>)>| {
            s.as_ref().and_then(|(_, secret)| secret.clone())
        };
        let mut config = s3_config(s3, secret(credentials).as_deref(), secret(ca).as_deref())?;
        config.endpoint_policy = self.endpoint_policy.clone();
        S3Store::new(config)
            .await
            .map(|s| Arc::new(s) as Arc<dyn ObjectStore>)
            .map_err(ResolveError::Storage)
    }

    /// Keeps a built client for the next resolve with the same inputs; forgets it on failure.
    fn remember(
        &self,
        uid: String,
        inputs: &Inputs,
        store: &Result<Arc<dyn ObjectStore>, ResolveError>,
    ) {
        let mut cache = self.lock_cache();
        match store {
            Ok(store) => {
                cache.insert(
                    uid,
                    Entry {
                        inputs: inputs.clone(),
                        store: store.clone(),
                    },
                );
            }
            Err(_) => {
                cache.remove(&uid);
            }
        }
    }

    /// Drops the client kept for a deleted backend.
    pub fn forget(&self, uid: &str) {
        self.lock_cache().remove(uid);
    }

    fn lock_cache(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        // A panic while holding the lock cannot leave the map inconsistent (single insert or
        // remove), so a poisoned lock is still usable.
        self.cache.lock().unwrap_or_else(|p| p.into_inner())
    }

    async fn secret(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<Arc<Secret>>, ResolveError> {
        let Some(store) = &self.secrets else {
            return self.get_secret(namespace, name).await;
        };
        // Before the first list completes an absent Secret would be reported missing. Wait a
        // little, never forever: a reconcile that hangs writes no status and no error.
        match tokio::time::timeout(SECRET_CACHE_WAIT, store.wait_until_ready()).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) | Err(_) => return Err(ResolveError::SecretCacheNotSynced),
        }
        let slot = (namespace.to_owned(), name.to_owned());
        let Some(meta) = store.get(&ObjectRef::new(name).within(namespace)) else {
            self.lock_fetched().remove(&slot);
            return Ok(None);
        };
        let current = meta.resource_version();
        if let Some(known) = self.lock_fetched().get(&slot) {
            if known.resource_version() == current {
                return Ok(Some(known.clone()));
            }
        }
        let secret = self.get_secret(namespace, name).await?;
        let mut fetched = self.lock_fetched();
        match &secret {
            Some(s) => fetched.insert(slot, s.clone()),
            None => fetched.remove(&slot),
        };
        Ok(secret)
    }

    async fn get_secret(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<Arc<Secret>>, ResolveError> {
        Api::<Secret>::namespaced(self.client.clone(), namespace)
            .get_opt(name)
            .await
            .map(|s| s.map(Arc::new))
            .map_err(|source| ResolveError::ReadSecret {
                name: name.to_owned(),
                source,
            })
    }

    fn lock_fetched(&self) -> std::sync::MutexGuard<'_, HashMap<(String, String), Arc<Secret>>> {
        // Single inserts and removes: a poisoned lock cannot hold an inconsistent map.
        self.fetched.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Maps the spec and the (already fetched) referenced Secrets onto an [`S3Config`]. Pure.
/// `credentials`/`ca` are `None` when the Secret does not exist (or is not referenced).
pub fn s3_config(
    s3: &S3Spec,
    credentials: Option<&Secret>,
    ca: Option<&Secret>,
) -> Result<S3Config, ResolveError> {
    let mut config = S3Config::new(s3.bucket.clone());
    config.region = s3.region.clone();
    config.endpoint = s3.endpoint.clone();
    config.force_path_style = s3.force_path_style;
    let prefix = s3.key_prefix.clone().unwrap_or_default();
    layout::validate_prefix(&prefix).map_err(|e| ResolveError::InvalidSpec(e.to_string()))?;
    config.key_prefix = prefix.trim_end_matches('/').to_owned();
    config.storage_class = s3.storage_class.clone();
    config.sse = match &s3.sse {
        None => None,
        Some(sse) => Some(match sse.type_ {
            SseType::AwsKms => Sse::Kms {
                key_id: sse.kms_key_id.clone(),
            },
            SseType::Aes256 if sse.kms_key_id.is_some() => {
                return Err(ResolveError::InvalidSpec(
                    "sse.kmsKeyId is only valid with type aws:kms".to_owned(),
                ))
            }
            SseType::Aes256 => Sse::Aes256,
        }),
    };
    config.multipart_threshold_bytes =
        u64::try_from(s3.multipart_threshold_bytes).map_err(|_| {
            ResolveError::InvalidSpec("multipartThresholdBytes must not be negative".to_owned())
        })?;
    config.multipart_chunk_bytes = u64::try_from(s3.multipart_chunk_bytes).map_err(|_| {
        ResolveError::InvalidSpec("multipartChunkBytes must not be negative".to_owned())
    })?;

    if let Some(r) = &s3.credentials_secret_ref {
        let secret = credentials.ok_or_else(|| ResolveError::SecretNotFound {
            name: r.name.clone(),
        })?;
        let session_token = match &r.session_token_key {
            Some(key) => Some(secret_text(secret, &r.name, key)?),
            None => None,
        };
        config.credentials = Some(StaticCredentials {
            access_key_id: secret_text(secret, &r.name, &r.access_key_id_key)?,
            secret_access_key: secret_text(secret, &r.name, &r.secret_access_key_key)?,
            session_token,
        });
    }
    if let Some(r) = &s3.ca_bundle_secret_ref {
        let secret = ca.ok_or_else(|| ResolveError::SecretNotFound {
            name: r.name.clone(),
        })?;
        config.ca_bundle_pem = Some(secret_bytes(secret, &r.name, &r.key)?.to_vec());
    }
    config
        .validate()
        .map_err(|e| ResolveError::InvalidSpec(e.message().to_owned()))?;
    Ok(config)
}

fn secret_bytes<'s>(secret: &'s Secret, name: &str, key: &str) -> Result<&'s [u8], ResolveError> {
    let problem = |problem| ResolveError::SecretKeyMissing {
        name: name.to_owned(),
        key: key.to_owned(),
        problem,
    };
    let value = secret
        .data
        .as_ref()
        .and_then(|d| d.get(key))
        .ok_or_else(|| problem(KeyProblem::Missing))?;
    if value.0.iter().all(u8::is_ascii_whitespace) {
        return Err(problem(KeyProblem::Empty));
    }
    Ok(&value.0)
}

/// A text value of a Secret key, surrounding whitespace removed (keys created with
/// `echo value | kubectl create secret --from-file` end with a newline; S3 keys never contain
/// whitespace).
fn secret_text(secret: &Secret, name: &str, key: &str) -> Result<String, ResolveError> {
    let bytes = secret_bytes(secret, name, key)?;
    let text = std::str::from_utf8(bytes).map_err(|_| ResolveError::SecretKeyMissing {
        name: name.to_owned(),
        key: key.to_owned(),
        problem: KeyProblem::NotUtf8,
    })?;
    Ok(text.trim().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::backend::{
        CaBundleSecretRef, CredentialsSecretRef, SseSpec, StorageBackendSpec,
    };
    use k8s_openapi::ByteString;
    use std::collections::BTreeMap;

    const SECRET_VALUE: &str = "wJalrXUtnFEMI-very-secret";

    fn spec() -> S3Spec {
        serde_json::from_value(serde_json::json!({"bucket": "my-bucket"})).unwrap()
    }

    fn with_creds(mut s: S3Spec) -> S3Spec {
        s.credentials_secret_ref = Some(CredentialsSecretRef {
            name: "creds".into(),
            access_key_id_key: "accessKeyId".into(),
            secret_access_key_key: "secretAccessKey".into(),
            session_token_key: None,
        });
        s
    }

    fn secret(entries: &[(&str, &[u8])]) -> Secret {
        Secret {
            data: Some(
                entries
                    .iter()
                    .map(|(k, v)| (k.to_string(), ByteString(v.to_vec())))
                    .collect::<BTreeMap<_, _>>(),
            ),
            ..Secret::default()
        }
    }

    fn good_secret() -> Secret {
        secret(&[
            ("accessKeyId", b"AKIDEXAMPLE\n"),
            ("secretAccessKey", SECRET_VALUE.as_bytes()),
        ])
    }

    fn backend(s3: S3Spec, location: Option<&str>) -> StorageBackend {
        let mut spec: StorageBackendSpec =
            serde_json::from_value(serde_json::json!({"s3": {"bucket": "x"}})).unwrap();
        spec.s3 = s3;
        spec.location = location.map(str::to_owned);
        StorageBackend::new("b", spec)
    }

    #[test]
    fn the_spec_maps_onto_the_client_configuration() {
        let mut s = with_creds(spec());
        s.region = "eu-west-1".into();
        s.endpoint = Some("http://127.0.0.1:9000".into());
        s.force_path_style = true;
        s.key_prefix = Some("cas".into());
        s.storage_class = Some("STANDARD_IA".into());
        s.sse = Some(SseSpec {
            type_: SseType::AwsKms,
            kms_key_id: Some("key-1".into()),
        });
        s.multipart_threshold_bytes = 8 * 1024 * 1024;
        s.multipart_chunk_bytes = 6 * 1024 * 1024;
        let c = s3_config(&s, Some(&good_secret()), None).unwrap();
        assert_eq!(c.bucket, "my-bucket");
        assert_eq!(c.region, "eu-west-1");
        assert_eq!(c.endpoint.as_deref(), Some("http://127.0.0.1:9000"));
        assert!(c.force_path_style);
        assert_eq!(c.key_prefix, "cas");
        assert_eq!(c.storage_class.as_deref(), Some("STANDARD_IA"));
        assert_eq!(
            c.sse,
            Some(Sse::Kms {
                key_id: Some("key-1".into())
            })
        );
        assert_eq!(c.multipart_threshold_bytes, 8 * 1024 * 1024);
        assert_eq!(c.multipart_chunk_bytes, 6 * 1024 * 1024);
        let creds = c.credentials.as_ref().unwrap();
        assert_eq!(
            creds.access_key_id, "AKIDEXAMPLE",
            "a trailing newline is trimmed"
        );
        assert_eq!(creds.secret_access_key, SECRET_VALUE);
        assert_eq!(creds.session_token, None);

        let default_chain = s3_config(&spec(), None, None).unwrap();
        assert!(
            default_chain.credentials.is_none(),
            "no Secret reference means the SDK's default chain"
        );
    }

    #[test]
    fn secret_problems_become_reasons_that_name_the_key_never_the_value() {
        let mut with_token = with_creds(spec());
        if let Some(r) = with_token.credentials_secret_ref.as_mut() {
            r.session_token_key = Some("sessionToken".into());
        }
        let mut with_ca = spec();
        with_ca.ca_bundle_secret_ref = Some(CaBundleSecretRef {
            name: "ca".into(),
            key: "ca.crt".into(),
        });
        type Case = (
            &'static str,
            S3Spec,
            Option<Secret>,
            Option<Secret>,
            &'static str,
            &'static str,
        );
        let cases: Vec<Case> = vec![
            (
                "a missing credentials Secret is SecretNotFound",
                with_creds(spec()),
                None,
                None,
                "SecretNotFound",
                "Secret \"creds\" not found",
            ),
            (
                "a missing access key id is SecretKeyMissing",
                with_creds(spec()),
                Some(secret(&[("secretAccessKey", SECRET_VALUE.as_bytes())])),
                None,
                "SecretKeyMissing",
                "Secret \"creds\": key \"accessKeyId\" is missing",
            ),
            (
                "an empty secret access key is SecretKeyMissing",
                with_creds(spec()),
                Some(secret(&[
                    ("accessKeyId", b"AKID"),
                    ("secretAccessKey", b" \n"),
                ])),
                None,
                "SecretKeyMissing",
                "Secret \"creds\": key \"secretAccessKey\" is empty",
            ),
            (
                "a secret access key that is not UTF-8 is SecretKeyMissing",
                with_creds(spec()),
                Some(secret(&[
                    ("accessKeyId", b"AKID"),
                    ("secretAccessKey", &[0xff, 0xfe, 0x41]),
                ])),
                None,
                "SecretKeyMissing",
                "Secret \"creds\": key \"secretAccessKey\" is not valid UTF-8",
            ),
            (
                "a referenced session token key that is absent is SecretKeyMissing",
                with_token,
                Some(good_secret()),
                None,
                "SecretKeyMissing",
                "Secret \"creds\": key \"sessionToken\" is missing",
            ),
            (
                "a missing CA Secret is SecretNotFound",
                with_ca.clone(),
                None,
                None,
                "SecretNotFound",
                "Secret \"ca\" not found",
            ),
            (
                "a CA Secret without its key is SecretKeyMissing",
                with_ca,
                None,
                Some(secret(&[("other", b"x")])),
                "SecretKeyMissing",
                "Secret \"ca\": key \"ca.crt\" is missing",
            ),
        ];
        for (name, s, creds, ca, reason, message) in cases {
            let err = s3_config(&s, creds.as_ref(), ca.as_ref()).expect_err(name);
            assert_eq!(
                err.reason().map(BackendReason::as_str),
                Some(reason),
                "{name}"
            );
            let text = err.to_string();
            assert_eq!(text, message, "{name}");
            assert!(
                !text.contains(SECRET_VALUE),
                "{name}: the value never shows"
            );
        }
    }

    #[test]
    fn spec_problems_are_invalid_spec() {
        let mut aes_with_key = spec();
        aes_with_key.sse = Some(SseSpec {
            type_: SseType::Aes256,
            kms_key_id: Some("k".into()),
        });
        let mut bad_prefix = spec();
        bad_prefix.key_prefix = Some("a/../b".into());
        let mut small_chunks = spec();
        small_chunks.multipart_chunk_bytes = 1024;
        let mut negative = spec();
        negative.multipart_threshold_bytes = -1;
        let mut no_scheme = spec();
        no_scheme.endpoint = Some("rgw.internal:7480".into());
        let cases = [
            ("a KMS key id with AES256 is rejected", aes_with_key),
            ("a prefix with a dot-dot segment is rejected", bad_prefix),
            ("parts below 5 MiB are rejected", small_chunks),
            ("a negative threshold is rejected", negative),
            ("an endpoint without scheme is rejected", no_scheme),
        ];
        for (name, s) in cases {
            let err = s3_config(&s, None, None).expect_err(name);
            assert_eq!(
                err.reason(),
                Some(BackendReason::InvalidSpec),
                "{name}: {err}"
            );
        }
    }

    #[test]
    fn debug_output_of_resolved_clients_shows_no_secrets() {
        let c = s3_config(&with_creds(spec()), Some(&good_secret()), None).unwrap();
        let text = format!("{c:?}");
        assert!(!text.contains(SECRET_VALUE), "{text}");
        let err = ResolveError::SecretKeyMissing {
            name: "creds".into(),
            key: "secretAccessKey".into(),
            problem: KeyProblem::Empty,
        };
        assert!(!format!("{err:?}").contains(SECRET_VALUE));
    }

    #[test]
    fn ambient_credentials_are_lent_only_where_the_flags_say() {
        let ns = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let cases = [
            ("no flag lends them nowhere", ns(&[]), "team-a", false),
            (
                "a listed namespace may use them",
                ns(&["team-a"]),
                "team-a",
                true,
            ),
            (
                "another namespace may not",
                ns(&["team-a"]),
                "team-b",
                false,
            ),
            ("a star lends them everywhere", ns(&["*"]), "team-b", true),
        ];
        for (name, flags, namespace, allowed) in cases {
            assert_eq!(
                AmbientCredentials::from_namespaces(&flags).allows(namespace),
                allowed,
                "{name}"
            );
        }
    }

    #[tokio::test]
    async fn a_backend_without_a_secret_is_invalid_spec_unless_its_namespace_may_use_the_ambient_identity(
    ) {
        let config = kube::Config::new("http://127.0.0.1:9".parse().unwrap());
        let client = Client::try_from(config).unwrap();
        let mut b = backend(spec(), None);
        b.metadata.namespace = Some("team-a".into());
        b.metadata.uid = Some("uid-1".into());

        let refused = Resolver::new(client.clone()).with_ambient_credentials(
            AmbientCredentials::Namespaces(["team-b".to_string()].into()),
            "start castellan run with --allow-ambient-credentials NAMESPACE to lend them",
        );
        let err = refused
            .resolve(&b)
            .await
            .unwrap()
            .store
            .err()
            .expect("refused");
        assert_eq!(err.reason(), Some(BackendReason::InvalidSpec));
        let message = err.to_string();
        assert!(message.contains("credentialsSecretRef"), "{message}");
        assert!(message.contains("--allow-ambient-credentials"), "{message}");

        let lent = Resolver::new(client).with_ambient_credentials(
            AmbientCredentials::Namespaces(["team-a".to_string()].into()),
            "",
        );
        assert!(lent.resolve(&b).await.unwrap().store.is_ok());
    }

    /// Waits the real SECRET_CACHE_WAIT (5 s).
    #[tokio::test]
    async fn a_secret_cache_that_never_syncs_fails_the_resolve_instead_of_hanging() {
        // The writer is kept but never fed: the store never becomes ready (e.g. no RBAC to list).
        let (secrets, _writer) = kube::runtime::reflector::store::<PartialObjectMeta<Secret>>();
        let config = kube::Config::new("http://127.0.0.1:9".parse().unwrap());
        let client = Client::try_from(config).unwrap();
        let resolver = Resolver::with_secret_metadata(client, secrets);
        let mut b = backend(with_creds(spec()), None);
        b.metadata.namespace = Some("team-a".into());
        b.metadata.uid = Some("uid-1".into());
        let err = resolver.resolve(&b).await.expect_err("no Secret cache");
        assert!(matches!(err, ResolveError::SecretCacheNotSynced), "{err:?}");
        assert_eq!(
            err.reason(),
            None,
            "not the backend's fault: never a condition reason"
        );
    }
}
