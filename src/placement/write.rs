//! Where a new blob is written: the namespace's default backend, else a writable fallback.
//!
//! Owns: [`write_backend`] and the reason a backend cannot take a write
//! ([`not_writable_because`]). Must not: do I/O; everything arrives as API objects.

use super::view::BackendView;
use crate::api::backend::Trust;
use crate::api::condition;
use crate::api::reasons::backend_condition;
use crate::api::StorageBackend;

/// Why `backend` may not take writes now, or `None` when it may: it must be Ready, `Trusted`
/// (never `ReadOnly` or `Quarantined`) and not being deleted.
pub fn not_writable_because(backend: &StorageBackend) -> Option<String> {
    if backend.metadata.deletion_timestamp.is_some() {
        return Some("is being deleted".to_owned());
    }
    match backend.spec.trust {
        Trust::Trusted => {}
        other => return Some(format!("is {}", other.as_str())),
    }
    if BackendView::of(backend).ready {
        return None;
    }
    let ready = backend
        .status
        .as_ref()
        .and_then(|s| condition::find(&s.conditions, backend_condition::READY));
    Some(match ready {
        None => "is not Ready (not validated yet)".to_owned(),
        Some(c) if c.message.is_empty() => format!("is not Ready ({})", c.reason),
        Some(c) => format!("is not Ready ({}: {})", c.reason, c.message),
    })
}

fn name(b: &StorageBackend) -> &str {
    b.metadata.name.as_deref().unwrap_or("")
}

/// The backend a new blob is written to: the namespace's `default: true` backend when it is
/// writable, else the writable `fallback: true` backend with the highest priority (then name).
/// Two defaults are a conflict that is reported, never resolved by picking one. The error
/// detail names every default and fallback and why it cannot take the write.
pub fn write_backend(backends: &[StorageBackend]) -> Result<&StorageBackend, String> {
    let defaults: Vec<&StorageBackend> = backends.iter().filter(|b| b.spec.default).collect();
    if defaults.len() > 1 {
        let names: Vec<&str> = defaults.iter().map(|b| name(b)).collect();
        return Err(format!(
            "{} backends have default: true ({}); that conflict must be fixed in their specs",
            names.len(),
            names.join(", ")
        ));
    }
    let mut why = Vec::new();
    match defaults.first() {
        Some(d) => match not_writable_because(d) {
            None => return Ok(d),
            Some(reason) => why.push(format!("default backend {} {reason}", name(d))),
        },
        None => why.push("no backend has default: true".to_owned()),
    }
    let mut fallbacks: Vec<&StorageBackend> = backends.iter().filter(|b| b.spec.fallback).collect();
    fallbacks.sort_by_key(|b| (std::cmp::Reverse(b.spec.priority), name(b).to_owned()));
    if fallbacks.is_empty() {
        why.push("no backend has fallback: true".to_owned());
    }
    for f in fallbacks {
        match not_writable_because(f) {
            None => return Ok(f),
            Some(reason) => why.push(format!("fallback backend {} {reason}", name(f))),
        }
    }
    Err(why.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::placement::test_objects::backend;

    #[test]
    fn writes_go_to_the_default_else_a_writable_fallback() {
        type Case = (
            &'static str,
            Vec<StorageBackend>,
            Result<&'static str, Vec<&'static str>>,
        );
        let cases: Vec<Case> = vec![
            (
                "a Ready default takes the write",
                vec![
                    backend("a", "x1", 0, &["default", "ready"]),
                    backend("b", "x1", 9, &["fallback", "ready"]),
                ],
                Ok("a"),
            ),
            (
                "a default that is not Ready hands over to the fallback",
                vec![
                    backend("a", "x1", 0, &["default"]),
                    backend("b", "x1", 0, &["fallback", "ready"]),
                ],
                Ok("b"),
            ),
            (
                "a ReadOnly default is never written",
                vec![
                    backend("a", "x1", 0, &["default", "ready", "readonly"]),
                    backend("b", "x1", 0, &["fallback", "ready"]),
                ],
                Ok("b"),
            ),
            (
                "the fallback with the highest priority wins",
                vec![
                    backend("f1", "x1", 1, &["fallback", "ready"]),
                    backend("f2", "x1", 5, &["fallback", "ready"]),
                ],
                Ok("f2"),
            ),
            (
                "a fallback being deleted is passed over",
                vec![
                    backend("f1", "x1", 9, &["fallback", "ready", "deleting"]),
                    backend("f2", "x1", 0, &["fallback", "ready"]),
                ],
                Ok("f2"),
            ),
            (
                "a quarantined fallback is never written, and the error names both",
                vec![
                    backend("a", "x1", 0, &["default"]),
                    backend("b", "x1", 0, &["fallback", "ready", "quarantined"]),
                ],
                Err(vec![
                    "default backend a is not Ready (InvalidAccessKeyId: the key was revoked)",
                    "fallback backend b is Quarantined",
                ]),
            ),
            (
                "a ready backend that is neither default nor fallback is not chosen",
                vec![backend("plain", "x1", 0, &["ready"])],
                Err(vec![
                    "no backend has default: true",
                    "no backend has fallback: true",
                ]),
            ),
            (
                "two defaults are a conflict, not a choice",
                vec![
                    backend("a", "x1", 0, &["default", "ready"]),
                    backend("b", "x1", 0, &["default", "ready"]),
                ],
                Err(vec!["2 backends have default: true (a, b)"]),
            ),
        ];
        for (case, backends, want) in cases {
            let got = write_backend(&backends);
            match (got, want) {
                (Ok(b), Ok(w)) => assert_eq!(name(b), w, "{case}"),
                (Err(detail), Err(parts)) => {
                    for p in parts {
                        assert!(detail.contains(p), "{case}: {detail:?} lacks {p:?}");
                    }
                }
                (got, want) => panic!("{case}: got {:?}, want {want:?}", got.map(name)),
            }
        }
    }
}
