use std::collections::BTreeMap;

use git2::{Oid, Repository, Signature};

use super::*;

/// A bare "remote" repository in a temporary directory, written with git2 only.
pub(crate) struct Remote {
    pub dir: tempfile::TempDir,
    pub repo: Repository,
}

impl Remote {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repository::init_bare(dir.path()).unwrap();
        Remote { dir, repo }
    }

    /// Commits exactly `files` (path -> content) on `branch`; returns the commit id.
    pub fn commit(&self, branch: &str, files: &[(&str, &str)]) -> Oid {
        let tree = self.tree(files);
        let tree = self.repo.find_tree(tree).unwrap();
        let signature = Signature::now("modelship test", "test@example.com").unwrap();
        let reference = format!("refs/heads/{branch}");
        let parent = self
            .repo
            .refname_to_id(&reference)
            .ok()
            .map(|id| self.repo.find_commit(id).unwrap());
        let parents: Vec<_> = parent.iter().collect();
        self.repo
            .commit(
                Some(&reference),
                &signature,
                &signature,
                "change",
                &tree,
                &parents,
            )
            .unwrap()
    }

    fn tree(&self, files: &[(&str, &str)]) -> Oid {
        let mut here = BTreeMap::new();
        let mut below: BTreeMap<&str, Vec<(&str, &str)>> = BTreeMap::new();
        for (path, content) in files {
            match path.split_once('/') {
                Some((dir, rest)) => below.entry(dir).or_default().push((rest, content)),
                None => {
                    here.insert(*path, *content);
                }
            }
        }
        let mut builder = self.repo.treebuilder(None).unwrap();
        for (name, content) in here {
            let blob = self.repo.blob(content.as_bytes()).unwrap();
            builder.insert(name, blob, 0o100644).unwrap();
        }
        for (dir, files) in below {
            let child = self.tree(&files);
            builder.insert(dir, child, 0o040000).unwrap();
        }
        builder.write().unwrap()
    }

    pub fn url(&self) -> String {
        self.dir.path().display().to_string()
    }
}

fn source(url: String, cache: &std::path::Path, path: &str) -> GitSource {
    GitSource::new(GitConfig {
        url,
        branch: "main".into(),
        path: path.into(),
        cache_dir: cache.join("cache"),
        auth: GitAuth::Anonymous,
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
    assert_eq!(snapshot.revision, commit.to_string());
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
    assert_eq!(second.revision, second_commit.to_string());
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
    assert!(matches!(&error, GitError::Fetch { branch, .. } if branch == "release"));
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
        password: Secret::new("hunter2\n"),
    };
    assert!(!format!("{auth:?}").contains("hunter2"));
    if let GitAuth::Basic { password, .. } = &auth {
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
    assert!(matches!(error, GitError::CredentialFile { .. }), "{error}");
}

#[test]
fn plain_directories_are_not_repositories() {
    let remote = Remote::new();
    let plain = tempfile::tempdir().unwrap();
    assert!(is_repository(remote.dir.path()));
    assert!(!is_repository(plain.path()));
}
