//! The `castellan` binary: thin clap wiring over the library ([`cli`]), and the embedded demo
//! ([`demo`], only with the default `demo` feature: the operator image is built without it).

mod cli;
#[cfg(feature = "demo")]
mod demo;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "castellan",
    version,
    about = "Keeps content-addressed artifacts downloadable when storage backends change"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print the CustomResourceDefinitions generated from the Rust types.
    Crd {
        /// Write one file per CRD (`<plural>.<group>.yaml`) into this directory instead of printing.
        #[arg(long, value_name = "DIR")]
        out_dir: Option<std::path::PathBuf>,
    },
    /// Run the operator: validate backends, reassign stranded mappings (until SIGTERM).
    #[command(after_help = cli::run::EXIT_CODES_HELP)]
    Run(cli::run::RunArgs),
    /// Check one object against a digest, or with --backend every object and mapping of a
    /// StorageBackend; print the outcome, bytes and throughput.
    #[command(after_help = cli::verify::EXIT_CODES_HELP)]
    Verify(cli::verify::VerifyArgs),
    /// Build the ArtifactMappings of a bucket that holds blobs but no mappings, from its
    /// listing (--dry-run: report only).
    #[command(after_help = cli::discover::EXIT_CODES_HELP)]
    Discover(cli::discover::DiscoverArgs),
    /// Upload a file to the namespace's default (or fallback) backend and create its mapping.
    #[command(after_help = cli::put::EXIT_CODES_HELP)]
    Put(cli::put::PutArgs),
    /// Download a blob by digest, verified, falling back across backends.
    #[command(after_help = cli::get::EXIT_CODES_HELP)]
    Get(cli::get::GetArgs),
    /// Play the credential-rotation story on this machine: an emulated Kubernetes API server,
    /// an S3 server on loopback and the operator, all in-process; no cluster needed.
    #[cfg(feature = "demo")]
    #[command(after_help = cli::demo::EXIT_CODES_HELP)]
    Demo(cli::demo::DemoArgs),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Crd { out_dir: None } => {
            print!("{}", castellan::api::crds_yaml()?);
            Ok(())
        }
        Command::Crd { out_dir: Some(dir) } => {
            std::fs::create_dir_all(&dir)?;
            for (file, yaml) in castellan::api::crd_files()? {
                std::fs::write(dir.join(file), yaml)?;
            }
            Ok(())
        }
        Command::Run(args) => {
            let runtime = tokio::runtime::Runtime::new()?;
            let code = runtime.block_on(cli::run::run(args));
            std::process::exit(code)
        }
        Command::Verify(args) => {
            let runtime = tokio::runtime::Runtime::new()?;
            let code = runtime.block_on(cli::verify::run(args));
            std::process::exit(code)
        }
        Command::Discover(args) => {
            let runtime = tokio::runtime::Runtime::new()?;
            let code = runtime.block_on(cli::discover::run(args));
            std::process::exit(code)
        }
        Command::Put(args) => {
            let runtime = tokio::runtime::Runtime::new()?;
            let code = runtime.block_on(cli::put::run(args));
            std::process::exit(code)
        }
        Command::Get(args) => {
            let runtime = tokio::runtime::Runtime::new()?;
            let code = runtime.block_on(cli::get::run(args));
            std::process::exit(code)
        }
        #[cfg(feature = "demo")]
        Command::Demo(args) => {
            let runtime = tokio::runtime::Runtime::new()?;
            let code = runtime.block_on(cli::demo::run(args));
            std::process::exit(code)
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        super::Cli::command().debug_assert();
    }
}
