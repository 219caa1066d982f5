//! The text an operator reads from `portico routes` and `portico explain`: the same reports the
//! admin API sends as JSON, laid out as labelled lines that fit a terminal.

use super::pool::PoolPlan;
use super::table::{ActionSummary, ListenerTable, MatchSummary};
use super::{Candidate, Explanation};
use std::fmt::Write;

/// Lines are wrapped at this width, at `, ` boundaries.
const WIDTH: usize = 100;

/// Every listener's routing table.
pub fn tables(tables: &[ListenerTable]) -> String {
    let mut out = String::new();
    for (i, t) in tables.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let _ = write!(out, "listener {} ({}, {}{})", t.name, t.listen, t.role, if t.tls { ", TLS" } else { "" });
        if !t.filters.is_empty() {
            let _ = write!(out, ", filters: {}", t.filters.join(", "));
        }
        out.push('\n');
        if let Some(port) = t.redirect_https {
            let _ = writeln!(out, "  every request is redirected to https on port {port}; no routing");
            continue;
        }
        if t.routes.is_empty() {
            let _ = writeln!(out, "  no routes: every request gets 404");
            continue;
        }
        let rows: Vec<[String; 5]> = t
            .routes
            .iter()
            .map(|r| {
                [
                    r.rank.to_string(),
                    r.name.clone(),
                    match_text(&r.matcher, r.priority),
                    action_text(&r.action),
                    r.filters.join(", "),
                ]
            })
            .collect();
        let header = ["#", "route", "match", "action", "filters"].map(str::to_string);
        let mut widths = [0usize; 5];
        for row in std::iter::once(&header).chain(&rows) {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        if widths.iter().sum::<usize>() + 10 <= WIDTH {
            for row in std::iter::once(&header).chain(&rows) {
                let mut line = String::from("  ");
                for (i, (cell, w)) in row.iter().zip(widths).enumerate() {
                    if i == 4 {
                        line.push_str(cell);
                    } else {
                        let _ = write!(line, "{cell:<w$}  ");
                    }
                }
                let _ = writeln!(out, "{}", line.trim_end());
            }
        } else {
            stacked(&mut out, &rows, widths[1]);
        }
    }
    out
}

/// The table one route to a block, for routes too wide for one line each.
fn stacked(out: &mut String, rows: &[[String; 5]], name_w: usize) {
    for [rank, name, matcher, action, filters] in rows {
        let head = format!("  {:<4}{name:<name_w$}  ", format!("#{rank}"));
        let indent = head.chars().count();
        let _ = writeln!(out, "{}", wrap(&format!("{head}{matcher}"), indent));
        let _ = writeln!(out, "{}", wrap(&format!("{:indent$}-> {action}", ""), indent + 3));
        if !filters.is_empty() {
            let _ = writeln!(out, "{}", wrap(&format!("{:indent$}filters: {filters}", ""), indent + 9));
        }
    }
}

/// A route's match in a few words: `api.example.com /users and below, GET POST`.
pub fn match_text(m: &MatchSummary, priority: i32) -> String {
    let mut parts = Vec::new();
    if !m.hosts.is_empty() {
        parts.push(format!("host {}", m.hosts.join(" | ")));
    }
    let value = m.path.value.as_deref().unwrap_or("");
    parts.push(match m.path.kind {
        "prefix" => format!("{value} and below"),
        "exact" => format!("exactly {value}"),
        "regex" => format!("path ~ {value}"),
        _ => "any path".to_string(),
    });
    if let Some(ms) = &m.methods {
        parts.push(ms.join(" "));
    }
    for (k, v) in &m.headers {
        parts.push(if v == "*" { format!("header {k}") } else { format!("header {k}: {v}") });
    }
    for (k, v) in &m.query {
        parts.push(if v == "*" { format!("?{k}") } else { format!("?{k}={v}") });
    }
    if priority != 0 {
        parts.push(format!("priority {priority}"));
    }
    parts.join(", ")
}

/// What a route does in a few words: `upstream users`, `split a 90%, b 10%`, `respond 200`.
pub fn action_text(a: &ActionSummary) -> String {
    let mut s = if let Some(u) = &a.upstream {
        format!("upstream {u}")
    } else if let Some(parts) = &a.split {
        let shares: Vec<String> = parts.iter().map(|p| format!("{} {}%", p.upstream, p.percent)).collect();
        format!("split {}", shares.join(" / "))
    } else if let Some(r) = &a.respond {
        format!("respond {}", r.status)
    } else if let Some(agg) = &a.aggregate {
        let names: Vec<&str> = agg.parts.iter().map(|p| p.name.as_str()).collect();
        format!("aggregate {}{}", names.join(" + "), if agg.merge { " (merged)" } else { "" })
    } else {
        String::new()
    };
    if let Some(c) = &a.canary {
        let _ = write!(s, ", canary {}", c.upstream);
    }
    if let Some(m) = &a.mirror {
        let _ = write!(s, ", mirror {}% to {}", m.percent, m.upstream);
    }
    s
}

