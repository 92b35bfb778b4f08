//! Castellan's Kubernetes API-server emulator.
//!
//! An in-memory, single-process stand-in for kube-apiserver that tells the
//! truth: it enforces the semantics kube-rs and kubectl depend on (see
//! `docs/apiserver-contract.md` and this crate's README for the known
//! differences). Start it from a test with [`ApiServer::start`]:
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! let server = castellan_apiserver::ApiServer::start().await?;
//! println!("{} {}", server.url(), server.kubeconfig_path().display());
//! server.hooks().fail_next("update", "widgets", 1, 409);
//! # Ok(()) }
//! ```

pub mod api;
pub mod builtins;
pub mod controllers;
pub mod crd;
pub mod discovery;
pub mod error;
pub mod events;
pub mod ext;
pub mod hooks;
pub mod http;
pub mod kubeconfig;
pub mod meta;
pub mod openapi;
pub mod openapi_schemas;
pub mod protobuf;
pub mod resources;
pub mod selectors;
pub mod state;
pub mod store;
pub mod table;
pub mod watch;

pub use hooks::{RequestRecord, TestHooks};
pub use state::Options;

use serde_json::json;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// How to start a server.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Listen address; loopback only. Default `127.0.0.1:0` (ephemeral port).
    pub listen: SocketAddr,
    /// Where to write the kubeconfig; default a fresh temporary directory
    /// removed when the server is dropped.
    pub kubeconfig: Option<PathBuf>,
    pub options: Options,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            kubeconfig: None,
            options: Options::default(),
        }
    }
}

/// A running emulator. Dropping it stops the server and closes its watches.
pub struct ApiServer {
    url: String,
    addr: SocketAddr,
    kubeconfig: PathBuf,
    tempdir: Option<PathBuf>,
    hooks: TestHooks,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl ApiServer {
    /// Start on `127.0.0.1:<ephemeral>` with a kubeconfig in a temp dir.
    pub async fn start() -> anyhow::Result<ApiServer> {
        Self::start_with(ServerConfig::default()).await
    }

    pub async fn start_with(config: ServerConfig) -> anyhow::Result<ApiServer> {
        anyhow::ensure!(
            config.listen.ip().is_loopback(),
            "the emulator listens on loopback only"
        );
        let listener = tokio::net::TcpListener::bind(config.listen).await?;
        let addr = listener.local_addr()?;
        let url = format!("http://{addr}");
        let shared = state::Shared::new(config.options.clone());
        bootstrap(&shared);
        let (tempdir, kubeconfig) = match config.kubeconfig {
            Some(p) => (None, p),
            None => {
                let dir = std::env::temp_dir().join(format!(
                    "castellan-apiserver-{}-{}",
                    std::process::id(),
                    addr.port()
                ));
                std::fs::create_dir_all(&dir)?;
                let p = dir.join("kubeconfig");
                (Some(dir), p)
            }
        };
        kubeconfig::write(&kubeconfig, &url)?;
        let (tx, rx) = tokio::sync::oneshot::channel();
        let task = tokio::spawn({
            let shared = shared.clone();
            async move {
                let ctl = tokio::spawn(controllers::run(shared.clone()));
                http::serve(listener, shared, rx).await;
                ctl.abort();
            }
        });
        Ok(ApiServer {
            url,
            addr,
            kubeconfig,
            tempdir,
            hooks: TestHooks { shared },
            shutdown: Some(tx),
            task: Some(task),
        })
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// A kubeconfig (context `castellan-emulator`, namespace `default`)
    /// pointing at this server; `kube::Config::from_custom_kubeconfig` and
    /// `KUBECONFIG=… kubectl` both accept it.
    pub fn kubeconfig_path(&self) -> &Path {
        &self.kubeconfig
    }

    /// Fault injection, watch steering and the request log.
    pub fn hooks(&self) -> &TestHooks {
        &self.hooks
    }

    /// Stop serving and wait for the accept loop to end.
    pub async fn shutdown(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for ApiServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        self.hooks.shared.shutdown_tx.send_replace(true);
        if let Some(dir) = self.tempdir.take() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// Pre-create the namespaces every cluster has.
fn bootstrap(shared: &Arc<state::Shared>) {
    let mut inner = shared.inner.lock().unwrap();
    let key = resources::StoreKey::new("", "namespaces");
    for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
        inner.store.put(
            &key,
            json!({
                "apiVersion": "v1",
                "kind": "Namespace",
                "metadata": {
                    "name": ns,
                    "uid": meta::new_uid(),
                    "creationTimestamp": meta::now_seconds(),
                    "labels": {"kubernetes.io/metadata.name": ns},
                },
                "spec": {"finalizers": ["kubernetes"]},
                "status": {"phase": "Active"},
            }),
        );
    }
}
