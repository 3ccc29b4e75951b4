//! The Markdown rendering, for pull-request comments: a table of the services that change,
//! are blocked, removed or warned (one line counts the unchanged ones), the services a policy
//! denies, then one collapsible `<details>` section per changing, blocked or warned service
//! with its Deny and Warn violations and its diffs in `diff` code blocks.

use std::fmt::Write as _;

use super::{
    action_sign, counts_text, denied_text, has_details, shown_violations, status_text,
    summary_text, unchanged_line,
};
use crate::plan::{Action, Plan};
use crate::policy::Violation;

/// Renders a plan as Markdown.
pub fn markdown(plan: &Plan) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "### modelship plan\n");
    let _ = writeln!(out, "**{}**\n", counts_text(|a| plan.count(a)));
    if let Some(denied) = denied_text(plan) {
        let _ = writeln!(out, "**{denied}**: their objects are left untouched.\n");
    }
    if plan.services.is_empty() {
        let _ = writeln!(out, "No services.");
        return out;
    }
    let shown: Vec<_> = plan.services.iter().filter(|s| has_details(s)).collect();
    if !shown.is_empty() {
        let _ = writeln!(out, "| Service | Status | Objects | Summary |");
        let _ = writeln!(out, "|---|---|---|---|");
    }
    for s in shown {
        let _ = writeln!(
            out,
            "| `{}/{}` | {} | {} | {} |",
            s.namespace,
            s.name,
            status_text(s.status),
            counts_text(|a| s.count(a)),
            escape(&summary_text(&s.summary))
        );
    }
    if let Some(unchanged) = unchanged_line(plan) {
        let _ = writeln!(out, "\n{unchanged}.");
    }
    for service in &plan.services {
        if !has_details(service) {
            continue;
        }
        let _ = writeln!(
            out,
            "\n<details><summary><b>{}/{}</b>: {}</summary>\n",
            service.namespace,
            service.name,
            counts_text(|a| service.count(a))
        );
        let mut listed = false;
        for violation in shown_violations(service) {
            let _ = writeln!(out, "{}", violation_item(violation));
            listed = true;
        }
        if listed {
            let _ = writeln!(out);
        }
        for object in service
            .objects
            .iter()
            .filter(|o| o.action != Action::Unchanged)
        {
            let _ = writeln!(out, "`{} {}`\n", action_sign(object.action), object.key);
            if object.diff.is_empty() {
                continue;
            }
            let fence = fence_for(&object.diff);
            let _ = writeln!(
                out,
                "{fence}diff\n{}{fence}\n",
                ensure_newline(&object.diff)
            );
        }
        let _ = writeln!(out, "</details>");
    }
    out
}

/// One list item: severity, policy (file:line), object, message, and the spec file:line.
fn violation_item(v: &Violation) -> String {
    let object = match &v.namespace {
        Some(namespace) => format!("{} {namespace}/{}", v.kind, v.name),
        None => format!("{} {}", v.kind, v.name),
    };
    let source = match &v.source {
        Some(s) if s.line > 0 => format!(" (`{}:{}`)", s.file, s.line),
        Some(s) => format!(" (`{}`)", s.file),
        None => String::new(),
    };
    format!(
        "- **{}** policy `{}` (`{}:{}`): {object}: {}{source}",
        v.severity(),
        v.policy,
        v.policy_file,
        v.policy_line,
        escape_message(&v.message)
    )
}

/// A policy message as literal text: no HTML or Markdown markup gets through.
fn escape_message(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('*', "\\*")
        .replace('_', "\\_")
        .replace('`', "\\`")
}

/// A backtick fence longer than any run of backticks in the content.
fn fence_for(content: &str) -> String {
    let longest = content.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    "`".repeat(longest.max(2) + 1)
}

fn ensure_newline(text: &str) -> String {
    if text.ends_with('\n') {
        text.to_string()
    } else {
        format!("{text}\n")
    }
}

fn escape(text: &str) -> String {
    text.replace('|', "\\|")
}
