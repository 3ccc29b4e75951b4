//! Sources of repository snapshots: a local directory (read once, or followed with a file
//! watch), a Git branch fetched into a bare cache, and the webhook check that tells the
//! daemon to fetch now.
//!
//! A snapshot is the set of YAML files of a repository root, keyed by their path relative
//! to the root with `/` separators, plus a revision. The pure core (`spec::load`) reads
//! only the files, so the same code serves a local directory, a git tree and pull-request
//! content.
//!
//! ```text
//! --repo URL | bare repo | git work tree ──▶ GitSource   (revision: commit id)
//!     git_auth (credential files read at each fetch, host key and CA checks)
//!     known_hosts, ca, git_tree (commit tree to files, reusing the previous read)
//! --repo DIR (not a git repository)      ──▶ LocalSource (revision: local-<content hash>)
//! ```

pub mod ca;
pub mod dir;
pub mod git;
pub mod git_auth;
pub mod git_tree;
pub mod known_hosts;
pub mod local;
pub mod webhook;

use std::collections::BTreeMap;

pub use dir::{DirError, read_dir};
pub use git::{GitAuth, GitConfig, GitError, GitSource, Secret, SecretSource};
pub use git_tree::ReadStats;
pub use local::{LocalError, LocalSource};

/// The YAML files of a repository at one revision.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// Commit id for Git, `local-<hash of the content>` for a directory.
    pub revision: String,
    /// Path relative to the root (`/` separators) to file content.
    pub files: BTreeMap<String, Vec<u8>>,
}

/// Why a source could not give a snapshot.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The Git source failed.
    #[error(transparent)]
    Git(#[from] GitError),
    /// The local directory source failed.
    #[error(transparent)]
    Local(#[from] LocalError),
}

impl SourceError {
    /// The label of this error in metrics.
    pub fn metric_label(&self) -> &'static str {
        match self {
            SourceError::Git(e) => e.metric_label(),
            SourceError::Local(e) => e.metric_label(),
        }
    }
}

/// A followed repository.
#[derive(Debug, Clone)]
pub enum Source {
    Git(GitSource),
    Local(LocalSource),
}

impl Source {
    /// The current snapshot (for Git: after fetching the branch).
    pub async fn fetch(&self) -> Result<Snapshot, SourceError> {
        match self {
            Source::Git(git) => Ok(git.fetch().await?),
            Source::Local(local) => Ok(local.fetch().await?),
        }
    }

    /// `kind` label of source metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Source::Git(_) => "git",
            Source::Local(_) => "local",
        }
    }

    /// The repository named in `modelship.dev/source` annotations (credentials removed).
    pub fn repo_name(&self) -> Option<String> {
        match self {
            Source::Git(git) => Some(git::redact_url(&git.config().url)),
            Source::Local(_) => None,
        }
    }
}
