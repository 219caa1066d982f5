//! Runs discovery and active health checks for every pool of the current config, as one
//! Pingora background service that follows reloads.

use super::Pool;
use crate::state::Shared;
use async_trait::async_trait;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;
use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

/// How often the supervisor looks for pools a reload created.
const SCAN_EVERY: Duration = Duration::from_millis(100);

/// Starts one task per pool; a task ends when its pool is dropped by a reload.
pub struct HealthSupervisor {
    shared: Arc<Shared>,
}

impl HealthSupervisor {
    /// A supervisor over the shared runtime config.
    pub fn new(shared: Arc<Shared>) -> Self {
        HealthSupervisor { shared }
    }
}

#[async_trait]
impl BackgroundService for HealthSupervisor {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        // Let the listeners bind first: a backend served by this same process would otherwise
        // fail its very first check.
        tokio::time::sleep(SCAN_EVERY * 3).await;
        loop {
            let runtime = self.shared.runtime.load_full();
            let now = super::window::now_ms();
            for pool in runtime.pools.iter() {
                if let Some(b) = &pool.breaker {
                    self.shared.metrics.set_breaker_state(&pool.spec.name, b.state() as u8);
                }
                if pool.spec.outlier.is_some() {
                    for (addr, ejected) in pool.targets.ejections(now) {
                        self.shared.metrics.set_target_ejected(&pool.spec.name, addr, ejected);
                    }
                }
                if pool.claim_supervision() && (pool.spec.health.is_some() || pool.spec.dns.is_some()) {
                    tokio::spawn(supervise(Arc::downgrade(pool), self.shared.clone()));
                }
            }
            drop(runtime);
            tokio::select! {
                _ = tokio::time::sleep(SCAN_EVERY) => {}
                _ = shutdown.changed() => return,
            }
        }
    }
}

async fn supervise(pool: Weak<Pool>, shared: Arc<Shared>) {
    let mut next_discovery = Instant::now();
    let mut known: Option<BTreeSet<SocketAddr>> = None;
    loop {
        let Some(p) = pool.upgrade() else { return };
        if let Some(dns) = &p.spec.dns {
            if Instant::now() >= next_discovery {
                let before = known.take().unwrap_or_else(|| addrs(&p));
                match p.update().await {
                    Ok(()) => prune(&p, &shared, &before),
                    Err(e) => log::warn!("upstream {}: discovery failed: {e}", p.spec.name),
                }
                known = Some(addrs(&p));
                next_discovery = Instant::now() + dns.refresh;
            }
        }
        let interval = match &p.spec.health {
            Some(h) => {
                p.run_health_check().await;
                h.interval
            }
            None => p.spec.dns.as_ref().map(|d| d.refresh).unwrap_or(Duration::from_secs(5)),
        };
        for (addr, healthy) in p.health() {
            shared.metrics.set_target_health(&p.spec.name, addr, healthy);
        }
        p.checked.store(true, std::sync::atomic::Ordering::Release);
        drop(p);
        tokio::time::sleep(interval).await;
    }
}

/// The pool's targets now.
fn addrs(pool: &Pool) -> BTreeSet<SocketAddr> {
    pool.health().into_iter().map(|(a, _)| a).collect()
}

/// After a discovery round: forgets the targets that were in `before` and are gone now, their
/// per-target state and their metric series.
fn prune(pool: &Pool, shared: &Shared, before: &BTreeSet<SocketAddr>) {
    let now = addrs(pool);
    let gone = super::dns::vanished(before, &now);
    if gone.is_empty() {
        return;
    }
    pool.targets.retain(&now);
    for addr in gone {
        log::info!("upstream {}: target {addr} is no longer in DNS; removed", pool.spec.name);
        shared.metrics.remove_target(&pool.spec.name, addr);
    }
}
