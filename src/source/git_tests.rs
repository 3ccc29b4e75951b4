use git2::Repository;

use super::*;
use crate::source::limits::Limit;

#[path = "../../tests/support/git/remote.rs"]
mod remote;
use remote::Remote;

fn source(url: String, cache: &std::path::Path, path: &str) -> GitSource {
    GitSource::new(GitConfig {
        url,
        branch: "main".into(),
        path: path.into(),
        cache_dir: cache.join("cache"),
        auth: GitAuth::Anonymous,
        ca_file: None,
    })
}

fn keys(snapshot: &Snapshot) -> Vec<&str> {
    snapshot.files.keys().map(String::as_str).collect()
}

#[test]
fn reads_yaml_files_of_the_branch_head_below_the_path() {
    let remote = Remote::new();
    let commit = remote.commit(
        "main",
        &[
            ("README.md", "# repo"),
            ("deploy/modelship.yaml", "a: 1"),
            ("deploy/services/team/x.yml", "b: 2"),
            ("deploy/services/notes.txt", "no"),
            ("deploy/.github/ci.yaml", "hidden"),
            ("other/services/y.yaml", "c: 3"),
        ],
    );
    let cache = tempfile::tempdir().unwrap();

    let snapshot = source(remote.url(), cache.path(), "deploy")
        .fetch_blocking()
        .unwrap();
    assert_eq!(snapshot.revision.as_str(), commit.to_string());
    assert_eq!(keys(&snapshot), ["modelship.yaml", "services/team/x.yml"]);
    assert_eq!(snapshot.files["services/team/x.yml"], b"b: 2");

    let whole = source(remote.url(), cache.path(), ".")
        .fetch_blocking()
        .unwrap();
    assert_eq!(
        keys(&whole),
        [
            "deploy/modelship.yaml",
            "deploy/services/team/x.yml",
            "other/services/y.yaml"
        ]
    );
}

#[test]
fn each_fetch_follows_new_commits_through_a_file_url_without_a_work_tree() {
    let remote = Remote::new();
    remote.commit("main", &[("a.yaml", "v: 1")]);
    remote.commit("dev", &[("a.yaml", "v: dev")]);
    let cache = tempfile::tempdir().unwrap();
    let url = format!("file://{}", remote.url());
    let git = source(url, cache.path(), ".");

    let first = git.fetch_blocking().unwrap();
    assert_eq!(first.files["a.yaml"], b"v: 1");
    let second_commit = remote.commit("main", &[("a.yaml", "v: 2"), ("b.yaml", "w: 1")]);
    let second = git.fetch_blocking().unwrap();
    assert_eq!(second.revision.as_str(), second_commit.to_string());
    assert_eq!(second.files["a.yaml"], b"v: 2");
    assert_eq!(keys(&second), ["a.yaml", "b.yaml"]);

    let cache_repo = Repository::open(cache.path().join("cache")).unwrap();
    assert!(cache_repo.is_bare());
}

#[test]
fn a_missing_branch_or_path_is_an_error_naming_it() {
    let remote = Remote::new();
    remote.commit("main", &[("a.yaml", "v: 1"), ("docs/readme.yaml", "x")]);
    let cache = tempfile::tempdir().unwrap();

    let mut config = source(remote.url(), cache.path(), ".").config().clone();
    config.branch = "release".into();
    let error = GitSource::new(config).fetch_blocking().unwrap_err();
    assert!(matches!(&error, GitError::Fetch { reference, .. } if reference == "branch release"));
    assert_eq!(error.metric_label(), "git_fetch");

    for path in ["nope", "a.yaml"] {
        let error = source(remote.url(), cache.path(), path)
            .fetch_blocking()
            .unwrap_err();
        assert!(
            matches!(&error, GitError::NoSuchPath { path: p, .. } if p == path),
            "{error}"
        );
    }
}

#[test]
fn an_unreachable_remote_is_a_fetch_error() {
    let cache = tempfile::tempdir().unwrap();
    let error = source("/definitely/not/a/repo".into(), cache.path(), ".")
        .fetch_blocking()
        .unwrap_err();
    assert!(matches!(error, GitError::Fetch { .. }), "{error}");
}

