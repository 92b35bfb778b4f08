//! `castellan verify`: checks one object in a bucket against a digest and prints the outcome,
//! the bytes received and the throughput.
//!
//! Owns: the subcommand's flags, its output format and its exit codes ([`EXIT_CODES_HELP`]).
//! The verification itself is [`castellan::storage::verify::read_verified`].

use std::time::Duration;

use castellan::digest::Digest;
use castellan::storage::verify::{read_verified, ReadOptions, Sink, Verdict, Verification};
use castellan::storage::{layout, S3Config, S3Store, StaticCredentials};

/// The object's bytes hash to the digest (and have the expected size).
pub const EXIT_VERIFIED: i32 = 0;
/// The object exists but its content differs: digest or size mismatch.
pub const EXIT_MISMATCH: i32 = 3;
/// No object under the key.
pub const EXIT_NOT_FOUND: i32 = 4;
/// The backend failed: credentials, bucket, endpoint, TLS, throttling, server error.
pub const EXIT_BACKEND_ERROR: i32 = 5;
/// The transfer broke off (truncated body or I/O error): nothing is known about the content.
pub const EXIT_INTERRUPTED: i32 = 6;

/// Shown under `castellan verify --help`.
pub const EXIT_CODES_HELP: &str = "\
Exit codes:
  0  verified: the bytes hash to the digest
  2  usage error (bad flags or digest)
  3  mismatch: the object's digest or size differs
  4  not found: no object under the key
  5  backend error: credentials, bucket, endpoint, TLS, throttling or server error
  6  interrupted: the body was cut off or failed mid-stream (content unknown)

Credentials come from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN when set,
otherwise from the AWS SDK's default chain (profile, web identity, instance metadata).";

/// Flags of `castellan verify`.
#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    /// S3 endpoint URL (e.g. http://127.0.0.1:3900); AWS when absent.
    #[arg(long)]
    pub endpoint: Option<String>,
    /// Region used for signing.
    #[arg(long, default_value = "us-east-1")]
    pub region: String,
    /// Use path-style addressing (http://host/bucket/key); most non-AWS servers need it.
    #[arg(long)]
    pub path_style: bool,
    /// Bucket holding the object.
    #[arg(long)]
    pub bucket: String,
    /// Object key; default: derived from --digest under --key-prefix.
    #[arg(long, conflicts_with = "key_prefix")]
    pub key: Option<String>,
    /// Key prefix of the content-addressed layout (<prefix>/<algo>/<h[0:2]>/<h[2:4]>/<hex>).
    #[arg(long)]
    pub key_prefix: Option<String>,
    /// Expected digest, sha256:<64 hex> or sha512:<128 hex>.
    #[arg(long)]
    pub digest: Digest,
    /// Expected size in bytes, checked before downloading.
    #[arg(long)]
    pub size: Option<u64>,
    /// Timeout for each request until its response headers arrive.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    pub timeout: Duration,
}

fn credentials_from_env() -> Option<StaticCredentials> {
    let id = std::env::var("AWS_ACCESS_KEY_ID")
        .ok()
        .filter(|s| !s.is_empty())?;
    let secret = std::env::var("AWS_SECRET_ACCESS_KEY")
        .ok()
        .filter(|s| !s.is_empty())?;
    Some(StaticCredentials {
        access_key_id: id,
        secret_access_key: secret,
        session_token: std::env::var("AWS_SESSION_TOKEN")
            .ok()
            .filter(|s| !s.is_empty()),
    })
}

/// The key to verify: `--key`, or the layout key of the digest under `--key-prefix`.
pub fn object_key(args: &VerifyArgs) -> Result<String, String> {
    match (&args.key, &args.key_prefix) {
        (Some(k), _) => Ok(k.clone()),
        (None, prefix) => {
            let prefix = prefix.as_deref().unwrap_or("");
            layout::validate_prefix(prefix).map_err(|e| e.to_string())?;
            Ok(layout::key_for(prefix, &args.digest))
        }
    }
}

/// Exit code for a verdict.
pub fn exit_code(verdict: &Verdict) -> i32 {
    match verdict {
        Verdict::Verified { .. } => EXIT_VERIFIED,
        Verdict::DigestMismatch { .. } | Verdict::SizeMismatch { .. } => EXIT_MISMATCH,
        Verdict::Missing => EXIT_NOT_FOUND,
        Verdict::Failed(_) => EXIT_BACKEND_ERROR,
        Verdict::Truncated { .. } | Verdict::Interrupted(_) => EXIT_INTERRUPTED,
    }
}

