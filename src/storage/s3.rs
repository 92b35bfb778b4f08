//! The S3 implementation of [`ObjectStore`] on aws-sdk-s3, and its plain configuration
//! [`S3Config`] (the operator maps the CRD spec onto it).
//!
//! Owns: building the SDK client (credentials, endpoint, private CA, checksum mode, timeouts,
//! retries) and turning each trait call into S3 requests. Classification of failures lives in
//! [`super::error`]; key layout in [`super::layout`]. Must not: keep or log credential material
//! outside the SDK client, or decide anything about what a failure means for a backend.
//!
//! Client choices, each for a measured reason (see `docs/s3-servers.md`):
//! - request checksum calculation and response checksum validation are `WhenRequired`: Garage
//!   and Ceph RGW reject the SDK's default aws-chunked CRC32 streaming uploads;
//! - the HTTP client is built here with an explicit trust store, so CA-related environment
//!   variables (`AWS_CA_BUNDLE`…) never change behaviour; a `ca_bundle_pem` replaces the
//!   platform roots for this backend;
//! - static credentials go straight to the client; only `credentials: None` consults the SDK's
//!   default chain (environment, profile, IRSA, instance metadata).

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use aws_sdk_s3::config::{
    BehaviorVersion, Credentials, Region, RequestChecksumCalculation, ResponseChecksumValidation,
};
use aws_sdk_s3::primitives::ByteStream as SdkByteStream;
use aws_sdk_s3::types::{
    CompletedMultipartUpload, CompletedPart, ServerSideEncryption, StorageClass,
};
use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use tokio::io::{AsyncRead, AsyncReadExt};

use super::error::{from_body_error, from_sdk_error, ErrorKind, StorageError, Target};
use super::network::{EndpointPolicy, PolicyResolver};
use super::{
    layout, ByteRange, GetObject, ListPage, ListedObject, ObjectInfo, ObjectStore, ProbeMode,
    ProbeReport, ProbeStep, PutBody, PutOptions, PutOutcome,
};
use crate::api::reasons::BackendReason;

/// S3 requires parts of at least 5 MiB, except the last.
pub const MIN_PART_BYTES: u64 = 5 * 1024 * 1024;
/// S3 allows at most 10,000 parts.
pub const MAX_PARTS: u64 = 10_000;

/// Static credentials from a Secret (or the environment). `Debug` never prints the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct StaticCredentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: Option<String>,
}

impl fmt::Debug for StaticCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StaticCredentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"[redacted]")
            .field(
                "session_token",
                &self.session_token.as_ref().map(|_| "[redacted]"),
            )
            .finish()
    }
}

/// Server-side encryption for writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sse {
    /// `aws:kms`, with a key id (or the bucket's default KMS key when `None`).
    Kms { key_id: Option<String> },
    /// `AES256` (SSE-S3).
    Aes256,
}

/// Everything needed to talk to one bucket. Plain data: no Kubernetes types.
#[derive(Clone)]
pub struct S3Config {
    pub bucket: String,
    /// Defaults to `us-east-1`.
    pub region: String,
    /// `None` means AWS.
    pub endpoint: Option<String>,
    pub force_path_style: bool,
    /// Validated with [`layout::validate_prefix`]; empty means none.
    pub key_prefix: String,
    /// `None` means the SDK's default credential chain.
    pub credentials: Option<StaticCredentials>,
    /// PEM bundle of a private CA; when set it is the only trust anchor for this backend.
    pub ca_bundle_pem: Option<Vec<u8>>,
    pub storage_class: Option<String>,
    pub sse: Option<Sse>,
    pub multipart_threshold_bytes: u64,
    pub multipart_chunk_bytes: u64,
    /// Bounds each request until its response headers arrive (a body then streams freely).
    pub operation_timeout: Option<Duration>,
    /// Attempts per request including the first (the SDK retries transient failures);
    /// 1 disables retries.
    pub max_attempts: u32,
    /// Which addresses the endpoint may be in; `None` allows every address (the CLI and tests;
    /// `castellan run` always sets one).
    pub endpoint_policy: Option<Arc<EndpointPolicy>>,
}

