//! Pruning and its guard: a repository that suddenly lost most of its services is more
//! likely a mistake (a bad merge, a wrong `--path`, a folder deleted by accident) than an
//! intent. The CLI and the daemon ask [`check_mass_prune`] the same question about the same
//! plan, so they always prune, or refuse to, alike.
//!
//! The guard trips when either holds (with [`PruneMode::Guarded`]):
//! - **most of the repository goes**: at least two services would be pruned, and more
//!   than half of all the services the plan knows (in the repository or in the cluster);
//! - **a team folder vanished**: every service written in one folder of the repository
//!   (read from the `modelship.dev/source` annotation of the live objects), three or more
//!   of them, would be pruned at once.
//!
//! It never blocks pruning the single service of a namespace, or one service in any
//! repository of two or more. When it trips, nothing is pruned; the services it kept are
//! listed.

use std::collections::BTreeMap;
use std::fmt;

use super::{Plan, ServiceStatus};
use crate::meta::ServiceId;

/// What happens to the objects of services gone from a fully valid repository.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PruneMode {
    /// They are left in place and reported.
    #[default]
    Keep,
    /// They are deleted, unless the mass-prune guard trips.
    Guarded,
    /// They are deleted, whatever their number (`--allow-mass-prune`).
    Unguarded,
}

/// Services in one folder that the guard counts as a team's folder.
pub const FOLDER_THRESHOLD: usize = 3;

/// Why the guard tripped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MassPruneReason {
    /// More than half of the repository's services would go.
    MostOfRepository { removed: usize, total: usize },
    /// Every service of a folder would go.
    Folder { folder: String, removed: usize },
}

/// The guard tripped: nothing is pruned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MassPrune {
    pub reasons: Vec<MassPruneReason>,
    /// The services that would have been pruned and are kept, sorted.
    pub kept: Vec<ServiceId>,
}

impl fmt::Display for MassPrune {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let reasons: Vec<String> = self
            .reasons
            .iter()
            .map(|reason| match reason {
                MassPruneReason::MostOfRepository { removed, total } => {
                    format!("{removed} of {total} services would go (more than half)")
                }
                MassPruneReason::Folder { folder, removed } => {
                    format!("all {removed} services of folder {folder}/ would go")
                }
            })
            .collect();
        let kept: Vec<String> = self.kept.iter().map(ToString::to_string).collect();
        write!(
            f,
            "refusing to prune: {}; kept {}; pass --allow-mass-prune if this is intended",
            reasons.join(", "),
            kept.join(", ")
        )
    }
}

/// The guard's verdict on a plan: `Some` when it trips. Services blocked for another
/// reason count in the totals but are never pruned.
pub fn check_mass_prune(plan: &Plan) -> Option<MassPrune> {
    let removed: Vec<ServiceId> = plan
        .services
        .iter()
        .filter(|s| s.status == ServiceStatus::Removed)
        .map(|s| s.id.clone())
        .collect();
    let total = plan.services.len();
    let mut reasons = Vec::new();
    if removed.len() >= 2 && removed.len() * 2 > total {
        reasons.push(MassPruneReason::MostOfRepository {
            removed: removed.len(),
            total,
        });
    }
    let mut folders: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    for service in &plan.services {
        if let Some(folder) = service.file.as_deref().map(folder_of) {
            let entry = folders.entry(folder).or_default();
            entry.1 += 1;
            if service.status == ServiceStatus::Removed {
                entry.0 += 1;
            }
        }
    }
    for (folder, (gone, all)) in folders {
        if gone >= FOLDER_THRESHOLD && gone == all {
            reasons.push(MassPruneReason::Folder {
                folder: folder.to_string(),
                removed: gone,
            });
        }
    }
    (!reasons.is_empty()).then_some(MassPrune {
        reasons,
        kept: removed,
    })
}

/// The folder of a repository file (`services/risk/a.yaml` -> `services/risk`).
fn folder_of(file: &str) -> &str {
    file.rsplit_once('/').map_or("", |(folder, _)| folder)
}

/// The repository file named by a `modelship.dev/source` annotation
/// (`<repo>@<commit>:<file>`, `<commit>:<file>` or `local:<file>`).
pub fn file_of_source(annotation: &str) -> Option<&str> {
    annotation
        .rsplit_once(':')
        .map(|(_, file)| file)
        .filter(|f| !f.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_of_source_reads_every_annotation_form() {
        assert_eq!(
            file_of_source("org/repo@abc123:services/a.yaml"),
            Some("services/a.yaml")
        );
        assert_eq!(
            file_of_source("abc:services/a.yaml"),
            Some("services/a.yaml")
        );
        assert_eq!(
            file_of_source("local:services/a.yaml"),
            Some("services/a.yaml")
        );
        assert_eq!(
            file_of_source("https://git.example.com/org/repo@abc:services/a.yaml"),
            Some("services/a.yaml")
        );
        assert_eq!(file_of_source("local"), None);
        assert_eq!(folder_of("services/risk/a.yaml"), "services/risk");
        assert_eq!(folder_of("a.yaml"), "");
    }
}
