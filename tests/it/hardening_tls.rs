//! Issue 12: a listener's `client_ca` bundle renewed in place is trusted after a reload, like its
//! certificates: the next handshake verifies client certificates against the new CA (and stops
//! trusting a CA that left the bundle), and a broken bundle refuses the reload naming the file.

use crate::pki::{curl, Pki};
use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renewed_client_ca_is_trusted_after_a_reload() {
    let pki = Pki::new();
    pki.issue("ca", "site", "localhost", "DNS:localhost,IP:127.0.0.1", false);
    pki.issue("ca", "old-client", "old-client", "URI:spiffe://example.org/old", true);
    pki.issue("rogue", "new-client", "new-client", "URI:spiffe://example.org/new", true);
    std::fs::copy(pki.path("ca.crt"), pki.path("clients.crt")).expect("copy");
    let p = Portico::start(
        Yaml::new(
            r#"
listeners:
  - name: mtls
    listen: "127.0.0.1:$mtls"
    tls: {certs: [{cert: $site, key: $site_key}], client_ca: $clients}
routes:
  - {name: hello, respond: {body: hello}}
"#,
        )
        .set("site", pki.path("site.crt").display())
        .set("site_key", pki.path("site.key").display())
        .set("clients", pki.path("clients.crt").display()),
    )
    .await;
    let url = format!("https://localhost:{}/", p.port("mtls"));
    let ca = pki.path("ca.crt");
    let with = |name: &str| {
        let (cert, key) = (pki.path(&format!("{name}.crt")), pki.path(&format!("{name}.key")));
        let args = ["--cacert", ca.to_str().expect("path"), "--cert", cert.to_str().expect("path")];
        let r = curl(&[&args[..], &["--key", key.to_str().expect("path")]].concat(), &url);
        r.ok && r.status == 200 && r.body == "hello"
    };
    assert!(with("old-client"), "a client of the configured CA");
    assert!(!with("new-client"), "a client of another CA");

    // The bundle is replaced at the same path by the other CA: after a reload it is the one.
    std::fs::copy(pki.path("rogue.crt"), pki.path("clients.crt")).expect("copy");
    let c = client();
    assert!(with("old-client"), "before the reload the running bundle holds");
    let r = c.post(p.admin_url("/reload")).send().await.expect("reload");
    assert_eq!(r.status(), 200);
    assert!(with("new-client"), "the renewed CA's client after the reload");
    assert!(!with("old-client"), "the removed CA's client after the reload");

    // A broken bundle: the reload is refused naming it, and the last good one keeps verifying.
    std::fs::write(pki.path("clients.crt"), "not a certificate").expect("write");
    let r = c.post(p.admin_url("/reload")).send().await.expect("reload");
    assert_eq!(r.status(), 400);
    let body: serde_json::Value = r.json().await.expect("json");
    assert!(body["errors"].to_string().contains("clients.crt"), "{body}");
    assert!(with("new-client"), "the last good bundle still verifies");
}