impl S3Config {
    /// A configuration for `bucket` with DESIGN's defaults.
    pub fn new(bucket: impl Into<String>) -> S3Config {
        S3Config {
            bucket: bucket.into(),
            region: "us-east-1".to_owned(),
            endpoint: None,
            force_path_style: false,
            key_prefix: String::new(),
            credentials: None,
            ca_bundle_pem: None,
            storage_class: None,
            sse: None,
            multipart_threshold_bytes: 64 * 1024 * 1024,
            multipart_chunk_bytes: 16 * 1024 * 1024,
            operation_timeout: Some(Duration::from_secs(30)),
            max_attempts: 3,
            endpoint_policy: None,
        }
    }

    /// Checks what can be checked without a request.
    pub fn validate(&self) -> Result<(), StorageError> {
        let invalid = |m: String| Err(StorageError::new(BackendReason::InvalidSpec, m));
        if self.bucket.is_empty() {
            return invalid("bucket is empty".into());
        }
        if let Err(e) = layout::validate_prefix(&self.key_prefix) {
            return invalid(e.to_string());
        }
        if self.multipart_chunk_bytes < MIN_PART_BYTES {
            return invalid(format!(
                "multipartChunkBytes {} is below the S3 minimum of {MIN_PART_BYTES}",
                self.multipart_chunk_bytes
            ));
        }
        if let Some(e) = &self.endpoint {
            if !(e.starts_with("http://") || e.starts_with("https://")) {
                return invalid("endpoint must start with http:// or https://".into());
            }
        }
        if self.max_attempts == 0 {
            return invalid("max_attempts must be at least 1".into());
        }
        Ok(())
    }
}

impl fmt::Debug for S3Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Config")
            .field("bucket", &self.bucket)
            .field("region", &self.region)
            .field("endpoint", &self.endpoint)
            .field("force_path_style", &self.force_path_style)
            .field("key_prefix", &self.key_prefix)
            .field("credentials", &self.credentials)
            .field(
                "ca_bundle_pem",
                &self
                    .ca_bundle_pem
                    .as_ref()
                    .map(|b| format!("<{} bytes>", b.len())),
            )
            .field("storage_class", &self.storage_class)
            .field("sse", &self.sse)
            .field("multipart_threshold_bytes", &self.multipart_threshold_bytes)
            .field("multipart_chunk_bytes", &self.multipart_chunk_bytes)
            .field("operation_timeout", &self.operation_timeout)
            .field("max_attempts", &self.max_attempts)
            .finish()
    }
}

/// An [`ObjectStore`] on one S3 bucket.
pub struct S3Store {
    client: aws_sdk_s3::Client,
    config: S3Config,
}

impl fmt::Debug for S3Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Store")
            .field("config", &self.config)
            .finish()
    }
}

