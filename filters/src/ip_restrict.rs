//! `ip_restrict`: allow or deny clients by address (CIDR), answering 403.
//!
//! ```yaml
//! - ip_restrict: {allow: ["10.0.0.0/8", "127.0.0.1"], deny: ["10.1.2.3/32"]}
//! ```
//! `deny` wins over `allow`; with an empty `allow` every address not denied passes.

use crate::{BuildContext, BuildError, Filter, FilterFactory, Flow, Reject, RequestCtx, Session};
use async_trait::async_trait;
use ipnet::IpNet;
use serde::Deserialize;
use std::net::IpAddr;

/// The `ip_restrict` filter's config: CIDRs or single addresses.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IpRestrictConfig {
    /// Only these may pass (when not empty).
    #[serde(default)]
    pub allow: Vec<String>,
    /// These never pass.
    #[serde(default)]
    pub deny: Vec<String>,
}

/// The `ip_restrict` filter.
#[derive(Debug)]
pub struct IpRestrict {
    allow: Vec<IpNet>,
    deny: Vec<IpNet>,
}

fn parse_nets(list: Vec<String>, field: &str) -> Result<Vec<IpNet>, BuildError> {
    list.iter()
        .enumerate()
        .map(|(i, s)| {
            s.parse::<IpNet>()
                .or_else(|_| s.parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| BuildError::at(format!("{field}[{i}]"), format!("\"{s}\" is not an IP address or CIDR")))
        })
        .collect()
}

impl IpRestrict {
    /// Whether `ip` may pass.
    fn permits(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
            v4 => v4,
        };
        if self.deny.iter().any(|n| n.contains(&ip)) {
            return false;
        }
        self.allow.is_empty() || self.allow.iter().any(|n| n.contains(&ip))
    }
}

impl FilterFactory for IpRestrict {
    const NAME: &'static str = "ip_restrict";
    type Config = IpRestrictConfig;

    fn build(config: IpRestrictConfig, _cx: &BuildContext<'_>) -> Result<Self, BuildError> {
        if config.allow.is_empty() && config.deny.is_empty() {
            return Err(BuildError::whole("set `allow`, `deny` or both"));
        }
        Ok(IpRestrict { allow: parse_nets(config.allow, "allow")?, deny: parse_nets(config.deny, "deny")? })
    }
}

#[async_trait]
impl Filter for IpRestrict {
    async fn request(&self, _session: &mut Session, ctx: &mut RequestCtx) -> pingora::Result<Flow> {
        match ctx.client_ip {
            Some(ip) if self.permits(ip) => Ok(Flow::Continue),
            _ => Ok(Flow::Reject(Reject::new(403, "forbidden", "client address is not allowed"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::{self, TestRequest};

    fn build(allow: &[&str], deny: &[&str]) -> Result<IpRestrict, BuildError> {
        let cfg = IpRestrictConfig {
            allow: allow.iter().map(|s| s.to_string()).collect(),
            deny: deny.iter().map(|s| s.to_string()).collect(),
        };
        IpRestrict::build(cfg, &testkit::context())
    }

    /// Runs the request phase for a client at `ip`: whether it passes.
    async fn permits(f: &IpRestrict, ip: IpAddr) -> bool {
        let mut request = TestRequest::get("/", &[]).await;
        request.ctx.client_ip = Some(ip);
        match request.request(f).await {
            Flow::Continue => true,
            Flow::Reject(r) => {
                assert_eq!((r.status, r.error), (403, "forbidden"));
                false
            }
            other => panic!("expected a pass or a 403, got {other:?}"),
        }
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("test ip")
    }

    #[tokio::test]
    async fn deny_wins_over_allow() {
        let f = build(&["10.0.0.0/8"], &["10.1.2.3/32"]).expect("valid");
        assert!(permits(&f, ip("10.9.9.9")).await);
        assert!(!permits(&f, ip("10.1.2.3")).await);
        assert!(!permits(&f, ip("192.168.1.1")).await);
    }

    #[tokio::test]
    async fn single_addresses_and_mapped_v6() {
        let f = build(&["127.0.0.1"], &[]).expect("valid");
        assert!(permits(&f, ip("127.0.0.1")).await);
        assert!(permits(&f, ip("::ffff:127.0.0.1")).await);
        assert!(!permits(&f, ip("127.0.0.2")).await);
    }

    #[test]
    fn bad_cidr_names_the_entry() {
        let err = build(&["10.0.0.0/8", "nonsense"], &[]).expect_err("invalid");
        assert_eq!(err.path, "allow[1]");
    }
}
