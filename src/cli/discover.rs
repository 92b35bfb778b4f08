//! `castellan discover --backend NAME`: builds the ArtifactMappings of a bucket that holds blobs
//! under the key layout but has no mappings, from its own listing; `--dry-run` only reports.
//!
//! Owns: the subcommand's flags, its output (a summary, or JSON) and its exit codes
//! ([`EXIT_CODES_HELP`]). The run itself is [`castellan::discovery::discover`].

use kube::api::{Api, ListParams};

use super::transfer::{connect, ClusterArgs};
use castellan::api::reasons::BackendReason;
use castellan::api::{ArtifactMapping, StorageBackend};
use castellan::discovery::{self, Existing, Mode, Summary};
use castellan::resolve::Resolver;

/// Mappings per page when listing the namespace.
const LIST_PAGE: u32 = 500;

/// Every blob found is mapped (or already was); nothing failed.
pub const EXIT_OK: i32 = 0;
/// The Kubernetes API failed (reading the backend or the mappings, or creating one).
pub const EXIT_API_ERROR: i32 = 1;
/// No StorageBackend NAME in the namespace.
pub const EXIT_NOT_FOUND: i32 = 4;
/// The backend failed: its client could not be built (Secret, spec) or the listing failed.
pub const EXIT_BACKEND_ERROR: i32 = 5;

/// Shown under `castellan discover --help`.
pub const EXIT_CODES_HELP: &str = "\
Exit codes:
  0  done: every blob under the key layout is mapped (with --dry-run: the report was printed)
  1  the Kubernetes API failed (reading the backend or the mappings, or creating a mapping)
  2  usage error (bad flags)
  4  not found: no StorageBackend NAME in the namespace
  5  backend error: its client could not be built (Secret, spec), or the listing failed
Only keys exactly under the layout <keyPrefix>/<algo>/<hex[0:2]>/<hex[2:4]>/<hex> are mapped,
as <algo>-<hex> with spec.size from the listing and the label castellan.io/discovered-by=NAME;
a digest already mapped in the namespace is left alone. Everything else is counted by category:
probeCanary, internalFile, directoryMarker, malformedDigest, mismatchedDirectories,
extraSegments, foreignLayout. The operator verifies every created mapping before serving it.";

/// Flags of `castellan discover`.
#[derive(Debug, clap::Args)]
pub struct DiscoverArgs {
    /// The StorageBackend whose bucket is listed.
    #[arg(long)]
    pub backend: String,
    /// Report what would be created and skipped; write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Most mappings created per second.
    #[arg(long, default_value_t = discovery::DEFAULT_CREATES_PER_SECOND, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub creates_per_second: u32,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Output::Text)]
    pub output: Output,
    #[command(flatten)]
    pub cluster: ClusterArgs,
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum Output {
    Text,
    Json,
}

/// Runs the subcommand; returns the exit code.
pub async fn run(args: DiscoverArgs) -> i32 {
    match discover(&args).await {
        Ok(summary) => {
            print(&args, &summary);
            EXIT_OK
        }
        Err((code, message)) => {
            eprintln!("castellan discover: {message}");
            code
        }
    }
}

async fn discover(args: &DiscoverArgs) -> Result<Summary, (i32, String)> {
    let (client, namespace) = connect(&args.cluster)
        .await
        .map_err(|e| (EXIT_API_ERROR, e))?;
    let backends: Api<StorageBackend> = Api::namespaced(client.clone(), &namespace);
    let backend = backends
        .get_opt(&args.backend)
        .await
        .map_err(|e| {
            (
                EXIT_API_ERROR,
                format!("reading StorageBackend {}: {e}", args.backend),
            )
        })?
        .ok_or_else(|| {
            (
                EXIT_NOT_FOUND,
                format!(
                    "no StorageBackend {} in namespace {namespace}",
                    args.backend
                ),
            )
        })?;
    let store = Resolver::new(client.clone())
        .with_ambient_credentials(
            args.cluster.ambient(),
            castellan::transfer::LOCAL_CREDENTIALS_HINT,
        )
        .store_for(&backend)
        .await
        .map_err(|e| {
            let reason = e.reason().map_or("ResolveFailed", BackendReason::as_str);
            (
                EXIT_BACKEND_ERROR,
                format!("backend {}: {reason}: {e}", args.backend),
            )
        })?;
    let api: Api<ArtifactMapping> = Api::namespaced(client, &namespace);
    let existing = existing(&api, &namespace).await?;
    let mode = match args.dry_run {
        true => Mode::DryRun,
        false => Mode::Create {
            api: Box::new(api),
            per_second: args.creates_per_second,
        },
    };
    discovery::discover(store.as_ref(), &backend, &existing, &mode)
        .await
        .map_err(|e| match e {
            discovery::Error::List { .. } => {
                (EXIT_BACKEND_ERROR, format!("backend {}: {e}", args.backend))
            }
            discovery::Error::Create { .. } => (EXIT_API_ERROR, e.to_string()),
        })
}

/// The namespace's mappings, page by page, as the set of digests already mapped.
async fn existing(api: &Api<ArtifactMapping>, namespace: &str) -> Result<Existing, (i32, String)> {
    let mut params = ListParams::default().limit(LIST_PAGE);
    let mut all = Vec::new();
    loop {
        let page = api.list(&params).await.map_err(|e| {
            (
                EXIT_API_ERROR,
                format!("listing ArtifactMappings in namespace {namespace}: {e}"),
            )
        })?;
        all.extend(page.items);
        match page.metadata.continue_.filter(|c| !c.is_empty()) {
            Some(token) => params = params.continue_token(&token),
            None => return Ok(Existing::of(&all)),
        }
    }
}

fn print(args: &DiscoverArgs, summary: &Summary) {
    if let Output::Json = args.output {
        println!(
            "{}",
            serde_json::to_string_pretty(summary).expect("a summary serializes")
        );
        return;
    }
    let verb = if args.dry_run {
        "would create"
    } else {
        "created"
    };
    println!(
        "backend {}: listed {} objects",
        args.backend, summary.listed
    );
    println!("  {verb}: {}", summary.created);
    println!("  already mapped: {}", summary.already_mapped);
    for (category, count) in &summary.skipped {
        println!("  skipped, {category}: {count}");
    }
    if args.dry_run {
        for name in &summary.names {
            println!("  + {name}");
        }
    }
}
