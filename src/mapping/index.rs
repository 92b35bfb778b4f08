//! Mappings indexed by declared backend, serving backend and stranded-in-namespace, plus the last
//! seen placement state of every backend.
//!
//! Owns: answering "which mappings does this backend event affect?" without list calls, and
//! deciding whether a backend event is a real transition (usability, trust, location, default,
//! fallback, priority, key prefix) rather than a routine status write.
//!
//! Fed by the operator with every ArtifactMapping watcher event ([`MappingIndex::apply_event`]);
//! read by the backend→mappings mapper on another task, hence the lock. Memory-frugal: a mapping
//! is a `u32` slot holding its name once (an `Arc<str>`), interned namespace and backend ids and
//! its state; the per-backend and per-namespace sets hold only slot ids.
//!
//! Must not: clone mapping objects, or do I/O.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock};

use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher::Event;
use kube::ResourceExt;

use super::decide::MappingState;
use crate::api::{ArtifactMapping, StorageBackend};
use crate::placement::BackendView;

type Id = u32;

/// Interned strings (namespaces, backend names): few and long-lived, never freed.
#[derive(Default)]
struct Interner {
    ids: HashMap<Arc<str>, Id>,
    names: Vec<Arc<str>>,
}

impl Interner {
    fn intern(&mut self, s: &str) -> Id {
        if let Some(id) = self.ids.get(s) {
            return *id;
        }
        let id = self.names.len() as Id;
        let name: Arc<str> = Arc::from(s);
        self.names.push(name.clone());
        self.ids.insert(name, id);
        id
    }

    fn get(&self, s: &str) -> Option<Id> {
        self.ids.get(s).copied()
    }

    fn name(&self, id: Id) -> &str {
        &self.names[id as usize]
    }
}

/// One indexed mapping: what the mapper needs, nothing else.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Entry {
    ns: Id,
    name: Arc<str>,
    /// Interned backend name (backend names are interned per index, namespaces apart).
    declared: Id,
    serving: Option<Id>,
    state: MappingState,
}

/// The mapping sets, rebuilt from scratch on a relist.
#[derive(Default)]
struct Mappings {
    slots: Vec<Option<Entry>>,
    free: Vec<Id>,
    by_name: HashMap<(Id, Arc<str>), Id>,
    declared: HashMap<(Id, Id), HashSet<Id>>,
    serving: HashMap<(Id, Id), HashSet<Id>>,
    stranded: HashMap<Id, HashSet<Id>>,
    counts: HashMap<(Id, MappingState), i64>,
}

impl Mappings {
    fn upsert(&mut self, entry: Entry) {
        let key = (entry.ns, entry.name.clone());
        if let Some(&slot) = self.by_name.get(&key) {
            if self.slots[slot as usize].as_ref() == Some(&entry) {
                return;
            }
            self.unlink(slot);
            self.link(slot, entry);
            return;
        }
        let slot = match self.free.pop() {
            Some(slot) => slot,
            None => {
                self.slots.push(None);
                (self.slots.len() - 1) as Id
            }
        };
        self.by_name.insert(key, slot);
        self.link(slot, entry);
    }

    fn remove(&mut self, ns: Id, name: &str) {
        let key: (Id, Arc<str>) = (ns, Arc::from(name));
        if let Some(slot) = self.by_name.remove(&key) {
            self.unlink(slot);
            self.free.push(slot);
        }
    }

    fn link(&mut self, slot: Id, entry: Entry) {
        self.declared
            .entry((entry.ns, entry.declared))
            .or_default()
            .insert(slot);
        if let Some(serving) = entry.serving {
            self.serving
                .entry((entry.ns, serving))
                .or_default()
                .insert(slot);
        }
        if entry.state == MappingState::Stranded {
            self.stranded.entry(entry.ns).or_default().insert(slot);
        }
        *self.counts.entry((entry.ns, entry.state)).or_default() += 1;
        self.slots[slot as usize] = Some(entry);
    }

