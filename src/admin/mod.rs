//! The admin listener: the dashboard (`GET /`), `/metrics`, `/healthz`, `/ready`, `/config`,
//! `/routes`, `/explain`, `/stats`, `POST /reload`, `POST /cache/purge`.
//!
//! Every request passes [`guard`] first: `Host` must name the admin address, writes from other
//! origins are refused, and with `admin.token` set everything but `/healthz`, `/ready`, the
//! dashboard page (which holds no data) and, with `metrics_public`, `/metrics` needs the token.
//! Refusals are JSON like every other answer here, and never carry data.

mod explain;
mod guard;
mod purge;
mod ready;
mod stats;
#[cfg(test)]
mod tests;

pub use guard::{host_allowed, Refusal};
pub use stats::{quantile, Latency};

use crate::state::Shared;
use async_trait::async_trait;
use http::{header, Method, Response, StatusCode};
use pingora::apps::http_app::ServeHttp;
use pingora::protocols::http::ServerSession;
use serde_json::json;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// The dashboard: one self-contained page (its script and styles inline, nothing fetched but
/// the admin API's own JSON).
const DASHBOARD: &str = include_str!("dashboard.html");

/// The admin API.
pub struct Admin {
    shared: Arc<Shared>,
    listeners: ready::ListenersUp,
}

impl Admin {
    /// The admin API over the shared state.
    pub fn new(shared: Arc<Shared>) -> Self {
        Admin { shared, listeners: ready::ListenersUp::default() }
    }
}

/// What a request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Endpoint {
    Dashboard,
    Metrics,
    Healthz,
    Ready,
    Config,
    Routes,
    Explain,
    Stats,
    Reload,
    Purge,
    /// A known path with the wrong method.
    WrongMethod,
    NotFound,
}

impl Endpoint {
    fn of(method: &Method, path: &str) -> Self {
        let get = *method == Method::GET;
        match path {
            "/" | "/index.html" if get => Endpoint::Dashboard,
            "/metrics" if get => Endpoint::Metrics,
            "/healthz" if get => Endpoint::Healthz,
            "/ready" if get => Endpoint::Ready,
            "/config" if get => Endpoint::Config,
            "/routes" if get => Endpoint::Routes,
            "/explain" if get => Endpoint::Explain,
            "/stats" if get => Endpoint::Stats,
            "/reload" if *method == Method::POST => Endpoint::Reload,
            "/cache/purge" if *method == Method::POST => Endpoint::Purge,
            "/" | "/index.html" | "/metrics" | "/healthz" | "/ready" | "/config" | "/routes" | "/explain"
            | "/stats" | "/reload" | "/cache/purge" => Endpoint::WrongMethod,
            _ => Endpoint::NotFound,
        }
    }

    /// Endpoints anyone who reaches the admin address may use: probes, and the page that asks
    /// for the token.
    fn open(self, metrics_public: bool) -> bool {
        matches!(self, Endpoint::Dashboard | Endpoint::Healthz | Endpoint::Ready)
            || (self == Endpoint::Metrics && metrics_public)
    }
}

