//! One reading of a request for everything that decides on it (issue 12, hardening).
//!
//! Routing, filters, ACLs, rewrites and the upstream must agree on what a request is, or the
//! difference is a bypass: a path that the router reads as `/api` and the upstream as
//! `/api/admin`, a `Host` spelled so no host route matches, a body framed one way here and another
//! way upstream, an `X-Real-IP` the upstream believes. Each part is a pure function over the
//! request as Pingora parsed it, tested on its own:
//!
//! | file          | what it gives                                                        | refusal  |
//! |---------------|----------------------------------------------------------------------|----------|
//! | `path.rs`     | the canonical path (RFC 3986 dot segments, escapes, slashes), query kept | 400      |
//! | `host.rs`     | the routing host (case, trailing dot, port; absolute-form authority) | 400      |
//! | `framing.rs`  | CL+TE, `Transfer-Encoding` other than `chunked`, header limits       | 400/501/431 |
//! | `identity.rs` | the forgeable identity headers, stripped on edge listeners           | -        |
//!
//! Every function borrows when the input is already canonical: the common request allocates
//! nothing here (`benches/canonical.rs`).

pub mod framing;
pub mod host;
pub mod identity;
pub mod path;

pub use framing::{check_framing, FramingError, HeaderLimits};
pub use host::{canonical_host, request_host, routing_host, HostError};
pub use identity::{strip_forgeable, FORGEABLE};
pub use path::{canonical_path, canonical_path_bytes, canonical_target, canonical_target_bytes, PathError};
