//! The terminal rendering: a summary table of the services that change, are blocked,
//! removed or warned (one line counts the unchanged ones), the services a policy denies,
//! then per service its Deny and Warn violations and the diff of every changing object.

use std::fmt::Write as _;

use super::{
    action_sign, counts_text, denied_text, has_details, ownership_note, service_heading,
    shown_violations, status_text, summary_text, unchanged_line,
};
use crate::plan::{Action, Plan};
use crate::policy::Violation;

const RED: &str = "\x1b[31m";
const GREEN: &str = "\x1b[32m";
const YELLOW: &str = "\x1b[33m";
const CYAN: &str = "\x1b[36m";
const BOLD: &str = "\x1b[1m";
const RESET: &str = "\x1b[0m";

/// Renders a plan for a terminal; `color` adds ANSI colours (only on a terminal).
pub fn text(plan: &Plan, color: bool) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "Plan: {}", counts_text(|a| plan.count(a)));
    if plan.services.is_empty() {
        let _ = writeln!(out, "No services.");
        return out;
    }
    table(plan, &mut out);
    if let Some(denied) = denied_text(plan) {
        let _ = writeln!(out, "\n{denied}: their objects are left untouched");
    }
    for service in plan.services.iter().filter(|s| has_details(s)) {
        let _ = writeln!(out);
        let heading = service_heading(service);
        if color {
            let _ = writeln!(out, "{BOLD}{heading}{RESET}");
        } else {
            let _ = writeln!(out, "{heading}");
        }
        for violation in shown_violations(service) {
            let _ = writeln!(out, "  {}", paint_violation(violation, color));
        }
        for object in &service.objects {
            if object.action == Action::Unchanged {
                continue;
            }
            match ownership_note(object) {
                Some(note) => {
                    let _ = writeln!(
                        out,
                        "  {} {}: {note}",
                        action_sign(object.action),
                        object.key
                    );
                }
                None => {
                    let _ = writeln!(out, "  {} {}", action_sign(object.action), object.key);
                }
            }
            for line in object.diff.lines() {
                let _ = writeln!(out, "    {}", paint(line, color));
            }
        }
    }
    out
}

fn table(plan: &Plan, out: &mut String) {
    let rows: Vec<[String; 4]> = plan
        .services
        .iter()
        .filter(|s| has_details(s))
        .map(|s| {
            [
                s.id.to_string(),
                status_text(s.status).to_string(),
                counts_text(|a| s.count(a)),
                summary_text(&s.summary),
            ]
        })
        .collect();
    let _ = writeln!(out);
    if rows.is_empty() {
        if let Some(unchanged) = unchanged_line(plan) {
            let _ = writeln!(out, "{unchanged}");
        }
        return;
    }
    let header = ["SERVICE", "STATUS", "OBJECTS", "SUMMARY"].map(str::to_string);
    let mut widths = [0usize; 3];
    for row in std::iter::once(&header).chain(&rows) {
        for (width, cell) in widths.iter_mut().zip(row.iter()) {
            *width = (*width).max(cell.chars().count());
        }
    }
    for row in std::iter::once(&header).chain(&rows) {
        let line = format!(
            "{:w0$}  {:w1$}  {:w2$}  {}",
            row[0],
            row[1],
            row[2],
            row[3],
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2]
        );
        let _ = writeln!(out, "{}", line.trim_end());
    }
    if let Some(unchanged) = unchanged_line(plan) {
        let _ = writeln!(out, "and {unchanged}");
    }
}

/// A violation as a diagnostic line: red when it denies, yellow when it warns.
fn paint_violation(violation: &Violation, color: bool) -> String {
    if !color {
        return violation.to_string();
    }
    let colour = if violation.is_deny() { RED } else { YELLOW };
    format!("{colour}{violation}{RESET}")
}

fn paint(line: &str, color: bool) -> String {
    if !color {
        return line.to_string();
    }
    let colour = if line.starts_with("+++") || line.starts_with("---") {
        BOLD
    } else if line.starts_with('+') {
        GREEN
    } else if line.starts_with('-') {
        RED
    } else if line.starts_with("@@") {
        CYAN
    } else {
        return line.to_string();
    };
    format!("{colour}{line}{RESET}")
}
