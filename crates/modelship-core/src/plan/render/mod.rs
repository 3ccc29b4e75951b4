//! Renderings of a [`Plan`](super::Plan): a terminal report, Markdown for pull-request
//! comments ([`mod@markdown`], with GPUs and cost from [`capacity`] and what merging does from
//! [`merge`]), and JSON with a stable, versioned schema ([`json`]).
//!
//! Every rendering reads only the plan, whose Secret values are already redacted. Policy
//! violations appear with their service: Deny and Warn in every rendering, Audit in JSON
//! only.

pub mod capacity;
pub mod json;
pub mod markdown;
pub mod merge;
mod text;

use std::fmt::Write as _;
use std::str::FromStr;

use super::{Action, ServicePlan, ServiceStatus, Summary};

pub use markdown::{COMMENT_LIMIT, CommentContext, Links, comment, markdown};
pub use text::text;

/// An output format (`-o text|markdown|json`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    /// Summary table and unified diffs, coloured on a terminal.
    #[default]
    Text,
    /// Collapsible sections per service, for pull-request comments.
    Markdown,
    /// The JSON schema of [`json`].
    Json,
}

impl FromStr for Format {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "text" => Ok(Format::Text),
            "markdown" | "md" => Ok(Format::Markdown),
            "json" => Ok(Format::Json),
            other => Err(format!(
                "unknown output format `{other}`: expected text, markdown or json"
            )),
        }
    }
}

/// Renders a plan in a format; `color` applies to text only.
pub fn render(plan: &super::Plan, format: Format, color: bool) -> String {
    match format {
        Format::Text => text(plan, color),
        Format::Markdown => markdown(plan),
        Format::Json => json::json(plan),
    }
}

/// `present`, `removed` or `blocked (...)`.
fn status_text(status: ServiceStatus) -> &'static str {
    match status {
        ServiceStatus::Present => "present",
        ServiceStatus::Removed => "removed",
        ServiceStatus::Blocked(super::BlockReason::InvalidSpec) => "blocked: invalid spec",
        ServiceStatus::Blocked(super::BlockReason::Compile) => "blocked: spec does not compile",
        ServiceStatus::Blocked(super::BlockReason::Rollout) => "blocked: rollout failed",
        ServiceStatus::Blocked(super::BlockReason::RepositoryInvalid) => {
            "blocked: repository has errors, not pruned"
        }
        ServiceStatus::Blocked(super::BlockReason::PolicyDenied) => "blocked: denied by policy",
        ServiceStatus::Blocked(super::BlockReason::PoliciesBroken) => {
            "blocked: a policy file has errors"
        }
        ServiceStatus::Blocked(super::BlockReason::MassPrune) => {
            "blocked: kept by the mass-prune guard"
        }
        ServiceStatus::Blocked(super::BlockReason::Ownership) => {
            "blocked: an object exists that is not its own"
        }
    }
}

/// The violations the text and Markdown renderings show: Deny and Warn. Audit violations
/// are informational and appear in the JSON rendering only.
fn shown_violations(service: &ServicePlan) -> impl Iterator<Item = &crate::policy::Violation> {
    service
        .violations
        .iter()
        .filter(|v| v.action != crate::policy::Action::Audit)
}

/// True when a service has something to show besides its table row: changes, a status
/// other than present, or Deny/Warn violations.
fn has_details(service: &ServicePlan) -> bool {
    service.has_changes()
        || service.status != ServiceStatus::Present
        || shown_violations(service).next().is_some()
}

/// `1 service unchanged`, `12 services unchanged`: the line that stands for every service
/// left out of the text and Markdown tables ([`has_details`] is false for it); `None` when
/// every service is shown.
fn unchanged_line(plan: &super::Plan) -> Option<String> {
    match plan.services.iter().filter(|s| !has_details(s)).count() {
        0 => None,
        1 => Some("1 service unchanged".to_string()),
        n => Some(format!("{n} services unchanged")),
    }
}

/// `3 services denied by policy (ns/a, ns/b, ns/c)`, or `None` when no policy denies.
pub fn denied_text(plan: &super::Plan) -> Option<String> {
    let names: Vec<String> = plan.denied().map(|s| s.id.to_string()).collect();
    match names.len() {
        0 => None,
        1 => Some(format!("1 service denied by policy ({})", names[0])),
        n => Some(format!(
            "{n} services denied by policy ({})",
            names.join(", ")
        )),
    }
}

