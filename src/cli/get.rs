//! `castellan get DIGEST`: downloads a mapped blob, verified while streaming, falling back across
//! backends. Prints the path written on stdout (unless writing to stdout) and a one-line summary
//! on stderr, with a line per backend that failed before.
//!
//! Owns: the subcommand's flags, output and exit codes ([`EXIT_CODES_HELP`]). The transfer is
//! [`castellan::transfer::get_to_path`].

use std::path::{Path, PathBuf};

use super::transfer::{bars_if_terminal, connect, rate, ClusterArgs};
use castellan::digest::Digest;
use castellan::transfer::{get_to_path, FoundBy, GetOptions, GetOutcome, TransferError};

/// Verified and written.
pub const EXIT_OK: i32 = 0;
/// Failed: no backend served verified bytes (failures, or a mix), or the API or a local file
/// failed.
pub const EXIT_FAILED: i32 = 1;
/// Bad flags or digest (clap's own exit code).
#[allow(dead_code)] // clap itself exits with it; named for the help text and the tests
pub const EXIT_USAGE: i32 = 2;
/// Every backend that answered served other bytes (digest or size mismatch).
pub const EXIT_MISMATCH: i32 = 3;
/// No ArtifactMapping for the digest in the namespace.
pub const EXIT_NOT_FOUND: i32 = 4;
/// Interrupted (Ctrl-C, SIGTERM): the partial download was removed.
pub const EXIT_INTERRUPTED: i32 = 130;

/// Shown under `castellan get --help`.
pub const EXIT_CODES_HELP: &str = "\
Exit codes:
  0  verified and written
  1  failed: no backend served verified bytes (each one tried is listed with its reason),
     or the Kubernetes API or the local file system failed
  2  usage error (bad flags or digest)
  3  digest mismatch everywhere: every backend that answered holds other bytes
  4  not found: no ArtifactMapping for the digest in the namespace
  130  interrupted (Ctrl-C, SIGTERM): the partial download was removed

Backends are tried in order: the mapping's status.backend, its declared backend, the other
Ready backends in the operator's candidate order, then backends that are not Ready;
Quarantined backends never. Bytes go to a temporary file next to the destination that is
renamed only once they verified: the destination never holds unverified bytes, and an existing
destination is untouched when the get fails. With -o -, the verified file is copied to stdout.
S3 credentials come from the Secrets the StorageBackends reference.";

/// Flags of `castellan get`.
#[derive(Debug, clap::Args)]
pub struct GetArgs {
    /// The digest to download, sha256:<64 hex> or sha512:<128 hex>.
    pub digest: Digest,
    /// Where to write: a file, an existing directory (the file is named <algo>-<hex> in it),
    /// or - for stdout. Default: <algo>-<hex> in the current directory.
    #[arg(long, short = 'o', value_name = "PATH")]
    pub output: Option<PathBuf>,
    #[command(flatten)]
    pub cluster: ClusterArgs,
}

/// The exit code for a failed get.
pub fn exit_code(err: &TransferError) -> i32 {
    match err {
        TransferError::MappingNotFound { .. } => EXIT_NOT_FOUND,
        e if e.is_mismatch_everywhere() => EXIT_MISMATCH,
        _ => EXIT_FAILED,
    }
}

/// The stderr lines of a successful get: one per backend that failed first, then the summary.
pub fn summary(o: &GetOutcome, shown_path: &str) -> Vec<String> {
    let mut lines: Vec<String> = o
        .attempts
        .iter()
        .filter(|a| !a.result.is_verified())
        .map(|a| format!("tried {a}"))
        .collect();
    let found = match o.found_by {
        FoundBy::Name => "",
        FoundBy::DigestList => ", found by spec.digest",
    };
    lines.push(format!(
        "{} verified from backend {}: {} -> {shown_path} (mapping {}{found})",
        o.digest,
        o.backend,
        rate(o.bytes, o.download_elapsed),
        o.mapping
    ));
    lines
}

