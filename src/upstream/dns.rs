//! DNS service discovery: targets are the A/AAAA records of a name, refreshed in the background.
//! Works for plain DNS, Kubernetes headless services and Consul's DNS interface alike.
//!
//! A resolution that takes longer than `timeout_ms` fails its round, like any resolver error;
//! either way the targets found last keep serving (Pingora keeps a pool's targets when
//! discovery fails). Targets that vanish from a successful answer leave the pool, and the
//! supervisor (`health.rs`) drops their per-target state and metric series ([`vanished`]).

use crate::config::{DnsSpec, TargetSpec};
use async_trait::async_trait;
use pingora::lb::discovery::ServiceDiscovery;
use pingora::lb::Backend;
use pingora::protocols::l4::socket::SocketAddr as PingoraAddr;
use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;

/// Where addresses come from: the system resolver in production, a fake in tests.
#[async_trait]
pub trait Resolve: Send + Sync {
    /// The addresses of `name`, each with `port`.
    async fn resolve(&self, name: &str, port: u16) -> std::io::Result<Vec<SocketAddr>>;
}

/// The system resolver (`getaddrinfo`, so `/etc/hosts` and `resolv.conf` apply).
pub struct SystemResolver;

#[async_trait]
impl Resolve for SystemResolver {
    async fn resolve(&self, name: &str, port: u16) -> std::io::Result<Vec<SocketAddr>> {
        Ok(tokio::net::lookup_host((name, port)).await?.collect())
    }
}

/// Resolves one name; static targets listed beside it are always included.
pub struct DnsDiscovery {
    spec: DnsSpec,
    fixed: Vec<TargetSpec>,
    resolver: Box<dyn Resolve>,
}

impl DnsDiscovery {
    /// Discovery for `spec` through the system resolver, plus the `fixed` targets.
    pub fn new(spec: DnsSpec, fixed: Vec<TargetSpec>) -> Self {
        Self::with_resolver(spec, fixed, Box::new(SystemResolver))
    }

    /// Discovery through `resolver`.
    pub fn with_resolver(spec: DnsSpec, fixed: Vec<TargetSpec>, resolver: Box<dyn Resolve>) -> Self {
        DnsDiscovery { spec, fixed, resolver }
    }
}

#[async_trait]
impl ServiceDiscovery for DnsDiscovery {
    async fn discover(&self) -> pingora::Result<(BTreeSet<Backend>, HashMap<u64, bool>)> {
        let name = &self.spec.name;
        let addrs = match tokio::time::timeout(self.spec.timeout, self.resolver.resolve(name, self.spec.port)).await {
            Ok(Ok(addrs)) => addrs,
            Ok(Err(e)) => {
                return Err(pingora::Error::because(pingora::ErrorType::ConnectNoRoute, format!("resolving {name}"), e))
            }
            Err(_) => {
                return pingora::Error::e_explain(
                    pingora::ErrorType::ConnectTimedout,
                    format!("resolving {name} took longer than {} ms", self.spec.timeout.as_millis()),
                )
            }
        };
        let mut set: BTreeSet<Backend> = addrs
            .into_iter()
            .map(|a| Backend { addr: PingoraAddr::Inet(a), weight: 1, ext: Default::default() })
            .collect();
        set.extend(self.fixed.iter().map(|t| Backend {
            addr: PingoraAddr::Inet(t.addr),
            weight: t.weight,
            ext: Default::default(),
        }));
        Ok((set, HashMap::new()))
    }
}

/// The targets in `before` that `after` no longer has.
pub fn vanished(before: &BTreeSet<SocketAddr>, after: &BTreeSet<SocketAddr>) -> Vec<SocketAddr> {
    before.difference(after).copied().collect()
}

#[cfg(test)]
mod tests;
