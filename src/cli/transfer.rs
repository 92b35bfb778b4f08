//! What `castellan put` and `castellan get` share: the cluster flags (namespace, kubeconfig),
//! connecting, progress bars on a terminal, and human-readable sizes and rates.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use kube::Client;

use castellan::storage::verify::mib_per_sec;
use castellan::transfer::{Phase, Progress};

/// Where the artifacts' mappings and backends live.
#[derive(Debug, Clone, clap::Args)]
pub struct ClusterArgs {
    /// Namespace of the backends and mappings (default: the kubeconfig context's namespace,
    /// else `default`).
    #[arg(long, short = 'n')]
    pub namespace: Option<String>,
    /// Kubeconfig file to use instead of $KUBECONFIG / ~/.kube/config (or the in-cluster
    /// service account).
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    /// Sign requests to a backend that names no credentialsSecretRef with your own AWS
    /// credentials (environment, profile, instance role). Without it such a backend is
    /// refused: your credentials are not handed to a backend you did not choose.
    #[arg(long)]
    pub use_local_credentials: bool,
}

impl ClusterArgs {
    /// What the flags say about the ambient credentials.
    pub fn ambient(&self) -> castellan::resolve::AmbientCredentials {
        if self.use_local_credentials {
            castellan::resolve::AmbientCredentials::Everywhere
        } else {
            castellan::resolve::AmbientCredentials::Nowhere
        }
    }
}

/// A client and the namespace to work in.
pub async fn connect(args: &ClusterArgs) -> Result<(Client, String), String> {
    let client = match &args.kubeconfig {
        None => Client::try_default()
            .await
            .map_err(|e| format!("connecting to Kubernetes: {e}"))?,
        Some(path) => castellan::cluster::client_from_kubeconfig(path)
            .await
            .map_err(|e| e.to_string())?,
    };
    let namespace = args
        .namespace
        .clone()
        .unwrap_or_else(|| client.default_namespace().to_owned());
    Ok((client, namespace))
}

/// Progress bars on stderr, one per phase; `None` when stderr is not a terminal (piped, CI).
pub fn bars_if_terminal() -> Option<Arc<dyn Progress>> {
    std::io::stderr()
        .is_terminal()
        .then(|| Arc::new(Bars::default()) as Arc<dyn Progress>)
}

/// An indicatif bar for the current phase.
#[derive(Default)]
pub struct Bars {
    current: Mutex<Option<ProgressBar>>,
}

impl Bars {
    fn slot(&self) -> std::sync::MutexGuard<'_, Option<ProgressBar>> {
        self.current.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// What a bar says it is doing.
pub fn phase_label(phase: &Phase) -> String {
    match phase {
        Phase::Hashing => "hashing".to_owned(),
        Phase::Uploading { backend } => format!("uploading to {backend}"),
        Phase::Downloading {
            backend,
            attempt: 1,
        } => format!("downloading from {backend}"),
        Phase::Downloading { backend, attempt } => {
            format!("downloading from {backend} (attempt {attempt})")
        }
    }
}

impl Progress for Bars {
    fn begin(&self, phase: &Phase, total: Option<u64>) {
        let bar = match total {
            Some(n) => ProgressBar::new(n).with_style(
                ProgressStyle::with_template(
                    "{msg:32} [{bar:30}] {binary_bytes}/{binary_total_bytes} {binary_bytes_per_sec} {eta}",
                )
                .expect("valid template")
                .progress_chars("=> "),
            ),
            None => ProgressBar::new_spinner().with_style(
                ProgressStyle::with_template("{spinner} {msg:32} {binary_bytes} {binary_bytes_per_sec}")
                    .expect("valid template"),
            ),
        };
        bar.set_message(phase_label(phase));
        if let Some(old) = self.slot().replace(bar) {
            old.finish_and_clear();
        }
    }

    fn advance(&self, bytes: u64) {
        if let Some(bar) = self.slot().as_ref() {
            bar.inc(bytes);
        }
    }

    fn end(&self) {
        if let Some(bar) = self.slot().take() {
            bar.finish_and_clear();
        }
    }
}

/// `512 B`, `12.0 KiB`, `3.5 MiB`, `1.2 GiB`.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// `12.0 MiB in 0.42 s (28.6 MiB/s)`.
pub fn rate(bytes: u64, elapsed: Duration) -> String {
    format!(
        "{} in {:.2} s ({:.1} MiB/s)",
        human_bytes(bytes),
        elapsed.as_secs_f64(),
        mib_per_sec(bytes, elapsed)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_in_binary_units() {
        let cases = [
            ("bytes stay bytes", 512, "512 B"),
            ("one KiB", 1024, "1.0 KiB"),
            ("twelve MiB", 12 << 20, "12.0 MiB"),
            ("one and a half GiB", 3 << 29, "1.5 GiB"),
        ];
        for (name, bytes, want) in cases {
            assert_eq!(human_bytes(bytes), want, "{name}");
        }
        assert_eq!(
            rate(10 << 20, Duration::from_millis(500)),
            "10.0 MiB in 0.50 s (20.0 MiB/s)"
        );
    }

    #[test]
    fn bars_say_what_they_do() {
        let cases = [
            ("hashing", Phase::Hashing, "hashing"),
            (
                "an upload names the backend",
                Phase::Uploading {
                    backend: "a".into(),
                },
                "uploading to a",
            ),
            (
                "a first download names the backend",
                Phase::Downloading {
                    backend: "b".into(),
                    attempt: 1,
                },
                "downloading from b",
            ),
            (
                "a later download counts the attempt",
                Phase::Downloading {
                    backend: "c".into(),
                    attempt: 3,
                },
                "downloading from c (attempt 3)",
            ),
        ];
        for (name, phase, want) in cases {
            assert_eq!(phase_label(&phase), want, "{name}");
        }
    }
}
