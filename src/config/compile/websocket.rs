//! `routes[].websocket`: an upgraded connection on the route is a tunnel with an idle timeout
//! (the tunnel itself is `src/proxy/websocket/`).

use crate::config::defaults;
use crate::config::file::WebSocketFile;
use crate::config::model::WebSocketSpec;
use crate::config::Errors;
use std::time::Duration;

/// The route's tunnel settings, `idle_timeout_s` defaulting to
/// [`defaults::WEBSOCKET_IDLE_TIMEOUT_S`].
pub(super) fn websocket(w: WebSocketFile, at: &str, errors: &mut Errors<'_>) -> WebSocketSpec {
    let idle = w.idle_timeout_s.unwrap_or(defaults::WEBSOCKET_IDLE_TIMEOUT_S);
    if idle == 0 {
        errors.at(format!("{at}.idle_timeout_s"), "must be at least 1 (seconds with no bytes either way)");
    }
    WebSocketSpec { idle_timeout: Duration::from_secs(idle.max(1)) }
}

#[cfg(test)]
mod tests {
    use crate::config::load_str;
    use std::path::Path;

    const ROUTES: &str = r#"
listeners: [{name: web, listen: "127.0.0.1:0"}]
upstreams: {a: {targets: ["127.0.0.1:1"]}}
routes:
  - {name: chat, upstream: a, websocket: {}}
  - {name: feed, upstream: a, websocket: {idle_timeout_s: 7}}
  - {name: plain, upstream: a}
"#;

    #[test]
    fn the_idle_timeout_defaults_to_five_minutes() {
        let c = load_str(ROUTES, Path::new("t.yaml")).expect("valid");
        let idle: Vec<_> = c.routes.iter().map(|r| r.websocket.map(|w| w.idle_timeout.as_secs())).collect();
        assert_eq!(idle, [Some(300), Some(7), None]);
    }

    #[test]
    fn zero_and_unknown_keys_are_refused_by_path() {
        let zero = ROUTES.replace("idle_timeout_s: 7", "idle_timeout_s: 0");
        let e = load_str(&zero, Path::new("t.yaml")).expect_err("zero is refused").to_string();
        assert!(e.contains("routes[1].websocket.idle_timeout_s"), "{e}");
        let typo = ROUTES.replace("idle_timeout_s: 7", "idle_timeout: 7");
        let e = load_str(&typo, Path::new("t.yaml")).expect_err("unknown key").to_string();
        assert!(e.contains("idle_timeout"), "{e}");
    }
}