/// One explanation.
pub fn explanation(e: &Explanation) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{} {}", e.request.method, e.request.url);
    for (k, v) in &e.request.headers {
        let _ = writeln!(out, "  {k}: {v}");
    }
    let mut top = Block::new(&mut out, 2, 10);
    if let Some(l) = &e.listener {
        top.line("listener", &format!("{} ({}, {}): {}", l.name, l.listen, l.role, l.chosen_because));
    }
    if let Some(r) = &e.route {
        top.line("route", &format!("{} (#{} on its listener): {}", r.name, r.rank, match_text(&r.matcher, r.priority)));
    }
    let result = match e.result.status {
        Some(status) if e.result.kind != "respond" => format!("{status} {}: {}", e.result.kind, e.result.message),
        _ => e.result.message.clone(),
    };
    top.line("result", &result);

    if !e.tried_first.is_empty() {
        let _ = writeln!(out, "\n  ranked higher, did not match");
        candidates(&mut out, &e.tried_first);
        if e.tried_first_more > 0 {
            let _ = writeln!(out, "    ... and {} more", e.tried_first_more);
        }
    }
    if !e.nearest.is_empty() {
        let _ = writeln!(out, "\n  nearest routes");
        candidates(&mut out, &e.nearest);
    }
    if !e.filters.is_empty() {
        let _ = writeln!(out, "\n  filters, in request order (the response passes them in reverse)");
        let name_w = e.filters.iter().map(|f| f.name.len()).max().unwrap_or(0);
        let from_w = e.filters.iter().map(|f| f.from.len()).max().unwrap_or(0);
        for (i, f) in e.filters.iter().enumerate() {
            let head = format!("    {}  {:<name_w$}  {:<from_w$}  ", i + 1, f.name, f.from);
            // Continuation lines start inside the opening brace.
            let indent = head.chars().count() + 1;
            let _ = writeln!(out, "{}", wrap(&format!("{head}{}", flow(&f.config)), indent));
        }
    }
    if let Some(u) = &e.upstream {
        out.push('\n');
        let mut b = Block::new(&mut out, 2, 10);
        for (i, c) in u.choice.iter().enumerate() {
            b.line(if i == 0 { "choice" } else { "" }, c);
        }
        let s = &u.sent_as;
        let mut sent = format!("{} {}", s.method, s.path);
        if let Some(h) = &s.host {
            let _ = write!(sent, ", Host {h}");
        }
        if let Some(rw) = &s.rewrite {
            let _ = write!(sent, " (rewrite: {rw})");
        }
        b.line("sent as", &sent);
        if let Some(m) = &u.mirror {
            b.line("mirror", m);
        }
        for p in &u.pools {
            pool(&mut out, p);
        }
    }
    let aggregate = e.route.as_ref().is_some_and(|r| r.action.aggregate.is_some());
    if aggregate {
        out.push('\n');
        let mut b = Block::new(&mut out, 2, 10);
        b.line(
            "timeout",
            &match e.timeout_ms {
                Some(t) => format!("{t} ms for the whole composition; each part's timeout_ms within it"),
                None => format!(
                    "no route timeout: the composition is bounded by {} ms",
                    crate::config::defaults::AGGREGATE_TIMEOUT_MS
                ),
            },
        );
        if let Some(max) = e.max_in_flight {
            b.line("limit", &format!("{max} requests in flight on this route; more get 503"));
        }
    } else if e.route.as_ref().is_some_and(|r| r.action.respond.is_none()) {
        out.push('\n');
        let mut b = Block::new(&mut out, 2, 10);
        match &e.retry {
            None => b.line("retry", "none"),
            Some(r) => b.line(
                "retry",
                &format!(
                    "up to {} more attempt{} on {}, within a {}% retry budget; {}",
                    r.attempts,
                    if r.attempts == 1 { "" } else { "s" },
                    r.on.join(", "),
                    r.budget_percent,
                    r.this_request
                ),
            ),
        }
        b.line(
            "timeout",
            &match e.timeout_ms {
                Some(t) => format!("{t} ms for the whole upstream exchange, retries included"),
                None => "no route timeout; the upstream's timeouts apply to each attempt".into(),
            },
        );
        if let Some(max) = e.max_in_flight {
            b.line("limit", &format!("{max} requests in flight on this route; more get 503"));
        }
        b.line("cache", &super::cache::describe(e.cache.as_ref()));
    }
    out
}

fn candidates(out: &mut String, list: &[Candidate]) {
    let name_w = list.iter().map(|c| c.route.len()).max().unwrap_or(0);
    for c in list {
        let why: Vec<String> =
            c.failed.iter().map(|f| format!("{}: wants {}, got {}", f.rule, f.wants, f.got)).collect();
        let head = format!("    {:<4}{:<name_w$}  ", format!("#{}", c.rank), c.route);
        let indent = head.chars().count();
        let _ = writeln!(out, "{}", wrap(&format!("{head}{}", why.join("; ")), indent));
    }
}

