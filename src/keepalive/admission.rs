//! `max_connections` and `max_connections_per_ip`: who may hold a connection open on a listener.
//!
//! One [`Admission`] per listener counts its open connections with an atomic and, per client,
//! in a sharded map (`DashMap`: a lock per shard, none global). A client is an IPv4 address, or
//! an IPv6 client's network of `limits.ipv6_prefix` bits (default /64): one host usually holds a
//! whole /64 and can open each connection from another of its 2^64 addresses, so counting per
//! /128 would not bound it. The rule is `rate_limit`'s ([`client_network`]), so both budgets
//! name the same client. A connection over a
//! limit is closed as it arrives and counted in `portico_connections_refused_total`; an admitted
//! one holds an [`Admitted`] guard whose drop gives its place back, however the connection ends.

use crate::config::ListenerLimits;
use dashmap::DashMap;
use portico_filters::rate_limit::client_network;
use prometheus::{IntCounter, IntGauge};
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The open connections of one listener and its limits on them.
pub struct Admission {
    open: AtomicUsize,
    per_ip: DashMap<IpAddr, usize>,
    max: usize,
    max_per_ip: usize,
    ipv6_prefix: u8,
    metrics: AdmissionMetrics,
}

/// A listener's connection metrics, resolved once when it starts.
pub struct AdmissionMetrics {
    /// `portico_connections_open{listener}`.
    pub open: IntGauge,
    /// `portico_connections_refused_total{listener, reason="max_connections"}`.
    pub refused_max: IntCounter,
    /// `portico_connections_refused_total{listener, reason="max_connections_per_ip"}`.
    pub refused_per_ip: IntCounter,
}

impl AdmissionMetrics {
    /// The handles for `listener` in `metrics`.
    pub fn of(metrics: &crate::telemetry::Metrics, listener: &str) -> Self {
        AdmissionMetrics {
            open: metrics.connections_open(listener),
            refused_max: metrics.connections_refused(listener, "max_connections"),
            refused_per_ip: metrics.connections_refused(listener, "max_connections_per_ip"),
        }
    }
}

/// Which limit refused a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// The listener holds `max_connections` already.
    MaxConnections,
    /// The client's address holds `max_connections_per_ip` already.
    MaxConnectionsPerIp,
}

impl Admission {
    /// Counts for a listener with these limits.
    pub fn new(limits: &ListenerLimits, metrics: AdmissionMetrics) -> Self {
        Admission {
            open: AtomicUsize::new(0),
            per_ip: DashMap::new(),
            max: limits.max_connections,
            max_per_ip: limits.max_connections_per_ip,
            ipv6_prefix: limits.ipv6_prefix,
            metrics,
        }
    }

    /// Takes a place for a new connection from `ip` (`None`: not an IP socket), or says which
    /// limit is full and counts the refusal.
    pub fn admit(&self, ip: Option<IpAddr>) -> Result<Admitted<'_>, Refused> {
        if self.open.fetch_add(1, Ordering::AcqRel) >= self.max {
            self.open.fetch_sub(1, Ordering::AcqRel);
            self.metrics.refused_max.inc();
            return Err(Refused::MaxConnections);
        }
        // IPv4 clients reaching an IPv6 socket count as the IPv4 address they are, IPv6 clients
        // as their network.
        let ip = ip.map(|ip| client_network(ip, self.ipv6_prefix));
        if let Some(ip) = ip {
            let mut n = self.per_ip.entry(ip).or_insert(0);
            if *n >= self.max_per_ip {
                drop(n);
                self.open.fetch_sub(1, Ordering::AcqRel);
                self.metrics.refused_per_ip.inc();
                return Err(Refused::MaxConnectionsPerIp);
            }
            *n += 1;
        }
        self.metrics.open.inc();
        Ok(Admitted { admission: self, ip })
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.open.load(Ordering::Acquire)
    }

    /// Connections open now from `ip`'s client (its IPv6 network).
    pub fn open_from(&self, ip: IpAddr) -> usize {
        self.per_ip.get(&client_network(ip, self.ipv6_prefix)).map_or(0, |n| *n)
    }
}

/// One admitted connection's place; dropping it gives the place back.
pub struct Admitted<'a> {
    admission: &'a Admission,
    ip: Option<IpAddr>,
}

impl Drop for Admitted<'_> {
    fn drop(&mut self) {
        let a = self.admission;
        if let Some(ip) = self.ip {
            // The last connection from an address removes its entry, so the map holds only
            // addresses with open connections.
            a.per_ip.remove_if_mut(&ip, |_, n| {
                *n = n.saturating_sub(1);
                *n == 0
            });
        }
        a.open.fetch_sub(1, Ordering::AcqRel);
        a.metrics.open.dec();
    }
}