impl S3Store {
    /// Builds the client. Only `credentials: None` does I/O-free setup of the default chain;
    /// no request is sent until the first call.
    pub async fn new(config: S3Config) -> Result<S3Store, StorageError> {
        config.validate()?;
        let region = Region::new(config.region.clone());
        let mut tls = aws_smithy_http_client::tls::TlsContext::builder();
        if let Some(pem) = &config.ca_bundle_pem {
            tls = tls.with_trust_store(
                aws_smithy_http_client::tls::TrustStore::empty()
                    .with_native_roots(false)
                    .with_pem_certificate(pem.clone()),
            );
        }
        let tls = tls.build().map_err(|e| {
            StorageError::new(BackendReason::InvalidSpec, format!("TLS setup: {e}"))
        })?;
        let builder = aws_smithy_http_client::Builder::new()
            .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
                aws_smithy_http_client::tls::rustls_provider::CryptoMode::AwsLc,
            ))
            .tls_context(tls);
        let http_client = match &config.endpoint_policy {
            None => builder.build_https(),
            Some(policy) => {
                if let Some(endpoint) = &config.endpoint {
                    policy.check_endpoint(endpoint).map_err(|refused| {
                        StorageError::new(BackendReason::EndpointNotAllowed, refused.to_string())
                    })?;
                }
                builder.build_with_resolver(PolicyResolver {
                    policy: policy.clone(),
                })
            }
        };

        let mut timeouts = aws_sdk_s3::config::timeout::TimeoutConfig::builder();
        if let Some(t) = config.operation_timeout {
            timeouts = timeouts.operation_attempt_timeout(t).connect_timeout(t);
        }

        let mut b = aws_sdk_s3::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(region.clone())
            .http_client(http_client)
            .force_path_style(config.force_path_style)
            .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
            .response_checksum_validation(ResponseChecksumValidation::WhenRequired)
            .timeout_config(timeouts.build())
            .retry_config(
                aws_sdk_s3::config::retry::RetryConfig::standard()
                    .with_max_attempts(config.max_attempts),
            );
        if let Some(endpoint) = &config.endpoint {
            b = b.endpoint_url(endpoint);
        }
        match &config.credentials {
            Some(c) => {
                b = b.credentials_provider(Credentials::new(
                    c.access_key_id.clone(),
                    c.secret_access_key.clone(),
                    c.session_token.clone(),
                    None,
                    "castellan-static",
                ));
            }
            None => {
                let chain =
                    aws_config::default_provider::credentials::DefaultCredentialsChain::builder()
                        .region(region)
                        .build()
                        .await;
                b = b.credentials_provider(chain);
            }
        }
        Ok(S3Store {
            client: aws_sdk_s3::Client::from_conf(b.build()),
            config,
        })
    }

    pub fn config(&self) -> &S3Config {
        &self.config
    }

    /// The raw SDK client, for tests and tools that need an operation the trait lacks.
    pub fn client(&self) -> &aws_sdk_s3::Client {
        &self.client
    }

    /// Credentials material that must never appear in a message.
    fn secrets(&self) -> Vec<&str> {
        match &self.config.credentials {
            Some(c) => {
                let mut v = vec![c.secret_access_key.as_str()];
                if let Some(t) = &c.session_token {
                    v.push(t.as_str());
                }
                v
            }
            None => Vec::new(),
        }
    }

    fn sdk_err<E>(
        &self,
        operation: &str,
        target: Target,
        err: &aws_smithy_runtime_api::client::result::SdkError<
            E,
            aws_smithy_runtime_api::http::Response,
        >,
    ) -> StorageError
    where
        E: aws_smithy_types::error::metadata::ProvideErrorMetadata + std::error::Error + 'static,
    {
        let e = from_sdk_error(err, target);
        StorageError::new(e.kind(), format!("{operation}: {}", e.message())).scrub(&self.secrets())
    }

    async fn list_objects(
        &self,
        prefix: &str,
        continuation_token: Option<&str>,
        max_keys: Option<i32>,
        target: Target,
    ) -> Result<ListPage, StorageError> {
        let out = self
            .client
            .list_objects_v2()
            .bucket(&self.config.bucket)
            .prefix(prefix)
            .set_continuation_token(continuation_token.map(str::to_owned))
            .set_max_keys(max_keys)
            .send()
            .await
            .map_err(|e| self.sdk_err("ListObjectsV2", target, &e))?;
        Ok(ListPage {
            objects: out
                .contents()
                .iter()
                .map(|o| ListedObject {
                    key: o.key().unwrap_or_default().to_owned(),
                    size: o.size().unwrap_or(0).max(0) as u64,
                    etag: o.e_tag().and_then(etag_of),
                })
                .collect(),
            next_continuation_token: if out.is_truncated().unwrap_or(false) {
                out.next_continuation_token().map(str::to_owned)
            } else {
                None
            },
        })
    }

    async fn read_probe(
        &self,
        known_key: Option<&str>,
        steps: &mut Vec<ProbeStep>,
    ) -> Result<(), StorageError> {
        // ListObjectsV2 first: it is a GET whose error body carries a code, where a HEAD 403
        // carries none (and Garage's codes need the message to be told apart).
        let t = Instant::now();
        self.list_objects(&self.config.key_prefix, None, Some(1), Target::Bucket)
            .await?;
        steps.push(ProbeStep {
            operation: "ListObjectsV2",
            elapsed: t.elapsed(),
        });

        let t = Instant::now();
        self.client
            .head_bucket()
            .bucket(&self.config.bucket)
            .send()
            .await
            .map_err(|e| self.sdk_err("HeadBucket", Target::Bucket, &e))?;
        steps.push(ProbeStep {
            operation: "HeadBucket",
            elapsed: t.elapsed(),
        });

        if let Some(key) = known_key {
            let t = Instant::now();
            if self.head(key).await?.is_none() {
                return Err(StorageError::new(
                    ErrorKind::NotFound,
                    "HeadObject: the known mapped object is missing",
                ));
            }
            steps.push(ProbeStep {
                operation: "HeadObject",
                elapsed: t.elapsed(),
            });
        }
        Ok(())
    }

    async fn write_probe(&self, steps: &mut Vec<ProbeStep>) -> Result<(), StorageError> {
        let nonce = format!(
            "{}-{:016x}",
            SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map(|d| d.as_millis())
                .unwrap_or(0),
            rand::random::<u64>()
        );
        let key = layout::probe_key(&self.config.key_prefix, &nonce);
        let payload = Bytes::from(format!("castellan probe {nonce}\n"));

        let t = Instant::now();
        self.put(
            &key,
            PutBody::Bytes(payload.clone()),
            payload.len() as u64,
            &PutOptions::default(),
        )
        .await?;
        steps.push(ProbeStep {
            operation: "PutObject",
            elapsed: t.elapsed(),
        });

        let t = Instant::now();
        let read = async {
            let mut got = self.get(&key, None).await?;
            let mut buf = Vec::new();
            while let Some(chunk) = got.body.next().await {
                buf.extend_from_slice(&chunk?);
            }
            Ok::<_, StorageError>(buf)
        }
        .await;
        let deleted = self.delete(&key).await;
        let read = read?;
        if read != payload {
            return Err(StorageError::new(
                BackendReason::ServerError,
                "GetObject: the canary read back differs from what was written",
            ));
        }
        steps.push(ProbeStep {
            operation: "GetObject",
            elapsed: t.elapsed(),
        });
        deleted?;
        Ok(())
    }

    async fn put_single(
        &self,
        key: &str,
        body: PutBody,
        size: u64,
        options: &PutOptions,
    ) -> Result<PutOutcome, StorageError> {
        let stream = match body {
            PutBody::Path(path) => SdkByteStream::read_from()
                .path(&path)
                .length(aws_sdk_s3::primitives::Length::Exact(size))
                .build()
                .await
                .map_err(|e| {
                    StorageError::new(
                        BackendReason::InvalidSpec,
                        format!("reading {}: {e}", path.display()),
                    )
                })?,
            PutBody::Bytes(b) => {
                check_len(b.len() as u64, size)?;
                SdkByteStream::from(b)
            }
            PutBody::Stream(s) => {
                let mut reader = tokio_util::io::StreamReader::new(s);
                let buf = read_part(&mut reader, size as usize).await?;
                check_len(buf.len() as u64, size)?;
                ensure_end(&mut reader, size).await?;
                SdkByteStream::from(buf)
            }
        };
        let (sc, sse, kms) = self.write_settings(options);
        let out = self
            .client
            .put_object()
            .bucket(&self.config.bucket)
            .key(key)
            .content_length(size as i64)
            .set_content_type(options.content_type.clone())
            .set_storage_class(sc)
            .set_server_side_encryption(sse)
            .set_ssekms_key_id(kms)
            .body(stream)
            .send()
            .await
            .map_err(|e| self.sdk_err("PutObject", Target::Object, &e))?;
        Ok(PutOutcome {
            etag: out.e_tag().and_then(etag_of),
            parts: None,
        })
    }

    fn write_settings(
        &self,
        options: &PutOptions,
    ) -> (
        Option<StorageClass>,
        Option<ServerSideEncryption>,
        Option<String>,
    ) {
        let sc = options
            .storage_class
            .as_ref()
            .or(self.config.storage_class.as_ref())
            .map(|s| StorageClass::from(s.as_str()));
        match options.sse.as_ref().or(self.config.sse.as_ref()) {
            Some(Sse::Kms { key_id }) => (sc, Some(ServerSideEncryption::AwsKms), key_id.clone()),
            Some(Sse::Aes256) => (sc, Some(ServerSideEncryption::Aes256), None),
            None => (sc, None, None),
        }
    }

    async fn put_multipart(
        &self,
        key: &str,
        body: PutBody,
        size: u64,
        options: &PutOptions,
    ) -> Result<PutOutcome, StorageError> {
        let chunk = part_size(size, self.config.multipart_chunk_bytes);
        let mut reader: Box<dyn AsyncRead + Send + Unpin> = match body {
            PutBody::Path(path) => Box::new(tokio::fs::File::open(&path).await.map_err(|e| {
                StorageError::new(
                    BackendReason::InvalidSpec,
                    format!("opening {}: {e}", path.display()),
                )
            })?),
            PutBody::Stream(s) => Box::new(tokio_util::io::StreamReader::new(s)),
            PutBody::Bytes(b) => Box::new(std::io::Cursor::new(b)),
        };
        let (sc, sse, kms) = self.write_settings(options);
        let created = self
            .client
            .create_multipart_upload()
            .bucket(&self.config.bucket)
            .key(key)
            .set_content_type(options.content_type.clone())
            .set_storage_class(sc)
            .set_server_side_encryption(sse)
            .set_ssekms_key_id(kms)
            .send()
            .await
            .map_err(|e| self.sdk_err("CreateMultipartUpload", Target::Object, &e))?;
        let upload_id = created.upload_id().unwrap_or_default().to_owned();

        let result = self
            .upload_parts(key, &upload_id, &mut reader, size, chunk)
            .await;
        match result {
            Ok(outcome) => Ok(outcome),
            Err(e) => {
                // Best effort: an abandoned upload keeps parts (and costs) until aborted.
                let _ = self
                    .client
                    .abort_multipart_upload()
                    .bucket(&self.config.bucket)
                    .key(key)
                    .upload_id(&upload_id)
                    .send()
                    .await;
                Err(e)
            }
        }
    }

    async fn upload_parts(
        &self,
        key: &str,
        upload_id: &str,
        reader: &mut (dyn AsyncRead + Send + Unpin),
        size: u64,
        chunk: u64,
    ) -> Result<PutOutcome, StorageError> {
        let mut parts = Vec::new();
        let mut sent: u64 = 0;
        let mut number: i32 = 0;
        while sent < size {
            let want = chunk.min(size - sent) as usize;
            let buf = read_part(reader, want).await?;
            if buf.len() < want {
                return Err(check_len(sent + buf.len() as u64, size).unwrap_err());
            }
            number += 1;
            sent += buf.len() as u64;
            let out = self
                .client
                .upload_part()
                .bucket(&self.config.bucket)
                .key(key)
                .upload_id(upload_id)
                .part_number(number)
                .content_length(buf.len() as i64)
                .body(SdkByteStream::from(buf))
                .send()
                .await
                .map_err(|e| self.sdk_err("UploadPart", Target::Object, &e))?;
            parts.push(
                CompletedPart::builder()
                    .set_e_tag(out.e_tag().map(str::to_owned))
                    .part_number(number)
                    .build(),
            );
        }
        ensure_end(reader, size).await?;
        let out = self
            .client
            .complete_multipart_upload()
            .bucket(&self.config.bucket)
            .key(key)
            .upload_id(upload_id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(parts))
                    .build(),
            )
            .send()
            .await
            .map_err(|e| self.sdk_err("CompleteMultipartUpload", Target::Object, &e))?;
        Ok(PutOutcome {
            etag: out.e_tag().and_then(etag_of),
            parts: Some(number as u32),
        })
    }
}

