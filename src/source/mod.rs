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
//!
//! Both check a revision against [`limits::RevisionLimits`] before reading its files: a
//! revision over a limit is refused whole ([`SourceError::is_refused`]) and the daemon keeps
//! the last good one.

pub mod ca;
pub mod dir;
pub mod git;
pub mod git_auth;
pub mod git_tree;
pub mod known_hosts;
pub mod limits;
pub mod local;
pub mod webhook;

use std::collections::BTreeMap;

pub use dir::{DirError, read_dir};
pub use git::{GitAuth, GitConfig, GitError, GitSource, Secret, SecretSource};
pub use git_tree::ReadStats;
pub use limits::{Limit, Refused, RevisionLimits};
pub use local::{LocalError, LocalSource};

/// The revision of a snapshot: the commit of a Git snapshot, or `local-` and a hash of a
/// directory's content (the same files give the same revision). Shown as that text.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RevisionId {
    /// A Git commit id.
    Commit(String),
    /// `local-<hash>` of the content of a directory ([`local::content_revision`]).
    Local(String),
}

impl RevisionId {
    /// The commit, for a Git revision.
    pub fn commit(&self) -> Option<&str> {
        match self {
            RevisionId::Commit(commit) => Some(commit),
            _ => None,
        }
    }

    /// The revision as text: the commit id, or `local-<hash>`.
    pub fn as_str(&self) -> &str {
        match self {
            RevisionId::Commit(text) | RevisionId::Local(text) => text,
        }
    }
}

/// A revision equals its text: `snapshot.revision == commit.to_string()`.
impl PartialEq<String> for RevisionId {
    fn eq(&self, other: &String) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<str> for RevisionId {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl std::fmt::Display for RevisionId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The YAML files of a repository at one revision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    pub revision: RevisionId,
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

    /// Whether the source refused the revision for a limit (rather than failed to read it).
    pub fn is_refused(&self) -> bool {
        match self {
            SourceError::Git(e) => e.refused().is_some(),
            SourceError::Local(LocalError::Read(e)) => e.is_refused(),
            SourceError::Local(_) => false,
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
