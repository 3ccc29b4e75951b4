//! How much of a revision a source reads: files, bytes per file and bytes in all, checked
//! against the sizes of the entries before any content is read. A revision over a limit is
//! refused as a whole ([`Refused`] names the limit and the largest offenders), so what a
//! push may cost the daemon does not depend on what it holds.
//!
//! ```text
//! entries (path, blob id, size) ──check──▶ within every limit ──▶ read each blob once by id
//!                                       └▶ Refused { limit, actual, largest paths }
//! ```
//!
//! Once read (within the byte limits), the files' YAML nodes are counted, aliases expanded
//! ([`check_nodes`], one document at a time): what a revision costs the daemon after
//! parsing (specs, compiled objects, the watch cache of what it applies) follows its
//! nodes, and 32 MiB of dense YAML is millions of them.
//!
//! **The byte total counts a file at every path that holds it.** Git stores a blob once
//! whatever the number of paths that point to it, and the source reads it once; but the
//! snapshot, the YAML parser and the compiled objects each hold one copy per path. So 120
//! paths to one 3.9 MB blob (a 5 KB pack) weigh 468 MB against [`RevisionLimits::max_total_bytes`].

use std::collections::BTreeMap;
use std::fmt;

use crate::spec::parse;

/// The limits of one revision's YAML files (hidden entries and other files are not counted).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RevisionLimits {
    /// Most YAML files in a revision.
    pub max_files: usize,
    /// Largest YAML file, in bytes.
    pub max_file_bytes: u64,
    /// Most bytes of YAML in a revision, each path counted (see the module docs).
    pub max_total_bytes: u64,
    /// Most YAML nodes in a revision (lists, mappings and scalars, aliases expanded).
    pub max_nodes: u64,
}

/// Sized so that the daemon (256 MiB in deploy/) keeps the last good revision, reads the
/// next one and plans a pull request at once: 10,000 small services (about 17 nodes each)
/// fit; specs made as large as the limits allow stay under about 200 MiB.
impl Default for RevisionLimits {
    fn default() -> Self {
        RevisionLimits {
            max_files: 20_000,
            max_file_bytes: super::dir::MAX_FILE_BYTES,
            max_total_bytes: 32 * 1024 * 1024,
            max_nodes: 400_000,
        }
    }
}

/// Which limit a revision broke.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// [`RevisionLimits::max_files`].
    Files,
    /// [`RevisionLimits::max_file_bytes`].
    FileBytes,
    /// [`RevisionLimits::max_total_bytes`].
    TotalBytes,
    /// [`RevisionLimits::max_nodes`].
    Nodes,
}

impl Limit {
    /// A short, stable name, as a metric label.
    pub fn metric_label(self) -> &'static str {
        match self {
            Limit::Files => "revision_too_many_files",
            Limit::FileBytes => "revision_file_too_large",
            Limit::TotalBytes => "revision_too_large",
            Limit::Nodes => "revision_too_many_nodes",
        }
    }
}

/// How many offenders a refusal lists.
const OFFENDERS: usize = 5;

/// A revision refused by a limit, with the largest files that made it so.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    pub limit: Limit,
    /// The limit's value (files or bytes).
    pub max: u64,
    /// What the revision has (files or bytes); for [`Limit::Files`], at least this.
    pub actual: u64,
    /// The largest files concerned (path, bytes or nodes), largest first, at most five.
    pub offenders: Vec<(String, u64)>,
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.limit {
            Limit::Files => write!(
                f,
                "more than {} YAML files: the limit is {} files",
                self.actual.saturating_sub(1),
                self.max
            )?,
            Limit::FileBytes => write!(
                f,
                "YAML files larger than the limit of {} per file",
                bytes(self.max)
            )?,
            Limit::TotalBytes => write!(
                f,
                "{} of YAML (a file counted at each of its paths), over the limit of {} per revision",
                bytes(self.actual),
                bytes(self.max)
            )?,
            Limit::Nodes => write!(
                f,
                "{} YAML nodes (aliases expanded), over the limit of {} per revision",
                self.actual, self.max
            )?,
        }
        if !self.offenders.is_empty() {
            f.write_str("; largest: ")?;
            for (i, (path, size)) in self.offenders.iter().enumerate() {
                if i > 0 {
                    f.write_str(", ")?;
                }
                match self.limit {
                    Limit::Nodes => write!(f, "{path} ({size} nodes)")?,
                    _ => write!(f, "{path} ({})", bytes(*size))?,
                }
            }
        }
        Ok(())
    }
}

