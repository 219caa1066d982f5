//! What every request reads: the current runtime config (swapped atomically on reload), the
//! metrics and the access log.

use crate::config::{self, AccessLogTarget, Config, ListenerSpec};
use crate::routing::Router;
use crate::telemetry::{AccessLog, Metrics, RouteMetrics};
use crate::upstream::budget::RetryBudget;
use crate::upstream::limit::Limit;
use crate::upstream::Pools;
use arc_swap::ArcSwap;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
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
    /// Increments with every successful reload.
    pub generation: u64,
}

impl Runtime {
    /// Compiles routes and pools for `config`, reusing unchanged pools from `previous`.
    pub async fn build(config: Config, previous: Option<&Runtime>, metrics: &Metrics, generation: u64) -> Self {
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
            })
            .collect();
        Runtime {
            config: Arc::new(config),
            router,
            pools,
            listeners,
            routes,
            unrouted_metrics: metrics.route(""),
            generation,
        }
    }
}

/// What a route keeps besides its config.
pub struct RouteRuntime {
    /// Metric handles.
    pub metrics: RouteMetrics,
    /// Retry budget, when the route retries.
    pub budget: Option<RetryBudget>,
    /// The route's `max_in_flight`, when set.
    pub limit: Option<Limit>,
}

/// State shared by every service of the process.
pub struct Shared {
    /// The current runtime config.
    pub runtime: ArcSwap<Runtime>,
    /// Prometheus metrics.
    pub metrics: Metrics,
    /// The access log.
    pub access_log: AccessLog,
    /// Serializes reloads.
    reload_lock: tokio::sync::Mutex<()>,
    generation: AtomicU64,
    /// False once shutdown starts, for `/ready`.
    pub ready: AtomicBool,
}

impl Shared {
    /// Shared state around a first runtime.
    pub fn new(runtime: Runtime, metrics: Metrics, access_log: AccessLog) -> Arc<Self> {
        Arc::new(Shared {
            generation: AtomicU64::new(runtime.generation),
            runtime: ArcSwap::from_pointee(runtime),
            metrics,
            access_log,
            reload_lock: tokio::sync::Mutex::new(()),
            ready: AtomicBool::new(true),
        })
    }

    /// Re-reads the config file, validates it and swaps it in. On any error the running config
    /// stays and the errors come back as text, one per line.
    pub async fn reload(&self) -> Result<u64, String> {
        let _guard = self.reload_lock.lock().await;
        let current = self.runtime.load_full();
        let path = current.config.source_path.clone();
        let result = match config::load(&path) {
            Err(errors) => Err(errors.to_string()),
            Ok(new) => match restart_only_changes(&current.config, &new) {
                Some(msg) => Err(format!("{}: {msg}", path.display())),
                None => {
                    let generation = self.generation.fetch_add(1, Ordering::AcqRel) + 1;
                    let runtime = Runtime::build(new, Some(&current), &self.metrics, generation).await;
                    self.runtime.store(Arc::new(runtime));
                    Ok(generation)
                }
            },
        };
        self.metrics.reload(result.is_ok());
        match &result {
            Ok(g) => log::info!("config reloaded from {} (generation {g})", path.display()),
            Err(e) => log::error!("config reload rejected, keeping the running config:\n{e}"),
        }
        result
    }
}

/// Settings a reload cannot apply, since they are bound when the process starts.
fn restart_only_changes(old: &Config, new: &Config) -> Option<String> {
    type Shape = (String, String, bool, Option<config::ListenerTls>, Option<usize>, Option<std::time::Duration>);
    let shape = |c: &Config| -> Vec<Shape> {
        c.listeners
            .iter()
            .map(|l| {
                (l.name.to_string(), l.listen.clone(), l.http2, l.tls.clone(), l.read_buffer_bytes, l.keepalive_timeout)
            })
            .collect()
    };
    if shape(old) != shape(new) {
        return Some(
            "listeners (names, addresses, TLS, http2, read_buffer_bytes, keepalive_timeout_s) changed: that needs a \
             restart or `portico --upgrade`"
                .into(),
        );
    }
    if old.admin != new.admin {
        return Some("admin.listen changed: that needs a restart or `portico --upgrade`".into());
    }
    if old.access_log != new.access_log {
        return Some("access_log changed: that needs a restart or `portico --upgrade`".into());
    }
    if old.server != new.server {
        return Some("server settings changed: that needs a restart or `portico --upgrade`".into());
    }
    None
}

/// Opens the access-log sink a config asks for.
pub fn access_log_sink(target: &AccessLogTarget) -> std::io::Result<Option<Box<dyn std::io::Write + Send>>> {
    Ok(match target {
        AccessLogTarget::Off => None,
        AccessLogTarget::Stdout => Some(Box::new(std::io::stdout())),
        AccessLogTarget::Stderr => Some(Box::new(std::io::stderr())),
        AccessLogTarget::File(p) => Some(Box::new(std::fs::OpenOptions::new().create(true).append(true).open(p)?)),
    })
}
