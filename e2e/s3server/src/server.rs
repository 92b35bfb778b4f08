//! [`S3Server`]: s3s + s3s-fs on `127.0.0.1`, with a [`KeyRing`], [`Faults`] and
//! stop/restart on the same port.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::Frame;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use s3s::service::{S3Service, S3ServiceBuilder};
use tokio::net::TcpListener;
use tokio::sync::Mutex;
use tokio::task::{JoinHandle, JoinSet};

use crate::faults::{Decision, Faults};
use crate::keys::KeyRing;

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type ResponseBody = UnsyncBoxBody<Bytes, BoxError>;

/// How to start an [`S3Server`].
#[derive(Debug, Clone, Default)]
pub struct ServerOptions {
    /// Where objects live (one directory per bucket). `None`: a fresh temporary directory,
    /// removed when the server is dropped. Two servers may share one directory.
    pub data_dir: Option<PathBuf>,
    /// Buckets to create at start.
    pub buckets: Vec<String>,
    /// Access keys accepted at start (id, secret).
    pub keys: Vec<(String, String)>,
    /// Port to bind; `None` picks a free one.
    pub port: Option<u16>,
}

struct Shared {
    service: S3Service,
    faults: Arc<Faults>,
}

/// A running (or stopped) in-process S3 server.
pub struct S3Server {
    addr: SocketAddr,
    data_dir: PathBuf,
    _temp: Option<tempfile::TempDir>,
    keys: KeyRing,
    faults: Arc<Faults>,
    shared: Arc<Shared>,
    accept: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for S3Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Server")
            .field("addr", &self.addr)
            .field("data_dir", &self.data_dir)
            .finish_non_exhaustive()
    }
}

impl S3Server {
    /// Starts a server; it accepts connections when this returns.
    pub async fn start(options: ServerOptions) -> std::io::Result<S3Server> {
        let (data_dir, temp) = match options.data_dir {
            Some(d) => {
                std::fs::create_dir_all(&d)?;
                (d, None)
            }
            None => {
                let t = tempfile::tempdir()?;
                (t.path().to_path_buf(), Some(t))
            }
        };
        for b in &options.buckets {
            std::fs::create_dir_all(data_dir.join(b))?;
        }
        let keys = KeyRing::default();
        for (id, secret) in &options.keys {
            keys.add(id, secret);
        }
        let fs = s3s_fs::FileSystem::new(&data_dir)
            .map_err(|e| std::io::Error::other(format!("{e:?}")))?;
        let mut builder = S3ServiceBuilder::new(fs);
        builder.set_auth(keys.clone());
        let faults = Arc::new(Faults::default());
        let shared = Arc::new(Shared {
            service: builder.build(),
            faults: faults.clone(),
        });
        let listener = TcpListener::bind(("127.0.0.1", options.port.unwrap_or(0))).await?;
        let addr = listener.local_addr()?;
        let accept = tokio::spawn(serve(listener, shared.clone()));
        Ok(S3Server {
            addr,
            data_dir,
            _temp: temp,
            keys,
            faults,
            shared,
            accept: Mutex::new(Some(accept)),
        })
    }

    /// `http://127.0.0.1:PORT` (use path-style addressing).
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The access keys this server accepts; add and revoke while it runs.
    pub fn keys(&self) -> &KeyRing {
        &self.keys
    }

    /// The fault switchboard.
    pub fn faults(&self) -> &Faults {
        &self.faults
    }

    /// Creates a bucket directly in the data directory.
    pub fn create_bucket(&self, bucket: &str) -> std::io::Result<()> {
        std::fs::create_dir_all(self.data_dir.join(bucket))
    }

    /// Writes an object's bytes directly into the data directory, bypassing S3 (to plant
    /// corrupt replicas).
    pub fn write_object_file(&self, bucket: &str, key: &str, bytes: &[u8]) -> std::io::Result<()> {
        let path = self.data_dir.join(bucket).join(key);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(path, bytes)
    }

    /// Stops accepting and drops every open connection: clients then get "connection
    /// refused". Idempotent.
    pub async fn stop(&self) {
        if let Some(handle) = self.accept.lock().await.take() {
            handle.abort();
            let _ = handle.await;
        }
    }

