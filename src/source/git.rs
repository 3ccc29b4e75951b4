//! A Git source: a bare cache repository that fetches one branch (or a pull request's
//! head) and reads the tree of its commit straight from the object database (no work
//! tree).
//!
//! ```text
//! GitSource::fetch ──spawn_blocking──▶ read the credential files (git_auth)
//!                                      open or init the bare cache
//!                                      fetch +refs/heads/<branch>:refs/modelship/<branch>
//!                                      read the commit's tree below --path (git_tree),
//!                                      reusing what the previous fetch read
//!                                  ──▶ Snapshot { revision: <commit id>, files }
//! GitSource::fetch_pull_request(n) ──▶ the same for +refs/pull/<n>/head:refs/modelship/pull/<n>
//! ```
//!
//! Remotes: `https://` (token or basic auth, optionally a private CA), `ssh://` and
//! `user@host:path` (a private key, host key checked against a known_hosts file with the
//! URL's port), `file://` URLs and local paths. Credentials never appear in errors or logs.

use std::cell::RefCell;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use git2::{FetchOptions, Oid, Repository};

use super::Snapshot;
use super::ca::CaError;
use super::git_auth::{self, CredentialKind, Credentials, Rejection};
pub use super::git_auth::{GitAuth, Secret, SecretSource};
use super::git_tree::{Read, ReadStats, read_commit};
use super::known_hosts::HostKeyError;
use super::limits::{Refused, RevisionLimits};

/// Where and what to fetch.
#[derive(Debug, Clone)]
pub struct GitConfig {
    /// Remote URL or local path of the repository.
    pub url: String,
    /// Branch to follow.
    pub branch: String,
    /// Sub-directory of the repository that is the modelship root (`.` for the top).
    pub path: String,
    /// Directory of the bare cache repository (created when missing).
    pub cache_dir: PathBuf,
    pub auth: GitAuth,
    /// PEM bundle of CAs trusted (besides the system's) for HTTPS remotes.
    pub ca_file: Option<PathBuf>,
}

/// Why a fetch or a tree read failed.
#[derive(Debug, thiserror::Error)]
pub enum GitError {
    /// The bare cache repository could not be opened or created.
    #[error("git cache {path}: {source}")]
    Cache {
        path: PathBuf,
        #[source]
        source: git2::Error,
    },
    /// The cache directory could not be created.
    #[error("git cache directory {path}: {source}")]
    CacheDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Fetching the reference failed (network, missing branch, TLS).
    #[error("fetching {reference} from {url}: {message}")]
    Fetch {
        url: String,
        reference: String,
        message: String,
    },
    /// The server refused the credentials (HTTP 401, SSH key not authorized).
    #[error(
        "fetching {reference} from {url}: the server refused the credentials of user {username}"
    )]
    CredentialsRefused {
        url: String,
        reference: String,
        username: String,
    },
    /// The SSH host key of the remote is not trusted by known_hosts.
    #[error("host key of {host} is not trusted by {known_hosts}: {reason}")]
    HostKey {
        /// The host as known_hosts names it (`host`, or `[host]:port`).
        host: String,
        known_hosts: PathBuf,
        reason: HostKeyError,
    },
    /// The HTTPS certificate is trusted neither by the system nor by the CA file.
    #[error("fetching {reference} from {url}: {reason}")]
    Certificate {
        url: String,
        reference: String,
        reason: CaError,
    },
    /// A credential file (token, password, key, known_hosts, CA) could not be read.
    #[error("reading the {kind} {path}: {source}")]
    CredentialFile {
        kind: CredentialKind,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The CA file holds no usable certificate.
    #[error("CA file {path}: {reason}")]
    CaFile { path: PathBuf, reason: CaError },
    /// `--path` does not name a directory in the commit.
    #[error("commit {commit} has no directory {path}")]
    NoSuchPath { commit: String, path: String },
    /// The commit's YAML files are over a limit of [`RevisionLimits`]: the revision is
    /// refused as a whole, none of it is read.
    #[error("commit {commit} refused: {refused}")]
    Refused { commit: String, refused: Refused },
    /// Reading objects of the fetched commit failed.
    #[error("reading commit {commit}: {source}")]
    Read {
        commit: String,
        #[source]
        source: git2::Error,
    },
    /// The blocking task running git was cancelled or panicked.
    #[error("git task did not finish: {0}")]
    Task(String),
}

impl GitError {
    /// The limit the revision broke, when it was refused (rather than failed to fetch).
    pub fn refused(&self) -> Option<&Refused> {
        match self {
            GitError::Refused { refused, .. } => Some(refused),
            _ => None,
        }
    }

