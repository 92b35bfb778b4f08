//! Which addresses a backend's endpoint may be in. A tenant writes `spec.s3.endpoint`; without a
//! policy it could point the operator at the node's instance-metadata service (and read the
//! node's cloud credentials through an error message) or at services listening on the
//! operator's own loopback. Refused by default: loopback (127.0.0.0/8, ::1), the unspecified
//! addresses (which reach loopback), link-local (169.254.0.0/16, fe80::/10, where AWS, GCP and
//! Azure serve instance metadata) and AWS's IPv6 metadata address (fd00:ec2::254). Everything
//! else, including cluster Service and Pod networks (Rook's RGW, MinIO Services), is allowed.
//! `castellan run --allow-endpoint-network CIDR` re-allows a refused network a deployment
//! needs.
//!
//! The check runs where the address is known: on a literal IP endpoint before the client is
//! built, and on every DNS answer at connect time (a hostname that resolves into a refused
//! network is refused, also when its DNS record changes later), so no request is sent there.
//!
//! Owns: the refused networks, the policy, the resolver the S3 client connects through. Must
//! not: decide anything about a backend's condition (the storage error says why).

use std::net::IpAddr;
use std::sync::Arc;

use aws_smithy_runtime_api::client::dns::{DnsFuture, ResolveDns, ResolveDnsError};
use ipnet::IpNet;

/// Networks no endpoint may be in unless allowed.
const REFUSED: [&str; 7] = [
    "127.0.0.0/8",
    "::1/128",
    "0.0.0.0/8",
    "::/128",
    "169.254.0.0/16",
    "fe80::/10",
    "fd00:ec2::254/128",
];

/// The addresses endpoints may connect to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EndpointPolicy {
    refused: Vec<IpNet>,
    allowed: Vec<IpNet>,
}

/// An endpoint address the policy refuses.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "the endpoint address {ip} is in {network}, a network the operator does not connect to \
     (loopback, link-local, instance metadata); castellan run --allow-endpoint-network {network} \
     allows it"
)]
pub struct Refused {
    pub ip: IpAddr,
    pub network: IpNet,
}

impl Default for EndpointPolicy {
    fn default() -> EndpointPolicy {
        EndpointPolicy::allowing(Vec::new())
    }
}

impl EndpointPolicy {
    /// The default refusals, minus what `allowed` re-allows.
    pub fn allowing(allowed: Vec<IpNet>) -> EndpointPolicy {
        EndpointPolicy {
            refused: REFUSED
                .iter()
                .map(|n| n.parse().expect("a valid network"))
                .collect(),
            allowed,
        }
    }

    /// `Err` when `ip` is in a refused network that no allowed network covers.
    pub fn check(&self, ip: IpAddr) -> Result<(), Refused> {
        // ::ffff:169.254.169.254 is 169.254.169.254.
        let ip = ip.to_canonical();
        if self.allowed.iter().any(|n| n.contains(&ip)) {
            return Ok(());
        }
        match self.refused.iter().find(|n| n.contains(&ip)) {
            Some(network) => Err(Refused {
                ip,
                network: *network,
            }),
            None => Ok(()),
        }
    }

    /// The literal IP of an endpoint URL's host, checked; hostnames are checked when resolved.
    pub fn check_endpoint(&self, endpoint: &str) -> Result<(), Refused> {
        let Ok(url) = endpoint.parse::<http::Uri>() else {
            return Ok(()); // the client builder reports a malformed endpoint
        };
        let host = url.host().unwrap_or("");
        let host = host.trim_start_matches('[').trim_end_matches(']');
        match host.parse::<IpAddr>() {
            Ok(ip) => self.check(ip),
            Err(_) => Ok(()),
        }
    }
}

/// The system resolver, with every answer checked against the policy.
#[derive(Clone, Debug)]
pub struct PolicyResolver {
    pub policy: Arc<EndpointPolicy>,
}

