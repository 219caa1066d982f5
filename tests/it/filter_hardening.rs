//! The authentication and limiting filters under strain: a password-guessing flood, an identity
//! provider that is down during a reload, a Redis reached only over TLS.

use crate::pki::Pki;
use crate::support::*;
use crate::tokens::{password_hash, sign, Keys};
use serde_json::json;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

// === basic_auth: a password-guessing flood ===

/// A bcrypt hash of `password` at `cost`, by Python's `bcrypt`.
fn bcrypt_at_cost(password: &str, cost: u32) -> String {
    let script = "import sys, bcrypt; print(bcrypt.hashpw(sys.argv[1].encode(), bcrypt.gensalt(rounds=int(sys.argv[2]))).decode())";
    let out =
        Command::new("/usr/bin/python3").args(["-c", script, password, &cost.to_string()]).output().expect("python");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_guessing_flood_is_throttled_and_sheds_load_while_known_clients_pass() {
    let a = Origin::start("a").await;
    let p = Portico::start(
        Yaml::web(
            r#"
upstreams: {a: {targets: ["$a"]}}
consumers:
  - {name: ops, basic: {username: ops, password_hash: "$ops"}}
  - {name: batch, basic: {username: batch, password_hash: "$batch"}}
routes:
  - name: ops
    match: {path: /ops}
    upstream: a
    filters:
      - basic_auth: {realm: ops, failures_per_minute: 5}
  - name: batch
    match: {path: /batch}
    upstream: a
    filters:
      - basic_auth: {realm: batch, max_concurrent_hashes: 1, max_queued_hashes: 1, failures_per_minute: 0}
"#,
        )
        .origin(&a)
        .set("ops", password_hash("bcrypt", "correct horse"))
        .set("batch", bcrypt_at_cost("battery staple", 11)),
    )
    .await;
    let c = client();
    let ops = p.url("web", "/ops/x");

    // The operator logs in; then someone at the same address guesses passwords.
    assert_eq!(c.get(&ops).basic_auth("ops", Some("correct horse")).send().await.expect("req").status(), 200);
    for i in 0..5 {
        let r = c.get(&ops).basic_auth("ops", Some(format!("guess {i}"))).send().await.expect("req");
        assert_eq!(r.status(), 401, "guess {i}");
    }
    // Past five failures a minute: 429 with Retry-After, and no hash spent on it.
    let r = c.get(&ops).basic_auth("ops", Some("guess 6")).send().await.expect("req");
    assert_eq!(r.status(), 429);
    let retry: u64 = r.headers()["retry-after"].to_str().unwrap_or("").parse().expect("Retry-After in seconds");
    assert!((1..=12).contains(&retry), "{retry}");
    let body: serde_json::Value = r.json().await.expect("json");
    assert_eq!(
        (body["error"].as_str(), body["message"].as_str()),
        (Some("rate_limited"), Some("too many failed logins"))
    );
    // The operator, already verified, is not locked out.
    assert_eq!(c.get(&ops).basic_auth("ops", Some("correct horse")).send().await.expect("req").status(), 200);

    // A route whose pool checks one hash at a time with one waiting: a burst of wrong passwords
    // is answered 503 beyond that, at once, while a known client keeps passing.
    let batch = p.url("web", "/batch/x");
    assert_eq!(c.get(&batch).basic_auth("batch", Some("battery staple")).send().await.expect("req").status(), 200);
    let flood: Vec<_> = (0..8)
        .map(|i| {
            let (c, url) = (c.clone(), batch.clone());
            tokio::spawn(async move {
                let r = c.get(&url).basic_auth("batch", Some(format!("wrong {i}"))).send().await.expect("req");
                let status = r.status().as_u16();
                let retry = r.headers().get("retry-after").map(|v| v.to_str().unwrap_or("").to_string());
                let body: serde_json::Value = r.json().await.unwrap_or_default();
                (status, retry, body)
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(c.get(&batch).basic_auth("batch", Some("battery staple")).send().await.expect("req").status(), 200);
    let mut statuses = Vec::new();
    for task in flood {
        let (status, retry, body) = task.await.expect("task");
        if status == 503 {
            assert_eq!(body["error"], "overloaded", "{body}");
            assert_eq!(retry.as_deref(), Some("1"));
        }
        statuses.push(status);
    }
    statuses.sort();
    assert!(statuses.iter().all(|s| *s == 401 || *s == 503), "{statuses:?}");
    assert!(statuses.contains(&503), "nothing was shed: {statuses:?}");
    assert!(statuses.iter().filter(|s| **s == 401).count() >= 1, "nothing was checked: {statuses:?}");
}

// === jwt: keys through a reload while the identity provider is down ===

fn jwks_config(idp: &Origin, a: &Origin) -> Yaml {
    Yaml::web(
        r#"
upstreams: {a: {targets: ["$a"]}}
routes:
  - name: api
    upstream: a
    filters:
      - jwt: {jwks_url: "http://$idp/jwks.json", algorithms: [RS256], audience: api}
"#,
    )
    .origin(idp)
    .origin(a)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_while_the_identity_provider_is_down_keeps_its_keys() {
    let keys = Keys::new();
    keys.rsa("k1");
    let mut idp = Origin::start("idp").await;
    idp.set_fixed("/jwks.json", &keys.jwks(&[("k1", "k1")]));
    let a = Origin::start("a").await;
    let mut p = Portico::start(jwks_config(&idp, &a)).await;
    let t1 = sign("RS256", &keys.path("k1.key"), json!({"sub": "u1", "aud": "api"}), Some(300), Some("k1"));
    let bearer = |t: &str| format!("Bearer {t}");
    let c = client();
    let r = c.get(p.url("web", "/x")).header("authorization", bearer(&t1)).send().await.expect("request");
    assert_eq!(r.status(), 200, "{}", p.stderr());

    // The provider goes down, and the operator reloads (a route added, the jwt filter rebuilt).
    idp.stop().await;
    p.rewrite_config(jwks_config(&idp, &a).add("  - {name: extra, match: {path: /extra}, upstream: a}\n"));
    let r = c.post(p.admin_url("/reload")).send().await.expect("reload");
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap_or_default());
    assert_eq!(c.get(p.url("web", "/extra")).send().await.expect("request").status(), 200, "the new config runs");

    // Tokens signed with the provider's key still pass: the one seen before, and a new one that
    // the rebuilt filter has never verified.
    let t2 = sign("RS256", &keys.path("k1.key"), json!({"sub": "u2", "aud": "api"}), Some(300), Some("k1"));
    for token in [&t1, &t2] {
        let r = c.get(p.url("web", "/x")).header("authorization", bearer(token)).send().await.expect("request");
        let status = r.status().as_u16();
        assert_eq!(status, 200, "{}", r.text().await.unwrap_or_default());
    }
    // A forged token is still refused.
    keys.rsa("other");
    let forged = sign("RS256", &keys.path("other.key"), json!({"sub": "x", "aud": "api"}), Some(300), Some("k1"));
    let r = c.get(p.url("web", "/x")).header("authorization", bearer(&forged)).send().await.expect("request");
    assert_eq!(r.status(), 401);
}

// === rate_limit over rediss:// ===

/// A `redis-server` that speaks only TLS, with a certificate from `pki`, stopped when dropped.
struct TlsRedis {
    child: Child,
    port: u16,
}

impl TlsRedis {
    async fn start(pki: &Pki) -> TlsRedis {
        pki.issue("ca", "redis", "redis.test", "DNS:redis.test,IP:127.0.0.1", false);
        let port = free_port();
        let (cert, key, ca) = (pki.path("redis.crt"), pki.path("redis.key"), pki.path("ca.crt"));
        let child = Command::new("redis-server")
            .args(["--port", "0", "--tls-port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--tls-cert-file", &cert.display().to_string(), "--tls-key-file", &key.display().to_string()])
            .args(["--tls-ca-cert-file", &ca.display().to_string(), "--tls-auth-clients", "no"])
            .args(["--save", "", "--appendonly", "no"])
            .current_dir(pki.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server starts (bash .ci/install-test-deps installs it)");
        eventually(Duration::from_secs(10), "redis listens for TLS", || async move {
            tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok()
        })
        .await;
        TlsRedis { child, port }
    }
}

impl Drop for TlsRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn tls_redis_config(origin: &Origin, url: &str) -> Yaml {
    Yaml::web(
        r#"
upstreams: {a: {targets: ["$a"]}}
rate_limit_store: {redis: "$url"}
routes:
  - name: shared
    upstream: a
    filters:
      - rate_limit: {key: route, requests_per_minute: 5, store: redis, failure_policy: closed, redis_timeout_ms: 2000}
"#,
    )
    .origin(origin)
    .set("url", url)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_shared_through_a_redis_reached_over_tls() {
    let pki = Pki::new();
    let redis = TlsRedis::start(&pki).await;
    let a = Origin::start("a").await;
    // `#insecure`: this test CA is not in the system's trust store.
    let url = format!("rediss://127.0.0.1:{}/#insecure", redis.port);
    let p1 = Portico::start(tls_redis_config(&a, &url)).await;
    let p2 = Portico::start(tls_redis_config(&a, &url)).await;
    let c = client();

    // Two instances, one budget of 5, kept in Redis over TLS.
    let mut statuses = Vec::new();
    for i in 0..10 {
        let p = if i % 2 == 0 { &p1 } else { &p2 };
        statuses.push(c.get(p.url("web", "/x")).send().await.expect("request").status().as_u16());
    }
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 5, "{statuses:?}\n{}", p1.stderr());
    assert!(statuses.iter().all(|s| *s == 200 || *s == 429), "{statuses:?}");

    // The server's certificate is checked: one the system does not trust is refused, and with
    // `failure_policy: closed` the limiter is unavailable.
    let strict = Portico::start(tls_redis_config(&a, &format!("rediss://127.0.0.1:{}", redis.port))).await;
    let r = c.get(strict.url("web", "/x")).send().await.expect("request");
    assert_eq!(r.status(), 503);
    let body: serde_json::Value = r.json().await.expect("json");
    assert_eq!(body["error"], "rate_limiter_unavailable");
}