/// `4194304` -> `4.0 MiB`, `2048` -> `2.0 KiB`, `12` -> `12 bytes`.
fn bytes(n: u64) -> String {
    const KIB: f64 = 1024.0;
    match n {
        0..1024 => format!("{n} bytes"),
        1024..1_048_576 => format!("{:.1} KiB", n as f64 / KIB),
        _ => format!("{:.1} MiB", n as f64 / (KIB * KIB)),
    }
}

/// Counts the files of a revision as they are found, and checks them against the limits.
#[derive(Debug)]
pub struct Tally {
    limits: RevisionLimits,
    files: usize,
    total: u64,
    /// The largest files seen, largest first (at most [`OFFENDERS`]).
    largest: Vec<(String, u64)>,
    /// Files over the per-file limit, largest first (at most [`OFFENDERS`]).
    oversized: Vec<(String, u64)>,
}

impl Tally {
    pub fn new(limits: RevisionLimits) -> Self {
        Tally {
            limits,
            files: 0,
            total: 0,
            largest: Vec::new(),
            oversized: Vec::new(),
        }
    }

    /// Counts one file. Refuses at once when the files are too many, so a tree of a
    /// million entries is not listed before it is refused.
    pub fn add(&mut self, path: &str, size: u64) -> Result<(), Refused> {
        self.files += 1;
        self.total = self.total.saturating_add(size);
        keep_largest(&mut self.largest, path, size);
        if size > self.limits.max_file_bytes {
            keep_largest(&mut self.oversized, path, size);
        }
        if self.files > self.limits.max_files {
            return Err(Refused {
                limit: Limit::Files,
                max: self.limits.max_files as u64,
                actual: self.files as u64,
                offenders: Vec::new(),
            });
        }
        Ok(())
    }

    /// Whether the files counted are within the byte limits.
    pub fn check(self) -> Result<(), Refused> {
        if !self.oversized.is_empty() {
            return Err(Refused {
                limit: Limit::FileBytes,
                max: self.limits.max_file_bytes,
                actual: self.oversized[0].1,
                offenders: self.oversized,
            });
        }
        if self.total > self.limits.max_total_bytes {
            return Err(Refused {
                limit: Limit::TotalBytes,
                max: self.limits.max_total_bytes,
                actual: self.total,
                offenders: self.largest,
            });
        }
        Ok(())
    }
}

/// Counts the YAML nodes of `files` (aliases expanded; a document the parser rejects counts
/// nothing, since nothing of it is kept) against [`RevisionLimits::max_nodes`]. Files that
/// are not UTF-8 count nothing either: loading reports them.
pub fn check_nodes(
    files: &BTreeMap<String, Vec<u8>>,
    limits: RevisionLimits,
) -> Result<(), Refused> {
    let mut total: u64 = 0;
    let mut largest = Vec::new();
    for (path, bytes) in files {
        let Ok(text) = std::str::from_utf8(bytes) else {
            continue;
        };
        let nodes: u64 = parse::documents(text)
            .filter_map(|doc| doc.root.map(|root| root.size as u64))
            .sum();
        total = total.saturating_add(nodes);
        keep_largest(&mut largest, path, nodes);
    }
    if total > limits.max_nodes {
        return Err(Refused {
            limit: Limit::Nodes,
            max: limits.max_nodes,
            actual: total,
            offenders: largest,
        });
    }
    Ok(())
}

