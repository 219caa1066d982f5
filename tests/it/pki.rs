//! Certificates made at test time with the `openssl` command line, and `curl` as the TLS client.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// A test CA with server and client certificates in a temp dir.
pub struct Pki {
    pub dir: tempfile::TempDir,
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl").args(args).current_dir(dir).output().expect("openssl runs");
    assert!(out.status.success(), "openssl {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
}

impl Pki {
    /// A CA called `ca` (and a second, untrusted one called `rogue`).
    pub fn new() -> Pki {
        let pki = Pki { dir: tempfile::tempdir().expect("temp dir") };
        for ca in ["ca", "rogue"] {
            openssl(
                pki.dir.path(),
                &[
                    "req",
                    "-x509",
                    "-newkey",
                    "ec",
                    "-pkeyopt",
                    "ec_paramgen_curve:prime256v1",
                    "-nodes",
                    "-keyout",
                    &format!("{ca}.key"),
                    "-out",
                    &format!("{ca}.crt"),
                    "-days",
                    "2",
                    "-subj",
                    &format!("/CN=Portico test {ca}"),
                ],
            );
        }
        pki
    }

    pub fn path(&self, file: &str) -> PathBuf {
        self.dir.path().join(file)
    }

    /// Issues `name.crt`/`name.key` signed by `ca`, with subject CN and subjectAltName entries.
    pub fn issue(&self, ca: &str, name: &str, cn: &str, sans: &str, client: bool) {
        let d = self.dir.path();
        openssl(
            d,
            &[
                "req",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-keyout",
                &format!("{name}.key"),
                "-out",
                &format!("{name}.csr"),
                "-subj",
                &format!("/CN={cn}"),
            ],
        );
        let usage = if client { "clientAuth" } else { "serverAuth" };
        std::fs::write(d.join(format!("{name}.ext")), format!("subjectAltName={sans}\nextendedKeyUsage={usage}\n"))
            .expect("ext file");
        openssl(
            d,
            &[
                "x509",
                "-req",
                "-in",
                &format!("{name}.csr"),
                "-CA",
                &format!("{ca}.crt"),
                "-CAkey",
                &format!("{ca}.key"),
                "-CAcreateserial",
                "-out",
                &format!("{name}.crt"),
                "-days",
                "2",
                "-extfile",
                &format!("{name}.ext"),
            ],
        );
    }
}

/// What `curl` saw.
pub struct Curl {
    pub ok: bool,
    pub status: u16,
    pub http_version: String,
    pub body: String,
    pub headers: String,
}

/// Runs `curl` with extra args against `url`, printing status and HTTP version.
pub fn curl(args: &[&str], url: &str) -> Curl {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "10", "-D", "-", "-w", "\n%{http_code} %{http_version}"])
        .args(args)
        .arg(url)
        .output()
        .expect("curl runs");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (rest, last) = text.rsplit_once('\n').unwrap_or(("", &text));
    let mut it = last.split(' ');
    let status = it.next().and_then(|s| s.parse().ok()).unwrap_or(0);
    let http_version = it.next().unwrap_or("").to_string();
    let (headers, body) = rest.split_once("\r\n\r\n").unwrap_or(("", rest));
    Curl { ok: out.status.success(), status, http_version, body: body.to_string(), headers: headers.to_string() }
}
