//! What every request reads: the current runtime config (swapped atomically on reload, with
//! its tracer), the metrics and the access log.

use crate::config::{AccessLogTarget, Config, ListenerSpec};
use crate::routing::Router;
use crate::telemetry::access_log::Sink;
use crate::telemetry::otlp::{Tracer, TracingMetrics};
use crate::telemetry::{AccessLog, Metrics, RouteMetrics};
use crate::upstream::budget::RetryBudget;
use crate::upstream::limit::Limit;
use crate::upstream::Pools;
use arc_swap::ArcSwap;
use http::HeaderName;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::Arc;

/// Everything built from one config file. Requests hold an `Arc` to the one they started on, so
/// a reload never changes a request mid-flight.
pub struct Runtime {
    /// The validated config.
    pub config: Arc<Config>,
    /// Route tables per listener.
    pub router: Router,
    /// Upstream pools.
    pub pools: Pools,
    /// Listeners by name.
    pub listeners: HashMap<Arc<str>, Arc<ListenerSpec>>,
    /// Per-route state (metrics, retry budget, in-flight limit), indexed by the route's position
    /// in the file.
    pub routes: Vec<RouteRuntime>,
    /// Metric handles for requests no route took.
    pub unrouted_metrics: RouteMetrics,
    /// The span exporter of the `tracing:` section, when there is one; the previous config's
    /// when the section did not change, so a reload keeps its queue and connection.
    pub tracer: Option<Arc<Tracer>>,
    /// Increments with every successful reload.
    pub generation: u64,
    /// The identity headers Portico or a filter sets (every chain's `identity_headers()` on
    /// every listener and route, and every `forward_client_cert`), beyond the fixed forgeable
    /// table: edge listeners strip them all from every request, so a client cannot send a claim
    /// header to a route whose own chain would not have replaced it.
    pub identity_headers: Vec<HeaderName>,
}

impl Runtime {
    /// Compiles routes and pools for `config`, reusing unchanged pools (and an unchanged tracer)
    /// from `previous`; `tracing` are the process's tracing counters.
    pub async fn build(
        config: Config,
        previous: Option<&Runtime>,
        metrics: &Metrics,
        tracing: &TracingMetrics,
        generation: u64,
    ) -> Self {
        let cache = crate::cache::configure(config.cache_store.as_ref(), metrics);
        let names: Vec<Arc<str>> = config.listeners.iter().map(|l| l.name.clone()).collect();
        let router = Router::new(&names, &config.routes);
        let pools = Pools::build(&config.upstreams, previous.map(|p| &p.pools)).await;
        let listeners = config.listeners.iter().map(|l| (l.name.clone(), l.clone())).collect();
        let routes = config
            .routes
            .iter()
            .map(|r| RouteRuntime {
                metrics: metrics.route(&r.name),
                budget: r.retry.as_ref().map(|rt| RetryBudget::new(rt.budget_percent)),
                limit: r.max_in_flight.map(Limit::new),
                cache: cache.filter(|_| r.cache.is_some()).map(|c| c.metrics.route(&r.name)),
            })
            .collect();
        let tracer = Tracer::for_config(config.tracing.as_ref(), previous.and_then(|p| p.tracer.as_ref()), tracing);
        let identity_headers = identity_headers(&config);
        Runtime {
            identity_headers,
            config: Arc::new(config),
            router,
            pools,
            listeners,
            routes,
            unrouted_metrics: metrics.route(""),
            tracer,
            generation,
        }
    }
}

/// The union of the names every filter chain of `config` declares it sets and the listeners'
/// `forward_client_cert` headers, without those [`crate::canonical::FORGEABLE`] has already.
fn identity_headers(config: &Config) -> Vec<HeaderName> {
    let chains = config.listeners.iter().map(|l| &l.filters).chain(config.routes.iter().map(|r| &r.filters));
    let declared = chains.flat_map(|c| c.identity_headers().iter());
    let certs = config.listeners.iter().filter_map(|l| l.forward_client_cert.as_ref());
    let mut names: Vec<HeaderName> = Vec::new();
    for name in declared.chain(certs) {
        if !crate::canonical::identity::is_forgeable(name.as_str()) && !names.contains(name) {
            names.push(name.clone());
        }
    }
    names
}

/// What a route keeps besides its config.
pub struct RouteRuntime {
    /// Metric handles.
    pub metrics: RouteMetrics,
    /// Retry budget, when the route retries.
    pub budget: Option<RetryBudget>,
    /// The route's `max_in_flight`, when set.
    pub limit: Option<Limit>,
    /// The route's cache lookup counters, when it caches.
    pub cache: Option<crate::cache::RouteCacheMetrics>,
}

/// State shared by every service of the process.
pub struct Shared {
    /// The current runtime config.
    pub runtime: ArcSwap<Runtime>,
    /// Prometheus metrics.
    pub metrics: Metrics,
    /// The tracing exporter's counters, registered once and shared by every tracer a reload
    /// starts.
    pub tracing_metrics: TracingMetrics,
    /// The access log.
    pub access_log: AccessLog,
    /// Every TLS listener's certificates, read again by reloads (src/tls/listener.rs).
    pub certs: crate::tls::CertRegistry,
    /// Serializes reloads (src/reload.rs).
    pub(crate) reload_lock: tokio::sync::Mutex<()>,
    /// The last generation handed out.
    pub(crate) generation: AtomicU64,
    /// False once shutdown starts, for `/ready`.
    pub ready: AtomicBool,
    /// The latest reload attempt (SIGHUP or admin API), for the dashboard.
    pub last_reload: arc_swap::ArcSwapOption<LastReload>,
    /// Open WebSocket tunnels and their metrics (src/proxy/websocket/).
    pub tunnels: Arc<crate::proxy::Tunnels>,
}

/// How the latest reload went.
#[derive(Debug)]
pub struct LastReload {
    /// When it finished, in milliseconds since the Unix epoch.
    pub at_ms: u64,
    /// The new generation, or why the new file was refused.
    pub result: Result<u64, crate::reload::ReloadError>,
}

impl LastReload {
    /// The outcome of a reload that just finished.
    pub fn now(result: Result<u64, crate::reload::ReloadError>) -> Self {
        let at_ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis());
        LastReload { at_ms: at_ms as u64, result }
    }
}

impl Shared {
    /// Shared state around a first runtime.
    pub fn new(
        runtime: Runtime,
        metrics: Metrics,
        tracing_metrics: TracingMetrics,
        access_log: AccessLog,
    ) -> Arc<Self> {
        if let Err(e) = metrics.register(Box::new(access_log.dropped_counter())) {
            log::error!("cannot register the access log's drop counter: {e}");
        }
        if let Err(e) = metrics.register(Box::new(crate::mirror::dropped_counter().clone())) {
            log::error!("cannot register the mirror's drop counter: {e}");
        }
        let tunnels = Arc::new(crate::proxy::Tunnels::new(&metrics));
        if let Err(e) = metrics.register(Box::new(crate::compose::parts_counter().clone())) {
            log::error!("cannot register the aggregate parts counter: {e}");
        }
        Arc::new(Shared {
            tunnels,
            generation: AtomicU64::new(runtime.generation),
            runtime: ArcSwap::from_pointee(runtime),
            metrics,
            tracing_metrics,
            access_log,
            certs: Default::default(),
            reload_lock: tokio::sync::Mutex::new(()),
            ready: AtomicBool::new(true),
            last_reload: Default::default(),
        })
    }
}

/// Opens the access-log sink a config asks for.
pub fn access_log_sink(target: &AccessLogTarget) -> std::io::Result<Option<Sink>> {
    Sink::open(target)
}
