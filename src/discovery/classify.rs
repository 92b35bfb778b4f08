//! What a listed key is to discovery: a blob under the key layout (its digest), or something to
//! skip, by category.
//!
//! Owns: the categories and the rule that sorts a key into one. Must not: build keys itself
//! ([`crate::storage::layout`] does) or do I/O.

use serde::Serialize;

use crate::digest::{Algorithm, Digest};
use crate::storage::layout;

/// Why a listed key is not mapped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Skip {
    /// The read-write probe's canaries under `<prefix>/.castellan/`.
    ProbeCanary,
    /// Lock files (`*.lock`) and other dot-files (`.datastore-index.json`, ...).
    InternalFile,
    /// A key ending in `/` (a directory marker some tools create).
    DirectoryMarker,
    /// The hex has the wrong length or case for its algorithm.
    MalformedDigest,
    /// The fan-out directories do not match the digest.
    MismatchedDirectories,
    /// More path segments than the layout has.
    ExtraSegments,
    /// Not under an algorithm's directory: another layout's object.
    ForeignLayout,
}

impl Skip {
    pub const ALL: [Skip; 7] = [
        Skip::ProbeCanary,
        Skip::InternalFile,
        Skip::DirectoryMarker,
        Skip::MalformedDigest,
        Skip::MismatchedDirectories,
        Skip::ExtraSegments,
        Skip::ForeignLayout,
    ];

    /// The category as printed and counted.
    pub fn label(self) -> &'static str {
        match self {
            Skip::ProbeCanary => "probeCanary",
            Skip::InternalFile => "internalFile",
            Skip::DirectoryMarker => "directoryMarker",
            Skip::MalformedDigest => "malformedDigest",
            Skip::MismatchedDirectories => "mismatchedDirectories",
            Skip::ExtraSegments => "extraSegments",
            Skip::ForeignLayout => "foreignLayout",
        }
    }
}

/// A listed key, classified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Listed {
    /// Exactly a layout key: the blob with this digest.
    Blob(Digest),
    Skipped(Skip),
}

/// Sorts `key`, listed under `prefix`, into a blob or a skip category.
pub fn classify(prefix: &str, key: &str) -> Listed {
    if let Some(digest) = layout::digest_for(prefix, key) {
        return Listed::Blob(digest);
    }
    Listed::Skipped(skip_of(relative(prefix, key)))
}

fn relative<'a>(prefix: &str, key: &'a str) -> &'a str {
    let prefix = prefix.trim_matches('/');
    if prefix.is_empty() {
        return key;
    }
    key.strip_prefix(prefix)
        .and_then(|rest| rest.strip_prefix('/'))
        .unwrap_or(key)
}

fn skip_of(rest: &str) -> Skip {
    if rest.ends_with('/') || rest.is_empty() {
        return Skip::DirectoryMarker;
    }
    let segments: Vec<&str> = rest.split('/').collect();
    if segments[0] == ".castellan" {
        return Skip::ProbeCanary;
    }
    let last = segments[segments.len() - 1];
    if segments.iter().any(|s| s.starts_with('.')) || last.ends_with(".lock") {
        return Skip::InternalFile;
    }
    let Some(algorithm) = Algorithm::from_name(segments[0]) else {
        return Skip::ForeignLayout;
    };
    match segments.len() {
        4 if Digest::new(algorithm, last).is_err() => Skip::MalformedDigest,
        4 => Skip::MismatchedDirectories,
        n if n > 4 => Skip::ExtraSegments,
        _ => Skip::ForeignLayout,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "ab12cd34ef567890ab12cd34ef567890ab12cd34ef567890ab12cd34ef567890";

    #[test]
    fn each_key_is_a_blob_or_skipped_by_category() {
        let upper = HEX.to_uppercase();
        let sha512 = format!("{HEX}{HEX}");
        let cases: Vec<(&str, String, Listed)> = vec![
            (
                "a layout key is the blob its key names",
                format!("cas/sha256/ab/12/{HEX}"),
                Listed::Blob(format!("sha256:{HEX}").parse().unwrap()),
            ),
            (
                "sha512 keys are blobs too",
                format!("cas/sha512/ab/12/{sha512}"),
                Listed::Blob(format!("sha512:{sha512}").parse().unwrap()),
            ),
            (
                "a probe canary is skipped",
                "cas/.castellan/probe/xyz".into(),
                Listed::Skipped(Skip::ProbeCanary),
            ),
            (
                "a lock file is internal",
                "cas/.datastore.lock".into(),
                Listed::Skipped(Skip::InternalFile),
            ),
            (
                "a lock file without a dot is internal",
                "cas/push.lock".into(),
                Listed::Skipped(Skip::InternalFile),
            ),
            (
                "an index dot-file is internal",
                "cas/.datastore-index.json".into(),
                Listed::Skipped(Skip::InternalFile),
            ),
            (
                "a directory marker is skipped",
                "cas/sha256/ab/".into(),
                Listed::Skipped(Skip::DirectoryMarker),
            ),
            (
                "uppercase hex is malformed",
                format!("cas/sha256/AB/12/{upper}"),
                Listed::Skipped(Skip::MalformedDigest),
            ),
            (
                "short hex is malformed",
                "cas/sha256/ab/12/ab12".into(),
                Listed::Skipped(Skip::MalformedDigest),
            ),
            (
                "fan-out directories that do not match are skipped",
                format!("cas/sha256/ff/12/{HEX}"),
                Listed::Skipped(Skip::MismatchedDirectories),
            ),
            (
                "extra segments are skipped",
                format!("cas/sha256/ab/12/{HEX}/extra"),
                Listed::Skipped(Skip::ExtraSegments),
            ),
            (
                "another layout is foreign",
                format!("cas/blobs/sha256/{HEX}"),
                Listed::Skipped(Skip::ForeignLayout),
            ),
            (
                "a partial layout path is foreign",
                "cas/sha256/ab".into(),
                Listed::Skipped(Skip::ForeignLayout),
            ),
        ];
        for (name, key, want) in cases {
            assert_eq!(classify("cas", &key), want, "{name}: {key}");
        }
    }

    #[test]
    fn without_a_prefix_keys_start_at_the_algorithm() {
        assert!(matches!(
            classify("", &format!("sha256/ab/12/{HEX}")),
            Listed::Blob(_)
        ));
        assert_eq!(
            classify("", ".castellan/probe/x"),
            Listed::Skipped(Skip::ProbeCanary)
        );
    }
}