    /// The label of this error in metrics.
    pub fn metric_label(&self) -> &'static str {
        match self {
            GitError::Cache { .. } | GitError::CacheDir { .. } => "git_cache",
            GitError::Fetch { .. } => "git_fetch",
            GitError::CredentialsRefused { .. } => "git_credentials_refused",
            GitError::HostKey { reason, .. } => reason.metric_label(),
            GitError::Certificate { .. } => "git_certificate",
            GitError::CredentialFile { .. } | GitError::CaFile { .. } => "git_credential_file",
            GitError::NoSuchPath { .. } => "git_no_such_path",
            GitError::Refused { refused, .. } => refused.limit.metric_label(),
            GitError::Read { .. } => "git_read",
            GitError::Task(_) => "git_task",
        }
    }
}

/// The longest an asynchronous fetch may take (a first fetch of a large repository
/// included) before it is reported as failed.
pub const FETCH_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(600);

/// What to fetch: the followed branch, or the head of a pull request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target<'a> {
    Branch(&'a str),
    PullRequest(u64),
}

impl Target<'_> {
    fn remote_ref(&self) -> String {
        match self {
            Target::Branch(branch) => format!("refs/heads/{branch}"),
            Target::PullRequest(number) => format!("refs/pull/{number}/head"),
        }
    }

    fn local_ref(&self) -> String {
        match self {
            Target::Branch(branch) => format!("refs/modelship/{branch}"),
            Target::PullRequest(number) => format!("refs/modelship/pull/{number}"),
        }
    }

    fn describe(&self) -> String {
        match self {
            Target::Branch(branch) => format!("branch {branch}"),
            Target::PullRequest(number) => {
                format!("pull request {number} (refs/pull/{number}/head)")
            }
        }
    }
}

/// A followed branch of a Git repository. Clones share the last read, so the next fetch
/// reads only what changed.
#[derive(Clone)]
pub struct GitSource {
    config: GitConfig,
    shared: Arc<Shared>,
}

/// What the clones of a source share.
#[derive(Default)]
struct Shared {
    limits: RevisionLimits,
    last: Mutex<Option<Arc<Read>>>,
}

