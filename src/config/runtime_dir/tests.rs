use super::*;
use std::os::unix::fs::PermissionsExt;

fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<OsString> + 'a {
    move |name| vars.iter().find(|(k, _)| *k == name).map(|(_, v)| OsString::from(v))
}

#[test]
fn the_directory_is_systemds_then_the_sessions_then_run_then_a_per_user_temp_dir() {
    let tmp = Path::new("/tmp");
    let both = [("RUNTIME_DIRECTORY", "/run/portico:/run/other"), ("XDG_RUNTIME_DIR", "/run/user/1000")];
    assert_eq!(choose(env(&both), 1000, tmp), Path::new("/run/portico"));
    assert_eq!(choose(env(&both[1..]), 1000, tmp), Path::new("/run/user/1000/portico"));
    assert_eq!(choose(env(&[("XDG_RUNTIME_DIR", "")]), 0, tmp), Path::new("/run/portico"));
    assert_eq!(choose(env(&[("XDG_RUNTIME_DIR", "relative")]), 1000, tmp), Path::new("/tmp/portico-1000"));
    assert_eq!(choose(env(&[]), 1000, Path::new("/var/tmp")), Path::new("/var/tmp/portico-1000"));
}

#[test]
fn a_missing_directory_is_created_private_and_an_unsafe_one_refused() {
    let base = tempfile::tempdir().expect("temp dir");
    let me = euid();
    let dir = base.path().join("a/portico");
    prepare(&dir, me).expect("created");
    assert_eq!(std::fs::metadata(&dir).expect("exists").permissions().mode() & 0o777, 0o700);
    prepare(&dir, me).expect("an existing private directory is fine");

    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).expect("chmod");
    let e = prepare(&dir, me).expect_err("world-writable");
    assert!(e.contains("is writable by others (mode 777)") && e.contains(&dir.display().to_string()), "{e}");

    let e = prepare(&dir, me + 1).expect_err("someone else's");
    assert!(e.contains(&format!("is owned by uid {me}")), "{e}");

    let link = base.path().join("link");
    std::os::unix::fs::symlink(&dir, &link).expect("symlink");
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).expect("chmod");
    assert!(prepare(&link, me).expect_err("a symlink").contains("is not a directory"));
}
