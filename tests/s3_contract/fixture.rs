//! What a case needs from an S3 server: the [`Fixture`] trait, the [`Answers`] where servers
//! legitimately differ, and the helpers every case uses (stores, payloads, reads, redaction).
//!
//! A fixture owns its server's lifecycle and its administration (keys, users); a case owns only
//! objects under its own [`unique`] key prefix, so cases on a shared server run in parallel.

use std::collections::HashMap;
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use bytes::Bytes;
use castellan::storage::{
    ByteRange, ErrorKind, ObjectStore, PutBody, PutOptions, S3Config, S3Store, StaticCredentials,
    StorageError,
};
use futures::StreamExt;

/// An S3 access key pair.
#[derive(Clone, PartialEq, Eq)]
pub struct Key {
    pub id: String,
    pub secret: String,
}

impl Key {
    pub fn new(id: impl Into<String>, secret: impl Into<String>) -> Key {
        Key {
            id: id.into(),
            secret: secret.into(),
        }
    }
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Key")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// How a server answers the SDK's default upload of a file over http (an aws-chunked body with
/// a CRC32 trailer): the streaming-checksum trap of `docs/s3-servers.md`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DefaultChecksumUpload {
    Accepted,
    /// Rejected with this S3 error code.
    Rejected(&'static str),
}

/// Where servers differ in what they answer (measured; see `docs/s3-servers.md`). The contract
/// asserts each server's own answer, so a change of server behaviour fails loudly.
#[derive(Debug, Clone, Copy)]
pub struct Answers {
    /// Fragments the classified error's message keeps of the server's answer to an unknown key.
    pub unknown_key_says: &'static [&'static str],
    /// Same, for a wrong secret.
    pub wrong_secret_says: &'static [&'static str],
    /// What a GET of an object in a missing bucket is classified as.
    pub get_in_missing_bucket: ErrorKind,
    pub default_checksum_upload: DefaultChecksumUpload,
    /// Whether the server implements ListMultipartUploads (to see that a failed upload was
    /// aborted).
    pub lists_multipart_uploads: bool,
    /// Whether list prefixes may contain `/` (moto with auth on mis-signs such query values).
    pub slashed_list_prefixes: bool,
}

/// One S3 server the contract runs against.
#[async_trait::async_trait]
pub trait Fixture: Send + Sync + Sized + 'static {
    /// The module name of its tests (`s3s`, `moto`, `rgw`, `garage`).
    const NAME: &'static str;
    const ANSWERS: Answers;

    /// The server for one test, or `None` (after saying so loudly) when the fixture is not
    /// configured. Panics when it is configured but unusable: such a run must fail.
    async fn start(test: &str) -> Option<Self>;

    /// `http://127.0.0.1:PORT` (the stores use path-style addressing).
    fn endpoint(&self) -> String;
    /// A bucket both keys can read and write.
    fn bucket(&self) -> String;
    /// A valid key on [`Fixture::bucket`].
    fn key(&self) -> Key;
    /// Another valid key on the same bucket (another user or the same user's second key).
    fn second_key(&self) -> Key;
    /// A fresh valid key on the bucket, which the test may revoke.
    async fn new_key(&self) -> Key;
    /// Revokes a key made by [`Fixture::new_key`] while the server runs.
    async fn revoke(&self, key: &Key);
    /// The name of a bucket that does not exist.
    fn missing_bucket(&self) -> String {
        unique("no-such-bucket")
    }
}

/// A short unique name, so that tests and repeated runs on one server never share keys.
pub fn unique(what: &str) -> String {
    format!("{what}-{:012x}", rand::random::<u64>() >> 16)
}

/// The configuration of a store on `f`: no retries (failures surface at once), path style.
pub fn config<F: Fixture>(f: &F, key: &Key, bucket: &str, prefix: &str) -> S3Config {
    let mut c = S3Config::new(bucket);
    c.endpoint = Some(f.endpoint());
    c.force_path_style = true;
    c.key_prefix = prefix.to_owned();
    c.credentials = Some(StaticCredentials {
        access_key_id: key.id.clone(),
        secret_access_key: key.secret.clone(),
        session_token: None,
    });
    c.max_attempts = 1;
    // A guard against a hung server, not a performance bound.
    c.operation_timeout = Some(Duration::from_secs(120));
    c
}

pub async fn store_from(config: S3Config) -> S3Store {
    S3Store::new(config)
        .await
        .expect("valid store configuration")
}

/// A store on the fixture's bucket with `key`, under `prefix`.
pub async fn store<F: Fixture>(f: &F, key: &Key, prefix: &str) -> S3Store {
    store_from(config(f, key, &f.bucket(), prefix)).await
}

