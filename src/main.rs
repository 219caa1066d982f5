//! The `portico` command: run, check a config, or take over from a running instance.

use clap::Parser;

#[cfg(feature = "jemalloc")]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's settings, read when it starts (`_RJEM_MALLOC_CONF` in the environment still
/// overrides them):
/// - `background_thread`: jemalloc purges freed pages only on allocation activity; a background
///   thread lets memory go back to the system after a burst of connections closes and the
///   process goes quiet.
/// - `tcache_max:131072`: Pingora allocates a 64 KiB body buffer for every upstream response;
///   above jemalloc's default thread-cache limit (32 KiB) each one went through the arena's
///   extent bookkeeping. Cached per thread, about 8 % less CPU per request
///   (benches/RESULTS.md).
///
/// The one `unsafe` item in Portico: jemalloc reads its settings from this exported symbol
/// before `main` runs, and a static byte string has no other way to reach it.
#[cfg(feature = "jemalloc")]
#[allow(unsafe_code)]
#[unsafe(export_name = "_rjem_malloc_conf")]
pub static MALLOC_CONF: &[u8] = b"background_thread:true,tcache_max:131072\0";
use std::path::PathBuf;
use std::process::ExitCode;

/// Portico: a programmable reverse proxy and API gateway.
#[derive(Parser, Debug)]
#[command(name = "portico", version, about)]
struct Cli {
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

fn main() -> ExitCode {
    let cli = Cli::parse();
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();

    let config = match portico::config::load(&cli.config) {
        Ok(c) => c,
        Err(errors) => {
            eprintln!("{errors}");
            eprintln!("portico: {} error(s) in {}", errors.0.len(), cli.config.display());
            return ExitCode::FAILURE;
        }
    };
    if cli.test {
        println!("portico: {} is valid", cli.config.display());
        return ExitCode::SUCCESS;
    }
    // The pid file's and upgrade socket's default directory: private, or no start.
    if let Some(dir) = &config.server.runtime_dir {
        if let Err(e) = portico::config::runtime_dir::prepare(dir, portico::config::runtime_dir::euid()) {
            eprintln!("portico: cannot start: {e}");
            return ExitCode::FAILURE;
        }
    }
    let shared = match portico::server::build_shared(config) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("portico: cannot start: {e}");
            return ExitCode::FAILURE;
        }
    };
    portico::server::run(shared, cli.upgrade);
    ExitCode::SUCCESS
}