/// The part size for an upload of `size` bytes: the configured chunk, grown when needed so
/// that the upload fits in S3's 10,000 parts, never below S3's 5 MiB minimum.
pub fn part_size(size: u64, configured: u64) -> u64 {
    let needed = size.div_ceil(MAX_PARTS);
    configured.max(needed).max(MIN_PART_BYTES)
}

fn check_len(actual: u64, declared: u64) -> Result<(), StorageError> {
    if actual == declared {
        Ok(())
    } else {
        Err(StorageError::new(
            BackendReason::InvalidSpec,
            format!("body has {actual} bytes, declared {declared}"),
        ))
    }
}

/// Reads up to `want` bytes (fewer only at the end of input).
async fn read_part(
    reader: &mut (dyn AsyncRead + Send + Unpin),
    want: usize,
) -> Result<Bytes, StorageError> {
    let mut buf = BytesMut::with_capacity(want);
    while buf.len() < want {
        let room = want - buf.len();
        let n = reader
            .read_buf(&mut (&mut buf).limit(room))
            .await
            .map_err(|e| {
                StorageError::new(
                    BackendReason::InvalidSpec,
                    format!("reading upload body: {e}"),
                )
            })?;
        if n == 0 {
            break;
        }
    }
    Ok(buf.freeze())
}

