//! `castellan verify`: checks one object in a bucket against a digest and prints the outcome,
//! the bytes received and the throughput; or, with `--backend`, every object of a backend and
//! every mapping on it (the scrub pass, run by hand), as a table or JSON.
//!
//! Owns: the subcommand's flags, its output format and its exit codes ([`EXIT_CODES_HELP`]).
//! The verification itself is [`castellan::storage::verify::read_verified`]; the backend pass is
//! [`castellan::transfer::scan`].

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

use super::transfer::{connect, human_bytes, rate, ClusterArgs};
use castellan::digest::Digest;
use castellan::storage::verify::{read_verified, ReadOptions, Sink, Verdict, Verification};
use castellan::storage::{layout, S3Config, S3Store, StaticCredentials};
use castellan::transfer::scan::{self, Outcome, ScanError, ScanOptions, ScanProgress, ScanReport};

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

/// `--backend`: the Kubernetes API failed (reading the backend or the mappings, or recording).
pub const EXIT_API_ERROR: i32 = 1;

/// Shown under `castellan verify --help`.
pub const EXIT_CODES_HELP: &str = "\
Exit codes (one object):
  0  verified: the bytes hash to the digest
  2  usage error (bad flags or digest)
  3  mismatch: the object's digest or size differs
  4  not found: no object under the key
  5  backend error: credentials, bucket, endpoint, TLS, throttling or server error
  6  interrupted: the body was cut off or failed mid-stream (content unknown)

Exit codes (--backend NAME):
  0  all good: every object in the layout verified, every mapping on the backend has its object
  1  the Kubernetes API failed (reading the backend or its mappings, or recording events)
  2  usage error (bad flags)
  3  findings: an object is corrupt, has another size than its mapping says, or is missing
     (wins over reads that did not finish)
  4  not found: no StorageBackend NAME in the namespace
  5  backend error: its client could not be built (Secret, spec), the listing failed, or
     reads failed or were cut off (the pass is incomplete)
Objects outside the key layout are counted and listed, never verified, and are not findings.
Without --record nothing is written anywhere. With --record: a Warning event (DigestMismatch,
SizeMismatch, ObjectMissing) on every affected mapping, and one summary event on the backend:
ScrubClean (Normal), ScrubFindings or ScrubIncomplete (Warning).

Credentials (one object) come from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN
when set, otherwise from the AWS SDK's default chain (profile, web identity, instance metadata).
With --backend they come from the backend's Secret.";

/// Flags of `castellan verify`: one object (`--bucket`, `--digest`, ...) or one backend
/// (`--backend`, see [`ScanArgs`]).
#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    /// S3 endpoint URL (e.g. http://127.0.0.1:3900); AWS when absent.
    #[arg(long, conflicts_with = "backend")]
    pub endpoint: Option<String>,
    /// Region used for signing.
    #[arg(long, default_value = "us-east-1", conflicts_with = "backend")]
    pub region: String,
    /// Use path-style addressing (http://host/bucket/key); most non-AWS servers need it.
    #[arg(long, conflicts_with = "backend")]
    pub path_style: bool,
    /// Bucket holding the object.
    #[arg(long, required_unless_present = "backend", conflicts_with = "backend")]
    pub bucket: Option<String>,
    /// Object key; default: derived from --digest under --key-prefix.
    #[arg(long, conflicts_with_all = ["key_prefix", "backend"])]
    pub key: Option<String>,
    /// Key prefix of the content-addressed layout (<prefix>/<algo>/<h[0:2]>/<h[2:4]>/<hex>).
    #[arg(long, conflicts_with = "backend")]
    pub key_prefix: Option<String>,
    /// Expected digest, sha256:<64 hex> or sha512:<128 hex>.
    #[arg(long, required_unless_present = "backend", conflicts_with = "backend")]
    pub digest: Option<Digest>,
    /// Expected size in bytes, checked before downloading.
    #[arg(long, conflicts_with = "backend")]
    pub size: Option<u64>,
    /// Timeout for each request until its response headers arrive.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration, conflicts_with = "backend")]
    pub timeout: Duration,
    /// Last: its help heading would otherwise apply to the flags that follow.
    #[command(flatten)]
    pub scan: ScanArgs,
}

