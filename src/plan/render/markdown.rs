//! The Markdown rendering, for pull-request comments: a table, then one collapsible
//! `<details>` section per changing service with its diffs in `diff` code blocks.

use std::fmt::Write as _;

use super::{action_sign, counts_text, status_text, summary_text};
use crate::plan::{Action, Plan, ServiceStatus};

/// Renders a plan as Markdown.
pub fn markdown(plan: &Plan) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "### modelship plan\n");
    let _ = writeln!(out, "**{}**\n", counts_text(|a| plan.count(a)));
    if plan.services.is_empty() {
        let _ = writeln!(out, "No services.");
        return out;
    }
    let _ = writeln!(out, "| Service | Status | Objects | Summary |");
    let _ = writeln!(out, "|---|---|---|---|");
    for s in &plan.services {
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
    for service in &plan.services {
        if !service.has_changes() && service.status == ServiceStatus::Present {
            continue;
        }
        let _ = writeln!(
            out,
            "\n<details><summary><b>{}/{}</b>: {}</summary>\n",
            service.namespace,
            service.name,
            counts_text(|a| service.count(a))
        );
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
