//! A bare "remote" repository in a temporary directory, written with git2 only (no git
//! binary): commits of exact file sets on any branch, force pushes and other references.
//! Shared by the Git source's unit tests (`src/source/git_tests.rs`), the server tests and
//! the fetch benchmark.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::PathBuf;

use git2::{Oid, Repository, Signature};

/// The repository `models.git` in a temporary directory of its own (the directory a
/// server serves).
pub struct Remote {
    pub dir: tempfile::TempDir,
    pub path: PathBuf,
    pub repo: Repository,
}

impl Remote {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("models.git");
        let repo = Repository::init_bare(&path).unwrap();
        Remote { dir, path, repo }
    }

    /// An existing repository (kept where it is; `dir` is an unused temporary directory).
    pub fn open(repo: Repository) -> Self {
        let path = repo.path().to_path_buf();
        let dir = tempfile::tempdir().unwrap();
        Remote { dir, path, repo }
    }

    /// Commits exactly `files` (path -> content) on `branch`; returns the commit id.
    pub fn commit<P: AsRef<str>, C: AsRef<str>>(&self, branch: &str, files: &[(P, C)]) -> Oid {
        let files: Vec<(&str, &[u8])> = files
            .iter()
            .map(|(p, c)| (p.as_ref(), c.as_ref().as_bytes()))
            .collect();
        let tree = self.tree(&files);
        self.commit_tree(branch, tree, "change")
    }

    /// Commits `tree` on top of `branch`.
    pub fn commit_tree(&self, branch: &str, tree: Oid, message: &str) -> Oid {
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
                message,
                &tree,
                &parents,
            )
            .unwrap()
    }

    /// The tree of exactly `files`, written to the object database.
    pub fn tree(&self, files: &[(&str, &[u8])]) -> Oid {
        let mut here = BTreeMap::new();
        let mut below: BTreeMap<&str, Vec<(&str, &[u8])>> = BTreeMap::new();
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
            let blob = self.repo.blob(content).unwrap();
            builder.insert(name, blob, 0o100644).unwrap();
        }
        for (dir, files) in below {
            let child = self.tree(&files);
            builder.insert(dir, child, 0o040000).unwrap();
        }
        builder.write().unwrap()
    }

    /// Points `reference` (`refs/heads/main`, `refs/pull/7/head`) at `commit`, as a force
    /// push or a forge does.
    pub fn set_ref(&self, reference: &str, commit: Oid) {
        self.repo
            .reference(reference, commit, true, "test")
            .unwrap();
    }

    /// The path of the repository, as a local URL.
    pub fn url(&self) -> String {
        self.path.display().to_string()
    }
}
