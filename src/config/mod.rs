//! Config loading: `file -> FileConfig -> Config`.
//!
//! 1. the text is indexed for line numbers ([`locate`]) and parsed to a YAML value;
//! 2. `${VAR}` (or `${VAR:-default}`) in string values is substituted from the environment;
//! 3. the value is deserialized into the file structs ([`file`]), unknown keys refused;
//! 4. [`compile`] validates and builds the runtime types ([`model`]), collecting every error;
//!    what the file leaves out is taken from [`defaults`].
//!
//! Every error names file, line, column and YAML path.

mod admin;
mod compile;
pub mod defaults;
mod env;
mod file;
mod locate;
pub mod log;
pub mod model;
pub mod runtime_dir;
pub mod tracing;

pub use admin::{AdminAccess, AdminToken};
pub use model::*;

use locate::Locations;
use std::fmt;
use std::path::{Path, PathBuf};

/// One problem in a config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The file.
    pub file: PathBuf,
    /// 1-based line and column, when known.
    pub position: Option<(usize, usize)>,
    /// YAML path such as `routes[2].upstream`; empty for the whole file.
    pub path: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some((line, col)) = self.position {
            write!(f, ":{line}:{col}")?;
        }
        if self.path.is_empty() {
            write!(f, ": {}", self.message)
        } else {
            write!(f, ": {}: {}", self.path, self.message)
        }
    }
}

/// Every problem found in one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// Collects errors with their positions while a file is checked.
pub(crate) struct Errors<'a> {
    file: &'a Path,
    locations: &'a Locations,
    list: Vec<ConfigError>,
}

impl<'a> Errors<'a> {
    fn new(file: &'a Path, locations: &'a Locations) -> Self {
        Errors { file, locations, list: Vec::new() }
    }

    /// Records an error at a YAML path.
    pub(crate) fn at(&mut self, path: impl Into<String>, message: impl Into<String>) {
        let path = path.into();
        self.list.push(ConfigError {
            file: self.file.to_path_buf(),
            position: self.locations.find(&path),
            path,
            message: message.into(),
        });
    }

    fn into_result<T>(self, value: T) -> Result<T, ConfigErrors> {
        if self.list.is_empty() {
            Ok(value)
        } else {
            Err(ConfigErrors(self.list))
        }
    }
}

/// Reads, checks and builds the config in `path`.
pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
    let whole = |message: String| {
        ConfigErrors(vec![ConfigError { file: path.to_path_buf(), position: None, path: String::new(), message }])
    };
    let text = std::fs::read_to_string(path).map_err(|e| whole(format!("cannot read: {e}")))?;
    load_str(&text, path)
}

/// Checks and builds a config from text; `path` names it in errors and anchors relative paths.
pub fn load_str(text: &str, path: &Path) -> Result<Config, ConfigErrors> {
    let locations = Locations::index(text);
    let mut errors = Errors::new(path, &locations);

    let mut value: serde_yaml::Value = match serde_yaml::from_str(text) {
        Ok(v) => v,
        Err(e) => {
            let position = e.location().map(|l| (l.line(), l.column()));
            return Err(ConfigErrors(vec![ConfigError {
                file: path.to_path_buf(),
                position,
                path: String::new(),
                message: format!("invalid YAML: {e}"),
            }]));
        }
    };
    if value.is_null() {
        value = serde_yaml::Value::Mapping(Default::default());
    }
    let substituted = env::substitute(&mut value, &mut errors);
    if !errors.list.is_empty() {
        return Err(ConfigErrors(errors.list));
    }

    let file: file::FileConfig = match serde_path_to_error::deserialize(value.clone()) {
        Ok(f) => f,
        Err(e) => {
            let p = e.path().to_string();
            errors.at(if p == "." { String::new() } else { p }, e.into_inner().to_string());
            return Err(ConfigErrors(errors.list));
        }
    };
    let base_dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let config = compile::compile(file, path, &base_dir, env::masked_json(&value, &substituted), &mut errors);
    errors.into_result(config)
}