impl fmt::Debug for GitSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GitSource")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl GitSource {
    pub fn new(config: GitConfig) -> Self {
        GitSource {
            config,
            shared: Arc::default(),
        }
    }

    /// The same source, refusing revisions over `limits` instead of the defaults (and
    /// reading its next revision afresh).
    pub fn with_limits(mut self, limits: RevisionLimits) -> Self {
        self.shared = Arc::new(Shared {
            limits,
            last: Mutex::default(),
        });
        self
    }

    pub fn config(&self) -> &GitConfig {
        &self.config
    }

    /// True when `commit` is `revision` or one of its ancestors, as far as the cache knows
    /// (a commit not fetched yet is not contained). Reads the local cache only.
    pub fn contains(&self, revision: &str, commit: &str) -> Result<bool, GitError> {
        let (Ok(revision), Ok(commit)) = (Oid::from_str(revision), Oid::from_str(commit)) else {
            return Ok(false);
        };
        if revision == commit {
            return Ok(true);
        }
        let repo = open_cache(&self.config.cache_dir)?;
        Ok(repo.graph_descendant_of(revision, commit).unwrap_or(false))
    }

    /// Fetches the branch and reads its head commit, on a blocking thread.
    pub async fn fetch(&self) -> Result<Snapshot, GitError> {
        let source = self.clone();
        self.on_blocking_thread(Target::Branch(&self.config.branch), move || {
            source.fetch_blocking()
        })
        .await
    }

    /// Runs `fetch` on a blocking thread, giving up after [`FETCH_TIMEOUT`]: libssh2 has
    /// no timeout of its own, and a server that stops answering must not stop the daemon.
    /// The thread is left to finish; its result is dropped.
    async fn on_blocking_thread(
        &self,
        target: Target<'_>,
        fetch: impl FnOnce() -> Result<Snapshot, GitError> + Send + 'static,
    ) -> Result<Snapshot, GitError> {
        match tokio::time::timeout(FETCH_TIMEOUT, tokio::task::spawn_blocking(fetch)).await {
            Ok(joined) => joined.map_err(|e| GitError::Task(e.to_string()))?,
            Err(_) => Err(GitError::Fetch {
                url: redact_url(&self.config.url),
                reference: target.describe(),
                message: format!("no answer within {} s", FETCH_TIMEOUT.as_secs()),
            }),
        }
    }

    /// Fetches the branch and reads its head commit (blocking).
    pub fn fetch_blocking(&self) -> Result<Snapshot, GitError> {
        self.fetch_with_stats(Target::Branch(&self.config.branch))
            .map(|(snapshot, _)| snapshot)
    }

    /// Like [`GitSource::fetch_blocking`], also saying how much was read and how much
    /// reused from the previous fetch.
    pub fn fetch_blocking_with_stats(&self) -> Result<(Snapshot, ReadStats), GitError> {
        self.fetch_with_stats(Target::Branch(&self.config.branch))
    }

    /// Fetches `refs/pull/<number>/head` (the head of a GitHub pull request) into the
    /// cache and reads it, on a blocking thread. The followed branch's last read is reused
    /// for unchanged files and is left as it is.
    pub async fn fetch_pull_request(&self, number: u64) -> Result<Snapshot, GitError> {
        let source = self.clone();
        self.on_blocking_thread(Target::PullRequest(number), move || {
            source.fetch_pull_request_blocking(number)
        })
        .await
    }

    /// Fetches and reads the head of pull request `number` (blocking).
    pub fn fetch_pull_request_blocking(&self, number: u64) -> Result<Snapshot, GitError> {
        self.fetch_with_stats(Target::PullRequest(number))
            .map(|(snapshot, _)| snapshot)
    }

    fn fetch_with_stats(&self, target: Target<'_>) -> Result<(Snapshot, ReadStats), GitError> {
        let credentials = Credentials::load(&self.config.auth, self.config.ca_file.as_deref())?;
        let repo = open_cache(&self.config.cache_dir)?;
        let commit = self.fetch_ref(&repo, &credentials, target)?;
        let previous = self
            .shared
            .last
            .lock()
            .map(|last| last.clone())
            .unwrap_or_default();
        if let Some(previous) = &previous
            && previous.snapshot.revision.as_str() == commit.to_string()
        {
            let stats = ReadStats {
                blobs_read: 0,
                files_reused: previous.snapshot.files.len(),
            };
            return Ok((previous.snapshot.clone(), stats));
        }
        let (read, stats) = read_commit(
            &repo,
            commit,
            &self.config.path,
            previous.as_deref(),
            self.shared.limits,
        )?;
        super::limits::check_nodes(&read.snapshot.files, self.shared.limits).map_err(
            |refused| GitError::Refused {
                commit: commit.to_string(),
                refused,
            },
        )?;
        let snapshot = read.snapshot.clone();
        if matches!(target, Target::Branch(_))
            && let Ok(mut last) = self.shared.last.lock()
        {
            *last = Some(Arc::new(read));
        }
        Ok((snapshot, stats))
    }

    fn fetch_ref(
        &self,
        repo: &Repository,
        credentials: &Credentials,
        target: Target<'_>,
    ) -> Result<Oid, GitError> {
        let config = &self.config;
        let local_ref = target.local_ref();
        let refspec = format!("+{}:{local_ref}", target.remote_ref());
        let url = redact_url(&config.url);
        let fetch_error = |message: String| GitError::Fetch {
            url: url.clone(),
            reference: target.describe(),
            message,
        };
        let rejection = RefCell::new(Rejection::default());
        let mut options = FetchOptions::new();
        options.remote_callbacks(git_auth::callbacks(credentials, &config.url, &rejection));
        let mut remote = repo
            .remote_anonymous(&config.url)
            .map_err(|e| fetch_error(e.message().to_string()))?;
        let fetched = remote.fetch(&[refspec.as_str()], Some(&mut options), None);
        drop(remote);
        drop(options);
        let rejection = rejection.into_inner();
        if let Some(error) = rejection.host_key {
            return Err(error);
        }
        if let Err(error) = fetched {
            if rejection.credentials_refused {
                return Err(GitError::CredentialsRefused {
                    url,
                    reference: target.describe(),
                    username: username(&config.auth),
                });
            }
            // The CA file's verdict explains a TLS failure only; a certificate the system
            // store accepted may have failed it without harm.
            let tls_failure = error.class() == git2::ErrorClass::Ssl
                || error.code() == git2::ErrorCode::Certificate;
            if let Some(reason) = rejection.certificate.filter(|_| tls_failure) {
                return Err(GitError::Certificate {
                    url,
                    reference: target.describe(),
                    reason,
                });
            }
            let mut message = error.message().to_string();
            if tls_failure && config.ca_file.is_none() {
                message.push_str(
                    " (for a server whose certificate a private CA signed, pass the CA with --git-ca-file)",
                );
            }
            return Err(fetch_error(message));
        }
        repo.refname_to_id(&local_ref)
            .map_err(|e| fetch_error(e.message().to_string()))
    }
}

fn username(auth: &GitAuth) -> String {
    match auth {
        GitAuth::Anonymous => "(none)".into(),
        GitAuth::Basic { username, .. } | GitAuth::Ssh { username, .. } => username.clone(),
    }
}

fn open_cache(path: &Path) -> Result<Repository, GitError> {
    let cache_error = |source| GitError::Cache {
        path: path.to_path_buf(),
        source,
    };
    if path.join("HEAD").is_file() {
        Repository::open_bare(path).map_err(cache_error)
    } else {
        std::fs::create_dir_all(path).map_err(|source| GitError::CacheDir {
            path: path.to_path_buf(),
            source,
        })?;
        Repository::init_bare(path).map_err(cache_error)
    }
}

/// The URL without a `user:password@` part, for messages.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{scheme}://***@{}", &rest[at + 1..]),
        None => url.to_string(),
    }
}

/// True when `path` is a Git repository (bare or with a work tree) rather than a plain
/// directory.
pub fn is_repository(path: &Path) -> bool {
    Repository::open(path).is_ok()
}

#[cfg(test)]
#[path = "git_tests.rs"]
mod tests;