    fn unlink(&mut self, slot: Id) {
        let Some(entry) = self.slots[slot as usize].take() else {
            return;
        };
        remove_from(&mut self.declared, (entry.ns, entry.declared), slot);
        if let Some(serving) = entry.serving {
            remove_from(&mut self.serving, (entry.ns, serving), slot);
        }
        if entry.state == MappingState::Stranded {
            remove_from(&mut self.stranded, entry.ns, slot);
        }
        if let Some(n) = self.counts.get_mut(&(entry.ns, entry.state)) {
            *n -= 1;
        }
    }
}

fn remove_from<K: std::hash::Hash + Eq>(sets: &mut HashMap<K, HashSet<Id>>, key: K, slot: Id) {
    if let Some(set) = sets.get_mut(&key) {
        set.remove(&slot);
        if set.is_empty() {
            sets.remove(&key);
        }
    }
}

#[derive(Default)]
struct Inner {
    namespaces: Interner,
    backends: Interner,
    live: Mappings,
    /// Being filled between `Init` and `InitDone`; queries answer from `live` meanwhile.
    rebuilding: Option<Mappings>,
    /// Last seen placement view per (namespace, backend).
    backend_views: HashMap<(Id, Id), BackendView>,
    /// Backends seen since a backend relist started (`Init`); `None` outside a relist.
    backends_relisted: Option<HashSet<(Id, Id)>>,
}

impl Inner {
    fn entry_of(&mut self, mapping: &ArtifactMapping) -> Option<Entry> {
        let ns = self
            .namespaces
            .intern(mapping.metadata.namespace.as_deref()?);
        let name: Arc<str> = Arc::from(mapping.metadata.name.as_deref()?);
        let declared = self.backends.intern(&mapping.spec.backend_ref.name);
        let serving = mapping
            .status
            .as_ref()
            .and_then(|s| s.backend.as_deref())
            .map(|b| self.backends.intern(b));
        Some(Entry {
            ns,
            name,
            declared,
            serving,
            state: MappingState::of(mapping),
        })
    }
}

/// What a backend event changed, as far as placement is concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BackendTransition {
    /// Anything placement-relevant changed (or the backend is new or gone).
    pub changed: bool,
    /// It was not usable (or unknown) and is usable now.
    pub became_usable: bool,
}

/// Mappings indexed for the backend→mappings mapper. Thread-safe; cheap per event.
#[derive(Default)]
pub struct MappingIndex {
    inner: RwLock<Inner>,
}

impl MappingIndex {
    pub fn new() -> MappingIndex {
        MappingIndex::default()
    }

    /// Feeds one watcher event. `Init` starts a fresh buffer, `InitApply` fills it and `InitDone`
    /// swaps it in, so objects deleted while the watch was down disappear from the index.
    pub fn apply_event(&self, event: &Event<ArtifactMapping>) {
        let mut inner = self.write();
        match event {
            Event::Apply(m) => {
                if let Some(entry) = inner.entry_of(m) {
                    inner.live.upsert(entry.clone());
                    if let Some(rebuilding) = inner.rebuilding.as_mut() {
                        rebuilding.upsert(entry);
                    }
                }
            }
            Event::Delete(m) => {
                let (Some(ns), Some(name)) =
                    (m.metadata.namespace.as_deref(), m.metadata.name.as_deref())
                else {
                    return;
                };
                if let Some(ns) = inner.namespaces.get(ns) {
                    inner.live.remove(ns, name);
                    if let Some(rebuilding) = inner.rebuilding.as_mut() {
                        rebuilding.remove(ns, name);
                    }
                }
            }
            Event::Init => inner.rebuilding = Some(Mappings::default()),
            Event::InitApply(m) => {
                if let Some(entry) = inner.entry_of(m) {
                    inner
                        .rebuilding
                        .get_or_insert_with(Mappings::default)
                        .upsert(entry);
                }
            }
            Event::InitDone => {
                if let Some(fresh) = inner.rebuilding.take() {
                    inner.live = fresh;
                }
            }
        }
    }

