//! The in-memory store: one global resourceVersion counter, the objects, a
//! bounded history of committed changes (for watches from an RV and for
//! paging snapshots) and a broadcast of every commit to the watchers.
//!
//! Everything lives behind one `Mutex` in [`crate::state::Shared`]; no code
//! awaits while holding it, and watch delivery happens in per-watch tasks fed
//! by the broadcast, never under the lock.

use crate::resources::StoreKey;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use tokio::sync::broadcast;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    Added,
    Modified,
    Deleted,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
        }
    }
}

/// One committed change.
#[derive(Debug)]
pub struct Committed {
    pub rv: u64,
    pub key: StoreKey,
    pub etype: EventType,
    /// The new state; for `Deleted`, the last stored state carrying the
    /// delete's resourceVersion.
    pub object: Value,
    /// The state before the change (`None` for `Added`).
    pub old: Option<Value>,
}

/// Object identity inside one resource: (namespace, name).
pub type ObjKey = (String, String);

pub struct Store {
    rv: u64,
    objects: HashMap<StoreKey, BTreeMap<ObjKey, Value>>,
    history: VecDeque<Arc<Committed>>,
    capacity: usize,
    /// Watches (and continue tokens) from an RV below this get 410.
    floor: u64,
    tx: broadcast::Sender<Arc<Committed>>,
}

impl Store {
    pub fn new(history_capacity: usize) -> Self {
        let (tx, _) = broadcast::channel(65_536);
        Store {
            rv: 1,
            objects: HashMap::new(),
            history: VecDeque::new(),
            capacity: history_capacity.max(1),
            floor: 1,
            tx,
        }
    }

    /// The latest committed resourceVersion.
    pub fn rv(&self) -> u64 {
        self.rv
    }

    pub fn floor(&self) -> u64 {
        self.floor
    }

    pub fn get(&self, key: &StoreKey, ns: &str, name: &str) -> Option<&Value> {
        self.objects
            .get(key)
            .and_then(|m| m.get(&(ns.to_string(), name.to_string())))
    }

    /// All objects of a resource, in (namespace, name) order.
    pub fn iter(&self, key: &StoreKey) -> impl Iterator<Item = (&ObjKey, &Value)> {
        self.objects.get(key).into_iter().flat_map(|m| m.iter())
    }

    /// Objects of a resource strictly after `after`, in order.
    pub fn iter_after<'a>(
        &'a self,
        key: &StoreKey,
        after: &ObjKey,
    ) -> impl Iterator<Item = (&'a ObjKey, &'a Value)> {
        use std::ops::Bound;
        let after = after.clone();
        self.objects.get(key).into_iter().flat_map(move |m| {
            m.range::<ObjKey, _>((Bound::Excluded(after.clone()), Bound::Unbounded))
        })
    }

    pub fn count(&self, key: &StoreKey) -> usize {
        self.objects.get(key).map(BTreeMap::len).unwrap_or(0)
    }

    pub fn keys(&self) -> Vec<StoreKey> {
        self.objects.keys().cloned().collect()
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Committed>> {
        self.tx.subscribe()
    }

    /// History entries with `rv > after`, or `None` if some were compacted.
    pub fn history_since(&self, after: u64) -> Option<Vec<Arc<Committed>>> {
        if after < self.floor {
            return None;
        }
        let start = self.history.partition_point(|c| c.rv <= after);
        Some(self.history.iter().skip(start).cloned().collect())
    }

    /// The objects of `key` as they were at `rv`, or `None` if history no
    /// longer reaches back that far.
    pub fn snapshot_at(&self, key: &StoreKey, rv: u64) -> Option<BTreeMap<ObjKey, Value>> {
        if rv < self.floor {
            return None;
        }
        let mut snap = self.objects.get(key).cloned().unwrap_or_default();
        for c in self.history.iter().rev() {
            if c.rv <= rv {
                break;
            }
            if &c.key != key {
                continue;
            }
            let k = (
                crate::meta::namespace_of(&c.object).to_string(),
                crate::meta::name_of(&c.object).to_string(),
            );
            match c.etype {
                EventType::Added => {
                    snap.remove(&k);
                }
                EventType::Modified | EventType::Deleted => {
                    if let Some(old) = &c.old {
                        snap.insert(k, old.clone());
                    }
                }
            }
        }
        Some(snap)
    }

    /// Commit a create or update; sets `metadata.resourceVersion` and returns
    /// the stored object.
    pub fn put(&mut self, key: &StoreKey, mut obj: Value) -> Value {
        self.rv += 1;
        let rv = self.rv;
        crate::meta::metadata_mut(&mut obj)
            .insert("resourceVersion".into(), Value::String(rv.to_string()));
        let k = (
            crate::meta::namespace_of(&obj).to_string(),
            crate::meta::name_of(&obj).to_string(),
        );
        let old = self
            .objects
            .entry(key.clone())
            .or_default()
            .insert(k, obj.clone());
        let etype = if old.is_some() {
            EventType::Modified
        } else {
            EventType::Added
        };
        self.record(Committed {
            rv,
            key: key.clone(),
            etype,
            object: obj.clone(),
            old,
        });
        obj
    }

    /// Commit a delete; returns the last state carrying the delete's RV.
    pub fn delete(&mut self, key: &StoreKey, ns: &str, name: &str) -> Option<Value> {
        let old = self
            .objects
            .get_mut(key)?
            .remove(&(ns.to_string(), name.to_string()))?;
        self.rv += 1;
        let rv = self.rv;
        let mut last = old.clone();
        crate::meta::metadata_mut(&mut last)
            .insert("resourceVersion".into(), Value::String(rv.to_string()));
        self.record(Committed {
            rv,
            key: key.clone(),
            etype: EventType::Deleted,
            object: last.clone(),
            old: Some(old),
        });
        Some(last)
    }

    fn record(&mut self, c: Committed) {
        let c = Arc::new(c);
        self.history.push_back(c.clone());
        while self.history.len() > self.capacity {
            if let Some(dropped) = self.history.pop_front() {
                self.floor = dropped.rv;
            }
        }
        // No receivers is fine.
        let _ = self.tx.send(c);
    }

    /// Drop all retained history: a watch or continue token from any RV
    /// older than the current one gets 410.
    pub fn compact(&mut self) {
        self.history.clear();
        self.floor = self.rv;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn rv_history_and_snapshots() {
        let mut s = Store::new(3);
        let k = StoreKey::new("g", "things");
        let a = s.put(&k, json!({"metadata":{"name":"a","namespace":"n"}}));
        assert_eq!(a["metadata"]["resourceVersion"], "2");
        s.put(&k, json!({"metadata":{"name":"b","namespace":"n"}}));
        s.put(&k, json!({"metadata":{"name":"a","namespace":"n"},"x":1}));
        let snap = s.snapshot_at(&k, 2).unwrap();
        assert_eq!(snap.len(), 1);
        assert!(snap.values().next().unwrap().get("x").is_none());
        s.delete(&k, "n", "b");
        assert_eq!(s.rv(), 5);
        // Capacity 3: the first commit (rv 2) was dropped, floor is 2.
        assert!(s.history_since(1).is_none());
        assert_eq!(s.history_since(2).unwrap().len(), 3);
        s.compact();
        assert!(s.history_since(4).is_none());
        assert_eq!(s.history_since(5).unwrap().len(), 0);
    }
}
