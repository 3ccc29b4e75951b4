//! Unit tests of `modelship run`'s arguments and their resolution.

use super::*;
use crate::forge::Credentials;
use clap::Parser;

#[derive(Parser)]
struct Wrapper {
    #[command(flatten)]
    args: RunArgs,
}

fn args(line: &[&str]) -> RunArgs {
    let mut argv = vec!["modelship"];
    argv.extend_from_slice(line);
    Wrapper::try_parse_from(argv).unwrap().args
}

#[test]
fn a_plain_directory_is_watched_and_a_url_is_followed_with_git() {
    let dir = tempfile::tempdir().unwrap();
    let local = resolve(
        &args(&["--repo", dir.path().to_str().unwrap()]),
        &Env::default(),
    )
    .unwrap();
    assert!(matches!(local.source, Source::Local(_)));
    assert_eq!(local.interval, Duration::from_secs(60));
    assert_eq!(local.drift, DriftMode::Heal);
    assert!(local.election.is_none() && local.webhook_secret.is_none());

    let remote = resolve(
        &args(&[
            "--repo",
            "https://git.example.com/ml.git",
            "--branch",
            "prod",
            "--path",
            "deploy",
            "--interval",
            "30s",
        ]),
        &Env::default(),
    )
    .unwrap();
    let Source::Git(git) = &remote.source else {
        panic!("git source expected")
    };
    assert_eq!(git.config().branch, "prod");
    assert_eq!(git.config().path, "deploy");
    assert_eq!(git.config().auth, GitAuth::Anonymous);
    assert_eq!(remote.interval, Duration::from_secs(30));
}

#[test]
fn credentials_and_the_webhook_secret_come_from_files_or_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, "tok-file\n").unwrap();
    let hook = dir.path().join("hook");
    std::fs::write(&hook, "hook-file-0123456789\n").unwrap();
    let url = "https://git.example.com/ml.git";
    let env = Env {
        git_token: Some("tok-env".into()),
        webhook_secret: Some("hook-env-0123456789".into()),
        ..Env::default()
    };
    let from_env = resolve(&args(&["--repo", url]), &env).unwrap();
    let Source::Git(git) = &from_env.source else {
        panic!()
    };
    assert_eq!(
        git.config().auth,
        GitAuth::Basic {
            username: "x-access-token".into(),
            password: SecretSource::Value(Secret::new("tok-env"))
        }
    );
    assert_eq!(
        from_env.webhook_secret,
        Some(Secret::new("hook-env-0123456789"))
    );

    let from_file = resolve(
        &args(&[
            "--repo",
            url,
            "--git-token-file",
            token.to_str().unwrap(),
            "--webhook-secret-file",
            hook.to_str().unwrap(),
        ]),
        &env,
    )
    .unwrap();
    let Source::Git(git) = &from_file.source else {
        panic!()
    };
    assert_eq!(
        git.config().auth,
        GitAuth::Basic {
            username: "x-access-token".into(),
            password: SecretSource::File(token.clone())
        }
    );
    assert_eq!(
        from_file.webhook_secret,
        Some(Secret::new("hook-file-0123456789"))
    );

    // A short secret (after trimming) is refused at start, saying why.
    let short = Env {
        webhook_secret: Some("  s3cret-s3cret\n".into()),
        ..Env::default()
    };
    let error = resolve(&args(&["--repo", url]), &short).unwrap_err();
    assert!(matches!(error, RunError::WeakWebhookSecret { bytes: 13 }));
    assert!(error.to_string().contains("at least 16"), "{error}");

    let missing = resolve(
        &args(&["--repo", url, "--git-token-file", "/no/such/file"]),
        &env,
    );
    assert!(
        missing
            .unwrap_err()
            .to_string()
            .starts_with("/no/such/file")
    );
}

#[test]
fn ssh_and_ca_files_are_named_in_the_config_and_checked_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let file = |name: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, "x").unwrap();
        path.display().to_string()
    };
    let (key, known_hosts, ca) = (file("id"), file("known_hosts"), file("ca.crt"));
    let url = "ssh://git@git.example.com:2222/ml.git";
    let config = resolve(
        &args(&[
            "--repo",
            url,
            "--ssh-key-file",
            &key,
            "--ssh-known-hosts-file",
            &known_hosts,
            "--git-ca-file",
            &ca,
        ]),
        &Env::default(),
    )
    .unwrap();
    let Source::Git(git) = &config.source else {
        panic!("git source expected")
    };
    assert_eq!(
        git.config().auth,
        GitAuth::Ssh {
            username: "git".into(),
            private_key: key.clone().into(),
            known_hosts: known_hosts.clone().into(),
        }
    );
    assert_eq!(git.config().ca_file, Some(ca.into()));

    let missing = resolve(
        &args(&["--repo", url, "--git-ca-file", "/no/such/ca.crt"]),
        &Env::default(),
    );
    assert!(
        missing
            .unwrap_err()
            .to_string()
            .starts_with("/no/such/ca.crt")
    );
    let missing = resolve(
        &args(&[
            "--repo",
            url,
            "--ssh-key-file",
            &key,
            "--ssh-known-hosts-file",
            "/no/such/known_hosts",
        ]),
        &Env::default(),
    );
    assert!(
        missing
            .unwrap_err()
            .to_string()
            .starts_with("/no/such/known_hosts")
    );
}

