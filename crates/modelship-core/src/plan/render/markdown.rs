//! The Markdown rendering: the pull-request comment, also printed by `plan -o markdown`.
//!
//! ```text
//! ### modelship plan
//! headline: services changed of all; objects to create/update/delete; GPUs before → after;
//!           cost delta per hour and month; peak during canary rollouts (when given)
//! the governing settings of modelship.yaml the change edits (the branch's are used)
//! validation errors and warnings, each a file:line link to the PR's head commit
//! services a policy denies
//! | Service | Status | Objects | GPUs | Cost/hour | Summary |   one row per listed service
//! <details> per listed service: what merging will do, Deny/Warn violations,
//!           one line per object whose only change is the version label, diffs
//! ```
//!
//! A service is listed when it changes, is blocked or removed, or a policy warns about it:
//! an unchanged service costs nothing, so a 1,000-service repository with one change
//! gives a short comment. The whole stays under [`COMMENT_LIMIT`] (GitHub's limit on a
//! comment body): when it would not, the largest diffs are replaced by a note first, then
//! services are left out with a note saying how many. Secret values never reach here: the
//! plan redacts them.
//!
//! Everything besides the plan comes in a [`CommentContext`]: diagnostics, capacities
//! ([`super::capacity`]), what merging does per service ([`super::merge`]), canary peaks
//! (filled by the rollout module), and links to the PR's head commit.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::capacity::{Capacities, Capacity, HOURS_PER_MONTH, Peak};
use super::merge::Merge;
use super::{
    action_sign, counts_text, denied_text, has_details, ownership_note, shown_violations,
    status_text, summary_text,
};
use crate::plan::{
    Action, FieldChange, ObjectPlan, Plan, Segment, ServiceId, ServicePlan, ServiceStatus,
};
use crate::policy::Violation;
use crate::spec::{Diagnostic, Repository, Severity};

/// GitHub's limit on the body of an issue comment, in characters.
pub const COMMENT_LIMIT: usize = 65_536;

/// What the rendering may use, in bytes (at least as many as characters): the limit less
/// room for the forge's hidden marker.
const BUDGET: usize = COMMENT_LIMIT - 512;

/// Diagnostics listed before the rest is summarised as a count.
const MAX_DIAGNOSTICS: usize = 50;

/// Rows of the service table before the rest is summarised as a count.
const MAX_TABLE_ROWS: usize = 100;

/// The version label: on every object of a service, so a version bump touches all of
/// them.
const VERSION_LABEL: &str = "app.kubernetes.io/version";

/// Links to files at the pull request's head commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Links {
    /// `https://github.com/OWNER/REPO` (or the GitHub Enterprise equivalent).
    pub repository_url: String,
    /// The head commit.
    pub sha: String,
    /// Where the modelship repository root lies inside the Git repository: `` or
    /// `deploy/ml` (the `--path` of the daemon).
    pub root: String,
}

impl Links {
    /// `https://github.com/OWNER/REPO/blob/SHA/PATH#LN` (no `#L` for line 0).
    pub fn file(&self, file: &str, line: usize) -> String {
        let root = self.root.trim_matches('/');
        let path = if root.is_empty() {
            file.to_string()
        } else {
            format!("{root}/{file}")
        };
        let base = self.repository_url.trim_end_matches('/');
        match line {
            0 => format!("{base}/blob/{}/{path}", self.sha),
            n => format!("{base}/blob/{}/{path}#L{n}", self.sha),
        }
    }
}

/// Everything the comment shows besides the plan.
#[derive(Debug, Clone, Default)]
pub struct CommentContext {
    /// Diagnostics of the repository (errors and warnings).
    pub diagnostics: Vec<Diagnostic>,
    /// GPUs and cost per service, before and after.
    pub capacities: Capacities,
    /// What merging does per service; a service missing here rolls.
    pub merges: BTreeMap<ServiceId, Merge>,
    /// `spec.owner` per service, shown with the service.
    pub owners: BTreeMap<ServiceId, String>,
    /// The peak during a canary rollout per service: filled by the rollout module when it
    /// can estimate one; shown in the headline when any is given.
    pub peaks: BTreeMap<ServiceId, Peak>,
    /// Links for `file:line`; without them locations are plain text.
    pub links: Option<Links>,
    /// The settings of modelship.yaml the change edits that the followed branch decides
    /// (`Repository::deferred_settings`): the plan used the branch's.
    pub deferred_settings: Vec<&'static str>,
    /// The policy files the change adds, edits or removes: the plan was judged by the
    /// followed branch's policies.
    pub deferred_policies: Vec<String>,
}

