//! What the demo knows about the cluster: StorageBackends and ArtifactMappings of its namespace
//! as two watches keep them (reflector caches), and the counts it shows, computed from the
//! objects' `status` as the operator wrote it.

use std::time::{Duration, Instant};

use futures::StreamExt;
use kube::api::Api;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{watcher, WatchStreamExt};
use kube::{Client, ResourceExt};
use tokio::task::JoinHandle;

use castellan::api::condition;
use castellan::api::reasons::{backend_condition, mapping_condition};
use castellan::api::{ArtifactMapping, StorageBackend};
use castellan::mapping::decide::MappingState;

/// How often waits look at the caches again.
pub const TICK: Duration = Duration::from_millis(50);

/// Watch-fed caches of the demo namespace.
pub struct Observer {
    backends: Store<StorageBackend>,
    mappings: Store<ArtifactMapping>,
    tasks: Vec<JoinHandle<()>>,
}

fn watch<K>(api: Api<K>) -> (Store<K>, JoinHandle<()>)
where
    K: kube::Resource<DynamicType = ()>
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned
        + Send
        + Sync
        + 'static,
{
    let (reader, writer) = reflector::store();
    let task = tokio::spawn(
        watcher(api, watcher::Config::default())
            .default_backoff()
            .reflect(writer)
            .for_each(|_| async {}),
    );
    (reader, task)
}

impl Observer {
    /// Starts both watches and waits for their first listing.
    pub async fn start(client: &Client, namespace: &str) -> anyhow::Result<Observer> {
        let (backends, b) = watch(Api::<StorageBackend>::namespaced(client.clone(), namespace));
        let (mappings, m) = watch(Api::<ArtifactMapping>::namespaced(
            client.clone(),
            namespace,
        ));
        let ready = async {
            backends.wait_until_ready().await?;
            mappings.wait_until_ready().await
        };
        tokio::time::timeout(Duration::from_secs(30), ready)
            .await
            .map_err(|_| anyhow::anyhow!("the watches did not list within 30s"))??;
        Ok(Observer {
            backends,
            mappings,
            tasks: vec![b, m],
        })
    }

    /// The StorageBackend named `name`, as last seen.
    pub fn backend(&self, name: &str) -> Option<StorageBackend> {
        self.backends
            .state()
            .into_iter()
            .find(|b| b.name_any() == name)
            .map(|b| (*b).clone())
    }

    /// Every StorageBackend, by name.
    pub fn backends(&self) -> Vec<StorageBackend> {
        let mut all: Vec<StorageBackend> = self
            .backends
            .state()
            .iter()
            .map(|b| (**b).clone())
            .collect();
        all.sort_by_key(|b| b.name_any());
        all
    }

    /// Every ArtifactMapping, by name.
    pub fn mappings(&self) -> Vec<ArtifactMapping> {
        let mut all: Vec<ArtifactMapping> = self
            .mappings
            .state()
            .iter()
            .map(|m| (**m).clone())
            .collect();
        all.sort_by_key(|m| m.name_any());
        all
    }

    /// How the mappings stand now; `target` is the backend they are expected to move to.
    pub fn counts(&self, target: &str) -> Counts {
        let unusable: Vec<String> = self
            .backends
            .state()
            .iter()
            .filter(|b| !BackendHealth::of(b).is_ready())
            .map(|b| b.name_any())
            .collect();
        Counts::of(
            self.mappings.state().iter().map(|m| m.as_ref()),
            target,
            &unusable,
        )
    }

    /// Polls `check` against the caches every [`TICK`] until it returns `Some`. Fails when
    /// `gone` says why waiting is pointless (the operator stopped), or after `timeout`, with
    /// `what` and the last state `describe` gives.
    pub async fn wait_for<T>(
        &self,
        what: &str,
        timeout: Duration,
        gone: impl Fn() -> Option<String>,
        mut check: impl FnMut(&Observer) -> Option<T>,
        describe: impl Fn(&Observer) -> String,
    ) -> anyhow::Result<T> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(value) = check(self) {
                return Ok(value);
            }
            if let Some(why) = gone() {
                anyhow::bail!("{what}: {why}");
            }
            if Instant::now() >= deadline {
                anyhow::bail!("{what}: not seen within {timeout:?}; {}", describe(self));
            }
            tokio::time::sleep(TICK).await;
        }
    }
}

impl Drop for Observer {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// A backend's `Ready` and `Stalled` conditions: (status, reason, message).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BackendHealth {
    pub ready: Option<(String, String, String)>,
    pub stalled: Option<(String, String)>,
}

impl BackendHealth {
    pub fn of(backend: &StorageBackend) -> BackendHealth {
        let conditions = backend
            .status
            .as_ref()
            .map(|s| s.conditions.as_slice())
            .unwrap_or_default();
        BackendHealth {
            ready: condition::find(conditions, backend_condition::READY)
                .map(|c| (c.status.clone(), c.reason.clone(), c.message.clone())),
            stalled: condition::find(conditions, backend_condition::STALLED)
                .map(|c| (c.status.clone(), c.reason.clone())),
        }
    }

