//! The preview environments of pull requests, as the pull-request worker drives them:
//! compile (`compile::preview`), write through the engine (`engine::preview`), and say
//! what was done in the PR's sticky preview comment.
//!
//! ```text
//! deploy:    plan's changed services ─compile_previews─▶ Previews
//!            ─ namespaces that exist and are not this PR's: skipped, left alone
//!            ─read_preview_live (this PR's objects)─ engine::preview::deploy ─ comment
//! tear_down: this PR's namespaces (LIST by label) ─ engine::preview::tear_down ─ comment
//! suspend:   this PR's Deployments scaled to zero (a push by someone who cannot write)
//!            ─ comment; the next deploy (a writer labels again) scales them back
//! refuse:    tear down what there is ─ comment saying why there is no preview
//! resync:    every preview namespace ─ GitHub: is its PR open? ─ tear down the others
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use super::{PullError, Worker};
use crate::cluster::{self, Kinds, PreviewNamespace, RetryPolicy};
use crate::compile::{self, preview::Previews};
use crate::engine::{self, Prepared};
use crate::forge::events::PullRequestEvent;
use crate::forge::{Marker, Repo};
use crate::meta::ServiceId;
use crate::plan::{Plan, ServiceStatus};

/// Deploys the preview of the services the plan changes.
pub(super) async fn deploy(
    worker: &Worker,
    event: &PullRequestEvent,
    prepared: &Prepared,
    plan: &Plan,
    source: &compile::Source,
) -> Result<(), PullError> {
    let changed: BTreeSet<ServiceId> = plan
        .services
        .iter()
        .filter(|s| s.status == ServiceStatus::Present && s.has_changes())
        .map(|s| s.id.clone())
        .collect();
    let mut previews =
        compile::preview::compile_previews(&prepared.repository, &changed, event.number, source);
    let client = &worker.shared.client;
    let retry = RetryPolicy::default();
    let mut kinds = Kinds::new(client.clone(), retry);
    let existing = namespaces_of(worker, &event.repo, event.number).await?;
    // A namespace of the preview's name that is not this PR's own is never written to.
    let own: BTreeSet<&str> = existing.iter().map(|n| n.name.as_str()).collect();
    let wanted = previews.namespaces();
    let others: Vec<String> = wanted
        .into_iter()
        .filter(|n| !own.contains(n.as_str()))
        .collect();
    let taken = cluster::existing_namespaces(client, &mut kinds, &others, &retry).await?;
    previews.leave_alone(&taken);
    let desired = engine::preview::desired(&previews);
    let live = cluster::read_preview_live(
        client,
        &mut kinds,
        &desired,
        &retry,
        &worker.shared.config.instance,
        event.number,
    )
    .await?;
    let repository = event.repo.to_string();
    let report = engine::preview::deploy(
        &worker.shared.writer,
        &repository,
        &previews,
        &live,
        &existing,
    )
    .await?;
    for _ in 0..report.applied.len() + report.deleted.len() + report.namespaces_deleted.len() {
        worker.shared.metrics.writes.inc();
    }
    tracing::info!(pr = event.number, %repository, writes = report.applied.len(), "preview deployed");
    let key = format!("{}#{}", event.repo, event.number);
    let namespaces: Vec<String> = previews.namespaces().into_iter().collect();
    worker
        .set_state(Some(&key), |s| s.preview = namespaces)
        .await;
    let markdown = comment(&previews);
    worker
        .github
        .upsert_comment(&event.repo, event.number, Marker::Preview, &markdown)
        .await?;
    Ok(())
}

