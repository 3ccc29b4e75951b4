//! The Git source against a real OpenSSH server (`sshd` from Debian's openssh-server,
//! installed by `scripts/setup`): a key on a non-default port, known_hosts entries as
//! `ssh-keyscan` writes them (`[host]:port`, hashed with `-H`, plain `host` for port 22),
//! a changed host key, a force push, and credential files read again at each fetch.
//! Each test starts its own sshd on a free loopback port; a test that cannot run because
//! OpenSSH is missing says so on stderr.

mod support;

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use modelship::source::known_hosts::HostKeyError;
use modelship::source::{GitAuth, GitConfig, GitError, GitSource, Snapshot};
use support::git::LIMIT;
use support::git::remote::Remote;
use support::git::sshd::{self, Sshd};
use support::within_blocking;

/// A source following main of `remote` through `sshd`, trusting `known_hosts`.
fn source(sshd: &Sshd, remote: &Remote, known_hosts: &str) -> (GitSource, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let known_hosts_file = dir.path().join("known_hosts");
    std::fs::write(&known_hosts_file, known_hosts).unwrap();
    let git = GitSource::new(GitConfig {
        url: sshd.url(&remote.path),
        branch: "main".into(),
        path: ".".into(),
        cache_dir: dir.path().join("cache"),
        auth: GitAuth::Ssh {
            username: sshd.user.clone(),
            private_key: sshd.client_key.clone(),
            known_hosts: known_hosts_file,
        },
        ca_file: None,
    });
    (git, dir)
}

/// One fetch of main, with a deadline.
fn fetch(git: &GitSource) -> Result<Snapshot, GitError> {
    let git = git.clone();
    within_blocking("an ssh fetch", LIMIT, move || git.fetch_blocking())
}

fn known_hosts_of(dir: &tempfile::TempDir) -> PathBuf {
    dir.path().join("known_hosts")
}

#[test]
fn a_key_on_a_non_default_port_with_keyscan_entries_plain_and_hashed() {
    let Some(sshd) = Sshd::start() else { return };
    let remote = Remote::new();
    let commit = remote.commit("main", &[("services/a.yaml", "v: 1")]);

    for hashed in [false, true] {
        let lines = sshd.keyscan(hashed);
        assert_eq!(
            lines.starts_with("|1|"),
            hashed,
            "ssh-keyscan output: {lines}"
        );
        if !hashed {
            let port = sshd.addr.port();
            assert!(
                lines.starts_with(&format!("[127.0.0.1]:{port} ")),
                "{lines}"
            );
        }
        let (git, _dir) = source(&sshd, &remote, &lines);
        let snapshot =
            fetch(&git).unwrap_or_else(|e| panic!("hashed={hashed}: {e}\nsshd:\n{}", sshd.log()));
        assert_eq!(snapshot.revision, commit.to_string());
        assert_eq!(snapshot.files["services/a.yaml"], b"v: 1");
    }

    // A bare host name means port 22 to OpenSSH, so it does not vouch for this port.
    let plain = format!("127.0.0.1 {}\n", sshd.host_key);
    let (git, _dir) = source(&sshd, &remote, &plain);
    let error = fetch(&git).unwrap_err();
    let port = sshd.addr.port();
    assert!(
        matches!(&error, GitError::HostKey { host, reason: HostKeyError::Unknown, .. }
            if *host == format!("[127.0.0.1]:{port}")),
        "{error}"
    );
}

#[test]
fn a_plain_host_entry_is_used_for_port_22() {
    // Port 22 of a loopback address of this test's own: free, and parallel-safe.
    let ip = Ipv4Addr::new(127, 77, (std::process::id() % 250) as u8 + 1, 22);
    if std::net::TcpListener::bind((ip, 22)).is_err() {
        eprintln!("SKIPPED: cannot listen on {ip}:22 (needs root, as in CI)");
        return;
    }
    let Some(sshd) = Sshd::start_on(ip, Some(22)) else {
        return;
    };
    let remote = Remote::new();
    let commit = remote.commit("main", &[("a.yaml", "v: 1")]);
    let url = format!("ssh://{}@{ip}{}", sshd.user, remote.path.display());
    let (git, dir) = source(&sshd, &remote, &format!("{ip} {}\n", sshd.host_key));
    let mut config = git.config().clone();
    config.url = url;
    let snapshot = fetch(&GitSource::new(config.clone()))
        .unwrap_or_else(|e| panic!("{e}\nsshd:\n{}", sshd.log()));
    assert_eq!(snapshot.revision, commit.to_string());

    // `[ip]:22` is not how OpenSSH writes port 22, and does not match.
    std::fs::write(
        known_hosts_of(&dir),
        format!("[{ip}]:22 {}\n", sshd.host_key),
    )
    .unwrap();
    let error = fetch(&GitSource::new(config)).unwrap_err();
    assert!(
        matches!(
            &error,
            GitError::HostKey {
                reason: HostKeyError::Unknown,
                ..
            }
        ),
        "{error}"
    );
}

