//! The public API: `StorageBackend` and `ArtifactMapping` custom resources, their conditions
//! and reasons.
//!
//! Owns: the wire format users and tools depend on (fields, defaults, schema rules, printer
//! columns). Must not: talk to a cluster or a bucket, or hold behaviour beyond what the types and
//! their schema say.

pub mod backend;
pub mod condition;
pub mod mapping;
pub mod reasons;
mod schema;

pub use backend::{StorageBackend, StorageBackendSpec, StorageBackendStatus};
pub use mapping::{ArtifactMapping, ArtifactMappingSpec, ArtifactMappingStatus};

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;

/// The API group of both kinds.
pub const GROUP: &str = "castellan.io";
/// The served and stored version.
pub const VERSION: &str = "v1alpha1";

/// The CustomResourceDefinitions of both kinds, generated from the Rust types.
pub fn crds() -> Vec<CustomResourceDefinition> {
    vec![StorageBackend::crd(), ArtifactMapping::crd()]
}

/// The CRDs as `(file name, YAML)` pairs, exactly as committed under `crds/`.
pub fn crd_files() -> Result<Vec<(String, String)>, serde_yaml::Error> {
    crds()
        .into_iter()
        .map(|crd| {
            let name = format!("{}.yaml", crd.metadata.name.as_deref().unwrap_or_default());
            Ok((name, serde_yaml::to_string(&crd)?))
        })
        .collect()
}

/// The CRDs as one multi-document YAML stream (what `castellan crd` prints).
pub fn crds_yaml() -> Result<String, serde_yaml::Error> {
    let mut out = String::new();
    for (_, yaml) in crd_files()? {
        out.push_str("---\n");
        out.push_str(&yaml);
    }
    Ok(out)
}