/// Runs the subcommand; returns the process exit code.
pub async fn run(args: GetArgs) -> i32 {
    let (client, namespace) = match connect(&args.cluster).await {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return EXIT_FAILED;
        }
    };
    let opts = GetOptions {
        progress: bars_if_terminal(),
        ambient: args.cluster.ambient(),
    };
    let to_stdout = args.output.as_deref() == Some(Path::new("-"));
    // For stdout, stage the verified file in a private directory, then copy it out: nothing
    // reaches stdout before the whole blob verified.
    let staging = match to_stdout.then(tempfile::tempdir).transpose() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: creating a staging directory: {e}");
            return EXIT_FAILED;
        }
    };
    let dest = match (&staging, args.output) {
        (Some(dir), _) => dir.path().join(args.digest.object_name()),
        (None, Some(path)) => path,
        (None, None) => PathBuf::from(args.digest.object_name()),
    };
    // On a signal the download is dropped, which removes its temporary file (and the staging
    // directory), instead of the process dying with a partial file left behind.
    let got = tokio::select! {
        got = get_to_path(&client, &namespace, &args.digest, &dest, &opts) => got,
        () = super::run::shutdown_signal() => {
            eprintln!("interrupted: the partial download was removed");
            return EXIT_INTERRUPTED;
        }
    };
    let outcome = match got {
        Ok(o) => o,
        Err(e) => {
            eprintln!("error: {e}");
            return exit_code(&e);
        }
    };
    let shown = if to_stdout {
        "stdout".to_owned()
    } else {
        outcome.path.display().to_string()
    };
    if to_stdout {
        let copied = std::fs::File::open(&outcome.path)
            .and_then(|mut f| std::io::copy(&mut f, &mut std::io::stdout().lock()));
        if let Err(e) = copied {
            eprintln!("error: writing to stdout: {e}");
            return EXIT_FAILED;
        }
    } else {
        println!("{shown}");
    }
    for line in summary(&outcome, &shown) {
        eprintln!("{line}");
    }
    EXIT_OK
}

#[cfg(test)]
mod tests {
    use super::*;
    use castellan::digest::Algorithm;
    use castellan::storage::Verdict;
    use castellan::transfer::{Attempt, AttemptResult};
    use clap::Parser;
    use std::time::Duration;

    #[derive(Parser)]
    struct Harness {
        #[command(flatten)]
        args: GetArgs,
    }

    fn read(verdict: Verdict) -> AttemptResult {
        AttemptResult::Read {
            key: "k".into(),
            verdict,
        }
    }

    fn d(data: &[u8]) -> Digest {
        Digest::of_bytes(Algorithm::Sha256, data)
    }

    #[test]
    fn a_malformed_digest_is_a_usage_error() {
        let err = Harness::try_parse_from(["t", "sha256:XYZ"])
            .err()
            .expect("refused");
        assert_eq!(err.exit_code(), EXIT_USAGE);
        let ok = Harness::try_parse_from(["t", &d(b"x").to_string(), "-o", "-", "-n", "org"]);
        assert!(ok.is_ok());
    }

    #[test]
    fn exit_codes_are_distinct_per_failure() {
        let attempt = |result| Attempt {
            backend: "b".into(),
            result,
        };
        let nvr = |results: Vec<AttemptResult>| TransferError::NoVerifiedReplica {
            digest: d(b"x"),
            mapping: "m".into(),
            attempts: results.into_iter().map(attempt).collect(),
        };
        let cases = [
            (
                "no mapping exits 4",
                TransferError::MappingNotFound {
                    digest: d(b"x"),
                    namespace: "org".into(),
                    name: "n".into(),
                },
                4,
            ),
            (
                "mismatches everywhere exit 3",
                nvr(vec![read(Verdict::DigestMismatch { actual: d(b"y") })]),
                3,
            ),
            (
                "a failed backend among mismatches exits 1",
                nvr(vec![
                    read(Verdict::DigestMismatch { actual: d(b"y") }),
                    read(Verdict::Truncated {
                        expected: 2,
                        received: 1,
                    }),
                ]),
                1,
            ),
            ("nothing to try exits 1", nvr(vec![]), 1),
        ];
        for (name, err, code) in cases {
            assert_eq!(exit_code(&err), code, "{name}");
        }
        let all = [
            EXIT_OK,
            EXIT_FAILED,
            EXIT_USAGE,
            EXIT_MISMATCH,
            EXIT_NOT_FOUND,
        ];
        let unique: std::collections::HashSet<_> = all.iter().collect();
        assert_eq!(unique.len(), all.len());
    }

    #[test]
    fn the_summary_lists_failed_backends_then_the_result() {
        let digest = d(b"x");
        let o = GetOutcome {
            digest: digest.clone(),
            mapping: "m".into(),
            found_by: FoundBy::DigestList,
            backend: "b".into(),
            key: "k".into(),
            path: "out".into(),
            bytes: 1 << 20,
            download_elapsed: Duration::from_secs(1),
            elapsed: Duration::from_secs(1),
            attempts: vec![
                Attempt {
                    backend: "a".into(),
                    result: AttemptResult::Unavailable {
                        reason: "InvalidAccessKeyId",
                        message: "HTTP 403".into(),
                    },
                },
                Attempt {
                    backend: "b".into(),
                    result: read(Verdict::Verified { bytes: 1 << 20 }),
                },
            ],
        };
        assert_eq!(
            summary(&o, "out"),
            vec![
                "tried a: InvalidAccessKeyId (HTTP 403)".to_owned(),
                format!(
                    "{digest} verified from backend b: 1.0 MiB in 1.00 s (1.0 MiB/s) -> out (mapping m, found by spec.digest)"
                ),
            ]
        );
    }
}
