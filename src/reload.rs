//! Reload: what a new config may change in a running process, the SIGHUP service (with SIGUSR1
//! for the access log), and the typed error a refused reload carries.
//!
//! A reload re-reads the file the process started with, validates it completely, and swaps the
//! new [`Runtime`] in atomically; requests already running keep the snapshot they started on.
//! Anything bound when the process starts (listening sockets and their TLS and buffer settings,
//! the admin address, the access-log sink, Pingora's server settings) cannot change this way,
//! with two exceptions that follow files at unchanged paths: every listener's certificates,
//! keys and client CA bundle are read again (a bad one refuses the reload), and the access-log
//! file is reopened.
//! Everything else start-bound:
//! [`StartupShape`] names those parts, and a file that changes them is refused with a message
//! saying which, while the running config keeps serving.

use crate::config::{self, AccessLogTarget, Config, ConfigErrors, ListenerTls, ServerSettings};
use crate::state::{Runtime, Shared};
use async_trait::async_trait;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

/// Why a reload was refused. The running config is unchanged in every case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReloadError {
    /// The new file has errors, each with its file, line, column and YAML path.
    Invalid(ConfigErrors),
    /// The new file is valid but changes settings bound at start.
    NeedsRestart {
        /// The config file.
        file: PathBuf,
        /// Which parts changed (`listeners`, `admin.listen`, `access_log`, `server`).
        changed: Vec<&'static str>,
    },
}

impl fmt::Display for ReloadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReloadError::Invalid(errors) => write!(f, "{errors}"),
            ReloadError::NeedsRestart { file, changed } => write!(
                f,
                "{}: {} changed: that needs a restart or `portico --upgrade`",
                file.display(),
                changed.join(", ")
            ),
        }
    }
}

impl std::error::Error for ReloadError {}

impl ReloadError {
    /// The error as the admin API's JSON: `errors` holds one line of text per problem (what a
    /// person reads), `details` the same problems as fields (what a program reads).
    pub fn to_json(&self) -> serde_json::Value {
        let lines: Vec<String> = self.to_string().lines().map(str::to_string).collect();
        let details: Vec<serde_json::Value> = match self {
            ReloadError::Invalid(errors) => errors
                .0
                .iter()
                .map(|e| {
                    serde_json::json!({
                        "file": e.file.display().to_string(),
                        "line": e.position.map(|p| p.0),
                        "column": e.position.map(|p| p.1),
                        "path": e.path,
                        "message": e.message,
                    })
                })
                .collect(),
            ReloadError::NeedsRestart { file, changed } => changed
                .iter()
                .map(|part| {
                    serde_json::json!({
                        "file": file.display().to_string(),
                        "path": part,
                        "message": "changing this needs a restart or `portico --upgrade`",
                    })
                })
                .collect(),
        };
        serde_json::json!({
            "error": "invalid_config",
            "message": "the new config was rejected; the running config is unchanged",
            "errors": lines,
            "details": details,
        })
    }
}

/// What one listener binds at start.
#[derive(Debug, PartialEq)]
struct ListenerShape {
    name: String,
    listen: String,
    http2: bool,
    tls: Option<ListenerTls>,
    read_buffer_bytes: Option<usize>,
    keepalive_timeout: Option<Duration>,
    limits: crate::config::ListenerLimits,
}

/// Every setting of a config that is bound when the process starts. Two configs with equal
/// shapes can replace each other by reload.
#[derive(Debug, PartialEq)]
pub struct StartupShape {
    listeners: Vec<ListenerShape>,
    admin: Option<SocketAddr>,
    access_log: AccessLogTarget,
    server: ServerSettings,
    log: crate::config::log::LogSettings,
}

impl StartupShape {
    /// The start-bound parts of `config`.
    pub fn of(config: &Config) -> Self {
        StartupShape {
            listeners: config
                .listeners
                .iter()
                .map(|l| ListenerShape {
                    name: l.name.to_string(),
                    listen: l.listen.clone(),
                    http2: l.http2,
                    tls: l.tls.clone(),
                    read_buffer_bytes: l.read_buffer_bytes,
                    keepalive_timeout: l.keepalive_timeout,
                    limits: l.limits,
                })
                .collect(),
            admin: config.admin,
            access_log: config.access_log.clone(),
            server: config.server.clone(),
            log: config.log,
        }
    }

    /// The names of the parts that differ, empty when a reload may go ahead.
    pub fn changes_to(&self, new: &StartupShape) -> Vec<&'static str> {
        let mut changed = Vec::new();
        if self.listeners != new.listeners {
            changed.push("listeners (names, addresses, TLS, http2, read_buffer_bytes, keepalive_timeout_s, limits)");
        }
        if self.admin != new.admin {
            changed.push("admin.listen");
        }
        if self.access_log != new.access_log {
            changed.push("access_log");
        }
        if self.server != new.server {
            changed.push("server settings");
        }
        if self.log != new.log {
            changed.push("log");
        }
        changed
    }
}

