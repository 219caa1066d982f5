//! The chain target: any bytes read by Pingora as a request on `tests/fuzz/chain.yaml`,
//! canonicalized and routed as `request_filter` does, then through the listener's and the route's
//! filter chains, all their phases.

use super::{block_on, session};
use crate::config::Config;
use crate::proxy::{canon, select};
use crate::routing::Router;
use http::HeaderName;
use pingora::http::ResponseHeader;
use portico_filters::{Flow, RequestCtx};
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::sync::{Arc, OnceLock};

/// The routes whose `api_key` filter must have found a consumer for a request to go on, and
/// the group `acl` then requires.
const KEYED: &[(&str, Option<&str>)] = &[("partners", Some("partners")), ("keyed", None)];

/// The fuzz config, its router and its identity headers, built once.
struct Setup {
    config: Config,
    router: Router,
    identity: Vec<HeaderName>,
}

fn setup() -> &'static Setup {
    static SETUP: OnceLock<Setup> = OnceLock::new();
    SETUP.get_or_init(|| {
        let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz/chain.yaml");
        let config = match crate::config::load(&file) {
            Ok(config) => config,
            Err(e) => panic!("tests/fuzz/chain.yaml is a valid config: {e}"),
        };
        let names: Vec<Arc<str>> = config.listeners.iter().map(|l| l.name.clone()).collect();
        let router = Router::new(&names, &config.routes);
        let chains = config.listeners.iter().map(|l| &l.filters).chain(config.routes.iter().map(|r| &r.filters));
        let mut identity: Vec<HeaderName> = Vec::new();
        for name in chains.flat_map(|c| c.identity_headers().iter()) {
            if !identity.contains(name) {
                identity.push(name.clone());
            }
        }
        Setup { config, router, identity }
    })
}

/// Runs the request in `data` through the chains and checks that keyed routes held.
pub fn chain(data: &[u8]) {
    let setup = setup();
    let listener = setup.config.listeners.first().expect("chain.yaml has a listener");
    block_on(async {
        let Some(mut session) = session(data).await else {
            return;
        };
        let Ok(host) = canon::canonicalize(&mut session, Some(listener), &setup.identity) else {
            return;
        };
        let Ok(route) = select::route(&setup.router, "web", session.req_header(), host.as_deref()) else {
            return;
        };
        let mut ctx = RequestCtx {
            request_id: "fuzz".into(),
            client_ip: Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1))),
            listener: listener.name.clone(),
            route: route.name.clone(),
            ..RequestCtx::default()
        };
        let chains = [&listener.filters, &route.filters];
        for chain in chains {
            match chain.request(&mut session, &mut ctx).await {
                Ok(Flow::Continue) => {}
                Ok(Flow::Reject(_) | Flow::Respond(_)) | Err(_) => return,
            }
        }
        // The request goes on: a keyed route has its consumer.
        if let Some((_, group)) = KEYED.iter().find(|(name, _)| **name == *route.name) {
            let Some(consumer) = &ctx.consumer else {
                panic!("route {} let {:?} through without a consumer", route.name, session.req_header());
            };
            if let Some(group) = group {
                assert!(consumer.groups.iter().any(|g| g == group), "{} is not in {group}", consumer.name);
            }
        }
        // The body, as far as the bytes hold one, through the body phases.
        if chains.iter().any(|c| c.wants_body()) {
            for _ in 0..4 {
                let body = session.read_request_body().await;
                let end = !matches!(body, Ok(Some(_)));
                let mut body = body.ok().flatten();
                for chain in chains {
                    if !matches!(chain.request_body(&mut body, end, &mut ctx), Ok(Flow::Continue)) {
                        return;
                    }
                }
                if end {
                    break;
                }
            }
        }
        // The upstream request and the response, as the core runs them.
        let mut upstream = session.req_header().clone();
        for chain in chains {
            if chain.upstream_request(&mut upstream, &mut ctx).is_err() {
                return;
            }
        }
        let Ok(mut response) = ResponseHeader::build(200, None) else {
            return;
        };
        for chain in chains.iter().rev() {
            if chain.response(&mut response, &mut ctx).is_err() {
                return;
            }
        }
    })
}
