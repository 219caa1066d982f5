//! Keys made with the `openssl` command line and tokens signed by an independent JWT
//! implementation (Python's PyJWT), never by the code under test.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// A Python with PyJWT and cryptography: Debian's (`python3-jwt`), which `.ci/install-test-deps` installs.
fn python() -> &'static str {
    for candidate in ["/usr/bin/python3", "python3"] {
        let ok = Command::new(candidate)
            .args(["-c", "import jwt, cryptography"])
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        if ok {
            return candidate;
        }
    }
    panic!("no python3 with PyJWT and cryptography: run `bash .ci/install-test-deps`");
}

fn run_python(script: &str, args: &[&str]) -> String {
    let out = Command::new(python()).arg("-c").arg(script).args(args).output().expect("python runs");
    assert!(out.status.success(), "python failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Makes key pairs with openssl: `NAME.key` (private) and `NAME.pub` (public).
pub struct Keys {
    pub dir: tempfile::TempDir,
}

impl Keys {
    pub fn new() -> Keys {
        Keys { dir: tempfile::tempdir().expect("dir") }
    }

    pub fn path(&self, file: &str) -> PathBuf {
        self.dir.path().join(file)
    }

    fn openssl(&self, args: &[&str]) {
        let out = Command::new("openssl").args(args).current_dir(self.dir.path()).output().expect("openssl");
        assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }

    /// An RSA 2048 key pair.
    pub fn rsa(&self, name: &str) -> &Self {
        self.openssl(&[
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
            &format!("{name}.key"),
        ]);
        self.openssl(&["pkey", "-in", &format!("{name}.key"), "-pubout", "-out", &format!("{name}.pub")]);
        self
    }

    /// A P-256 key pair.
    pub fn ec(&self, name: &str) -> &Self {
        self.openssl(&[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-out",
            &format!("{name}.key"),
        ]);
        self.openssl(&["pkey", "-in", &format!("{name}.key"), "-pubout", "-out", &format!("{name}.pub")]);
        self
    }

    /// A JWKS document with the public halves of `(kid, name)` pairs.
    pub fn jwks(&self, keys: &[(&str, &str)]) -> String {
        let script = r#"
import json, sys
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa, ec
from jwt.algorithms import RSAAlgorithm, ECAlgorithm
keys = []
for pair in sys.argv[1:]:
    kid, path = pair.split("=", 1)
    pub = serialization.load_pem_public_key(open(path, "rb").read())
    if isinstance(pub, rsa.RSAPublicKey):
        jwk = json.loads(RSAAlgorithm.to_jwk(pub)); jwk["alg"] = "RS256"
    else:
        jwk = json.loads(ECAlgorithm.to_jwk(pub)); jwk["alg"] = "ES256"
    jwk["kid"] = kid; jwk["use"] = "sig"
    keys.append(jwk)
print(json.dumps({"keys": keys}))
"#;
        let args: Vec<String> =
            keys.iter().map(|(kid, name)| format!("{kid}={}", self.path(&format!("{name}.pub")).display())).collect();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        run_python(script, &args)
    }
}

/// Signs `claims` (a JSON object; `exp_in` seconds from now is added as `exp` when given) with
/// `alg` and `key` (a PEM file for RS/ES, a secret for HS), with an optional `kid`.
pub fn sign(alg: &str, key: &Path, claims: serde_json::Value, exp_in: Option<i64>, kid: Option<&str>) -> String {
    sign_with_secret_or_file(alg, &key.display().to_string(), claims, exp_in, kid)
}

/// As [`sign`], with an HMAC secret.
pub fn sign_hs(alg: &str, secret: &str, claims: serde_json::Value, exp_in: Option<i64>) -> String {
    sign_with_secret_or_file(alg, secret, claims, exp_in, None)
}

fn sign_with_secret_or_file(
    alg: &str,
    key: &str,
    claims: serde_json::Value,
    exp_in: Option<i64>,
    kid: Option<&str>,
) -> String {
    let script = r#"
import json, sys, time, jwt
alg, key, claims, exp_in, kid = sys.argv[1:6]
claims = json.loads(claims)
if exp_in != "none":
    claims["exp"] = int(time.time()) + int(exp_in)
if not alg.startswith("HS"):
    key = open(key).read()
headers = {"kid": kid} if kid != "none" else None
print(jwt.encode(claims, key, algorithm=alg, headers=headers))
"#;
    let exp = exp_in.map(|e| e.to_string()).unwrap_or_else(|| "none".into());
    run_python(script, &[alg, key, &claims.to_string(), &exp, kid.unwrap_or("none")])
}

/// A bcrypt or argon2 hash of `password`, by Python's `bcrypt` and `argon2-cffi`.
pub fn password_hash(kind: &str, password: &str) -> String {
    let script = r#"
import sys
kind, pw = sys.argv[1:3]
if kind == "bcrypt":
    import bcrypt
    print(bcrypt.hashpw(pw.encode(), bcrypt.gensalt(rounds=8)).decode())
else:
    from argon2 import PasswordHasher
    print(PasswordHasher(time_cost=1, memory_cost=8192).hash(pw))
"#;
    run_python(script, &[kind, password])
}