/// Runs the subcommand, printing to stdout/stderr; returns the process exit code.
pub async fn run(args: VerifyArgs) -> i32 {
    let key = match object_key(&args) {
        Ok(k) => k,
        Err(e) => {
            eprintln!("error: {e}");
            return 2;
        }
    };
    let mut config = S3Config::new(args.bucket.clone());
    config.region = args.region.clone();
    config.endpoint = args.endpoint.clone();
    config.force_path_style = args.path_style;
    config.key_prefix = args.key_prefix.clone().unwrap_or_default();
    config.credentials = credentials_from_env();
    config.operation_timeout = Some(args.timeout);
    let store = match S3Store::new(config).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return EXIT_BACKEND_ERROR;
        }
    };
    println!("object:     s3://{}/{}", args.bucket, key);
    println!("digest:     {}", args.digest);
    let read = read_verified(
        &store,
        &key,
        &args.digest,
        args.size,
        Sink::Discard,
        &ReadOptions::default(),
    )
    .await
    .expect("discarding bytes cannot fail");
    print_verification(&read);
    exit_code(&read.verdict)
}

fn print_verification(read: &Verification) {
    match &read.verdict {
        Verdict::Missing => {
            println!("outcome:    NotFound");
            return;
        }
        Verdict::Failed(e) => {
            println!("outcome:    BackendError");
            let class = if e.is_terminal() {
                "terminal"
            } else {
                "transient"
            };
            println!("reason:     {} ({class})", e.kind());
            println!("error:      {}", e.message());
            return;
        }
        verdict => println!("outcome:    {}", verdict.label()),
    }
    match &read.verdict {
        Verdict::DigestMismatch { actual } => println!("actual:     {actual}"),
        Verdict::SizeMismatch { expected, actual } => {
            println!("size:       expected {expected}, actual {actual}")
        }
        Verdict::Truncated { expected, received } => {
            println!("size:       expected {expected}, received {received}")
        }
        Verdict::Interrupted(e) => println!("error:      {e}"),
        _ => {}
    }
    println!("bytes:      {}", read.bytes);
    println!("elapsed:    {:.3} s", read.elapsed.as_secs_f64());
    println!("throughput: {:.1} MiB/s", read.mib_per_sec());
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Harness {
        #[command(flatten)]
        args: VerifyArgs,
    }

    const D: &str = "sha256:ab12cd34ef567890ab12cd34ef567890ab12cd34ef567890ab12cd34ef567890";

    #[test]
    fn the_key_is_explicit_or_derived_from_the_digest() {
        let h = Harness::parse_from(["t", "--bucket", "b", "--digest", D, "--key-prefix", "cas"]);
        assert_eq!(
            object_key(&h.args).unwrap(),
            format!("cas/sha256/ab/12/{}", &D[7..])
        );
        let h = Harness::parse_from(["t", "--bucket", "b", "--digest", D, "--key", "x/y"]);
        assert_eq!(object_key(&h.args).unwrap(), "x/y");
        let h = Harness::parse_from(["t", "--bucket", "b", "--digest", D]);
        assert_eq!(
            object_key(&h.args).unwrap(),
            format!("sha256/ab/12/{}", &D[7..])
        );
        let h = Harness::parse_from(["t", "--bucket", "b", "--digest", D, "--key-prefix", "/abs"]);
        assert!(object_key(&h.args).is_err(), "an invalid prefix is refused");
    }

    #[test]
    fn a_malformed_digest_is_a_usage_error() {
        assert!(Harness::try_parse_from(["t", "--bucket", "b", "--digest", "sha256:XYZ"]).is_err());
    }

    #[test]
    fn exit_codes_are_distinct_per_outcome() {
        let d: Digest = D.parse().unwrap();
        let cut = || {
            castellan::storage::StorageError::new(
                castellan::storage::ErrorKind::BodyInterrupted,
                "cut",
            )
        };
        let refused = castellan::storage::StorageError::new(
            castellan::api::reasons::BackendReason::InvalidAccessKeyId,
            "HTTP 403",
        );
        let cases: Vec<(&str, Verdict, i32)> = vec![
            ("verified exits 0", Verdict::Verified { bytes: 1 }, 0),
            (
                "a digest mismatch exits 3",
                Verdict::DigestMismatch { actual: d },
                3,
            ),
            (
                "a size mismatch exits 3",
                Verdict::SizeMismatch {
                    expected: 1,
                    actual: 2,
                },
                3,
            ),
            (
                "a truncated body exits 6",
                Verdict::Truncated {
                    expected: 2,
                    received: 1,
                },
                6,
            ),
            ("an I/O failure exits 6", Verdict::Interrupted(cut()), 6),
            ("no object exits 4", Verdict::Missing, 4),
            ("a refused request exits 5", Verdict::Failed(refused), 5),
        ];
        for (name, outcome, code) in cases {
            assert_eq!(exit_code(&outcome), code, "{name}");
        }
    }
}
