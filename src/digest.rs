//! Content digests: strict parsing and printing of `sha256:<64 hex>` / `sha512:<128 hex>`, and
//! streaming verification of a byte stream against a digest in constant memory.
//!
//! Owns: the textual digest format and the verification outcome. It knows nothing about S3,
//! keys or Kubernetes; `storage::verify` feeds it the body of a GET.
//!
//! Verification is pipelined: the caller's task keeps pulling bytes off the stream while a
//! blocking thread hashes what was already received. The two are joined by a small bounded
//! channel of batches, so memory stays bounded (`PIPELINE_DEPTH × BATCH_BYTES` plus one chunk)
//! whatever the object size.

use std::fmt;
use std::str::FromStr;

use bytes::Bytes;
use futures::{Stream, StreamExt};
use sha2::Digest as _;

/// A hash algorithm Castellan accepts in a digest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Algorithm {
    Sha256,
    Sha512,
}

impl Algorithm {
    /// The name used in `algo:hex` and in the key layout.
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Sha256 => "sha256",
            Algorithm::Sha512 => "sha512",
        }
    }

    /// Number of lowercase hex characters in a digest of this algorithm.
    pub fn hex_len(self) -> usize {
        match self {
            Algorithm::Sha256 => 64,
            Algorithm::Sha512 => 128,
        }
    }

    /// The algorithm called `name`, if Castellan knows it.
    pub fn from_name(name: &str) -> Option<Algorithm> {
        match name {
            "sha256" => Some(Algorithm::Sha256),
            "sha512" => Some(Algorithm::Sha512),
            _ => None,
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A content digest such as `sha256:9f86d0…`. Always holds lowercase hex of the right length.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest {
    algorithm: Algorithm,
    hex: String,
}

/// Why a string is not a digest. The message names what is wrong and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DigestParseError {
    #[error("digest has no ':' between algorithm and hex (expected e.g. sha256:<64 hex>)")]
    MissingColon,
    #[error("unknown digest algorithm {0:?} (expected sha256 or sha512)")]
    UnknownAlgorithm(String),
    #[error("{algorithm} digest has {actual} hex characters (expected {expected})")]
    WrongLength {
        algorithm: Algorithm,
        actual: usize,
        expected: usize,
    },
    #[error(
        "uppercase hex character {character:?} at position {position} (digests are lowercase)"
    )]
    Uppercase { character: char, position: usize },
    #[error("non-hex character {character:?} at position {position}")]
    NonHex { character: char, position: usize },
}

impl Digest {
    /// Builds a digest from an algorithm and its hex, validated like [`Digest::from_str`].
    pub fn new(algorithm: Algorithm, hex: &str) -> Result<Digest, DigestParseError> {
        validate_hex(algorithm, hex, algorithm.name().len() + 1)?;
        Ok(Digest {
            algorithm,
            hex: hex.to_owned(),
        })
    }

    /// Computes the digest of `data` (convenient for tests and small payloads).
    pub fn of_bytes(algorithm: Algorithm, data: &[u8]) -> Digest {
        let mut h = Hasher::new(algorithm);
        h.update(data);
        h.finish()
    }

    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// The lowercase hex part.
    pub fn hex(&self) -> &str {
        &self.hex
    }

    /// The conventional `ArtifactMapping` name for this digest: `<algo>-<hex>` (71 characters
    /// for sha256, 135 for sha512), a valid DNS-1123 subdomain, so one digest has one mapping.
    pub fn object_name(&self) -> String {
        format!("{}-{}", self.algorithm.name(), self.hex)
    }
}

/// Positions in errors count characters of the whole input string, from 0.
fn validate_hex(algorithm: Algorithm, hex: &str, offset: usize) -> Result<(), DigestParseError> {
    for (i, c) in hex.char_indices() {
        let position = offset + hex[..i].chars().count();
        if c.is_ascii_uppercase() && c.is_ascii_hexdigit() {
            return Err(DigestParseError::Uppercase {
                character: c,
                position,
            });
        }
        if !matches!(c, '0'..='9' | 'a'..='f') {
            return Err(DigestParseError::NonHex {
                character: c,
                position,
            });
        }
    }
    let actual = hex.len();
    if actual != algorithm.hex_len() {
        return Err(DigestParseError::WrongLength {
            algorithm,
            actual,
            expected: algorithm.hex_len(),
        });
    }
    Ok(())
}

impl FromStr for Digest {
    type Err = DigestParseError;

