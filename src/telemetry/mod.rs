//! What Portico tells operators about the requests it serves.
//!
//! | file            | job                                                              |
//! |-----------------|------------------------------------------------------------------|
//! | [`metrics`]     | Prometheus metrics, with per-route handles resolved once         |
//! | [`access_log`]  | the JSON access-log line, its writer thread and batching         |
//! | [`trace`]       | request ids                                                      |
//! | [`text`]        | RFC 3339 time and socket-address text for log fields             |
//! | [`otlp`]        | OpenTelemetry spans: sampling, the request span API, OTLP export |
//!
//! Everything is re-exported here: code outside names `crate::telemetry::Metrics`, not the file.

pub mod access_log;
pub mod metrics;
pub mod otlp;
pub mod text;
pub mod trace;

pub use access_log::{AccessLine, AccessLog, TunnelLine};
pub use metrics::{Metrics, RouteMetrics};
pub use text::{now_rfc3339, socket_addr_text};
pub use trace::{new_request_id, valid_request_id};
