//! Test hooks: fault injection, watch delivery delay/jitter, dropping watch
//! connections, forced history compaction, and the request log.

use crate::state::Shared;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One served request, as the log records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestRecord {
    /// Kubernetes verb: `get`, `list`, `watch`, `create`, `update`, `patch`,
    /// `delete`, `deletecollection`; or the lower-case HTTP method for
    /// non-resource paths (discovery, OpenAPI, `/version`).
    pub verb: String,
    pub method: String,
    pub path: String,
    pub query: String,
    /// API group (`""` for core).
    pub group: String,
    /// Plural resource, empty for non-resource paths.
    pub resource: String,
    /// `status` or empty.
    pub subresource: String,
    pub namespace: String,
    pub name: String,
    /// HTTP status code of the response (200 for watches that started).
    pub code: u16,
    /// `dryRun=All` was set.
    pub dry_run: bool,
}

impl RequestRecord {
    /// create, update, patch, delete or deletecollection, and not dry-run.
    pub fn is_write(&self) -> bool {
        !self.dry_run
            && matches!(
                self.verb.as_str(),
                "create" | "update" | "patch" | "delete" | "deletecollection"
            )
    }
}

#[derive(Debug, Clone)]
struct Fault {
    verb: String,
    resource: String,
    remaining: usize,
    code: u16,
}

#[derive(Default)]
pub(crate) struct HooksState {
    faults: Mutex<Vec<Fault>>,
    log: Mutex<Vec<RequestRecord>>,
    delay: Mutex<(Duration, Duration)>,
    pub(crate) open_watches: AtomicUsize,
}

impl HooksState {
    /// A fault to inject for this request, if one is armed.
    pub(crate) fn take_fault(&self, verb: &str, resource: &str, subresource: &str) -> Option<u16> {
        let mut faults = self.faults.lock().unwrap();
        let with_sub = format!("{resource}/{subresource}");
        let i = faults.iter().position(|f| {
            (f.verb == "*" || f.verb == verb)
                && (f.resource == "*"
                    || f.resource == resource
                    || (!subresource.is_empty() && f.resource == with_sub))
        })?;
        let code = faults[i].code;
        faults[i].remaining -= 1;
        if faults[i].remaining == 0 {
            faults.remove(i);
        }
        Some(code)
    }

    pub(crate) fn record(&self, r: RequestRecord) {
        self.log.lock().unwrap().push(r);
    }

    /// Delay before delivering one watch event.
    pub(crate) fn watch_delay(&self) -> Duration {
        let (fixed, jitter) = *self.delay.lock().unwrap();
        if jitter.is_zero() {
            return fixed;
        }
        use rand::Rng;
        let j = rand::rng().random_range(0..=jitter.as_micros() as u64);
        fixed + Duration::from_micros(j)
    }
}

/// The handle tests use to steer and observe a running server. Cheap to clone.
#[derive(Clone)]
pub struct TestHooks {
    pub(crate) shared: Arc<Shared>,
}

impl TestHooks {
    /// Answer the next `times` requests matching `verb` (`get`, `list`,
    /// `watch`, `create`, `update`, `patch`, `delete`, `deletecollection`,
    /// or `*`) on `resource` (plural, which also matches its subresources;
    /// `plural/status` for the status subresource only; or `*`) with `code` (409 → `Conflict`,
    /// 429 → `TooManyRequests`, 500 → `InternalError`, others → a generic
    /// Status with that code). Faults are checked in the order armed.
    pub fn fail_next(&self, verb: &str, resource: &str, times: usize, code: u16) {
        if times == 0 {
            return;
        }
        self.shared.hooks.faults.lock().unwrap().push(Fault {
            verb: verb.to_string(),
            resource: resource.to_string(),
            remaining: times,
            code,
        });
    }

    /// Remove all armed faults.
    pub fn clear_faults(&self) {
        self.shared.hooks.faults.lock().unwrap().clear();
    }

    /// Delay every watch event by `fixed` plus a uniform random `0..=jitter`.
    /// Events stay in order per watch.
    pub fn set_watch_delay(&self, fixed: Duration, jitter: Duration) {
        *self.shared.hooks.delay.lock().unwrap() = (fixed, jitter);
    }

    /// Abruptly drop every open watch connection (the client sees the
    /// connection reset, as when an apiserver restarts).
    pub fn drop_watches(&self) {
        self.shared.drop_watches();
    }

    /// Compact the change history: any watch or `continue` token from an RV
    /// older than the current one now gets 410 Expired (in-stream for watches).
    pub fn compact(&self) {
        self.shared.inner.lock().unwrap().store.compact();
    }

    /// The latest committed resourceVersion.
    pub fn current_resource_version(&self) -> u64 {
        self.shared.inner.lock().unwrap().store.rv()
    }

    /// Number of watch streams currently open.
    pub fn open_watches(&self) -> usize {
        self.shared.hooks.open_watches.load(Ordering::SeqCst)
    }

    /// A copy of the request log, oldest first.
    pub fn requests(&self) -> Vec<RequestRecord> {
        self.shared.hooks.log.lock().unwrap().clone()
    }

    /// Empty the request log.
    pub fn clear_requests(&self) {
        self.shared.hooks.log.lock().unwrap().clear();
    }

    /// Requests with this verb (or `*`) on this resource (or `*`).
    pub fn count(&self, verb: &str, resource: &str) -> usize {
        self.shared
            .hooks
            .log
            .lock()
            .unwrap()
            .iter()
            .filter(|r| {
                (verb == "*" || r.verb == verb) && (resource == "*" || r.resource == resource)
            })
            .count()
    }

    /// Non-dry-run writes (create/update/patch/delete/deletecollection) to
    /// `resource` (plural, or `*`), whatever their response code.
    pub fn writes_to(&self, resource: &str) -> usize {
        self.shared
            .hooks
            .log
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.is_write() && (resource == "*" || r.resource == resource))
            .count()
    }
}
