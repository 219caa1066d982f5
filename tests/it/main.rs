//! Portico's integration tests: each module tells one part of a user's story against the real
//! `portico` binary, real origins on OS-picked ports and a real HTTP client.

mod pki;
mod security;
mod support;
mod tokens;

mod admin;
mod balancing;
mod cache;
mod compose;
mod config_check;
mod custom_filter;
mod dashboard;
mod edge_filters;
mod explain;
mod filter_hardening;
mod grpc;
mod hardening;
mod hardening_corpus;
mod hardening_fuzz;
mod hardening_mirror;
mod hardening_tls;
mod health;
mod http2;
mod limits;
mod observability;
mod operations;
mod reload;
mod resilience;
mod routing;
mod slow_clients;
mod tls;
mod tracing;
mod traffic_basics;
mod transform;
mod upgrade;
mod upstream_errors;
mod websocket;
