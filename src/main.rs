//! The `portico` command: run, check a config, or take over from a running instance
//! ([`portico::Daemon`] has the command line). A build with filters of its own is the same
//! `main` with `.filter::<F>()` calls (`filters/examples/custom-filter/`).

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

fn main() -> std::process::ExitCode {
    portico::Daemon::new().run()
}