/// The flags of the single-object form: the `--backend` flags conflict with each of them
/// (clap waives a `requires` whose target conflicts with a present flag).
const SINGLE_OBJECT_FLAGS: [&str; 9] = [
    "endpoint",
    "region",
    "path_style",
    "bucket",
    "key",
    "key_prefix",
    "digest",
    "size",
    "timeout",
];

/// How `--backend` prints its report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    /// A summary table, the findings and the objects outside the layout.
    Table,
    /// The report as one JSON document.
    Json,
}

/// Flags of `castellan verify --backend`.
#[derive(Debug, clap::Args)]
#[command(next_help_heading = "Whole backend (--backend)")]
pub struct ScanArgs {
    /// Verify every object of this StorageBackend and every mapping on it, instead of one object.
    #[arg(long, value_name = "NAME")]
    pub backend: Option<String>,
    /// Namespace of the backend and its mappings (default: the kubeconfig context's namespace,
    /// else `default`).
    #[arg(long, short = 'n', requires = "backend", conflicts_with_all = SINGLE_OBJECT_FLAGS)]
    pub namespace: Option<String>,
    /// Kubeconfig file to use instead of $KUBECONFIG / ~/.kube/config.
    #[arg(long, value_name = "FILE", requires = "backend", conflicts_with_all = SINGLE_OBJECT_FLAGS)]
    pub kubeconfig: Option<PathBuf>,
    /// Sign requests to a backend that names no credentialsSecretRef with your own AWS
    /// credentials.
    #[arg(long, requires = "backend", conflicts_with_all = SINGLE_OBJECT_FLAGS)]
    pub use_local_credentials: bool,
    /// Objects read at once.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..), requires = "backend", conflicts_with_all = SINGLE_OBJECT_FLAGS)]
    pub concurrency: u16,
    /// Byte rate of the whole pass, in bytes per second; 0 is unlimited.
    #[arg(long, default_value_t = 0, requires = "backend", conflicts_with_all = SINGLE_OBJECT_FLAGS)]
    pub bytes_per_second: u64,
    /// Report format.
    #[arg(long, short = 'o', value_enum, default_value_t = OutputFormat::Table, requires = "backend", conflicts_with_all = SINGLE_OBJECT_FLAGS)]
    pub output: OutputFormat,
    /// Publish the findings as events: a Warning on each affected mapping, a summary on the
    /// backend. Without it nothing is written anywhere.
    #[arg(long, requires = "backend", conflicts_with_all = SINGLE_OBJECT_FLAGS)]
    pub record: bool,
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
    match (&args.key, &args.key_prefix, &args.digest) {
        (Some(k), _, _) => Ok(k.clone()),
        (None, _, None) => Err("--digest is required".to_owned()),
        (None, prefix, Some(digest)) => {
            let prefix = prefix.as_deref().unwrap_or("");
            layout::validate_prefix(prefix).map_err(|e| e.to_string())?;
            Ok(layout::key_for(prefix, digest))
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
    if let Some(backend) = args.scan.backend.clone() {
        return run_scan(&args.scan, &backend).await;
    }
    // clap requires both unless --backend is given.
    let (Some(bucket), Some(digest)) = (args.bucket.clone(), args.digest.clone()) else {
        eprintln!("error: --bucket and --digest are required without --backend");
        return 2;
    };
    let key = match object_key(&args) {
        Ok(k) => k,
        Err(e) => {
            eprintln!("error: {e}");
            return 2;
        }
    };
    let mut config = S3Config::new(bucket.clone());
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
    println!("object:     s3://{bucket}/{key}");
    println!("digest:     {digest}");
    let read = read_verified(
        &store,
        &key,
        &digest,
        args.size,
        Sink::Discard,
        &ReadOptions::default(),
    )
    .await
    .expect("discarding bytes cannot fail");
    print_verification(&read);
    exit_code(&read.verdict)
}

/// Exit code of a backend pass that ran.
pub fn scan_exit_code(outcome: Outcome) -> i32 {
    match outcome {
        Outcome::Clean => EXIT_VERIFIED,
        Outcome::Findings => EXIT_MISMATCH,
        Outcome::Incomplete => EXIT_BACKEND_ERROR,
    }
}

/// Exit code of a backend pass that could not run.
pub fn scan_error_exit_code(error: &ScanError) -> i32 {
    match error {
        ScanError::Kube { .. } => EXIT_API_ERROR,
        ScanError::BackendNotFound { .. } => EXIT_NOT_FOUND,
        ScanError::Resolve { .. } | ScanError::List { .. } => EXIT_BACKEND_ERROR,
    }
}

/// `castellan verify --backend NAME`: the pass, its report, and the events with `--record`.
async fn run_scan(args: &ScanArgs, backend: &str) -> i32 {
    let cluster = ClusterArgs {
        namespace: args.namespace.clone(),
        kubeconfig: args.kubeconfig.clone(),
        use_local_credentials: args.use_local_credentials,
    };
    let (client, namespace) = match connect(&cluster).await {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return EXIT_API_ERROR;
        }
    };
    let bar = ScanBar::if_terminal();
    let opts = ScanOptions {
        concurrency: usize::from(args.concurrency),
        bytes_per_second: args.bytes_per_second,
        ambient: cluster.ambient(),
        progress: bar.clone().map(|b| b as Arc<dyn ScanProgress>),
    };
    let (report, observed) = match scan::scan_backend(&client, &namespace, backend, &opts).await {
        Ok(done) => done,
        Err(e) => {
            if let Some(bar) = bar {
                bar.finished();
            }
            eprintln!("error: {e}");
            return scan_error_exit_code(&e);
        }
    };
    match args.output {
        OutputFormat::Json => println!(
            "{}",
            serde_json::to_string_pretty(&report).expect("a report serializes")
        ),
        OutputFormat::Table => print!("{}", report_table(&report)),
    }
    if args.record {
        let failures = scan::record(&client, &instance(), &report, &observed).await;
        if !failures.is_empty() {
            for f in &failures {
                eprintln!("error: recording {f}");
            }
            return EXIT_API_ERROR;
        }
    }
    scan_exit_code(report.outcome)
}

/// Who recorded the events: `castellan-verify@<hostname>`.
fn instance() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_default();
    let mut id = format!("castellan-verify@{host}");
    id.truncate(128);
    id
}

