//! Logging: text for people, JSON for log pipelines. Filter with `RUST_LOG` (default `info`).
//!
//! Every reconcile runs inside a `reconcile` span carrying the controller, the object and a fresh
//! W3C-shaped `trace_id`, so that all lines one reconcile logs (probe, verification, status write,
//! event) can be grouped in a log pipeline. JSON lines carry the span's fields under `span`.
//!
//! Must not: log credential material; callers pass redacted errors only.

use std::fmt;
use std::future::Future;

use tracing::Instrument;
use tracing_subscriber::{fmt as tracing_fmt, EnvFilter};

/// Log output format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// Install the global subscriber. Logs go to stderr so that command output on stdout stays clean.
pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let result = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
    };
    // A second init (tests, embedded demo) keeps the first subscriber.
    let _ = result;
}

/// Logs panics through `tracing` (one redacted line, with the reconcile's span) instead of the
/// default hook's raw stderr text: a panic inside a reconcile is caught and becomes an error on
/// that object ([`guarded`]), and its message must not carry anything a credential could leak
/// through.
pub fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let location = info
            .location()
            .map(|l| format!("{}:{}", l.file(), l.line()))
            .unwrap_or_default();
        tracing::error!(
            panic = %crate::storage::error::redact(&panic_text(info.payload()), &[]),
            location,
            "panic"
        );
    }));
}

/// The text of a panic payload (`&str` or `String`; anything else is unnamed).
pub fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic without a message".to_owned()
    }
}

/// Runs `reconcile`; a panic inside it becomes the error `panicked(message)` (redacted) on that
/// object — logged, counted and retried by the controller's error policy — never a process exit.
pub async fn guarded<F, T, E>(reconcile: F, panicked: impl FnOnce(String) -> E) -> Result<T, E>
where
    F: Future<Output = Result<T, E>>,
{
    use futures::FutureExt;
    match std::panic::AssertUnwindSafe(reconcile).catch_unwind().await {
        Ok(result) => result,
        Err(payload) => Err(panicked(crate::storage::error::redact(
            &panic_text(payload.as_ref()),
            &[],
        ))),
    }
}

/// A 128-bit trace id, printed as 32 lowercase hex digits (the W3C trace-context form).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TraceId(u128);

impl TraceId {
    /// A random, non-zero trace id (zero is invalid in W3C trace context).
    pub fn random() -> TraceId {
        loop {
            let id: u128 = rand::random();
            if id != 0 {
                return TraceId(id);
            }
        }
    }
}

impl fmt::Display for TraceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:032x}", self.0)
    }
}

/// Runs one reconcile of `object` inside a `reconcile` span with a new trace id.
pub fn traced<F: Future>(
    controller: &'static str,
    object: impl fmt::Display,
    reconcile: F,
) -> tracing::instrument::Instrumented<F> {
    let span = tracing::info_span!(
        "reconcile",
        controller,
        object = %object,
        trace_id = %TraceId::random()
    );
    reconcile.instrument(span)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    #[tokio::test]
    async fn a_panicking_reconcile_is_an_error_with_a_redacted_message() {
        let result: Result<(), String> = guarded(
            async { panic!("boom at https://s3.example/b/k?X-Amz-Signature=abcdef0123") },
            |message| message,
        )
        .await;
        let message = result.expect_err("the panic is an error");
        assert!(
            message.starts_with("boom at https://s3.example/b/k?"),
            "{message}"
        );
        assert!(!message.contains("abcdef0123"), "{message}");
        let fine: Result<u8, String> = guarded(async { Ok(7) }, |m| m).await;
        assert_eq!(fine, Ok(7));
    }

    #[test]
    fn trace_ids_are_32_hex_digits_and_differ() {
        let (a, b) = (TraceId::random(), TraceId::random());
        assert_ne!(a, b);
        for id in [a, b] {
            let s = id.to_string();
            assert_eq!(s.len(), 32, "{s}");
            assert!(s
                .bytes()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
        }
        assert_eq!(TraceId(0xab).to_string(), format!("{}ab", "0".repeat(30)));
    }

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[tokio::test]
    async fn json_lines_logged_inside_a_reconcile_carry_its_trace_id() {
        let captured = Captured::default();
        let sink = captured.clone();
        let subscriber = tracing_fmt()
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .with_writer(move || sink.clone())
            .finish();
        let _guard = tracing::subscriber::set_default(subscriber);
        traced("storagebackend", "team-a/backend-a", async {
            tracing::info!("probe succeeded");
            tracing::info!("status written");
        })
        .await;

        let out = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<serde_json::Value> = out
            .lines()
            .map(|l| serde_json::from_str(l).expect("a JSON line"))
            .collect();
        assert_eq!(lines.len(), 2, "{out}");
        let trace_id = lines[0]["span"]["trace_id"]
            .as_str()
            .expect("trace_id")
            .to_owned();
        assert_eq!(trace_id.len(), 32);
        assert_eq!(lines[1]["span"]["trace_id"], trace_id.as_str());
        assert_eq!(lines[0]["span"]["controller"], "storagebackend");
        assert_eq!(lines[0]["span"]["object"], "team-a/backend-a");
        assert_eq!(lines[0]["message"], "probe succeeded");
    }
}
