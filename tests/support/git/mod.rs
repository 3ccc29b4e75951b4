//! Real Git servers for the Git source's tests, each started by one test on free loopback
//! ports and stopped when dropped: OpenSSH's `sshd` ([`sshd`]) and `git http-backend`
//! behind a TLS server with Basic auth and a private CA ([`https`]); and the bare
//! repositories they serve ([`remote`]).
//!
//! These files need nothing else of `tests/support`: the Git source's unit tests include
//! `remote.rs` and `certs.rs`, and the fetch benchmark (`examples/git_fetch_scale.rs`) this
//! whole module, by path; hence the allowances of their own.
#![allow(dead_code)]

pub mod certs;
pub mod https;
pub mod remote;
pub mod sshd;

use std::net::{Ipv4Addr, TcpListener};
use std::path::Path;
use std::time::Duration;

/// The longest any single step of a server test may take (a fetch, a server's start).
pub const LIMIT: Duration = Duration::from_secs(30);

/// A port nobody listens on at `ip` right now.
pub fn free_port(ip: Ipv4Addr) -> u16 {
    TcpListener::bind((ip, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// True (after printing why the test does not run) when `path` is not an executable.
/// `scripts/setup` installs every tool these tests need, so CI runs them all.
pub fn missing_tool(path: &str, what: &str) -> bool {
    let found = Path::new(path).is_file()
        || std::env::var_os("PATH")
            .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(path).is_file()));
    if !found {
        eprintln!("SKIPPED: {what} is not installed ({path}); run scripts/setup");
    }
    !found
}
