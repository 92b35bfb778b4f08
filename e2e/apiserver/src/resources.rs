//! The resource registry: built-in resources and those served for CRDs.

use crate::error::Subject;
use serde_json::Value;
use std::sync::Arc;

/// Which built-in behaviour a resource gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Builtin {
    Namespace,
    Secret,
    ConfigMap,
    /// core/v1 Event view of the event store.
    CoreEvent,
    /// events.k8s.io/v1 Event view of the event store.
    EventsV1Event,
    Lease,
    Crd,
    ServiceAccount,
    Service,
    Deployment,
    PodDisruptionBudget,
    ClusterRole,
    ClusterRoleBinding,
    Role,
    RoleBinding,
}

/// What the store knows about one served version of a custom resource.
#[derive(Clone)]
pub struct CustomInfo {
    pub crd_name: String,
    pub schema: Option<Arc<crate::ext::Schema>>,
    /// The raw `openAPIV3Schema` (list/map semantics for server-side apply).
    pub raw_schema: Arc<Value>,
    /// `additionalPrinterColumns` of the served version.
    pub printer_columns: Vec<Value>,
    /// `spec.versions[*].selectableFields[*].jsonPath` (without the leading dot).
    pub selectable_fields: Vec<String>,
}

#[derive(Clone)]
pub enum Class {
    Builtin(Builtin),
    Custom(CustomInfo),
}

/// One resource at one group/version.
#[derive(Clone)]
pub struct ResourceInfo {
    pub group: String,
    pub version: String,
    pub kind: String,
    pub plural: String,
    pub singular: String,
    pub namespaced: bool,
    pub short_names: Vec<String>,
    pub categories: Vec<String>,
    pub has_status: bool,
    pub class: Class,
}

impl ResourceInfo {
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }
    /// The key objects are stored under (one store per group+resource; both
    /// Event APIs share the core store).
    pub fn store_key(&self) -> StoreKey {
        match self.class {
            Class::Builtin(Builtin::EventsV1Event) => StoreKey::new("", "events"),
            _ => StoreKey::new(&self.group, &self.plural),
        }
    }
    pub fn subject(&self, name: &str) -> Subject {
        Subject {
            group: self.group.clone(),
            resource: self.plural.clone(),
            kind: self.kind.clone(),
            name: name.to_string(),
        }
    }
    pub fn is_custom(&self) -> bool {
        matches!(self.class, Class::Custom(_))
    }
    pub fn builtin(&self) -> Option<Builtin> {
        match self.class {
            Class::Builtin(b) => Some(b),
            Class::Custom(_) => None,
        }
    }
    pub fn custom(&self) -> Option<&CustomInfo> {
        match &self.class {
            Class::Custom(c) => Some(c),
            Class::Builtin(_) => None,
        }
    }
    /// Whether the resource tracks `metadata.generation` (CRs, CRDs, and the built-ins whose
    /// strategies set it: Deployment and PodDisruptionBudget).
    pub fn tracks_generation(&self) -> bool {
        self.is_custom()
            || matches!(
                self.builtin(),
                Some(Builtin::Crd | Builtin::Deployment | Builtin::PodDisruptionBudget)
            )
    }
    /// Whether strategic merge patch is accepted.
    pub fn supports_smp(&self) -> bool {
        !self.is_custom() && self.builtin() != Some(Builtin::Crd)
    }
    /// Whether PUT without `metadata.resourceVersion` is accepted
    /// (`AllowUnconditionalUpdate`).
    pub fn allow_unconditional_update(&self) -> bool {
        !self.is_custom()
    }
    pub fn verbs(&self) -> Vec<&'static str> {
        vec![
            "create",
            "delete",
            "deletecollection",
            "get",
            "list",
            "patch",
            "update",
            "watch",
        ]
    }
}

/// Storage identity of a resource (group + plural).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StoreKey {
    pub group: String,
    pub resource: String,
}

impl StoreKey {
    pub fn new(group: &str, resource: &str) -> Self {
        StoreKey {
            group: group.to_string(),
            resource: resource.to_string(),
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn builtin(
    group: &str,
    version: &str,
    kind: &str,
    plural: &str,
    namespaced: bool,
    short: &[&str],
    has_status: bool,
    b: Builtin,
) -> ResourceInfo {
    ResourceInfo {
        group: group.into(),
        version: version.into(),
        kind: kind.into(),
        plural: plural.into(),
        singular: kind.to_lowercase(),
        namespaced,
        short_names: short.iter().map(|s| s.to_string()).collect(),
        categories: vec![],
        has_status,
        class: Class::Builtin(b),
    }
}

/// The built-in resources served.
pub fn builtins() -> Vec<ResourceInfo> {
    vec![
        builtin(
            "",
            "v1",
            "Namespace",
            "namespaces",
            false,
            &["ns"],
            true,
            Builtin::Namespace,
        ),
        builtin(
            "",
            "v1",
            "Secret",
            "secrets",
            true,
            &[],
            false,
            Builtin::Secret,
        ),
        builtin(
            "",
            "v1",
            "ConfigMap",
            "configmaps",
            true,
            &["cm"],
            false,
            Builtin::ConfigMap,
        ),
        builtin(
            "",
            "v1",
            "Event",
            "events",
            true,
            &["ev"],
            false,
            Builtin::CoreEvent,
        ),
        builtin(
            "events.k8s.io",
            "v1",
            "Event",
            "events",
            true,
            &["ev"],
            false,
            Builtin::EventsV1Event,
        ),
        builtin(
            "coordination.k8s.io",
            "v1",
            "Lease",
            "leases",
            true,
            &[],
            false,
            Builtin::Lease,
        ),
        {
            let mut r = builtin(
                "apiextensions.k8s.io",
                "v1",
                "CustomResourceDefinition",
                "customresourcedefinitions",
                false,
                &["crd", "crds"],
                true,
                Builtin::Crd,
            );
            r.categories = vec!["api-extensions".into()];
            r
        },
        builtin(
            "",
            "v1",
            "ServiceAccount",
            "serviceaccounts",
            true,
            &["sa"],
            false,
            Builtin::ServiceAccount,
        ),
        {
            let mut r = builtin(
                "",
                "v1",
                "Service",
                "services",
                true,
                &["svc"],
                true,
                Builtin::Service,
            );
            r.categories = vec!["all".into()];
            r
        },
        {
            let mut r = builtin(
                "apps",
                "v1",
                "Deployment",
                "deployments",
                true,
                &["deploy"],
                true,
                Builtin::Deployment,
            );
            r.categories = vec!["all".into()];
            r
        },
        builtin(
            "policy",
            "v1",
            "PodDisruptionBudget",
            "poddisruptionbudgets",
            true,
            &["pdb"],
            true,
            Builtin::PodDisruptionBudget,
        ),
        builtin(
            "rbac.authorization.k8s.io",
            "v1",
            "ClusterRole",
            "clusterroles",
            false,
            &[],
            false,
            Builtin::ClusterRole,
        ),
        builtin(
            "rbac.authorization.k8s.io",
            "v1",
            "ClusterRoleBinding",
            "clusterrolebindings",
            false,
            &[],
            false,
            Builtin::ClusterRoleBinding,
        ),
        builtin(
            "rbac.authorization.k8s.io",
            "v1",
            "Role",
            "roles",
            true,
            &[],
            false,
            Builtin::Role,
        ),
        builtin(
            "rbac.authorization.k8s.io",
            "v1",
            "RoleBinding",
            "rolebindings",
            true,
            &[],
            false,
            Builtin::RoleBinding,
        ),
    ]
}
