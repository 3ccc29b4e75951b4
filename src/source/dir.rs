//! Reads the YAML files of a local directory into a snapshot.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

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
}

impl DirError {
    /// A short, stable name for the cause, as a metric label.
    pub fn metric_label(&self) -> &'static str {
        match self {
            DirError::NotADirectory(_) => "dir_not_a_directory",
            DirError::Io { .. } => "dir_io",
            DirError::TooLarge { .. } => "dir_file_too_large",
        }
    }
}

/// Reads every `*.yaml` and `*.yml` file below `root`, skipping hidden entries (`.git`,
/// `.github`, ...). Symbolic links are not followed, so a snapshot never reaches outside
/// its root.
pub fn read_dir(root: &Path) -> Result<BTreeMap<String, Vec<u8>>, DirError> {
    if !root.is_dir() {
        return Err(DirError::NotADirectory(root.to_path_buf()));
    }
    let mut files = BTreeMap::new();
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
                if size > MAX_FILE_BYTES {
                    return Err(DirError::TooLarge { path, size });
                }
                let bytes = fs::read(&path).map_err(|source| DirError::Io {
                    path: path.clone(),
                    source,
                })?;
                files.insert(relative_key(root, &path), bytes);
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
}
