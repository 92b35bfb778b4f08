//! The demo's world: the emulated Kubernetes API server, an S3 server on loopback, and the
//! operator running in-process against them. Started together, stopped together.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use castellan_apiserver::{ApiServer, ServerConfig};
use castellan_s3server::{S3Server, ServerOptions};
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, PostParams};
use kube::Client;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

use castellan::cluster;
use castellan::operator::Settings;
use castellan::operator::{self, RunConfig};

/// Where the demo keeps its files: a temporary directory removed at the end, or one the user
/// named with `--data-dir` (kept).
enum Dir {
    Temporary(tempfile::TempDir),
    Kept(PathBuf),
}

impl Dir {
    fn path(&self) -> &Path {
        match self {
            Dir::Temporary(t) => t.path(),
            Dir::Kept(p) => p,
        }
    }
}

/// What to start.
pub struct EnvOptions {
    /// The API server's listen address (loopback).
    pub listen: SocketAddr,
    /// Keep files here instead of a temporary directory.
    pub data_dir: Option<PathBuf>,
    /// Operator logs to stderr instead of `<dir>/operator.log`.
    pub verbose: bool,
    /// The namespace the operator watches.
    pub namespace: String,
    /// Buckets the S3 server starts with.
    pub buckets: Vec<String>,
}

/// The running servers and operator.
pub struct Environment {
    pub api: ApiServer,
    pub s3: S3Server,
    pub client: Client,
    /// The operator's `/metrics` endpoint.
    pub metrics_addr: SocketAddr,
    /// Where the operator logs (`None` with `--verbose`: stderr).
    pub log_path: Option<PathBuf>,
    dir: Dir,
    operator: Option<(JoinHandle<()>, oneshot::Sender<()>)>,
    /// `Some` once the operator returned: `Ok` after a requested stop, else its error.
    operator_exit: watch::Receiver<Option<Result<(), String>>>,
}

impl Environment {
    /// Starts the API server and the S3 server, applies the CRDs (waiting until they are
    /// established), creates the namespace and starts the operator.
    pub async fn start(options: &EnvOptions) -> anyhow::Result<Environment> {
        let dir = match &options.data_dir {
            Some(p) => {
                std::fs::create_dir_all(p)
                    .with_context(|| format!("creating the data directory {}", p.display()))?;
                Dir::Kept(p.clone())
            }
            None => Dir::Temporary(
                tempfile::Builder::new()
                    .prefix("castellan-demo-")
                    .tempdir()
                    .context("creating a temporary directory")?,
            ),
        };
        let log_path = (!options.verbose).then(|| dir.path().join("operator.log"));
        init_logging(log_path.as_deref())?;

        let api = ApiServer::start_with(ServerConfig {
            listen: options.listen,
            kubeconfig: Some(dir.path().join("kubeconfig")),
            ..ServerConfig::default()
        })
        .await
        .context("starting the Kubernetes API server emulator")?;
        let s3 = S3Server::start(ServerOptions {
            data_dir: Some(dir.path().join("s3")),
            buckets: options.buckets.clone(),
            ..ServerOptions::default()
        })
        .await
        .context("starting the S3 server")?;
        let client = cluster::client_from_kubeconfig(api.kubeconfig_path()).await?;
        cluster::install_crds(&client, Duration::from_secs(30)).await?;
        let namespaces: Api<Namespace> = Api::all(client.clone());
        let mut namespace = Namespace::default();
        namespace.metadata.name = Some(options.namespace.clone());
        namespaces
            .create(&PostParams::default(), &namespace)
            .await
            .with_context(|| format!("creating namespace {}", options.namespace))?;

        let metrics_addr = free_loopback_port()?;
        let config = RunConfig {
            namespace: Some(options.namespace.clone()),
            metrics_addr: Some(metrics_addr),
            health_addr: None,
            leader_election: None,
            instance: "castellan-demo".to_string(),
            crd_wait: Duration::from_secs(30),
            settings: Settings {
                max_backoff: Duration::from_secs(5),
                // The story validates every second or two so that it shows quickly.
                min_validation_interval: Duration::from_secs(1),
                // As `castellan run --allow-endpoint-network 127.0.0.0/8,::1/128`: the demo's
                // S3 server listens on loopback, which the endpoint policy refuses otherwise.
                endpoint_policy: Some(std::sync::Arc::new(
                    castellan::storage::network::EndpointPolicy::allowing(vec![
                        "127.0.0.0/8".parse().expect("a network"),
                        "::1/128".parse().expect("a network"),
                    ]),
                )),
                ..Settings::default()
            },
        };
        let (stop, stopped) = oneshot::channel::<()>();
        let (exit_tx, operator_exit) = watch::channel(None);
        let operator_client = client.clone();
        let task = tokio::spawn(async move {
            let result = operator::run(operator_client, config, async move {
                let _ = stopped.await;
            })
            .await;
            let _ = exit_tx.send(Some(result.map_err(|e| e.to_string())));
        });
        Ok(Environment {
            api,
            s3,
            client,
            metrics_addr,
            log_path,
            dir,
            operator: Some((task, stop)),
            operator_exit,
        })
    }

    /// The demo's directory (kubeconfig, S3 data, operator log).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Whether the directory is temporary (removed at shutdown) rather than `--data-dir`.
    pub fn dir_is_temporary(&self) -> bool {
        matches!(self.dir, Dir::Temporary(_))
    }

    /// Why the operator is no longer running, if it is not (before shutdown it only stops on
    /// an error, e.g. its `/metrics` port was taken).
    pub fn operator_stopped(&self) -> Option<String> {
        match &*self.operator_exit.borrow() {
            None => None,
            Some(Ok(())) => Some("the operator stopped".to_string()),
            Some(Err(err)) => Some(format!("the operator stopped: {err}")),
        }
    }

    /// Stops the operator gracefully, then the servers; removes a temporary directory.
    pub async fn shutdown(mut self) -> anyhow::Result<()> {
        let mut result = Ok(());
        if let Some((mut task, stop)) = self.operator.take() {
            let _ = stop.send(());
            if tokio::time::timeout(Duration::from_secs(10), &mut task)
                .await
                .is_err()
            {
                task.abort();
                result = Err(anyhow::anyhow!("the operator did not stop within 10s"));
            }
            if let Some(Err(err)) = &*self.operator_exit.borrow() {
                result = Err(anyhow::anyhow!("the operator: {err}"));
            }
        }
        self.s3.stop().await;
        self.api.shutdown().await;
        if let Dir::Temporary(dir) = self.dir {
            dir.close()
                .context("removing the demo's temporary directory")?;
        }
        result
    }
}

/// A loopback address with a port that was free a moment ago (the operator's metrics endpoint
/// binds it right away).
fn free_loopback_port() -> anyhow::Result<SocketAddr> {
    let listener = std::net::TcpListener::bind(("127.0.0.1", 0))
        .context("finding a free port for the operator's /metrics")?;
    Ok(listener.local_addr()?)
}

/// Sends every log line (operator, servers, clients) to `path`, or to stderr when `None`.
/// A subscriber installed earlier (tests, a second demo in one process) is kept.
fn init_logging(path: Option<&Path>) -> anyhow::Result<()> {
    use tracing_subscriber::{fmt, EnvFilter};
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let result = match path {
        Some(path) => {
            let file = std::fs::File::create(path)
                .with_context(|| format!("creating the operator log {}", path.display()))?;
            fmt()
                .with_env_filter(filter)
                .with_ansi(false)
                .with_writer(std::sync::Mutex::new(file))
                .try_init()
        }
        None => fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .try_init(),
    };
    let _ = result;
    Ok(())
}