/// The table `--output table` prints: a summary, the findings, the objects outside the layout.
pub fn report_table(r: &ScanReport) -> String {
    use std::fmt::Write;
    let c = &r.counts;
    let mut out = String::new();
    let prefix = if r.prefix.is_empty() { "" } else { "/" };
    let _ = writeln!(
        out,
        "backend {} (namespace {}): s3://{}{prefix}{}",
        r.backend, r.namespace, r.bucket, r.prefix
    );
    let _ = writeln!(out, "{:<16} {:>8}", "RESULT", "OBJECTS");
    for (label, n) in [
        ("listed", c.listed),
        ("verified", c.verified),
        ("corrupt", c.corrupt),
        ("size mismatch", c.size_mismatch),
        ("missing", c.missing),
        ("interrupted", c.interrupted),
        ("failed", c.failed),
        ("outside layout", c.outside_layout),
        ("mappings", c.mappings),
    ] {
        let _ = writeln!(out, "{label:<16} {n:>8}");
    }
    let _ = writeln!(
        out,
        "outcome: {:?}; read {}",
        r.outcome,
        rate(r.bytes, Duration::from_secs_f64(r.elapsed_seconds))
    );
    if !r.findings.is_empty() {
        let _ = writeln!(
            out,
            "\nFINDINGS\n{:<16} {:<40} {:<24} DETAIL",
            "VERDICT", "KEY", "MAPPINGS"
        );
        for f in &r.findings {
            let mappings = if f.mappings.is_empty() {
                "-".to_owned()
            } else {
                f.mappings.join(",")
            };
            let _ = writeln!(
                out,
                "{:<16} {:<40} {:<24} {}",
                f.verdict, f.key, mappings, f.detail
            );
        }
    }
    if !r.outside_layout.is_empty() {
        let _ = writeln!(out, "\nOUTSIDE THE LAYOUT (not verified)");
        for o in &r.outside_layout {
            let _ = writeln!(out, "{:<56} {}", o.key, human_bytes(o.size));
        }
    }
    out
}

