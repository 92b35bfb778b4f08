//! `castellan run`: the operator process.

use std::net::SocketAddr;
use std::time::Duration;

use clap::Args;

use castellan::operator::Settings;
use castellan::operator::{self, LeaderElection, RunConfig};
use castellan::resolve::AmbientCredentials;
use castellan::storage::network::EndpointPolicy;
use castellan::telemetry::{self, LogFormat};

/// Flags of `castellan run`.
#[derive(Args, Debug)]
pub struct RunArgs {
    /// Watch only this namespace (default: all namespaces).
    #[arg(long, env = "CASTELLAN_NAMESPACE", value_name = "NAMESPACE")]
    pub namespace: Option<String>,
    /// Most digest verifications running at once.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub verify_concurrency: u16,
    /// Byte-rate budget shared by all verifications (bytes per second; 0 = unlimited).
    #[arg(long, default_value_t = 0, value_name = "BYTES")]
    pub verify_bytes_per_second: u64,
    /// Address of the Prometheus `/metrics` endpoint ("off" to disable).
    #[arg(long, default_value = "0.0.0.0:9090", value_parser = parse_addr, value_name = "ADDR|off")]
    pub metrics_addr: ListenAddr,
    /// Address of `/healthz` and `/readyz` ("off" to disable).
    #[arg(long, default_value = "0.0.0.0:8080", value_parser = parse_addr, value_name = "ADDR|off")]
    pub health_addr: ListenAddr,
    /// Log format.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Hold a coordination.k8s.io Lease before writing, so that only one replica writes.
    #[arg(long)]
    pub leader_elect: bool,
    /// Name of the leader-election Lease.
    #[arg(long, default_value = "castellan-operator")]
    pub lease_name: String,
    /// Namespace of the leader-election Lease (default: the watched namespace, else `default`).
    #[arg(long, env = "POD_NAMESPACE")]
    pub lease_namespace: Option<String>,
    /// Seconds a lease stays valid without renewal. The holder renews a third of it before
    /// expiry and stops writing if the renewal is not seen by a twelfth (at least 0.5 s) before
    /// expiry.
    #[arg(long, default_value_t = 15, value_parser = clap::value_parser!(u64).range(3..=3600))]
    pub lease_duration_seconds: u64,
    /// Identity on the Lease and on events (default: $POD_NAME, else the host name).
    #[arg(long, env = "POD_NAME")]
    pub identity: Option<String>,
    /// How long to wait for the CRDs to be established before giving up (seconds).
    #[arg(long, default_value_t = 120)]
    pub crd_wait_seconds: u64,
    /// Shortest validation interval applied to any backend, whatever its spec asks (a tenant's
    /// `interval: 1s` then costs one probe and one status write per this period).
    #[arg(long, env = "CASTELLAN_MIN_VALIDATION_INTERVAL", default_value = "10s", value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub min_validation_interval: Duration,
    /// A namespace whose StorageBackends without credentialsSecretRef may use the operator's
    /// own identity (IRSA, instance profile, environment); repeatable, `*` for every
    /// namespace. Without it such backends are InvalidSpec: a tenant must not read with the
    /// operator's identity what it could not read with its own.
    #[arg(
        long = "allow-ambient-credentials",
        env = "CASTELLAN_ALLOW_AMBIENT_CREDENTIALS",
        value_delimiter = ',',
        value_name = "NAMESPACE"
    )]
    pub allow_ambient_credentials: Vec<String>,
    /// A network endpoints may be in although the default policy refuses it (loopback,
    /// link-local and instance-metadata addresses are refused, checked after DNS resolution);
    /// repeatable, e.g. 127.0.0.0/8 for an object store on the operator's own host.
    #[arg(
        long = "allow-endpoint-network",
        env = "CASTELLAN_ALLOW_ENDPOINT_NETWORK",
        value_delimiter = ',',
        value_name = "CIDR"
    )]
    pub allow_endpoint_network: Vec<ipnet::IpNet>,
}

/// A listen address, or none when the flag says `off`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ListenAddr(pub Option<SocketAddr>);

fn parse_addr(value: &str) -> Result<ListenAddr, String> {
    if value == "off" {
        return Ok(ListenAddr(None));
    }
    value
        .parse()
        .map(|addr| ListenAddr(Some(addr)))
        .map_err(|err| format!("'{value}' is not an address like 0.0.0.0:9090 or 'off': {err}"))
}

fn default_identity() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| format!("castellan-{}", std::process::id()))
}

