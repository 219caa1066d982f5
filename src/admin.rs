//! The admin listener: `/metrics`, `/healthz`, `/ready`, `/config`, `POST /reload`.
//! Keep it on a loopback or private address: it has no authentication of its own.

use crate::state::Shared;
use async_trait::async_trait;
use http::{Response, StatusCode};
use pingora::apps::http_app::ServeHttp;
use pingora::protocols::http::ServerSession;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// The admin API.
pub struct Admin {
    shared: Arc<Shared>,
    /// Set once every listener has accepted a connection: Pingora starts each service on its
    /// own thread, so the admin API can answer before a listener is bound.
    listeners_up: AtomicBool,
}

impl Admin {
    /// The admin API over the shared state.
    pub fn new(shared: Arc<Shared>) -> Self {
        Admin { shared, listeners_up: AtomicBool::new(false) }
    }

    /// Listeners not accepting connections yet (checked by connecting to each until all have
    /// answered once).
    async fn listeners_not_up(&self) -> Vec<String> {
        if self.listeners_up.load(Ordering::Acquire) {
            return Vec::new();
        }
        let config = self.shared.runtime.load().config.clone();
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
            self.listeners_up.store(true, Ordering::Release);
        }
        down
    }
}

fn reply(status: StatusCode, content_type: &str, body: Vec<u8>) -> Response<Vec<u8>> {
    let mut resp = Response::new(body);
    *resp.status_mut() = status;
    if let Ok(v) = content_type.parse() {
        resp.headers_mut().insert(http::header::CONTENT_TYPE, v);
    }
    let len = resp.body().len();
    resp.headers_mut().insert(http::header::CONTENT_LENGTH, len.into());
    resp
}

fn json(status: StatusCode, value: serde_json::Value) -> Response<Vec<u8>> {
    reply(status, "application/json", serde_json::to_vec(&value).unwrap_or_default())
}

#[async_trait]
impl ServeHttp for Admin {
    async fn response(&self, session: &mut ServerSession) -> Response<Vec<u8>> {
        let method = session.req_header().method.clone();
        let path = session.req_header().uri.path().to_string();
        // Drain any request body so the connection can be reused.
        while let Ok(Some(_)) = session.read_request_body().await {}
        match (method.as_str(), path.as_str()) {
            ("GET", "/metrics") => {
                reply(StatusCode::OK, "text/plain; version=0.0.4; charset=utf-8", self.shared.metrics.render())
            }
            ("GET", "/healthz") => json(StatusCode::OK, serde_json::json!({"status": "ok"})),
            ("GET", "/ready") => {
                let mut waiting = self.listeners_not_up().await;
                let runtime = self.shared.runtime.load();
                waiting.extend(runtime.pools.iter().filter(|p| !p.checked()).map(|p| p.spec.name.to_string()));
                if !self.shared.ready.load(Ordering::Acquire) {
                    json(StatusCode::SERVICE_UNAVAILABLE, serde_json::json!({"status": "draining"}))
                } else if !waiting.is_empty() {
                    // Not before every listener accepts connections and every pool's first
                    // health check is done: until then a target that is down would still get
                    // traffic.
                    json(
                        StatusCode::SERVICE_UNAVAILABLE,
                        serde_json::json!({"status": "starting", "waiting_for": waiting}),
                    )
                } else {
                    json(StatusCode::OK, serde_json::json!({"status": "ready", "generation": runtime.generation}))
                }
            }
            ("GET", "/config") => {
                let runtime = self.shared.runtime.load();
                json(StatusCode::OK, runtime.config.effective.clone())
            }
            ("POST", "/reload") => match self.shared.reload().await {
                Ok(generation) => {
                    json(StatusCode::OK, serde_json::json!({"status": "reloaded", "generation": generation}))
                }
                Err(e) => json(StatusCode::BAD_REQUEST, e.to_json()),
            },
            (_, "/metrics" | "/healthz" | "/ready" | "/config" | "/reload") => json(
                StatusCode::METHOD_NOT_ALLOWED,
                serde_json::json!({"error": "method_not_allowed", "message": "wrong method for this admin endpoint"}),
            ),
            _ => json(
                StatusCode::NOT_FOUND,
                serde_json::json!({"error": "not_found", "message": "no such admin endpoint"}),
            ),
        }
    }
}
