//! `castellan-s3server`: the in-process S3 server ([`S3Server`]) as a process that scripts
//! control.
//!
//! ```text
//! castellan-s3server --listen 127.0.0.1:0 --keys-file FILE [--data-dir DIR] [--bucket NAME]...
//! ```
//!
//! - Prints its endpoint (`http://127.0.0.1:PORT`) on stdout once it accepts connections.
//! - The keys file holds one `ACCESS_KEY_ID SECRET_ACCESS_KEY` pair per line (blank lines and
//!   `#` comments ignored). On SIGHUP it is read again: keys no longer listed are revoked (later
//!   requests signed with them get `NotSignedUp`), new ones are accepted. After each reload it
//!   writes `keys reloaded (N): ID,ID,…` to stderr, so a script can wait for it. A file that
//!   does not parse leaves the previous keys in place (and says so on stderr).
//! - Objects live in `--data-dir` (one directory per bucket; default: a temporary directory
//!   removed on exit). `--bucket` creates a bucket at start.
//! - Runs until SIGTERM or SIGINT.

use std::collections::BTreeMap;
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use castellan_s3server::{S3Server, ServerOptions};
use tokio::signal::unix::{signal, SignalKind};

const USAGE: &str = "usage: castellan-s3server --listen 127.0.0.1:PORT --keys-file FILE [--data-dir DIR] [--bucket NAME]...";

struct Args {
    listen: SocketAddr,
    keys_file: PathBuf,
    data_dir: Option<PathBuf>,
    buckets: Vec<String>,
}

fn parse_args(mut argv: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut listen = None;
    let mut keys_file = None;
    let mut data_dir = None;
    let mut buckets = Vec::new();
    while let Some(arg) = argv.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_owned(), Some(v.to_owned())),
            _ => (arg.clone(), None),
        };
        if flag == "-h" || flag == "--help" {
            return Err(String::new());
        }
        let mut value = || {
            inline
                .clone()
                .or_else(|| argv.next())
                .ok_or_else(|| format!("{flag} needs a value"))
        };
        match flag.as_str() {
            "--listen" => {
                let v = value()?;
                let addr: SocketAddr = v
                    .parse()
                    .map_err(|e| format!("--listen {v}: not an address ({e})"))?;
                if !addr.ip().is_loopback() || !addr.is_ipv4() {
                    return Err(format!(
                        "--listen {v}: only 127.0.0.1 is supported (the server binds loopback)"
                    ));
                }
                listen = Some(addr);
            }
            "--keys-file" => keys_file = Some(PathBuf::from(value()?)),
            "--data-dir" => data_dir = Some(PathBuf::from(value()?)),
            "--bucket" => buckets.push(value()?),
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(Args {
        listen: listen.ok_or("--listen is required")?,
        keys_file: keys_file.ok_or("--keys-file is required")?,
        data_dir,
        buckets,
    })
}

/// Parses a keys file: `ACCESS_KEY_ID SECRET` per line, `#` comments and blank lines ignored.
fn parse_keys(text: &str) -> Result<BTreeMap<String, String>, String> {
    let mut keys = BTreeMap::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut parts = line.split_whitespace();
        match (parts.next(), parts.next(), parts.next()) {
            (Some(id), Some(secret), None) => {
                keys.insert(id.to_owned(), secret.to_owned());
            }
            _ => {
                return Err(format!(
                    "line {}: expected `ACCESS_KEY_ID SECRET_ACCESS_KEY`",
                    n + 1
                ))
            }
        }
    }
    Ok(keys)
}

fn read_keys(path: &Path) -> Result<BTreeMap<String, String>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    parse_keys(&text).map_err(|e| format!("{}: {e}", path.display()))
}

fn main() -> ExitCode {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(a) => a,
        Err(e) if e.is_empty() => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("castellan-s3server: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("castellan-s3server: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(serve(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("castellan-s3server: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(args: Args) -> Result<(), String> {
    let mut keys = read_keys(&args.keys_file)?;
    // Signal handlers first, so a SIGHUP sent right after the endpoint is printed is not lost.
    let mut hup = signal(SignalKind::hangup()).map_err(|e| e.to_string())?;
    let mut term = signal(SignalKind::terminate()).map_err(|e| e.to_string())?;
    let mut int = signal(SignalKind::interrupt()).map_err(|e| e.to_string())?;
    let server = S3Server::start(ServerOptions {
        data_dir: args.data_dir.clone(),
        buckets: args.buckets.clone(),
        keys: keys.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        port: Some(args.listen.port()),
    })
    .await
    .map_err(|e| format!("cannot start on {}: {e}", args.listen))?;
    {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{}", server.endpoint());
        let _ = out.flush();
    }
    eprintln!(
        "castellan-s3server: listening on {}, data in {}, {} key(s)",
        server.endpoint(),
        server.data_dir().display(),
        keys.len()
    );
    loop {
        tokio::select! {
            _ = hup.recv() => match read_keys(&args.keys_file) {
                Ok(new) => {
                    for id in keys.keys().filter(|id| !new.contains_key(*id)) {
                        server.keys().revoke(id);
                    }
                    for (id, secret) in &new {
                        server.keys().add(id, secret);
                    }
                    keys = new;
                    let ids: Vec<&str> = keys.keys().map(String::as_str).collect();
                    eprintln!("keys reloaded ({}): {}", ids.len(), ids.join(","));
                }
                Err(e) => eprintln!("keys not reloaded, previous keys kept: {e}"),
            },
            _ = term.recv() => break,
            _ = int.recv() => break,
        }
    }
    server.stop().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_file_lines_comments_and_errors() {
        let keys = parse_keys("# rotation keys\nK1 s1\n\n  K2\ts2  \n").unwrap();
        assert_eq!(keys.len(), 2);
        assert_eq!(keys["K1"], "s1");
        assert_eq!(keys["K2"], "s2");
        assert_eq!(
            parse_keys("K1 s1\nK2\n").unwrap_err(),
            "line 2: expected `ACCESS_KEY_ID SECRET_ACCESS_KEY`"
        );
        assert!(parse_keys("K1 s1 extra").is_err());
        assert!(parse_keys("").unwrap().is_empty());
    }

    #[test]
    fn arguments() {
        let argv = |s: &str| {
            s.split_whitespace()
                .map(str::to_owned)
                .collect::<Vec<_>>()
                .into_iter()
        };
        let a = parse_args(argv(
            "--listen 127.0.0.1:0 --keys-file k --bucket a --bucket=b --data-dir=/d",
        ))
        .unwrap();
        assert_eq!(a.listen.port(), 0);
        assert_eq!(a.buckets, ["a", "b"]);
        assert_eq!(a.data_dir.unwrap(), PathBuf::from("/d"));
        assert!(parse_args(argv("--listen 0.0.0.0:9000 --keys-file k")).is_err());
        assert!(parse_args(argv("--keys-file k")).is_err());
        assert!(parse_args(argv("--listen 127.0.0.1:0 --keys-file")).is_err());
        assert!(parse_args(argv("--listen 127.0.0.1:0 --keys-file k --bogus")).is_err());
    }
}