    /// Serves again on the same port (after [`S3Server::stop`]).
    pub async fn restart(&self) -> std::io::Result<()> {
        let mut accept = self.accept.lock().await;
        if accept.is_some() {
            return Ok(());
        }
        let listener = TcpListener::bind(self.addr).await?;
        *accept = Some(tokio::spawn(serve(listener, self.shared.clone())));
        Ok(())
    }

    pub async fn is_running(&self) -> bool {
        self.accept.lock().await.is_some()
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        if let Ok(mut accept) = self.accept.try_lock() {
            if let Some(handle) = accept.take() {
                handle.abort();
            }
        }
    }
}

/// Accepts connections until aborted; aborting drops the listener and, through the JoinSet,
/// every connection task.
async fn serve(listener: TcpListener, shared: Arc<Shared>) {
    let mut connections = JoinSet::new();
    loop {
        while connections.try_join_next().is_some() {}
        let Ok((socket, _)) = listener.accept().await else {
            continue;
        };
        let _ = socket.set_nodelay(true);
        let shared = shared.clone();
        connections.spawn(async move {
            let svc = hyper::service::service_fn(move |req| handle(shared.clone(), req));
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(socket), svc)
                .await;
        });
    }
}

/// A path-style object GET: `GET /bucket/key…` (not a listing or a bucket-level call).
fn is_object_get(req: &http::Request<Incoming>) -> bool {
    req.method() == http::Method::GET
        && req
            .uri()
            .path()
            .trim_start_matches('/')
            .split_once('/')
            .is_some_and(|(_, key)| !key.is_empty())
}

async fn handle(
    shared: Arc<Shared>,
    req: http::Request<Incoming>,
) -> Result<http::Response<ResponseBody>, Infallible> {
    let decision: Decision = shared.faults.decide(is_object_get(&req));
    if !decision.latency.is_zero() {
        tokio::time::sleep(decision.latency).await;
    }
    if let Some(fault) = decision.fail {
        let is_head = req.method() == http::Method::HEAD;
        let body = if is_head {
            String::new()
        } else {
            format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{}</Code><Message>{}</Message></Error>",
                fault.code(),
                fault.message()
            )
        };
        let resp = http::Response::builder()
            .status(fault.status())
            .header("content-type", "application/xml")
            .header("content-length", body.len())
            .body(full(Bytes::from(body)))
            .expect("static response parts are valid");
        return Ok(resp);
    }
    let req = req.map(s3s::Body::from);
    match shared.service.call(req).await {
        Ok(resp) => {
            let ok = resp.status().is_success();
            let resp = resp.map(|b| b.map_err(BoxError::from).boxed_unsync());
            match decision.cut_get_after {
                Some(limit) if ok => Ok(resp.map(|b| {
                    CutBody {
                        inner: b,
                        remaining: limit,
                        done: false,
                    }
                    .boxed_unsync()
                })),
                _ => Ok(resp),
            }
        }
        Err(e) => {
            let msg = format!("internal server error: {e:?}");
            Ok(http::Response::builder()
                .status(500)
                .body(full(Bytes::from(msg)))
                .expect("static response parts are valid"))
        }
    }
}

fn full(b: Bytes) -> ResponseBody {
    http_body_util::Full::new(b)
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// Passes `remaining` bytes of `inner`, then fails, which makes hyper drop the connection
/// before the announced Content-Length is reached.
struct CutBody {
    inner: ResponseBody,
    remaining: u64,
    done: bool,
}

impl http_body::Body for CutBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        if self.done {
            return Poll::Ready(Some(Err("body cut off by fault injection".into())));
        }
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                Ok(mut data) => {
                    if (data.len() as u64) >= this.remaining {
                        data.truncate(this.remaining as usize);
                        this.remaining = 0;
                        this.done = true;
                    } else {
                        this.remaining -= data.len() as u64;
                    }
                    Poll::Ready(Some(Ok(Frame::data(data))))
                }
                Err(frame) => Poll::Ready(Some(Ok(frame))),
            },
            other => other,
        }
    }

    fn is_end_stream(&self) -> bool {
        false
    }
}
