//! The process-wide sections: `server`, `admin`, `access_log`, and the `rate_limit_store` check.

use super::resolve;
use crate::config::defaults;
use crate::config::file::{AccessLogFile, RateLimitStoreFile, ServerFile};
use crate::config::model::{AccessLogTarget, ServerSettings};
use crate::config::Errors;
use std::path::Path;

/// Pingora's process settings, each key defaulted; the pid file and upgrade socket default into
/// the private runtime directory.
pub(super) fn settings(s: ServerFile) -> ServerSettings {
    let runtime_dir = (s.pid_file.is_none() || s.upgrade_sock.is_none()).then(crate::config::runtime_dir::default_dir);
    let in_runtime_dir = |name: &str| match &runtime_dir {
        Some(dir) => dir.join(name).to_string_lossy().into_owned(),
        None => name.to_string(),
    };
    ServerSettings {
        threads: s.threads.unwrap_or(defaults::THREADS).max(1),
        grace_period_s: s.grace_period_s.unwrap_or(defaults::GRACE_PERIOD_S),
        graceful_shutdown_timeout_s: s.graceful_shutdown_timeout_s.unwrap_or(defaults::GRACEFUL_SHUTDOWN_TIMEOUT_S),
        pid_file: s.pid_file.unwrap_or_else(|| in_runtime_dir(defaults::PID_FILE_NAME)),
        upgrade_sock: s.upgrade_sock.unwrap_or_else(|| in_runtime_dir(defaults::UPGRADE_SOCK_NAME)),
        runtime_dir,
        work_stealing: s.work_stealing.unwrap_or(defaults::WORK_STEALING),
        upstream_keepalive_pool_size: s.upstream_keepalive_pool_size.unwrap_or(defaults::UPSTREAM_KEEPALIVE_POOL_SIZE),
    }
}

/// Where access-log lines go: `stdout` (or `-`), `stderr`, `off` (or empty), or a file path.
pub(super) fn access_log(a: Option<AccessLogFile>, base_dir: &Path) -> AccessLogTarget {
    let path = a.and_then(|a| a.path);
    match path.as_deref().unwrap_or(defaults::ACCESS_LOG_PATH) {
        "stdout" | "-" => AccessLogTarget::Stdout,
        "stderr" => AccessLogTarget::Stderr,
        "off" | "" => AccessLogTarget::Off,
        p => AccessLogTarget::File(resolve(base_dir, p)),
    }
}

/// The shared limiter store must be a Redis URL, plain or TLS (filters connect to it when they
/// are built).
pub(super) fn check_rate_limit_store(store: Option<&RateLimitStoreFile>, errors: &mut Errors<'_>) {
    if let Some(store) = store {
        if !store.redis.starts_with("redis://") && !store.redis.starts_with("rediss://") {
            errors.at("rate_limit_store.redis", "expected a redis://host:port or rediss://host:port URL");
        }
    }
}