/// Deletes the preview of a pull request, if it has one, and says so in its comment.
pub(super) async fn tear_down(worker: &Worker, repo: &Repo, pr: u64) -> Result<(), PullError> {
    let namespaces = namespaces_of(worker, repo, pr).await?;
    if namespaces.is_empty() {
        return Ok(());
    }
    delete(worker, &namespaces).await?;
    let key = format!("{repo}#{pr}");
    worker.set_state(Some(&key), |s| s.preview.clear()).await;
    let names: Vec<&str> = namespaces.iter().map(|n| n.name.as_str()).collect();
    let markdown = format!(
        "### modelship preview\n\nTorn down: namespace{} {} deleted.\n",
        if names.len() == 1 { "" } else { "s" },
        names
            .iter()
            .map(|n| format!("`{n}`"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    worker
        .github
        .upsert_comment(repo, pr, Marker::Preview, &markdown)
        .await?;
    Ok(())
}

/// The field manager of the scale to zero of a suspended preview.
const SUSPEND_MANAGER: &str = "modelship-preview-suspend";

/// Scales the Deployments of a pull request's preview to zero and says why in its
/// comment: someone without write permission pushed, and the preview waits for a writer
/// to label the pull request again.
pub(super) async fn suspend(worker: &Worker, event: &PullRequestEvent) -> Result<(), PullError> {
    let namespaces = namespaces_of(worker, &event.repo, event.number).await?;
    if namespaces.is_empty() {
        return Ok(());
    }
    let selector = format!("{}={}", crate::meta::LABEL_PREVIEW, event.number);
    for namespace in &namespaces {
        let scaled = worker
            .shared
            .writer
            .scale_to_zero(&namespace.name, &selector, SUSPEND_MANAGER)
            .await?;
        for _ in 0..scaled {
            worker.shared.metrics.writes.inc();
        }
    }
    tracing::warn!(repo = %event.repo, pr = event.number, sender = %event.sender, "push by someone without write permission: preview suspended");
    let pusher = if event.sender.is_empty() {
        "someone".to_string()
    } else {
        format!("@{}", event.sender)
    };
    let markdown = format!(
        "### modelship preview

Suspended: {pusher}, who has no write permission on {}, pushed `{}`. The preview's Deployments are scaled to zero until someone with write permission labels the pull request again.
",
        event.repo, event.head.sha
    );
    worker
        .github
        .upsert_comment(&event.repo, event.number, Marker::Preview, &markdown)
        .await?;
    Ok(())
}

/// No preview for a pull request: what there is is torn down, and the preview comment
/// says `why`.
pub(super) async fn refuse(
    worker: &Worker,
    repo: &Repo,
    pr: u64,
    why: &str,
) -> Result<(), PullError> {
    let namespaces = namespaces_of(worker, repo, pr).await?;
    if !namespaces.is_empty() {
        delete(worker, &namespaces).await?;
        let key = format!("{repo}#{pr}");
        worker.set_state(Some(&key), |s| s.preview.clear()).await;
    }
    tracing::info!(%repo, pr, %why, "no preview");
    let markdown = format!(
        "### modelship preview

Not previewed: {why}.
"
    );
    worker
        .github
        .upsert_comment(repo, pr, Marker::Preview, &markdown)
        .await?;
    Ok(())
}

/// Tears down the previews of pull requests GitHub no longer has open (closed while the
/// daemon was down, or a missed delivery).
pub(super) async fn resync(worker: &Worker) -> Result<(), PullError> {
    let all = read_all(worker).await?;
    let mut by_pull: BTreeMap<(String, u64), Vec<PreviewNamespace>> = BTreeMap::new();
    for namespace in all {
        match &namespace.repository {
            Some(repository) => by_pull
                .entry((repository.clone(), namespace.pr))
                .or_default()
                .push(namespace),
            None => {
                tracing::warn!(namespace = %namespace.name, "preview namespace without its repository annotation: left alone")
            }
        }
    }
    for ((repository, pr), namespaces) in by_pull {
        let Ok(repo) = repository.parse::<Repo>() else {
            tracing::warn!(%repository, "preview namespace of an unknown repository: left alone");
            continue;
        };
        let state = worker.github.pull_request(&repo, pr).await?;
        if !state.open {
            tracing::info!(%repository, pr, "pull request no longer open: tearing its preview down");
            delete(worker, &namespaces).await?;
            let key = format!("{repository}#{pr}");
            // A closed PR leaves the board (a merged one waits there for its outcome).
            let mut board = worker.shared.board.write().await;
            if board.pulls.get(&key).is_some_and(|s| s.state != "merged") {
                board.pulls.remove(&key);
            }
        }
    }
    Ok(())
}

async fn delete(worker: &Worker, namespaces: &[PreviewNamespace]) -> Result<(), PullError> {
    let (deleted, failures) = engine::preview::tear_down(&worker.shared.writer, namespaces).await;
    for _ in &deleted {
        worker.shared.metrics.writes.inc();
    }
    match failures.into_iter().next() {
        Some(error) => Err(error.into()),
        None => Ok(()),
    }
}

async fn read_all(worker: &Worker) -> Result<Vec<PreviewNamespace>, PullError> {
    let retry = RetryPolicy::default();
    let mut kinds = Kinds::new(worker.shared.client.clone(), retry);
    Ok(cluster::read_preview_namespaces(&worker.shared.client, &mut kinds, &retry).await?)
}

/// The preview namespaces of one pull request.
async fn namespaces_of(
    worker: &Worker,
    repo: &Repo,
    pr: u64,
) -> Result<Vec<PreviewNamespace>, PullError> {
    let repository = repo.to_string();
    Ok(read_all(worker)
        .await?
        .into_iter()
        .filter(|n| n.pr == pr && n.repository.as_deref() == Some(repository.as_str()))
        .collect())
}

/// The preview comment: per previewed service its namespace, objects, URLs and hourly
/// cost; the skipped services and why.
pub fn comment(previews: &Previews) -> String {
    let mut out = String::from("### modelship preview\n\n");
    if previews.services.is_empty() && previews.skipped.is_empty() {
        out.push_str("No service changes: nothing to preview.\n");
        return out;
    }
    if !previews.services.is_empty() {
        let _ = writeln!(
            out,
            "{} service{} previewed, {}/hour in GPUs.\n",
            previews.services.len(),
            if previews.services.len() == 1 {
                ""
            } else {
                "s"
            },
            dollars(previews.hourly())
        );
        out.push_str(
            "| service | namespace | objects | URLs | cost/hour |\n|---|---|---|---|---|\n",
        );
        for service in &previews.services {
            let objects: Vec<String> = service
                .service
                .objects
                .iter()
                .filter_map(|o| {
                    let kind = o.get("kind")?.as_str()?;
                    let name = o.pointer("/metadata/name")?.as_str()?;
                    Some(format!("{kind}/{name}"))
                })
                .collect();
            let mut urls = vec![format!("`{}`", service.url)];
            urls.extend(service.hosts.iter().map(|h| format!("`{h}`")));
            let _ = writeln!(
                out,
                "| `{}` | `{}` | {} | {} | {} |",
                service.source,
                service.service.id.namespace(),
                objects.join(", "),
                urls.join("<br>"),
                dollars(service.hourly)
            );
        }
        out.push('\n');
    }
    for (id, skip) in &previews.skipped {
        let _ = writeln!(out, "- `{id}` skipped: {skip}.");
    }
    out.push_str("\nThe preview runs one replica of each changed service, without autoscaling or disruption budget; it is updated on every push and deleted when the pull request closes or loses its label.\n");
    out
}

fn dollars(value: f64) -> String {
    format!("${value:.2}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compile::preview::{PreviewService, Skip};
    use crate::state::DesiredService;
    use serde_json::json;

    #[test]
    fn the_comment_lists_objects_urls_costs_and_skipped_services() {
        let previews = Previews {
            pr: 4,
            services: vec![PreviewService {
                source: ServiceId::new("ml", "a").unwrap(),
                service: DesiredService {
                    id: ServiceId::new("ml-pr-4", "a").unwrap(),
                    file: "services/a.yaml".into(),
                    objects: vec![json!({"kind": "Deployment", "metadata": {"name": "a"}})],
                },
                hosts: vec!["pr-4.a.example.com".into()],
                url: "http://a.ml-pr-4.svc.cluster.local:8080".into(),
                hourly: 1.6,
            }],
            skipped: vec![(ServiceId::new("ml", "g").unwrap(), Skip::Gpu)],
            ..Previews::default()
        };
        let text = comment(&previews);
        assert!(
            text.contains("| `ml/a` | `ml-pr-4` | Deployment/a |"),
            "{text}"
        );
        assert!(text.contains("`pr-4.a.example.com`"), "{text}");
        assert!(text.contains("$1.60"), "{text}");
        assert!(text.contains("- `ml/g` skipped: uses GPUs"), "{text}");
        let nothing = comment(&Previews::default());
        assert!(nothing.contains("nothing to preview"), "{nothing}");
    }
}
