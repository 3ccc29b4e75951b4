//! The outcome of a merged pull request: once the daemon has reconciled a revision that
//! contains the merge commit and every service the PR changed has finished, one sticky
//! comment (`Marker::Outcome`) says what happened to each, and the `modelship/apply`
//! status of the merge commit leaves pending.
//!
//! ```text
//! closed + merged ─▶ Pending { merge commit, services of the PR's last plan }
//!                    status modelship/apply pending on the merge commit
//! every check: board.revision contains the merge commit?
//!              each service: the engine's verdict of its step at that revision, and
//!              its rollout (annotation modelship.dev/rollout on the stable Deployment)
//!              promoted, rolled back, or none running ─▶ settle ─▶ comment + status
//! ```
//!
//! Pending outcomes are kept in the ConfigMap `modelship-pull-outcomes` of the daemon's
//! namespace (`pulls/outcome_store.rs`), read when the worker starts: a restart, or a new
//! leader, posts them all the same. This module is pure: the board and the rollout
//! states are handed in.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use crate::daemon::serve::status::Board;
use crate::engine::Verdict;
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

impl Pending {
    /// Its key in the ConfigMap of pending outcomes (`[-._a-zA-Z0-9]`).
    pub fn key(&self) -> String {
        format!("{}.{}.{}", self.repo.owner, self.repo.name, self.pr)
    }

    /// As stored: JSON `{repo, pr, mergeSha, services: ["ns/name"]}`.
    pub fn encode(&self) -> String {
        serde_json::json!({
            "repo": self.repo.to_string(),
            "pr": self.pr,
            "mergeSha": self.merge_sha,
            "services": self.services,
        })
        .to_string()
    }

    /// The inverse of [`Pending::encode`]; `None` for anything else.
    pub fn decode(text: &str) -> Option<Pending> {
        let value: serde_json::Value = serde_json::from_str(text).ok()?;
        let services = value
            .get("services")?
            .as_array()?
            .iter()
            .map(|s| s.as_str()?.parse().ok())
            .collect::<Option<BTreeSet<ServiceId>>>()?;
        Some(Pending {
            repo: value.get("repo")?.as_str()?.parse().ok()?,
            pr: value.get("pr")?.as_u64()?,
            merge_sha: value.get("mergeSha")?.as_str()?.to_string(),
            services,
        })
    }
}

/// What became of one service the merge changed: the engine's verdict of its step at
/// the merge's revision, and the state its canary rollout ended in (promoted or rolled
/// back; `None` for a service without one, or whose rollout is stable).
#[derive(Debug, Clone, PartialEq)]
pub struct Settled {
    pub verdict: Verdict,
    pub rollout: Option<RolloutState>,
}

impl Settled {
    fn passed(&self) -> bool {
        let rolled_back = self
            .rollout
            .as_ref()
            .is_some_and(|s| matches!(s.phase, Phase::RolledBack { .. }));
        (self.verdict.is_in_sync() || self.verdict == Verdict::Pruned) && !rolled_back
    }

    /// The result column of the outcome comment.
    fn text(&self) -> String {
        if let Some(state) = &self.rollout {
            match state.phase {
                Phase::Promoted { .. } => return "canary promoted".to_string(),
                Phase::RolledBack { .. } => return rolled_back(state),
                _ => {}
            }
        }
        match &self.verdict {
            Verdict::Pruned => "pruned".to_string(),
            Verdict::Failed { message, .. } => format!("failed: {}", one_line(message)),
            Verdict::Blocked { message, .. } => format!("not applied: {}", one_line(message)),
            _ => "in sync".to_string(),
        }
    }
}

/// The outcome of every service when all have finished at `revision`, else `None`.
/// `rollout` gives the rollout state recorded on a service's stable Deployment.
pub fn settle(
    pending: &Pending,
    board: &Board,
    rollout: &dyn Fn(&ServiceId) -> Option<RolloutState>,
) -> Option<Vec<(ServiceId, Settled)>> {
    let revision = board.revision.as_deref()?;
    let mut results = Vec::new();
    for id in &pending.services {
        let status = board.services.get(id)?;
        let current = status.revision.as_deref() == Some(revision);
        let verdict = status.verdict.clone()?;
        let settled = match &verdict {
            Verdict::Pruned | Verdict::Blocked { .. } => Settled {
                verdict,
                rollout: None,
            },
            Verdict::Failed { .. } if status.failures >= 3 => Settled {
                verdict,
                rollout: None,
            },
            v if v.is_in_sync() && current => {
                let rollout = match rollout(id) {
                    None => None,
                    Some(state) => match state.phase {
                        Phase::Stable => None,
                        Phase::Promoted { .. } | Phase::RolledBack { .. } => Some(state),
                        // Starting, progressing, at a gate, promoting or paused: not finished.
                        _ => return None,
                    },
                };
                Settled { verdict, rollout }
            }
            _ => return None,
        };
        results.push((id.clone(), settled));
    }
    Some(results)
}

/// True when every service ended well.
pub fn passed(results: &[(ServiceId, Settled)]) -> bool {
    results.iter().all(|(_, r)| r.passed())
}

/// The outcome comment.
pub fn comment(pending: &Pending, revision: &str, results: &[(ServiceId, Settled)]) -> String {
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
    for (id, settled) in results {
        let _ = writeln!(out, "| `{id}` | {} |", settled.text());
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
