//! Watches: start-point rules by resourceVersion, synthetic ADDED events,
//! streaming lists (`sendInitialEvents` + the `k8s.io/initial-events-end`
//! bookmark), selector transitions, bookmarks, clean close at
//! `timeoutSeconds`, and the in-stream 410 for compacted history.
//!
//! Each watch is a task fed by the store's broadcast; it never touches the
//! store lock while delivering.

use crate::api::read::{not_acceptable, selected, selectors};
use crate::api::{partial, present, Target};
use crate::error::{ApiError, ApiResult, Cause, Subject};
use crate::http::negotiate::{negotiate, Repr};
use crate::http::{Reply, Request};
use crate::selectors::{FieldSelector, LabelSelector};
use crate::state::Shared;
use crate::store::{Committed, EventType};
use bytes::Bytes;
use futures::channel::mpsc;
use futures::SinkExt;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use serde_json::{json, Value};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::broadcast::error::RecvError;

fn watch_invalid(field: &str, reason: &str, msg: &str) -> ApiError {
    ApiError::invalid(
        &Subject {
            group: "meta.k8s.io".into(),
            resource: "listoptions".into(),
            kind: "ListOptions".into(),
            name: String::new(),
        },
        vec![Cause::new(reason, msg, field)],
    )
}

struct Filter {
    target: Target,
    ls: LabelSelector,
    fs: FieldSelector,
    repr: Repr,
}

impl Filter {
    fn matches(&self, obj: &Value) -> bool {
        selected(obj, self.target.namespace.as_deref(), &self.ls, &self.fs)
    }
    fn render(&self, stored: &Value) -> Value {
        let obj = present(&self.target.info, stored);
        match self.repr {
            Repr::PartialMeta => partial(&obj),
            Repr::Table => crate::table::table(&self.target.info, &[obj], &json!({})),
            _ => obj,
        }
    }
    /// The watch event (type, stored object) for a commit, if any
    /// (`convertToWatchEvent`).
    fn convert<'a>(&self, c: &'a Committed) -> Option<(&'static str, std::borrow::Cow<'a, Value>)> {
        if c.key != self.target.info.store_key() {
            return None;
        }
        let old_match = c.old.as_ref().is_some_and(|o| self.matches(o));
        match c.etype {
            EventType::Added => self
                .matches(&c.object)
                .then_some(("ADDED", std::borrow::Cow::Borrowed(&c.object))),
            EventType::Deleted => {
                old_match.then_some(("DELETED", std::borrow::Cow::Borrowed(&c.object)))
            }
            EventType::Modified => {
                let cur = self.matches(&c.object);
                match (old_match, cur) {
                    (true, true) => Some(("MODIFIED", std::borrow::Cow::Borrowed(&c.object))),
                    (false, true) => Some(("ADDED", std::borrow::Cow::Borrowed(&c.object))),
                    (true, false) => {
                        let mut prev = c.old.clone().unwrap();
                        crate::meta::metadata_mut(&mut prev)
                            .insert("resourceVersion".into(), json!(c.rv.to_string()));
                        Some(("DELETED", std::borrow::Cow::Owned(prev)))
                    }
                    (false, false) => None,
                }
            }
        }
    }
    fn bookmark(&self, rv: u64, initial_end: bool) -> Value {
        let mut md = json!({"resourceVersion": rv.to_string()});
        if initial_end {
            md["annotations"] = json!({"k8s.io/initial-events-end": "true"});
        }
        let (av, kind) = if self.repr == Repr::PartialMeta {
            (
                "meta.k8s.io/v1".to_string(),
                "PartialObjectMetadata".to_string(),
            )
        } else {
            (
                self.target.info.api_version(),
                self.target.info.kind.clone(),
            )
        };
        json!({"type": "BOOKMARK", "object": {"kind": kind, "apiVersion": av, "metadata": md}})
    }
}