#[test]
fn namespaces_confine_the_daemon_and_default_to_all() {
    let repo = ["--repo", "https://x/y.git"];
    let all = resolve(&args(&repo), &Env::default()).unwrap();
    assert_eq!(all.namespaces, cluster::Namespaces::All);
    let line = [&repo[..], &["--namespaces", "team-b,team-a"]].concat();
    let only = resolve(&args(&line), &Env::default()).unwrap();
    assert_eq!(only.namespaces.to_string(), "team-a,team-b");
    let bad = [&repo[..], &["--namespaces", "Team"]].concat();
    let mut argv = vec!["modelship"];
    argv.extend_from_slice(&bad);
    assert!(Wrapper::try_parse_from(argv).is_err());
}

#[test]
fn sandbox_implies_namespace_creation_and_election_names_the_pod() {
    let config = resolve(
        &args(&[
            "--repo",
            "https://x/y.git",
            "--sandbox",
            "--leader-elect",
            "--drift",
            "warn",
        ]),
        &Env {
            pod_name: Some("modelship-abc".into()),
            pod_namespace: Some("ops".into()),
            ..Env::default()
        },
    )
    .unwrap();
    assert!(config.create_namespaces);
    assert_eq!(config.drift, DriftMode::Warn);
    assert_eq!(
        config.pod,
        Some(PodRef {
            namespace: "ops".into(),
            name: "modelship-abc".into()
        }),
        "the Pod labelled while it leads"
    );
    let election = config.election.unwrap();
    assert_eq!(
        (election.namespace.as_str(), election.identity.as_str()),
        ("ops", "modelship-abc")
    );
}

#[test]
fn the_pod_is_known_from_pod_name_and_pod_namespace_only() {
    let line = ["--repo", "https://x/y.git", "--leader-elect"];
    let resolved = |env: Env| resolve(&args(&line), &env).unwrap();
    let by_hostname = resolved(Env {
        hostname: Some("box-1".into()),
        pod_namespace: Some("ops".into()),
        ..Env::default()
    });
    assert_eq!(by_hostname.pod, None, "a HOSTNAME does not name a Pod");
    assert_eq!(
        by_hostname.election.map(|e| e.identity).as_deref(),
        Some("box-1"),
        "but it identifies the replica in the election"
    );
    let no_namespace = resolved(Env {
        pod_name: Some("modelship-abc".into()),
        ..Env::default()
    });
    assert_eq!(no_namespace.pod, None);
    let without_election = resolve(
        &args(&["--repo", "https://x/y.git"]),
        &Env {
            pod_name: Some("modelship-abc".into()),
            pod_namespace: Some("ops".into()),
            ..Env::default()
        },
    )
    .unwrap();
    assert!(without_election.election.is_none());
    assert_eq!(
        without_election.pod.map(|p| p.to_string()).as_deref(),
        Some("ops/modelship-abc"),
        "a single daemon labels its Pod too"
    );
}

#[test]
fn github_credentials_come_from_a_file_or_the_environment_and_never_show() {
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("gh-token");
    std::fs::write(&token, "ghp_from_file_123\n").unwrap();
    let repo = "https://git.example.com/ml.git";
    let none = resolve(&args(&["--repo", repo]), &Env::default()).unwrap();
    assert!(none.github.is_none(), "no credentials: pull requests off");

    let from_file = resolve(
        &args(&[
            "--repo",
            repo,
            "--github-token-file",
            token.to_str().unwrap(),
            "--github-api-url",
            "https://git.example.com/api/v3/",
        ]),
        &Env::default(),
    )
    .unwrap();
    let github = from_file.github.as_ref().expect("github configured");
    assert_eq!(github.api_url, "https://git.example.com/api/v3");
    let Credentials::Token(secret) = &github.credentials else {
        panic!("a token expected")
    };
    assert_eq!(secret.expose(), "ghp_from_file_123");
    let shown = format!("{from_file:?}");
    assert!(!shown.contains("ghp_from_file_123"), "{shown}");

    let env = Env {
        github_token: Some("ghp_from_env_456".into()),
        ..Env::default()
    };
    let from_env = resolve(&args(&["--repo", repo]), &env).unwrap();
    let github = from_env.github.expect("github configured");
    assert_eq!(github.api_url, crate::forge::DEFAULT_API_URL);
    let Credentials::Token(secret) = &github.credentials else {
        panic!("a token expected")
    };
    assert_eq!(secret.expose(), "ghp_from_env_456");

    let bad_url = resolve(
        &args(&["--repo", repo, "--github-api-url", "not a url"]),
        &env,
    );
    assert!(bad_url.unwrap_err().to_string().contains("not a url"));
    let missing = resolve(
        &args(&["--repo", repo, "--github-token-file", "/nonexistent/token"]),
        &Env::default(),
    );
    assert!(
        missing
            .unwrap_err()
            .to_string()
            .contains("/nonexistent/token")
    );
}

#[test]
fn half_an_app_or_an_app_with_a_token_is_refused_by_the_parser() {
    let parse = |line: &[&str]| {
        let mut argv = vec!["modelship", "--repo", "r"];
        argv.extend_from_slice(line);
        Wrapper::try_parse_from(argv).map(|_| ())
    };
    assert!(parse(&["--github-app-id", "1"]).is_err());
    assert!(parse(&["--github-app-key-file", "k.pem"]).is_err());
    assert!(
        parse(&[
            "--github-token-file",
            "t",
            "--github-app-id",
            "1",
            "--github-app-key-file",
            "k.pem"
        ])
        .is_err()
    );
    assert!(parse(&["--github-app-id", "1", "--github-app-key-file", "k.pem"]).is_ok());
}
