//! `castellan-apiserver --listen 127.0.0.1:0 --kubeconfig PATH`: run the
//! emulator until SIGTERM/SIGINT, printing its URL once listening.

use castellan_apiserver::{ApiServer, ServerConfig};
use clap::Parser;
use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Parser)]
#[command(about = "In-memory Kubernetes API-server emulator for Castellan's tests and demo")]
struct Args {
    /// Loopback address to listen on.
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Write a kubeconfig for this server here once listening.
    #[arg(long)]
    kubeconfig: Option<PathBuf>,
    /// Changes kept for watches from an old resourceVersion.
    #[arg(long, default_value_t = 10_000)]
    history: usize,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let server = ApiServer::start_with(ServerConfig {
        listen: args.listen,
        kubeconfig: args.kubeconfig.clone(),
        options: castellan_apiserver::Options {
            history_capacity: args.history,
            ..Default::default()
        },
    })
    .await?;
    println!("{}", server.url());
    eprintln!("kubeconfig: {}", server.kubeconfig_path().display());
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    server.shutdown().await;
    Ok(())
}
