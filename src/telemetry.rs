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
