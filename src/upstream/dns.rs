//! DNS service discovery: targets are the A/AAAA records of a name, refreshed in the background.
//! Works for plain DNS, Kubernetes headless services and Consul's DNS interface alike.

use crate::config::{DnsSpec, TargetSpec};
use async_trait::async_trait;
use pingora::lb::discovery::ServiceDiscovery;
use pingora::lb::Backend;
use pingora::protocols::l4::socket::SocketAddr as PingoraAddr;
use std::collections::{BTreeSet, HashMap};

/// Resolves one name; static targets listed beside it are always included.
pub struct DnsDiscovery {
    spec: DnsSpec,
    fixed: Vec<TargetSpec>,
}

impl DnsDiscovery {
    /// Discovery for `spec`, plus the `fixed` targets.
    pub fn new(spec: DnsSpec, fixed: Vec<TargetSpec>) -> Self {
        DnsDiscovery { spec, fixed }
    }
}

#[async_trait]
impl ServiceDiscovery for DnsDiscovery {
    async fn discover(&self) -> pingora::Result<(BTreeSet<Backend>, HashMap<u64, bool>)> {
        let addrs = tokio::net::lookup_host((self.spec.name.as_str(), self.spec.port)).await.map_err(|e| {
            pingora::Error::because(pingora::ErrorType::ConnectNoRoute, format!("resolving {}", self.spec.name), e)
        })?;
        let mut set: BTreeSet<Backend> =
            addrs.map(|a| Backend { addr: PingoraAddr::Inet(a), weight: 1, ext: Default::default() }).collect();
        set.extend(self.fixed.iter().map(|t| Backend {
            addr: PingoraAddr::Inet(t.addr),
            weight: t.weight,
            ext: Default::default(),
        }));
        Ok((set, HashMap::new()))
    }
}
