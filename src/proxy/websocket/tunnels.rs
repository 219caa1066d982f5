//! Every open tunnel of the process: the `portico_websocket_*` metrics, and a way to close them
//! all when the shutdown grace period ends.
//!
//! Pingora relays an upgraded connection inside the request's own task and offers no handle to
//! stop it. Shutting the client socket down (`shutdown(2)`) does: the tunnel's next read sees
//! the end of the stream, the relay ends as if the client had gone, and the request's `logging`
//! phase runs (so each tunnel still gets its access-log line). The socket is named by its file
//! descriptor and checked by its kernel cookie before it is shut, so a descriptor the kernel
//! has since given to another connection is left alone.

use crate::telemetry::Metrics;
use dashmap::DashMap;
use prometheus::{IntCounterVec, IntGaugeVec, Opts};
use std::os::unix::io::RawFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

/// The process's open tunnels and their metrics (one, in [`crate::state::Shared`]).
pub struct Tunnels {
    pub(super) open: IntGaugeVec,
    pub(super) upgrades: IntCounterVec,
    pub(super) bytes: IntCounterVec,
    pub(super) closed: IntCounterVec,
    live: DashMap<u64, Socket>,
    next_id: AtomicU64,
}

/// A tunnel's client socket, as [`Tunnels::close_all`] finds it.
struct Socket {
    fd: RawFd,
    cookie: Option<u64>,
    closing: Arc<AtomicBool>,
}

impl Tunnels {
    /// The metrics, registered with `metrics` (failures are logged: the tunnels work without).
    pub fn new(metrics: &Metrics) -> Self {
        let open = IntGaugeVec::new(
            Opts::new("portico_websocket_open", "Upgraded connections (WebSocket tunnels) open now, by route"),
            &["route"],
        )
        .expect("the metric's name and labels are valid");
        let upgrades = IntCounterVec::new(
            Opts::new("portico_websocket_upgrades_total", "Connections upgraded (101 from the upstream), by route"),
            &["route"],
        )
        .expect("the metric's name and labels are valid");
        let bytes = IntCounterVec::new(
            Opts::new(
                "portico_websocket_bytes_total",
                "Bytes relayed through upgraded connections, by route and direction",
            ),
            &["route", "direction"],
        )
        .expect("the metric's name and labels are valid");
        let closed = IntCounterVec::new(
            Opts::new("portico_websocket_closed_total", "Upgraded connections closed, by route and reason"),
            &["route", "reason"],
        )
        .expect("the metric's name and labels are valid");
        for m in [&upgrades, &bytes, &closed] {
            if let Err(e) = metrics.register(Box::new(m.clone())) {
                log::error!("cannot register a websocket metric: {e}");
            }
        }
        if let Err(e) = metrics.register(Box::new(open.clone())) {
            log::error!("cannot register a websocket metric: {e}");
        }
        Tunnels { open, upgrades, bytes, closed, live: DashMap::new(), next_id: AtomicU64::new(1) }
    }

    /// Records the client socket `fd` of a new tunnel; the id is for [`Tunnels::forget`].
    pub(super) fn remember(&self, fd: RawFd, closing: Arc<AtomicBool>) -> u64 {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let cookie = pingora::protocols::l4::ext::get_socket_cookie(fd).ok();
        self.live.insert(id, Socket { fd, cookie, closing });
        id
    }

    /// Forgets a tunnel: called before its socket is closed, so the descriptor is never shut
    /// after the kernel reused it.
    pub(super) fn forget(&self, id: u64) {
        self.live.remove(&id);
    }

    /// Closes every open tunnel (the shutdown grace period is over); each ends with the close
    /// reason `shutdown` and its access-log line.
    pub fn close_all(&self) {
        let mut closed = 0;
        for s in self.live.iter() {
            // Holding the map's entry keeps the tunnel from being forgotten, hence its socket
            // from being closed, until the shutdown below is done.
            let same = match s.cookie {
                Some(c) => pingora::protocols::l4::ext::get_socket_cookie(s.fd).ok() == Some(c),
                None => true,
            };
            if same {
                s.closing.store(true, Ordering::Release);
                if nix::sys::socket::shutdown(s.fd, nix::sys::socket::Shutdown::Both).is_ok() {
                    closed += 1;
                }
            }
        }
        if closed > 0 {
            log::info!("shutting down: closed {closed} websocket tunnel(s)");
        }
    }
}
