//! Sources of repository snapshots. For now: a local directory read into memory.
//!
//! A snapshot is the set of YAML files of a repository root, keyed by their path relative
//! to the root with `/` separators. The pure core (`spec::load`) reads only that map, so
//! the same code serves a local directory, a git tree and pull-request content.

pub mod dir;

pub use dir::{DirError, read_dir};
