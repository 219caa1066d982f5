//! Build script: records the commit the binary is built from, for `portico --version`.
//!
//! `PORTICO_COMMIT` is the short hash of `HEAD` (`unknown` outside a git checkout, or set it in
//! the environment to override, as a packager building from a tarball would).

use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_string()).filter(|s| !s.is_empty())
}

fn main() {
    println!("cargo:rerun-if-env-changed=PORTICO_COMMIT");
    let commit = std::env::var("PORTICO_COMMIT").ok().or_else(|| git(&["rev-parse", "--short=12", "HEAD"]));
    // Rebuild when HEAD moves: HEAD itself (a checkout) and the ref it points at (a commit).
    // In a worktree, HEAD lives in its own git dir and the refs in the common one.
    if let (Some(dir), Some(common)) = (git(&["rev-parse", "--git-dir"]), git(&["rev-parse", "--git-common-dir"])) {
        println!("cargo:rerun-if-changed={dir}/HEAD");
        if let Some(r) = git(&["symbolic-ref", "-q", "HEAD"]) {
            println!("cargo:rerun-if-changed={common}/{r}");
        }
        println!("cargo:rerun-if-changed={common}/packed-refs");
    }
    println!("cargo:rustc-env=PORTICO_COMMIT={}", commit.as_deref().unwrap_or("unknown"));
}
