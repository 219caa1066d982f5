//! Upstream pools on pingora-load-balancing: selection, health checks, DNS discovery, and the
//! peer a request is sent to.

pub mod breaker;
pub mod budget;
mod dns;
mod grpc_health;
mod health;
pub mod limit;
mod peer;
pub mod targets;
pub mod window;

pub use health::HealthSupervisor;
pub use peer::{build_peer, side_connector};

use crate::config::{Balance, HealthKind, UpstreamSpec};
use pingora::lb::health_check::{HttpHealthCheck, TcpHealthCheck};
use pingora::lb::selection::{Consistent, Random, RoundRobin};
use pingora::lb::{discovery, Backend, Backends, LoadBalancer};
use pingora::prelude::*;
use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// The balancer behind a pool, one variant per algorithm.
enum Balancer {
    RoundRobin(LoadBalancer<RoundRobin>),
    Random(LoadBalancer<Random>),
    Hash(LoadBalancer<Consistent>),
}

/// Runs the same expression on whichever balancer a pool has.
macro_rules! with_lb {
    ($b:expr, $lb:ident => $e:expr) => {
        match $b {
            Balancer::RoundRobin($lb) => $e,
            Balancer::Random($lb) => $e,
            Balancer::Hash($lb) => $e,
        }
    };
}

/// One named upstream: its targets, their health, and how to pick one.
pub struct Pool {
    /// The validated config this pool was built from.
    pub spec: Arc<UpstreamSpec>,
    balancer: Balancer,
    /// Parsed CA and client certificate for TLS to the targets.
    pub tls: Option<crate::tls::UpstreamTlsMaterial>,
    /// Set once a health/discovery task runs for this pool.
    supervised: AtomicBool,
    /// Set once its first health check and discovery round has finished (at once for a pool
    /// with neither), so `/ready` does not send traffic before the pool knows its targets.
    checked: AtomicBool,
    /// Per-target load and passive health.
    pub targets: targets::Targets,
    /// The circuit breaker, when configured.
    pub breaker: Option<breaker::Breaker>,
    /// The upstream's `max_in_flight`, when set.
    pub limit: Option<limit::Limit>,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Pool({})", self.spec.name)
    }
}

/// Searches per selection: enough to walk past every unhealthy target of a large pool.
const MAX_ITERATIONS: usize = 256;

impl Pool {
    /// Builds the balancer with its static targets (or DNS discovery) and health check.
    pub fn new(spec: Arc<UpstreamSpec>) -> Self {
        let discovery: Box<dyn pingora::lb::discovery::ServiceDiscovery + Send + Sync> = match &spec.dns {
            Some(dns) => Box::new(dns::DnsDiscovery::new(dns.clone(), spec.targets.clone())),
            None => {
                let set: BTreeSet<Backend> = spec
                    .targets
                    .iter()
                    .map(|t| Backend {
                        addr: pingora::protocols::l4::socket::SocketAddr::Inet(t.addr),
                        weight: t.weight,
                        ext: Default::default(),
                    })
                    .collect();
                discovery::Static::new(set)
            }
        };
        // The files were checked when the config loaded; a failure here means they changed since.
        let tls = spec.tls.as_ref().map(|t| {
            crate::tls::UpstreamTlsMaterial::load(t).unwrap_or_else(|e| {
                log::error!("upstream {}: {e}", spec.name);
                Default::default()
            })
        });
        let mut backends = Backends::new(discovery);
        if let Some(h) = &spec.health {
            backends.set_health_check(health_check(&spec, h, tls.as_ref()));
        }
        let balancer = match spec.balance {
            Balance::RoundRobin => Balancer::RoundRobin(LoadBalancer::from_backends(backends)),
            Balance::Random => Balancer::Random(LoadBalancer::from_backends(backends)),
            Balance::ConsistentHash => Balancer::Hash(LoadBalancer::from_backends(backends)),
            Balance::LeastLoaded => Balancer::Random(LoadBalancer::from_backends(backends)),
        };
        let targets = targets::Targets::new(spec.targets.iter().map(|t| t.addr), spec.outlier.clone());
        let breaker = spec.breaker.clone().map(breaker::Breaker::new);
        let checked = AtomicBool::new(spec.health.is_none() && spec.dns.is_none());
        let limit = spec.max_in_flight.map(limit::Limit::new);
        Pool { spec, balancer, tls, supervised: AtomicBool::new(false), checked, targets, limit, breaker }
    }

