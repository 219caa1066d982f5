//! Turns `{filter_name: config}` items into filter instances.
//!
//! Every filter type implements [`FilterFactory`]; a [`Registry`] is the set of them one build of
//! Portico knows: the built-ins (one line each in `BUILT_IN` below) and whatever a user's own
//! crate adds with [`Registry::with`]. The daemon [`install`]s its registry once, before the
//! config is first loaded, and the config compiler asks [`current`] (through [`build`]); config
//! strings never leak past this module.
//!
//! Process-wide, not a parameter: the filters a binary knows are fixed when it is built (as a
//! Caddy build's modules are), so `config::load` and every reload need nothing new, and code that
//! never installs one (tests, benchmarks, the stock `portico`) gets the built-ins.

use crate::{Consumer, Filter};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

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
///
/// A filter in a user's own crate implements it exactly as a built-in does, and is added with
/// [`Registry::with`] (or `portico::Daemon::filter`); from there on nothing tells the two apart:
/// the same typed config, the same `-t` errors, the same cost per request.
pub trait FilterFactory: Filter + Sized {
    /// The key under which the filter appears in YAML (`headers`, `jwt`, ...).
    const NAME: &'static str;
    /// Fields of the config that are secrets, masked in the admin API's `GET /config`: dotted
    /// paths inside the filter's own config (`secret`, `upstream.token`); a list met on the way
    /// is walked item by item, and a secret that is a list or a map is masked all through.
    ///
    /// By default none. The admin API also masks a few well-known keys wherever they appear
    /// (`secret`, `password`, `token`, ...), but a filter should not rely on its field names
    /// happening to be among them.
    const SECRET_FIELDS: &'static [&'static str] = &[];
    /// Its config, with `#[serde(deny_unknown_fields)]`.
    type Config: DeserializeOwned;
    /// Validates the config and builds the shared instance.
    fn build(config: Self::Config, cx: &BuildContext<'_>) -> Result<Self, BuildError>;
}

type Make = fn(serde_yaml::Value, &BuildContext<'_>) -> Result<Arc<dyn Filter>, BuildError>;

/// One filter type as the registry keeps it: its YAML name, its secret fields and its typed
/// build, erased to a function pointer (looked up once per config load, never per request).
#[derive(Clone, Copy)]
struct Entry {
    name: &'static str,
    secret_fields: &'static [&'static str],
    make: Make,
}

impl Entry {
    /// The entry of filter type `F`.
    const fn of<F: FilterFactory>() -> Entry {
        Entry { name: F::NAME, secret_fields: F::SECRET_FIELDS, make: make::<F> }
    }
}

fn make<F: FilterFactory>(value: serde_yaml::Value, cx: &BuildContext<'_>) -> Result<Arc<dyn Filter>, BuildError> {
    // `{headers: }` with nothing after the colon means "defaults".
    let value = if value.is_null() { serde_yaml::Value::Mapping(Default::default()) } else { value };
    let config: F::Config = serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        BuildError { path: if path == "." { String::new() } else { path }, message: e.into_inner().to_string() }
    })?;
    Ok(Arc::new(F::build(config, cx)?))
}

/// Every built-in filter: one line each.
const BUILT_IN: &[Entry] = &[
    Entry::of::<crate::headers::Headers>(),
    Entry::of::<crate::cors::Cors>(),
    Entry::of::<crate::compression::Compression>(),
    Entry::of::<crate::ip_restrict::IpRestrict>(),
    Entry::of::<crate::request_size_limit::RequestSizeLimit>(),
    Entry::of::<crate::api_key::ApiKey>(),
    Entry::of::<crate::basic_auth::BasicAuth>(),
    Entry::of::<crate::jwt::Jwt>(),
    Entry::of::<crate::acl::Acl>(),
    Entry::of::<crate::rate_limit::RateLimit>(),
    Entry::of::<crate::json_transform::JsonTransform>(),
    Entry::of::<crate::json_schema::JsonSchema>(),
    Entry::of::<crate::grpc_web::GrpcWeb>(),
    Entry::of::<crate::fault::Fault>(),
];

/// The filters one build of Portico knows, by YAML name: the built-ins and any a user's crate
/// adds. Built into a `portico::Daemon` and [`install`]ed once per process.
#[derive(Clone)]
pub struct Registry {
    entries: Vec<Entry>,
}

impl Registry {
    /// The built-in filters and nothing else: what the stock `portico` binary knows.
    pub fn built_in() -> Self {
        Registry { entries: BUILT_IN.to_vec() }
    }

