//! The private directory that `server.pid_file` and `server.upgrade_sock` default into.
//!
//! The upgrade socket hands the listening sockets to a new process: anyone who can create or
//! replace it can take them over (or hand a starting Portico sockets of their own), so it must
//! not sit in a world-writable directory such as `/tmp`. The default directory is, first found:
//!
//! 1. `$RUNTIME_DIRECTORY`: systemd's `RuntimeDirectory=portico` (`/run/portico`, owned by the
//!    service's user), as `conf/portico.service` sets;
//! 2. `$XDG_RUNTIME_DIR/portico`: a user's session (the parent is private to the user);
//! 3. `/run/portico` when running as root;
//! 4. `portico-UID` under the temp directory (`$TMPDIR` or `/tmp`).
//!
//! At start ([`prepare`]) the directory is created with mode 0700 when missing, and refused
//! unless it is a real directory (not a symlink) owned by this user and writable by no one
//! else. Paths set in the config are used as written, without these checks.

use std::ffi::OsString;
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};

/// The default directory, from the environment (`env`), the effective user id and the temp
/// directory; see the module doc for the order.
pub fn choose(env: impl Fn(&str) -> Option<OsString>, euid: u32, temp: &Path) -> PathBuf {
    let set = |name: &str| env(name).filter(|v| !v.is_empty());
    if let Some(dirs) = set("RUNTIME_DIRECTORY") {
        // systemd separates several RuntimeDirectory= entries with colons.
        let first = dirs.to_string_lossy().split(':').next().map(PathBuf::from);
        if let Some(dir) = first.filter(|d| d.is_absolute()) {
            return dir;
        }
    }
    if let Some(xdg) = set("XDG_RUNTIME_DIR").map(PathBuf::from).filter(|d| d.is_absolute()) {
        return xdg.join("portico");
    }
    if euid == 0 {
        return PathBuf::from("/run/portico");
    }
    temp.join(format!("portico-{euid}"))
}

/// The default directory for this process.
pub fn default_dir() -> PathBuf {
    choose(|name| std::env::var_os(name), euid(), &std::env::temp_dir())
}

/// The effective user id.
pub fn euid() -> u32 {
    nix::unistd::geteuid().as_raw()
}

/// Creates `dir` (mode 0700, parents as needed) unless it exists, then checks that it is a
/// directory owned by `euid` that neither group nor others may write to; the error names it.
pub fn prepare(dir: &Path, euid: u32) -> Result<(), String> {
    match std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir) {
        Ok(()) => {}
        Err(e) => return Err(format!("cannot create the runtime directory {}: {e}", dir.display())),
    }
    let meta = std::fs::symlink_metadata(dir).map_err(|e| format!("cannot inspect {}: {e}", dir.display()))?;
    let problem = if !meta.file_type().is_dir() {
        Some("is not a directory (a symlink?)".to_string())
    } else if meta.uid() != euid {
        Some(format!("is owned by uid {}, not by this process's uid {euid}", meta.uid()))
    } else if meta.mode() & 0o022 != 0 {
        Some(format!("is writable by others (mode {:o})", meta.mode() & 0o777))
    } else {
        None
    };
    match problem {
        None => Ok(()),
        Some(p) => Err(format!(
            "the runtime directory {} {p}: the upgrade socket must not be where others can replace it \
             (or set server.pid_file and server.upgrade_sock)",
            dir.display()
        )),
    }
}

#[cfg(test)]
mod tests;