fn line(v: &Value) -> Bytes {
    let mut b = serde_json::to_vec(v).unwrap_or_default();
    b.push(b'\n');
    Bytes::from(b)
}

enum Start {
    /// Synthetic ADDED for these (stored) objects, then changes after `rv`.
    Initial {
        objects: Vec<Value>,
        rv: u64,
        end_bookmark: bool,
    },
    /// Replay these history entries, then live changes.
    Exact {
        backlog: Vec<Arc<Committed>>,
        rv: u64,
    },
    /// The RV is compacted: one 410 ERROR event.
    Expired { rv: u64, floor: u64 },
}

pub fn serve(shared: &Arc<Shared>, req: &Request, t: &Target) -> ApiResult<Reply> {
    let repr = negotiate(req.header("accept")).ok_or_else(not_acceptable)?;
    if repr == Repr::PartialMetaList {
        return Err(not_acceptable());
    }
    let (ls, fs) = selectors(req, &t.info)?;
    let q = &req.query;
    let bookmarks = q.flag("allowWatchBookmarks");
    let rv_match = q.get("resourceVersionMatch").filter(|s| !s.is_empty());
    let send_initial = match q.get("sendInitialEvents") {
        None | Some("") => None,
        Some(_) => Some(q.flag("sendInitialEvents")),
    };
    if send_initial.is_some() {
        match rv_match {
            None => {
                return Err(watch_invalid(
                    "resourceVersionMatch",
                    "FieldValueRequired",
                    "Required value: sendInitialEvents requires setting resourceVersionMatch",
                ))
            }
            Some("NotOlderThan") => {}
            Some(m) => {
                return Err(watch_invalid(
                    "resourceVersionMatch",
                    "FieldValueNotSupported",
                    &format!("Unsupported value: \"{m}\": supported values: \"NotOlderThan\""),
                ))
            }
        }
        if !bookmarks {
            return Err(watch_invalid(
                "allowWatchBookmarks",
                "FieldValueForbidden",
                "Forbidden: sendInitialEvents requires setting allowWatchBookmarks to true",
            ));
        }
    } else if rv_match.is_some() {
        return Err(watch_invalid(
            "resourceVersionMatch",
            "FieldValueForbidden",
            "Forbidden: resourceVersionMatch is forbidden for watch unless sendInitialEvents is provided",
        ));
    }
    let rv_param = q.get("resourceVersion").filter(|s| !s.is_empty());
    let start_rv: Option<u64> = match rv_param {
        None | Some("0") => None,
        Some(s) => Some(
            s.parse()
                .map_err(|_| ApiError::bad_request(format!("invalid resource version: {s}")))?,
        ),
    };
    let timeout = match q.get("timeoutSeconds").filter(|s| !s.is_empty()) {
        Some(s) => Duration::from_secs(
            s.parse::<u64>()
                .map_err(|_| ApiError::bad_request(format!("invalid timeoutSeconds: {s}")))?,
        ),
        None => Duration::from_secs(1800),
    };
    let filter = Filter {
        target: t.clone(),
        ls,
        fs,
        repr,
    };

    let (rx, start) = {
        let inner = shared.inner.lock().unwrap();
        let rx = inner.store.subscribe();
        let current = inner.store.rv();
        let initial = match send_initial {
            Some(v) => v,
            None => start_rv.is_none(),
        };
        let start = if initial {
            let key = t.info.store_key();
            let objects: Vec<Value> = inner
                .store
                .iter(&key)
                .filter(|(_, o)| filter.matches(o))
                .map(|(_, o)| o.clone())
                .collect();
            Start::Initial {
                objects,
                rv: current,
                end_bookmark: send_initial == Some(true),
            }
        } else {
            let from = start_rv.unwrap_or(current);
            match inner.store.history_since(from) {
                Some(backlog) => Start::Exact { backlog, rv: from },
                None => Start::Expired {
                    rv: from,
                    floor: inner.store.floor(),
                },
            }
        };
        (rx, start)
    };

    let (tx, body_rx) = mpsc::channel::<Result<Frame<Bytes>, std::io::Error>>(16);
    let shared2 = shared.clone();
    tokio::spawn(async move {
        shared2.hooks.open_watches.fetch_add(1, Ordering::SeqCst);
        run(shared2.clone(), filter, rx, start, tx, bookmarks, timeout).await;
        shared2.hooks.open_watches.fetch_sub(1, Ordering::SeqCst);
    });
    let body = StreamBody::new(body_rx).boxed_unsync();
    Ok(Reply {
        status: 200,
        headers: vec![("Content-Type".into(), "application/json".into())],
        body,
    })
}

