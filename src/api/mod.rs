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
            Ok((name, quote_yaml11_booleans(&serde_yaml::to_string(&crd)?)))
        })
        .collect()
}

/// The words YAML 1.1 reads as booleans; the YAML 1.2 emitter writes them plain.
const YAML11_BOOLEANS: [&str; 16] = [
    "y", "Y", "yes", "Yes", "YES", "n", "N", "no", "No", "NO", "on", "On", "ON", "off", "Off",
    "OFF",
];

/// Quotes plain scalars that YAML 1.1 parsers (kubectl's, the API server's) would read as
/// booleans: `repair: Off` would reach the API server as `false`. Only whole values of a mapping
/// entry or list item are touched; everything else is left byte for byte.
fn quote_yaml11_booleans(yaml: &str) -> String {
    let mut out = String::with_capacity(yaml.len());
    for line in yaml.split_inclusive('\n') {
        let text = line.trim_end_matches('\n');
        let value_at = text.rfind(": ").map(|i| i + 2).or_else(|| {
            text.trim_start()
                .starts_with("- ")
                .then(|| text.find("- ").unwrap() + 2)
        });
        match value_at {
            Some(i) if YAML11_BOOLEANS.contains(&&text[i..]) => {
                out.push_str(&text[..i]);
                out.push('\'');
                out.push_str(&text[i..]);
                out.push('\'');
                out.push_str(&line[text.len()..]);
            }
            _ => out.push_str(line),
        }
    }
    out
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

#[cfg(test)]
mod yaml_tests {
    use super::*;

    #[test]
    fn words_yaml_1_1_reads_as_booleans_are_quoted_and_nothing_else_changes() {
        let yaml = "a:\n  default: Off\n  enum:\n  - Off\n  - CopyFromVerifiedReplica\n  b: 'x: On'\n  c: Offline\n";
        assert_eq!(
            quote_yaml11_booleans(yaml),
            "a:\n  default: 'Off'\n  enum:\n  - 'Off'\n  - CopyFromVerifiedReplica\n  b: 'x: On'\n  c: Offline\n"
        );
    }

    #[test]
    fn the_committed_crds_say_off_as_a_string() {
        let files = crd_files().unwrap();
        let backend = &files
            .iter()
            .find(|(name, _)| name.starts_with("storagebackends"))
            .unwrap()
            .1;
        assert!(backend.contains("default: 'Off'"), "{backend}");
        assert!(!backend.contains("default: Off\n"));
    }
}
