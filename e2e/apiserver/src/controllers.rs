//! The controllers a real control plane runs that tests can observe:
//! namespace deletion (empties the namespace, then removes it), CRD deletion
//! (deletes the custom resources, then the CRD), and garbage collection of
//! `ownerReferences` (Background; `orphan` and `foregroundDeletion`
//! finalizers). They run as one background task polling the store.

use crate::api::delete::controller_delete;
use crate::api::write::after_commit;
use crate::api::Target;
use crate::meta;
use crate::resources::{ResourceInfo, StoreKey};
use crate::state::{Inner, Shared};
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

fn info_for_key(inner: &Inner, key: &StoreKey) -> Option<ResourceInfo> {
    inner
        .registry
        .all()
        .find(|r| &r.store_key() == key && r.group != "events.k8s.io")
        .cloned()
}

fn target(info: &ResourceInfo, ns: &str, name: &str) -> Target {
    Target {
        info: info.clone(),
        namespace: if info.namespaced {
            Some(ns.to_string())
        } else {
            None
        },
        name: Some(name.to_string()),
        subresource: None,
    }
}

/// Store-level update on behalf of a controller: `f` edits the stored
/// object; an object left deleting with no finalizers is removed.
fn controller_edit(
    inner: &mut Inner,
    key: &StoreKey,
    ns: &str,
    name: &str,
    f: impl FnOnce(&mut Value),
) {
    let Some(mut obj) = inner.store.get(key, ns, name).cloned() else {
        return;
    };
    let before = obj.clone();
    f(&mut obj);
    meta::omit_empty(&mut obj);
    if obj == before {
        return;
    }
    let spec_fins = key.resource == "namespaces"
        && key.group.is_empty()
        && obj["spec"]["finalizers"]
            .as_array()
            .is_some_and(|a| !a.is_empty());
    if meta::is_deleting(&obj) && meta::finalizers(&obj).is_empty() && !spec_fins {
        inner.store.delete(key, ns, name);
    } else {
        inner.store.put(key, obj);
    }
    after_commit(inner, key);
}

fn remove_finalizer(obj: &mut Value, f: &str) {
    let fins: Vec<String> = meta::finalizers(obj)
        .into_iter()
        .filter(|x| x != f)
        .collect();
    meta::metadata_mut(obj).insert("finalizers".into(), json!(fins));
}

/// One reconcile pass over everything. Returns whether anything changed.
pub fn reconcile(inner: &mut Inner) -> bool {
    let start = inner.store.rv();
    namespaces(inner);
    crds(inner);
    garbage_collect(inner);
    inner.store.rv() != start
}

fn namespaces(inner: &mut Inner) {
    let ns_key = StoreKey::new("", "namespaces");
    let terminating: Vec<String> = inner
        .store
        .iter(&ns_key)
        .filter(|(_, o)| meta::is_deleting(o))
        .map(|(k, _)| k.1.clone())
        .collect();
    for ns in terminating {
        let mut remaining = 0;
        for key in inner.store.keys() {
            let Some(info) = info_for_key(inner, &key) else {
                continue;
            };
            if !info.namespaced {
                continue;
            }
            let names: Vec<String> = inner
                .store
                .iter(&key)
                .filter(|(k, _)| k.0 == ns)
                .map(|(k, _)| k.1.clone())
                .collect();
            for name in names {
                let still = inner
                    .store
                    .get(&key, &ns, &name)
                    .is_some_and(meta::is_deleting);
                if !still {
                    controller_delete(inner, &target(&info, &ns, &name), &ns, &name);
                }
                if inner.store.get(&key, &ns, &name).is_some() {
                    remaining += 1;
                }
            }
        }
        if remaining == 0 {
            controller_edit(inner, &ns_key, "", &ns, |o| {
                o["spec"]["finalizers"] = json!([]);
                if o["spec"].as_object().is_some_and(|s| s.len() == 1) {
                    o["spec"] = json!({});
                }
            });
        }
    }
}

fn crds(inner: &mut Inner) {
    let crd_key = StoreKey::new("apiextensions.k8s.io", "customresourcedefinitions");
    let deleting: Vec<(String, String, String)> = inner
        .store
        .iter(&crd_key)
        .filter(|(_, o)| meta::is_deleting(o))
        .filter(|(_, o)| {
            meta::finalizers(o)
                .iter()
                .any(|f| f == crate::crd::CLEANUP_FINALIZER)
        })
        .map(|(k, o)| {
            (
                k.1.clone(),
                o["spec"]["group"].as_str().unwrap_or("").to_string(),
                o["spec"]["names"]["plural"]
                    .as_str()
                    .unwrap_or("")
                    .to_string(),
            )
        })
        .collect();
    for (crd, group, plural) in deleting {
        let key = StoreKey::new(&group, &plural);
        let Some(info) = info_for_key(inner, &key) else {
            controller_edit(inner, &crd_key, "", &crd, |o| {
                remove_finalizer(o, crate::crd::CLEANUP_FINALIZER)
            });
            continue;
        };
        let objs: Vec<(String, String)> = inner.store.iter(&key).map(|(k, _)| k.clone()).collect();
        for (ns, name) in &objs {
            if !inner
                .store
                .get(&key, ns, name)
                .is_some_and(meta::is_deleting)
            {
                controller_delete(inner, &target(&info, ns, name), ns, name);
            }
        }
        if inner.store.count(&key) == 0 {
            controller_edit(inner, &crd_key, "", &crd, |o| {
                remove_finalizer(o, crate::crd::CLEANUP_FINALIZER)
            });
        }
    }
}