    fn refs(
        &self,
        pick: impl FnOnce(&Inner) -> Option<Vec<Id>>,
    ) -> Vec<ObjectRef<ArtifactMapping>> {
        let inner = self.inner.read().unwrap_or_else(|e| e.into_inner());
        let Some(mut slots) = pick(&inner) else {
            return Vec::new();
        };
        slots.sort_unstable();
        slots
            .into_iter()
            .filter_map(|slot| inner.live.slots[slot as usize].as_ref())
            .map(|e| ObjectRef::new(&e.name).within(inner.namespaces.name(e.ns)))
            .collect()
    }

    fn ids(inner: &Inner, namespace: &str, backend: &str) -> Option<(Id, Id)> {
        Some((
            inner.namespaces.get(namespace)?,
            inner.backends.get(backend)?,
        ))
    }

    /// Mappings whose `spec.backendRef` is `backend` in `namespace`.
    pub fn declared_on(&self, namespace: &str, backend: &str) -> Vec<ObjectRef<ArtifactMapping>> {
        self.refs(|i| {
            Some(
                i.live
                    .declared
                    .get(&Self::ids(i, namespace, backend)?)?
                    .iter()
                    .copied()
                    .collect(),
            )
        })
    }

    /// Mappings whose `status.backend` is `backend` in `namespace`.
    pub fn served_by(&self, namespace: &str, backend: &str) -> Vec<ObjectRef<ArtifactMapping>> {
        self.refs(|i| {
            Some(
                i.live
                    .serving
                    .get(&Self::ids(i, namespace, backend)?)?
                    .iter()
                    .copied()
                    .collect(),
            )
        })
    }

    /// Mappings of `namespace` that nothing serves.
    pub fn stranded_in(&self, namespace: &str) -> Vec<ObjectRef<ArtifactMapping>> {
        self.refs(|i| {
            Some(
                i.live
                    .stranded
                    .get(&i.namespaces.get(namespace)?)?
                    .iter()
                    .copied()
                    .collect(),
            )
        })
    }

    /// How many mappings of `namespace` are in `state` (for the `mappings` gauge).
    pub fn count(&self, namespace: &str, state: MappingState) -> i64 {
        let inner = self.inner.read().unwrap_or_else(|e| e.into_inner());
        inner
            .namespaces
            .get(namespace)
            .and_then(|ns| inner.live.counts.get(&(ns, state)).copied())
            .unwrap_or(0)
    }

    /// How many mappings `backend` serves, and how many declared on it are stranded.
    pub fn backend_counts(&self, namespace: &str, backend: &str) -> (i64, i64) {
        let inner = self.inner.read().unwrap_or_else(|e| e.into_inner());
        let Some(key) = Self::ids(&inner, namespace, backend) else {
            return (0, 0);
        };
        let serving = inner.live.serving.get(&key).map_or(0, |s| s.len() as i64);
        let stranded = inner.live.declared.get(&key).map_or(0, |set| {
            set.iter()
                .filter(|&&slot| {
                    inner.live.slots[slot as usize]
                        .as_ref()
                        .is_some_and(|e| e.state == MappingState::Stranded)
                })
                .count() as i64
        });
        (serving, stranded)
    }

