//! The `castellan` binary: thin clap wiring over the library.

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "castellan", version, about = "Keeps content-addressed artifacts downloadable when storage backends change")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print the CustomResourceDefinitions generated from the Rust types.
    Crd,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Crd => {
            print!("{}", castellan::api::crds_yaml()?);
            Ok(())
        }
    }
}