impl Shared {
    /// Re-reads the config file, validates it and swaps it in; returns the new generation. On any
    /// error the running config stays.
    pub async fn reload(&self) -> Result<u64, ReloadError> {
        let _serialized = self.reload_lock.lock().await;
        let current = self.runtime.load_full();
        let path = current.config.source_path.clone();
        let result = match config::load(&path) {
            Err(errors) => Err(ReloadError::Invalid(errors)),
            Ok(new) => {
                let changed = StartupShape::of(&current.config).changes_to(&StartupShape::of(&new));
                let tls = new.listeners.iter().filter_map(|l| l.tls.as_ref().map(|t| (&l.name, t)));
                if !changed.is_empty() {
                    Err(ReloadError::NeedsRestart { file: path.clone(), changed })
                } else if let Err(failed) = self.certs.reload(tls) {
                    Err(ReloadError::Invalid(certificate_errors(&path, &new, failed)))
                } else {
                    let generation = self.generation.fetch_add(1, Ordering::AcqRel) + 1;
                    let runtime =
                        Runtime::build(new, Some(&current), &self.metrics, &self.tracing_metrics, generation).await;
                    self.runtime.store(Arc::new(runtime));
                    Ok(generation)
                }
            }
        };
        // Whatever the file says, a reload lets go of a rotated access-log file (logrotate's
        // `postrotate` often sends SIGHUP).
        self.access_log.reopen();
        self.metrics.reload(result.is_ok());
        self.last_reload.store(Some(Arc::new(crate::state::LastReload::now(result.clone()))));
        match &result {
            Ok(g) => log::info!("config reloaded from {} (generation {g})", path.display()),
            Err(e) => log::error!("config reload rejected, keeping the running config:\n{e}"),
        }
        result
    }
}

/// A certificate or key file that could not be read again (or no longer matches), as a config
/// error at its listener's `tls`; the message names the file.
fn certificate_errors(file: &std::path::Path, config: &Config, failed: Vec<(Arc<str>, String)>) -> ConfigErrors {
    let errors = failed
        .into_iter()
        .map(|(listener, message)| {
            let index = config.listeners.iter().position(|l| l.name == listener).unwrap_or_default();
            config::ConfigError {
                file: file.to_path_buf(),
                position: None,
                path: format!("listeners[{index}].tls"),
                message: format!("listener {listener}: {message}"),
            }
        })
        .collect();
    ConfigErrors(errors)
}

/// Reloads the config on SIGHUP and reopens the access-log file on SIGUSR1 (for logrotate:
/// rename the file, send SIGUSR1, and lines go to a new file at the configured path), for the
/// life of the process.
pub struct SighupReload {
    shared: Arc<Shared>,
}

impl SighupReload {
    /// The service over the process's shared state.
    pub fn new(shared: Arc<Shared>) -> Self {
        SighupReload { shared }
    }
}

#[async_trait]
impl BackgroundService for SighupReload {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        use tokio::signal::unix::{signal, SignalKind};
        let (mut hup, mut usr1) = match (signal(SignalKind::hangup()), signal(SignalKind::user_defined1())) {
            (Ok(hup), Ok(usr1)) => (hup, usr1),
            (Err(e), _) | (_, Err(e)) => {
                log::error!("cannot listen for SIGHUP and SIGUSR1: {e}");
                return;
            }
        };
        log::info!("listening for SIGHUP (reload the config) and SIGUSR1 (reopen the access log)");
        loop {
            tokio::select! {
                _ = hup.recv() => {
                    log::info!("SIGHUP received, reloading config");
                    // The outcome is logged and counted by `reload` itself.
                    let _ = self.shared.reload().await;
                }
                _ = usr1.recv() => {
                    log::info!("SIGUSR1 received, reopening the access log");
                    self.shared.access_log.reopen();
                }
                _ = shutdown.changed() => return,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(yaml: &str) -> Config {
        match config::load_str(yaml, std::path::Path::new("test.yaml")) {
            Ok(c) => c,
            Err(e) => panic!("test config invalid: {e}"),
        }
    }

    const BASE: &str = "listeners: [{name: web, listen: \"127.0.0.1:18080\"}]\n\
                        routes: [{name: r, respond: {status: 200, body: ok}}]\n";

    #[test]
    fn route_changes_may_reload() {
        let old = config(BASE);
        let new = config(&BASE.replace("body: ok", "body: changed"));
        assert!(StartupShape::of(&old).changes_to(&StartupShape::of(&new)).is_empty());
    }

    #[test]
    fn listener_and_admin_changes_need_a_restart() {
        let old = config(BASE);
        let new = config(&format!("{}admin: {{listen: \"127.0.0.1:19901\"}}\n", BASE.replace("18080", "18081")));
        let changed = StartupShape::of(&old).changes_to(&StartupShape::of(&new));
        assert_eq!(changed.len(), 2, "{changed:?}");
        assert!(changed[0].starts_with("listeners"));
        assert_eq!(changed[1], "admin.listen");
    }

    #[test]
    fn a_refusal_renders_every_error_with_its_position() {
        let yaml = BASE.replace("respond: {status: 200, body: ok}", "upstream: nowhere");
        let errors = match config::load_str(&yaml, std::path::Path::new("t.yaml")) {
            Err(e) => e,
            Ok(_) => panic!("a route to a missing upstream must be refused"),
        };
        let json = ReloadError::Invalid(errors).to_json();
        assert_eq!(json["error"], "invalid_config");
        assert!(json["errors"][0].as_str().is_some_and(|e| e.contains("nowhere")), "{json}");
        assert_eq!(json["details"][0]["file"], "t.yaml");
        assert_eq!(json["details"][0]["path"], "routes[0].upstream");
        assert_eq!(json["details"][0]["line"], 2, "{json}");
    }
}
