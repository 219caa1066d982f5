//! Portico: a programmable reverse proxy and API gateway on Pingora.
//!
//! The daemon is `portico -c FILE`; this library is what it is made of, exposed so that tests
//! and benchmarks can drive the same code, and so that a user's crate can build its own
//! `portico` with filters of its own ([`Daemon`]). See `README.md` for the tour.

pub mod admin;
pub mod cache;
pub mod canonical;
pub mod compose;
pub mod config;
pub mod daemon;
pub mod explain;
#[doc(hidden)]
pub mod fuzzing;
pub mod keepalive;
pub mod logging;
pub mod mirror;
pub mod proxy;
pub mod reload;
pub mod routing;
pub mod server;
pub mod state;
pub mod telemetry;
pub mod tls;
pub mod upstream;

pub use daemon::Daemon;
