//! The file format: serde structs that mirror the YAML one to one, one file per top-level
//! section that has several parts (`listener`, `upstream`, `route`).
//!
//! Everything here is `deny_unknown_fields`, so a misspelt key is an error that names it. These
//! types never leave `config/`: [`super::compile`] turns them into runtime types. They hold what
//! the file says and nothing more: a key with a default is an `Option` here, and the default
//! is applied from [`super::defaults`].

mod listener;
mod route;
mod upstream;

pub use listener::*;
pub use route::*;
pub use upstream::*;

use serde::Deserialize;
use std::collections::BTreeMap;

/// The whole file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    #[serde(default)]
    pub server: ServerFile,
    #[serde(default)]
    pub admin: Option<AdminFile>,
    #[serde(default)]
    pub access_log: Option<AccessLogFile>,
    #[serde(default)]
    pub listeners: Vec<ListenerFile>,
    #[serde(default)]
    pub upstreams: BTreeMap<String, UpstreamFile>,
    #[serde(default)]
    pub routes: Vec<RouteFile>,
    #[serde(default)]
    pub consumers: Vec<ConsumerFile>,
    #[serde(default)]
    pub rate_limit_store: Option<RateLimitStoreFile>,
    #[serde(default)]
    pub tracing: Option<super::tracing::TracingFile>,
    #[serde(default)]
    pub log: Option<super::log::LogFile>,
    #[serde(default)]
    pub cache_store: Option<super::compile::cache::CacheStoreFile>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerFile {
    pub threads: Option<usize>,
    #[serde(alias = "grace_period_seconds")]
    pub grace_period_s: Option<u64>,
    #[serde(alias = "graceful_shutdown_timeout_seconds")]
    pub graceful_shutdown_timeout_s: Option<u64>,
    pub pid_file: Option<String>,
    pub upgrade_sock: Option<String>,
    pub work_stealing: Option<bool>,
    pub upstream_keepalive_pool_size: Option<usize>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminFile {
    pub listen: String,
    // Checked with `listen` in super::admin.
    #[serde(default)]
    pub token: Option<String>,
    #[serde(default)]
    pub metrics_public: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessLogFile {
    #[serde(default)]
    pub path: Option<String>,
    /// Parsed so that a format other than `json` is refused; with one format there is
    /// nothing to read yet.
    #[allow(dead_code)]
    #[serde(default)]
    pub format: Option<LogFormat>,
}

/// The one access-log format so far; the key exists so that others can be added.
#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    Json,
}

/// `{filter_name: config}`: one key, its value the filter's own config.
#[derive(Debug, Deserialize, Clone)]
#[serde(transparent)]
pub struct FilterItem(pub serde_yaml::Mapping);

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsumerFile {
    pub name: String,
    #[serde(default)]
    pub api_keys: Vec<String>,
    #[serde(default)]
    pub basic: Option<BasicFile>,
    #[serde(default)]
    pub groups: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BasicFile {
    pub username: String,
    pub password_hash: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitStoreFile {
    pub redis: String,
}