impl CommentContext {
    /// The diagnostics and merge strategies of a repository, with its capacities.
    pub fn new(repository: &Repository, capacities: Capacities) -> Self {
        let mut merges = BTreeMap::new();
        let mut owners = BTreeMap::new();
        for loaded in &repository.services {
            if let Some(owner) = &loaded.service.spec.owner {
                owners.insert(loaded.id().clone(), owner.clone());
            }
            merges.insert(loaded.id().clone(), Merge::of(&loaded.service));
        }
        CommentContext {
            diagnostics: repository.diagnostics.clone(),
            capacities,
            merges,
            owners,
            peaks: BTreeMap::new(),
            links: None,
            deferred_settings: repository.deferred_settings.clone(),
            deferred_policies: Vec::new(),
        }
    }

    /// The same, with links to the head commit.
    pub fn with_links(mut self, links: Links) -> Self {
        self.links = Some(links);
        self
    }

    /// A location as Markdown: a link when links are known, else code.
    fn location(&self, file: &str, line: usize, column: usize) -> String {
        let text = match (line, column) {
            (0, _) => file.to_string(),
            (l, 0) => format!("{file}:{l}"),
            (l, c) => format!("{file}:{l}:{c}"),
        };
        match &self.links {
            Some(links) => format!("[`{text}`]({})", links.file(file, line)),
            None => format!("`{text}`"),
        }
    }
}

/// Renders a plan with no context: no diagnostics, no costs, no links.
pub fn markdown(plan: &Plan) -> String {
    comment(plan, &CommentContext::default())
}

/// Renders the pull-request comment, always under [`COMMENT_LIMIT`].
pub fn comment(plan: &Plan, context: &CommentContext) -> String {
    let blocked_asks = blocked_keep_live(plan, context);
    let context = &blocked_asks.0;
    let mut head = String::new();
    headline(plan, context, &mut head);
    if !context.deferred_settings.is_empty() {
        let _ = writeln!(
            head,
            "modelship.yaml: this change edits {}; they take effect when merged; this plan \
             uses the branch's.\n",
            context.deferred_settings.join(", ")
        );
    }
    if !context.deferred_policies.is_empty() {
        let files: Vec<String> = context
            .deferred_policies
            .iter()
            .map(|f| format!("`{f}`"))
            .collect();
        let _ = writeln!(
            head,
            "This PR changes policies ({}); they take effect after merge; this plan is \
             judged by the branch's.\n",
            files.join(", ")
        );
    }
    diagnostics(context, &mut head);
    if let Some(denied) = denied_text(plan) {
        let _ = writeln!(head, "**{denied}**: their objects are left untouched.\n");
    }
    let listed: Vec<&ServicePlan> = plan.services.iter().filter(|s| has_details(s)).collect();
    if plan.services.is_empty() {
        let _ = writeln!(head, "No services.");
        return head;
    }
    if listed.is_empty() {
        return head;
    }
    table(
        &listed,
        plan.services.len(),
        context,
        &blocked_asks.1,
        &mut head,
    );
    let sections: Vec<Section> = listed.iter().map(|s| section(s, context)).collect();
    fit(head, sections)
}

/// A blocked service changes nothing: its figures after the merge are its live ones. The
/// second map keeps what such a service asked for, to show it.
fn blocked_keep_live(
    plan: &Plan,
    context: &CommentContext,
) -> (CommentContext, BTreeMap<ServiceId, Capacity>) {
    let mut adjusted = context.clone();
    let mut asked = BTreeMap::new();
    for service in plan
        .services
        .iter()
        .filter(|s| matches!(s.status, ServiceStatus::Blocked(_)))
    {
        if let Some(capacity) = adjusted.capacities.services.get_mut(&service.id)
            && capacity.after != capacity.before
        {
            asked.insert(service.id.clone(), capacity.after);
            capacity.after = capacity.before;
        }
    }
    (adjusted, asked)
}