    fn from_str(s: &str) -> Result<Digest, DigestParseError> {
        let (algo, hex) = s.split_once(':').ok_or(DigestParseError::MissingColon)?;
        let algorithm = Algorithm::from_name(algo)
            .ok_or_else(|| DigestParseError::UnknownAlgorithm(algo.to_owned()))?;
        validate_hex(algorithm, hex, algo.chars().count() + 1)?;
        Ok(Digest {
            algorithm,
            hex: hex.to_owned(),
        })
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.algorithm, self.hex)
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({self})")
    }
}

impl serde::Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Digest {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Digest, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// An incremental hasher for one [`Algorithm`].
pub enum Hasher {
    Sha256(sha2::Sha256),
    Sha512(sha2::Sha512),
}

impl Hasher {
    pub fn new(algorithm: Algorithm) -> Hasher {
        match algorithm {
            Algorithm::Sha256 => Hasher::Sha256(sha2::Sha256::new()),
            Algorithm::Sha512 => Hasher::Sha512(sha2::Sha512::new()),
        }
    }

    pub fn update(&mut self, data: &[u8]) {
        match self {
            Hasher::Sha256(h) => h.update(data),
            Hasher::Sha512(h) => h.update(data),
        }
    }

    pub fn finish(self) -> Digest {
        let (algorithm, hex) = match self {
            Hasher::Sha256(h) => (Algorithm::Sha256, hex::encode(h.finalize())),
            Hasher::Sha512(h) => (Algorithm::Sha512, hex::encode(h.finalize())),
        };
        Digest { algorithm, hex }
    }
}

/// The result of streaming an object through its digest.
///
/// A stream that fails or ends early is `Truncated` or `Io`, never `DigestMismatch` and never
/// `Verified`: only a complete stream of the expected length says anything about the content.
#[derive(Debug)]
pub enum VerifyOutcome<E> {
    /// All bytes arrived and hash to the expected digest.
    Verified { bytes: u64 },
    /// All bytes arrived, and they hash to something else.
    DigestMismatch { actual: Digest },
    /// More bytes arrived than expected (`actual` is the full count received).
    SizeMismatch { expected: u64, actual: u64 },
    /// The stream ended or failed before `expected` bytes arrived.
    Truncated { expected: u64, received: u64 },
    /// The stream failed and no expected length was known.
    Io(E),
}

impl<E> VerifyOutcome<E> {
    pub fn is_verified(&self) -> bool {
        matches!(self, VerifyOutcome::Verified { .. })
    }

    /// A stable CamelCase name for logs, metrics and CLI output.
    pub fn label(&self) -> &'static str {
        match self {
            VerifyOutcome::Verified { .. } => "Verified",
            VerifyOutcome::DigestMismatch { .. } => "DigestMismatch",
            VerifyOutcome::SizeMismatch { .. } => "SizeMismatch",
            VerifyOutcome::Truncated { .. } => "Truncated",
            VerifyOutcome::Io(_) => "Io",
        }
    }
}

/// Bytes accumulated before a batch is handed to the hashing thread.
const BATCH_BYTES: usize = 1 << 20;
/// Batches that may wait in the channel while the hasher works.
const PIPELINE_DEPTH: usize = 4;

/// What the reading side observed once the stream stopped.
enum StreamEnd<E> {
    Complete,
    Failed(E),
}