fn reply(status: StatusCode, content_type: &str, body: Vec<u8>) -> Response<Vec<u8>> {
    let mut resp = Response::new(body);
    *resp.status_mut() = status;
    let headers = resp.headers_mut();
    if let Ok(v) = content_type.parse() {
        headers.insert(header::CONTENT_TYPE, v);
    }
    // Live data and a page that holds a token: never cached, never framed by another site.
    headers.insert(header::CACHE_CONTROL, http::HeaderValue::from_static("no-store"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, http::HeaderValue::from_static("nosniff"));
    let len = resp.body().len();
    resp.headers_mut().insert(header::CONTENT_LENGTH, len.into());
    resp
}

fn json(status: StatusCode, value: serde_json::Value) -> Response<Vec<u8>> {
    reply(status, "application/json", serde_json::to_vec(&value).unwrap_or_default())
}

fn error(status: StatusCode, code: &str, message: impl Into<String>) -> Response<Vec<u8>> {
    json(status, json!({"error": code, "message": message.into()}))
}

impl Admin {
    async fn serve(&self, endpoint: Endpoint, query: Option<&str>, body: &[u8]) -> Response<Vec<u8>> {
        match endpoint {
            Endpoint::Dashboard => {
                let mut resp = reply(StatusCode::OK, "text/html; charset=utf-8", DASHBOARD.as_bytes().to_vec());
                let h = resp.headers_mut();
                h.insert(
                    header::CONTENT_SECURITY_POLICY,
                    http::HeaderValue::from_static(
                        "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; \
                         connect-src 'self'; img-src data:; base-uri 'none'; form-action 'none'; \
                         frame-ancestors 'none'",
                    ),
                );
                h.insert(header::X_FRAME_OPTIONS, http::HeaderValue::from_static("DENY"));
                h.insert(header::REFERRER_POLICY, http::HeaderValue::from_static("no-referrer"));
                resp
            }
            Endpoint::Metrics => {
                reply(StatusCode::OK, "text/plain; version=0.0.4; charset=utf-8", self.shared.metrics.render())
            }
            Endpoint::Healthz => json(StatusCode::OK, json!({"status": "ok"})),
            Endpoint::Ready => self.ready().await,
            Endpoint::Config => json(StatusCode::OK, self.shared.runtime.load().config.effective.clone()),
            Endpoint::Routes => json(StatusCode::OK, explain::routes(&self.shared.runtime.load())),
            Endpoint::Explain => match explain::explain(&self.shared.runtime.load(), query) {
                Ok(report) => json(StatusCode::OK, report),
                Err(message) => error(StatusCode::BAD_REQUEST, "bad_request", message),
            },
            Endpoint::Stats => json(StatusCode::OK, stats::stats(&self.shared)),
            Endpoint::Reload => match self.shared.reload().await {
                Ok(generation) => json(StatusCode::OK, json!({"status": "reloaded", "generation": generation})),
                Err(e) => json(StatusCode::BAD_REQUEST, e.to_json()),
            },
            Endpoint::Purge => purge::purge(body),
            Endpoint::WrongMethod => {
                error(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", "wrong method for this admin endpoint")
            }
            Endpoint::NotFound => error(StatusCode::NOT_FOUND, "not_found", "no such admin endpoint"),
        }
    }

    async fn ready(&self) -> Response<Vec<u8>> {
        let mut waiting = self.listeners.not_up(&self.shared).await;
        let runtime = self.shared.runtime.load();
        waiting.extend(runtime.pools.iter().filter(|p| !p.checked()).map(|p| p.spec.name.to_string()));
        if !self.shared.ready.load(Ordering::Acquire) {
            json(StatusCode::SERVICE_UNAVAILABLE, json!({"status": "draining"}))
        } else if !waiting.is_empty() {
            // Not before every listener accepts connections and every pool's first health
            // check is done: until then a target that is down would still get traffic.
            json(StatusCode::SERVICE_UNAVAILABLE, json!({"status": "starting", "waiting_for": waiting}))
        } else {
            json(StatusCode::OK, json!({"status": "ready", "generation": runtime.generation}))
        }
    }
}

#[async_trait]
impl ServeHttp for Admin {
    async fn response(&self, session: &mut ServerSession) -> Response<Vec<u8>> {
        let req = session.req_header();
        let method = req.method.clone();
        let path = req.uri.path().to_string();
        let query = req.uri.query().map(str::to_string);
        let endpoint = Endpoint::of(&method, &path);
        let checked = {
            let runtime = self.shared.runtime.load();
            let access = &runtime.config.admin_access;
            let admin = runtime.config.admin;
            guard::check(&method, &req.headers, admin, access, endpoint.open(access.metrics_public))
                .map_err(|refusal| refusal.answer(admin))
        };
        // Read the body (what a purge says; bounded), draining the rest so the connection can be
        // reused.
        let mut body = Vec::new();
        while let Ok(Some(chunk)) = session.read_request_body().await {
            if endpoint == Endpoint::Purge && body.len() + chunk.len() <= purge::MAX_BODY_BYTES {
                body.extend_from_slice(&chunk);
            }
        }
        if let Err((status, code, message)) = checked {
            let mut resp = error(status, code, message);
            if status == StatusCode::UNAUTHORIZED {
                resp.headers_mut()
                    .insert(header::WWW_AUTHENTICATE, http::HeaderValue::from_static("Bearer realm=\"portico admin\""));
            }
            return resp;
        }
        self.serve(endpoint, query.as_deref(), &body).await
    }
}
