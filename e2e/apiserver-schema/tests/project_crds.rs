//! The project's own CRDs (`src/api`, compiled here from source) and the example objects under
//! `examples/`: every CRD must pass the apiserver's CRD checks (including CEL rules staying inside
//! what kube-cel evaluates), and every example must be admitted with `fieldValidation=Strict`, as
//! `kubectl apply` sends it.

// Clippy lints of that code belong to its own crate, not to this test.
#[allow(dead_code, unused_imports, clippy::all)]
#[path = "../../../src/api/mod.rs"]
mod api;

use castellan_apiserver_schema::{version_schema_path, CompiledSchema, FieldValidation};
use serde::Deserialize;
use serde_json::Value;

fn compiled() -> Vec<(String, CompiledSchema)> {
    api::crds()
        .into_iter()
        .map(|crd| {
            let crd = serde_json::to_value(crd).unwrap();
            let kind = crd["spec"]["names"]["kind"].as_str().unwrap().to_owned();
            let schema = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"];
            let compiled = CompiledSchema::compile_at(schema, &version_schema_path(0))
                .unwrap_or_else(|e| panic!("{kind}: {e:#?}"));
            (kind, compiled)
        })
        .collect()
}

#[test]
fn every_project_crd_passes_the_apiserver_crd_checks() {
    let kinds: Vec<String> = compiled().into_iter().map(|(k, _)| k).collect();
    assert_eq!(kinds, vec!["StorageBackend", "ArtifactMapping"]);
}

#[test]
fn every_example_object_is_admitted_in_strict_mode() {
    let schemas = compiled();
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples");
    let mut admitted = 0;
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        for doc in serde_yaml::Deserializer::from_str(&text) {
            let obj = Value::deserialize(doc).unwrap();
            if obj.get("apiVersion").and_then(Value::as_str) != Some("castellan.io/v1alpha1") {
                continue;
            }
            let kind = obj["kind"].as_str().unwrap();
            let (_, schema) = schemas.iter().find(|(k, _)| k == kind).unwrap();
            let mut o = obj.clone();
            let r = schema.admit(&mut o, None, FieldValidation::Strict);
            assert_eq!(
                r.map(|a| a.warnings),
                Ok(vec![]),
                "{}: {kind} {}",
                file.display(),
                obj["metadata"]["name"]
            );
            admitted += 1;
        }
    }
    assert!(admitted >= 5, "only {admitted} example objects found");
}

#[test]
fn an_artifact_mapping_digest_is_checked_and_immutable_through_the_crd_rules() {
    let schemas = compiled();
    let (_, schema) = schemas
        .iter()
        .find(|(k, _)| k == "ArtifactMapping")
        .unwrap();
    let digest = format!("sha256:{}", "a".repeat(64));
    let mapping = |digest: &str| {
        serde_json::json!({
            "apiVersion": "castellan.io/v1alpha1", "kind": "ArtifactMapping",
            "metadata": {"name": "m1", "namespace": "team-a"},
            "spec": {"digest": digest, "backendRef": {"name": "b1"}}
        })
    };
    let mut old = mapping(&digest);
    schema
        .admit(&mut old, None, FieldValidation::Strict)
        .unwrap();
    assert_eq!(old["spec"]["reassignment"], "Auto", "default applied");

    let mut bad = mapping("md5:abc");
    let r = schema.admit(&mut bad, None, FieldValidation::Strict);
    let Err(castellan_apiserver_schema::AdmitError::Invalid(causes)) = r else {
        panic!("{r:?}")
    };
    assert_eq!(causes[0].field, "spec.digest");
    assert!(
        causes[0]
            .message
            .starts_with(r#"Invalid value: "string": digest must be 'sha256:'"#),
        "{causes:?}"
    );

    let mut changed = mapping(&format!("sha256:{}", "b".repeat(64)));
    let r = schema.admit(&mut changed, Some(&old), FieldValidation::Strict);
    let Err(castellan_apiserver_schema::AdmitError::Invalid(causes)) = r else {
        panic!("{r:?}")
    };
    assert_eq!(causes[0].field, "spec.digest");
    assert!(
        causes[0].message.contains("digest is immutable"),
        "{causes:?}"
    );
}