/// `len` bytes that differ with `seed`.
pub fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| ((i * 31) as u8).wrapping_add(seed))
        .collect()
}

pub async fn read_all(store: &dyn ObjectStore, key: &str, range: Option<ByteRange>) -> Vec<u8> {
    let mut got = store
        .get(key, range)
        .await
        .unwrap_or_else(|e| panic!("get {key}: {e}"));
    let mut out = Vec::new();
    while let Some(chunk) = got.body.next().await {
        out.extend_from_slice(&chunk.expect("body chunk"));
    }
    out
}

pub async fn put_bytes(store: &dyn ObjectStore, key: &str, data: &[u8]) {
    store
        .put(
            key,
            PutBody::Bytes(Bytes::copy_from_slice(data)),
            data.len() as u64,
            &PutOptions::default(),
        )
        .await
        .unwrap_or_else(|e| panic!("put {key}: {e}"));
}

/// `chunks` of `data` as a [`PutBody::Stream`].
pub fn stream_of(data: &[u8], chunk: usize) -> PutBody {
    let chunks: Vec<std::io::Result<Bytes>> = data
        .chunks(chunk)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    PutBody::Stream(futures::stream::iter(chunks).boxed())
}

/// Messages go to Events and logs: never a secret, never a signature.
pub fn assert_redacted(e: &StorageError, secrets: &[&str]) {
    let text = format!("{e} {e:?}");
    for s in secrets {
        assert!(!text.contains(s), "secret leaked: {text}");
    }
    assert!(
        !text.contains("X-Amz-Signature"),
        "signature leaked: {text}"
    );
    assert!(
        !text.to_ascii_lowercase().contains("signature="),
        "signature leaked: {text}"
    );
}

/// Says that a fixture's tests do not talk to its server: once per test binary on the
/// uncaptured stderr (always visible), and per test on the captured one (with `--nocapture`).
/// With `CI` set it panics instead.
pub fn not_run(fixture: &str, test: &str, var: &str, how: &str) {
    use std::io::Write as _;
    // CI starts every server (`.ci/run`): there a missing one is a failure, not a skip.
    if std::env::var_os("CI").is_some_and(|v| !v.is_empty()) {
        panic!("s3_contract::{fixture}::{test}: CI is set but {var} is not ({how})");
    }
    static ONCE: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
    let mut said = ONCE.lock().unwrap_or_else(|e| e.into_inner());
    if !said.iter().any(|s| s == fixture) {
        said.push(fixture.to_owned());
        let _ = writeln!(
            std::io::stderr(),
            "\ns3_contract::{fixture}: NOT RUN: {var} is not set, so every {fixture}::* test of \
             this run passes WITHOUT talking to the server ({how})\n"
        );
    }
    eprintln!("s3_contract::{fixture}::{test}: NOT RUN (passes vacuously): {var} is not set");
}

/// The `PREFIX*` variables of the env file `var` names; `None` (after [`not_run`]) when `var`
/// is unset. Panics when the file is unreadable or a variable is missing.
pub fn env_file(
    fixture: &str,
    test: &str,
    var: &str,
    prefix: &str,
    how: &str,
) -> Option<HashMap<String, String>> {
    let Some(path) = std::env::var_os(var) else {
        not_run(fixture, test, var, how);
        return None;
    };
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{var}={} is set but cannot be read: {e}",
            path.to_string_lossy()
        )
    });
    Some(
        text.lines()
            .filter_map(|l| l.split_once('='))
            .filter(|(k, _)| k.starts_with(prefix))
            .map(|(k, v)| (k.to_owned(), v.trim().trim_matches('\'').to_owned()))
            .collect(),
    )
}

/// One variable of an env file, or a panic naming it.
pub fn required(vars: &HashMap<String, String>, var: &str, name: &str) -> String {
    vars.get(name)
        .unwrap_or_else(|| panic!("{var}: {name} is missing from the env file"))
        .clone()
}

/// Panics unless `endpoint` is `http://` + a loopback address that accepts connections.
pub fn assert_reachable(var: &str, what: &str, endpoint: &str) {
    let addr: SocketAddr = endpoint
        .strip_prefix("http://")
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("{var}: endpoint {endpoint} is not http://IP:PORT"));
    assert!(
        addr.ip().is_loopback(),
        "tests only talk to loopback, not {addr}"
    );
    if let Err(e) = TcpStream::connect_timeout(&addr, Duration::from_secs(3)) {
        panic!("{var} is set but {what} at {endpoint} is unreachable ({e}); is it still running?");
    }
}
