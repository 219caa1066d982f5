//! A security team's checks: TLS termination with SNI and HTTP/2, HTTPS redirects, client
//! certificates required and verified, and a Portico edge calling a Portico hop over mTLS.

use crate::pki::{curl, Pki};
use crate::support::*;

const SPIFFE: &str = "spiffe://example.org/ns/default/sa/frontend";

fn pki() -> Pki {
    let pki = Pki::new();
    pki.issue("ca", "site", "localhost", "DNS:localhost,DNS:api.example.com,IP:127.0.0.1", false);
    pki.issue("ca", "other", "other.example.com", "DNS:other.example.com", false);
    pki.issue("ca", "hop", "hop.internal", "DNS:hop.internal", false);
    pki.issue("ca", "frontend", "frontend", &format!("URI:{SPIFFE}"), true);
    pki.issue("ca", "gateway", "gateway", "URI:spiffe://example.org/ns/edge/sa/gateway", true);
    pki.issue("rogue", "intruder", "intruder", "URI:spiffe://evil.example/sa/x", true);
    pki
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_terminates_with_sni_http2_and_redirects_plain_http() {
    let pki = pki();
    let a = Origin::start("a").await;
    let p = Portico::start(
        Yaml::new(
            r#"
listeners:
  - name: https
    listen: "127.0.0.1:$https"
    http2: true
    tls:
      certs:
        - {cert: $site, key: $site_key}
        - {cert: $other, key: $other_key}
  - name: plain
    listen: "127.0.0.1:$plain"
    redirect_https: {port: $https}
upstreams:
  a: {targets: ["$a"]}
routes:
  - {name: all, upstream: a}
"#,
        )
        .set("site", pki.path("site.crt").display())
        .set("site_key", pki.path("site.key").display())
        .set("other", pki.path("other.crt").display())
        .set("other_key", pki.path("other.key").display())
        .origin(&a),
    )
    .await;
    let port = p.port("https");
    let ca = pki.path("ca.crt");
    let ca = ca.to_str().expect("path");

    // The default certificate, HTTP/2 by ALPN, and X-Forwarded-Proto https.
    let r = curl(&["--cacert", ca, "--http2"], &format!("https://localhost:{port}/x"));
    assert!(r.ok && r.status == 200, "{}", r.body);
    assert_eq!(r.http_version, "2");
    let body: serde_json::Value = serde_json::from_str(&r.body).expect("json");
    assert_eq!(body["headers"]["x-forwarded-proto"], "https");

    // SNI picks the certificate for the name asked for (curl checks the name against it).
    let resolve = format!("other.example.com:{port}:127.0.0.1");
    let r = curl(&["--cacert", ca, "--resolve", &resolve], &format!("https://other.example.com:{port}/x"));
    assert!(r.ok && r.status == 200, "other.example.com did not get its certificate: {}", r.body);
    let resolve = format!("api.example.com:{port}:127.0.0.1");
    let r = curl(&["--cacert", ca, "--resolve", &resolve, "--http1.1"], &format!("https://api.example.com:{port}/x"));
    assert!(r.ok && r.status == 200);
    assert_eq!(r.http_version, "1.1");

    // TLS 1.1 and older are refused.
    let r = curl(&["--cacert", ca, "--tlsv1", "--tls-max", "1.1"], &format!("https://localhost:{port}/x"));
    assert!(!r.ok, "TLS 1.1 was accepted");

    // Plain HTTP gets a 308 to HTTPS, path and query kept.
    let r = curl(&[], &format!("http://127.0.0.1:{}/a/b?c=1", p.port("plain")));
    assert_eq!(r.status, 308);
    assert!(
        r.headers.to_ascii_lowercase().contains(&format!("location: https://127.0.0.1:{port}/a/b?c=1")),
        "{}",
        r.headers
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_certificates_are_required_verified_and_forwarded() {
    let pki = pki();
    let a = Origin::start("a").await;
    let p = Portico::start(
        Yaml::new(
            r#"
listeners:
  - name: mtls
    listen: "127.0.0.1:$mtls"
    role: internal
    forward_client_cert: x-forwarded-client-cert
    tls:
      certs: [{cert: $site, key: $site_key}]
      client_ca: $ca
      require_client_cert: true
upstreams:
  a: {targets: ["$a"]}
routes:
  - {name: all, upstream: a}
"#,
        )
        .set("site", pki.path("site.crt").display())
        .set("site_key", pki.path("site.key").display())
        .set("ca", pki.path("ca.crt").display())
        .origin(&a),
    )
    .await;
    let url = format!("https://localhost:{}/x", p.port("mtls"));
    let ca = pki.path("ca.crt");
    let ca = ca.to_str().expect("path");
    let (cert, key) = (pki.path("frontend.crt"), pki.path("frontend.key"));
    let (rogue_cert, rogue_key) = (pki.path("intruder.crt"), pki.path("intruder.key"));

    // No certificate: the handshake fails.
    assert!(!curl(&["--cacert", ca], &url).ok, "a client without a certificate got through");
    // A certificate from a CA we do not trust: the handshake fails.
    let r = curl(
        &["--cacert", ca, "--cert", rogue_cert.to_str().expect("p"), "--key", rogue_key.to_str().expect("p")],
        &url,
    );
    assert!(!r.ok, "an untrusted client certificate got through");

    // A good certificate: its identity reaches the upstream, and a forged header does not.
    let r = curl(
        &[
            "--cacert",
            ca,
            "--cert",
            cert.to_str().expect("p"),
            "--key",
            key.to_str().expect("p"),
            "-H",
            "x-forwarded-client-cert: URI=spiffe://forged",
        ],
        &url,
    );
    assert!(r.ok && r.status == 200, "{}", r.body);
    let body: serde_json::Value = serde_json::from_str(&r.body).expect("json");
    let xfcc = body["headers"]["x-forwarded-client-cert"].as_str().expect("xfcc header");
    assert!(xfcc.contains(&format!("URI={SPIFFE}")) && xfcc.contains("CN=frontend"), "{xfcc}");
    assert!(!xfcc.contains("forged"));

    // The identity is in the access log.
    let mut log = String::new();
    eventually(std::time::Duration::from_secs(5), "access log line", || {
        log = p.access_log();
        let has = log.contains(SPIFFE);
        async move { has }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edge_calls_an_internal_hop_over_mtls() {
    let pki = pki();
    let origin = Origin::start("origin").await;
    // The internal hop: TLS with required client certificates, forwarding the caller's identity.
    let hop = Portico::start(
        Yaml::new(
            r#"
listeners:
  - name: mesh
    listen: "127.0.0.1:$mesh"
    role: internal
    forward_client_cert: x-forwarded-client-cert
    tls:
      certs: [{cert: $hop, key: $hop_key}]
      client_ca: $ca
      require_client_cert: true
upstreams:
  origin: {targets: ["$origin"]}
routes:
  - {name: all, upstream: origin}
"#,
        )
        .set("hop", pki.path("hop.crt").display())
        .set("hop_key", pki.path("hop.key").display())
        .set("ca", pki.path("ca.crt").display())
        .origin(&origin),
    )
    .await;
    let edge_config = |with_client_cert: bool| {
        let client = if with_client_cert {
            format!(", cert: {}, key: {}", pki.path("gateway.crt").display(), pki.path("gateway.key").display())
        } else {
            String::new()
        };
        Yaml::web(
            r#"
upstreams:
  hop:
    targets: ["127.0.0.1:$port"]
    tls: {sni: hop.internal, ca: $ca$client}
routes:
  - {name: all, upstream: hop}
"#,
        )
        .set("port", hop.port("mesh"))
        .set("ca", pki.path("ca.crt").display())
        .set("client", client)
    };

    // Without a client certificate the hop refuses the connection.
    let edge = Portico::start(edge_config(false)).await;
    let (status, body) = get_json(&edge.url("web", "/x")).await;
    assert_eq!(status, 502, "{body}");
    drop(edge);

    // With one, the request goes through and the origin learns who called.
    let edge = Portico::start(edge_config(true)).await;
    let (status, body) = get_json(&edge.url("web", "/x")).await;
    assert_eq!(status, 200, "{body}");
    let xfcc = body["headers"]["x-forwarded-client-cert"].as_str().expect("xfcc");
    assert!(xfcc.contains("URI=spiffe://example.org/ns/edge/sa/gateway"), "{xfcc}");
}

#[test]
fn a_bad_certificate_file_is_a_config_error_naming_it() {
    let pki = pki();
    let bogus = pki.path("bogus.crt");
    std::fs::write(&bogus, "not a certificate").expect("write");
    let dir = tempfile::tempdir().expect("dir");
    let config = dir.path().join("p.yaml");
    let yaml = Yaml::new(
        r#"
listeners:
  - name: s
    listen: "127.0.0.1:0"
    tls: {certs: [{cert: $bogus, key: $site_key}, {cert: $site, key: /nonexistent/k.pem}]}
"#,
    )
    .set("bogus", bogus.display())
    .set("site_key", pki.path("site.key").display())
    .set("site", pki.path("site.crt").display());
    std::fs::write(&config, yaml.render(&mut Default::default(), dir.path())).expect("write");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_portico"))
        .arg("-t")
        .arg("-c")
        .arg(&config)
        .output()
        .expect("run");
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(text.contains("listeners[0].tls.certs[0]") && text.contains("bogus.crt"), "{text}");
    assert!(text.contains("listeners[0].tls.certs[1].key") && text.contains("/nonexistent/k.pem"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_optional_client_certificate_leaves_the_decision_to_the_acl() {
    let pki = pki();
    let a = Origin::start("a").await;
    let p = Portico::start(
        Yaml::new(
            r#"
listeners:
  - name: mtls
    listen: "127.0.0.1:$mtls"
    tls:
      certs: [{cert: $site, key: $site_key}]
      client_ca: $ca
      require_client_cert: false
upstreams:
  a: {targets: ["$a"]}
routes:
  - name: public
    match: {path: /public}
    upstream: a
  - name: private
    match: {path: /private}
    upstream: a
    filters:
      - acl: {allow_identities: ["$SPIFFE"]}
"#,
        )
        .set("site", pki.path("site.crt").display())
        .set("site_key", pki.path("site.key").display())
        .set("ca", pki.path("ca.crt").display())
        .origin(&a)
        .set("SPIFFE", SPIFFE),
    )
    .await;
    let base = format!("https://localhost:{}", p.port("mtls"));
    let ca = pki.path("ca.crt");
    let ca = ca.to_str().expect("path");
    let (cert, key) = (pki.path("frontend.crt"), pki.path("frontend.key"));
    let with_cert = ["--cacert", ca, "--cert", cert.to_str().expect("p"), "--key", key.to_str().expect("p")];

    // Without a certificate the handshake succeeds: public routes serve, the ACL answers 403.
    assert_eq!(curl(&["--cacert", ca], &format!("{base}/public")).status, 200);
    let r = curl(&["--cacert", ca], &format!("{base}/private"));
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(r.body.contains("\"error\":\"forbidden\""), "{}", r.body);
    // With one, the identity passes the ACL.
    assert_eq!(curl(&with_cert, &format!("{base}/private")).status, 200);
    // An untrusted certificate still fails the handshake.
    let (rogue, rogue_key) = (pki.path("intruder.crt"), pki.path("intruder.key"));
    let r = curl(
        &["--cacert", ca, "--cert", rogue.to_str().expect("p"), "--key", rogue_key.to_str().expect("p")],
        &format!("{base}/public"),
    );
    assert!(!r.ok, "an untrusted client certificate was accepted");
}

/// The subject of the certificate a new handshake with `localhost` on `port` gets.
fn served_subject(port: u16) -> String {
    let out = std::process::Command::new("openssl")
        .args(["s_client", "-connect", &format!("127.0.0.1:{port}"), "-servername", "localhost"])
        .stdin(std::process::Stdio::null())
        .output()
        .expect("openssl s_client runs");
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines().find(|l| l.starts_with("subject=")).unwrap_or("no certificate").to_string()
}

/// Copies `name.crt`/`name.key` over the files the listener serves.
fn install(pki: &Pki, name: &str) {
    for ext in ["crt", "key"] {
        std::fs::copy(pki.path(&format!("{name}.{ext}")), pki.path(&format!("site.{ext}"))).expect("copy");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renewed_certificate_files_are_served_after_a_reload_and_broken_ones_refused() {
    use std::io::{BufRead, Read, Write};
    let pki = Pki::new();
    pki.issue("ca", "first", "first.test", "DNS:localhost,IP:127.0.0.1", false);
    pki.issue("ca", "second", "second.test", "DNS:localhost,IP:127.0.0.1", false);
    install(&pki, "first");
    let p = Portico::start(
        Yaml::new(
            r#"
listeners:
  - {name: https, listen: "127.0.0.1:$https", tls: {certs: [{cert: $cert, key: $key}]}}
routes:
  - {name: hello, respond: {body: hello}}
"#,
        )
        .set("cert", pki.path("site.crt").display())
        .set("key", pki.path("site.key").display()),
    )
    .await;
    let port = p.port("https");
    assert_eq!(served_subject(port), "subject=CN = first.test");

    // A connection made before the renewal, kept open across it.
    let mut open = std::process::Command::new("openssl")
        .args(["s_client", "-connect", &format!("127.0.0.1:{port}"), "-servername", "localhost", "-ign_eof"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("openssl s_client runs");
    let mut out = std::io::BufReader::new(open.stdout.take().expect("stdout"));
    let mut line = String::new();
    while !line.starts_with("subject=") {
        line.clear();
        assert!(out.read_line(&mut line).expect("s_client output") > 0, "the open connection got no certificate");
    }
    assert_eq!(line.trim_end(), "subject=CN = first.test");

    // The files are renewed at the same paths: a reload serves them to new handshakes.
    install(&pki, "second");
    let c = client();
    let r = c.post(p.admin_url("/reload")).send().await.expect("reload");
    assert_eq!(r.status(), 200);
    assert_eq!(served_subject(port), "subject=CN = second.test");
    let ca = pki.path("ca.crt");
    let r = curl(&["--cacert", ca.to_str().expect("path")], &format!("https://localhost:{port}/"));
    assert!(r.ok && r.status == 200 && r.body == "hello", "{}", r.body);

    // The connection made before still works, with the certificate it started with.
    let mut stdin = open.stdin.take().expect("stdin");
    stdin.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").expect("request");
    drop(stdin);
    let mut rest = String::new();
    out.read_to_string(&mut rest).expect("response");
    let _ = open.wait();
    assert!(rest.contains("HTTP/1.1 200") && rest.contains("hello"), "{rest}");

    // A key that is not the certificate's, or a file that is not a certificate: the reload is
    // refused naming the file, and the last good certificate keeps serving.
    std::fs::copy(pki.path("first.key"), pki.path("site.key")).expect("copy");
    let r = c.post(p.admin_url("/reload")).send().await.expect("reload");
    assert_eq!(r.status(), 400);
    let body: serde_json::Value = r.json().await.expect("json");
    let text = body["errors"].to_string();
    assert!(text.contains("site.key does not belong to certificate") && text.contains("site.crt"), "{body}");
    install(&pki, "second");
    std::fs::write(pki.path("site.crt"), "-----BEGIN CERTIFICATE-----\nbroken\n-----END CERTIFICATE-----\n")
        .expect("write");
    let r = c.post(p.admin_url("/reload")).send().await.expect("reload");
    assert_eq!(r.status(), 400);
    let body: serde_json::Value = r.json().await.expect("json");
    assert!(body["errors"].to_string().contains("site.crt"), "{body}");
    assert_eq!(served_subject(port), "subject=CN = second.test");
}