fn garbage_collect(inner: &mut Inner) {
    // uid → (key, ns, name, deleting with which GC finalizers)
    let mut uids: HashMap<String, (StoreKey, String, String, bool, bool)> = HashMap::new();
    let mut dependents: Vec<(StoreKey, String, String, Vec<String>)> = Vec::new();
    for key in inner.store.keys() {
        for ((ns, name), o) in inner.store.iter(&key) {
            if let Some(uid) = meta::meta_str(o, "uid") {
                let fins = meta::finalizers(o);
                let deleting = meta::is_deleting(o);
                uids.insert(
                    uid.to_string(),
                    (
                        key.clone(),
                        ns.clone(),
                        name.clone(),
                        deleting && fins.iter().any(|f| f == "orphan"),
                        deleting && fins.iter().any(|f| f == "foregroundDeletion"),
                    ),
                );
            }
            if let Some(refs) = o["metadata"]["ownerReferences"].as_array() {
                let owners: Vec<String> = refs
                    .iter()
                    .filter_map(|r| r["uid"].as_str().map(str::to_string))
                    .collect();
                if !owners.is_empty() {
                    dependents.push((key.clone(), ns.clone(), name.clone(), owners));
                }
            }
        }
    }
    let mut has_dependents: HashSet<String> = HashSet::new();
    for (key, ns, name, owners) in &dependents {
        let mut orphan_from = Vec::new();
        let mut delete = owners.iter().all(|u| !uids.contains_key(u));
        for u in owners {
            if let Some((_, _, _, orphaning, foreground)) = uids.get(u) {
                if *orphaning {
                    orphan_from.push(u.clone());
                } else {
                    has_dependents.insert(u.clone());
                }
                if *foreground {
                    delete = true;
                }
            }
        }
        if !orphan_from.is_empty() {
            controller_edit(inner, key, ns, name, |o| {
                if let Some(refs) = o["metadata"]["ownerReferences"].as_array() {
                    let kept: Vec<Value> = refs
                        .iter()
                        .filter(|r| !orphan_from.iter().any(|u| r["uid"] == json!(u)))
                        .cloned()
                        .collect();
                    o["metadata"]["ownerReferences"] = json!(kept);
                }
            });
            continue;
        }
        if delete
            && !inner
                .store
                .get(key, ns, name)
                .is_some_and(meta::is_deleting)
        {
            if let Some(info) = info_for_key(inner, key) {
                controller_delete(inner, &target(&info, ns, name), ns, name);
            }
        }
    }
    // Finish orphan / foreground deletions.
    for (uid, (key, ns, name, orphaning, foreground)) in uids {
        if orphaning {
            controller_edit(inner, &key, &ns, &name, |o| remove_finalizer(o, "orphan"));
        } else if foreground && !has_dependents.contains(&uid) {
            controller_edit(inner, &key, &ns, &name, |o| {
                remove_finalizer(o, "foregroundDeletion")
            });
        }
    }
}

/// Run the controllers until the server shuts down.
pub async fn run(shared: Arc<Shared>) {
    let mut shutdown = shared.shutdown_tx.subscribe();
    let mut last_rv = 0;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(100)) => {}
            _ = shutdown.changed() => return,
        }
        let mut inner = shared.inner.lock().unwrap();
        if inner.store.rv() == last_rv {
            continue;
        }
        // Only changes that can need a controller: deletions, deletion
        // marks, ownerReferences, CRDs and namespaces.
        let relevant = match inner.store.history_since(last_rv) {
            None => true,
            Some(changes) => changes.iter().any(|c| {
                c.etype == crate::store::EventType::Deleted
                    || meta::is_deleting(&c.object)
                    || c.object["metadata"].get("ownerReferences").is_some()
                    || c.key.resource == "namespaces"
                    || c.key.resource == "customresourcedefinitions"
            }),
        };
        if !relevant {
            last_rv = inner.store.rv();
            continue;
        }
        // Converge: a pass can enable the next (e.g. GC after a delete).
        for _ in 0..4 {
            if !reconcile(&mut inner) {
                break;
            }
        }
        last_rv = inner.store.rv();
    }
}