fn pool(out: &mut String, p: &PoolPlan) {
    let _ = writeln!(out, "\n  upstream {}", p.name);
    let mut b = Block::new(out, 4, 10);
    let n = p.targets.len();
    let mut balance = format!("{} over {n} target{}", p.balance, if n == 1 { "" } else { "s" });
    if let Some(k) = &p.hash_key {
        let _ = write!(balance, ", keyed by {}", k.rule);
        match &k.value {
            Some(v) => {
                let _ = write!(balance, " (this request: {v})");
            }
            None if k.rule == "client_ip" => balance.push_str(" (the client's address)"),
            None => balance.push_str(" (absent here: every such request shares one target)"),
        }
    }
    b.line("balance", &balance);
    let targets: Vec<String> = p
        .targets
        .iter()
        .map(|t| {
            let mut notes = Vec::new();
            if t.weight != 1 {
                notes.push(format!("weight {}", t.weight));
            }
            match t.healthy {
                Some(true) => notes.push("up".into()),
                Some(false) => notes.push("down".into()),
                None => {}
            }
            if t.ejected == Some(true) {
                notes.push("ejected".into());
            }
            if notes.is_empty() {
                t.address.clone()
            } else {
                format!("{} ({})", t.address, notes.join(", "))
            }
        })
        .collect();
    if !targets.is_empty() {
        b.line("targets", &targets.join(", "));
    }
    if let Some(d) = &p.discovery {
        b.line("discovery", d);
    }
    b.line("health", p.health_check.as_deref().unwrap_or("no active check: every target counts as up"));
    match (&p.outlier, &p.circuit_breaker) {
        (None, None) => b.line("passive", "no outlier ejection, no circuit breaker"),
        (outlier, breaker) => {
            b.line("outlier", outlier.as_deref().unwrap_or("no ejection"));
            b.line("breaker", breaker.as_deref().unwrap_or("none"));
        }
    }
    if let Some(max) = p.max_in_flight {
        b.line("limit", &format!("{max} requests in flight; more get 503"));
    }
    let t = &p.timeouts;
    let show = |name: &str, v: Option<u64>| match v {
        Some(ms) => format!("{name} {ms} ms"),
        None => format!("{name} default"),
    };
    let all = [t.connect_ms, t.read_ms, t.write_ms, t.idle_ms];
    if all.iter().all(Option::is_none) {
        b.line("timeouts", "none set: Pingora's defaults");
    } else {
        let list = [show("connect", all[0]), show("read", all[1]), show("write", all[2]), show("idle", all[3])];
        b.line("timeouts", &list.join(", "));
    }
    b.line("protocol", &p.protocol);
}

/// Labelled lines: `  label     value`, values wrapped under themselves.
struct Block<'a> {
    out: &'a mut String,
    indent: usize,
    label_w: usize,
}

impl<'a> Block<'a> {
    fn new(out: &'a mut String, indent: usize, label_w: usize) -> Self {
        Block { out, indent, label_w }
    }

    fn line(&mut self, label: &str, value: &str) {
        let head = format!("{:indent$}{label:<w$}", "", indent = self.indent, w = self.label_w);
        let text = format!("{head}{value}");
        let _ = writeln!(self.out, "{}", wrap(&text, self.indent + self.label_w));
    }
}

/// Wraps `line` at [`WIDTH`], breaking after `, ` or `; `, continuing at column `indent`.
fn wrap(line: &str, indent: usize) -> String {
    if line.chars().count() <= WIDTH {
        return line.to_string();
    }
    let mut out = String::new();
    let mut current = String::new();
    let mut rest = line;
    while !rest.is_empty() {
        let cut = rest.find(", ").into_iter().chain(rest.find("; ")).min().map(|i| i + 2).unwrap_or(rest.len());
        let piece = &rest[..cut];
        let limit = WIDTH;
        if !current.trim().is_empty() && current.chars().count() + piece.trim_end().chars().count() > limit {
            out.push_str(current.trim_end());
            out.push('\n');
            current = " ".repeat(indent);
        }
        current.push_str(piece);
        rest = &rest[cut..];
    }
    out.push_str(current.trim_end());
    out
}

/// A JSON value as compact flow YAML: `{level: 6, allow: [GET, POST]}`.
pub fn flow(v: &serde_json::Value) -> String {
    use serde_json::Value;
    match v {
        Value::Null => "{}".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => scalar(s),
        Value::Array(items) => format!("[{}]", items.iter().map(flow).collect::<Vec<_>>().join(", ")),
        Value::Object(map) => {
            format!(
                "{{{}}}",
                map.iter().map(|(k, v)| format!("{}: {}", scalar(k), flow(v))).collect::<Vec<_>>().join(", ")
            )
        }
    }
}

/// A string bare when YAML would read it back as the same string, quoted otherwise.
fn scalar(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars().all(|c| c.is_ascii_alphanumeric() || "-_./:@+".contains(c))
        && !s.contains(": ")
        && s.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '/' || c == '.')
        && !matches!(s, "true" | "false" | "null" | "yes" | "no" | "on" | "off");
    if plain {
        s.to_string()
    } else {
        serde_json::Value::String(s.to_string()).to_string()
    }
}
