//! One reading of a request for everything that decides on it (issue 12, hardening).
//!
//! Routing, filters, ACLs, rewrites and the upstream must agree on what a request is, or the
//! difference is a bypass: a path that the router reads as `/api` and the upstream as
//! `/api/admin`, a `Host` spelled so no host route matches, a body framed one way here and another
//! way upstream, an `X-Real-IP` the upstream believes. Each part is a pure function over the
//! request as Pingora parsed it, tested on its own:
//!
//! | file          | what it gives                                                         | refusal     |
//! |---------------|-----------------------------------------------------------------------|-------------|
//! | `path.rs`     | the canonical path (dot segments, escapes, slashes); the query kept   | 400         |
//! | `host.rs`     | the routing host (case, trailing dot, port; absolute-form authority)  | 400         |
//! | `framing.rs`  | CL with TE, `Transfer-Encoding` other than `chunked`, header limits   | 400/501/431 |
//! | `identity.rs` | the forgeable identity headers, stripped on edge listeners            | -           |
//!
//! Every function borrows when the input is already canonical: the common request allocates
//! nothing here (`benches/canonical.rs`).
//!
//! ## Wiring (first thing in `request_filter`, before the route match)
//!
//! 1. [`check_framing`]`(req, raw, &limits)`, `raw` being
//!    `session.as_downstream().as_http1().map(|h| h.get_headers_raw_bytes())` (read only when
//!    `Transfer-Encoding` is present); answer `e.status()` with `e.as_str()` / `e.message()`.
//! 2. [`request_host`]`(req)`: the host to route on; a 400 on error.
//! 3. Unless the listener says `path_normalization: off`:
//!    [`canonical_target_bytes`]`(`[`path::strip_absolute_form`]`(req.raw_path()))`; when it is
//!    `Cow::Owned`, `req.set_raw_path(&it)`, so that routing, filters, ACLs, `rewrite` and the
//!    upstream all read `req.uri` afterwards and see the same path. A 400 on error.
//! 4. On edge listeners: [`strip_forgeable`]`(req, &names_the_filters_set)`, before any filter.

pub mod framing;
pub mod host;
pub mod identity;
pub mod path;

pub use framing::{check_framing, FramingError, HeaderLimits};
pub use host::{canonical_host, port_of, request_host, request_port, routing_host, HostError};
pub use identity::{strip_forgeable, FORGEABLE};
pub use path::{canonical_path, canonical_path_bytes, canonical_target, canonical_target_bytes, PathError};
