//! Reading a commit's tree into a [`Snapshot`], straight from the object database, reusing
//! what the previous snapshot already read.
//!
//! ```text
//! commit ─▶ tree below --path
//!    same tree id as the previous read        ─▶ the previous files, nothing read
//!    previous read (its tree still in the odb) ─▶ previous files + diff_tree_to_tree:
//!                                                 changed and added files read, deleted
//!                                                 ones dropped
//!    no previous read                          ─▶ walk every entry, read every file
//! ─▶ Read { snapshot, root tree id }
//! ```
//!
//! Git names objects by content, and its tree diff skips subtrees whose ids are equal, so a
//! fetch that brings one changed file reads one blob and the trees on its path, whatever
//! the size of the repository. Both roads apply one rule for what a snapshot holds
//! ([`wanted`]), and both list the blobs to read first: the revision's files and sizes
//! (object headers) are checked against its [`RevisionLimits`] before any blob is read,
//! and a blob that several paths hold is read once.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use git2::{ObjectType, Odb, Oid, Repository, Tree};

use super::Snapshot;
use super::dir::is_yaml_name;
use super::git::GitError;
use super::limits::{Limit, Refused, RevisionLimits, Tally};

/// A snapshot and the tree it was read from.
#[derive(Debug, Clone)]
pub struct Read {
    pub snapshot: Snapshot,
    /// The tree below `--path`.
    root: Option<Oid>,
}

/// How much of a read was copied from the previous one (for tests and benchmarks).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReadStats {
    /// Blobs read from the object database.
    pub blobs_read: usize,
    /// Files copied from the previous read.
    pub files_reused: usize,
}

/// Reads the YAML files of `commit` below `path`; the revision is the commit id. Hidden
/// entries and symbolic links are skipped, as in `read_dir`. A revision over one of
/// `limits` is refused ([`GitError::Refused`]) before its blobs are read.
pub fn read_commit(
    repo: &Repository,
    commit: Oid,
    path: &str,
    previous: Option<&Read>,
    limits: RevisionLimits,
) -> Result<(Read, ReadStats), GitError> {
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
    let mut walk = Walk {
        odb: &odb,
        commit: &id,
        limits,
        files: BTreeMap::new(),
        pending: Vec::new(),
        blobs_read: 0,
        files_read: 0,
    };
    let previous_tree = previous.and_then(|p| Some((p, repo.find_tree(p.root?).ok()?)));
    match previous_tree {
        Some((previous, old)) => {
            walk.files = previous.snapshot.files.clone();
            if old.id() != root.id() {
                walk.diff(repo, &old, &root)?;
            }
        }
        None => walk.tree(repo, &root, "")?,
    }
    walk.read_pending()?;
    let Walk {
        files,
        blobs_read,
        files_read,
        ..
    } = walk;
    let stats = ReadStats {
        blobs_read,
        files_reused: files.len().saturating_sub(files_read),
    };
    let snapshot = Snapshot {
        revision: super::RevisionId::Commit(id),
        files,
    };
    let read = Read {
        snapshot,
        root: Some(root.id()),
    };
    Ok((read, stats))
}

/// Whether the entry at `path` (relative to the root) with `mode` belongs in a snapshot:
/// a regular file with a YAML name, below no hidden directory.
fn wanted(path: &str, mode: i32) -> bool {
    mode != SYMLINK_MODE
        && path.split('/').all(|part| !part.starts_with('.'))
        && is_yaml_name(path.rsplit('/').next().unwrap_or(path))
}

struct Walk<'a, 'r> {
    odb: &'a Odb<'r>,
    commit: &'a str,
    limits: RevisionLimits,
    /// The files read (or kept from the previous read).
    files: BTreeMap<String, Vec<u8>>,
    /// Files to read: path and blob.
    pending: Vec<(String, Oid)>,
    blobs_read: usize,
    /// Files written from blobs read (a blob may fill several paths).
    files_read: usize,
}