/// Streams `stream` through `expected`'s algorithm and compares.
///
/// `expected_size` is the number of bytes the stream must deliver (a declared size or the
/// server's Content-Length). Fewer bytes, or an error after fewer bytes, is `Truncated`; more
/// bytes is `SizeMismatch`, decided at the first chunk past the size without reading further
/// (so its `actual` counts up to that chunk); an error with no expected size is `Io`.
pub async fn verify_stream<S, E>(
    stream: S,
    expected: &Digest,
    expected_size: Option<u64>,
) -> VerifyOutcome<E>
where
    S: Stream<Item = Result<Bytes, E>>,
{
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<Bytes>>(PIPELINE_DEPTH);
    let algorithm = expected.algorithm();
    let hashing = tokio::task::spawn_blocking(move || {
        let mut hasher = Hasher::new(algorithm);
        while let Some(batch) = rx.blocking_recv() {
            for chunk in &batch {
                hasher.update(chunk);
            }
        }
        hasher.finish()
    });

    let mut stream = std::pin::pin!(stream);
    let mut received: u64 = 0;
    let mut batch: Vec<Bytes> = Vec::new();
    let mut batch_len = 0usize;
    let mut hasher_gone = false;
    let end = loop {
        match stream.next().await {
            None => break StreamEnd::Complete,
            Some(Err(e)) => break StreamEnd::Failed(e),
            Some(Ok(chunk)) => {
                received += chunk.len() as u64;
                if expected_size.is_some_and(|n| received > n) {
                    // Wrong anyway, and a body that never ends must not hold the reader: stop.
                    batch.clear();
                    break StreamEnd::Complete;
                }
                if hasher_gone {
                    continue;
                }
                batch_len += chunk.len();
                batch.push(chunk);
                if batch_len >= BATCH_BYTES {
                    batch_len = 0;
                    if tx.send(std::mem::take(&mut batch)).await.is_err() {
                        hasher_gone = true;
                    }
                }
            }
        }
    };
    if !batch.is_empty() && !hasher_gone {
        let _ = tx.send(batch).await;
    }
    drop(tx);
    let actual = hashing.await;

    match (end, expected_size) {
        (StreamEnd::Failed(_), Some(n)) if received < n => VerifyOutcome::Truncated {
            expected: n,
            received,
        },
        (StreamEnd::Failed(e), _) => VerifyOutcome::Io(e),
        (StreamEnd::Complete, Some(n)) if received < n => VerifyOutcome::Truncated {
            expected: n,
            received,
        },
        (StreamEnd::Complete, Some(n)) if received > n => VerifyOutcome::SizeMismatch {
            expected: n,
            actual: received,
        },
        (StreamEnd::Complete, _) => match actual {
            Ok(actual) if &actual == expected => VerifyOutcome::Verified { bytes: received },
            Ok(actual) => VerifyOutcome::DigestMismatch { actual },
            // The hashing thread panicked: a bug, never a verdict about the content.
            Err(join) => std::panic::resume_unwind(join.into_panic()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ABC256: &str = "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

    #[test]
    fn the_object_name_is_the_digest_with_a_dash() {
        let d: Digest = ABC256.parse().unwrap();
        assert_eq!(d.object_name(), ABC256.replace(':', "-"));
        assert_eq!(d.object_name().len(), 71);
    }

    #[test]
    fn parsing_is_strict_and_names_the_problem() {
        let hex64 = "a".repeat(64);
        let cases: &[(&str, String, Result<(), DigestParseError>)] = &[
            (
                "a well-formed sha256 digest parses",
                format!("sha256:{hex64}"),
                Ok(()),
            ),
            (
                "a well-formed sha512 digest parses",
                format!("sha512:{}", "0".repeat(128)),
                Ok(()),
            ),
            (
                "a digest without a colon is rejected",
                hex64.clone(),
                Err(DigestParseError::MissingColon),
            ),
            (
                "an unknown algorithm is named",
                format!("md5:{hex64}"),
                Err(DigestParseError::UnknownAlgorithm("md5".into())),
            ),
            (
                "an uppercase algorithm is unknown",
                format!("SHA256:{hex64}"),
                Err(DigestParseError::UnknownAlgorithm("SHA256".into())),
            ),
            (
                "a short sha256 reports its length",
                "sha256:abc".into(),
                Err(DigestParseError::WrongLength {
                    algorithm: Algorithm::Sha256,
                    actual: 3,
                    expected: 64,
                }),
            ),
            (
                "a sha512 with sha256 length reports the expected length",
                format!("sha512:{hex64}"),
                Err(DigestParseError::WrongLength {
                    algorithm: Algorithm::Sha512,
                    actual: 64,
                    expected: 128,
                }),
            ),
            (
                "an uppercase hex character is reported with its position",
                format!("sha256:{}B{}", "a".repeat(3), "a".repeat(60)),
                Err(DigestParseError::Uppercase {
                    character: 'B',
                    position: 10,
                }),
            ),
            (
                "a non-hex character is reported with its position",
                format!("sha256:{}g", "a".repeat(63)),
                Err(DigestParseError::NonHex {
                    character: 'g',
                    position: 70,
                }),
            ),
            (
                "trailing whitespace is not tolerated",
                format!("sha256:{hex64} "),
                Err(DigestParseError::NonHex {
                    character: ' ',
                    position: 71,
                }),
            ),
            (
                "an empty hex part is the wrong length",
                "sha256:".into(),
                Err(DigestParseError::WrongLength {
                    algorithm: Algorithm::Sha256,
                    actual: 0,
                    expected: 64,
                }),
            ),
        ];
        for (name, input, want) in cases {
            let got = input.parse::<Digest>().map(|_| ());
            assert_eq!(&got, want, "{name}");
        }
    }

    #[test]
    fn a_digest_prints_as_it_was_parsed_and_serializes_as_a_string() {
        let d: Digest = ABC256.parse().unwrap();
        assert_eq!(d.to_string(), ABC256);
        assert_eq!(d.algorithm(), Algorithm::Sha256);
        let json = serde_json::to_string(&d).unwrap();
        assert_eq!(json, format!("\"{ABC256}\""));
        let back: Digest = serde_json::from_str(&json).unwrap();
        assert_eq!(back, d);
        let bad = serde_json::from_str::<Digest>("\"sha256:xyz\"").unwrap_err();
        assert!(bad.to_string().contains("non-hex"), "{bad}");
    }

    #[test]
    fn hashing_matches_known_vectors() {
        assert_eq!(
            Digest::of_bytes(Algorithm::Sha256, b"abc").to_string(),
            ABC256
        );
        assert_eq!(
            Digest::of_bytes(Algorithm::Sha512, b"abc").hex(),
            "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a\
             2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f"
        );
    }

    fn chunks(data: &[u8], size: usize) -> Vec<Result<Bytes, std::io::Error>> {
        data.chunks(size)
            .map(|c| Ok(Bytes::copy_from_slice(c)))
            .collect()
    }

    fn io_err() -> std::io::Error {
        std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "connection closed")
    }

    #[tokio::test]
    async fn stream_verification_outcomes() {
        let data: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
        let good = Digest::of_bytes(Algorithm::Sha256, &data);
        let other = Digest::of_bytes(Algorithm::Sha256, b"other");
        let n = data.len() as u64;
        let short = n - 100;

        let mut truncated_with_error = chunks(&data[..short as usize], 65536);
        truncated_with_error.push(Err(io_err()));

        type Case = (
            &'static str,
            Vec<Result<Bytes, std::io::Error>>,
            Digest,
            Option<u64>,
            &'static str,
        );
        let cases: Vec<Case> = vec![
            (
                "complete matching bytes verify",
                chunks(&data, 65536),
                good.clone(),
                Some(n),
                "Verified",
            ),
            (
                "matching bytes verify without an expected size",
                chunks(&data, 7777),
                good.clone(),
                None,
                "Verified",
            ),
            (
                "complete bytes with another digest mismatch",
                chunks(&data, 65536),
                other.clone(),
                Some(n),
                "DigestMismatch",
            ),
            (
                "a stream that ends early is truncated, not a mismatch",
                chunks(&data[..short as usize], 65536),
                good.clone(),
                Some(n),
                "Truncated",
            ),
            (
                "a stream that fails early is truncated",
                truncated_with_error,
                good.clone(),
                Some(n),
                "Truncated",
            ),
            (
                "a stream that fails with no expected size is an I/O error",
                vec![Ok(Bytes::from_static(b"abc")), Err(io_err())],
                good.clone(),
                None,
                "Io",
            ),
            (
                "more bytes than expected is a size mismatch",
                chunks(&data, 65536),
                good.clone(),
                Some(short),
                "SizeMismatch",
            ),
            (
                "an empty stream of an empty object verifies",
                vec![],
                Digest::of_bytes(Algorithm::Sha256, b""),
                Some(0),
                "Verified",
            ),
            (
                "sha512 digests verify too",
                chunks(&data, 65536),
                Digest::of_bytes(Algorithm::Sha512, &data),
                Some(n),
                "Verified",
            ),
        ];
        for (name, items, digest, size, want) in cases {
            let outcome = verify_stream(futures::stream::iter(items), &digest, size).await;
            assert_eq!(outcome.label(), want, "{name}: {outcome:?}");
            match outcome {
                VerifyOutcome::Verified { bytes } => assert!(bytes == n || bytes == 0, "{name}"),
                VerifyOutcome::DigestMismatch { actual } => assert_eq!(actual, good, "{name}"),
                VerifyOutcome::SizeMismatch { expected, actual } => {
                    assert_eq!((expected, actual), (short, n), "{name}")
                }
                VerifyOutcome::Truncated { expected, received } => {
                    assert_eq!((expected, received), (n, short), "{name}")
                }
                VerifyOutcome::Io(_) => {}
            }
        }
    }
}
