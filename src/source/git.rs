//! A Git source: a bare cache repository that fetches one branch and reads the tree of its
//! head commit straight from the object database (no work tree).
//!
//! ```text
//! GitSource::fetch ──spawn_blocking──▶ open or init the bare cache
//!                                      fetch +refs/heads/<branch>:refs/modelship/<branch>
//!                                      read the commit's tree below --path
//!                                  ──▶ Snapshot { revision: <commit id>, files }
//! ```
//!
//! Remotes: `https://` (token or basic auth), `ssh://` and `user@host:path` (a private
//! key, host key checked against a known_hosts file), `file://` URLs and local paths.
//! Credentials are [`Secret`]s: their `Debug` form never shows the value, and no error or
//! log line carries them.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use git2::{
    CertificateCheckStatus, Cred, CredentialType, FetchOptions, ObjectType, Oid, RemoteCallbacks,
    Repository, Tree,
};

use super::Snapshot;
use super::dir::{MAX_FILE_BYTES, is_yaml_name};
use super::known_hosts::KnownHosts;

/// A credential value read from the environment or a mounted Secret file.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value; surrounding whitespace (a trailing newline of a file) is dropped.
    pub fn new(value: &str) -> Self {
        Secret(value.trim().to_string())
    }

    /// The value, for the one place that hands it to libgit2 or HMAC.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// How to authenticate to the remote.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum GitAuth {
    /// No credentials (public remotes, local repositories).
    #[default]
    Anonymous,
    /// HTTPS basic auth; a token is a password with any user name
    /// (`x-access-token` by default, as GitHub expects).
    Basic { username: String, password: Secret },
    /// An SSH private key; the server's host key must be in `known_hosts`.
    Ssh {
        username: String,
        private_key: PathBuf,
        known_hosts: PathBuf,
    },
}

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
    /// Fetching the branch failed (network, authentication, host key, missing branch).
    #[error("fetching branch {branch} from {url}: {message}")]
    Fetch {
        url: String,
        branch: String,
        message: String,
    },
    /// The SSH host key of the remote is not in known_hosts, or differs from it.
    #[error("host key of {host} is not trusted: {reason}")]
    HostKey { host: String, reason: String },
    /// The known_hosts or private key file could not be read.
    #[error("{path}: {source}")]
    CredentialFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// `--path` does not name a directory in the commit.
    #[error("commit {commit} has no directory {path}")]
    NoSuchPath { commit: String, path: String },
    /// A YAML file in the tree exceeds [`MAX_FILE_BYTES`].
    #[error(
        "{path} at commit {commit} is {size} bytes, larger than the {MAX_FILE_BYTES}-byte limit"
    )]
    TooLarge {
        commit: String,
        path: String,
        size: usize,
    },
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
    /// The label of this error in metrics.
    pub fn metric_label(&self) -> &'static str {
        match self {
            GitError::Cache { .. } | GitError::CacheDir { .. } => "git_cache",
            GitError::Fetch { .. } => "git_fetch",
            GitError::HostKey { .. } => "git_host_key",
            GitError::CredentialFile { .. } => "git_credential_file",
            GitError::NoSuchPath { .. } => "git_no_such_path",
            GitError::TooLarge { .. } => "git_file_too_large",
            GitError::Read { .. } => "git_read",
            GitError::Task(_) => "git_task",
        }
    }
}

/// A followed branch of a Git repository.
#[derive(Debug, Clone)]
pub struct GitSource {
    config: GitConfig,
}

impl GitSource {
    pub fn new(config: GitConfig) -> Self {
        GitSource { config }
    }

    pub fn config(&self) -> &GitConfig {
        &self.config
    }

    /// Fetches the branch and reads its head commit, on a blocking thread.
    pub async fn fetch(&self) -> Result<Snapshot, GitError> {
        let source = self.clone();
        tokio::task::spawn_blocking(move || source.fetch_blocking())
            .await
            .map_err(|e| GitError::Task(e.to_string()))?
    }

    /// Fetches the branch and reads its head commit (blocking).
    pub fn fetch_blocking(&self) -> Result<Snapshot, GitError> {
        let repo = open_cache(&self.config.cache_dir)?;
        let commit = self.fetch_head(&repo)?;
        read_commit(&repo, commit, &self.config.path)
    }

    fn fetch_head(&self, repo: &Repository) -> Result<Oid, GitError> {
        let config = &self.config;
        let local_ref = format!("refs/modelship/{}", config.branch);
        let refspec = format!("+refs/heads/{}:{local_ref}", config.branch);
        let fetch_error = |message: String| GitError::Fetch {
            url: redact_url(&config.url),
            branch: config.branch.clone(),
            message,
        };
        let known_hosts = match &config.auth {
            GitAuth::Ssh { known_hosts, .. } => Some(KnownHosts::read(known_hosts)?),
            _ => None,
        };
        let host_key_error = std::cell::RefCell::new(None);
        let mut callbacks = RemoteCallbacks::new();
        callbacks.credentials(credentials(&config.auth));
        if let Some(known_hosts) = &known_hosts {
            callbacks.certificate_check(|cert, host| {
                let Some(hostkey) = cert.as_hostkey() else {
                    return Ok(CertificateCheckStatus::CertificatePassthrough);
                };
                let key = hostkey.hostkey().unwrap_or_default();
                match known_hosts.check(host, key) {
                    Ok(()) => Ok(CertificateCheckStatus::CertificateOk),
                    Err(reason) => {
                        *host_key_error.borrow_mut() = Some(GitError::HostKey {
                            host: host.to_string(),
                            reason: reason.to_string(),
                        });
                        Err(git2::Error::from_str("untrusted host key"))
                    }
                }
            });
        }
        let mut options = FetchOptions::new();
        options.remote_callbacks(callbacks);
        let mut remote = repo
            .remote_anonymous(&config.url)
            .map_err(|e| fetch_error(e.message().to_string()))?;
        let fetched = remote.fetch(&[refspec.as_str()], Some(&mut options), None);
        drop(remote);
        drop(options);
        if let Some(error) = host_key_error.into_inner() {
            return Err(error);
        }
        fetched.map_err(|e| fetch_error(e.message().to_string()))?;
        repo.refname_to_id(&local_ref)
            .map_err(|e| fetch_error(e.message().to_string()))
    }
}