    /// A healthy target for `key` (the hash key; ignored by round robin and random), skipping
    /// targets that outlier detection ejected and, while others are left, targets in `exclude`
    /// (ones a retry already tried). When every target is ejected, ejection is ignored (a pool
    /// that ejected everything would otherwise serve nothing), as Envoy's panic threshold does.
    pub fn select(&self, key: &[u8], exclude: &[SocketAddr], now_ms: u64) -> Option<Backend> {
        let usable = |b: &Backend, healthy: bool, avoid_tried: bool| {
            healthy
                && b.as_inet().is_none_or(|a| {
                    let tried = avoid_tried && exclude.contains(a);
                    let ejected = self.targets.peek(a, |s| s.ejected(now_ms)).unwrap_or(false);
                    !tried && !ejected
                })
        };
        let pick = |avoid_tried: bool| with_lb!(&self.balancer, lb => lb.select_with(key, MAX_ITERATIONS, |b, h| usable(b, h, avoid_tried)));
        let first = pick(true)
            .or_else(|| pick(false))
            .or_else(|| with_lb!(&self.balancer, lb => lb.select(key, MAX_ITERATIONS)))?;
        if self.spec.balance != Balance::LeastLoaded {
            return Some(first);
        }
        // Power of two choices: a second random target, and the one with fewer requests wins.
        let Some(first_addr) = first.as_inet().copied() else { return Some(first) };
        let second = with_lb!(&self.balancer, lb => lb.select_with(key, MAX_ITERATIONS, |b, h| {
            usable(b, h, true) && b.as_inet() != Some(&first_addr)
        }));
        let load = |b: &Backend| {
            b.as_inet().and_then(|a| self.targets.peek(a, |s| s.in_flight.load(Ordering::Acquire))).unwrap_or(0)
        };
        match second {
            Some(second) if load(&second) < load(&first) => Some(second),
            _ => Some(first),
        }
    }

    /// [`Pool::select`] for a request the breaker admitted. When no target is left the request
    /// never reached the upstream, so the breaker learns nothing from it: a half-open breaker's
    /// probe place is given back (recording a success would close it without any target having
    /// answered; a failure would hold it open because of our own health checks).
    pub fn select_admitted(
        &self,
        key: &[u8],
        exclude: &[SocketAddr],
        now_ms: u64,
        admission: breaker::Admission,
    ) -> Option<Backend> {
        let picked = self.select(key, exclude, now_ms);
        if picked.is_none() {
            if let Some(b) = &self.breaker {
                b.release(admission);
            }
        }
        picked
    }

    /// Runs discovery (static targets resolve at once) and rebuilds the selector.
    pub async fn update(&self) -> pingora::Result<()> {
        with_lb!(&self.balancer, lb => lb.update().await)
    }

    /// Runs one health-check pass over every target.
    pub async fn run_health_check(&self) {
        with_lb!(&self.balancer, lb => lb.backends().run_health_check(true).await)
    }

    /// Every target with whether it is currently healthy.
    pub fn health(&self) -> Vec<(SocketAddr, bool)> {
        with_lb!(&self.balancer, lb => {
            let backends = lb.backends();
            backends
                .get_backend()
                .iter()
                .filter_map(|b| b.as_inet().map(|a| (*a, backends.ready(b))))
                .collect()
        })
    }

    /// Marks the pool as supervised; `true` the first time only.
    fn claim_supervision(&self) -> bool {
        !self.supervised.swap(true, Ordering::AcqRel)
    }

    /// Whether the first health check and discovery round has finished.
    pub fn checked(&self) -> bool {
        self.checked.load(Ordering::Acquire)
    }
}

