//! `portico-custom`: the `portico` command with one more filter, `tenant` (src/tenant.rs).

mod tenant;

fn main() -> std::process::ExitCode {
    portico::Daemon::new().filter::<tenant::Tenant>().run()
}
