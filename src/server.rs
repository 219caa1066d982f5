//! From a loaded config to a running Pingora server: one proxy service per listener, the admin
//! service, and the background services (health checks, SIGHUP reload, draining on shutdown).

use crate::admin::Admin;
use crate::config::Config;
use crate::keepalive::admission::{Admission, AdmissionMetrics};
use crate::keepalive::KeepaliveApp;
use crate::proxy::Portico;
use crate::reload::SighupReload;
use crate::state::{access_log_sink, Runtime, Shared};
use crate::telemetry::otlp::TracingMetrics;
use crate::telemetry::{AccessLog, Metrics};
use crate::upstream::HealthSupervisor;
use async_trait::async_trait;
use pingora::apps::HttpServerOptions;
use pingora::listeners::{L4BufferSettings, ListenerConfig};
use pingora::server::configuration::{Opt, ServerConf};
use pingora::server::{Server, ShutdownWatch};
use pingora::services::background::{background_service, BackgroundService};
use pingora::services::listening::Service;
use std::sync::Arc;

/// Builds the shared state for a config (pools resolved, access log opened).
pub fn build_shared(config: Config) -> Result<Arc<Shared>, String> {
    let metrics = Metrics::new().map_err(|e| format!("metrics: {e}"))?;
    let tracing_metrics = TracingMetrics::register(&metrics).map_err(|e| format!("metrics: {e}"))?;
    let sink = access_log_sink(&config.access_log).map_err(|e| format!("access log: {e}"))?;
    let access_log = AccessLog::new(sink);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| format!("runtime: {e}"))?;
    let runtime = rt.block_on(Runtime::build(config, None, &metrics, &tracing_metrics, 1));
    Ok(Shared::new(runtime, metrics, tracing_metrics, access_log))
}

/// Starts Portico and runs until it is told to stop.
pub fn run(shared: Arc<Shared>, upgrade: bool) {
    let config = shared.runtime.load().config.clone();
    let s = &config.server;
    let conf = ServerConf {
        threads: s.threads,
        grace_period_seconds: Some(s.grace_period_s),
        graceful_shutdown_timeout_seconds: Some(s.graceful_shutdown_timeout_s),
        pid_file: s.pid_file.clone(),
        upgrade_sock: s.upgrade_sock.clone(),
        work_stealing: s.work_stealing,
        upstream_keepalive_pool_size: s.upstream_keepalive_pool_size,
        ..ServerConf::default()
    };
    let opt = Opt { upgrade, ..Opt::default() };
    let mut server = Server::new_with_opt_and_conf(opt, conf);
    server.bootstrap();

    // One proxy service per listener.
    let mut admissions = Vec::new();
    for listener in &config.listeners {
        let mut proxy =
            pingora::proxy::http_proxy(&server.configuration, Portico::new(shared.clone(), listener.name.clone()));
        if listener.http2 && listener.tls.is_none() {
            let mut options = HttpServerOptions::default();
            options.h2c = true;
            proxy.server_options = Some(options);
        }
        // Pingora's proxy, with client connections counted, paced and drained, and idle
        // keep-alive connections that wait without a request's allocations (src/keepalive/).
        let admission =
            Arc::new(Admission::new(&listener.limits, AdmissionMetrics::of(&shared.metrics, &listener.name)));
        admissions.push(admission.clone());
        let app = KeepaliveApp::new(proxy, listener.keepalive_timeout, listener.limits, admission);
        let mut service = Service::new(format!("listener {}", listener.name), app);
        let endpoint = ListenerConfig::tcp(listener.listen.clone());
        let endpoint = match &listener.tls {
            None => endpoint.l4_buffer(
                L4BufferSettings::default()
                    .read(listener.read_buffer_bytes.unwrap_or(crate::config::defaults::PLAIN_READ_BUFFER_BYTES)),
            ),
            Some(tls) => match shared.certs.listener_settings(&listener.name, tls, listener.http2) {
                Ok(settings) => {
                    let endpoint = endpoint.tls(settings);
                    match listener.read_buffer_bytes {
                        Some(n) => endpoint.l4_buffer(L4BufferSettings::default().read(n)),
                        None => endpoint,
                    }
                }
                Err(e) => {
                    log::error!("listener {}: {e}", listener.name);
                    std::process::exit(1);
                }
            },
        };
        service.add_listener(endpoint);
        server.add_service(service);
    }

    // The admin API.
    if let Some(addr) = config.admin {
        let mut admin = Service::new("admin".to_string(), Admin::new(shared.clone()));
        admin.add_tcp(&addr.to_string());
        server.add_service(admin);
    }

    // Health checks and discovery for every pool, across reloads; SIGHUP reloads.
    server.add_service(background_service("health checks", HealthSupervisor::new(shared.clone())));
    server.add_service(background_service("sighup reload", SighupReload::new(shared.clone())));
    server.add_service(background_service("drain on shutdown", DrainOnShutdown { shared: shared.clone(), admissions }));

    server.run_forever();
}

/// Ends the process as soon as every client connection has closed once shutdown starts,
/// instead of sleeping out the whole grace period.
struct DrainOnShutdown {
    shared: Arc<Shared>,
    /// Every listener's open connections.
    admissions: Vec<Arc<Admission>>,
}

impl DrainOnShutdown {
    /// Pingora stops accepting when shutdown starts, then sleeps `grace_period_s` before
    /// dropping whatever still runs. Meanwhile each connection ends itself (src/keepalive/):
    /// after answering its next request with `Connection: close`, or after staying idle for the
    /// drain's idle timeout, or with HTTP/2's GOAWAY. A connection still open may be mid-request
    /// (a header arriving, a body, a response being written), so the process exits only once
    /// none is left and no request is in flight; the grace period still bounds the wait.
    async fn drain_then_exit(&self) {
        self.shared.ready.store(false, std::sync::atomic::Ordering::Release);
        log::info!("shutting down: draining client connections");
        // Tunnels close themselves at the end of the grace period, just before Pingora drops
        // whatever still runs, so each is logged with the reason `shutdown`.
        let grace = std::time::Duration::from_secs(self.shared.runtime.load().config.server.grace_period_s);
        let close_tunnels_at = std::time::Instant::now() + grace.saturating_sub(std::time::Duration::from_millis(500));
        let mut tunnels_open = true;
        loop {
            if tunnels_open && std::time::Instant::now() >= close_tunnels_at {
                self.shared.tunnels.close_all();
                tunnels_open = false;
            }
            let open: usize = self.admissions.iter().map(|a| a.open()).sum();
            if open == 0 && self.shared.metrics.in_flight().get() <= 0 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        // Let the access log reach its file, and the last spans their collector.
        self.shared.access_log.flush(std::time::Duration::from_secs(1));
        if let Some(tracer) = &self.shared.runtime.load().tracer {
            if !tracer.flush(std::time::Duration::from_secs(2)) {
                log::warn!("tracing: spans still queued at exit are lost");
            }
        }
        log::info!("drained; exiting");
        std::process::exit(0);
    }
}

#[async_trait]
impl BackgroundService for DrainOnShutdown {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        // Wait for the shutdown signal; a closed watch means the server is going away too.
        let _ = shutdown.changed().await;
        self.drain_then_exit().await;
    }
}