impl RunArgs {
    /// The operator configuration these flags describe.
    pub fn config(&self) -> RunConfig {
        let instance = self.identity.clone().unwrap_or_else(default_identity);
        let leader_election = self.leader_elect.then(|| LeaderElection {
            lease_name: self.lease_name.clone(),
            lease_namespace: self
                .lease_namespace
                .clone()
                .or_else(|| self.namespace.clone())
                .unwrap_or_else(|| "default".to_string()),
            lease_duration_seconds: self.lease_duration_seconds,
            renew_grace_seconds: (self.lease_duration_seconds / 3).max(1),
        });
        RunConfig {
            namespace: self.namespace.clone(),
            metrics_addr: self.metrics_addr.0,
            health_addr: self.health_addr.0,
            leader_election,
            instance,
            crd_wait: Duration::from_secs(self.crd_wait_seconds),
            settings: Settings {
                verify_concurrency: usize::from(self.verify_concurrency),
                verify_bytes_per_second: (self.verify_bytes_per_second > 0)
                    .then_some(self.verify_bytes_per_second),
                min_validation_interval: self.min_validation_interval,
                ambient_credentials: AmbientCredentials::from_namespaces(
                    &self.allow_ambient_credentials,
                ),
                endpoint_policy: Some(std::sync::Arc::new(EndpointPolicy::allowing(
                    self.allow_endpoint_network.clone(),
                ))),
                ..Settings::default()
            },
        }
    }
}

/// Exit codes, as `castellan run --help` prints them.
pub const EXIT_CODES_HELP: &str = "Exit codes:
  0  stopped cleanly on SIGTERM or Ctrl-C
  1  stopped on an error: CRDs not established in time, the leader Lease lost, an endpoint
     address already in use (the log says which)
  2  no Kubernetes configuration (neither in-cluster nor KUBECONFIG), or bad flags";

/// Run the operator until SIGTERM or Ctrl-C. Returns the process exit code.
pub async fn run(args: RunArgs) -> i32 {
    telemetry::init(args.log_format);
    telemetry::install_panic_hook();
    let config = args.config();
    let client = match kube::Client::try_default().await {
        Ok(client) => client,
        Err(err) => {
            tracing::error!(error = %err, "no Kubernetes configuration (in-cluster or KUBECONFIG)");
            return 2;
        }
    };
    match operator::run(client, config, shutdown_signal()).await {
        Ok(()) => 0,
        Err(err) => {
            tracing::error!(error = %err, "operator stopped");
            1
        }
    }
}

/// Resolves on SIGTERM or SIGINT.
pub async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("installing a SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
    tracing::info!("shutdown signal received");
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{CommandFactory, Parser};

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        run: RunArgs,
    }

    fn parse(args: &[&str]) -> Result<RunArgs, clap::Error> {
        Cli::try_parse_from(std::iter::once("run").chain(args.iter().copied())).map(|c| c.run)
    }

    #[test]
    fn the_flag_definitions_are_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn defaults_listen_on_all_interfaces() {
        let args = parse(&[]).unwrap();
        assert_eq!(
            args.metrics_addr,
            ListenAddr(Some("0.0.0.0:9090".parse().unwrap()))
        );
        assert_eq!(
            args.health_addr,
            ListenAddr(Some("0.0.0.0:8080".parse().unwrap()))
        );
        assert_eq!(args.verify_concurrency, 16);
        assert!(!args.leader_elect);
    }

    #[test]
    fn off_disables_an_endpoint_and_an_address_is_taken_as_given() {
        let args = parse(&["--metrics-addr", "off", "--health-addr", "127.0.0.1:0"]).unwrap();
        assert_eq!(args.metrics_addr, ListenAddr(None));
        assert_eq!(
            args.health_addr,
            ListenAddr(Some("127.0.0.1:0".parse().unwrap()))
        );
        let config = args.config();
        assert_eq!(config.metrics_addr, None);
    }

    #[test]
    fn a_bad_address_is_refused_naming_the_flag_and_the_expected_form() {
        let err = parse(&["--metrics-addr", "localhost"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("--metrics-addr"), "{err}");
        assert!(
            err.contains("not an address like 0.0.0.0:9090 or 'off'"),
            "{err}"
        );
    }

    #[test]
    fn concurrency_is_bounded() {
        assert!(parse(&["--verify-concurrency", "0"]).is_err());
        assert!(parse(&["--verify-concurrency", "1025"]).is_err());
        assert_eq!(
            parse(&["--verify-concurrency", "4"])
                .unwrap()
                .verify_concurrency,
            4
        );
    }

    #[test]
    fn the_lease_namespace_defaults_to_the_watched_namespace() {
        let args = parse(&[
            "--leader-elect",
            "--namespace",
            "team-a",
            "--identity",
            "pod-1",
        ])
        .unwrap();
        let config = args.config();
        let election = config.leader_election.expect("leader election is on");
        assert_eq!(election.lease_namespace, "team-a");
        assert_eq!(config.instance, "pod-1");
    }
}