/// A service's `<details>` block, with and without its diffs.
struct Section {
    full: String,
    collapsed: String,
}

/// Joins the head and the sections within [`BUDGET`]: full sections while they fit, the
/// largest collapsed first, then sections left out with a note.
fn fit(head: String, sections: Vec<Section>) -> String {
    let mut collapsed = vec![false; sections.len()];
    let mut size = head.len() + sections.iter().map(|s| s.full.len()).sum::<usize>();
    let mut by_size: Vec<usize> = (0..sections.len()).collect();
    by_size.sort_by_key(|&i| std::cmp::Reverse(sections[i].full.len()));
    for i in by_size {
        if size <= BUDGET {
            break;
        }
        size -= sections[i].full.len() - sections[i].collapsed.len();
        collapsed[i] = true;
    }
    let mut out = head;
    let note_room = 300;
    for (i, section) in sections.iter().enumerate() {
        let text = if collapsed[i] {
            &section.collapsed
        } else {
            &section.full
        };
        if out.len() + text.len() + note_room > BUDGET {
            let left = sections.len() - i;
            let _ = writeln!(
                out,
                "\n**{left} more {} not shown**: the comment would pass GitHub's limit of \
                 {COMMENT_LIMIT} characters. Run `modelship plan` for the whole plan.",
                if left == 1 { "service" } else { "services" }
            );
            return cut(out);
        }
        out.push_str(text);
    }
    if collapsed.contains(&true) {
        let _ = writeln!(
            out,
            "\nSome diffs were left out to stay under GitHub's limit of {COMMENT_LIMIT} \
             characters. Run `modelship plan` for them."
        );
    }
    cut(out)
}

/// A last resort when the head alone is too long: cut at a character boundary.
fn cut(mut text: String) -> String {
    if text.len() <= BUDGET {
        return text;
    }
    let note = "\n\n**Truncated** to stay under GitHub's comment limit.\n";
    let mut end = BUDGET - note.len();
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.truncate(end);
    text.push_str(note);
    text
}

fn headline(plan: &Plan, context: &CommentContext, out: &mut String) {
    let _ = writeln!(out, "### modelship plan\n");
    let changing = plan.services.iter().filter(|s| s.has_changes()).count();
    let total = plan.services.len();
    let objects = counts_text(|a| match a {
        Action::Create | Action::Update | Action::Delete => plan.count(a),
        _ => 0,
    });
    if changing == 0 {
        let _ = writeln!(
            out,
            "**No changes**: {} up to date.",
            plural(total, "service")
        );
    } else {
        let _ = writeln!(
            out,
            "**{changing} of {} {}**: {objects}.",
            plural(total, "service"),
            if changing == 1 { "changes" } else { "change" }
        );
    }
    let total = context.capacities.total();
    let (before, after) = (total.before, total.after);
    if before.gpus > 0 || after.gpus > 0 {
        let delta = after.hourly - before.hourly;
        if before.gpus == after.gpus && delta.abs() < 0.005 {
            let _ = write!(
                out,
                "\nGPUs **{}**, no change · {}/hour ({}/month)",
                after.gpus,
                money(after.hourly),
                money(after.hourly * HOURS_PER_MONTH)
            );
        } else {
            let _ = write!(
                out,
                "\nGPUs **{} → {}** · cost **{}/hour** ({}/month), {}/hour in all",
                before.gpus,
                after.gpus,
                signed_money(delta),
                signed_money(delta * HOURS_PER_MONTH),
                money(after.hourly)
            );
        }
        let unpriced = before.unpriced.max(after.unpriced);
        if unpriced > 0 {
            let _ = write!(
                out,
                "; {} without an `hourlyCost` in the catalog not priced",
                plural_u64(unpriced, "GPU")
            );
        }
        let _ = writeln!(out);
    }
    if !context.peaks.is_empty() {
        let gpus: u64 = context.peaks.values().map(|p| p.gpus).sum();
        let hourly: f64 = context.peaks.values().map(|p| p.hourly).sum();
        let _ = writeln!(
            out,
            "\nPeak during canary rollouts: **{} GPUs**, {}/hour",
            gpus,
            money(hourly)
        );
    }
    let _ = writeln!(out);
}