/// A credentials callback that answers each kind of request once: libgit2 asks again after
/// a rejected credential, and answering forever would loop instead of failing.
fn credentials(
    auth: &GitAuth,
) -> impl FnMut(&str, Option<&str>, CredentialType) -> Result<Cred, git2::Error> + '_ {
    let mut attempts = 0u32;
    move |_url, username_from_url, allowed| {
        attempts += 1;
        if attempts > 1 {
            return Err(git2::Error::from_str("credentials rejected"));
        }
        match auth {
            GitAuth::Basic { username, password }
                if allowed.contains(CredentialType::USER_PASS_PLAINTEXT) =>
            {
                Cred::userpass_plaintext(username, password.expose())
            }
            GitAuth::Ssh {
                username,
                private_key,
                ..
            } if allowed.contains(CredentialType::SSH_KEY) => {
                let user = username_from_url.unwrap_or(username);
                Cred::ssh_key(user, None, private_key, None)
            }
            GitAuth::Ssh { username, .. } if allowed.contains(CredentialType::USERNAME) => {
                Cred::username(username_from_url.unwrap_or(username))
            }
            _ if allowed.contains(CredentialType::DEFAULT) => Cred::default(),
            _ => Err(git2::Error::from_str("no credentials configured")),
        }
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

/// Reads the YAML files of `commit` below `path` into a snapshot whose revision is the
/// commit id. Hidden entries and symbolic links are skipped, as in `read_dir`.
pub fn read_commit(repo: &Repository, commit: Oid, path: &str) -> Result<Snapshot, GitError> {
    let id = commit.to_string();
    let read_error = |source| GitError::Read {
        commit: id.clone(),
        source,
    };
    let tree = repo
        .find_commit(commit)
        .and_then(|c| c.tree())
        .map_err(read_error)?;
    let root = subtree(repo, &tree, path, &id)?;
    let odb = repo.odb().map_err(read_error)?;
    let mut files = BTreeMap::new();
    collect(repo, &odb, &root, "", &id, &mut files)?;
    Ok(Snapshot {
        revision: id,
        files,
    })
}

fn subtree<'r>(
    repo: &'r Repository,
    tree: &Tree<'r>,
    path: &str,
    commit: &str,
) -> Result<Tree<'r>, GitError> {
    let trimmed = path.trim_matches('/');
    if trimmed.is_empty() || trimmed == "." {
        return Ok(tree.clone());
    }
    let no_such_path = || GitError::NoSuchPath {
        commit: commit.to_string(),
        path: path.to_string(),
    };
    let entry = tree
        .get_path(Path::new(trimmed))
        .map_err(|_| no_such_path())?;
    if entry.kind() != Some(ObjectType::Tree) {
        return Err(no_such_path());
    }
    repo.find_tree(entry.id()).map_err(|source| GitError::Read {
        commit: commit.to_string(),
        source,
    })
}

/// Git's file mode of a symbolic link.
const SYMLINK_MODE: i32 = 0o120000;

fn collect(
    repo: &Repository,
    odb: &git2::Odb<'_>,
    tree: &Tree<'_>,
    prefix: &str,
    commit: &str,
    files: &mut BTreeMap<String, Vec<u8>>,
) -> Result<(), GitError> {
    let read_error = |source| GitError::Read {
        commit: commit.to_string(),
        source,
    };
    for entry in tree.iter() {
        // Names that are not UTF-8 cannot be YAML files modelship reads.
        let Ok(name) = std::str::from_utf8(entry.name_bytes()) else {
            continue;
        };
        if name.starts_with('.') {
            continue;
        }
        let path = format!("{prefix}{name}");
        match entry.kind() {
            Some(ObjectType::Tree) => {
                let child = repo.find_tree(entry.id()).map_err(read_error)?;
                collect(repo, odb, &child, &format!("{path}/"), commit, files)?;
            }
            Some(ObjectType::Blob) if entry.filemode() != SYMLINK_MODE && is_yaml_name(name) => {
                let (size, _) = odb.read_header(entry.id()).map_err(read_error)?;
                if size as u64 > MAX_FILE_BYTES {
                    return Err(GitError::TooLarge {
                        commit: commit.to_string(),
                        path,
                        size,
                    });
                }
                let blob = repo.find_blob(entry.id()).map_err(read_error)?;
                files.insert(path, blob.content().to_vec());
            }
            _ => {}
        }
    }
    Ok(())
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
