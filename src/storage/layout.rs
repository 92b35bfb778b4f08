//! The bucket key layout: `<keyPrefix>/<algo>/<hex[0:2]>/<hex[2:4]>/<hex>`, its inverse (key →
//! digest, for discovery), the canary location and `keyPrefix` validation.
//!
//! Owns: every decision about where an object lives in a bucket. No other module builds keys.

use crate::digest::{Algorithm, Digest};

/// Where the read-write probe writes its canaries, under the key prefix.
pub const PROBE_DIR: &str = ".castellan/probe";

/// Why a `keyPrefix` is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PrefixError {
    #[error("keyPrefix must not start with '/'")]
    LeadingSlash,
    #[error("keyPrefix must not contain a '..' segment")]
    DotDot,
    #[error("keyPrefix must not contain an empty segment ('//')")]
    EmptySegment,
    #[error("keyPrefix must not contain control characters")]
    ControlCharacter,
}

/// Validates a `keyPrefix`: no leading `/`, no `..` (or `.`) segment, no `//`. A single trailing
/// `/` is tolerated (and ignored by [`key_for`]); the empty prefix is valid.
pub fn validate_prefix(prefix: &str) -> Result<(), PrefixError> {
    if prefix.starts_with('/') {
        return Err(PrefixError::LeadingSlash);
    }
    if prefix.chars().any(char::is_control) {
        return Err(PrefixError::ControlCharacter);
    }
    let trimmed = prefix.strip_suffix('/').unwrap_or(prefix);
    if trimmed.is_empty() {
        return Ok(());
    }
    for segment in trimmed.split('/') {
        match segment {
            "" => return Err(PrefixError::EmptySegment),
            ".." | "." => return Err(PrefixError::DotDot),
            _ => {}
        }
    }
    Ok(())
}

fn normalized(prefix: &str) -> &str {
    prefix.strip_suffix('/').unwrap_or(prefix)
}

/// Joins `prefix` and `rest` with one `/`; no prefix means no leading slash.
pub fn join(prefix: &str, rest: &str) -> String {
    let prefix = normalized(prefix);
    if prefix.is_empty() {
        rest.to_owned()
    } else {
        format!("{prefix}/{rest}")
    }
}

/// The key of `digest` under `prefix`.
pub fn key_for(prefix: &str, digest: &Digest) -> String {
    let hex = digest.hex();
    join(
        prefix,
        &format!(
            "{}/{}/{}/{}",
            digest.algorithm(),
            &hex[0..2],
            &hex[2..4],
            hex
        ),
    )
}

/// The digest stored under `key`, if `key` is exactly where [`key_for`] would put it under
/// `prefix`. Anything else (lock files, partial uploads, other prefixes, uppercase hex,
/// mismatched fan-out directories) is `None`.
pub fn digest_for(prefix: &str, key: &str) -> Option<Digest> {
    let rest = match normalized(prefix) {
        "" => key,
        p => key.strip_prefix(p)?.strip_prefix('/')?,
    };
    let mut parts = rest.split('/');
    let algo = Algorithm::from_name(parts.next()?)?;
    let (_a, _b, hex) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let digest = Digest::new(algo, hex).ok()?;
    (key_for(prefix, &digest) == key).then_some(digest)
}

/// A unique canary key for the read-write probe.
pub fn probe_key(prefix: &str, unique: &str) -> String {
    join(prefix, &format!("{PROBE_DIR}/{unique}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "ab12cd34ef567890ab12cd34ef567890ab12cd34ef567890ab12cd34ef567890";

    fn d() -> Digest {
        format!("sha256:{HEX}").parse().unwrap()
    }

    #[test]
    fn keys_follow_the_layout() {
        let cases = [
            (
                "no prefix means no leading slash",
                "",
                format!("sha256/ab/12/{HEX}"),
            ),
            (
                "a prefix is joined with one slash",
                "cas",
                format!("cas/sha256/ab/12/{HEX}"),
            ),
            (
                "a trailing slash on the prefix is not doubled",
                "cas/",
                format!("cas/sha256/ab/12/{HEX}"),
            ),
            (
                "nested prefixes are kept",
                "org/a",
                format!("org/a/sha256/ab/12/{HEX}"),
            ),
        ];
        for (name, prefix, want) in cases {
            assert_eq!(key_for(prefix, &d()), want, "{name}");
        }
        let d512: Digest = format!("sha512:{}", "0f".repeat(64)).parse().unwrap();
        assert_eq!(
            key_for("", &d512),
            format!("sha512/0f/0f/{}", "0f".repeat(64))
        );
    }

    #[test]
    fn keys_map_back_to_digests_only_when_they_round_trip() {
        let cases: Vec<(&str, &str, String, bool)> = vec![
            (
                "a layout key maps back",
                "cas",
                format!("cas/sha256/ab/12/{HEX}"),
                true,
            ),
            (
                "a layout key without prefix maps back",
                "",
                format!("sha256/ab/12/{HEX}"),
                true,
            ),
            (
                "a lock file is skipped",
                "cas",
                format!("cas/sha256/ab/12/{HEX}.lock"),
                false,
            ),
            (
                "wrong fan-out directories are skipped",
                "cas",
                format!("cas/sha256/ff/12/{HEX}"),
                false,
            ),
            (
                "uppercase hex is skipped",
                "cas",
                format!("cas/sha256/AB/12/{}", HEX.to_uppercase()),
                false,
            ),
            (
                "another prefix is skipped",
                "cas",
                format!("other/sha256/ab/12/{HEX}"),
                false,
            ),
            (
                "a prefix that is only a string prefix is skipped",
                "cas",
                format!("cas2/sha256/ab/12/{HEX}"),
                false,
            ),
            (
                "an unknown algorithm is skipped",
                "cas",
                format!("cas/md5/ab/12/{HEX}"),
                false,
            ),
            (
                "an extra level is skipped",
                "cas",
                format!("cas/sha256/ab/12/{HEX}/x"),
                false,
            ),
            (
                "a missing level is skipped",
                "cas",
                format!("cas/sha256/ab/{HEX}"),
                false,
            ),
            (
                "a probe canary is skipped",
                "cas",
                probe_key("cas", "123"),
                false,
            ),
            (
                "a leading slash is skipped",
                "",
                format!("/sha256/ab/12/{HEX}"),
                false,
            ),
        ];
        for (name, prefix, key, ok) in cases {
            let got = digest_for(prefix, &key);
            assert_eq!(got.is_some(), ok, "{name}: {key}");
            if ok {
                assert_eq!(got.unwrap(), d(), "{name}");
            }
        }
    }

    #[test]
    fn prefixes_are_validated() {
        let cases = [
            ("the empty prefix is valid", "", Ok(())),
            ("a simple prefix is valid", "cas", Ok(())),
            ("a nested prefix is valid", "a/b-c/d_e", Ok(())),
            ("a trailing slash is tolerated", "cas/", Ok(())),
            (
                "a leading slash is rejected",
                "/cas",
                Err(PrefixError::LeadingSlash),
            ),
            (
                "a dot-dot segment is rejected",
                "a/../b",
                Err(PrefixError::DotDot),
            ),
            ("a lone dot-dot is rejected", "..", Err(PrefixError::DotDot)),
            ("dots inside a name are fine", "a..b", Ok(())),
            (
                "a double slash is rejected",
                "a//b",
                Err(PrefixError::EmptySegment),
            ),
            (
                "a newline is rejected",
                "a\nb",
                Err(PrefixError::ControlCharacter),
            ),
        ];
        for (name, prefix, want) in cases {
            assert_eq!(validate_prefix(prefix), want, "{name}");
        }
    }
}