type Tx = mpsc::Sender<Result<Frame<Bytes>, std::io::Error>>;

async fn send(shared: &Shared, tx: &mut Tx, v: &Value) -> bool {
    let d = shared.hooks.watch_delay();
    if !d.is_zero() {
        tokio::time::sleep(d).await;
    }
    tx.send(Ok(Frame::data(line(v)))).await.is_ok()
}

async fn run(
    shared: Arc<Shared>,
    filter: Filter,
    mut rx: tokio::sync::broadcast::Receiver<Arc<Committed>>,
    start: Start,
    mut tx: Tx,
    bookmarks: bool,
    timeout: Duration,
) {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut drop_rx = shared.drop_tx.subscribe();
    let mut shutdown_rx = shared.shutdown_tx.subscribe();
    if *shutdown_rx.borrow() {
        return;
    }
    let mut last_rv;
    match start {
        Start::Expired { rv, floor } => {
            let status =
                ApiError::gone(format!("too old resource version: {rv} ({floor})")).to_status();
            let _ = send(
                &shared,
                &mut tx,
                &json!({"type": "ERROR", "object": status}),
            )
            .await;
            return;
        }
        Start::Initial {
            objects,
            rv,
            end_bookmark,
        } => {
            for o in &objects {
                if !send(
                    &shared,
                    &mut tx,
                    &json!({"type": "ADDED", "object": filter.render(o)}),
                )
                .await
                {
                    return;
                }
            }
            if end_bookmark && !send(&shared, &mut tx, &filter.bookmark(rv, true)).await {
                return;
            }
            last_rv = rv;
        }
        Start::Exact { backlog, rv } => {
            last_rv = rv;
            for c in backlog {
                last_rv = c.rv;
                if let Some((ty, obj)) = filter.convert(&c) {
                    if !send(
                        &shared,
                        &mut tx,
                        &json!({"type": ty, "object": filter.render(&obj)}),
                    )
                    .await
                    {
                        return;
                    }
                }
            }
        }
    }
    let interval = shared.options.bookmark_interval;
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
    loop {
        tokio::select! {
            _ = tokio::time::sleep_until(deadline) => {
                if bookmarks {
                    let _ = send(&shared, &mut tx, &filter.bookmark(last_rv, false)).await;
                }
                return;
            }
            _ = drop_rx.changed() => {
                let _ = tx
                    .send(Err(std::io::Error::new(std::io::ErrorKind::ConnectionAborted, "watch dropped by test hook")))
                    .await;
                return;
            }
            _ = shutdown_rx.changed() => return,
            _ = tick.tick(), if bookmarks => {
                if !send(&shared, &mut tx, &filter.bookmark(last_rv, false)).await {
                    return;
                }
            }
            msg = rx.recv() => match msg {
                Ok(c) => {
                    last_rv = c.rv;
                    if let Some((ty, obj)) = filter.convert(&c) {
                        if !send(&shared, &mut tx, &json!({"type": ty, "object": filter.render(&obj)})).await {
                            return;
                        }
                    }
                }
                // A watcher too slow for the broadcast buffer is closed, as
                // the apiserver closes slow watchers; the client re-watches.
                Err(RecvError::Lagged(_)) | Err(RecvError::Closed) => return,
            }
        }
    }
}
