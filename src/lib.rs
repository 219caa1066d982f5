//! Portico: a programmable reverse proxy and API gateway on Pingora.
//!
//! The daemon is `portico -c FILE`; this library is what it is made of, exposed so that tests
//! and benchmarks can drive the same code. See `README.md` for the tour.

pub mod admin;
pub mod canonical;
pub mod chain;
pub mod config;
pub mod keepalive;
pub mod mirror;
pub mod proxy;
pub mod routing;
pub mod server;
pub mod state;
pub mod telemetry;
pub mod tls;
pub mod upstream;