/// A progress bar over the bytes of a pass, on stderr when it is a terminal.
struct ScanBar {
    bar: ProgressBar,
    objects: AtomicUsize,
    done: AtomicUsize,
}

impl ScanBar {
    fn if_terminal() -> Option<Arc<ScanBar>> {
        let style = ProgressStyle::with_template(
            "{msg:24} [{bar:30}] {binary_bytes}/{binary_total_bytes} {binary_bytes_per_sec} {eta}",
        )
        .expect("valid template")
        .progress_chars("=> ");
        std::io::stderr().is_terminal().then(|| {
            Arc::new(ScanBar {
                bar: ProgressBar::new(0).with_style(style),
                objects: AtomicUsize::new(0),
                done: AtomicUsize::new(0),
            })
        })
    }
}

impl ScanProgress for ScanBar {
    fn planned(&self, objects: usize, bytes: u64) {
        self.objects.store(objects, Ordering::Relaxed);
        self.bar.set_length(bytes);
        self.bar.set_message(format!("verified 0/{objects}"));
    }
    fn advance(&self, bytes: u64) {
        self.bar.inc(bytes);
    }
    fn object_done(&self) {
        let done = self.done.fetch_add(1, Ordering::Relaxed) + 1;
        let objects = self.objects.load(Ordering::Relaxed);
        self.bar.set_message(format!("verified {done}/{objects}"));
    }
    fn finished(&self) {
        self.bar.finish_and_clear();
    }
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

    #[test]
    fn the_backend_form_excludes_the_single_object_flags() {
        let cases: [(&str, &[&str], bool); 8] = [
            ("--backend alone", &["t", "--backend", "a"], true),
            (
                "--backend with its own flags",
                &[
                    "t",
                    "--backend",
                    "a",
                    "-n",
                    "x",
                    "--concurrency",
                    "2",
                    "--bytes-per-second",
                    "10",
                    "-o",
                    "json",
                    "--record",
                ],
                true,
            ),
            (
                "the single-object form",
                &["t", "--bucket", "b", "--digest", D],
                true,
            ),
            (
                "--backend with --bucket",
                &["t", "--backend", "a", "--bucket", "b"],
                false,
            ),
            (
                "--backend with --digest",
                &["t", "--backend", "a", "--digest", D],
                false,
            ),
            (
                "--record without --backend",
                &["t", "--bucket", "b", "--digest", D, "--record"],
                false,
            ),
            (
                "--concurrency 0",
                &["t", "--backend", "a", "--concurrency", "0"],
                false,
            ),
            ("--bucket without --digest", &["t", "--bucket", "b"], false),
        ];
        for (name, argv, ok) in cases {
            assert_eq!(Harness::try_parse_from(argv).is_ok(), ok, "{name}");
        }
        let h = Harness::parse_from(["t", "--backend", "a"]);
        let scan = &h.args.scan;
        assert_eq!(
            (
                scan.concurrency,
                scan.bytes_per_second,
                scan.output,
                scan.record
            ),
            (8, 0, OutputFormat::Table, false),
            "defaults: 8 at once, unlimited, a table, nothing recorded"
        );
    }

    #[test]
    fn a_backend_pass_exits_by_its_outcome() {
        let cases = [
            ("a clean pass exits 0", Outcome::Clean, 0),
            ("findings exit 3", Outcome::Findings, 3),
            ("an incomplete pass exits 5", Outcome::Incomplete, 5),
        ];
        for (name, outcome, code) in cases {
            assert_eq!(scan_exit_code(outcome), code, "{name}");
        }
        let not_found = ScanError::BackendNotFound {
            name: "a".into(),
            namespace: "n".into(),
        };
        let resolve = ScanError::Resolve {
            backend: "a".into(),
            reason: "SecretNotFound",
            message: "m".into(),
        };
        assert_eq!(scan_error_exit_code(&not_found), 4);
        assert_eq!(scan_error_exit_code(&resolve), 5);
    }
}
