//! The repositories of the tests: the project's own checkout, the example repository it
//! ships, writable copies of it in temporary directories, and edits of those copies.
//! ([`crate::support::target::Target::example_copy`] also puts a copy in a test's own
//! namespaces on a real cluster.)

use std::path::{Path, PathBuf};

/// The root of the project's checkout.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The example repository shipped with the project.
pub fn example_repo() -> PathBuf {
    root().join("example-repo")
}

/// A writable copy of the example repository.
pub fn example_copy() -> tempfile::TempDir {
    copy_of(&example_repo())
}

/// A writable copy of the directory tree `from`.
pub fn copy_of(from: &Path) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    copy_dir(from, dir.path());
    dir
}

/// Copies the directory tree `from` into `to`.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read_dir") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

/// Replaces `from` with `to` in a file of a repository copy (the text must be there).
pub fn edit(dir: &Path, file: &str, from: &str, to: &str) {
    let path = dir.join(file);
    let text = std::fs::read_to_string(&path).expect("read");
    assert!(text.contains(from), "{file} does not contain {from:?}");
    std::fs::write(&path, text.replacen(from, to, 1)).expect("write");
}

/// The model version bump of llm-chat (3.1.0 to 3.2.0) in a repository copy: a canary
/// GPU service whose every object carries the version label.
pub fn bump_llm_chat_version(dir: &Path) {
    edit(
        dir,
        "services/genai/llm-chat.yaml",
        "version: \"3.1.0\"",
        "version: \"3.2.0\"",
    );
}

/// A path as UTF-8 (the test paths are).
pub fn path_str(path: &Path) -> &str {
    path.to_str().expect("test paths are UTF-8")
}
