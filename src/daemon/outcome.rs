//! The outcome of a merged pull request: once the daemon has reconciled a revision that
//! contains the merge commit and every service the PR changed has finished, one sticky
//! comment (`Marker::Outcome`) says what happened to each, and the `modelship/apply`
//! status of the merge commit leaves pending.
//!
//! ```text
//! closed + merged ─▶ Pending { merge commit, services of the PR's last plan }
//!                    status modelship/apply pending on the merge commit
//! every check: board.revision contains the merge commit?
//!              each service: in sync / failed / invalid / pruned at that revision, and
//!              its rollout (annotation modelship.dev/rollout on the stable Deployment)
//!              promoted, rolled back, or none running ─▶ settle ─▶ comment + status
//! ```
//!
//! Decision: pending outcomes live in the worker's memory and in the `modelship/apply`
//! pending status on GitHub; a daemon restarted before an outcome is posted does not
//! post it (the status stays pending). Pure apart from the inputs handed in.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use super::status::{Board, ServiceState};
use crate::forge::Repo;
use crate::meta::ServiceId;
use crate::rollout::{Phase, RolloutState};

/// A merged pull request waiting for its rollouts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    pub repo: Repo,
    pub pr: u64,
    pub merge_sha: String,
    /// The services the PR's last plan changed.
    pub services: BTreeSet<ServiceId>,
}

/// What became of one service.
#[derive(Debug, Clone, PartialEq)]
pub enum Result {
    InSync,
    Pruned,
    Failed(String),
    Invalid(String),
    Promoted,
    RolledBack(RolloutState),
}

impl Result {
    fn passed(&self) -> bool {
        matches!(self, Result::InSync | Result::Pruned | Result::Promoted)
    }
}

/// The outcome of every service when all have finished at `revision`, else `None`.
/// `rollout` gives the rollout state recorded on a service's stable Deployment.
pub fn settle(
    pending: &Pending,
    board: &Board,
    rollout: &dyn Fn(&ServiceId) -> Option<RolloutState>,
) -> Option<Vec<(ServiceId, Result)>> {
    let revision = board.revision.as_deref()?;
    let mut results = Vec::new();
    for id in &pending.services {
        let status = board.services.get(&format!("{}/{}", id.0, id.1))?;
        let current = status.revision.as_deref() == Some(revision);
        let result = match status.state {
            ServiceState::Pruned => Result::Pruned,
            ServiceState::Invalid => Result::Invalid(status.last_error.clone().unwrap_or_default()),
            ServiceState::Failed if status.failures >= 3 => {
                Result::Failed(status.last_error.clone().unwrap_or_default())
            }
            ServiceState::InSync if current => match rollout(id) {
                None => Result::InSync,
                Some(state) => match state.phase {
                    Phase::Stable => Result::InSync,
                    Phase::Promoted { .. } => Result::Promoted,
                    Phase::RolledBack { .. } => Result::RolledBack(state),
                    // Starting, progressing, at a gate, promoting or paused: not finished.
                    _ => return None,
                },
            },
            _ => return None,
        };
        results.push((id.clone(), result));
    }
    Some(results)
}

/// True when every service ended well.
pub fn passed(results: &[(ServiceId, Result)]) -> bool {
    results.iter().all(|(_, r)| r.passed())
}

/// The outcome comment.
pub fn comment(pending: &Pending, revision: &str, results: &[(ServiceId, Result)]) -> String {
    let short: String = pending.merge_sha.chars().take(7).collect();
    let mut out = format!(
        "### modelship outcome\n\nMerge commit `{short}` was reconciled at revision `{}`.\n\n",
        revision.chars().take(7).collect::<String>()
    );
    if results.is_empty() {
        out.push_str("The pull request changed no service modelship manages.\n");
        return out;
    }
    out.push_str("| service | result |\n|---|---|\n");
    for ((namespace, name), result) in results {
        let text = match result {
            Result::InSync => "in sync".to_string(),
            Result::Pruned => "pruned".to_string(),
            Result::Promoted => "canary promoted".to_string(),
            Result::Failed(error) => format!("failed: {}", one_line(error)),
            Result::Invalid(error) => format!("not applied: {}", one_line(error)),
            Result::RolledBack(state) => rolled_back(state),
        };
        let _ = writeln!(out, "| `{namespace}/{name}` | {text} |");
    }
    out
}

fn rolled_back(state: &RolloutState) -> String {
    let reason = match &state.phase {
        Phase::RolledBack { reason, .. } => reason.as_str(),
        _ => "rolled back",
    };
    let mut text = format!("rolled back: {reason}");
    if let Some(analysis) = &state.last_analysis {
        let checks: Vec<String> = analysis
            .checks
            .iter()
            .map(|c| {
                let value = c.value.map_or("no data".to_string(), |v| format!("{v:.3}"));
                let mut limits = Vec::new();
                if let Some(min) = c.threshold.min {
                    limits.push(format!("min {min}"));
                }
                if let Some(max) = c.threshold.max {
                    limits.push(format!("max {max}"));
                }
                format!(
                    "{} {value} ({}: {:?})",
                    c.name,
                    limits.join(", "),
                    c.verdict
                )
            })
            .collect();
        let _ = write!(
            text,
            "; last analysis at weight {}%: {}",
            analysis.weight,
            checks.join(", ")
        );
    }
    text
}

fn one_line(text: &str) -> String {
    text.replace(['\n', '|'], " ")
}

#[cfg(test)]
#[path = "outcome_tests.rs"]
mod tests;