#[test]
fn credentials_never_show_in_urls_or_debug_output() {
    assert_eq!(
        redact_url("https://user:hunter2@git.example.com/org/repo.git"),
        "https://***@git.example.com/org/repo.git"
    );
    assert_eq!(
        redact_url("https://git.example.com/a@b/repo.git"),
        "https://git.example.com/a@b/repo.git"
    );
    let auth = GitAuth::Basic {
        username: "bot".into(),
        password: SecretSource::Value(Secret::new("hunter2\n")),
    };
    assert!(!format!("{auth:?}").contains("hunter2"));
    if let GitAuth::Basic {
        password: SecretSource::Value(password),
        ..
    } = &auth
    {
        assert_eq!(password.expose(), "hunter2");
    }
}

#[test]
fn ssh_remotes_need_a_readable_known_hosts_file() {
    let cache = tempfile::tempdir().unwrap();
    let mut config = source("ssh://git@127.0.0.1:1/repo".into(), cache.path(), ".")
        .config()
        .clone();
    config.auth = GitAuth::Ssh {
        username: "git".into(),
        private_key: cache.path().join("id"),
        known_hosts: cache.path().join("missing_known_hosts"),
    };
    let error = GitSource::new(config).fetch_blocking().unwrap_err();
    assert!(
        matches!(
            error,
            GitError::CredentialFile {
                kind: crate::source::git_auth::CredentialKind::KnownHosts,
                ..
            }
        ),
        "{error}"
    );
    assert!(error.to_string().contains("known_hosts file"), "{error}");
}

#[test]
fn a_fetch_reads_only_the_files_that_changed_since_the_previous_one() {
    let remote = Remote::new();
    let mut files: Vec<(String, String)> = (0..40)
        .map(|i| {
            (
                format!("services/team-{}/s{i}.yaml", i % 4),
                format!("n: {i}"),
            )
        })
        .collect();
    remote.commit("main", &files);
    let cache = tempfile::tempdir().unwrap();
    let git = source(remote.url(), cache.path(), ".");
    let (first, stats) = git.fetch_blocking_with_stats().unwrap();
    assert_eq!(
        stats,
        ReadStats {
            blobs_read: 40,
            files_reused: 0
        }
    );

    let (same, stats) = git.fetch_blocking_with_stats().unwrap();
    assert_eq!(same, first);
    assert_eq!(stats.blobs_read, 0);

    files[5].1 = "n: changed".into();
    let changed = remote.commit("main", &files);
    let (second, stats) = git.clone().fetch_blocking_with_stats().unwrap();
    assert_eq!(second.revision.as_str(), changed.to_string());
    assert_eq!(
        stats,
        ReadStats {
            blobs_read: 1,
            files_reused: 39
        }
    );
    assert_eq!(second.files["services/team-1/s5.yaml"], b"n: changed");
    assert_eq!(second.files.len(), 40);
    assert_eq!(second, fresh_read(&remote));

    // Deleted, added (in a new directory), hidden and non-YAML files, through the diff.
    files.remove(0);
    files.push(("services/new-team/n.yaml".into(), "n: new".into()));
    files.push(("services/.drafts/d.yaml".into(), "hidden".into()));
    files.push(("services/team-2/notes.txt".into(), "not yaml".into()));
    remote.commit("main", &files);
    let (third, stats) = git.fetch_blocking_with_stats().unwrap();
    assert_eq!(stats.blobs_read, 1);
    assert_eq!(third.files.len(), 40);
    assert!(!third.files.contains_key("services/team-0/s0.yaml"));
    assert_eq!(third, fresh_read(&remote));
}

/// What a source with an empty cache reads of main.
fn fresh_read(remote: &Remote) -> Snapshot {
    let cache = tempfile::tempdir().unwrap();
    source(remote.url(), cache.path(), ".")
        .fetch_blocking()
        .unwrap()
}

