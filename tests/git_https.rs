//! The Git source against git's smart HTTP: `git http-backend` behind a TLS server with a
//! private CA and Basic auth (tests/support/git/https.rs), each test with its own server on
//! a free loopback port. Token and user/password auth, `--git-ca-file`, a refused token
//! reported without the token, a rotated token file used without a restart, a pull
//! request's head ref, and the daemon keeping its last good revision while the server is
//! away.

mod support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use modelship::source::{GitAuth, GitConfig, GitError, GitSource, SecretSource, Snapshot, Source};
use support::git::LIMIT;
use support::git::https::{GitHttps, TestCa};
use support::git::remote::Remote;

const TOKEN: &str = "ghs_first-token-value";

/// A source following main of `models.git` at `server`, with `password` in a file, the
/// test CA trusted when `trust_ca`.
fn source(server: &GitHttps, dir: &Path, user: &str, password: &str, trust_ca: bool) -> GitSource {
    let password_file = dir.join("token");
    std::fs::write(&password_file, format!("{password}\n")).unwrap();
    let ca_file = dir.join("ca.crt");
    server.ca.write_ca(&ca_file);
    GitSource::new(GitConfig {
        url: server.url("models.git"),
        branch: "main".into(),
        path: ".".into(),
        cache_dir: dir.join("cache"),
        auth: GitAuth::Basic {
            username: user.into(),
            password: SecretSource::File(password_file),
        },
        ca_file: trust_ca.then_some(ca_file),
    })
}

async fn fetch(git: &GitSource) -> Result<Snapshot, GitError> {
    tokio::time::timeout(LIMIT, git.fetch())
        .await
        .expect("fetch finished in time")
}

fn token_file(dir: &Path) -> PathBuf {
    dir.join("token")
}