    /// `Ready=True` with this reason.
    pub fn is_ready_with(&self, reason: &str) -> bool {
        matches!(&self.ready, Some((s, r, _)) if s == "True" && r == reason)
    }

    /// `Ready=True`, whatever the reason.
    pub fn is_ready(&self) -> bool {
        matches!(&self.ready, Some((s, _, _)) if s == "True")
    }

    /// `Ready=False`.
    pub fn is_not_ready(&self) -> bool {
        matches!(&self.ready, Some((s, _, _)) if s == "False")
    }
}

/// Mappings by state, counted from their status.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub total: usize,
    /// No status yet.
    pub pending: usize,
    /// Ready, served by their declared backend (which is Ready).
    pub declared: usize,
    /// Ready, served by the target backend after their digest re-verified there.
    pub reassigned: usize,
    /// Ready, served by another backend than the declared one or the target.
    pub elsewhere: usize,
    /// Stranded: `Ready=False`, or still pointing at a backend that is no longer Ready (the
    /// operator has not written their new status yet).
    pub stranded: usize,
    /// Bytes (declared sizes) of the mappings counted in `reassigned`.
    pub reassigned_bytes: u64,
}

impl Counts {
    /// Counts `mappings`; `target` is the backend mappings are expected to move to, `unusable`
    /// the backends that are not Ready.
    pub fn of<'a>(
        mappings: impl Iterator<Item = &'a ArtifactMapping>,
        target: &str,
        unusable: &[String],
    ) -> Counts {
        let mut counts = Counts::default();
        for m in mappings {
            counts.total += 1;
            let serving = m.status.as_ref().and_then(|s| s.backend.as_deref());
            if serving.is_some_and(|b| unusable.iter().any(|u| u == b)) {
                counts.stranded += 1;
                continue;
            }
            match MappingState::of(m) {
                MappingState::Pending => counts.pending += 1,
                MappingState::Declared => counts.declared += 1,
                MappingState::Stranded => counts.stranded += 1,
                MappingState::Reassigned => {
                    let status = m.status.as_ref();
                    let verified = status.is_some_and(|s| {
                        condition::is_true(&s.conditions, mapping_condition::VERIFIED)
                    });
                    if verified && status.and_then(|s| s.backend.as_deref()) == Some(target) {
                        counts.reassigned += 1;
                        counts.reassigned_bytes += m.spec.size.unwrap_or(0).max(0) as u64;
                    } else {
                        counts.elsewhere += 1;
                    }
                }
            }
        }
        counts
    }

    /// All `expected` mappings are served by their declared backend.
    pub fn all_declared(&self, expected: usize) -> bool {
        self.total == expected && self.declared == expected
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn mapping(size: i64, status: serde_json::Value) -> ArtifactMapping {
        serde_json::from_value(json!({
            "apiVersion": "castellan.io/v1alpha1", "kind": "ArtifactMapping",
            "metadata": {"name": "m", "namespace": "demo"},
            "spec": {"digest": format!("sha256:{}", "a".repeat(64)), "size": size, "backendRef": {"name": "backend-a"}},
            "status": status,
        }))
        .unwrap()
    }

    fn cond(type_: &str, status: &str, reason: &str) -> serde_json::Value {
        json!({"type": type_, "status": status, "reason": reason, "message": "", "lastTransitionTime": "2026-01-01T00:00:00Z"})
    }

    #[test]
    fn mappings_are_counted_by_the_state_their_status_describes() {
        let all = [
            mapping(10, json!(null)),
            mapping(
                10,
                json!({"backend": "backend-a", "conditions": [cond("Ready", "True", "Declared")]}),
            ),
            mapping(
                10,
                json!({"conditions": [cond("Ready", "False", "BackendInvalid"), cond("Stranded", "True", "BackendInvalid")]}),
            ),
            mapping(
                7,
                json!({"backend": "backend-b", "conditions": [cond("Ready", "True", "DigestVerified"), cond("Verified", "True", "DigestVerified")]}),
            ),
            mapping(
                5,
                json!({"backend": "backend-c", "conditions": [cond("Ready", "True", "DigestVerified"), cond("Verified", "True", "DigestVerified")]}),
            ),
        ];
        let counts = Counts::of(all.iter(), "backend-b", &[]);
        assert_eq!(
            counts,
            Counts {
                total: 5,
                pending: 1,
                declared: 1,
                reassigned: 1,
                elsewhere: 1,
                stranded: 1,
                reassigned_bytes: 7,
            }
        );
        assert!(!counts.all_declared(5));
        // A mapping whose serving backend went invalid is stranded before its status says so.
        let invalid = Counts::of(all.iter(), "backend-b", &["backend-a".to_string()]);
        assert_eq!((invalid.declared, invalid.stranded), (0, 2));
    }
}