/// Git's file mode of a symbolic link.
const SYMLINK_MODE: i32 = 0o120000;

impl Walk<'_, '_> {
    fn read_error(&self) -> impl Fn(git2::Error) -> GitError + '_ {
        |source| GitError::Read {
            commit: self.commit.to_string(),
            source,
        }
    }

    /// Every wanted file of `tree`.
    fn tree(&mut self, repo: &Repository, tree: &Tree<'_>, prefix: &str) -> Result<(), GitError> {
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
                    let child = repo.find_tree(entry.id()).map_err(self.read_error())?;
                    self.tree(repo, &child, &format!("{path}/"))?;
                }
                Some(ObjectType::Blob) if wanted(&path, entry.filemode()) => {
                    self.blob(entry.id(), path)?;
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Applies the difference between the previous tree `old` and `new` to the files.
    fn diff(&mut self, repo: &Repository, old: &Tree<'_>, new: &Tree<'_>) -> Result<(), GitError> {
        let mut options = git2::DiffOptions::new();
        options.include_typechange(true);
        let diff = repo
            .diff_tree_to_tree(Some(old), Some(new), Some(&mut options))
            .map_err(self.read_error())?;
        for delta in diff.deltas() {
            let old_file = delta.old_file();
            if let Some(path) = old_file
                .path_bytes()
                .and_then(|p| std::str::from_utf8(p).ok())
            {
                self.files.remove(path);
            }
            let new_file = delta.new_file();
            let Some(path) = new_file
                .path_bytes()
                .and_then(|p| std::str::from_utf8(p).ok())
            else {
                continue;
            };
            let mode = i32::from(new_file.mode());
            let is_blob = matches!(
                new_file.mode(),
                git2::FileMode::Blob | git2::FileMode::BlobExecutable
            );
            if new_file.exists() && is_blob && wanted(path, mode) {
                self.blob(new_file.id(), path.to_string())?;
            }
        }
        Ok(())
    }

    /// Lists a file to read; refuses at once when there are more than the limit allows,
    /// so a tree of a million entries is not listed in memory first.
    fn blob(&mut self, id: Oid, path: String) -> Result<(), GitError> {
        if self.pending.len() >= self.limits.max_files {
            return Err(self.refused(Refused {
                limit: Limit::Files,
                max: self.limits.max_files as u64,
                actual: self.pending.len() as u64 + 1,
                offenders: Vec::new(),
            }));
        }
        self.pending.push((path, id));
        Ok(())
    }

    fn refused(&self, refused: Refused) -> GitError {
        GitError::Refused {
            commit: self.commit.to_string(),
            refused,
        }
    }

    /// Checks the files kept and listed against the limits (sizes from object headers),
    /// then reads each listed blob once, whatever the number of paths that hold it.
    fn read_pending(&mut self) -> Result<(), GitError> {
        let mut sizes: HashMap<Oid, u64> = HashMap::new();
        let mut tally = Tally::new(self.limits);
        for (path, bytes) in &self.files {
            tally
                .add(path, bytes.len() as u64)
                .map_err(|r| self.refused(r))?;
        }
        for (path, id) in &self.pending {
            let size = match sizes.get(id) {
                Some(size) => *size,
                None => {
                    let (size, _) = self.odb.read_header(*id).map_err(self.read_error())?;
                    sizes.insert(*id, size as u64);
                    size as u64
                }
            };
            tally.add(path, size).map_err(|r| self.refused(r))?;
        }
        tally.check().map_err(|r| self.refused(r))?;
        let mut pending = std::mem::take(&mut self.pending);
        pending.sort_by_key(|(_, id)| *id);
        self.files_read = pending.len();
        for group in pending.chunk_by(|a, b| a.1 == b.1) {
            let id = group[0].1;
            self.blobs_read += 1;
            let object = self.odb.read(id).map_err(self.read_error())?;
            for (path, _) in group {
                self.files.insert(path.clone(), object.data().to_vec());
            }
        }
        Ok(())
    }
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
