//! Portico's own log on stderr, as text or JSON lines (`log:` in the config).
//!
//! The logger is installed before the config is read, so that whatever loading the config logs
//! (a JWKS fetch that failed, say) is not lost; the config's format and level are applied once
//! it has loaded. `RUST_LOG`, when set, decides the filter (per-module levels included) and the
//! config's `level` is then ignored.

use crate::config::log::{LogFormat, LogLevel, LogSettings};
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;

/// Wraps `env_logger` (its `RUST_LOG` filter and text format) with a JSON format switch.
struct PorticoLogger {
    inner: env_logger::Logger,
    json: AtomicBool,
    /// `RUST_LOG` was set: its filter stands, the config's level does not apply.
    env_filter: bool,
}

static LOGGER: OnceLock<&'static PorticoLogger> = OnceLock::new();

impl log::Log for PorticoLogger {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        self.inner.enabled(metadata)
    }

    fn log(&self, record: &log::Record<'_>) {
        if !self.inner.matches(record) {
            return;
        }
        if !self.json.load(Ordering::Relaxed) {
            self.inner.log(record);
            return;
        }
        let line = serde_json::json!({
            "time": crate::telemetry::now_rfc3339(),
            "level": record.level().as_str(),
            "target": record.target(),
            "message": record.args().to_string(),
        });
        // One write per line, so lines from several threads do not interleave.
        let mut text = line.to_string();
        text.push('\n');
        let _ = std::io::stderr().lock().write_all(text.as_bytes());
    }

    fn flush(&self) {
        self.inner.flush();
    }
}

/// Installs the logger: text at `info` (or as `RUST_LOG` says) until [`apply`] is called.
/// Calling it again does nothing.
pub fn init() {
    if LOGGER.get().is_some() {
        return;
    }
    let env_filter = std::env::var_os("RUST_LOG").is_some_and(|v| !v.is_empty());
    let inner = env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("trace")).build();
    let logger: &'static PorticoLogger =
        Box::leak(Box::new(PorticoLogger { inner, json: AtomicBool::new(false), env_filter }));
    if log::set_logger(logger).is_ok() {
        let _ = LOGGER.set(logger);
        log::set_max_level(if env_filter { logger.inner.filter() } else { level_filter(LogLevel::Info) });
    }
}

/// Applies a config's `log:` settings.
pub fn apply(settings: LogSettings) {
    let Some(logger) = LOGGER.get() else { return };
    logger.json.store(settings.format == LogFormat::Json, Ordering::Relaxed);
    if !logger.env_filter {
        log::set_max_level(level_filter(settings.level));
    }
}

fn level_filter(level: LogLevel) -> log::LevelFilter {
    match level {
        LogLevel::Error => log::LevelFilter::Error,
        LogLevel::Warn => log::LevelFilter::Warn,
        LogLevel::Info => log::LevelFilter::Info,
        LogLevel::Debug => log::LevelFilter::Debug,
        LogLevel::Trace => log::LevelFilter::Trace,
    }
}
