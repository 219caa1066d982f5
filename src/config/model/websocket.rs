//! The runtime form of `routes[].websocket` (compiled in `config/compile/websocket.rs`, used by
//! `proxy/websocket/`).

use std::time::Duration;

/// A route's `websocket:` settings: what an upgraded connection (a tunnel) on it may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WebSocketSpec {
    /// A tunnel with no bytes either way for this long is closed; it also bounds the wait for
    /// the upstream's answer to the upgrade.
    pub idle_timeout: Duration,
}