#[test]
fn a_pull_request_head_is_fetched_without_moving_the_branch() {
    let remote = Remote::new();
    let main = remote.commit("main", &[("a.yaml", "v: main")]);
    let head = remote.commit("pr-branch", &[("a.yaml", "v: pr"), ("b.yaml", "w: 1")]);
    remote.set_ref("refs/pull/7/head", head);
    let cache = tempfile::tempdir().unwrap();
    let git = source(remote.url(), cache.path(), ".");
    assert_eq!(
        git.fetch_blocking().unwrap().revision.as_str(),
        main.to_string()
    );

    let pull = git.fetch_pull_request_blocking(7).unwrap();
    assert_eq!(pull.revision.as_str(), head.to_string());
    assert_eq!(pull.files["a.yaml"], b"v: pr");
    assert_eq!(
        git.fetch_blocking().unwrap().revision.as_str(),
        main.to_string()
    );

    let error = git.fetch_pull_request_blocking(8).unwrap_err();
    assert!(
        matches!(&error, GitError::Fetch { reference, .. } if reference.contains("refs/pull/8/head")),
        "{error}"
    );
}

#[test]
fn plain_directories_are_not_repositories() {
    let remote = Remote::new();
    let plain = tempfile::tempdir().unwrap();
    assert!(is_repository(&remote.path));
    assert!(!is_repository(plain.path()));
}

#[test]
fn a_blob_at_many_paths_is_read_once_but_counted_at_each_path() {
    let remote = Remote::new();
    let blob = "x: 1\n".repeat(200); // 1,000 bytes
    let mut files: Vec<(String, String)> = (0..3)
        .map(|i| (format!("services/s{i}.yaml"), blob.clone()))
        .collect();
    files.push(("modelship.yaml".into(), "a: 1".into()));
    remote.commit("main", &files);
    let cache = tempfile::tempdir().unwrap();
    let limits = RevisionLimits {
        max_files: 100,
        max_file_bytes: 2_000,
        max_total_bytes: 5_000,
        max_nodes: 1_000,
    };
    let git = source(remote.url(), cache.path(), ".").with_limits(limits);
    let (first, stats) = git.fetch_blocking_with_stats().unwrap();
    assert_eq!(
        stats,
        ReadStats {
            blobs_read: 2,
            files_reused: 0
        }
    );
    assert_eq!(first.files["services/s2.yaml"], blob.as_bytes());

    // Six paths to the same blob: 6,004 bytes counted, the revision refused as a whole,
    // through the diff from the previous read.
    for i in 3..6 {
        files.push((format!("services/s{i}.yaml"), blob.clone()));
    }
    let bomb = remote.commit("main", &files);
    let error = git.fetch_blocking_with_stats().unwrap_err();
    assert_eq!(
        error.to_string(),
        format!(
            "commit {bomb} refused: 5.9 KiB of YAML (a file counted at each of its paths), over \
             the limit of 4.9 KiB per revision; largest: services/s0.yaml (1000 bytes), \
             services/s1.yaml (1000 bytes), services/s2.yaml (1000 bytes), services/s3.yaml \
             (1000 bytes), services/s4.yaml (1000 bytes)"
        )
    );
    assert_eq!(error.metric_label(), "revision_too_large");
    assert_eq!(error.refused().map(|r| r.actual), Some(6_004));

    // A source with nothing to reuse refuses it too, and a file over the per-file limit
    // is named with its size.
    let fresh = tempfile::tempdir().unwrap();
    let error = source(remote.url(), fresh.path(), ".")
        .with_limits(limits)
        .fetch_blocking()
        .unwrap_err();
    assert_eq!(error.refused().map(|r| r.limit), Some(Limit::TotalBytes));
    let small = RevisionLimits {
        max_file_bytes: 999,
        ..limits
    };
    let error = source(remote.url(), fresh.path(), ".")
        .with_limits(small)
        .fetch_blocking()
        .unwrap_err();
    let refused = error.refused().expect("refused");
    assert_eq!(refused.limit, Limit::FileBytes);
    assert_eq!(refused.offenders.len(), 5);

    // Within the byte limits, the nodes once read: 201 in each of six files (a mapping of
    // 200 values), and two.
    let few_nodes = RevisionLimits {
        max_total_bytes: 10_000,
        max_nodes: 1_000,
        ..limits
    };
    let error = source(remote.url(), fresh.path(), ".")
        .with_limits(few_nodes)
        .fetch_blocking()
        .unwrap_err();
    let refused = error.refused().expect("refused");
    assert_eq!((refused.limit, refused.actual), (Limit::Nodes, 1_208));
}
