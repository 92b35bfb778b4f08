//! [`MotoServer`]: a `moto_server` child process on a free loopback port, with IAM users,
//! access keys and buckets created while auth is off, then auth switched on
//! (`POST /moto-api/reset-auth` with body `0`), and key revocation through an IAM
//! `DeleteAccessKey` signed by an admin user. The process is killed on drop.
//!
//! When `moto_server` is not installed, [`MotoServer::start`] fails with a message saying how
//! to install it: tests that need moto fail, they never pass silently.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

/// Why moto could not be used.
#[derive(Debug, thiserror::Error)]
pub enum MotoError {
    #[error(
        "moto_server is not on the PATH; install it with: pip install 'moto[server]' \
         (tests that need moto fail rather than skip)"
    )]
    NotInstalled,
    #[error("moto_server did not answer on 127.0.0.1:{port} within {secs} s")]
    NotReady { port: u16, secs: u64 },
    #[error("moto I/O: {0}")]
    Io(#[from] std::io::Error),
    #[error("moto request {action} failed: HTTP {status}: {body}")]
    Request {
        action: String,
        status: u16,
        body: String,
    },
    #[error("moto request {action} could not be sent: {detail}")]
    Transport { action: String, detail: String },
    #[error("moto answer to {action} lacks <{element}>")]
    Unexpected { action: String, element: String },
    #[error("auth is not on yet: call enable_auth with an admin user first")]
    NoAdmin,
}

/// An IAM user of the moto server with one access key.
#[derive(Clone, PartialEq, Eq)]
pub struct MotoUser {
    pub name: String,
    pub access_key_id: String,
    pub secret_access_key: String,
}

impl std::fmt::Debug for MotoUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MotoUser")
            .field("name", &self.name)
            .field("access_key_id", &self.access_key_id)
            .finish_non_exhaustive()
    }
}

/// A running `moto_server`.
pub struct MotoServer {
    child: Child,
    port: u16,
    admin: Option<MotoUser>,
    http: Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>,
}

impl std::fmt::Debug for MotoServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MotoServer")
            .field("port", &self.port)
            .finish_non_exhaustive()
    }
}

const ALLOW_ALL: &str =
    r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#;
/// Signs requests while auth is still off (moto only reads the service from the scope).
const SETUP_KEY: (&str, &str) = ("AKIAMOTOSETUP0000000", "setup-secret-not-checked");

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
}

