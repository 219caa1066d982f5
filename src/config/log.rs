//! `log:`: how Portico's own log (startup, reloads, upstream trouble; not the access log) is
//! written to stderr.
//!
//! ```yaml
//! log: {format: json, level: info}
//! ```
//!
//! - `format`: `text` (the default: `[time LEVEL target] message`, for a person at a terminal)
//!   or `json` (one object a line: `{"time", "level", "target", "message"}`, for a log shipper).
//! - `level`: `error`, `warn`, `info` (the default), `debug` or `trace`. `RUST_LOG`, when set,
//!   wins (it also takes per-module filters such as `portico=debug,pingora=warn`).
//!
//! Both are bound when the process starts: a reload that changes them is refused.

use serde::Deserialize;

/// The `log:` section as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogFile {
    #[serde(default)]
    format: Option<LogFormat>,
    #[serde(default)]
    level: Option<LogLevel>,
}

/// How each log record is written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// `[time LEVEL target] message`.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// The most detailed level written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    /// Errors only.
    Error,
    /// Warnings and errors.
    Warn,
    /// What an operator wants to see (the default).
    #[default]
    Info,
    /// What a developer wants to see.
    Debug,
    /// Everything.
    Trace,
}

impl LogLevel {
    /// The level as `env_logger` filter text.
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Error => "error",
            LogLevel::Warn => "warn",
            LogLevel::Info => "info",
            LogLevel::Debug => "debug",
            LogLevel::Trace => "trace",
        }
    }
}

/// The checked `log:` settings.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LogSettings {
    /// Text or JSON lines.
    pub format: LogFormat,
    /// The default level (`RUST_LOG` overrides it).
    pub level: LogLevel,
}

/// The settings for a `log:` section (or its absence: text at `info`).
pub fn compile(file: Option<LogFile>) -> LogSettings {
    let file = file.unwrap_or_default();
    LogSettings { format: file.format.unwrap_or_default(), level: file.level.unwrap_or_default() }
}
