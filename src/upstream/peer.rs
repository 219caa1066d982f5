//! The `HttpPeer` a request goes to: target address plus the upstream's timeouts, TLS and HTTP
//! version.

use crate::config::{UpstreamSpec, UpstreamTls};
use pingora::lb::Backend;
use pingora::upstreams::peer::HttpPeer;

/// Builds the peer for one chosen target.
pub fn build_peer(spec: &UpstreamSpec, backend: &Backend) -> Box<HttpPeer> {
    let tls = spec.tls.as_ref();
    let mut peer = HttpPeer::new(
        backend.addr.clone(),
        tls.is_some(),
        tls.map(|t| t.sni.clone()).unwrap_or_default(),
    );
    let o = &mut peer.options;
    o.connection_timeout = spec.timeouts.connect;
    o.read_timeout = spec.timeouts.read;
    o.write_timeout = spec.timeouts.write;
    o.idle_timeout = spec.timeouts.idle;
    if spec.http2 {
        o.set_http_version(2, 2);
    }
    if let Some(t) = tls {
        apply_tls(&mut peer, t);
    }
    Box::new(peer)
}

/// Verification settings for TLS to an upstream.
pub(super) fn apply_tls(peer: &mut HttpPeer, t: &UpstreamTls) {
    peer.options.verify_cert = t.verify;
    peer.options.verify_hostname = t.verify;
}
