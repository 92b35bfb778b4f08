//! API objects for the placement table tests.

use serde_json::json;

use super::serve::{ObjectFact, Replica};
use super::view::BackendView;
use crate::api::backend::Trust;
use crate::api::mapping::{ArtifactMappingSpec, BackendRef, Reassignment};
use crate::api::{ArtifactMapping, StorageBackend};

pub const D: &str = "sha256:ab12cd34ef567890ab12cd34ef567890ab12cd34ef567890ab12cd34ef567890";

/// A backend: `flags` may contain "default", "fallback", "ready", "readonly", "quarantined",
/// "deleting"; `bucket` decides the location.
pub fn backend(name: &str, bucket: &str, priority: i32, flags: &[&str]) -> StorageBackend {
    let trust = if flags.contains(&"quarantined") {
        "Quarantined"
    } else if flags.contains(&"readonly") {
        "ReadOnly"
    } else {
        "Trusted"
    };
    let ready = flags.contains(&"ready");
    let mut b: StorageBackend = serde_json::from_value(json!({
        "apiVersion": "castellan.io/v1alpha1",
        "kind": "StorageBackend",
        "metadata": {"name": name, "namespace": "org"},
        "spec": {
            "s3": {"bucket": bucket, "endpoint": "http://127.0.0.1:9000", "keyPrefix": "cas"},
            "default": flags.contains(&"default"),
            "fallback": flags.contains(&"fallback"),
            "priority": priority,
            "trust": trust,
        },
        "status": {"conditions": [{
            "type": "Ready",
            "status": if ready { "True" } else { "False" },
            "reason": if ready { "Validated" } else { "InvalidAccessKeyId" },
            "message": if ready { "" } else { "the key was revoked" },
            "lastTransitionTime": "2026-01-01T00:00:00Z",
        }]},
    }))
    .unwrap();
    if flags.contains(&"deleting") {
        b.metadata.deletion_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
            "2026-01-01T00:00:00Z".parse().unwrap(),
        ));
    }
    b
}

pub fn mapping(declared: &str, serving: Option<&str>) -> ArtifactMapping {
    serde_json::from_value(json!({
        "apiVersion": "castellan.io/v1alpha1",
        "kind": "ArtifactMapping",
        "metadata": {"name": "m", "namespace": "org"},
        "spec": {"digest": D, "backendRef": {"name": declared}},
        "status": {"backend": serving},
    }))
    .unwrap()
}

pub const DIGEST: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

pub fn declared_on(declared: &str) -> ArtifactMapping {
    let mut m = ArtifactMapping::new(
        "sha256-0123",
        ArtifactMappingSpec {
            digest: DIGEST.into(),
            size: Some(100),
            backend_ref: BackendRef {
                name: declared.into(),
            },
            key: None,
            reassignment: Reassignment::Auto,
        },
    );
    m.metadata.namespace = Some("org".into());
    m.metadata.generation = Some(1);
    m
}

pub fn never(mut m: ArtifactMapping) -> ArtifactMapping {
    m.spec.reassignment = Reassignment::Never;
    m
}

pub fn b(name: &str) -> Replica {
    Replica {
        backend: BackendView {
            name: name.into(),
            ready: true,
            trust: Trust::Trusted,
            location: format!("loc-{name}"),
            default: false,
            fallback: false,
            priority: 0,
            key_prefix: String::new(),
        },
        key: format!("{name}/key"),
        object: ObjectFact::Unknown,
    }
}

pub fn present(mut f: Replica) -> Replica {
    f.object = ObjectFact::Present { size: 100 };
    f
}
pub fn with(mut f: Replica, object: ObjectFact) -> Replica {
    f.object = object;
    f
}
pub fn not_ready(mut f: Replica) -> Replica {
    f.backend.ready = false;
    f
}
pub fn trust(mut f: Replica, t: Trust) -> Replica {
    f.backend.trust = t;
    f
}
pub fn located(mut f: Replica, l: &str) -> Replica {
    f.backend.location = l.into();
    f
}
pub fn default(mut f: Replica) -> Replica {
    f.backend.default = true;
    f
}
pub fn fallback(mut f: Replica) -> Replica {
    f.backend.fallback = true;
    f
}
pub fn priority(mut f: Replica, p: i32) -> Replica {
    f.backend.priority = p;
    f
}
