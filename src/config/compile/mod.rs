//! Validation: file structs in, runtime types out, every error collected with its YAML path.
//!
//! One file per section of the config, compiled in this order (later sections refer to earlier
//! ones by name):
//!
//! | file            | section                                                   |
//! |-----------------|-----------------------------------------------------------|
//! | [`server`]      | `server`, `admin`, `access_log`, `rate_limit_store`       |
//! | [`consumers`]   | `consumers`, which filters find credentials in            |
//! | [`listeners`]   | `listeners`, their TLS and their filter chains            |
//! | [`limits`]      | `listeners[].limits`: client timeouts, connection caps    |
//! | [`upstreams`]   | `upstreams`: targets, balancing, health, TLS              |
//! | [`routes`]      | `routes`: action, mirror, canary, rewrite, retry          |
//! | [`aggregate`]   | `routes[].aggregate`: the parts of a composed answer      |
//! | [`matcher`]     | `routes[].match`                                          |
//! | [`websocket`]   | `routes[].websocket`: upgraded connections as tunnels     |
//! | [`cache`]       | `cache_store`, `routes[].cache`                           |
//!
//! Defaults come from [`super::defaults`]. Below are what several sections share: a `filters:`
//! list built through the filter registry ([`chain`]), and the small checks (addresses, files,
//! header names).

mod aggregate;
pub(in crate::config) mod cache;
mod consumers;
mod limits;
mod listeners;
mod matcher;
mod routes;
mod server;
mod upstreams;
mod websocket;

use super::file::{FileConfig, FilterItem};
use super::model::Config;
use super::Errors;
use http::HeaderName;
use portico_filters::FilterChain;
use portico_filters::{registry, BuildContext};
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};

/// The runtime config for a parsed file; `effective` is the masked JSON that `/config` shows.
/// Errors go to `errors` and compiling goes on, so one run reports them all.
pub(super) fn compile(
    file: FileConfig,
    path: &Path,
    base_dir: &Path,
    effective: serde_json::Value,
    errors: &mut Errors<'_>,
) -> Config {
    // Process-wide settings.
    let server = server::settings(file.server);
    let (admin, admin_access) = super::admin::compile(file.admin, errors);
    let access_log = server::access_log(file.access_log, base_dir);

    // Consumers, then what every filter is built with.
    let consumers = consumers::consumers(file.consumers, errors);
    let tracing = super::tracing::compile(file.tracing, errors);
    let redis_url = file.rate_limit_store.as_ref().map(|s| s.redis.as_str());
    let cx = BuildContext { consumers: &consumers, base_dir, redis_url, place: "" };

    // Listeners, upstreams, and the routes that name them.
    let (listeners, listener_names) = listeners::listeners(file.listeners, base_dir, &cx, errors);
    let upstream_names: Vec<String> = file.upstreams.keys().cloned().collect();
    let upstreams = upstreams::upstreams(file.upstreams, base_dir, errors);
    let cache_store = cache::store(file.cache_store, errors);
    let known =
        routes::Known { listeners: &listener_names, upstreams: &upstream_names, cache_store: cache_store.is_some() };
    let routes = routes::routes(file.routes, &known, &cx, errors);

    server::check_rate_limit_store(file.rate_limit_store.as_ref(), errors);

    Config {
        source_path: path.to_path_buf(),
        server,
        admin,
        admin_access,
        access_log,
        listeners,
        upstreams,
        routes,
        consumers,
        tracing,
        log: super::log::compile(file.log),
        cache_store,
        effective,
    }
}

/// Builds one `filters:` list; `at` is its YAML path, `owner` names it in filter errors
/// (`route users filters[1]`).
fn chain(items: Vec<FilterItem>, at: &str, owner: &str, cx: &BuildContext<'_>, errors: &mut Errors<'_>) -> FilterChain {
    let mut filters = Vec::with_capacity(items.len());
    for (i, item) in items.into_iter().enumerate() {
        let item_at = format!("{at}[{i}]");
        let place = format!("{owner} filters[{i}]");
        let cx = &BuildContext { place: &place, ..*cx };
        if item.0.len() != 1 {
            errors.at(item_at, "a filter is one `name: {config}` entry");
            continue;
        }
        let Some((name, config)) = item.0.into_iter().next() else {
            continue;
        };
        let Some(name) = name.as_str().map(str::to_string) else {
            errors.at(item_at, "a filter's name must be a string");
            continue;
        };
        match registry::build(&name, config, cx) {
            Ok(f) => filters.push(f),
            Err(e) if e.path.is_empty() => errors.at(format!("{item_at}.{name}"), e.message),
            Err(e) => errors.at(format!("{item_at}.{name}.{}", e.path), e.message),
        }
    }
    FilterChain::new(filters)
}

/// A relative path is relative to the config file's folder; when nothing is there but the path
/// exists relative to the working directory (`conf/certs/site.crt` run from the project root),
/// that one is taken.
fn resolve(base_dir: &Path, p: &str) -> PathBuf {
    portico_filters::registry::resolve_path(base_dir, p)
}

/// `host:port` (a name is resolved now), or an error at `at`.
fn socket_addr(s: &str, at: &str, errors: &mut Errors<'_>) -> Option<SocketAddr> {
    match s.to_socket_addrs().map(|mut it| it.next()) {
        Ok(Some(a)) => Some(a),
        _ => {
            errors.at(at, format!("\"{s}\" is not a host:port address"));
            None
        }
    }
}

/// A path that must name an existing file; the resolved path either way, so later checks can
/// go on.
fn existing_file(base_dir: &Path, p: &str, at: &str, errors: &mut Errors<'_>) -> PathBuf {
    let path = resolve(base_dir, p);
    if !path.is_file() {
        errors.at(at, format!("file {} does not exist", path.display()));
    }
    path
}

/// A header name from the file, or an error at `at`.
fn header_name(name: &str, at: impl Into<String>, errors: &mut Errors<'_>) -> Option<HeaderName> {
    match HeaderName::from_bytes(name.as_bytes()) {
        Ok(h) => Some(h),
        Err(_) => {
            errors.at(at, format!("\"{name}\" is not a header name"));
            None
        }
    }
}

#[cfg(test)]
mod tests;
