//! TLS termination on a listener.

use crate::config::ListenerTls;
use pingora::listeners::tls::TlsSettings;
use pingora::proxy::HttpProxy;
use pingora::services::listening::Service;

/// Adds a TLS endpoint for `addr` to a listener's service: the first certificate, TLS 1.2 and
/// newer, HTTP/2 by ALPN when asked.
pub fn add_tls_listener<A>(
    service: &mut Service<HttpProxy<A>>,
    addr: &str,
    tls: &ListenerTls,
    http2: bool,
) where
    HttpProxy<A>: pingora::apps::ServerApp + Send + Sync + 'static,
{
    let Some(first) = tls.certs.first() else {
        log::error!("listener {addr}: TLS needs a certificate");
        return;
    };
    match TlsSettings::intermediate(&first.cert.to_string_lossy(), &first.key.to_string_lossy()) {
        Ok(mut settings) => {
            if http2 {
                settings.enable_h2();
            }
            service.add_tls_with_settings(addr, None, settings);
        }
        Err(e) => log::error!(
            "listener {addr}: cannot load certificate {}: {e}",
            first.cert.display()
        ),
    }
}
