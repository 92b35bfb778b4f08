//! What the demo prints at the end: `kubectl get`-style tables built from the API objects, and
//! the small formatting helpers (ages, byte sizes, durations) they need. Pure: no I/O.

use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::ResourceExt;

use castellan::api::condition;
use castellan::api::reasons::{backend_condition, mapping_condition};
use castellan::api::{ArtifactMapping, StorageBackend};

/// Columns of `kubectl get sbe`: the StorageBackend CRD's printer columns, in order.
pub const BACKEND_COLUMNS: [&str; 9] = [
    "Bucket",
    "Default",
    "Trust",
    "Ready",
    "Reason",
    "Serving",
    "Stranded",
    "Last Validated",
    "Age",
];

/// Columns of `kubectl get am`: the ArtifactMapping CRD's printer columns, in order.
pub const MAPPING_COLUMNS: [&str; 6] = ["Digest", "Declared", "Serving", "Ready", "Reason", "Age"];

/// A table as kubectl prints it: upper-case headers, left-aligned columns three spaces apart.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Table {
    pub headers: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with `NAME` followed by `columns` as headers.
    pub fn with_name_and(columns: &[&str]) -> Table {
        Table {
            headers: std::iter::once("NAME")
                .chain(columns.iter().copied())
                .map(str::to_uppercase)
                .collect(),
            rows: Vec::new(),
        }
    }

    /// Renders the table; every line ends with a newline and has no trailing spaces.
    pub fn render(&self) -> String {
        let mut widths: Vec<usize> = self.headers.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (i, cell) in row.iter().enumerate() {
                if i < widths.len() {
                    widths[i] = widths[i].max(cell.chars().count());
                }
            }
        }
        let mut out = String::new();
        for line in std::iter::once(&self.headers).chain(self.rows.iter()) {
            let mut text = String::new();
            for (i, cell) in line.iter().enumerate() {
                text.push_str(cell);
                if i + 1 < line.len() {
                    let pad = widths[i] - cell.chars().count() + 3;
                    text.extend(std::iter::repeat_n(' ', pad));
                }
            }
            out.push_str(text.trim_end());
            out.push('\n');
        }
        out
    }
}

