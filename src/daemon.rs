//! `portico::Daemon`: the `portico` command, with the filters of one build.
//!
//! The stock binary is `Daemon::new().run()`; a user's own build adds its filters first, in the
//! spirit of Caddy's plugin builds:
//!
//! ```no_run
//! # use portico_filters::{BuildContext, BuildError, Filter, FilterFactory};
//! # struct MyFilter;
//! # impl Filter for MyFilter {}
//! # impl FilterFactory for MyFilter {
//! #     const NAME: &'static str = "my_filter";
//! #     type Config = serde_yaml::Value;
//! #     fn build(_: serde_yaml::Value, _: &BuildContext<'_>) -> Result<Self, BuildError> { Ok(MyFilter) }
//! # }
//! fn main() -> std::process::ExitCode {
//!     portico::Daemon::new().filter::<MyFilter>().run()
//! }
//! ```
//!
//! `filters/examples/custom-filter/` is such a build, and `filters/README.md` walks through it.

use clap::Parser;
use portico_filters::registry::{self, Registry};
use portico_filters::FilterFactory;
use std::path::PathBuf;
use std::process::ExitCode;

/// The version and the commit the binary was built from (src/build.rs).
pub const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), " (commit ", env!("PORTICO_COMMIT"), ")");

/// Portico: a programmable reverse proxy and API gateway.
#[derive(Parser, Debug)]
#[command(name = "portico", version = VERSION, about)]
#[command(args_conflicts_with_subcommands = true)]
struct Cli {
    /// What to do besides running: explain a request, or print the routing table.
    #[command(subcommand)]
    command: Option<Command>,
    /// The config file.
    #[arg(short = 'c', long = "config", default_value = "conf/portico.yaml")]
    config: PathBuf,
    /// Check the config and exit: 0 when valid, 1 with every error otherwise.
    #[arg(short = 't', long = "test")]
    test: bool,
    /// Take the listening sockets over from a running instance (send it SIGQUIT after
    /// starting this one).
    #[arg(short = 'u', long = "upgrade")]
    upgrade: bool,
}

/// Questions an operator asks of a config without running it.
#[derive(clap::Subcommand, Debug)]
enum Command {
    /// Which listener, route, filters, upstream rules, retry, timeouts and cache a request gets
    /// on this config (or why it gets none: the 404/405 and the nearest candidates).
    Explain {
        /// The config file.
        #[arg(short = 'c', long = "config", default_value = "conf/portico.yaml")]
        config: PathBuf,
        /// The request method.
        #[arg(short = 'X', long = "request", default_value = "GET")]
        method: String,
        /// A request header, `Name: value` (repeatable).
        #[arg(short = 'H', long = "header")]
        headers: Vec<String>,
        /// The request URL, `http://host[:port]/path?query` (the port picks the listener).
        url: String,
    },
    /// The routing table of every listener, in precedence order.
    Routes {
        /// The config file.
        #[arg(short = 'c', long = "config", default_value = "conf/portico.yaml")]
        config: PathBuf,
    },
}

/// A Portico build: the built-in filters plus those added with [`Daemon::filter`], and the
/// command line that runs it (`-c FILE`, `-t`, `-u`, `--version`).
#[derive(Debug, Default)]
pub struct Daemon {
    registry: Registry,
}

impl Daemon {
    /// The stock `portico`: the built-in filters only.
    pub fn new() -> Self {
        Daemon { registry: Registry::built_in() }
    }

    /// Adds filter type `F`: configs may use it as `- {F::NAME}: {config}` on any listener or
    /// route, with the same typed config, `-t` errors and cost as a built-in.
    ///
    /// # Panics
    ///
    /// If another filter already has `F::NAME` (see [`Registry::with`]): a programming error,
    /// found on the first start of the binary.
    pub fn filter<F: FilterFactory>(mut self) -> Self {
        self.registry = self.registry.with::<F>();
        self
    }

    /// Parses the command line and does what it says: checks the config (`-t`), or loads it
    /// and serves until told to stop. Returns the process's exit code: failure when the config
    /// is invalid or the server cannot start.
    pub fn run(self) -> ExitCode {
        let cli = Cli::parse();
        crate::logging::init();

        // Before the first config load: every load and reload builds filters from it.
        if registry::install(self.registry).is_err() {
            eprintln!("portico: a filter registry was already in use in this process (Daemon::run called twice?)");
            return ExitCode::FAILURE;
        }
        let path = match &cli.command {
            Some(Command::Explain { config, .. } | Command::Routes { config }) => config.clone(),
            None => cli.config.clone(),
        };
        let config = match crate::config::load(&path) {
            Ok(c) => c,
            Err(errors) => {
                eprintln!("{errors}");
                eprintln!("portico: {} error(s) in {}", errors.0.len(), path.display());
                return ExitCode::FAILURE;
            }
        };
        match &cli.command {
            Some(Command::Explain { method, headers, url, .. }) => {
                print!("{}", crate::explain::explain_cli(&config, method, url, headers));
                return ExitCode::SUCCESS;
            }
            Some(Command::Routes { .. }) => {
                print!("{}", crate::explain::routes_cli(&config));
                return ExitCode::SUCCESS;
            }
            None => {}
        }
        if cli.test {
            println!("portico: {} is valid", cli.config.display());
            return ExitCode::SUCCESS;
        }
        crate::logging::apply(config.log);
        // The pid file's and upgrade socket's default directory: private, or no start.
        if let Some(dir) = &config.server.runtime_dir {
            if let Err(e) = crate::config::runtime_dir::prepare(dir, crate::config::runtime_dir::euid()) {
                eprintln!("portico: cannot start: {e}");
                return ExitCode::FAILURE;
            }
        }
        let shared = match crate::server::build_shared(config) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("portico: cannot start: {e}");
                return ExitCode::FAILURE;
            }
        };
        crate::server::run(shared, cli.upgrade);
        ExitCode::SUCCESS
    }
}
