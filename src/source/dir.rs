//! Reads the YAML files of a local directory into a snapshot, within the default
//! [`RevisionLimits`]: the files are listed with their sizes first and read only when the
//! directory is within every limit.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use super::limits::{Refused, RevisionLimits, Tally};

/// Largest YAML file read; larger files are refused rather than loaded into memory.
pub const MAX_FILE_BYTES: u64 = 4 * 1024 * 1024;

/// Why a directory could not be read.
#[derive(Debug, thiserror::Error)]
pub enum DirError {
    /// The root is missing or not a directory.
    #[error("{0}: not a directory")]
    NotADirectory(PathBuf),
    /// A file or directory could not be read.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A YAML file is larger than [`MAX_FILE_BYTES`].
    #[error("{path}: file is {size} bytes, larger than the {MAX_FILE_BYTES}-byte limit")]
    TooLarge { path: PathBuf, size: u64 },
    /// The directory's YAML files are too many or too large together.
    #[error("{root}: refused: {refused}")]
    Refused { root: PathBuf, refused: Refused },
}

impl DirError {
    /// A short, stable name for the cause, as a metric label.
    pub fn metric_label(&self) -> &'static str {
        match self {
            DirError::NotADirectory(_) => "dir_not_a_directory",
            DirError::Io { .. } => "dir_io",
            DirError::TooLarge { .. } => "dir_file_too_large",
            DirError::Refused { refused, .. } => refused.limit.metric_label(),
        }
    }

    /// Whether the directory was refused for a limit (rather than failed to be read).
    pub fn is_refused(&self) -> bool {
        matches!(self, DirError::TooLarge { .. } | DirError::Refused { .. })
    }
}

/// Reads every `*.yaml` and `*.yml` file below `root`, skipping hidden entries (`.git`,
/// `.github`, ...). Symbolic links are not followed, so a snapshot never reaches outside
/// its root. A file over [`MAX_FILE_BYTES`] is [`DirError::TooLarge`]; files too many or
/// too large together are [`DirError::Refused`] by the default [`RevisionLimits`].
pub fn read_dir(root: &Path) -> Result<BTreeMap<String, Vec<u8>>, DirError> {
    read_dir_within(root, RevisionLimits::default())
}

/// [`read_dir`] within `limits` (the per-file limit is always [`MAX_FILE_BYTES`] at most).
pub fn read_dir_within(
    root: &Path,
    limits: RevisionLimits,
) -> Result<BTreeMap<String, Vec<u8>>, DirError> {
    let listed = list(root, limits.max_file_bytes.min(MAX_FILE_BYTES), limits)?;
    let mut tally = Tally::new(limits);
    for (path, size) in &listed {
        let key = relative_key(root, path);
        tally
            .add(&key, *size)
            .map_err(|refused| DirError::Refused {
                root: root.to_path_buf(),
                refused,
            })?;
    }
    tally.check().map_err(|refused| DirError::Refused {
        root: root.to_path_buf(),
        refused,
    })?;
    let mut files = BTreeMap::new();
    for (path, _) in listed {
        let bytes = fs::read(&path).map_err(|source| DirError::Io {
            path: path.clone(),
            source,
        })?;
        files.insert(relative_key(root, &path), bytes);
    }
    super::limits::check_nodes(&files, limits).map_err(|refused| DirError::Refused {
        root: root.to_path_buf(),
        refused,
    })?;
    Ok(files)
}

