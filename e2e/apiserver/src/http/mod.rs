//! The HTTP/1.1 front end (hyper 1): accept loop, request decoding, routing
//! to the API handlers, response encoding and the request log.

pub mod negotiate;
pub mod query;

use crate::error::ApiError;
use crate::hooks::RequestRecord;
use crate::state::Shared;
use bytes::Bytes;
use http_body_util::{combinators::UnsyncBoxBody, BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use query::Query;
use serde_json::Value;
use std::convert::Infallible;
use std::sync::Arc;
use tokio::net::TcpListener;

pub type Body = UnsyncBoxBody<Bytes, std::io::Error>;

/// A response before encoding.
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Body,
}

pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into())
        .map_err(|never: Infallible| match never {})
        .boxed_unsync()
}

impl Reply {
    pub fn json(status: u16, v: &Value) -> Reply {
        Reply::json_ct(status, "application/json", v)
    }
    pub fn json_ct(status: u16, ct: &str, v: &Value) -> Reply {
        Reply {
            status,
            headers: vec![("Content-Type".into(), ct.into())],
            body: full(serde_json::to_vec(v).unwrap_or_default()),
        }
    }
    pub fn error(e: &ApiError) -> Reply {
        let mut r = Reply::json(e.code, &e.to_status());
        r.headers.extend(e.headers.iter().cloned());
        r
    }
    pub fn text(status: u16, s: &str) -> Reply {
        Reply {
            status,
            headers: vec![("Content-Type".into(), "text/plain; charset=utf-8".into())],
            body: full(s.to_string()),
        }
    }
    /// Add `Warning: 299 - "<text>"` headers.
    pub fn with_warnings(mut self, warnings: &[String]) -> Reply {
        for w in warnings {
            let escaped = w.replace('\\', "\\\\").replace('"', "\\\"");
            self.headers
                .push(("Warning".into(), format!("299 - \"{escaped}\"")));
        }
        self
    }
}

/// A decoded request.
pub struct Request {
    pub method: hyper::Method,
    pub path: String,
    pub query: Query,
    pub headers: hyper::HeaderMap,
    pub body: Bytes,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
    /// The media type of the body, without parameters.
    pub fn content_type(&self) -> String {
        self.header("content-type")
            .unwrap_or("")
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase()
    }
}

/// Serve until `shutdown` fires. Connection tasks are aborted on return.
pub async fn serve(
    listener: TcpListener,
    shared: Arc<Shared>,
    mut shutdown: tokio::sync::oneshot::Receiver<()>,
) {
    let mut conns = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let _ = stream.set_nodelay(true);
                let shared = shared.clone();
                conns.spawn(async move {
                    let svc = service_fn(move |req| {
                        let shared = shared.clone();
                        async move { Ok::<_, Infallible>(handle(shared, req).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .keep_alive(true)
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
    shared.shutdown_tx.send_replace(true);
    conns.abort_all();
}

async fn handle(shared: Arc<Shared>, req: hyper::Request<Incoming>) -> hyper::Response<Body> {
    let (parts, body) = req.into_parts();
    let body = match body.collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => Bytes::new(),
    };
    let request = Request {
        method: parts.method,
        path: parts.uri.path().to_string(),
        query: Query::parse(parts.uri.query()),
        headers: parts.headers,
        body,
    };
    let mut record = RequestRecord {
        verb: request.method.as_str().to_ascii_lowercase(),
        method: request.method.as_str().to_string(),
        path: request.path.clone(),
        query: request.query.raw().to_string(),
        group: String::new(),
        resource: String::new(),
        subresource: String::new(),
        namespace: String::new(),
        name: String::new(),
        code: 0,
        dry_run: request.query.get("dryRun") == Some("All"),
    };
    let reply = crate::api::dispatch(&shared, &request, &mut record).await;
    record.code = reply.status;
    tracing::debug!(verb = %record.verb, path = %record.path, code = record.code, "request");
    shared.hooks.record(record);
    let mut resp = hyper::Response::builder().status(reply.status);
    for (k, v) in &reply.headers {
        resp = resp.header(k.as_str(), v.as_str());
    }
    resp.body(reply.body)
        .unwrap_or_else(|_| hyper::Response::new(full("")))
}