/// A duration as kubectl prints ages (`k8s.io/apimachinery/pkg/util/duration.HumanDuration`):
/// `45s`, `119s`, `2m5s`, `12m`, `3h20m`, `2d4h`, ...
pub fn human_duration(d: Duration) -> String {
    let seconds = d.as_secs();
    if seconds < 120 {
        return format!("{seconds}s");
    }
    let minutes = seconds / 60;
    if minutes < 10 {
        return match seconds % 60 {
            0 => format!("{minutes}m"),
            s => format!("{minutes}m{s}s"),
        };
    }
    if minutes < 180 {
        return format!("{minutes}m");
    }
    let hours = minutes / 60;
    if hours < 8 {
        return match minutes % 60 {
            0 => format!("{hours}h"),
            m => format!("{hours}h{m}m"),
        };
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    let days = hours / 24;
    if hours < 24 * 8 {
        return match hours % 24 {
            0 => format!("{days}d"),
            h => format!("{days}d{h}h"),
        };
    }
    if days < 365 * 2 {
        return format!("{days}d");
    }
    let years = days / 365;
    if years < 8 {
        return match days % 365 {
            0 => format!("{years}y"),
            d => format!("{years}y{d}d"),
        };
    }
    format!("{years}y")
}

/// Seconds with one decimal for short spans (`0.4s`, `12.3s`), else [`human_duration`].
pub fn seconds(d: Duration) -> String {
    if d < Duration::from_secs(120) {
        format!("{:.1}s", d.as_secs_f64())
    } else {
        human_duration(d)
    }
}

/// Bytes in binary units with one decimal (`512 B`, `256.0 KiB`, `12.5 MiB`).
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut value = n as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// The age column of `time` seen at `now` (empty when absent, as kubectl prints it).
fn age(time: Option<&Time>, now: &Time) -> String {
    match time {
        Some(t) => {
            let elapsed = now.0.duration_since(t.0);
            human_duration(Duration::try_from(elapsed).unwrap_or_default())
        }
        None => String::new(),
    }
}

fn condition_cell(
    conditions: Option<&[k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition]>,
    type_: &str,
) -> (String, String) {
    conditions
        .and_then(|c| condition::find(c, type_))
        .map(|c| (c.status.clone(), c.reason.clone()))
        .unwrap_or_default()
}

/// `kubectl get sbe` of `backends`, as seen at `now`.
pub fn backends_table(backends: &[StorageBackend], now: &Time) -> Table {
    let mut table = Table::with_name_and(&BACKEND_COLUMNS);
    for b in backends {
        let status = b.status.as_ref();
        let (ready, reason) = condition_cell(
            status.map(|s| s.conditions.as_slice()),
            backend_condition::READY,
        );
        let counts = status.and_then(|s| s.mappings.as_ref());
        table.rows.push(vec![
            b.name_any(),
            b.spec.s3.bucket.clone(),
            b.spec.default.to_string(),
            b.spec.trust.as_str().to_string(),
            ready,
            reason,
            counts.map(|c| c.serving.to_string()).unwrap_or_default(),
            counts.map(|c| c.stranded.to_string()).unwrap_or_default(),
            age(status.and_then(|s| s.last_validation_time.as_ref()), now),
            age(b.metadata.creation_timestamp.as_ref(), now),
        ]);
    }
    table
}

/// `kubectl get am` of the first `limit` of `mappings`, as seen at `now`, with names cut to
/// `name_chars` characters (an ellipsis marks the cut); the second value is how many rows were
/// left out.
pub fn mappings_table(
    mappings: &[ArtifactMapping],
    limit: usize,
    name_chars: usize,
    now: &Time,
) -> (Table, usize) {
    let mut table = Table::with_name_and(&MAPPING_COLUMNS);
    for m in mappings.iter().take(limit) {
        let status = m.status.as_ref();
        let (ready, reason) = condition_cell(
            status.map(|s| s.conditions.as_slice()),
            mapping_condition::READY,
        );
        table.rows.push(vec![
            short_name(&m.name_any(), name_chars),
            status
                .and_then(|s| s.short_digest.clone())
                .unwrap_or_default(),
            m.spec.backend_ref.name.clone(),
            status.and_then(|s| s.backend.clone()).unwrap_or_default(),
            ready,
            reason,
            age(m.metadata.creation_timestamp.as_ref(), now),
        ]);
    }
    (table, mappings.len().saturating_sub(limit))
}

/// A shortened object name for narrow terminals: `sha256-0123456789ab…`.
pub fn short_name(name: &str, keep: usize) -> String {
    if name.chars().count() <= keep {
        return name.to_string();
    }
    let mut short: String = name.chars().take(keep).collect();
    short.push('…');
    short
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    use k8s_openapi::jiff::Timestamp;
    use serde_json::json;

    fn printer_columns(crd: &CustomResourceDefinition) -> Vec<String> {
        crd.spec.versions[0]
            .additional_printer_columns
            .as_ref()
            .unwrap()
            .iter()
            .map(|c| c.name.clone())
            .collect()
    }

    #[test]
    fn the_columns_are_the_crds_printer_columns() {
        let crds = castellan::api::crds();
        let by_kind = |kind: &str| {
            crds.iter()
                .find(|c| c.spec.names.kind == kind)
                .map(printer_columns)
                .unwrap()
        };
        assert_eq!(by_kind("StorageBackend"), BACKEND_COLUMNS);
        assert_eq!(by_kind("ArtifactMapping"), MAPPING_COLUMNS);
    }

    #[test]
    fn ages_read_like_kubectl() {
        let cases = [
            (0, "0s"),
            (59, "59s"),
            (119, "119s"),
            (120, "2m"),
            (125, "2m5s"),
            (599, "9m59s"),
            (600, "10m"),
            (179 * 60, "179m"),
            (3 * 3600, "3h"),
            (3 * 3600 + 20 * 60, "3h20m"),
            (8 * 3600, "8h"),
            (47 * 3600, "47h"),
            (52 * 3600, "2d4h"),
            (8 * 86400, "8d"),
            (800 * 86400, "2y70d"),
            (9 * 365 * 86400, "9y"),
        ];
        for (secs, want) in cases {
            assert_eq!(human_duration(Duration::from_secs(secs)), want, "{secs}s");
        }
    }

    #[test]
    fn short_spans_keep_a_decimal() {
        assert_eq!(seconds(Duration::from_millis(420)), "0.4s");
        assert_eq!(seconds(Duration::from_millis(12_345)), "12.3s");
        assert_eq!(seconds(Duration::from_secs(130)), "2m10s");
    }

    #[test]
    fn bytes_use_binary_units() {
        assert_eq!(bytes(0), "0 B");
        assert_eq!(bytes(1023), "1023 B");
        assert_eq!(bytes(256 * 1024), "256.0 KiB");
        assert_eq!(bytes(50 * 256 * 1024), "12.5 MiB");
        assert_eq!(bytes(3 * 1024 * 1024 * 1024), "3.0 GiB");
    }

    #[test]
    fn tables_align_columns_three_spaces_apart_without_trailing_spaces() {
        let table = Table {
            headers: vec!["NAME".into(), "READY".into(), "REASON".into()],
            rows: vec![
                vec![
                    "backend-a".into(),
                    "False".into(),
                    "InvalidAccessKeyId".into(),
                ],
                vec!["b".into(), "True".into(), String::new()],
            ],
        };
        assert_eq!(
            table.render(),
            "NAME        READY   REASON\n\
             backend-a   False   InvalidAccessKeyId\n\
             b           True\n"
        );
    }

    fn at(secs: i64) -> Time {
        Time(Timestamp::from_second(secs).unwrap())
    }

    #[test]
    fn a_backend_row_reads_its_spec_and_status() {
        let b: StorageBackend = serde_json::from_value(json!({
            "apiVersion": "castellan.io/v1alpha1", "kind": "StorageBackend",
            "metadata": {"name": "backend-a", "namespace": "demo", "creationTimestamp": "2026-01-01T00:00:00Z"},
            "spec": {"s3": {"bucket": "artifacts"}, "default": true},
            "status": {
                "conditions": [{"type": "Ready", "status": "False", "reason": "InvalidAccessKeyId", "message": "m", "lastTransitionTime": "2026-01-01T00:00:30Z"}],
                "lastValidationTime": "2026-01-01T00:00:55Z",
                "mappings": {"serving": 0, "stranded": 3}
            }
        }))
        .unwrap();
        let now = at(1_767_225_660); // 2026-01-01T00:01:00Z
        let table = backends_table(&[b], &now);
        assert_eq!(
            table.rows[0],
            [
                "backend-a",
                "artifacts",
                "true",
                "Trusted",
                "False",
                "InvalidAccessKeyId",
                "0",
                "3",
                "5s",
                "60s"
            ]
        );
    }

    #[test]
    fn the_mapping_table_stops_at_the_limit_and_counts_the_rest() {
        let m = |name: &str| -> ArtifactMapping {
            serde_json::from_value(json!({
                "apiVersion": "castellan.io/v1alpha1", "kind": "ArtifactMapping",
                "metadata": {"name": name, "namespace": "demo"},
                "spec": {"digest": format!("sha256:{}", "a".repeat(64)), "backendRef": {"name": "backend-a"}},
                "status": {"backend": "backend-b", "shortDigest": "sha256:aaaaaaaaaaaa",
                    "conditions": [{"type": "Ready", "status": "True", "reason": "DigestVerified", "message": "m", "lastTransitionTime": "2026-01-01T00:00:30Z"}]}
            }))
            .unwrap()
        };
        let all = [m("one"), m("two"), m("three")];
        let (table, more) = mappings_table(&all, 2, 3, &at(1_767_225_600));
        assert_eq!(more, 1);
        assert_eq!(table.rows.len(), 2);
        assert_eq!(table.rows[0][0], "one");
        assert_eq!(
            table.rows[1],
            [
                "two",
                "sha256:aaaaaaaaaaaa",
                "backend-a",
                "backend-b",
                "True",
                "DigestVerified",
                ""
            ]
        );
    }

    #[test]
    fn long_names_are_shortened_with_an_ellipsis() {
        assert_eq!(
            short_name("sha256-0123456789abcdef", 19),
            "sha256-0123456789ab…"
        );
        assert_eq!(short_name("backend-a", 19), "backend-a");
    }
}
