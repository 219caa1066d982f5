//! Portico's integration tests: each module tells one part of a user's story against the real
//! `portico` binary, real origins on OS-picked ports and a real HTTP client.

mod pki;
mod security;
mod support;
mod tokens;

mod balancing;
mod config_check;
mod edge_filters;
mod health;
mod limits;
mod observability;
mod reload;
mod resilience;
mod routing;
mod slow_clients;
mod tls;
mod traffic_basics;