/// The YAML files below `root` and their sizes; refuses a file over `max_file_bytes` and
/// stops listing past `limits.max_files`.
fn list(
    root: &Path,
    max_file_bytes: u64,
    limits: RevisionLimits,
) -> Result<Vec<(PathBuf, u64)>, DirError> {
    if !root.is_dir() {
        return Err(DirError::NotADirectory(root.to_path_buf()));
    }
    let mut files = Vec::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let entries = fs::read_dir(&dir).map_err(|source| DirError::Io {
            path: dir.clone(),
            source,
        })?;
        for entry in entries {
            let entry = entry.map_err(|source| DirError::Io {
                path: dir.clone(),
                source,
            })?;
            let path = entry.path();
            let name = entry.file_name();
            if name.to_string_lossy().starts_with('.') {
                continue;
            }
            let file_type = entry.file_type().map_err(|source| DirError::Io {
                path: path.clone(),
                source,
            })?;
            if file_type.is_dir() {
                pending.push(path);
            } else if file_type.is_file() && is_yaml(&path) {
                let size = entry
                    .metadata()
                    .map_err(|source| DirError::Io {
                        path: path.clone(),
                        source,
                    })?
                    .len();
                if size > max_file_bytes {
                    return Err(DirError::TooLarge { path, size });
                }
                files.push((path, size));
                if files.len() > limits.max_files {
                    // The tally refuses them; listing more would only cost memory.
                    return Ok(files);
                }
            }
        }
    }
    Ok(files)
}

fn is_yaml(path: &Path) -> bool {
    path.file_name()
        .and_then(|name| name.to_str())
        .is_some_and(is_yaml_name)
}

/// Whether a file name is one a snapshot holds (`*.yaml`, `*.yml`), in every source.
pub(super) fn is_yaml_name(name: &str) -> bool {
    name.ends_with(".yaml") || name.ends_with(".yml")
}

/// `root/services/a.yaml` -> `services/a.yaml`, always with `/` separators.
fn relative_key(root: &Path, path: &Path) -> String {
    let relative = path.strip_prefix(root).unwrap_or(path);
    relative
        .components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_yaml_files_with_relative_keys_and_skips_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::create_dir_all(root.join("services/team")).unwrap();
        fs::create_dir_all(root.join(".git")).unwrap();
        fs::write(root.join("modelship.yaml"), "a: 1").unwrap();
        fs::write(root.join("services/team/x.yml"), "b: 2").unwrap();
        fs::write(root.join("services/readme.md"), "# no").unwrap();
        fs::write(root.join(".git/config.yaml"), "hidden").unwrap();

        let files = read_dir(root).unwrap();
        let keys: Vec<_> = files.keys().cloned().collect();
        assert_eq!(keys, ["modelship.yaml", "services/team/x.yml"]);
        assert_eq!(files["services/team/x.yml"], b"b: 2");
    }

    #[test]
    fn a_missing_root_is_an_error_naming_it() {
        let err = read_dir(Path::new("/definitely/not/here")).unwrap_err();
        assert!(err.to_string().starts_with("/definitely/not/here"), "{err}");
    }

    #[test]
    fn oversized_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let big = vec![b'#'; (MAX_FILE_BYTES + 1) as usize];
        fs::write(dir.path().join("big.yaml"), big).unwrap();
        assert!(matches!(
            read_dir(dir.path()),
            Err(DirError::TooLarge { .. })
        ));
    }

    #[test]
    fn files_too_many_or_too_large_together_are_refused_naming_the_largest() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("a.yaml"), "a: 1\n".repeat(20)).unwrap();
        fs::write(dir.path().join("b.yaml"), "b: 1\n").unwrap();
        let limits = RevisionLimits {
            max_files: 1,
            max_file_bytes: 1000,
            max_total_bytes: 50,
            max_nodes: 1_000,
        };
        let err = read_dir_within(dir.path(), limits).unwrap_err();
        assert!(
            err.to_string()
                .ends_with("more than 1 YAML files: the limit is 1 files"),
            "{err}"
        );
        let limits = RevisionLimits {
            max_files: 2,
            ..limits
        };
        let err = read_dir_within(dir.path(), limits).unwrap_err();
        assert!(
            err.to_string().ends_with(
                "refused: 105 bytes of YAML (a file counted at each of its paths), over the \
                 limit of 50 bytes per revision; largest: a.yaml (100 bytes), b.yaml (5 bytes)"
            ),
            "{err}"
        );
        assert_eq!(err.metric_label(), "revision_too_large");
    }
}
