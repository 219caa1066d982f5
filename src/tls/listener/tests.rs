use super::*;
use crate::config::CertPair;
use std::path::Path;

/// Writes a self-signed certificate for `cn` and its key as PEM files `name.crt`/`name.key`,
/// with the `openssl` command line (as the integration tests make theirs).
fn self_signed(dir: &Path, name: &str, cn: &str) {
    let out = std::process::Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2"])
        .args(["-keyout", &format!("{name}.key"), "-out", &format!("{name}.crt"), "-subj", &format!("/CN={cn}")])
        .current_dir(dir)
        .output()
        .expect("openssl runs");
    assert!(out.status.success(), "openssl: {}", String::from_utf8_lossy(&out.stderr));
}

fn copy(dir: &Path, from: &str, to: &str) {
    for ext in ["crt", "key"] {
        std::fs::copy(dir.join(format!("{from}.{ext}")), dir.join(format!("{to}.{ext}"))).expect("copy");
    }
}

#[test]
fn a_reload_serves_renewed_files_and_refuses_broken_ones_keeping_the_old() {
    let dir = tempfile::tempdir().expect("temp dir");
    let d = dir.path();
    self_signed(d, "a", "first.test");
    self_signed(d, "b", "second.test");
    copy(d, "a", "site");
    let tls = ListenerTls {
        certs: vec![CertPair { cert: d.join("site.crt"), key: d.join("site.key"), sni: Vec::new() }],
        client_ca: None,
        require_client_cert: false,
    };
    let name: Arc<str> = "https".into();
    let registry = CertRegistry::default();
    registry.listener_settings(&name, &tls, false).expect("settings");
    assert_eq!(registry.serving("https", None).as_deref(), Some("first.test"));

    // Renewed at the same paths: the next handshake gets the new certificate.
    copy(d, "b", "site");
    assert_eq!(registry.reload([(&name, &tls)]), Ok(1));
    assert_eq!(registry.serving("https", Some("whatever")).as_deref(), Some("second.test"));

    // A key that is not the certificate's, then a file that is not PEM: refused, naming it.
    std::fs::copy(d.join("a.key"), d.join("site.key")).expect("copy");
    let errors = registry.reload([(&name, &tls)]).expect_err("a mismatched key");
    assert_eq!(&*errors[0].0, "https");
    assert!(errors[0].1.contains("site.key does not belong to certificate"), "{errors:?}");
    std::fs::write(d.join("site.crt"), "not a certificate").expect("write");
    let errors = registry.reload([(&name, &tls)]).expect_err("a broken file");
    assert!(errors[0].1.contains("site.crt holds no certificate"), "{errors:?}");
    assert_eq!(registry.serving("https", None).as_deref(), Some("second.test"), "the last good set stays");

    // A listener that was never set up is not touched.
    let other: Arc<str> = "other".into();
    assert_eq!(registry.reload([(&other, &tls)]), Ok(0));
}
