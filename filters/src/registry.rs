//! Turns `{filter_name: config}` items into filter instances.
//!
//! Each built-in filter implements [`FilterFactory`] and is listed once in [`BUILT_IN`]; config
//! strings never leak past this module.

use crate::{Consumer, Filter};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// What a filter may use while it is built: the config's consumers and the config file's folder
/// (relative file paths resolve against it).
#[derive(Clone, Copy)]
pub struct BuildContext<'a> {
    /// Every consumer of the config.
    pub consumers: &'a [Arc<Consumer>],
    /// The folder of the config file.
    pub base_dir: &'a Path,
    /// `rate_limit_store.redis` of the config (a `redis://` URL), for limits shared by every
    /// instance.
    pub redis_url: Option<&'a str>,
    /// Where the filter sits, stable across reloads as long as the config keeps it there:
    /// `listener NAME filters[i]` or `route NAME filters[i]` (empty outside a config). Filters
    /// that keep state (local rate-limit counts) use it to carry that state into a reloaded
    /// config.
    pub place: &'a str,
}

impl BuildContext<'_> {
    /// A path from the filter's config, resolved like every path in the config file.
    pub fn resolve(&self, p: &str) -> PathBuf {
        resolve_path(self.base_dir, p)
    }
}

/// Resolves a path from a config file: absolute as is; relative to the config file's folder; or,
/// when nothing is there but it exists relative to the working directory (`conf/jwks.json` run
/// from the project root), that one.
pub fn resolve_path(base_dir: &Path, p: &str) -> PathBuf {
    let path = Path::new(p);
    if path.is_absolute() {
        return path.to_path_buf();
    }
    let beside_config = base_dir.join(path);
    if !beside_config.exists() && path.exists() {
        return path.to_path_buf();
    }
    beside_config
}

/// One string or a list of strings.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    /// A single value.
    One(String),
    /// Several values.
    Many(Vec<String>),
}

impl OneOrMany {
    /// The values as a list.
    pub fn into_vec(self) -> Vec<String> {
        match self {
            OneOrMany::One(s) => vec![s],
            OneOrMany::Many(v) => v,
        }
    }
}

/// Why a filter could not be built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildError {
    /// YAML path inside the filter's own config (`request.add`), empty for the whole config.
    pub path: String,
    /// What is wrong.
    pub message: String,
}

impl BuildError {
    /// An error about the filter's config as a whole.
    pub fn whole(message: impl Into<String>) -> Self {
        BuildError { path: String::new(), message: message.into() }
    }

    /// An error about one field of the filter's config.
    pub fn at(path: impl Into<String>, message: impl Into<String>) -> Self {
        BuildError { path: path.into(), message: message.into() }
    }
}

/// A filter type that can be built from its typed config.
pub trait FilterFactory: Filter + Sized {
    /// The key under which the filter appears in YAML (`headers`, `jwt`, ...).
    const NAME: &'static str;
    /// Its config, with `#[serde(deny_unknown_fields)]`.
    type Config: DeserializeOwned;
    /// Validates the config and builds the shared instance.
    fn build(config: Self::Config, cx: &BuildContext<'_>) -> Result<Self, BuildError>;
}

type Factory = fn(serde_yaml::Value, &BuildContext<'_>) -> Result<Arc<dyn Filter>, BuildError>;

fn factory<F: FilterFactory>(value: serde_yaml::Value, cx: &BuildContext<'_>) -> Result<Arc<dyn Filter>, BuildError> {
    // `{headers: }` with nothing after the colon means "defaults".
    let value = if value.is_null() { serde_yaml::Value::Mapping(Default::default()) } else { value };
    let config: F::Config = serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        BuildError { path: if path == "." { String::new() } else { path }, message: e.into_inner().to_string() }
    })?;
    Ok(Arc::new(F::build(config, cx)?))
}

/// Every built-in filter: one line each.
pub const BUILT_IN: &[(&str, Factory)] = &[
    (crate::headers::Headers::NAME, factory::<crate::headers::Headers>),
    (crate::cors::Cors::NAME, factory::<crate::cors::Cors>),
    (crate::compression::Compression::NAME, factory::<crate::compression::Compression>),
    (crate::ip_restrict::IpRestrict::NAME, factory::<crate::ip_restrict::IpRestrict>),
    (crate::request_size_limit::RequestSizeLimit::NAME, factory::<crate::request_size_limit::RequestSizeLimit>),
    (crate::api_key::ApiKey::NAME, factory::<crate::api_key::ApiKey>),
    (crate::basic_auth::BasicAuth::NAME, factory::<crate::basic_auth::BasicAuth>),
    (crate::jwt::Jwt::NAME, factory::<crate::jwt::Jwt>),
    (crate::acl::Acl::NAME, factory::<crate::acl::Acl>),
    (crate::rate_limit::RateLimit::NAME, factory::<crate::rate_limit::RateLimit>),
    (crate::fault::Fault::NAME, factory::<crate::fault::Fault>),
];

/// Names of every filter, for "unknown filter" errors.
pub fn names() -> impl Iterator<Item = &'static str> {
    BUILT_IN.iter().map(|(name, _)| *name)
}

/// Builds the filter called `name` from its YAML config.
pub fn build(name: &str, config: serde_yaml::Value, cx: &BuildContext<'_>) -> Result<Arc<dyn Filter>, BuildError> {
    match BUILT_IN.iter().find(|(n, _)| *n == name) {
        Some((_, make)) => make(config, cx),
        None => Err(BuildError::whole(format!(
            "unknown filter \"{name}\" (known: {})",
            names().collect::<Vec<_>>().join(", ")
        ))),
    }
}