    /// Adds filter type `F`, usable in YAML as `- {F::NAME}: {config}` from then on.
    ///
    /// # Panics
    ///
    /// If a filter of the same name is already in the registry (a built-in, or one added before).
    /// Both names are constants in the program, so this is a programming error, found on the
    /// binary's first start (even `--version` or `-t`) before any config is read; a `Result`
    /// would only make every `main` unwrap it. It is the contract of axum's `Router::route`
    /// for overlapping routes.
    pub fn with<F: FilterFactory>(mut self) -> Self {
        if self.entry(F::NAME).is_some() {
            panic!(
                "filter name \"{}\" is registered twice (again by {}): give one of the filters another NAME",
                F::NAME,
                std::any::type_name::<F>()
            );
        }
        self.entries.push(Entry::of::<F>());
        self
    }

    /// Names of every filter, for "unknown filter" errors.
    pub fn names(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.entries.iter().map(|e| e.name)
    }

    /// The secret fields the filter called `name` declares ([`FilterFactory::SECRET_FIELDS`]);
    /// none for a name the registry does not know.
    pub fn secret_fields(&self, name: &str) -> &'static [&'static str] {
        self.entry(name).map_or(&[], |e| e.secret_fields)
    }

    /// Builds the filter called `name` from its YAML config.
    pub fn build(
        &self,
        name: &str,
        config: serde_yaml::Value,
        cx: &BuildContext<'_>,
    ) -> Result<Arc<dyn Filter>, BuildError> {
        match self.entry(name) {
            Some(e) => (e.make)(config, cx),
            None => Err(BuildError::whole(format!(
                "unknown filter \"{name}\" (known: {})",
                self.names().collect::<Vec<_>>().join(", ")
            ))),
        }
    }

    /// Replaces every secret field of the filter called `name` in `config` (its config as
    /// JSON, as `GET /config` shows it) with `"***"`.
    pub fn mask_secrets(&self, name: &str, config: &mut serde_json::Value) {
        for field in self.secret_fields(name) {
            mask_at(config, &field.split('.').collect::<Vec<_>>());
        }
    }

    fn entry(&self, name: &str) -> Option<&Entry> {
        self.entries.iter().find(|e| e.name == name)
    }
}

impl Default for Registry {
    /// The built-ins.
    fn default() -> Self {
        Registry::built_in()
    }
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.names()).finish()
    }
}

/// Masks what `path` names inside `value`, walking lists on the way.
fn mask_at(value: &mut serde_json::Value, path: &[&str]) {
    match (value, path.split_first()) {
        (serde_json::Value::Array(items), Some(_)) => items.iter_mut().for_each(|v| mask_at(v, path)),
        (serde_json::Value::Object(map), Some((key, rest))) => {
            if let Some(v) = map.get_mut(*key) {
                mask_at(v, rest);
            }
        }
        (v, None) => hide(v),
        _ => {}
    }
}

/// Masks a value all through: every string, number or boolean in it becomes `"***"`; map keys
/// and `null` (not set) stay visible.
fn hide(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Array(items) => items.iter_mut().for_each(hide),
        serde_json::Value::Object(map) => map.values_mut().for_each(hide),
        serde_json::Value::Null => {}
        other => *other = serde_json::Value::String("***".into()),
    }
}

static INSTALLED: OnceLock<Registry> = OnceLock::new();

/// Makes `registry` the one this process builds filters from, for every config load and reload.
/// Call it once, before the config is first loaded (`portico::Daemon::run` does).
///
/// Gives the registry back if one is in use already: installed before, or the built-ins taken
/// by a [`current`] call (a config loaded first), since filters built from two registries in
/// one process would disagree.
pub fn install(registry: Registry) -> Result<(), Registry> {
    INSTALLED.set(registry)
}

/// The registry of this process: the one [`install`]ed, or the built-ins when none was.
pub fn current() -> &'static Registry {
    INSTALLED.get_or_init(Registry::built_in)
}

/// Names of every filter of the [`current`] registry, for "unknown filter" errors.
pub fn names() -> impl Iterator<Item = &'static str> {
    current().names()
}

/// Builds the filter called `name` from its YAML config, with the [`current`] registry.
pub fn build(name: &str, config: serde_yaml::Value, cx: &BuildContext<'_>) -> Result<Arc<dyn Filter>, BuildError> {
    current().build(name, config, cx)
}

#[cfg(test)]
mod tests;
