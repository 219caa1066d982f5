//! The `admin` section: where the admin API listens and who may use it.
//!
//! ```yaml
//! admin: {listen: "127.0.0.1:9901", token: "${PORTICO_ADMIN_TOKEN}", metrics_public: false}
//! ```
//!
//! The admin API reloads the config, shows it and explains its routes, so anyone who can reach
//! it can read and change how the proxy behaves. On a loopback address only local processes
//! reach it and a token is optional; anywhere else a token is required, and a config without
//! one is refused rather than started wide open.

use super::file::AdminFile;
use super::Errors;
use std::net::{SocketAddr, ToSocketAddrs};

/// Tokens shorter than this are refused: the admin API has no lockout, so a token must not be
/// guessable by trying.
const MIN_TOKEN_LEN: usize = 16;

/// Who may use the admin API. Unlike the address it listens on, this changes on reload, so a
/// token can be rotated without a restart.
#[derive(Debug, Clone, Default)]
pub struct AdminAccess {
    /// The bearer token every endpoint but `/healthz`, `/ready` and the dashboard page needs;
    /// `None` leaves the API open (allowed on loopback only).
    pub token: Option<AdminToken>,
    /// Serve `/metrics` without the token (for a Prometheus that cannot send one).
    pub metrics_public: bool,
    /// The host name `admin.listen` was written with, when it is a name rather than an IP
    /// address: requests may name it in `Host` besides the address itself.
    pub name: Option<String>,
}

/// The admin token. Its `Debug` never shows it, and it is compared in constant time.
#[derive(Clone)]
pub struct AdminToken(Box<[u8]>);

impl std::fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AdminToken(***)")
    }
}

impl AdminToken {
    /// Whether `presented` is the token. Takes the same time wherever the first difference is,
    /// so response times do not leak the token byte by byte (its length may show; it is not a
    /// secret worth the trouble).
    pub fn matches(&self, presented: &[u8]) -> bool {
        let want = &self.0;
        let mut diff = u8::from(want.len() != presented.len());
        for (i, w) in want.iter().enumerate() {
            diff |= w ^ presented.get(i).copied().unwrap_or(!w);
        }
        std::hint::black_box(diff) == 0
    }
}

/// Checks the section: the address, and a token wherever the address is not loopback.
pub(super) fn compile(file: Option<AdminFile>, errors: &mut Errors<'_>) -> (Option<SocketAddr>, AdminAccess) {
    let Some(file) = file else { return (None, AdminAccess::default()) };
    let addr = match file.listen.to_socket_addrs().map(|mut it| it.next()) {
        Ok(Some(a)) => Some(a),
        _ => {
            errors.at("admin.listen", format!("\"{}\" is not a host:port address", file.listen));
            None
        }
    };
    let token = match file.token {
        None => None,
        Some(t) if t.len() < MIN_TOKEN_LEN => {
            errors.at(
                "admin.token",
                format!("a token needs at least {MIN_TOKEN_LEN} characters (`openssl rand -hex 32` makes one)"),
            );
            None
        }
        Some(t) => Some(AdminToken(t.into_bytes().into_boxed_slice())),
    };
    if let Some(a) = addr.filter(|a| !a.ip().is_loopback()) {
        if token.is_none() && !errors.list.iter().any(|e| e.path == "admin.token") {
            errors.at(
                "admin.listen",
                format!(
                    "the admin API on {a} can be reached from other machines: set `admin.token` \
                     (e.g. \"${{PORTICO_ADMIN_TOKEN}}\") or listen on 127.0.0.1"
                ),
            );
        }
    }
    let host = file.listen.rsplit_once(':').map_or(file.listen.as_str(), |(h, _)| h);
    let name = (host.parse::<std::net::IpAddr>().is_err() && !host.starts_with('[')).then(|| host.to_ascii_lowercase());
    (addr, AdminAccess { token, metrics_public: file.metrics_public, name })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn load(admin: &str) -> Result<super::super::Config, super::super::ConfigErrors> {
        let yaml = format!("admin: {admin}\nlisteners: [{{name: web, listen: \"127.0.0.1:0\"}}]\n");
        super::super::load_str(&yaml, Path::new("t.yaml"))
    }

    #[test]
    fn tokens_compare_whole() {
        let t = AdminToken(b"0123456789abcdef".to_vec().into_boxed_slice());
        assert!(t.matches(b"0123456789abcdef"));
        assert!(!t.matches(b"0123456789abcdeF"));
        assert!(!t.matches(b"0123456789abcde"));
        assert!(!t.matches(b"0123456789abcdef0"));
        assert!(!t.matches(b""));
        assert_eq!(format!("{t:?}"), "AdminToken(***)");
    }

    #[test]
    fn loopback_may_go_without_a_token() {
        let c = load("{listen: \"127.0.0.1:9901\"}").expect("valid");
        assert!(c.admin_access.token.is_none());
        let c = load("{listen: \"0.0.0.0:9901\", token: 0123456789abcdef, metrics_public: true}").expect("valid");
        assert!(c.admin_access.token.is_some() && c.admin_access.metrics_public);
    }

    #[test]
    fn elsewhere_a_token_is_required_and_must_be_long() {
        let e = load("{listen: \"0.0.0.0:9901\"}").expect_err("needs a token");
        assert_eq!(e.0.len(), 1, "{e}");
        assert_eq!((e.0[0].path.as_str(), e.0[0].position), ("admin.listen", Some((1, 9))), "{e}");
        assert!(e.0[0].message.contains("set `admin.token`"), "{e}");
        let e = load("{listen: \"0.0.0.0:9901\", token: short}").expect_err("too short");
        assert_eq!(e.0.len(), 1, "one error, about the token: {e}");
        assert_eq!(e.0[0].path, "admin.token");
    }
}
