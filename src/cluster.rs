//! Talking to the API server: connecting from a kubeconfig file, installing the CRDs and waiting
//! until they are established, the one way the operator writes a status (server-side apply on
//! `/status` under one field manager), and publishing events.
//!
//! Must not: decide anything; controllers and clients call these with what they decided.

use std::path::{Path, PathBuf};
use std::time::Duration;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig, KubeconfigError};
use kube::runtime::events::{Event, EventType, Recorder};
use kube::{Client, Resource, ResourceExt};
use serde::Serialize;
use tracing::{info, warn};

/// The field manager of every status write: one manager, always forced.
pub const FIELD_MANAGER: &str = "castellan";
/// The CRDs the operator serves.
pub const CRD_NAMES: [&str; 2] = [
    "storagebackends.castellan.io",
    "artifactmappings.castellan.io",
];
/// Longest event note: the events API rejects notes above 1 KiB.
const MAX_NOTE: usize = 1000;

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
    #[error(
        "CustomResourceDefinition {name} is not established after {waited:?}; apply crds/ first"
    )]
    CrdsNotEstablished { name: String, waited: Duration },
    #[error("waiting for CustomResourceDefinition {name}: {source}")]
    CrdWait {
        name: String,
        #[source]
        source: kube::runtime::wait::Error,
    },
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
    wait_for_crds(client, timeout).await
}

/// Blocks until both CRDs report `Established=True`, at most `timeout` for each.
pub async fn wait_for_crds(client: &Client, timeout: Duration) -> Result<(), ClusterError> {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    for name in CRD_NAMES {
        let established = kube::runtime::wait::await_condition(
            crds.clone(),
            name,
            kube::runtime::conditions::is_crd_established(),
        );
        match tokio::time::timeout(timeout, established).await {
            Ok(Ok(_)) => info!(crd = name, "CustomResourceDefinition established"),
            Ok(Err(source)) => {
                return Err(ClusterError::CrdWait {
                    name: name.to_string(),
                    source,
                })
            }
            Err(_) => {
                return Err(ClusterError::CrdsNotEstablished {
                    name: name.to_string(),
                    waited: timeout,
                })
            }
        }
    }
    Ok(())
}

/// Writes `status` as the whole status of `name` in `namespace`: server-side apply on `/status`
/// under [`FIELD_MANAGER`], forced (the operator is the status' only writer).
pub async fn apply_status<K, S>(
    client: &Client,
    namespace: &str,
    name: &str,
    status: &S,
) -> Result<(), kube::Error>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
    S: Serialize,
{
    let api: Api<K> = Api::namespaced(client.clone(), namespace);
    let body = serde_json::json!({
        "apiVersion": K::api_version(&()),
        "kind": K::kind(&()),
        "status": status,
    });
    api.patch_status(
        name,
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&body),
    )
    .await?;
    Ok(())
}

/// An event to publish about an object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventNote {
    pub type_: EventType,
    /// A CamelCase reason constant.
    pub reason: &'static str,
    /// What the operator did (`Validate`, `Verify`, `Reassign`, ...).
    pub action: &'static str,
    /// Human readable, redacted; cut to the events API's limit.
    pub note: String,
}

/// Publishes `notes` about `object`. Events are best effort: a failure is logged, never returned
/// (the status already says what happened).
pub async fn publish<K>(recorder: &Recorder, object: &K, notes: &[EventNote])
where
    K: Resource<DynamicType = ()>,
{
    if notes.is_empty() {
        return;
    }
    let reference = object.object_ref(&());
    for note in notes {
        let event = Event {
            type_: note.type_,
            reason: note.reason.to_string(),
            note: Some(truncate(&note.note, MAX_NOTE)),
            action: note.action.to_string(),
            secondary: None,
        };
        if let Err(err) = recorder.publish(&event, &reference).await {
            warn!(error = %err, reason = note.reason, "publishing an event failed");
        }
    }
}

fn truncate(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut cut = max;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}…", &text[..cut])
}

/// How long a reconcile waits for a cache it reads to complete its first list: after a start,
/// the caches fill in any order, and a reconcile that read a half-filled cache would act on
/// objects it cannot see (a mapping whose serving backend is not listed yet looks unserved).
pub const CACHE_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// Whether `store` has completed its first list within [`CACHE_WAIT`].
pub async fn cache_synced<K>(store: &kube::runtime::reflector::Store<K>) -> bool
where
    K: kube::Resource + Clone + 'static,
    K::DynamicType: Eq + std::hash::Hash + Clone,
{
    matches!(
        tokio::time::timeout(CACHE_WAIT, store.wait_until_ready()).await,
        Ok(Ok(()))
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_event_notes_are_cut_on_a_character_boundary() {
        assert_eq!(truncate("short", 10), "short");
        let cut = truncate(&"é".repeat(10), 5);
        assert_eq!(cut, "éé…");
    }
}
