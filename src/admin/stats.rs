//! `GET /stats`: what the dashboard draws, as JSON. Request counts and latencies come from the
//! same Prometheus series `/metrics` exports; upstream state from the live pools; the reload
//! outcome from [`Shared::last_reload`].

use crate::state::Shared;
use crate::upstream::breaker::State;
use prometheus::proto::MetricFamily;
use serde_json::{json, Value};
use std::collections::HashMap;

const CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

/// One route's latency histogram: `(upper bound in seconds, cumulative count)` for the finite
/// buckets, the count of all samples, their sum.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Latency {
    /// Finite buckets, cumulative.
    pub buckets: Vec<(f64, u64)>,
    /// Every sample (the `+Inf` bucket).
    pub count: u64,
    /// Sum of the samples, in seconds.
    pub sum: f64,
}

/// The `q` quantile (0..=1) of a cumulative histogram, interpolated linearly inside its
/// bucket as Prometheus's `histogram_quantile` does; `None` without samples. A quantile past
/// the last finite bucket is that bucket's bound (the histogram knows nothing above it).
pub fn quantile(q: f64, h: &Latency) -> Option<f64> {
    if h.count == 0 {
        return None;
    }
    let rank = q * h.count as f64;
    let (mut lower, mut below) = (0.0, 0u64);
    for &(upper, cumulative) in &h.buckets {
        if cumulative as f64 >= rank {
            let inside = cumulative.saturating_sub(below);
            if inside == 0 {
                return Some(upper);
            }
            return Some(lower + (upper - lower) * (rank - below as f64) / inside as f64);
        }
        (lower, below) = (upper, cumulative);
    }
    h.buckets.last().map(|(upper, _)| *upper)
}

fn label<'a>(m: &'a prometheus::proto::Metric, name: &str) -> &'a str {
    m.get_label().iter().find(|l| l.name() == name).map_or("", |l| l.value())
}

fn family<'a>(families: &'a [MetricFamily], name: &str) -> &'a [prometheus::proto::Metric] {
    families.iter().find(|f| f.name() == name).map_or(&[], |f| f.get_metric())
}

/// Per-route request counts by status class, from `portico_requests_total`.
fn requests_by_route(families: &[MetricFamily]) -> HashMap<String, [u64; 5]> {
    let mut out: HashMap<String, [u64; 5]> = HashMap::new();
    for m in family(families, "portico_requests_total") {
        if let Some(i) = CLASSES.iter().position(|c| *c == label(m, "status_class")) {
            out.entry(label(m, "route").to_string()).or_default()[i] += m.get_counter().get_value() as u64;
        }
    }
    out
}

/// Per-route latency histograms, from `portico_request_duration_seconds`.
fn latency_by_route(families: &[MetricFamily]) -> HashMap<String, Latency> {
    family(families, "portico_request_duration_seconds")
        .iter()
        .map(|m| {
            let h = m.get_histogram();
            let buckets = h
                .get_bucket()
                .iter()
                .filter(|b| b.upper_bound().is_finite())
                .map(|b| (b.upper_bound(), b.cumulative_count()))
                .collect();
            (label(m, "route").to_string(), Latency { buckets, count: h.get_sample_count(), sum: h.get_sample_sum() })
        })
        .collect()
}

fn route_json(name: &str, counts: [u64; 5], latency: &Latency) -> Value {
    let ms = |q| quantile(q, latency).map(|s| (s * 1e6).round() / 1e3);
    json!({
        "name": name,
        "requests": CLASSES.iter().zip(counts).map(|(c, n)| (c.to_string(), json!(n))).collect::<serde_json::Map<_, _>>(),
        "total": counts.iter().sum::<u64>(),
        "latency": {
            "count": latency.count,
            "sum_s": latency.sum,
            "p50_ms": ms(0.5),
            "p99_ms": ms(0.99),
            "buckets": latency.buckets.iter().map(|(le, n)| json!([le, n])).collect::<Vec<_>>(),
        },
    })
}

/// The whole `/stats` document.
pub fn stats(shared: &Shared) -> Value {
    let runtime = shared.runtime.load();
    let families = shared.metrics.gather();
    let requests = requests_by_route(&families);
    let latency = latency_by_route(&families);
    let none = Latency::default();

    let mut routes: Vec<Value> = runtime
        .config
        .routes
        .iter()
        .map(|r| {
            route_json(
                &r.name,
                requests.get(&*r.name).copied().unwrap_or_default(),
                latency.get(&*r.name).unwrap_or(&none),
            )
        })
        .collect();
    // Requests no route took (404s, 405s, redirects), when there were any.
    if let Some(counts) = requests.get("") {
        routes.push(route_json("", *counts, latency.get("").unwrap_or(&none)));
    }

    let errors: HashMap<String, u64> =
        family(&families, "portico_upstream_errors_total").iter().fold(HashMap::new(), |mut acc, m| {
            *acc.entry(label(m, "upstream").to_string()).or_default() += m.get_counter().get_value() as u64;
            acc
        });
    let now = crate::upstream::window::now_ms();
    let mut pools: Vec<_> = runtime.pools.iter().collect();
    pools.sort_by(|a, b| a.spec.name.cmp(&b.spec.name));
    let upstreams: Vec<Value> = pools
        .iter()
        .map(|pool| {
            let mut targets = pool.health();
            targets.sort();
            let targets: Vec<Value> = targets
                .into_iter()
                .map(|(addr, healthy)| {
                    let (ejected, in_flight) = pool
                        .targets
                        .peek(&addr, |s| (s.ejected(now), s.in_flight.load(std::sync::atomic::Ordering::Acquire)))
                        .unwrap_or((false, 0));
                    let weight = pool.spec.targets.iter().find(|t| t.addr == addr).map_or(1, |t| t.weight);
                    json!({"address": addr.to_string(), "weight": weight, "healthy": healthy, "ejected": ejected, "in_flight": in_flight})
                })
                .collect();
            json!({
                "name": &*pool.spec.name,
                "health_checked": pool.spec.health.is_some(),
                "first_check_done": pool.checked(),
                "breaker": pool.breaker.as_ref().map(|b| match b.state() {
                    State::Closed => "closed",
                    State::Open => "open",
                    State::HalfOpen => "half_open",
                }),
                "in_flight": pool.limit.as_ref().map_or(0, |l| l.taken()),
                "errors": errors.get(&*pool.spec.name).copied().unwrap_or(0),
                "targets": targets,
            })
        })
        .collect();

    let last_reload = shared.last_reload.load_full().map(|r| match &r.result {
        Ok(generation) => json!({"at_ms": r.at_ms, "ok": true, "generation": generation}),
        Err(e) => {
            let mut j = e.to_json();
            j["at_ms"] = json!(r.at_ms);
            j["ok"] = json!(false);
            j
        }
    });
    json!({
        "time_ms": std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64),
        "generation": runtime.generation,
        "config_file": runtime.config.source_path.display().to_string(),
        "in_flight": shared.metrics.in_flight().get(),
        "routes": routes,
        "upstreams": upstreams,
        "last_reload": last_reload,
    })
}