/// Fails when the body has more bytes than declared.
async fn ensure_end(
    reader: &mut (dyn AsyncRead + Send + Unpin),
    size: u64,
) -> Result<(), StorageError> {
    let mut one = [0u8; 1];
    let n = reader.read(&mut one).await.map_err(|e| {
        StorageError::new(
            BackendReason::InvalidSpec,
            format!("reading upload body: {e}"),
        )
    })?;
    if n == 0 {
        Ok(())
    } else {
        Err(StorageError::new(
            BackendReason::InvalidSpec,
            format!("body has more than the declared {size} bytes"),
        ))
    }
}

use bytes::BufMut as _;

/// Parses the total of `Content-Range: bytes a-b/total`.
fn total_from_content_range(v: &str) -> Option<u64> {
    v.rsplit_once('/')?.1.trim().parse().ok()
}

#[async_trait::async_trait]
impl ObjectStore for S3Store {
    async fn probe(
        &self,
        mode: ProbeMode,
        known_key: Option<&str>,
    ) -> Result<ProbeReport, StorageError> {
        let start = Instant::now();
        let mut steps = Vec::new();
        self.read_probe(known_key, &mut steps).await?;
        if mode == ProbeMode::ReadWrite {
            self.write_probe(&mut steps).await?;
        }
        Ok(ProbeReport {
            steps,
            elapsed: start.elapsed(),
        })
    }

