//! The `castellan-s3server` binary as scripts use it: start it, read the endpoint it prints,
//! talk SigV4-signed S3 to it, revoke a key by editing the keys file and sending SIGHUP.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    sign, PayloadChecksumKind, SignableBody, SignableRequest, SigningSettings,
};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

struct Proc {
    child: Child,
    stderr: mpsc::Receiver<String>,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Proc {
    /// Waits for a stderr line containing `needle`.
    fn expect_stderr(&self, needle: &str) -> String {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.stderr.recv_timeout(left) {
                Ok(line) if line.contains(needle) => return line,
                Ok(_) => continue,
                Err(e) => panic!("no stderr line containing {needle:?}: {e}"),
            }
        }
    }

    fn signal(&self, name: &str) {
        let ok = Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status()
            .expect("kill runs")
            .success();
        assert!(ok, "kill -{name} failed");
    }
}

fn start(keys_file: &std::path::Path, data_dir: &std::path::Path) -> (Proc, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_castellan-s3server"))
        .args(["--listen", "127.0.0.1:0", "--bucket", "artifacts"])
        .arg("--keys-file")
        .arg(keys_file)
        .arg("--data-dir")
        .arg(data_dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary starts");
    let mut endpoint = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut endpoint)
        .unwrap();
    let endpoint = endpoint.trim().to_owned();
    assert!(
        endpoint.starts_with("http://127.0.0.1:"),
        "endpoint line: {endpoint:?}"
    );
    let (tx, rx) = mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    (Proc { child, stderr: rx }, endpoint)
}

/// Sends a SigV4-signed S3 request; returns (status, body).
async fn s3(
    endpoint: &str,
    key: (&str, &str),
    method: &str,
    path: &str,
    body: &[u8],
) -> (u16, String) {
    let url = format!("{endpoint}{path}");
    let host = endpoint.trim_start_matches("http://");
    let mut req = http::Request::builder()
        .method(method)
        .uri(&url)
        .header("host", host)
        .body(Full::new(Bytes::copy_from_slice(body)))
        .unwrap();
    let identity: Identity = Credentials::new(key.0, key.1, None, None, "test").into();
    let mut settings = SigningSettings::default();
    settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
    let params: aws_sigv4::http_request::SigningParams<'_> = v4::SigningParams::builder()
        .identity(&identity)
        .region("us-east-1")
        .name("s3")
        .time(SystemTime::now())
        .settings(settings)
        .build()
        .unwrap()
        .into();
    let headers = [("host", host)];
    let signable = SignableRequest::new(
        method,
        url.as_str(),
        headers.into_iter(),
        SignableBody::Bytes(body),
    )
    .unwrap();
    let (instructions, _) = sign(signable, &params).unwrap().into_parts();
    instructions.apply_to_request_http1x(&mut req);
    let client = Client::builder(TokioExecutor::new()).build_http();
    let resp = client.request(req).await.expect("the server answers");
    let status = resp.status().as_u16();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&bytes).into_owned())
}

#[tokio::test]
async fn keys_file_reload_on_sighup_revokes_and_restores_a_key() {
    let dir = tempfile::tempdir().unwrap();
    let keys_file = dir.path().join("keys");
    let data = dir.path().join("data");
    std::fs::write(&keys_file, "# two keys\nK1 secret-one\nK2 secret-two\n").unwrap();
    let (proc, endpoint) = start(&keys_file, &data);
    let k1 = ("K1", "secret-one");
    let k2 = ("K2", "secret-two");

    let (status, body) = s3(&endpoint, k1, "PUT", "/artifacts/cas/one", b"hello").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        std::fs::read(data.join("artifacts/cas/one")).unwrap(),
        b"hello",
        "objects live in --data-dir"
    );
    let (status, body) = s3(&endpoint, k2, "GET", "/artifacts/cas/one", b"").await;
    assert_eq!((status, body.as_str()), (200, "hello"));

    // Revoke K1: edit the file, SIGHUP, wait for the reload line.
    std::fs::write(&keys_file, "K2 secret-two\n").unwrap();
    proc.signal("HUP");
    assert_eq!(proc.expect_stderr("keys reloaded"), "keys reloaded (1): K2");
    let (status, body) = s3(&endpoint, k1, "GET", "/artifacts/cas/one", b"").await;
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("<Code>NotSignedUp</Code>"), "{body}");
    let (status, _) = s3(&endpoint, k2, "GET", "/artifacts/cas/one", b"").await;
    assert_eq!(status, 200, "the other key still works");

    // A file that does not parse keeps the previous keys.
    std::fs::write(&keys_file, "K1\n").unwrap();
    proc.signal("HUP");
    proc.expect_stderr("keys not reloaded");
    let (status, _) = s3(&endpoint, k2, "GET", "/artifacts/cas/one", b"").await;
    assert_eq!(status, 200);

    // Restore K1.
    std::fs::write(&keys_file, "K1 secret-one\nK2 secret-two\n").unwrap();
    proc.signal("HUP");
    assert_eq!(
        proc.expect_stderr("keys reloaded"),
        "keys reloaded (2): K1,K2"
    );
    let (status, body) = s3(&endpoint, k1, "GET", "/artifacts/cas/one", b"").await;
    assert_eq!((status, body.as_str()), (200, "hello"));

    // A wrong secret for a known key is a signature mismatch, not an unknown key.
    let (status, body) = s3(&endpoint, ("K1", "wrong"), "GET", "/artifacts/cas/one", b"").await;
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("SignatureDoesNotMatch"), "{body}");

    // SIGTERM ends it cleanly.
    proc.signal("TERM");
    let mut proc = proc;
    let status = proc.child.wait().unwrap();
    assert!(status.success(), "exit status {status}");
}

#[test]
fn bad_arguments_exit_2_with_usage() {
    let out = Command::new(env!("CARGO_BIN_EXE_castellan-s3server"))
        .args(["--listen", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--keys-file is required"), "{err}");
    assert!(err.contains("usage:"), "{err}");
}
