//! A security team's sign-off: who is calling (API key, basic auth, JWT, client certificate) and
//! what they may reach, with every refusal a clear 401 or 403.

use crate::pki::{curl, Pki};
use crate::support::*;
use crate::tokens::{password_hash, sign, sign_hs, Keys};
use serde_json::json;
use std::time::Duration;

async fn get(url: &str, headers: &[(&str, &str)]) -> (u16, Option<String>, serde_json::Value) {
    let mut req = client().get(url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let r = req.send().await.expect("request");
    let status = r.status().as_u16();
    let challenge = r.headers().get("www-authenticate").map(|v| v.to_str().unwrap_or("").to_string());
    (status, challenge, r.json().await.unwrap_or(serde_json::Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwt_tokens_are_checked_and_claims_forwarded() {
    let keys = Keys::new();
    keys.rsa("rs").rsa("other").ec("es");
    let a = Origin::start("a").await;
    let p = Portico::start(
        Yaml::web(
            r#"
upstreams: {a: {targets: ["$a"]}}
routes:
  - name: hs
    match: {path: /hs}
    upstream: a
    filters:
      - jwt: {secret: "${PORTICO_TEST_JWT_SECRET:-s3cret-for-tests}", algorithms: [HS256], issuer: "https://issuer.example", audience: api,
              forward_claims: {sub: x-user-id, role: x-user-role}, from: {header: authorization, cookie: token, query: access_token}}
  - name: rs
    match: {path: /rs}
    upstream: a
    filters:
      - jwt: {public_key_file: $rs, algorithms: [RS256], leeway_s: 0}
  - name: es
    match: {path: /es}
    upstream: a
    filters:
      - jwt: {public_key_file: $es, algorithms: [ES256]}
"#,
        )
        .origin(&a)
        .set("rs", keys.path("rs.pub").display())
        .set("es", keys.path("es.pub").display()),
    )
    .await;
    let claims = json!({"sub": "alice", "role": "admin", "iss": "https://issuer.example", "aud": "api"});
    let good = sign_hs("HS256", "s3cret-for-tests", claims.clone(), Some(300));
    let url = p.url("web", "/hs/x");

    // The happy path: claims forwarded upstream, the caller named in the log.
    let (status, _, body) = get(&url, &[("authorization", &format!("Bearer {good}"))]).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["headers"]["x-user-id"], "alice");
    assert_eq!(body["headers"]["x-user-role"], "admin");
    // From a cookie, or a query parameter.
    assert_eq!(get(&url, &[("cookie", &format!("a=b; token={good}"))]).await.0, 200);
    assert_eq!(get(&format!("{url}?access_token={good}"), &[]).await.0, 200);
    // The parameter's name percent-encoded is the same parameter (and is redacted in the log).
    assert_eq!(get(&format!("{url}?access%5Ftoken={good}"), &[]).await.0, 200);

    // Each refusal says which.
    let cases = [
        ("missing token", None),
        ("malformed token", Some("not.a.jwt".to_string())),
        ("token expired", Some(sign_hs("HS256", "s3cret-for-tests", claims.clone(), Some(-3600)))),
        ("invalid signature", Some(sign_hs("HS256", "another-secret", claims.clone(), Some(300)))),
        (
            "wrong audience",
            Some(sign_hs(
                "HS256",
                "s3cret-for-tests",
                json!({"sub": "a", "iss": "https://issuer.example", "aud": "other"}),
                Some(300),
            )),
        ),
        (
            "wrong issuer",
            Some(sign_hs(
                "HS256",
                "s3cret-for-tests",
                json!({"sub": "a", "iss": "https://evil.example", "aud": "api"}),
                Some(300),
            )),
        ),
    ];
    for (want, token) in cases {
        let auth = token.as_ref().map(|t| format!("Bearer {t}"));
        let headers: Vec<(&str, &str)> = auth.iter().map(|a| ("authorization", a.as_str())).collect();
        let (status, challenge, body) = get(&url, &headers).await;
        assert_eq!(status, 401, "{want}: {body}");
        assert_eq!(body["error"], "unauthorized");
        assert_eq!(body["message"], want, "{body}");
        assert!(body["request_id"].as_str().is_some());
        assert!(challenge.is_some_and(|c| c.starts_with("Bearer")), "{want}: no WWW-Authenticate");
    }

    // RS256 and ES256 from PEM files; a token signed by another key is refused.
    let rs = sign("RS256", &keys.path("rs.key"), json!({"sub": "bob"}), Some(300), None);
    assert_eq!(get(&p.url("web", "/rs"), &[("authorization", &format!("Bearer {rs}"))]).await.0, 200);
    let forged = sign("RS256", &keys.path("other.key"), json!({"sub": "bob"}), Some(300), None);
    let (status, _, body) = get(&p.url("web", "/rs"), &[("authorization", &format!("Bearer {forged}"))]).await;
    assert_eq!((status, body["message"].as_str()), (401, Some("invalid signature")));
    let es = sign("ES256", &keys.path("es.key"), json!({"sub": "carol"}), Some(300), None);
    assert_eq!(get(&p.url("web", "/es"), &[("authorization", &format!("Bearer {es}"))]).await.0, 200);
    // An HS256 token against an RSA key is not accepted (algorithm confusion).
    let confused = sign_hs("HS256", "anything", json!({"sub": "x"}), Some(300));
    assert_eq!(get(&p.url("web", "/rs"), &[("authorization", &format!("Bearer {confused}"))]).await.0, 401);

    // Tokens never reach the log; the caller does.
    let mut log = String::new();
    eventually(Duration::from_secs(5), "access log lines", || {
        log = p.access_log();
        let n = log.lines().count();
        async move { n >= 14 }
    })
    .await;
    let leaked = log.lines().find(|l| l.contains(&good) || l.contains(&rs));
    assert!(leaked.is_none(), "a token was written to the access log: {leaked:?}");
    assert!(log.contains("access_token=[redacted]"), "{log}");
    assert!(log.contains("access%5Ftoken=[redacted]"), "{log}");
    assert!(log.contains("\"consumer\":\"alice\""), "{log}");
    assert!(!p.stderr().contains(&good));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_jwks_endpoint_rotating_its_key_is_followed() {
    let keys = Keys::new();
    keys.rsa("k1").rsa("k2");
    let idp = Origin::start("idp").await;
    idp.set_fixed("/jwks.json", &keys.jwks(&[("k1", "k1")]));
    let a = Origin::start("a").await;
    let p = Portico::start(
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
        .origin(&a)
        .origin(&idp),
    )
    .await;
    let url = p.url("web", "/x");
    let t1 = sign("RS256", &keys.path("k1.key"), json!({"sub": "u1", "aud": "api"}), Some(300), Some("k1"));
    assert_eq!(get(&url, &[("authorization", &format!("Bearer {t1}"))]).await.0, 200);

    // The identity provider rotates to k2: a token with the new kid makes Portico fetch again.
    idp.set_fixed("/jwks.json", &keys.jwks(&[("k2", "k2")]));
    let t2 = sign("RS256", &keys.path("k2.key"), json!({"sub": "u2", "aud": "api"}), Some(300), Some("k2"));
    eventually(Duration::from_secs(10), "the rotated key is accepted", || {
        let (url, auth) = (url.clone(), format!("Bearer {t2}"));
        async move { get(&url, &[("authorization", &auth)]).await.0 == 200 }
    })
    .await;
    // A kid the provider never published stays refused.
    let stray = sign("RS256", &keys.path("k1.key"), json!({"sub": "u3", "aud": "api"}), Some(300), Some("nope"));
    let (status, _, body) = get(&url, &[("authorization", &format!("Bearer {stray}"))]).await;
    assert_eq!(status, 401, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_keys_basic_auth_and_acls() {
    let a = Origin::start("a").await;
    let bcrypt = password_hash("bcrypt", "correct horse");
    let argon = password_hash("argon2", "battery staple");
    let p = Portico::start(
        Yaml::web(
            r#"
upstreams: {a: {targets: ["$a"]}}
consumers:
  - {name: mobile, api_keys: ["${PORTICO_TEST_MOBILE_KEY:-mobile-key-123}"], groups: [partners]}
  - {name: intern, api_keys: ["intern-key-456"]}
  - {name: ops, basic: {username: ops, password_hash: "$bcrypt"}, groups: [staff]}
  - {name: dev, basic: {username: dev, password_hash: "$argon"}}
routes:
  - name: partners
    match: {path: /partners}
    upstream: a
    filters:
      - api_key: {header: x-api-key, query: api_key, hide_credentials: true}
      - acl: {allow_groups: [partners]}
  - name: ops
    match: {path: /ops}
    upstream: a
    filters:
      - basic_auth: {realm: operations}
"#,
        )
        .origin(&a)
        .set("bcrypt", bcrypt)
        .set("argon", argon),
    )
    .await;
    let url = p.url("web", "/partners/x");
    // API key from a header; hidden from the upstream.
    let (status, _, body) = get(&url, &[("x-api-key", "mobile-key-123")]).await;
    assert_eq!(status, 200, "{body}");
    assert!(body["headers"]["x-api-key"].is_null(), "hide_credentials left the key in");
    // From the query, also hidden.
    let (status, _, body) = get(&format!("{url}?api_key=mobile-key-123&keep=1"), &[]).await;
    assert_eq!(status, 200);
    assert_eq!(body["uri"], "/partners/x?keep=1");
    // Missing and wrong keys: 401 with a challenge.
    let (status, challenge, body) = get(&url, &[]).await;
    assert_eq!((status, body["message"].as_str()), (401, Some("missing API key")));
    assert!(challenge.is_some());
    let (status, challenge, body) = get(&url, &[("x-api-key", "mobile-key-124")]).await;
    assert_eq!((status, body["message"].as_str()), (401, Some("invalid API key")));
    assert!(challenge.is_some());
    // A known consumer outside the allowed group: 403.
    let (status, _, body) = get(&url, &[("x-api-key", "intern-key-456")]).await;
    assert_eq!((status, body["error"].as_str()), (403, Some("forbidden")));

    // Basic auth with bcrypt and argon2 hashes.
    let ops = p.url("web", "/ops/x");
    let c = client();
    let ok = c.get(&ops).basic_auth("ops", Some("correct horse")).send().await.expect("req");
    assert_eq!(ok.status(), 200);
    let ok = c.get(&ops).basic_auth("dev", Some("battery staple")).send().await.expect("req");
    assert_eq!(ok.status(), 200);
    for (user, pass) in [("ops", "wrong"), ("nobody", "correct horse"), ("dev", "correct horse")] {
        let r = c.get(&ops).basic_auth(user, Some(pass)).send().await.expect("req");
        assert_eq!(r.status(), 401, "{user}");
        assert_eq!(
            r.headers()["www-authenticate"].to_str().unwrap_or(""),
            "Basic realm=\"operations\", charset=\"UTF-8\""
        );
    }
    let r = c.get(&ops).send().await.expect("req");
    assert_eq!(r.status(), 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwt_claims_and_mtls_identities_drive_acls_through_an_mtls_chain() {
    let pki = Pki::new();
    pki.issue("ca", "hop", "hop.internal", "DNS:hop.internal,DNS:localhost", false);
    pki.issue("ca", "gateway", "gateway", "URI:spiffe://example.org/ns/edge/sa/gateway", true);
    pki.issue("ca", "frontend", "frontend", "URI:spiffe://example.org/ns/default/sa/frontend", true);
    let origin = Origin::start("origin").await;
    // The hop lets only edge identities in.
    let hop = Portico::start(
        Yaml::new(
            r#"
listeners:
  - name: mesh
    listen: "127.0.0.1:$mesh"
    role: internal
    tls: {certs: [{cert: $hop, key: $hop_key}], client_ca: $ca, require_client_cert: true}
upstreams: {origin: {targets: ["$origin"]}}
routes:
  - name: all
    upstream: origin
    filters:
      - acl: {allow_identities: ["spiffe://example.org/ns/edge/*"]}
"#,
        )
        .set("hop", pki.path("hop.crt").display())
        .set("hop_key", pki.path("hop.key").display())
        .set("ca", pki.path("ca.crt").display())
        .origin(&origin),
    )
    .await;
    // The edge checks a JWT claim, then calls the hop over mTLS as the gateway.
    let edge = Portico::start(
        Yaml::web(
            r#"
upstreams:
  hop:
    targets: ["127.0.0.1:$port"]
    tls: {sni: hop.internal, ca: $ca, cert: $gw, key: $gw_key}
routes:
  - name: admin
    upstream: hop
    filters:
      - jwt: {secret: chain-secret, algorithms: [HS256]}
      - acl: {claim: {name: role, allow: [admin]}}
"#,
        )
        .set("port", hop.port("mesh"))
        .set("ca", pki.path("ca.crt").display())
        .set("gw", pki.path("gateway.crt").display())
        .set("gw_key", pki.path("gateway.key").display()),
    )
    .await;
    let admin = sign_hs("HS256", "chain-secret", json!({"sub": "root", "role": "admin"}), Some(300));
    let user = sign_hs("HS256", "chain-secret", json!({"sub": "joe", "role": "user"}), Some(300));
    let (status, _, body) = get(&edge.url("web", "/x"), &[("authorization", &format!("Bearer {admin}"))]).await;
    assert_eq!((status, body["instance"].as_str()), (200, Some("origin")), "{body}");
    let (status, _, body) = get(&edge.url("web", "/x"), &[("authorization", &format!("Bearer {user}"))]).await;
    assert_eq!((status, body["error"].as_str()), (403, Some("forbidden")));

    // A valid client certificate with the wrong identity reaches the hop but is refused there.
    let ca = pki.path("ca.crt");
    let (cert, key) = (pki.path("frontend.crt"), pki.path("frontend.key"));
    let r = curl(
        &["--cacert", ca.to_str().expect("p"), "--cert", cert.to_str().expect("p"), "--key", key.to_str().expect("p")],
        &format!("https://localhost:{}/x", hop.port("mesh")),
    );
    assert_eq!(r.status, 403, "{}", r.body);
}