impl MotoServer {
    /// Starts `moto_server -H 127.0.0.1 -p PORT` and waits until it answers.
    pub async fn start() -> Result<MotoServer, MotoError> {
        if !on_path("moto_server") {
            return Err(MotoError::NotInstalled);
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let child = Command::new("moto_server")
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::NotFound => MotoError::NotInstalled,
                _ => MotoError::Io(e),
            })?;
        let server = MotoServer {
            child,
            port,
            admin: None,
            http: Client::builder(TokioExecutor::new()).build_http(),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let req = http::Request::get(format!("{}/moto-api/data.json", server.endpoint()))
                .body(Full::new(Bytes::new()))
                .expect("static request is valid");
            if let Ok(resp) = server.http.request(req).await {
                if resp.status().is_success() {
                    return Ok(server);
                }
            }
            if Instant::now() > deadline {
                return Err(MotoError::NotReady { port, secs: 30 });
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// `http://127.0.0.1:PORT` (use path-style addressing).
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    fn signer(&self) -> (String, String) {
        match &self.admin {
            Some(a) => (a.access_key_id.clone(), a.secret_access_key.clone()),
            None => (SETUP_KEY.0.to_owned(), SETUP_KEY.1.to_owned()),
        }
    }

    /// Sends a SigV4-signed request and returns the body of a 2xx answer.
    async fn signed(
        &self,
        action: &str,
        service: &str,
        method: &str,
        path: &str,
        content_type: Option<&str>,
        body: Bytes,
    ) -> Result<String, MotoError> {
        let key = self.signer();
        let url = format!("{}{}", self.endpoint(), path);
        let mut builder = http::Request::builder()
            .method(method)
            .uri(&url)
            .header("host", format!("127.0.0.1:{}", self.port));
        if let Some(ct) = content_type {
            builder = builder.header("content-type", ct);
        }
        let mut req = builder
            .body(Full::new(body.clone()))
            .map_err(|e| MotoError::Transport {
                action: action.into(),
                detail: e.to_string(),
            })?;
        let identity: Identity = Credentials::new(key.0, key.1, None, None, "moto").into();
        let params: aws_sigv4::http_request::SigningParams<'_> = v4::SigningParams::builder()
            .identity(&identity)
            .region("us-east-1")
            .name(service)
            .time(SystemTime::now())
            .settings(SigningSettings::default())
            .build()
            .map_err(|e| MotoError::Transport {
                action: action.into(),
                detail: e.to_string(),
            })?
            .into();
        let headers: Vec<(String, String)> = req
            .headers()
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_owned(),
                    v.to_str().unwrap_or_default().to_owned(),
                )
            })
            .collect();
        let signable = SignableRequest::new(
            method,
            url.as_str(),
            headers.iter().map(|(k, v)| (k.as_str(), v.as_str())),
            SignableBody::Bytes(&body),
        )
        .map_err(|e| MotoError::Transport {
            action: action.into(),
            detail: e.to_string(),
        })?;
        let (instructions, _) = sign(signable, &params)
            .map_err(|e| MotoError::Transport {
                action: action.into(),
                detail: e.to_string(),
            })?
            .into_parts();
        instructions.apply_to_request_http1x(&mut req);
        let resp = self
            .http
            .request(req)
            .await
            .map_err(|e| MotoError::Transport {
                action: action.into(),
                detail: e.to_string(),
            })?;
        let status = resp.status().as_u16();
        let text = resp
            .into_body()
            .collect()
            .await
            .map(|b| String::from_utf8_lossy(&b.to_bytes()).into_owned())
            .unwrap_or_default();
        if (200..300).contains(&status) {
            Ok(text)
        } else {
            Err(MotoError::Request {
                action: action.into(),
                status,
                body: text,
            })
        }
    }

    async fn iam(&self, action: &str, params: &[(&str, &str)]) -> Result<String, MotoError> {
        let mut body = format!("Action={action}&Version=2010-05-08");
        for (k, v) in params {
            body.push('&');
            body.push_str(&form_encode(k));
            body.push('=');
            body.push_str(&form_encode(v));
        }
        self.signed(
            action,
            "iam",
            "POST",
            "/",
            Some("application/x-www-form-urlencoded; charset=utf-8"),
            Bytes::from(body),
        )
        .await
    }

    /// Creates an IAM user allowed to do everything, with one access key.
    pub async fn create_user(&self, name: &str) -> Result<MotoUser, MotoError> {
        self.iam("CreateUser", &[("UserName", name)]).await?;
        self.iam(
            "PutUserPolicy",
            &[
                ("UserName", name),
                ("PolicyName", "allow-all"),
                ("PolicyDocument", ALLOW_ALL),
            ],
        )
        .await?;
        let xml = self.iam("CreateAccessKey", &[("UserName", name)]).await?;
        Ok(MotoUser {
            name: name.to_owned(),
            access_key_id: element(&xml, "AccessKeyId", "CreateAccessKey")?,
            secret_access_key: element(&xml, "SecretAccessKey", "CreateAccessKey")?,
        })
    }

    /// Creates a bucket (signed by the admin once auth is on).
    pub async fn create_bucket(&self, bucket: &str) -> Result<(), MotoError> {
        self.signed(
            "CreateBucket",
            "s3",
            "PUT",
            &format!("/{bucket}"),
            None,
            Bytes::new(),
        )
        .await
        .map(|_| ())
    }

    /// Turns authentication on; from now on IAM calls are signed by `admin`.
    pub async fn enable_auth(&mut self, admin: &MotoUser) -> Result<(), MotoError> {
        let req = http::Request::post(format!("{}/moto-api/reset-auth", self.endpoint()))
            .body(Full::new(Bytes::from_static(b"0")))
            .expect("static request is valid");
        let resp = self
            .http
            .request(req)
            .await
            .map_err(|e| MotoError::Transport {
                action: "reset-auth".into(),
                detail: e.to_string(),
            })?;
        if !resp.status().is_success() {
            return Err(MotoError::Request {
                action: "reset-auth".into(),
                status: resp.status().as_u16(),
                body: String::new(),
            });
        }
        self.admin = Some(admin.clone());
        Ok(())
    }

    /// Deletes `user`'s access key (IAM `DeleteAccessKey`, signed by the admin).
    pub async fn revoke_key(&self, user: &MotoUser) -> Result<(), MotoError> {
        if self.admin.is_none() {
            return Err(MotoError::NoAdmin);
        }
        self.iam(
            "DeleteAccessKey",
            &[
                ("UserName", &user.name),
                ("AccessKeyId", &user.access_key_id),
            ],
        )
        .await
        .map(|_| ())
    }
}

impl Drop for MotoServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn element(xml: &str, name: &str, action: &str) -> Result<String, MotoError> {
    let open = format!("<{name}>");
    let close = format!("</{name}>");
    let start = xml.find(&open).map(|i| i + open.len());
    let value = start.and_then(|s| xml[s..].find(&close).map(|e| xml[s..s + e].to_owned()));
    value.ok_or_else(|| MotoError::Unexpected {
        action: action.into(),
        element: name.into(),
    })
}

/// `application/x-www-form-urlencoded` value encoding (RFC 3986 unreserved kept).
fn form_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn form_values_are_percent_encoded() {
        assert_eq!(
            super::form_encode("a b/{\"x\":1}"),
            "a%20b%2F%7B%22x%22%3A1%7D"
        );
        assert_eq!(super::form_encode("Safe-_.~09"), "Safe-_.~09");
    }

    #[test]
    fn elements_are_extracted_or_reported_missing() {
        let xml = "<R><AccessKeyId>AKIA1</AccessKeyId></R>";
        assert_eq!(super::element(xml, "AccessKeyId", "A").unwrap(), "AKIA1");
        assert!(super::element(xml, "SecretAccessKey", "A").is_err());
    }
}