#[test]
fn a_url_without_a_user_logs_in_as_the_configured_user() {
    let Some(sshd) = Sshd::start() else { return };
    let remote = Remote::new();
    let commit = remote.commit("main", &[("a.yaml", "v: 1")]);
    let (git, _dir) = source(&sshd, &remote, &sshd.keyscan(false));
    let mut config = git.config().clone();
    config.url = format!("ssh://{}{}", sshd.addr, remote.path.display());
    let snapshot =
        fetch(&GitSource::new(config)).unwrap_or_else(|e| panic!("{e}\nsshd:\n{}", sshd.log()));
    assert_eq!(snapshot.revision, commit.to_string());
}

#[test]
fn a_changed_host_key_is_refused_naming_the_host_and_the_change() {
    let Some(sshd) = Sshd::start() else { return };
    let remote = Remote::new();
    remote.commit("main", &[("a.yaml", "v: 1")]);
    let other = tempfile::tempdir().unwrap();
    let old_key = other.path().join("old_host_key");
    sshd::keygen(&old_key);
    let port = sshd.addr.port();
    let (git, _dir) = source(
        &sshd,
        &remote,
        &format!("[127.0.0.1]:{port} {}\n", sshd::public_key(&old_key)),
    );
    let error = fetch(&git).unwrap_err();
    let message = error.to_string();
    assert!(
        matches!(
            &error,
            GitError::HostKey {
                reason: HostKeyError::Changed { .. },
                ..
            }
        ),
        "{message}"
    );
    assert!(
        message.contains(&format!("[127.0.0.1]:{port}")),
        "{message}"
    );
    assert!(message.contains("has changed"), "{message}");
    assert_eq!(error.metric_label(), "git_host_key_changed");
}

#[test]
fn a_force_push_is_followed_back_to_the_older_commit() {
    let Some(sshd) = Sshd::start() else { return };
    let remote = Remote::new();
    let first = remote.commit("main", &[("a.yaml", "v: 1")]);
    let second = remote.commit("main", &[("a.yaml", "v: 2")]);
    let (git, _dir) = source(&sshd, &remote, &sshd.keyscan(false));
    assert_eq!(fetch(&git).unwrap().revision, second.to_string());

    remote.set_ref("refs/heads/main", first);
    let snapshot = fetch(&git).unwrap();
    assert_eq!(snapshot.revision, first.to_string());
    assert_eq!(snapshot.files["a.yaml"], b"v: 1");
}

#[test]
fn key_and_known_hosts_files_are_read_again_at_each_fetch() {
    let Some(sshd) = Sshd::start() else { return };
    let remote = Remote::new();
    let first = remote.commit("main", &[("a.yaml", "v: 1")]);
    let (git, dir) = source(&sshd, &remote, "# nothing trusted yet\n");
    let error = fetch(&git).unwrap_err();
    assert!(matches!(error, GitError::HostKey { .. }), "{error}");

    // The known_hosts Secret is filled in: the same source trusts the host.
    std::fs::write(known_hosts_of(&dir), sshd.keyscan(true)).unwrap();
    assert_eq!(fetch(&git).unwrap().revision, first.to_string());

    // A key that becomes unreadable fails the fetch naming the file, not the key.
    let key: &Path = &sshd.client_key;
    let saved = std::fs::read(key).unwrap();
    std::fs::remove_file(key).unwrap();
    let error = fetch(&git).unwrap_err();
    assert!(
        matches!(&error, GitError::CredentialFile { path, .. } if path == key),
        "{error}"
    );
    assert!(
        error.to_string().contains("SSH private key file"),
        "{error}"
    );
    assert!(!error.to_string().contains("PRIVATE KEY"), "{error}");

    // A key the server does not authorize is refused as such.
    sshd::keygen(key);
    let error = fetch(&git).unwrap_err();
    assert!(
        matches!(error, GitError::CredentialsRefused { .. }),
        "{error}\nsshd:\n{}",
        sshd.log()
    );
    std::fs::remove_file(key).unwrap();
    std::fs::write(key, saved).unwrap();
    let second = remote.commit("main", &[("a.yaml", "v: 2")]);
    assert_eq!(fetch(&git).unwrap().revision, second.to_string());
}
