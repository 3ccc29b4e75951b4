//! Reading a commit's tree into a [`Snapshot`], straight from the object database, reusing
//! what the previous snapshot already read.
//!
//! ```text
//! commit ─▶ tree below --path ─▶ walk entries
//!    subtree with the object id it had in the previous read ─▶ its files copied, not read
//!    blob with the object id it had at that path             ─▶ its content copied
//!    anything else                                           ─▶ read from the odb
//! ─▶ Read { snapshot, index (object id of every tree and blob by path) }
//! ```
//!
//! Git names objects by content, so an equal id is equal content: a fetch that brings one
//! changed file reads one blob and the trees on its path, whatever the repository's size.

use std::collections::BTreeMap;
use std::path::Path;

use git2::{ObjectType, Odb, Oid, Repository, Tree};

use super::Snapshot;
use super::dir::{MAX_FILE_BYTES, is_yaml_name};
use super::git::GitError;

/// A snapshot and the object ids it was read from.
#[derive(Debug, Clone, Default)]
pub struct Read {
    pub snapshot: Snapshot,
    /// Directory prefix (`""`, `services/`, ...) to its tree id.
    trees: BTreeMap<String, Oid>,
    /// File path to its blob id.
    blobs: BTreeMap<String, Oid>,
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
/// entries and symbolic links are skipped, as in `read_dir`.
pub fn read_commit(
    repo: &Repository,
    commit: Oid,
    path: &str,
    previous: Option<&Read>,
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
        repo,
        odb: &odb,
        commit: &id,
        previous,
        read: Read::default(),
        stats: ReadStats::default(),
    };
    walk.tree(&root, "")?;
    let (mut read, stats) = (walk.read, walk.stats);
    read.snapshot.revision = id;
    Ok((read, stats))
}

struct Walk<'a, 'r> {
    repo: &'r Repository,
    odb: &'a Odb<'r>,
    commit: &'a str,
    previous: Option<&'a Read>,
    read: Read,
    stats: ReadStats,
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

    fn tree(&mut self, tree: &Tree<'_>, prefix: &str) -> Result<(), GitError> {
        if self.reuse_tree(tree.id(), prefix) {
            return Ok(());
        }
        self.read.trees.insert(prefix.to_string(), tree.id());
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
                    let child = self.repo.find_tree(entry.id()).map_err(self.read_error())?;
                    self.tree(&child, &format!("{path}/"))?;
                }
                Some(ObjectType::Blob)
                    if entry.filemode() != SYMLINK_MODE && is_yaml_name(name) =>
                {
                    self.blob(entry.id(), path)?;
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Copies every file below `prefix` from the previous read when the tree there had
    /// the same id.
    fn reuse_tree(&mut self, id: Oid, prefix: &str) -> bool {
        let Some(previous) = self.previous else {
            return false;
        };
        if previous.trees.get(prefix) != Some(&id) {
            return false;
        }
        let below = |map: &BTreeMap<String, Oid>| -> Vec<(String, Oid)> {
            map.range(prefix.to_string()..)
                .take_while(|(path, _)| path.starts_with(prefix))
                .map(|(path, id)| (path.clone(), *id))
                .collect()
        };
        self.read.trees.extend(below(&previous.trees));
        for (path, blob) in below(&previous.blobs) {
            if let Some(content) = previous.snapshot.files.get(&path) {
                self.read
                    .snapshot
                    .files
                    .insert(path.clone(), content.clone());
                self.read.blobs.insert(path, blob);
                self.stats.files_reused += 1;
            }
        }
        true
    }

    fn blob(&mut self, id: Oid, path: String) -> Result<(), GitError> {
        let reused = self
            .previous
            .filter(|p| p.blobs.get(&path) == Some(&id))
            .and_then(|p| p.snapshot.files.get(&path));
        let content = match reused {
            Some(content) => {
                self.stats.files_reused += 1;
                content.clone()
            }
            None => {
                let (size, _) = self.odb.read_header(id).map_err(self.read_error())?;
                if size as u64 > MAX_FILE_BYTES {
                    return Err(GitError::TooLarge {
                        commit: self.commit.to_string(),
                        path,
                        size,
                    });
                }
                self.stats.blobs_read += 1;
                let object = self.odb.read(id).map_err(self.read_error())?;
                object.data().to_vec()
            }
        };
        self.read.blobs.insert(path.clone(), id);
        self.read.snapshot.files.insert(path, content);
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
