//! Shared server state: the store and the resource registry under one lock,
//! plus the hooks and the signals watch tasks listen to.

use crate::hooks::HooksState;
use crate::resources::{builtins, Class, CustomInfo, ResourceInfo};
use crate::store::Store;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Options for a server instance.
#[derive(Debug, Clone)]
pub struct Options {
    /// Number of committed changes kept for watches from an RV and for paging.
    pub history_capacity: usize,
    /// Interval of periodic BOOKMARK events on watches that allow them.
    pub bookmark_interval: std::time::Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            history_capacity: 10_000,
            bookmark_interval: std::time::Duration::from_secs(60),
        }
    }
}

pub struct Inner {
    pub store: Store,
    pub registry: Registry,
}

pub struct Shared {
    pub inner: Mutex<Inner>,
    pub(crate) hooks: HooksState,
    pub options: Options,
    /// Bumped to make every open watch drop its connection.
    pub drop_tx: tokio::sync::watch::Sender<u64>,
    /// Set to true on shutdown: watches end cleanly.
    pub shutdown_tx: tokio::sync::watch::Sender<bool>,
}

impl Shared {
    pub fn new(options: Options) -> Arc<Shared> {
        let store = Store::new(options.history_capacity);
        Arc::new(Shared {
            inner: Mutex::new(Inner {
                store,
                registry: Registry::new(),
            }),
            hooks: HooksState::default(),
            options,
            drop_tx: tokio::sync::watch::channel(0).0,
            shutdown_tx: tokio::sync::watch::channel(false).0,
        })
    }

    pub fn drop_watches(&self) {
        self.drop_tx.send_modify(|g| *g += 1);
    }
}

/// All served resources, rebuilt whenever a CRD changes.
pub struct Registry {
    builtins: Vec<ResourceInfo>,
    custom: Vec<ResourceInfo>,
    schema_cache: HashMap<String, Arc<crate::ext::Schema>>,
}

impl Registry {
    pub fn new() -> Self {
        Registry {
            builtins: builtins(),
            custom: Vec::new(),
            schema_cache: HashMap::new(),
        }
    }

    pub fn all(&self) -> impl Iterator<Item = &ResourceInfo> {
        self.builtins.iter().chain(self.custom.iter())
    }

    pub fn lookup(&self, group: &str, version: &str, plural: &str) -> Option<&ResourceInfo> {
        self.all()
            .find(|r| r.group == group && r.version == version && r.plural == plural)
    }

    /// Whether any resource is served at group/version.
    pub fn has_group_version(&self, group: &str, version: &str) -> bool {
        self.all().any(|r| r.group == group && r.version == version)
    }

    /// Groups in discovery order (built-in groups first), each with its
    /// versions (preferred first).
    pub fn groups(&self) -> Vec<(String, Vec<String>)> {
        let mut out: Vec<(String, Vec<String>)> = Vec::new();
        for r in self.all() {
            match out.iter_mut().find(|(g, _)| *g == r.group) {
                Some((_, vs)) => {
                    if !vs.contains(&r.version) {
                        vs.push(r.version.clone())
                    }
                }
                None => out.push((r.group.clone(), vec![r.version.clone()])),
            }
        }
        out
    }

    /// Served versions of a CRD-backed group, preferred (storage) first.
    pub fn custom_resources(&self) -> &[ResourceInfo] {
        &self.custom
    }

    /// Rebuild the custom resources from the stored CRDs.
    pub fn rebuild<'a>(&mut self, crds: impl Iterator<Item = &'a Value>) {
        let mut custom = Vec::new();
        let mut used = HashMap::new();
        for crd in crds {
            let spec = &crd["spec"];
            let group = spec["group"].as_str().unwrap_or_default().to_string();
            let names = &spec["names"];
            let kind = names["kind"].as_str().unwrap_or_default().to_string();
            let plural = names["plural"].as_str().unwrap_or_default().to_string();
            let singular = names["singular"]
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| kind.to_lowercase());
            let namespaced = spec["scope"].as_str() != Some("Cluster");
            let strs = |v: &Value| -> Vec<String> {
                v.as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(|s| s.as_str().map(str::to_string))
                            .collect()
                    })
                    .unwrap_or_default()
            };
            let mut versions: Vec<&Value> = spec["versions"]
                .as_array()
                .map(|a| a.iter().collect())
                .unwrap_or_default();
            // Storage version first (it is the preferred version in discovery).
            versions.sort_by_key(|v| !v["storage"].as_bool().unwrap_or(false));
            for v in versions {
                if !v["served"].as_bool().unwrap_or(false) {
                    continue;
                }
                let schema_v = &v["schema"]["openAPIV3Schema"];
                let schema = if schema_v.is_object() {
                    let key = schema_v.to_string();
                    match self.schema_cache.get(&key) {
                        Some(s) => Some(s.clone()),
                        None => match crate::ext::compile_schema(schema_v, "") {
                            Ok(s) => {
                                let s = Arc::new(s);
                                self.schema_cache.insert(key.clone(), s.clone());
                                Some(s)
                            }
                            Err(_) => None,
                        },
                    }
                    .inspect(|s| {
                        used.insert(key, s.clone());
                    })
                } else {
                    None
                };
                custom.push(ResourceInfo {
                    group: group.clone(),
                    version: v["name"].as_str().unwrap_or_default().to_string(),
                    kind: kind.clone(),
                    plural: plural.clone(),
                    singular: singular.clone(),
                    namespaced,
                    short_names: strs(&names["shortNames"]),
                    categories: strs(&names["categories"]),
                    has_status: v["subresources"]["status"].is_object(),
                    class: Class::Custom(CustomInfo {
                        crd_name: crate::meta::name_of(crd).to_string(),
                        schema,
                        raw_schema: Arc::new(schema_v.clone()),
                        printer_columns: v["additionalPrinterColumns"]
                            .as_array()
                            .cloned()
                            .unwrap_or_default(),
                        selectable_fields: v["selectableFields"]
                            .as_array()
                            .map(|a| {
                                a.iter()
                                    .filter_map(|f| f["jsonPath"].as_str())
                                    .map(|p| p.trim_start_matches('.').to_string())
                                    .collect()
                            })
                            .unwrap_or_default(),
                    }),
                });
            }
        }
        self.schema_cache = used;
        self.custom = custom;
    }
}

impl Default for Registry {
    fn default() -> Self {
        Self::new()
    }
}