fn diagnostics(context: &CommentContext, out: &mut String) {
    let errors = context
        .diagnostics
        .iter()
        .filter(|d| d.severity == Severity::Error)
        .count();
    let warnings = context.diagnostics.len() - errors;
    if context.diagnostics.is_empty() {
        return;
    }
    let mut parts = Vec::new();
    if errors > 0 {
        parts.push(plural(errors, "validation error"));
    }
    if warnings > 0 {
        parts.push(plural(warnings, "warning"));
    }
    let _ = write!(out, "**{}**", parts.join(", "));
    if errors > 0 {
        let _ = write!(
            out,
            ": services with errors are left untouched, and nothing is pruned"
        );
    }
    let _ = writeln!(out, "\n");
    for d in context.diagnostics.iter().take(MAX_DIAGNOSTICS) {
        let severity = match d.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        let _ = write!(
            out,
            "- {} **{severity}**: ",
            context.location(&d.file, d.line, d.column)
        );
        if !d.field.is_empty() {
            let _ = write!(out, "`{}`: ", d.field.replace('`', "'"));
        }
        let _ = write!(out, "{}", escape_message(&d.message));
        if let Some(hint) = &d.hint {
            let _ = write!(out, "; {}", escape_message(hint));
        }
        let _ = writeln!(out);
    }
    if context.diagnostics.len() > MAX_DIAGNOSTICS {
        let _ = writeln!(
            out,
            "- … and {} more: run `modelship validate` for all of them",
            context.diagnostics.len() - MAX_DIAGNOSTICS
        );
    }
    let _ = writeln!(out);
}

fn table(
    listed: &[&ServicePlan],
    total: usize,
    context: &CommentContext,
    asked: &BTreeMap<ServiceId, Capacity>,
    out: &mut String,
) {
    let _ = writeln!(
        out,
        "| Service | Status | Objects | GPUs | Cost/hour | Summary |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|");
    for s in listed.iter().take(MAX_TABLE_ROWS) {
        let capacity = context.capacities.of(&s.id);
        let mut gpus = gpus_cell(capacity.before, capacity.after);
        if let Some(wanted) = asked.get(&s.id) {
            let _ = write!(gpus, " (asks for {})", wanted.gpus);
        }
        let _ = writeln!(
            out,
            "| `{}` | {} | {} | {} | {} | {} |",
            s.id,
            status_text(s.status),
            counts_text(|a| s.count(a)),
            gpus,
            cost_cell(capacity.before, capacity.after),
            summary_cell(&s.summary)
        );
    }
    if listed.len() > MAX_TABLE_ROWS {
        let _ = writeln!(
            out,
            "| … | {} more | | | | |",
            plural(listed.len() - MAX_TABLE_ROWS, "service")
        );
    }
    if listed.len() < total {
        let _ = writeln!(
            out,
            "\n{} unchanged, not listed.",
            plural(total - listed.len(), "more service")
        );
    }
}

fn summary_cell(summary: &crate::plan::Summary) -> String {
    match summary_text(summary) {
        text if text.is_empty() => "-".to_string(),
        text => escape(&text),
    }
}

fn gpus_cell(before: Capacity, after: Capacity) -> String {
    match (before.gpus, after.gpus) {
        (0, 0) => "-".to_string(),
        (b, a) if b == a => b.to_string(),
        (b, a) => format!("{b} → {a}"),
    }
}

fn cost_cell(before: Capacity, after: Capacity) -> String {
    if before.gpus == 0 && after.gpus == 0 {
        return "-".to_string();
    }
    if (before.hourly - after.hourly).abs() < 0.005 {
        return money(after.hourly);
    }
    format!(
        "{} → {} ({})",
        money(before.hourly),
        money(after.hourly),
        signed_money(after.hourly - before.hourly)
    )
}