/// An HTTP or gRPC check's peer: the check's timeout on connecting and reading, and the
/// upstream's own TLS (CA, client certificate, verification).
fn check_peer(
    peer: &mut HttpPeer,
    spec: &UpstreamSpec,
    h: &crate::config::HealthSpec,
    material: Option<&crate::tls::UpstreamTlsMaterial>,
) {
    peer.options.connection_timeout = Some(h.timeout);
    peer.options.read_timeout = Some(h.timeout);
    if let (Some(t), Some(material)) = (&spec.tls, material) {
        peer::apply_tls(peer, t, material);
    }
}

fn health_check(
    spec: &UpstreamSpec,
    h: &crate::config::HealthSpec,
    material: Option<&crate::tls::UpstreamTlsMaterial>,
) -> Box<dyn pingora::lb::health_check::HealthCheck + Send + Sync + 'static> {
    match &h.kind {
        HealthKind::Grpc { service } => {
            let mut hc = grpc_health::GrpcHealthCheck::new(service, spec.tls.is_some(), sni(spec));
            hc.consecutive_success = h.healthy_after;
            hc.consecutive_failure = h.unhealthy_after;
            check_peer(&mut hc.peer_template, spec, h, material);
            Box::new(hc)
        }
        HealthKind::Tcp => {
            let mut hc = TcpHealthCheck::new();
            hc.consecutive_success = h.healthy_after;
            hc.consecutive_failure = h.unhealthy_after;
            hc.peer_template.options.connection_timeout = Some(h.timeout);
            hc
        }
        HealthKind::Http { path, expect_status, host } => {
            let tls = spec.tls.is_some();
            let mut hc = HttpHealthCheck::new(host, tls);
            hc.consecutive_success = h.healthy_after;
            hc.consecutive_failure = h.unhealthy_after;
            check_peer(&mut hc.peer_template, spec, h, material);
            if let Ok(mut req) = RequestHeader::build("GET", path.as_bytes(), None) {
                let _ = req.insert_header("Host", host.as_str());
                let _ = req.insert_header("User-Agent", "portico-health-check");
                hc.req = req;
            }
            let expect = *expect_status;
            hc.validator = Some(Box::new(move |resp: &ResponseHeader| {
                if resp.status.as_u16() == expect {
                    Ok(())
                } else {
                    Error::e_explain(
                        ErrorType::CustomCode("unexpected health check status", resp.status.as_u16()),
                        format!("expected {expect}"),
                    )
                }
            }));
            Box::new(hc)
        }
    }
}

/// The name a TLS check sends as SNI (and verifies): the upstream's `tls.sni`.
fn sni(spec: &UpstreamSpec) -> String {
    spec.tls.as_ref().map(|t| t.sni.clone()).unwrap_or_default()
}

/// Every pool of one config, by name.
#[derive(Debug, Default)]
pub struct Pools {
    by_name: HashMap<Arc<str>, Arc<Pool>>,
}

impl Pools {
    /// Builds the pools of a config, reusing a previous config's pool (and so its health state
    /// and connections) wherever the upstream's spec did not change.
    pub async fn build(specs: &[Arc<UpstreamSpec>], previous: Option<&Pools>) -> Self {
        let mut by_name = HashMap::with_capacity(specs.len());
        for spec in specs {
            let reused = previous.and_then(|p| p.by_name.get(&spec.name)).filter(|old| *old.spec == **spec).cloned();
            let pool = match reused {
                Some(pool) => pool,
                None => {
                    let pool = Arc::new(Pool::new(spec.clone()));
                    if let Err(e) = pool.update().await {
                        log::warn!("upstream {}: first discovery failed: {e}", spec.name);
                    }
                    pool
                }
            };
            by_name.insert(spec.name.clone(), pool);
        }
        Pools { by_name }
    }

    /// The pool called `name`.
    pub fn get(&self, name: &str) -> Option<&Arc<Pool>> {
        self.by_name.get(name)
    }

    /// Every pool.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<Pool>> {
        self.by_name.values()
    }
}

#[cfg(test)]
mod tests;