impl ResolveDns for PolicyResolver {
    fn resolve_dns<'a>(&'a self, name: &'a str) -> DnsFuture<'a> {
        let policy = self.policy.clone();
        DnsFuture::new(async move {
            let addresses = tokio::net::lookup_host((name, 0))
                .await
                .map_err(ResolveDnsError::new)?;
            let ips: Vec<IpAddr> = addresses.map(|a| a.ip()).collect();
            for ip in &ips {
                policy.check(*ip).map_err(ResolveDnsError::new)?;
            }
            Ok(ips)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_loopback_and_link_local_are_refused_and_cluster_networks_are_not() {
        let policy = EndpointPolicy::default();
        let cases = [
            (
                "the EC2/GCP/Azure metadata address",
                "169.254.169.254",
                false,
            ),
            ("any link-local IPv4", "169.254.1.2", false),
            ("AWS's IPv6 metadata address", "fd00:ec2::254", false),
            ("link-local IPv6", "fe80::1", false),
            ("loopback", "127.0.0.1", false),
            ("all of 127/8", "127.1.2.3", false),
            ("IPv6 loopback", "::1", false),
            ("the unspecified address reaches loopback", "0.0.0.0", false),
            (
                "an IPv4-mapped metadata address",
                "::ffff:169.254.169.254",
                false,
            ),
            ("a Service in the cluster network", "10.96.0.10", true),
            ("a Pod network address", "192.168.3.4", true),
            ("a public address", "52.216.8.1", true),
            ("another ULA than AWS's metadata", "fd00:ec2::253", true),
        ];
        for (name, ip, allowed) in cases {
            assert_eq!(policy.check(ip.parse().unwrap()).is_ok(), allowed, "{name}");
        }
    }

    #[test]
    fn an_allowed_network_reallows_part_of_a_refused_one() {
        let policy = EndpointPolicy::allowing(vec!["127.0.0.0/8".parse().unwrap()]);
        assert!(policy.check("127.0.0.1".parse().unwrap()).is_ok());
        assert!(policy.check("169.254.169.254".parse().unwrap()).is_err());
        let refused = EndpointPolicy::default()
            .check("169.254.169.254".parse().unwrap())
            .unwrap_err();
        assert!(
            refused
                .to_string()
                .contains("--allow-endpoint-network 169.254.0.0/16"),
            "{refused}"
        );
    }

    #[test]
    fn literal_ip_endpoints_are_checked_and_hostnames_left_to_resolution() {
        let policy = EndpointPolicy::default();
        let cases = [
            ("a metadata IP", "http://169.254.169.254/latest", false),
            ("a bracketed IPv6 loopback", "http://[::1]:9000", false),
            ("loopback with a port", "https://127.0.0.1:9000", false),
            ("a cluster IP", "http://10.0.0.5:7480", true),
            ("a hostname", "http://minio.storage.svc:9000", true),
        ];
        for (name, endpoint, allowed) in cases {
            assert_eq!(policy.check_endpoint(endpoint).is_ok(), allowed, "{name}");
        }
    }

    #[tokio::test]
    async fn a_hostname_that_resolves_into_a_refused_network_is_refused() {
        let resolver = PolicyResolver {
            policy: Arc::new(EndpointPolicy::default()),
        };
        let err = resolver.resolve_dns("localhost").await.unwrap_err();
        let refused = std::error::Error::source(&err)
            .and_then(|s| s.downcast_ref::<Refused>())
            .expect("the refusal is the cause");
        assert!(refused.ip.is_loopback(), "{refused}");

        let allowing = PolicyResolver {
            policy: Arc::new(EndpointPolicy::allowing(vec![
                "127.0.0.0/8".parse().unwrap(),
                "::1/128".parse().unwrap(),
            ])),
        };
        assert!(!allowing.resolve_dns("localhost").await.unwrap().is_empty());
    }
}
