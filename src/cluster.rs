//! Connecting to a cluster from a kubeconfig file, and installing the CRDs: what the CLI, the
//! demo, the benchmarks and the tests all do before they talk to an API server.

use std::path::{Path, PathBuf};
use std::time::Duration;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig, KubeconfigError};
use kube::{Client, ResourceExt};

use crate::operator;

/// Why no client could be built or the CRDs could not be installed.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("reading kubeconfig {}: {source}", path.display())]
    ReadKubeconfig {
        path: PathBuf,
        #[source]
        source: KubeconfigError,
    },
    #[error("kubeconfig {}: {source}", path.display())]
    LoadKubeconfig {
        path: PathBuf,
        #[source]
        source: KubeconfigError,
    },
    #[error("connecting to Kubernetes: {0}")]
    Client(#[source] kube::Error),
    #[error("creating CustomResourceDefinition {name}: {source}")]
    CreateCrd {
        name: String,
        #[source]
        source: kube::Error,
    },
    #[error(transparent)]
    Established(#[from] operator::Error),
}

/// A client for the current context of the kubeconfig file at `path`.
pub async fn client_from_kubeconfig(path: &Path) -> Result<Client, ClusterError> {
    let kubeconfig =
        Kubeconfig::read_from(path).map_err(|source| ClusterError::ReadKubeconfig {
            path: path.to_owned(),
            source,
        })?;
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .map_err(|source| ClusterError::LoadKubeconfig {
            path: path.to_owned(),
            source,
        })?;
    Client::try_from(config).map_err(ClusterError::Client)
}

/// Creates the CRDs generated from the Rust types (an existing one is left as it is) and waits
/// up to `timeout` until they are established.
pub async fn install_crds(client: &Client, timeout: Duration) -> Result<(), ClusterError> {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    for crd in crate::api::crds() {
        match crds.create(&PostParams::default(), &crd).await {
            Ok(_) => {}
            Err(kube::Error::Api(status)) if status.code == 409 => {}
            Err(source) => {
                return Err(ClusterError::CreateCrd {
                    name: crd.name_any(),
                    source,
                })
            }
        }
    }
    operator::wait_for_crds(client, timeout).await?;
    Ok(())
}