fn section(service: &ServicePlan, context: &CommentContext) -> Section {
    let id = service.id.to_string();
    let mut head = format!(
        "\n<details><summary><b>{id}</b>: {}</summary>\n\n",
        counts_text(|a| service.count(a))
    );
    if let Some(owner) = context.owners.get(&service.id) {
        let _ = writeln!(head, "Owner: {}\n", escape_message(owner));
    }
    if let Some(merge) = merge_line(service, context, &id) {
        let _ = writeln!(head, "**Merging will** {merge}.\n");
    }
    let mut listed = false;
    for violation in shown_violations(service) {
        let _ = writeln!(head, "{}", violation_item(violation, context));
        listed = true;
    }
    for object in &service.objects {
        if let Some(note) = ownership_note(object) {
            let sign = action_sign(object.action);
            let _ = writeln!(head, "- `{sign} {}`: {note}", object.key);
            listed = true;
        }
    }
    if listed {
        let _ = writeln!(head);
    }
    let changing: Vec<&ObjectPlan> = service
        .objects
        .iter()
        .filter(|o| matches!(o.action, Action::Create | Action::Update | Action::Delete))
        .collect();
    let mut diffs = String::new();
    let mut diffed = 0;
    let mut one_liners = String::new();
    for object in &changing {
        if let Some(line) = version_only(object) {
            let _ = writeln!(
                one_liners,
                "- `{} {}`: {line}",
                action_sign(object.action),
                object.key
            );
            continue;
        }
        diffed += 1;
        let _ = writeln!(diffs, "`{} {}`\n", action_sign(object.action), object.key);
        if !object.diff.is_empty() {
            let fence = fence_for(&object.diff);
            let _ = writeln!(
                diffs,
                "{fence}diff\n{}{fence}\n",
                ensure_newline(&object.diff)
            );
        }
    }
    if !one_liners.is_empty() {
        let _ = writeln!(head, "{one_liners}");
    }
    let blocked = service.count(Action::Blocked);
    if blocked > 0 {
        let _ = writeln!(head, "{} left untouched.\n", plural(blocked, "live object"));
    }
    let end = "</details>\n";
    let collapsed = if diffed > 0 {
        format!(
            "{head}Diffs of {} left out to keep the comment short.\n\n{end}",
            plural(diffed, "object")
        )
    } else {
        format!("{head}{end}")
    };
    Section {
        full: format!("{head}{diffs}{end}"),
        collapsed,
    }
}

/// What merging does to a service, `None` when it does nothing.
fn merge_line(service: &ServicePlan, context: &CommentContext, id: &str) -> Option<String> {
    match service.status {
        ServiceStatus::Blocked(_) => return Some("leave this service untouched".to_string()),
        ServiceStatus::Removed => {
            return Some(format!(
                "delete its {} (the daemon prunes; `apply` needs `--prune`)",
                plural(service.count(Action::Delete), "object")
            ));
        }
        ServiceStatus::Present => {}
    }
    if !service.has_changes() {
        return None;
    }
    let deployment = service
        .objects
        .iter()
        .find(|o| o.key.kind == "Deployment" && o.key.name == service.id.name());
    let merge = context.merges.get(&service.id).unwrap_or(&Merge::Rolling);
    // A plan with the rollouts advanced keeps the stable template and creates the canary.
    let canary_name = format!("{}-canary", service.id.name());
    let canary_created = service.objects.iter().any(|o| {
        o.key.kind == "Deployment" && o.key.name == canary_name && o.action == Action::Create
    });
    if canary_created && matches!(merge, Merge::Canary(_)) {
        return Some(merge.sentence(id));
    }
    match deployment.map(|d| d.action) {
        Some(Action::Create) => Some(format!(
            "create the service ({})",
            plural(service.count(Action::Create), "object")
        )),
        Some(Action::Update) if deployment.is_some_and(changes_pods) => Some(merge.sentence(id)),
        _ => Some("apply the changes in place; no pod restarts".to_string()),
    }
}