    /// Feeds one StorageBackend watcher event and returns the mappings it may re-place: those
    /// declared on or served by a backend whose placement view changed, and, when it has just
    /// become usable, every stranded mapping of its namespace. Routine status writes (a new
    /// `lastValidationTime`) change nothing placement-relevant and return nothing. Backends gone
    /// while the watch was down disappear when the relist completes (`InitDone`).
    pub fn apply_backend_event(
        &self,
        event: &Event<StorageBackend>,
    ) -> Vec<ObjectRef<ArtifactMapping>> {
        match event {
            Event::Apply(b) | Event::InitApply(b) => {
                let (Some(namespace), name) = (b.namespace(), b.name_any()) else {
                    return Vec::new();
                };
                if matches!(event, Event::InitApply(_)) {
                    self.mark_relisted(&namespace, &name);
                }
                self.backend_changed(&namespace, &name, Some(BackendView::of(b)))
            }
            Event::Delete(b) => match b.namespace() {
                Some(namespace) => self.backend_changed(&namespace, &b.name_any(), None),
                None => Vec::new(),
            },
            Event::Init => {
                self.write().backends_relisted = Some(HashSet::new());
                Vec::new()
            }
            Event::InitDone => {
                let gone: Vec<(String, String)> = {
                    let mut inner = self.write();
                    let Some(seen) = inner.backends_relisted.take() else {
                        return Vec::new();
                    };
                    inner
                        .backend_views
                        .keys()
                        .filter(|key| !seen.contains(key))
                        .map(|&(ns, b)| {
                            (
                                inner.namespaces.name(ns).to_owned(),
                                inner.backends.name(b).to_owned(),
                            )
                        })
                        .collect()
                };
                gone.iter()
                    .flat_map(|(ns, name)| self.backend_changed(ns, name, None))
                    .collect()
            }
        }
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Inner> {
        self.inner.write().unwrap_or_else(|e| e.into_inner())
    }

    fn mark_relisted(&self, namespace: &str, backend: &str) {
        let mut inner = self.write();
        let key = (
            inner.namespaces.intern(namespace),
            inner.backends.intern(backend),
        );
        if let Some(seen) = inner.backends_relisted.as_mut() {
            seen.insert(key);
        }
    }

    /// Records the view of a backend (`None` when it is gone) and returns the mappings the
    /// change affects. A backend seen for the first time counts as changed from "absent".
    pub fn backend_changed(
        &self,
        namespace: &str,
        backend: &str,
        view: Option<BackendView>,
    ) -> Vec<ObjectRef<ArtifactMapping>> {
        let (previous, changed) = {
            let mut inner = self.write();
            let key = (
                inner.namespaces.intern(namespace),
                inner.backends.intern(backend),
            );
            let previous = match &view {
                Some(v) => inner.backend_views.insert(key, v.clone()),
                None => inner.backend_views.remove(&key),
            };
            let changed = previous != view;
            (previous, changed)
        };
        if !changed {
            return Vec::new();
        }
        let was_usable = previous.as_ref().is_some_and(BackendView::usable);
        let is_usable = view.as_ref().is_some_and(BackendView::usable);
        let mut refs = self.declared_on(namespace, backend);
        refs.extend(self.served_by(namespace, backend));
        if is_usable && !was_usable {
            refs.extend(self.stranded_in(namespace));
        }
        let mut seen = HashSet::new();
        refs.retain(|r| seen.insert(r.clone()));
        refs
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::backend::Trust;
    use crate::api::condition::{self, Desired, Status};
    use crate::api::mapping::{ArtifactMappingSpec, BackendRef, Reassignment};
    use crate::api::reasons::mapping_condition;
    use crate::api::ArtifactMappingStatus;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    fn mapping(ns: &str, name: &str, declared: &str, serving: Option<&str>) -> ArtifactMapping {
        let mut m = ArtifactMapping::new(
            name,
            ArtifactMappingSpec {
                digest: format!("sha256:{}", "a".repeat(64)),
                size: None,
                backend_ref: BackendRef {
                    name: declared.into(),
                },
                key: None,
                reassignment: Reassignment::Auto,
            },
        );
        m.metadata.namespace = Some(ns.into());
        let mut status = ArtifactMappingStatus {
            backend: serving.map(String::from),
            ..Default::default()
        };
        condition::set(
            &mut status.conditions,
            Desired {
                type_: mapping_condition::READY,
                status: Status::from_bool(serving.is_some()),
                reason: "x",
                message: String::new(),
                observed_generation: None,
            },
            &Time(k8s_openapi::jiff::Timestamp::UNIX_EPOCH),
        );
        m.status = Some(status);
        m
    }

    fn names(refs: Vec<ObjectRef<ArtifactMapping>>) -> Vec<String> {
        let mut v: Vec<String> = refs
            .into_iter()
            .map(|r| format!("{}/{}", r.namespace.unwrap_or_default(), r.name))
            .collect();
        v.sort();
        v
    }

    fn state(ready: bool) -> BackendView {
        BackendView {
            name: "a".into(),
            ready,
            trust: Trust::Trusted,
            location: "loc".into(),
            default: false,
            fallback: false,
            priority: 0,
            key_prefix: String::new(),
        }
    }

    #[test]
    fn the_index_answers_declared_served_and_stranded() {
        let index = MappingIndex::new();
        for m in [
            mapping("org", "m1", "a", Some("a")),
            mapping("org", "m2", "a", Some("b")),
            mapping("org", "m3", "a", None),
            mapping("org", "m4", "b", None),
            mapping("other", "m5", "a", None),
        ] {
            index.apply_event(&Event::Apply(m));
        }
        let cases: Vec<(&str, Vec<String>, Vec<&str>)> = vec![
            (
                "declared on a backend lists every mapping written there",
                names(index.declared_on("org", "a")),
                vec!["org/m1", "org/m2", "org/m3"],
            ),
            (
                "served by a backend lists the mappings it serves now",
                names(index.served_by("org", "b")),
                vec!["org/m2"],
            ),
            (
                "stranded lists the unserved mappings of one namespace only",
                names(index.stranded_in("org")),
                vec!["org/m3", "org/m4"],
            ),
            (
                "another namespace's backend of the same name is separate",
                names(index.declared_on("other", "a")),
                vec!["other/m5"],
            ),
            (
                "an unknown backend has no mappings",
                names(index.declared_on("org", "zzz")),
                vec![],
            ),
            (
                "an unknown namespace has no stranded mappings",
                names(index.stranded_in("nowhere")),
                vec![],
            ),
        ];
        for (name, got, want) in cases {
            assert_eq!(got, want, "{name}");
        }
        assert_eq!(index.count("org", MappingState::Stranded), 2);
        assert_eq!(index.count("org", MappingState::Reassigned), 1);
        assert_eq!(index.backend_counts("org", "a"), (1, 1));
    }

    #[test]
    fn updates_and_deletes_move_mappings_between_sets() {
        let index = MappingIndex::new();
        index.apply_event(&Event::Apply(mapping("org", "m", "a", None)));
        index.apply_event(&Event::Apply(mapping("org", "m", "a", Some("b"))));
        let cases = [
            (
                "a reassigned mapping is served by its new backend",
                names(index.served_by("org", "b")),
                vec!["org/m"],
            ),
            (
                "a reassigned mapping is no longer stranded",
                names(index.stranded_in("org")),
                vec![],
            ),
            (
                "a reassigned mapping is still declared on its backend",
                names(index.declared_on("org", "a")),
                vec!["org/m"],
            ),
        ];
        for (name, got, want) in cases {
            assert_eq!(got, want, "{name}");
        }
        index.apply_event(&Event::Delete(mapping("org", "m", "a", Some("b"))));
        assert!(
            index.served_by("org", "b").is_empty(),
            "a deleted mapping leaves every set"
        );
        assert!(index.declared_on("org", "a").is_empty());
        assert_eq!(index.count("org", MappingState::Reassigned), 0);
    }

    #[test]
    fn a_relist_replaces_the_index_only_when_done() {
        let index = MappingIndex::new();
        index.apply_event(&Event::Apply(mapping("org", "old", "a", None)));
        index.apply_event(&Event::Init);
        index.apply_event(&Event::InitApply(mapping("org", "new", "a", None)));
        assert_eq!(
            names(index.declared_on("org", "a")),
            vec!["org/old"],
            "queries answer from the old index during a relist"
        );
        index.apply_event(&Event::InitDone);
        assert_eq!(
            names(index.declared_on("org", "a")),
            vec!["org/new"],
            "a mapping deleted while the watch was down is gone after the relist"
        );
        assert_eq!(index.count("org", MappingState::Stranded), 1);
    }

    #[test]
    fn backend_events_fan_out_only_on_transitions() {
        let index = MappingIndex::new();
        index.apply_event(&Event::Apply(mapping("org", "home", "a", Some("a"))));
        index.apply_event(&Event::Apply(mapping("org", "moved", "x", Some("a"))));
        index.apply_event(&Event::Apply(mapping("org", "lost", "x", None)));
        index.apply_event(&Event::Apply(mapping("other", "far", "x", None)));
        let quarantined = BackendView {
            trust: Trust::Quarantined,
            ..state(true)
        };
        let moved_location = BackendView {
            location: "elsewhere".into(),
            ..state(true)
        };
        let cases: Vec<(&str, Option<BackendView>, Vec<&str>)> = vec![
            (
                "a backend seen ready for the first time re-places its own and the stranded",
                Some(state(true)),
                vec!["org/home", "org/lost", "org/moved"],
            ),
            (
                "the same state again (a routine status write) re-places nothing",
                Some(state(true)),
                vec![],
            ),
            (
                "becoming unready re-places what it declares and serves",
                Some(state(false)),
                vec!["org/home", "org/moved"],
            ),
            (
                "staying unready re-places nothing",
                Some(state(false)),
                vec![],
            ),
            (
                "becoming usable again also re-places the namespace's stranded",
                Some(state(true)),
                vec!["org/home", "org/lost", "org/moved"],
            ),
            (
                "a quarantine re-places what it declares and serves",
                Some(quarantined),
                vec!["org/home", "org/moved"],
            ),
            (
                "a location change re-places what it declares and serves",
                Some(moved_location),
                vec!["org/home", "org/lost", "org/moved"],
            ),
            (
                "a deleted backend re-places what it declares and serves",
                None,
                vec!["org/home", "org/moved"],
            ),
        ];
        for (name, s, want) in cases {
            assert_eq!(names(index.backend_changed("org", "a", s)), want, "{name}");
        }
    }

    #[test]
    fn the_index_is_shared_between_tasks() {
        let index = Arc::new(MappingIndex::new());
        let writers: Vec<_> = (0..4)
            .map(|t| {
                let index = index.clone();
                std::thread::spawn(move || {
                    for i in 0..500 {
                        index.apply_event(&Event::Apply(mapping(
                            "org",
                            &format!("m{t}-{i}"),
                            "a",
                            None,
                        )));
                        let _ = index.stranded_in("org").len();
                    }
                })
            })
            .collect();
        for w in writers {
            w.join().unwrap();
        }
        assert_eq!(index.declared_on("org", "a").len(), 2000);
        assert_eq!(index.count("org", MappingState::Stranded), 2000);
    }

    #[test]
    fn a_backend_gone_while_the_watch_was_down_is_removed_when_the_relist_completes() {
        let index = MappingIndex::new();
        index.apply_event(&Event::Apply(mapping(
            "org",
            "on-gone",
            "gone",
            Some("gone"),
        )));
        index.apply_event(&Event::Apply(mapping(
            "org",
            "on-kept",
            "kept",
            Some("kept"),
        )));
        let backend = |name: &str| -> StorageBackend {
            serde_json::from_value(serde_json::json!({
                "apiVersion": "castellan.io/v1alpha1",
                "kind": "StorageBackend",
                "metadata": {"name": name, "namespace": "org"},
                "spec": {"s3": {"bucket": "bucket"}},
            }))
            .unwrap()
        };
        for name in ["gone", "kept"] {
            index.apply_backend_event(&Event::Apply(backend(name)));
        }
        assert!(index.apply_backend_event(&Event::Init).is_empty());
        assert!(
            index
                .apply_backend_event(&Event::InitApply(backend("kept")))
                .is_empty(),
            "an unchanged backend in the relist affects nothing"
        );
        assert_eq!(
            names(index.apply_backend_event(&Event::InitDone)),
            vec!["org/on-gone"],
            "the backend missing from the relist re-places what it declared and served"
        );
    }
}