/// Replaces a file the way the kubelet updates a mounted Secret: a new file renamed over it.
fn rotate(path: &Path, content: &str) {
    let next = path.with_extension("next");
    std::fs::write(&next, content).unwrap();
    std::fs::rename(next, path).unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_token_over_https_with_a_private_ca() {
    let remote = Remote::new();
    let commit = remote.commit("main", &[("services/a.yaml", "v: 1")]);
    let Some(server) = GitHttps::start(remote.dir.path(), "x-access-token", TOKEN).await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let git = source(&server, dir.path(), "x-access-token", TOKEN, true);
    let snapshot = fetch(&git).await.unwrap();
    assert_eq!(snapshot.revision, commit.to_string());
    assert_eq!(snapshot.files["services/a.yaml"], b"v: 1");

    // Without the CA file the system's store does not know the private CA.
    let untrusting = source(&server, dir.path(), "x-access-token", TOKEN, false);
    let error = fetch(&untrusting).await.unwrap_err();
    assert!(matches!(error, GitError::Fetch { .. }), "{error}");
    assert!(error.to_string().contains("--git-ca-file"), "{error}");

    // A CA file of another CA is no better, and says why.
    let other = tempfile::tempdir().unwrap();
    let git = source(&server, other.path(), "x-access-token", TOKEN, true);
    std::fs::write(other.path().join("ca.crt"), TestCa::new().ca_pem).unwrap();
    let error = fetch(&git).await.unwrap_err();
    assert!(matches!(&error, GitError::Certificate { .. }), "{error}");
    assert!(error.to_string().contains("127.0.0.1"), "{error}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_user_and_password_over_https() {
    let remote = Remote::new();
    let commit = remote.commit("main", &[("a.yaml", "v: 1")]);
    let Some(server) = GitHttps::start(remote.dir.path(), "alice", "correct horse").await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let git = source(&server, dir.path(), "alice", "correct horse", true);
    assert_eq!(fetch(&git).await.unwrap().revision, commit.to_string());
    let expected = format!(
        "Basic {}",
        base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            "alice:correct horse"
        )
    );
    assert!(server.authorizations().contains(&expected));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refused_token_is_reported_without_the_token() {
    let remote = Remote::new();
    remote.commit("main", &[("a.yaml", "v: 1")]);
    let Some(server) = GitHttps::start(remote.dir.path(), "x-access-token", TOKEN).await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let wrong = "ghs_wrong-token-value";
    let git = source(&server, dir.path(), "x-access-token", wrong, true);
    let error = fetch(&git).await.unwrap_err();
    assert!(
        matches!(&error, GitError::CredentialsRefused { username, .. } if username == "x-access-token"),
        "{error}"
    );
    assert_eq!(error.metric_label(), "git_credentials_refused");
    for text in [error.to_string(), format!("{error:?}"), format!("{git:?}")] {
        assert!(!text.contains(wrong) && !text.contains(TOKEN), "{text}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rotated_token_file_is_used_at_the_next_fetch() {
    let remote = Remote::new();
    let first = remote.commit("main", &[("a.yaml", "v: 1")]);
    let Some(server) = GitHttps::start(remote.dir.path(), "x-access-token", TOKEN).await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let git = source(&server, dir.path(), "x-access-token", TOKEN, true);
    assert_eq!(fetch(&git).await.unwrap().revision, first.to_string());

    // The forge rotates the token: the old one is refused until the Secret follows.
    let rotated = "ghs_second-token-value";
    server.accept_only("x-access-token", rotated);
    let second = remote.commit("main", &[("a.yaml", "v: 2")]);
    let error = fetch(&git).await.unwrap_err();
    assert!(
        matches!(error, GitError::CredentialsRefused { .. }),
        "{error}"
    );
    rotate(&token_file(dir.path()), &format!("{rotated}\n"));
    assert_eq!(fetch(&git).await.unwrap().revision, second.to_string());

    // A token file that goes away fails the fetch naming the file.
    std::fs::remove_file(token_file(dir.path())).unwrap();
    let error = fetch(&git).await.unwrap_err();
    assert!(
        matches!(&error, GitError::CredentialFile { path, .. } if *path == token_file(dir.path())),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pull_request_head_ref_and_a_force_push_over_https() {
    let remote = Remote::new();
    let base = remote.commit("main", &[("a.yaml", "v: 1")]);
    let head = remote.commit("feature", &[("a.yaml", "v: 1"), ("b.yaml", "new: true")]);
    remote.set_ref("refs/pull/42/head", head);
    let Some(server) = GitHttps::start(remote.dir.path(), "x-access-token", TOKEN).await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let git = source(&server, dir.path(), "x-access-token", TOKEN, true);
    let pull = tokio::time::timeout(LIMIT, git.fetch_pull_request(42))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(pull.revision, head.to_string());
    assert_eq!(pull.files["b.yaml"], b"new: true");

    let newer = remote.commit("main", &[("a.yaml", "v: 2")]);
    assert_eq!(fetch(&git).await.unwrap().revision, newer.to_string());
    remote.set_ref("refs/heads/main", base);
    let snapshot = fetch(&git).await.unwrap();
    assert_eq!(snapshot.revision, base.to_string());
    assert_eq!(snapshot.files["a.yaml"], b"v: 1");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_daemon_keeps_the_last_good_revision_while_the_server_is_away() {
    use support::daemon::{Running, config, push_webhook, service, status, wait_image};
    use support::eventually;

    let remote = Remote::new();
    remote.commit("main", &[("services/alpha.yaml", service("alpha", "1"))]);
    let Some(mut server) = GitHttps::start(remote.dir.path(), "x-access-token", TOKEN).await else {
        return;
    };
    let sandbox = modelship::sandbox::Sandbox::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let git = source(&server, dir.path(), "x-access-token", TOKEN, true);
    let mut daemon_config = config(
        String::new(),
        &dir.path().join("cache"),
        Duration::from_secs(3600),
    );
    daemon_config.source = Source::Git(git);
    let daemon = Running::start(daemon_config, sandbox.client()).await;
    daemon.wait_ready().await;
    wait_image(&sandbox.client(), "alpha", "1").await;

    server.stop().await;
    remote.commit("main", &[("services/alpha.yaml", service("alpha", "2"))]);
    assert_eq!(
        push_webhook(daemon.addr(), support::daemon::SECRET).await,
        202
    );
    let away = eventually("the fetch failure on /status", || async {
        let status = status(daemon.addr()).await;
        status["source_error"].is_string().then_some(status)
    })
    .await;
    let error = away["source_error"].as_str().unwrap_or_default();
    assert!(error.contains(&server.addr.to_string()), "{error}");
    assert!(!error.contains(TOKEN), "{error}");
    assert_eq!(away["services"]["ml/alpha"]["state"], "in-sync");
    assert_eq!(
        support::daemon::image(&sandbox.client(), "alpha")
            .await
            .as_deref(),
        Some("registry.example.com/alpha:1")
    );

    server.restart().await;
    assert_eq!(
        push_webhook(daemon.addr(), support::daemon::SECRET).await,
        202
    );
    wait_image(&sandbox.client(), "alpha", "2").await;
    eventually("the error cleared on /status", || async {
        status(daemon.addr()).await["source_error"]
            .is_null()
            .then_some(())
    })
    .await;

    // A token file that becomes unreadable: the fetch fails naming the file, and the
    // daemon keeps the revision it has.
    std::fs::remove_file(token_file(dir.path())).unwrap();
    remote.commit("main", &[("services/alpha.yaml", service("alpha", "3"))]);
    assert_eq!(
        push_webhook(daemon.addr(), support::daemon::SECRET).await,
        202
    );
    let unreadable = eventually("the credential error on /status", || async {
        let status = status(daemon.addr()).await;
        status["source_error"].as_str().map(str::to_string)
    })
    .await;
    assert!(
        unreadable.contains("token or password file"),
        "{unreadable}"
    );
    assert!(unreadable.contains(&token_file(dir.path()).display().to_string()));
    assert_eq!(
        support::daemon::image(&sandbox.client(), "alpha")
            .await
            .as_deref(),
        Some("registry.example.com/alpha:2")
    );
    daemon.stop().await;
    let _ = sandbox.shutdown().await;
}