/// True when a Deployment's pod template changes (new pods are rolled out).
fn changes_pods(deployment: &ObjectPlan) -> bool {
    deployment.changes.iter().any(|c| {
        matches!(c.path.0.as_slice(), [Segment::Field(a), Segment::Field(b), ..] if a == "spec" && b == "template")
    })
}

/// `only the version label changes (1.4.1 → 1.4.2)` when that (with bookkeeping
/// annotations) is an update's only change, on the object and its pod template;
/// `only bookkeeping annotations change` without the label; else `None`.
fn version_only(object: &ObjectPlan) -> Option<String> {
    if object.action != Action::Update {
        return None;
    }
    let mut label = None;
    for change in &object.changes {
        match bookkeeping(change)? {
            Bookkeeping::VersionLabel => label = label.or(Some(change)),
            Bookkeeping::Annotation => {}
        }
    }
    let side = |v: &Option<serde_json::Value>| {
        v.as_ref()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_else(|| "-".to_string())
    };
    match label {
        Some(change) => Some(format!(
            "only the version label changes ({} → {})",
            side(&change.before),
            side(&change.after)
        )),
        None if object.changes.is_empty() => None,
        None => Some("only bookkeeping annotations change".to_string()),
    }
}

/// A change that is bookkeeping rather than a real change of the object.
enum Bookkeeping {
    VersionLabel,
    Annotation,
}

fn bookkeeping(change: &FieldChange) -> Option<Bookkeeping> {
    let names: Vec<&str> = change
        .path
        .0
        .iter()
        .map(|s| match s {
            Segment::Field(name) => name.as_str(),
            _ => "",
        })
        .collect();
    let (kind, name) = match names.as_slice() {
        ["metadata", kind, name] | ["spec", "template", "metadata", kind, name] => (*kind, *name),
        _ => return None,
    };
    match kind {
        "labels" if name == VERSION_LABEL => Some(Bookkeeping::VersionLabel),
        // The rollout state and plan are bookkeeping here: the merge line says what the
        // rollout does.
        "annotations"
            if crate::plan::BOOKKEEPING_ANNOTATIONS.contains(&name)
                || name == crate::rollout::ANNOTATION_ROLLOUT
                || name == crate::rollout::ANNOTATION_PLAN =>
        {
            Some(Bookkeeping::Annotation)
        }
        _ => None,
    }
}

/// One list item: severity, policy (file:line), object, message, and the spec file:line.
fn violation_item(v: &Violation, context: &CommentContext) -> String {
    let object = match &v.namespace {
        Some(namespace) => format!("{} {namespace}/{}", v.kind, v.name),
        None => format!("{} {}", v.kind, v.name),
    };
    let source = match &v.source {
        Some(s) => format!(" ({})", context.location(&s.file, s.line, 0)),
        None => String::new(),
    };
    // Policies of the repository link to it; those of `--policies DIR` live elsewhere.
    let policy_at = if v.policy_file.starts_with("policies/") {
        context.location(&v.policy_file, v.policy_line, 0)
    } else {
        format!("`{}:{}`", v.policy_file, v.policy_line)
    };
    format!(
        "- **{}** policy `{}` ({policy_at}): {object}: {}{source}",
        v.severity(),
        v.policy,
        escape_message(&v.message)
    )
}

fn money(value: f64) -> String {
    let cents = (value.abs() * 100.0).round() as u64;
    let (dollars, cents) = (cents / 100, cents % 100);
    let digits = dollars.to_string();
    let mut grouped = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(c);
    }
    let sign = if value < -0.005 { "-" } else { "" };
    format!("{sign}${grouped}.{cents:02}")
}

fn signed_money(value: f64) -> String {
    if value > 0.005 {
        format!("+{}", money(value))
    } else if value < -0.005 {
        money(value)
    } else {
        "±$0.00".to_string()
    }
}

fn plural(n: usize, word: &str) -> String {
    plural_u64(n as u64, word)
}

fn plural_u64(n: u64, word: &str) -> String {
    if n == 1 {
        format!("1 {word}")
    } else {
        format!("{n} {word}s")
    }
}

/// A message as literal text: no HTML or Markdown markup gets through.
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

#[cfg(test)]
#[path = "markdown_tests.rs"]
mod tests;
