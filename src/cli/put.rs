//! `castellan put FILE`: uploads a file to the namespace's default backend (the fallback when
//! the default is not Ready) and creates its `ArtifactMapping`. Prints the digest on stdout and a
//! one-line summary on stderr.
//!
//! Owns: the subcommand's flags, output and exit codes ([`EXIT_CODES_HELP`]). The transfer is
//! [`castellan::transfer::put_file`].

use std::path::PathBuf;

use super::transfer::{bars_if_terminal, connect, human_bytes, rate, ClusterArgs};
use castellan::digest::Algorithm;
use castellan::transfer::{put_file, PutOptions, PutOutcome, TransferError};

/// Stored and mapped (uploaded now, or already present).
pub const EXIT_OK: i32 = 0;
/// Failed: no writable backend, the upload failed, or the Kubernetes API failed.
pub const EXIT_FAILED: i32 = 1;
/// Bad flags (clap's own exit code).
#[allow(dead_code)] // clap itself exits with it; named for the help text and the tests
pub const EXIT_USAGE: i32 = 2;
/// The file does not exist.
pub const EXIT_NOT_FOUND: i32 = 4;
/// The mapping name is taken by a mapping of another digest.
pub const EXIT_CONFLICT: i32 = 5;

/// Shown under `castellan put --help`.
pub const EXIT_CODES_HELP: &str = "\
Exit codes:
  0  stored and mapped (uploaded now, or already present with that size)
  1  failed: no writable default/fallback backend, the upload failed, or the Kubernetes API failed
  2  usage error (bad flags)
  4  the file does not exist
  5  conflict: an ArtifactMapping of that name maps another digest (left unchanged)

The digest is printed on stdout; progress (on a terminal) and a summary go to stderr.
S3 credentials come from the Secret the chosen StorageBackend references.";

/// Digest algorithms `put` can use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AlgorithmArg {
    Sha256,
    Sha512,
}

impl From<AlgorithmArg> for Algorithm {
    fn from(a: AlgorithmArg) -> Algorithm {
        match a {
            AlgorithmArg::Sha256 => Algorithm::Sha256,
            AlgorithmArg::Sha512 => Algorithm::Sha512,
        }
    }
}

/// Flags of `castellan put`.
#[derive(Debug, clap::Args)]
pub struct PutArgs {
    /// The file to upload.
    pub file: PathBuf,
    /// Digest algorithm.
    #[arg(long, value_enum, default_value = "sha256")]
    pub algorithm: AlgorithmArg,
    #[command(flatten)]
    pub cluster: ClusterArgs,
}

/// The exit code for a failed put.
pub fn exit_code(err: &TransferError) -> i32 {
    match err {
        TransferError::FileNotFound { .. } => EXIT_NOT_FOUND,
        TransferError::MappingConflict { .. } => EXIT_CONFLICT,
        _ => EXIT_FAILED,
    }
}

/// The stderr summary of a successful put.
pub fn summary(o: &PutOutcome) -> String {
    let stored = if o.object_existed {
        format!(
            "already present on backend {} ({}), nothing uploaded",
            o.backend,
            human_bytes(o.size)
        )
    } else {
        let parts = match o.parts {
            Some(n) => format!(", {n} parts"),
            None => String::new(),
        };
        format!(
            "uploaded to backend {}: {}{parts}",
            o.backend,
            rate(o.uploaded_bytes, o.upload_elapsed)
        )
    };
    let mapping = if !o.mapping_existed {
        format!("mapping {} created", o.mapping)
    } else if o.declared_backend == o.backend {
        format!("mapping {} already existed", o.mapping)
    } else {
        format!(
            "mapping {} already existed (declared on {}, left unchanged)",
            o.mapping, o.declared_backend
        )
    };
    format!("{}: {stored}; key {}; {mapping}", o.digest, o.key)
}

/// Runs the subcommand; returns the process exit code.
pub async fn run(args: PutArgs) -> i32 {
    let (client, namespace) = match connect(&args.cluster).await {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return EXIT_FAILED;
        }
    };
    let opts = PutOptions {
        algorithm: args.algorithm.into(),
        progress: bars_if_terminal(),
        ambient: args.cluster.ambient(),
    };
    match put_file(&client, &namespace, &args.file, &opts).await {
        Ok(outcome) => {
            println!("{}", outcome.digest);
            eprintln!("{}", summary(&outcome));
            EXIT_OK
        }
        Err(e) => {
            eprintln!("error: {e}");
            exit_code(&e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use castellan::digest::Digest;
    use std::time::Duration;

    fn outcome() -> PutOutcome {
        let digest = Digest::of_bytes(Algorithm::Sha256, b"x");
        PutOutcome {
            mapping: digest.object_name(),
            digest,
            size: 12 << 20,
            backend: "a".into(),
            key: "cas/k".into(),
            mapping_existed: false,
            declared_backend: "a".into(),
            object_existed: false,
            parts: Some(3),
            uploaded_bytes: 12 << 20,
            upload_elapsed: Duration::from_secs(1),
            elapsed: Duration::from_secs(2),
        }
    }

    #[test]
    fn the_summary_says_what_happened() {
        let fresh = outcome();
        let mut again = outcome();
        again.object_existed = true;
        again.mapping_existed = true;
        let mut elsewhere = outcome();
        elsewhere.mapping_existed = true;
        elsewhere.declared_backend = "old".into();
        let cases = [
            (
                "a fresh upload gives rate, parts and a new mapping",
                fresh,
                vec![
                    "uploaded to backend a: 12.0 MiB in 1.00 s (12.0 MiB/s), 3 parts",
                    "mapping sha256-",
                ],
            ),
            (
                "a repeated put uploads nothing",
                again,
                vec![
                    "already present on backend a (12.0 MiB), nothing uploaded",
                    "already existed",
                ],
            ),
            (
                "an existing mapping keeps its provenance",
                elsewhere,
                vec!["declared on old, left unchanged"],
            ),
        ];
        for (name, o, parts) in cases {
            let text = summary(&o);
            for p in parts {
                assert!(text.contains(p), "{name}: {text:?} lacks {p:?}");
            }
        }
    }

    #[test]
    fn exit_codes_are_distinct_per_failure() {
        let d = Digest::of_bytes(Algorithm::Sha256, b"x");
        let cases = [
            (
                "a missing file exits 4",
                TransferError::FileNotFound { path: "f".into() },
                4,
            ),
            (
                "a conflicting mapping exits 5",
                TransferError::MappingConflict {
                    name: "n".into(),
                    existing: "sha256:00".into(),
                    digest: d,
                },
                5,
            ),
            (
                "no writable backend exits 1",
                TransferError::NoWritableBackend {
                    namespace: "org".into(),
                    detail: String::new(),
                },
                1,
            ),
        ];
        for (name, err, code) in cases {
            assert_eq!(exit_code(&err), code, "{name}");
        }
        let all = [
            EXIT_OK,
            EXIT_FAILED,
            EXIT_USAGE,
            EXIT_NOT_FOUND,
            EXIT_CONFLICT,
        ];
        let unique: std::collections::HashSet<_> = all.iter().collect();
        assert_eq!(unique.len(), all.len());
    }
}