/// `1 service blocked by objects it does not own (ns/a)`, or `None` when no service is.
pub fn conflicts_text(plan: &super::Plan) -> Option<String> {
    let names: Vec<String> = plan
        .services
        .iter()
        .filter(|s| s.status == ServiceStatus::Blocked(super::BlockReason::Ownership))
        .map(|s| s.id.to_string())
        .collect();
    match names.len() {
        0 => None,
        1 => Some(format!(
            "1 service blocked by objects it does not own ({})",
            names[0]
        )),
        n => Some(format!(
            "{n} services blocked by objects they do not own ({})",
            names.join(", ")
        )),
    }
}

/// `2 to create, 1 to update` for a service or a plan (zero counts left out).
fn counts_text(count: impl Fn(Action) -> usize) -> String {
    let parts: Vec<String> = [
        (Action::Create, "to create"),
        (Action::Update, "to update"),
        (Action::Delete, "to delete"),
        (Action::Unchanged, "unchanged"),
        (Action::Blocked, "blocked"),
    ]
    .into_iter()
    .filter(|(action, _)| count(*action) > 0)
    .map(|(action, label)| format!("{} {label}", count(action)))
    .collect();
    if parts.is_empty() {
        "no objects".to_string()
    } else {
        parts.join(", ")
    }
}

/// One line on the summary of a service: `version 1.4.1 -> 1.4.2; replicas 2 -> 3`.
fn summary_text(summary: &Summary) -> String {
    fn side<T: ToString>(value: &Option<T>) -> String {
        value
            .as_ref()
            .map(T::to_string)
            .unwrap_or_else(|| "-".to_string())
    }
    let mut parts = Vec::new();
    if let Some(v) = &summary.version {
        parts.push(format!("version {} -> {}", side(&v.before), side(&v.after)));
    }
    for image in &summary.images {
        parts.push(format!(
            "image {} {} -> {}",
            image.container,
            side(&image.before),
            side(&image.after)
        ));
    }
    if let Some(r) = &summary.replicas {
        parts.push(format!(
            "replicas {} -> {}",
            side(&r.before),
            side(&r.after)
        ));
    }
    if let Some(g) = &summary.gpus {
        parts.push(format!("GPUs {} -> {}", side(&g.before), side(&g.after)));
    }
    parts.join("; ")
}

/// The marker of an action in diffs and lists.
fn action_sign(action: Action) -> &'static str {
    match action {
        Action::Create => "+",
        Action::Update => "~",
        Action::Delete => "-",
        Action::Unchanged => "=",
        Action::Blocked => "!",
    }
}

/// What an object line adds after its key: who holds a conflicting object, or that the
/// object is adopted.
fn ownership_note(object: &super::ObjectPlan) -> Option<String> {
    match &object.ownership {
        Some(super::Ownership::Conflict(occupant)) => Some(occupant.to_string()),
        Some(super::Ownership::Adopted) => Some(format!(
            "adopted ({}): replaced by this service's object",
            crate::ownership::ANNOTATION_ADOPT
        )),
        None => None,
    }
}

/// The header line of a service.
fn service_heading(service: &ServicePlan) -> String {
    let mut out = String::new();
    let _ = write!(
        out,
        "{} ({}): {}",
        service.id,
        status_text(service.status),
        counts_text(|a| service.count(a))
    );
    out
}

/// Whether a plan may merge, in the words of a commit status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// False when the repository has errors or a policy denies a service.
    pub passed: bool,
    /// `no changes`, `2 services change`, `invalid: 3 errors`, `1 service denied by policy`.
    pub description: String,
}

/// The verdict of a plan of a repository with these diagnostics.
pub fn verdict(
    diagnostics: &[crate::spec::Diagnostic],
    repository_valid: bool,
    plan: &super::Plan,
) -> Verdict {
    let count = |n: usize, one: &str, many: &str| {
        if n == 1 {
            format!("1 {one}")
        } else {
            format!("{n} {many}")
        }
    };
    let errors = diagnostics
        .iter()
        .filter(|d| d.severity == crate::spec::Severity::Error)
        .count();
    let denied = plan.denied().count();
    let conflicting = plan
        .services
        .iter()
        .filter(|s| s.status == ServiceStatus::Blocked(super::BlockReason::Ownership))
        .count();
    let (passed, description) = if errors > 0 || !repository_valid {
        (
            false,
            format!("invalid: {}", count(errors.max(1), "error", "errors")),
        )
    } else if denied > 0 {
        let services = count(denied, "service", "services");
        (false, format!("{services} denied by policy"))
    } else if conflicting > 0 {
        let services = count(conflicting, "service", "services");
        (
            false,
            format!("{services} blocked by objects not their own"),
        )
    } else {
        match plan.services.iter().filter(|s| s.has_changes()).count() {
            0 => (true, "no changes".to_string()),
            n => (true, count(n, "service changes", "services change")),
        }
    };
    Verdict {
        passed,
        description,
    }
}