    async fn head(&self, key: &str) -> Result<Option<ObjectInfo>, StorageError> {
        match self
            .client
            .head_object()
            .bucket(&self.config.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(out) => Ok(Some(ObjectInfo {
                size: out.content_length().unwrap_or(0).max(0) as u64,
                etag: out.e_tag().and_then(etag_of),
                last_modified: out
                    .last_modified()
                    .and_then(|t| SystemTime::try_from(*t).ok()),
                storage_class: out.storage_class().map(|s| s.as_str().to_owned()),
            })),
            Err(e) => {
                let err = self.sdk_err("HeadObject", Target::Object, &e);
                if err.kind() == ErrorKind::NotFound {
                    Ok(None)
                } else {
                    Err(err)
                }
            }
        }
    }

    async fn get(&self, key: &str, range: Option<ByteRange>) -> Result<GetObject, StorageError> {
        let out = self
            .client
            .get_object()
            .bucket(&self.config.bucket)
            .key(key)
            .set_range(range.map(|r| r.header_value()))
            .send()
            .await
            .map_err(|e| self.sdk_err("GetObject", Target::Object, &e))?;
        let content_length = out.content_length().map(|n| n.max(0) as u64);
        let total_size = match out.content_range() {
            Some(r) => total_from_content_range(r),
            None if range.is_none() => content_length,
            None => None,
        };
        let etag = out.e_tag().and_then(etag_of);
        let secrets: Vec<String> = self.secrets().into_iter().map(str::to_owned).collect();
        let body = futures::stream::unfold((out.body, secrets), |(mut body, secrets)| async move {
            let item = body.next().await?;
            let item = item.map_err(|e| {
                let refs: Vec<&str> = secrets.iter().map(String::as_str).collect();
                from_body_error(&e).scrub(&refs)
            });
            Some((item, (body, secrets)))
        });
        Ok(GetObject {
            content_length,
            total_size,
            etag,
            body: body.boxed(),
        })
    }

