//! Reads the operator's own Prometheus endpoint, the way a Prometheus server would, for the
//! figures the API objects do not carry (bytes streamed through digest verification,
//! mismatches).

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context as _;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// `GET /metrics` over HTTP/1.1 on loopback; returns the body.
pub async fn fetch(addr: SocketAddr) -> anyhow::Result<String> {
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(addr).await?;
        stream
            .write_all(
                format!("GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n")
                    .as_bytes(),
            )
            .await?;
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await?;
        Ok::<_, std::io::Error>(response)
    };
    let response = tokio::time::timeout(Duration::from_secs(5), exchange)
        .await
        .context("the operator's /metrics did not answer within 5s")?
        .with_context(|| format!("reading http://{addr}/metrics"))?;
    let text = String::from_utf8_lossy(&response);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .context("a malformed HTTP response from /metrics")?;
    anyhow::ensure!(
        head.starts_with("HTTP/1.1 200"),
        "/metrics answered {}",
        head.lines().next().unwrap_or_default()
    );
    anyhow::ensure!(
        !head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked"),
        "/metrics answered with a chunked body"
    );
    Ok(body.to_string())
}

/// The sum of every sample of `name` (all label sets) whose labels contain `label` (e.g.
/// `result="verified"`, or `""` for any) in the text exposition format.
pub fn sum(exposition: &str, name: &str, label: &str) -> f64 {
    exposition
        .lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let (metric, labels) = match series.split_once('{') {
                Some((metric, labels)) => (metric, labels),
                None => (series, ""),
            };
            (metric == name && labels.contains(label)).then(|| value.parse::<f64>().ok())?
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "\
# HELP castellan_verified_bytes Bytes streamed through digest verification.
# TYPE castellan_verified_bytes counter
castellan_verified_bytes_total 13107200
castellan_verifications_total{result=\"verified\"} 50
castellan_verifications_total{result=\"digest_mismatch\"} 2
castellan_digest_mismatches_total{namespace=\"demo\",backend=\"x\"} 2
# EOF
";

    #[test]
    fn samples_are_summed_by_name_and_label() {
        assert_eq!(
            sum(TEXT, "castellan_verified_bytes_total", ""),
            13_107_200.0
        );
        assert_eq!(
            sum(TEXT, "castellan_verifications_total", "result=\"verified\""),
            50.0
        );
        assert_eq!(sum(TEXT, "castellan_verifications_total", ""), 52.0);
        assert_eq!(sum(TEXT, "castellan_digest_mismatches_total", ""), 2.0);
        assert_eq!(sum(TEXT, "castellan_missing_total", ""), 0.0);
    }
}
