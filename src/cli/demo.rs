//! `castellan demo`: flags, and the exit code of the embedded credential-rotation demo.

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Args;

use crate::demo::{self, DemoOptions};

/// Flags of `castellan demo`.
#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Artifacts to upload before the rotation. The default (200 of 256 KiB, 50 MiB) plays the
    /// story in about ten seconds on two cores, long enough to watch the re-verification.
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub artifacts: u32,
    /// Size of each artifact, e.g. 256KiB, 4MiB, 1000 (bytes).
    #[arg(long, default_value = "256KiB", value_parser = parse_size, value_name = "SIZE")]
    pub size: usize,
    /// Stay up after the story (until Ctrl-C or SIGTERM) and print the KUBECONFIG to explore
    /// with kubectl and `castellan get`.
    #[arg(long)]
    pub keep: bool,
    /// After the story, restore the revoked key: backend-a is Ready again after
    /// successThreshold good probes and the mappings return home (adds a few seconds).
    #[arg(long)]
    pub restore: bool,
    /// No colours and no progress bar (also when stdout is not a terminal, or NO_COLOR is set).
    #[arg(long)]
    pub no_color: bool,
    /// Operator logs to stderr instead of a file in the demo's directory.
    #[arg(long, short)]
    pub verbose: bool,
    /// Listen address of the emulated Kubernetes API server (loopback only).
    #[arg(long, default_value = "127.0.0.1:0", value_name = "ADDR")]
    pub listen: SocketAddr,
    /// Keep the demo's files (kubeconfig, S3 objects, operator log) in this directory instead
    /// of a temporary one removed at exit.
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
}

/// `256KiB`, `4MiB`, `1GiB`, `512` (bytes); binary units.
fn parse_size(value: &str) -> Result<usize, String> {
    let value = value.trim();
    let split = value
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(value.len());
    let (number, unit) = value.split_at(split);
    let number: usize = number
        .parse()
        .map_err(|_| format!("'{value}' is not a size like 256KiB, 4MiB or 1000"))?;
    let factor = match unit.trim() {
        "" | "B" => 1,
        "KiB" | "K" | "k" => 1024,
        "MiB" | "M" => 1024 * 1024,
        "GiB" | "G" => 1024 * 1024 * 1024,
        other => return Err(format!("unknown unit '{other}' (use B, KiB, MiB or GiB)")),
    };
    let size = number
        .checked_mul(factor)
        .ok_or_else(|| format!("'{value}' is too large"))?;
    if size == 0 {
        return Err("the size must be at least 1 byte".to_string());
    }
    Ok(size)
}

impl DemoArgs {
    /// The demo options these flags describe, for an output that is (or is not) a terminal.
    pub fn options(&self, terminal: bool) -> DemoOptions {
        let fancy = terminal && !self.no_color && std::env::var_os("NO_COLOR").is_none();
        DemoOptions {
            artifacts: self.artifacts as usize,
            size: self.size,
            restore: self.restore,
            keep: self.keep,
            color: fancy,
            live: fancy,
            verbose: self.verbose,
            listen: self.listen,
            data_dir: self.data_dir.clone(),
        }
    }
}

/// Exit codes, as `castellan demo --help` prints them.
pub const EXIT_CODES_HELP: &str = "Exit codes:
  0  the story completed (with --keep: and the demo was then stopped with Ctrl-C or SIGTERM)
  1  a step failed (the message names it; the operator log is in the demo's directory)
  2  usage error (bad flags)";

/// Runs the demo on stdout. Exit code 0 when the story completed, 1 otherwise.
pub async fn run(args: DemoArgs) -> i32 {
    let options = args.options(std::io::stdout().is_terminal());
    match demo::run(options, std::io::stdout(), super::run::shutdown_signal()).await {
        Ok(_) => 0,
        Err(err) => {
            eprintln!("castellan demo: {err:#}");
            1
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{CommandFactory, Parser};

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        demo: DemoArgs,
    }

    fn parse(args: &[&str]) -> Result<DemoArgs, clap::Error> {
        Cli::try_parse_from(std::iter::once("demo").chain(args.iter().copied())).map(|c| c.demo)
    }

    #[test]
    fn the_flag_definitions_are_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn sizes_take_binary_units() {
        assert_eq!(parse_size("1000"), Ok(1000));
        assert_eq!(parse_size("256KiB"), Ok(256 * 1024));
        assert_eq!(parse_size("4MiB"), Ok(4 * 1024 * 1024));
        assert_eq!(parse_size("1G"), Ok(1024 * 1024 * 1024));
        assert!(parse_size("0").is_err());
        assert!(parse_size("12 parsecs")
            .unwrap_err()
            .contains("unknown unit"));
        assert!(parse_size("KiB").is_err());
    }

    #[test]
    fn defaults_finish_quickly_and_plain_output_has_no_colour() {
        let args = parse(&[]).unwrap();
        assert_eq!((args.artifacts, args.size), (200, 256 * 1024));
        let piped = args.options(false);
        assert!(!piped.color && !piped.live);
        let args = parse(&["--no-color", "--artifacts", "3", "--size", "1KiB"]).unwrap();
        let terminal = args.options(true);
        assert!(!terminal.color && !terminal.live);
        assert_eq!((terminal.artifacts, terminal.size), (3, 1024));
    }

    #[test]
    fn zero_artifacts_are_refused() {
        assert!(parse(&["--artifacts", "0"]).is_err());
    }
}
