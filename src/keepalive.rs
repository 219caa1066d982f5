//! Idle HTTP/1 keep-alive connections that hold their socket and little else.
//!
//! Pingora's HTTP/1 loop (`ServerApp::process_new` in pingora-core) asks the proxy to handle the
//! next request as soon as the previous one is done. That call allocates the whole request
//! future at once, sized for the deepest state of the proxy pipeline, plus a 4 KiB header
//! buffer, and both then sit there while the client thinks: about 31 KB per idle connection,
//! where nginx holds under 1 KB. [`KeepaliveApp`] runs the same loop but waits for the next
//! request's first byte before it hands the connection back to Pingora, so an idle connection
//! costs about 11-12 KiB, mostly its 4 KiB read buffer, the connection task and Tokio's I/O
//! registration (benches/RESULTS.md has the figures).
//!
//! It also applies the listener's `keepalive_timeout_s`. Everything else is Pingora's: HTTP/2
//! connections (ALPN or h2c preface) go to its own loop untouched, and each request still runs
//! through `HttpProxy::process_new_http`. TLS streams cannot be peeked, so on TLS listeners
//! Pingora's own read does the waiting (and the memory stays as it was).

use async_trait::async_trait;
use pingora::apps::{HttpServerApp, ServerApp};
use pingora::protocols::http::ServerSession;
use pingora::protocols::{Stream, ALPN};
use pingora::proxy::{HttpProxy, ProxyHttp};
use pingora::server::ShutdownWatch;
use std::sync::Arc;
use std::time::Duration;

/// The HTTP/2 connection preface an h2c client opens with.
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// A Pingora HTTP proxy app whose idle keep-alive connections wait without a request's
/// allocations.
pub struct KeepaliveApp<SV: ProxyHttp> {
    inner: Arc<HttpProxy<SV>>,
    /// How long a connection may wait for its next request; `None`: one request per connection.
    idle_timeout: Option<Duration>,
}

impl<SV: ProxyHttp> KeepaliveApp<SV> {
    /// Wraps a configured proxy (its `server_options`, such as h2c, are honoured).
    pub fn new(proxy: HttpProxy<SV>, idle_timeout: Option<Duration>) -> Self {
        KeepaliveApp { inner: Arc::new(proxy), idle_timeout }
    }

    fn h2c(&self) -> bool {
        self.inner.server_options.as_ref().is_some_and(|o| o.h2c)
    }
}

#[async_trait]
impl<SV> ServerApp for KeepaliveApp<SV>
where
    SV: ProxyHttp + Send + Sync + 'static,
    SV::CTX: Send + Sync,
{
    async fn process_new(self: &Arc<Self>, mut stream: Stream, shutdown: &ShutdownWatch) -> Option<Stream> {
        // HTTP/2 by ALPN: Pingora's loop as it is.
        if matches!(stream.selected_alpn_proto(), Some(ALPN::H2)) {
            return ServerApp::process_new(&self.inner, stream, shutdown).await;
        }
        if self.h2c() && stream.get_ssl_digest().is_none() {
            let mut preface = [0u8; H2_PREFACE.len()];
            match stream.try_peek(&mut preface).await {
                Ok(true) if preface == H2_PREFACE => {
                    return ServerApp::process_new(&self.inner, stream, shutdown).await
                }
                Ok(_) => {}
                Err(_) => return None,
            }
        }

        // Even the first request is waited for without a request's allocations.
        if !self.next_request_arrives(&mut stream, shutdown).await {
            return None;
        }
        let mut session = ServerSession::new_http1(stream);
        let keepalive = self.idle_timeout.filter(|_| !*shutdown.borrow());
        session.set_keepalive(keepalive.map(|t| t.as_secs().max(1)));
        let limit = self.inner.server_options.as_ref().and_then(|o| o.keepalive_request_limit);
        session.set_keepalive_reuses_remaining(limit);
        let mut result = self.inner.process_new_http(session, shutdown).await;
        while let Some((mut stream, settings)) = result.map(|r| r.consume()) {
            if !self.next_request_arrives(&mut stream, shutdown).await {
                return None;
            }
            let mut session = ServerSession::new_http1(stream);
            if let Some(settings) = settings {
                settings.apply_to_session(&mut session);
            }
            result = self.inner.process_new_http(session, shutdown).await;
        }
        None
    }

    async fn cleanup(&self) {
        // Pingora's proxy marks itself shutting down and wakes the requests it keeps waiting.
        self.inner.http_cleanup().await;
    }
}

impl<SV: ProxyHttp> KeepaliveApp<SV> {
    /// Waits for the first byte of the next request: `false` when the client closes, the
    /// connection stays idle for the listener's keep-alive timeout, or the server is shutting
    /// down.
    ///
    /// The idle timer is Pingora's shared 10 ms timer wheel (what its own keep-alive reads use):
    /// a Tokio timer per request woke the runtime's driver with a syscall every time. Shutdown
    /// is checked without a lock before waiting; a connection idle when shutdown starts closes
    /// when the process exits after draining.
    async fn next_request_arrives(&self, stream: &mut Stream, shutdown: &ShutdownWatch) -> bool {
        if shutdown.has_changed().unwrap_or(true) {
            return false;
        }
        let mut first = [0u8; 1];
        let idle = self.idle_timeout.unwrap_or(FIRST_REQUEST_TIMEOUT);
        // `Ok(false)`: this stream (TLS) cannot peek; Pingora's own read then waits instead.
        matches!(pingora::time::fast_timeout::fast_timeout(idle, stream.try_peek(&mut first)).await, Ok(Ok(_)))
    }
}

/// How long a new connection may take to start its request when keep-alive is off.
const FIRST_REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
