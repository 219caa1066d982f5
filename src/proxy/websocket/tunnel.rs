//! One upgraded connection, from the upstream's 101 to its close: a guard that counts it open
//! while it lives, counts the bytes each way, and knows why it closed.

use super::frames::Frames;
use super::tunnels::Tunnels;
use prometheus::{IntCounter, IntGauge};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Why a tunnel ended: the `reason` label of `portico_websocket_closed_total` and the access
/// line's `websocket.close`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Close {
    /// The client sent the first WebSocket Close frame, or (no Close frame seen, or not a
    /// WebSocket) closed its side first.
    ClientClosed,
    /// The upstream did.
    UpstreamClosed,
    /// No bytes either way for the route's `websocket.idle_timeout_s` (or, on a route without
    /// `websocket:`, the listener's `body_timeout_s` or the upstream's `read_ms`).
    IdleTimeout,
    /// The shutdown grace period ended.
    Shutdown,
    /// A read or write failed.
    Error,
}

impl Close {
    /// The label and log value.
    pub fn as_str(self) -> &'static str {
        match self {
            Close::ClientClosed => "client_closed",
            Close::UpstreamClosed => "upstream_closed",
            Close::IdleTimeout => "idle_timeout",
            Close::Shutdown => "shutdown",
            Close::Error => "error",
        }
    }
}

/// An open tunnel. Counted in `portico_websocket_open` and known to [`Tunnels::close_all`]
/// until dropped.
pub struct Tunnel {
    tunnels: Arc<Tunnels>,
    route: Arc<str>,
    id: Option<u64>,
    open: IntGauge,
    to_upstream: IntCounter,
    to_client: IntCounter,
    /// Set by [`Tunnels::close_all`] before it shuts the socket.
    closing: Arc<AtomicBool>,
    upgraded: Instant,
    /// Bytes from the client to the upstream.
    pub bytes_in: u64,
    /// Bytes from the upstream to the client.
    pub bytes_out: u64,
    close: Option<Close>,
    /// Each direction's WebSocket frames, when the upgrade is to `websocket`.
    frames: Option<Box<[Frames; 2]>>,
}

impl Tunnel {
    /// A tunnel of `route` just upgraded; `fd` is the client socket, when there is one;
    /// `websocket`: the upgrade is to WebSocket, whose frames tell who closed.
    pub fn open(tunnels: &Arc<Tunnels>, route: Arc<str>, fd: Option<i32>, websocket: bool) -> Self {
        let open = tunnels.open.with_label_values(&[&*route]);
        open.inc();
        tunnels.upgrades.with_label_values(&[&*route]).inc();
        let closing = Arc::new(AtomicBool::new(false));
        let id = fd.map(|fd| tunnels.remember(fd, closing.clone()));
        Tunnel {
            to_upstream: tunnels.bytes.with_label_values(&[&*route, "client_to_upstream"]),
            to_client: tunnels.bytes.with_label_values(&[&*route, "upstream_to_client"]),
            tunnels: tunnels.clone(),
            route,
            id,
            open,
            closing,
            upgraded: Instant::now(),
            bytes_in: 0,
            bytes_out: 0,
            close: None,
            frames: websocket.then(Box::default),
        }
    }

    /// Counts the bytes from the client; `end`: the client closed its side.
    pub fn client_bytes(&mut self, data: &[u8], end: bool) {
        let n = data.len() as u64;
        self.bytes_in += n;
        self.to_upstream.inc_by(n);
        if self.frames.as_mut().is_some_and(|f| f[0].feed(data)) || end {
            self.close.get_or_insert(Close::ClientClosed);
        }
    }

    /// Counts the bytes from the upstream; `end`: the upstream closed its side.
    pub fn upstream_bytes(&mut self, data: &[u8], end: bool) {
        let n = data.len() as u64;
        self.bytes_out += n;
        self.to_client.inc_by(n);
        if self.frames.as_mut().is_some_and(|f| f[1].feed(data)) || end {
            self.close.get_or_insert(Close::UpstreamClosed);
        }
    }

    /// Why it ended, given the error the request ended with (if any): the shutdown first (it
    /// looks like a client close), then a timeout, then whichever side closed first.
    pub fn finish(&mut self, e: Option<&pingora::Error>) -> Close {
        use pingora::ErrorType::*;
        let close = if self.closing.load(Ordering::Acquire) {
            Close::Shutdown
        } else {
            match e.map(|e| e.etype()) {
                Some(ReadTimedout | WriteTimedout) => Close::IdleTimeout,
                Some(_) if self.close.is_none() => Close::Error,
                _ => self.close.unwrap_or(Close::Error),
            }
        };
        self.close = Some(close);
        close
    }

    /// How long the tunnel has been open.
    pub fn age(&self) -> Duration {
        self.upgraded.elapsed()
    }

    /// The close reason, once [`Tunnel::finish`] ran.
    pub fn close_reason(&self) -> Option<Close> {
        self.close
    }
}

impl Drop for Tunnel {
    fn drop(&mut self) {
        if let Some(id) = self.id {
            self.tunnels.forget(id);
        }
        self.open.dec();
        let reason = match self.close {
            Some(c) => c,
            None if self.closing.load(Ordering::Acquire) => Close::Shutdown,
            None => Close::Error,
        };
        self.tunnels.closed.with_label_values(&[&*self.route, reason.as_str()]).inc();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::Metrics;
    use pingora::{Error, ErrorType};

    fn tunnel(websocket: bool) -> (Arc<Tunnels>, Tunnel) {
        let tunnels = Arc::new(Tunnels::new(&Metrics::new().expect("metrics")));
        let t = Tunnel::open(&tunnels, "chat".into(), None, websocket);
        (tunnels, t)
    }

    /// A masked Close frame with status 1000, as a client sends it.
    const CLOSE_FRAME: [u8; 8] = [0x88, 0x82, 0, 0, 0, 0, 0x03, 0xe8];

    #[test]
    fn the_first_close_frame_names_who_closed_whatever_tcp_says() {
        let (_, mut t) = tunnel(true);
        t.client_bytes(b"\x81\x80\0\0\0\0", false);
        t.client_bytes(&CLOSE_FRAME, false);
        t.upstream_bytes(b"\x88\x02\x03\xe8", true);
        assert_eq!(t.finish(None), Close::ClientClosed, "the client asked, though the server closed TCP first");
        assert_eq!((t.bytes_in, t.bytes_out), (14, 4));
    }

    #[test]
    fn timeouts_and_shutdown_win_over_what_the_bytes_said() {
        let (_, mut t) = tunnel(true);
        t.upstream_bytes(b"", true);
        assert_eq!(t.finish(Some(&Error::new(ErrorType::ReadTimedout))), Close::IdleTimeout);
        let (_, mut t) = tunnel(false);
        t.closing.store(true, Ordering::Release);
        t.client_bytes(b"", true);
        assert_eq!(t.finish(None), Close::Shutdown);
        let (_, mut t) = tunnel(false);
        assert_eq!(t.finish(Some(&Error::new(ErrorType::WriteError))), Close::Error);
    }

    #[test]
    fn the_gauge_counts_open_tunnels_until_dropped() {
        let (tunnels, t) = tunnel(true);
        let open = tunnels.open.with_label_values(&["chat"]);
        assert_eq!(open.get(), 1);
        drop(t);
        assert_eq!(open.get(), 0);
        assert_eq!(tunnels.closed.with_label_values(&["chat", "error"]).get(), 1, "no reason recorded: error");
    }
}
