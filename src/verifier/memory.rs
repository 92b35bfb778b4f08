//! What the verifier remembers about objects, and for how long each kind of fact is trusted.
//!
//! Owns: the fact table (a 128-bit fingerprint per object, so 100k mappings cost little), its
//! bound, and the pure policies [`trusted_for`] and [`worth_retrying`], table-tested below.
//!
//! Must not: do I/O or read any clock but the monotonic one it is handed (`now`).

use std::collections::HashMap;
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use sha2::Digest as _;
use tokio::time::Instant;

use crate::digest::Digest;
use crate::storage::verify::Verdict;

/// Most remembered facts; beyond it, expired ones go first, then all.
const MAX_FACTS: usize = 1 << 20;
/// How long a HEAD that found the object is trusted.
pub const PRESENT_TRUSTED_FOR: Duration = Duration::from_secs(600);

/// What is remembered about an object, and since when.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fact {
    /// A verification said this (at `at`, wall-clock, as the caller passed it).
    Verdict { verdict: Verdict, at: Time },
    /// HEAD saw the object with this size.
    Present { size: u64 },
}

/// How long a verdict is trusted without looking again; zero means "never remembered".
pub fn trusted_for(verdict: &Verdict) -> Duration {
    match verdict {
        Verdict::Verified { .. } => Duration::from_secs(24 * 3600),
        Verdict::DigestMismatch { .. } | Verdict::SizeMismatch { .. } => Duration::from_secs(3600),
        // Replication may still be catching up: look again soon.
        Verdict::Missing => Duration::from_secs(60),
        Verdict::Truncated { .. } | Verdict::Interrupted(_) | Verdict::Failed(_) => Duration::ZERO,
    }
}

/// Whether a read is tried again at once: only a body cut short says nothing and may go better.
pub fn worth_retrying(verdict: &Verdict) -> bool {
    matches!(verdict, Verdict::Truncated { .. } | Verdict::Interrupted(_))
}

/// A 128-bit fingerprint of what a fact is about: a collision is as likely as one of a SHA-256
/// truncated to 128 bits.
pub type FactKey = u128;

/// The fingerprint of `(reader, key, digest)`.
pub fn fact_key(reader: &str, key: &str, digest: &Digest) -> FactKey {
    let mut h = sha2::Sha256::new();
    let digest = digest.to_string();
    for part in [reader, key, digest.as_str()] {
        h.update((part.len() as u64).to_le_bytes());
        h.update(part.as_bytes());
    }
    let out = h.finalize();
    u128::from_le_bytes(out[..16].try_into().expect("16 bytes"))
}

struct Remembered {
    fact: Fact,
    expires: Instant,
}

/// The fact table.
#[derive(Default)]
pub struct Memory {
    facts: HashMap<FactKey, Remembered>,
}

impl Memory {
    /// The fact about `key`, unless it expired.
    pub fn fact(&self, key: FactKey, now: Instant) -> Option<&Fact> {
        self.facts
            .get(&key)
            .filter(|r| r.expires > now)
            .map(|r| &r.fact)
    }

    /// Remembers `fact` for `ttl` (nothing when zero).
    pub fn remember(&mut self, key: FactKey, fact: Fact, ttl: Duration, now: Instant) {
        if ttl.is_zero() {
            return;
        }
        if self.facts.len() >= MAX_FACTS {
            self.facts.retain(|_, r| r.expires > now);
            if self.facts.len() >= MAX_FACTS {
                self.facts.clear();
            }
        }
        self.facts.insert(
            key,
            Remembered {
                fact,
                expires: now + ttl,
            },
        );
    }

    /// Remembers a verdict for as long as [`trusted_for`] says.
    pub fn remember_verdict(&mut self, key: FactKey, verdict: Verdict, at: Time, now: Instant) {
        let ttl = trusted_for(&verdict);
        self.remember(key, Fact::Verdict { verdict, at }, ttl, now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::{ErrorKind, StorageError};

    fn at(secs: i64) -> Time {
        Time(k8s_openapi::jiff::Timestamp::from_second(secs).unwrap())
    }

    #[test]
    fn facts_are_trusted_for_as_long_as_they_can_last() {
        let cut = StorageError::new(ErrorKind::BodyInterrupted, "cut");
        let cases = [
            (
                "verified bytes are trusted for a day",
                Verdict::Verified { bytes: 1 },
                86_400,
            ),
            (
                "a mismatch is trusted for an hour",
                Verdict::DigestMismatch {
                    actual: Digest::of_bytes(crate::digest::Algorithm::Sha256, b"x"),
                },
                3_600,
            ),
            (
                "a size mismatch is trusted for an hour",
                Verdict::SizeMismatch {
                    expected: 1,
                    actual: 2,
                },
                3_600,
            ),
            (
                "a missing object is looked at again within a minute",
                Verdict::Missing,
                60,
            ),
            (
                "a truncated read is never remembered",
                Verdict::Truncated {
                    expected: 2,
                    received: 1,
                },
                0,
            ),
            (
                "an interrupted read is never remembered",
                Verdict::Interrupted(cut.clone()),
                0,
            ),
            (
                "a failed request is never remembered",
                Verdict::Failed(cut),
                0,
            ),
        ];
        for (name, verdict, secs) in cases {
            assert_eq!(trusted_for(&verdict), Duration::from_secs(secs), "{name}");
        }
    }

    #[test]
    fn only_cut_bodies_are_retried() {
        let cut = StorageError::new(ErrorKind::BodyInterrupted, "cut");
        let cases = [
            (
                "a truncated body is retried",
                Verdict::Truncated {
                    expected: 2,
                    received: 1,
                },
                true,
            ),
            (
                "an interrupted body is retried",
                Verdict::Interrupted(cut.clone()),
                true,
            ),
            ("a refused request is not", Verdict::Failed(cut), false),
            ("a missing object is not", Verdict::Missing, false),
            (
                "a verified object is not",
                Verdict::Verified { bytes: 1 },
                false,
            ),
        ];
        for (name, verdict, retry) in cases {
            assert_eq!(worth_retrying(&verdict), retry, "{name}");
        }
    }

    #[test]
    fn a_fact_is_forgotten_when_it_expires() {
        let mut memory = Memory::default();
        let now = Instant::now();
        let key = fact_key(
            "loc",
            "k",
            &Digest::of_bytes(crate::digest::Algorithm::Sha256, b""),
        );
        memory.remember_verdict(key, Verdict::Missing, at(1), now);
        assert!(memory.fact(key, now + Duration::from_secs(59)).is_some());
        assert!(memory.fact(key, now + Duration::from_secs(60)).is_none());
        memory.remember_verdict(
            key,
            Verdict::Truncated {
                expected: 1,
                received: 0,
            },
            at(1),
            now,
        );
        assert!(
            memory.fact(key, now + Duration::from_secs(61)).is_none(),
            "an inconclusive verdict replaces nothing and is not kept"
        );
    }

    #[test]
    fn fingerprints_separate_reader_key_and_digest() {
        let d = Digest::of_bytes(crate::digest::Algorithm::Sha256, b"a");
        let e = Digest::of_bytes(crate::digest::Algorithm::Sha256, b"b");
        let base = fact_key("l", "k", &d);
        assert_ne!(base, fact_key("l2", "k", &d));
        assert_ne!(base, fact_key("l", "k2", &d));
        assert_ne!(base, fact_key("l", "k", &e));
        assert_ne!(
            fact_key("ab", "c", &d),
            fact_key("a", "bc", &d),
            "parts are length-prefixed"
        );
    }
}