    async fn put(
        &self,
        key: &str,
        body: PutBody,
        size: u64,
        options: &PutOptions,
    ) -> Result<PutOutcome, StorageError> {
        if size > self.config.multipart_threshold_bytes {
            self.put_multipart(key, body, size, options).await
        } else {
            self.put_single(key, body, size, options).await
        }
    }

    async fn delete(&self, key: &str) -> Result<(), StorageError> {
        match self
            .client
            .delete_object()
            .bucket(&self.config.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) => {
                let err = self.sdk_err("DeleteObject", Target::Object, &e);
                if err.kind() == ErrorKind::NotFound {
                    Ok(())
                } else {
                    Err(err)
                }
            }
        }
    }

    async fn list(
        &self,
        prefix: &str,
        continuation_token: Option<&str>,
    ) -> Result<ListPage, StorageError> {
        self.list_objects(prefix, continuation_token, None, Target::Bucket)
            .await
    }

    fn key_prefix(&self) -> &str {
        &self.config.key_prefix
    }
}

/// An ETag as the server sent it, or `None` when it sent none or an empty one (Ceph RGW answers
/// CompleteMultipartUpload with `<ETag></ETag>`): an empty ETag must never compare equal to another.
fn etag_of(etag: &str) -> Option<String> {
    (!etag.is_empty()).then(|| etag.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_etag_is_no_etag() {
        assert_eq!(etag_of(""), None);
        assert_eq!(etag_of("\"abc-3\""), Some("\"abc-3\"".to_owned()));
    }

    #[test]
    fn part_sizes_respect_s3_limits() {
        let mib = 1024 * 1024;
        let cases = [
            (
                "the configured chunk is used when it fits",
                100 * mib,
                16 * mib,
                16 * mib,
            ),
            (
                "a chunk below 5 MiB is raised to 5 MiB",
                100 * mib,
                mib,
                5 * mib,
            ),
            (
                "a huge object grows the part to fit 10,000 parts",
                1_000_000 * mib,
                16 * mib,
                100 * mib,
            ),
        ];
        for (name, size, configured, want) in cases {
            assert_eq!(part_size(size, configured), want, "{name}");
        }
    }

    #[test]
    fn debug_output_never_shows_secrets() {
        let mut c = S3Config::new("b");
        c.credentials = Some(StaticCredentials {
            access_key_id: "AKIDEXAMPLE".into(),
            secret_access_key: "very-secret-value".into(),
            session_token: Some("session-token-value".into()),
        });
        c.ca_bundle_pem = Some(b"-----BEGIN CERTIFICATE-----".to_vec());
        let s = format!("{c:?}");
        assert!(s.contains("AKIDEXAMPLE"));
        assert!(!s.contains("very-secret-value"), "{s}");
        assert!(!s.contains("session-token-value"), "{s}");
        assert!(!s.contains("BEGIN CERTIFICATE"), "{s}");
    }

    #[test]
    fn content_range_totals_are_parsed() {
        assert_eq!(total_from_content_range("bytes 0-9/100"), Some(100));
        assert_eq!(total_from_content_range("bytes 0-9/*"), None);
    }

    #[test]
    fn configurations_are_checked_before_any_request() {
        let ok = S3Config::new("b");
        assert!(ok.validate().is_ok());
        let mut bad_prefix = S3Config::new("b");
        bad_prefix.key_prefix = "/abs".into();
        let mut small_parts = S3Config::new("b");
        small_parts.multipart_chunk_bytes = 1024;
        let mut bad_endpoint = S3Config::new("b");
        bad_endpoint.endpoint = Some("localhost:9000".into());
        for (name, c) in [
            ("a leading slash prefix", bad_prefix),
            ("parts below 5 MiB", small_parts),
            ("an endpoint without scheme", bad_endpoint),
        ] {
            let e = c.validate().unwrap_err();
            assert_eq!(
                e.kind(),
                ErrorKind::Backend(BackendReason::InvalidSpec),
                "{name}"
            );
        }
    }
}
