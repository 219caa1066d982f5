//! `GET /routes` and `GET /explain?method=GET&url=...&header=Name:%20value&listener=web`: the
//! reports of [`crate::explain`] over the running config, with each target's live health.

use crate::explain::{self, Explanation, Probe};
use crate::state::Runtime;
use serde_json::{json, Value};

/// The routing table of the running config.
pub fn routes(runtime: &Runtime) -> Value {
    json!({
        "generation": runtime.generation,
        "listeners": explain::routes_json(&runtime.config, &runtime.router),
    })
}

/// The explanation of the request the query describes, or what is wrong with the query.
pub fn explain(runtime: &Runtime, query: Option<&str>) -> Result<Value, String> {
    let params = params(query.unwrap_or(""));
    let one = |name: &str| params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    let url =
        one("url").ok_or("give the request as ?url=http://host/path (and method=, header=Name:%20value, listener=)")?;
    let headers: Vec<String> = params.iter().filter(|(k, _)| k == "header").map(|(_, v)| v.clone()).collect();
    let probe = Probe::parse(one("method").unwrap_or("GET"), url, &headers, one("listener"))?;
    let mut report = explain::explain(&runtime.config, &runtime.router, &probe);
    live_state(runtime, &mut report);
    serde_json::to_value(&report).map_err(|e| format!("cannot render the explanation: {e}"))
}

/// Fills in each target's health and ejection as the pools see them now.
fn live_state(runtime: &Runtime, report: &mut Explanation) {
    let now = crate::upstream::window::now_ms();
    for plan in report.upstream.iter_mut().flat_map(|u| u.pools.iter_mut()) {
        let Some(pool) = runtime.pools.get(&plan.name) else { continue };
        let health = pool.health();
        for t in &mut plan.targets {
            let Ok(addr) = t.address.parse() else { continue };
            t.healthy = health.iter().find(|(a, _)| *a == addr).map(|(_, h)| *h);
            t.ejected = pool.targets.peek(&addr, |s| s.ejected(now));
        }
    }
}

/// `a=1&b=x%20y` as decoded pairs (`+` is a space, as forms send it).
pub fn params(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(k), decode(v))
        })
        .collect()
}

fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok().and_then(|h| u8::from_str_radix(h, 16).ok());
                match hex {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
