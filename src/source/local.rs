//! A local directory source: the directory read into a snapshot whose revision is a hash
//! of its content, and a debounced watch that says when to read it again.
//!
//! ```text
//! notify (inotify, ...) ──debouncer (DEBOUNCE)──▶ Notify ──▶ the daemon fetches again
//! LocalSource::fetch ──▶ read_dir ──▶ Snapshot { revision: "local-<sha256/12>", files }
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use notify::RecursiveMode;
use notify_debouncer_full::{DebounceEventResult, Debouncer, RecommendedCache, new_debouncer};
use sha2::{Digest, Sha256};
use tokio::sync::Notify;

use super::Snapshot;
use super::dir::{DirError, read_dir};

/// How long a burst of file events is collected before one re-read.
pub const DEBOUNCE: Duration = Duration::from_millis(200);

/// Why the directory could not be read or watched.
#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    /// Reading the directory failed.
    #[error(transparent)]
    Read(#[from] DirError),
    /// The file watch could not be set up.
    #[error("watching {path}: {source}")]
    Watch {
        path: PathBuf,
        #[source]
        source: notify::Error,
    },
    /// The blocking read was cancelled or panicked.
    #[error("directory read did not finish: {0}")]
    Task(String),
}

impl LocalError {
    /// The label of this error in metrics.
    pub fn metric_label(&self) -> &'static str {
        match self {
            LocalError::Read(_) => "local_read",
            LocalError::Watch { .. } => "local_watch",
            LocalError::Task(_) => "local_task",
        }
    }
}

/// A local directory followed by content.
#[derive(Debug, Clone)]
pub struct LocalSource {
    root: PathBuf,
}

impl LocalSource {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        LocalSource { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Reads the directory on a blocking thread.
    pub async fn fetch(&self) -> Result<Snapshot, LocalError> {
        let root = self.root.clone();
        tokio::task::spawn_blocking(move || {
            let files = read_dir(&root)?;
            Ok(Snapshot {
                revision: content_revision(&files),
                files,
            })
        })
        .await
        .map_err(|e| LocalError::Task(e.to_string()))?
    }

    /// Watches the directory recursively; `changed` is notified (at most once per
    /// [`DEBOUNCE`]) after files change. The watch lasts as long as the returned guard.
    pub fn watch(&self, changed: Arc<Notify>) -> Result<LocalWatch, LocalError> {
        let watch_error = |source| LocalError::Watch {
            path: self.root.clone(),
            source,
        };
        let mut debouncer = new_debouncer(DEBOUNCE, None, move |result: DebounceEventResult| {
            if matches!(&result, Ok(events) if !events.is_empty()) || result.is_err() {
                changed.notify_one();
            }
        })
        .map_err(watch_error)?;
        debouncer
            .watch(&self.root, RecursiveMode::Recursive)
            .map_err(watch_error)?;
        Ok(LocalWatch {
            _debouncer: debouncer,
        })
    }
}

/// Keeps a directory watch alive; dropping it stops the watch.
pub struct LocalWatch {
    _debouncer: Debouncer<notify::RecommendedWatcher, RecommendedCache>,
}

impl std::fmt::Debug for LocalWatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LocalWatch")
    }
}

/// `local-` and the first 12 hex digits of a sha256 over every path and content: the same
/// files give the same revision, any change gives another.
pub fn content_revision(files: &BTreeMap<String, Vec<u8>>) -> super::RevisionId {
    let mut hasher = Sha256::new();
    for (path, bytes) in files {
        hasher.update((path.len() as u64).to_le_bytes());
        hasher.update(path.as_bytes());
        hasher.update((bytes.len() as u64).to_le_bytes());
        hasher.update(bytes);
    }
    let digest = hasher.finalize();
    let hex: String = digest.iter().take(6).map(|b| format!("{b:02x}")).collect();
    super::RevisionId::Local(format!("local-{hex}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(entries: &[(&str, &str)]) -> BTreeMap<String, Vec<u8>> {
        entries
            .iter()
            .map(|(p, c)| (p.to_string(), c.as_bytes().to_vec()))
            .collect()
    }

    #[test]
    fn the_revision_follows_paths_and_content() {
        let a = content_revision(&files(&[("a.yaml", "x: 1")]));
        assert_eq!(a, content_revision(&files(&[("a.yaml", "x: 1")])));
        assert!(
            a.as_str().starts_with("local-") && a.as_str().len() == "local-".len() + 12,
            "{a}"
        );
        assert_eq!(a.commit(), None);
        assert_ne!(a, content_revision(&files(&[("a.yaml", "x: 2")])));
        assert_ne!(a, content_revision(&files(&[("b.yaml", "x: 1")])));
        // Moving bytes between path and content is another snapshot.
        assert_ne!(
            content_revision(&files(&[("ab", "c")])),
            content_revision(&files(&[("a", "bc")]))
        );
    }

    #[tokio::test]
    async fn an_edit_is_noticed_and_changes_the_revision() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.yaml"), "x: 1").unwrap();
        let source = LocalSource::new(dir.path());
        let before = source.fetch().await.unwrap();
        let changed = Arc::new(Notify::new());
        let _watch = source.watch(changed.clone()).unwrap();

        std::fs::write(dir.path().join("a.yaml"), "x: 2").unwrap();
        tokio::time::timeout(Duration::from_secs(10), changed.notified())
            .await
            .expect("no change notification within 10s");
        let after = source.fetch().await.unwrap();
        assert_ne!(before.revision, after.revision);
        assert_eq!(after.files["a.yaml"], b"x: 2");
    }
}