/// Inserts `(path, size)` into `list` (largest first), keeping at most [`OFFENDERS`].
fn keep_largest(list: &mut Vec<(String, u64)>, path: &str, size: u64) {
    if list.len() == OFFENDERS && list.last().is_some_and(|(_, s)| *s >= size) {
        return;
    }
    let at = list.partition_point(|(_, s)| *s >= size);
    list.insert(at, (path.to_string(), size));
    list.truncate(OFFENDERS);
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMALL: RevisionLimits = RevisionLimits {
        max_files: 3,
        max_file_bytes: 100,
        max_total_bytes: 250,
        max_nodes: 10,
    };

    fn tally(files: &[(&str, u64)]) -> Result<(), Refused> {
        let mut tally = Tally::new(SMALL);
        for (path, size) in files {
            tally.add(path, *size)?;
        }
        tally.check()
    }

    #[test]
    fn limits_are_checked_in_order_with_the_largest_offenders() {
        type Expected = Option<(Limit, u64, &'static [&'static str])>;
        let cases: &[(&[(&str, u64)], Expected)] = &[
            (&[("a", 100), ("b", 100), ("c", 50)], None),
            (
                &[("a", 1), ("b", 1), ("c", 1), ("d", 1)],
                Some((Limit::Files, 4, &[])),
            ),
            (
                &[("a", 101), ("b", 5), ("c", 300)],
                Some((Limit::FileBytes, 300, &["c", "a"])),
            ),
            (
                &[("a", 100), ("b", 90), ("c", 100)],
                Some((Limit::TotalBytes, 290, &["a", "c", "b"])),
            ),
        ];
        for (files, expected) in cases {
            let got = tally(files).err().map(|r| {
                let paths: Vec<String> = r.offenders.iter().map(|(p, _)| p.clone()).collect();
                (r.limit, r.actual, paths)
            });
            let expected = expected.map(|(limit, actual, paths)| {
                (limit, actual, paths.iter().map(|p| p.to_string()).collect())
            });
            assert_eq!(got, expected, "{files:?}");
        }
    }

    #[test]
    fn a_blob_at_many_paths_counts_at_each() {
        let limits = RevisionLimits::default();
        let mut tally = Tally::new(limits);
        for i in 0..120 {
            tally
                .add(&format!("services/s{i:03}.yaml"), 3_900_000)
                .unwrap();
        }
        let refused = tally.check().unwrap_err();
        assert_eq!(refused.limit, Limit::TotalBytes);
        assert_eq!(refused.actual, 120 * 3_900_000);
        assert_eq!(refused.offenders.len(), 5);
        assert_eq!(
            refused.to_string(),
            "446.3 MiB of YAML (a file counted at each of its paths), over the limit of \
             32.0 MiB per revision; largest: services/s000.yaml (3.7 MiB), services/s001.yaml \
             (3.7 MiB), services/s002.yaml (3.7 MiB), services/s003.yaml (3.7 MiB), \
             services/s004.yaml (3.7 MiB)"
        );
    }

    #[test]
    fn too_many_files_are_refused_as_soon_as_counted() {
        let mut tally = Tally::new(SMALL);
        for path in ["a", "b", "c"] {
            tally.add(path, 1).unwrap();
        }
        let refused = tally.add("d", 1).unwrap_err();
        assert_eq!(
            refused.to_string(),
            "more than 3 YAML files: the limit is 3 files"
        );
    }

    #[test]
    fn nodes_are_counted_with_aliases_expanded_and_name_the_largest_files() {
        let files: BTreeMap<String, Vec<u8>> = [
            ("a.yaml", &b"a: [1, 2, 3]\n---\nb: 1\n"[..]),
            ("b.yaml", &b"x: &x [1, 2]\ny: *x\nz: *x\n"[..]),
            ("c.yaml", &b"\xff"[..]),
        ]
        .into_iter()
        .map(|(p, t)| (p.to_string(), t.to_vec()))
        .collect();
        let refused = check_nodes(&files, SMALL).unwrap_err();
        assert_eq!(
            refused.to_string(),
            "17 YAML nodes (aliases expanded), over the limit of 10 per revision; largest: \
             b.yaml (10 nodes), a.yaml (7 nodes)"
        );
        assert_eq!(refused.limit.metric_label(), "revision_too_many_nodes");
        let limits = RevisionLimits {
            max_nodes: 17,
            ..SMALL
        };
        assert_eq!(check_nodes(&files, limits), Ok(()));
    }
}
