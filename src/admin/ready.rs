//! `GET /ready`'s question: is every listener accepting connections yet?

use crate::state::Shared;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Remembers once every listener has accepted a connection: Pingora starts each service on its
/// own thread, so the admin API can answer before a listener is bound.
#[derive(Default)]
pub struct ListenersUp(AtomicBool);

impl ListenersUp {
    /// Listeners not accepting connections yet (checked by connecting to each until all have
    /// answered once).
    pub async fn not_up(&self, shared: &Shared) -> Vec<String> {
        if self.0.load(Ordering::Acquire) {
            return Vec::new();
        }
        let config = shared.runtime.load().config.clone();
        let mut down = Vec::new();
        for l in &config.listeners {
            let Ok(addr) = l.listen.parse::<SocketAddr>() else { continue };
            // A wildcard address is reached over loopback (IPv4 too for `[::]`, which is
            // usually dual-stack, in case the machine has no IPv6 loopback).
            let candidates: Vec<SocketAddr> = match addr.ip() {
                ip if !ip.is_unspecified() => vec![addr],
                std::net::IpAddr::V4(_) => vec![(Ipv4Addr::LOCALHOST, addr.port()).into()],
                std::net::IpAddr::V6(_) => {
                    vec![(Ipv6Addr::LOCALHOST, addr.port()).into(), (Ipv4Addr::LOCALHOST, addr.port()).into()]
                }
            };
            let mut up = false;
            for candidate in candidates {
                let connect =
                    tokio::time::timeout(Duration::from_millis(200), tokio::net::TcpStream::connect(candidate));
                if matches!(connect.await, Ok(Ok(_))) {
                    up = true;
                    break;
                }
            }
            if !up {
                down.push(format!("listener {}", l.name));
            }
        }
        if down.is_empty() {
            self.0.store(true, Ordering::Release);
        }
        down
    }
}
