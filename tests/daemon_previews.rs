//! Preview environments and comment commands of pull requests, end to end through the
//! daemon's `/hooks/github`, on the sandbox with the GitHub double.

mod daemon_support;
mod forge_support;
mod pulls_support;

use std::time::Duration;

use daemon_support::*;
use forge_support::Double;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::Namespace;
use kube::Api;
use modelship::forge::Marker;
use modelship::rollout::RolloutState;
use modelship::sandbox::Sandbox;
use pulls_support::*;

const HOUR: Duration = Duration::from_secs(3600);
const LABEL: &str = "modelship/preview";

fn main_files() -> Vec<(&'static str, String)> {
    vec![
        ("modelship.yaml", modelship_yaml("")),
        ("services/a.yaml", scaled_service("a", "1")),
        ("services/b.yaml", service("b", "1")),
    ]
}

fn head_files(a_tag: &str) -> Vec<(&'static str, String)> {
    vec![
        ("modelship.yaml", modelship_yaml("")),
        ("services/a.yaml", scaled_service("a", a_tag)),
        ("services/b.yaml", service("b", "1")),
        ("services/g.yaml", gpu_service("g", "1")),
    ]
}

async fn start(
    sandbox: &Sandbox,
    remote: &Remote,
    double: &Double,
    cache: &std::path::Path,
) -> Running {
    let config = pulls_config(&remote.path(), cache, double, HOUR);
    let daemon = Running::start(config, sandbox.client()).await;
    daemon.wait_ready().await;
    daemon
}

async fn deployment(client: &kube::Client, namespace: &str, name: &str) -> Option<Deployment> {
    let api: Api<Deployment> = Api::namespaced(client.clone(), namespace);
    api.get_opt(name).await.ok().flatten()
}

async fn namespace_exists(client: &kube::Client, name: &str) -> bool {
    let api: Api<Namespace> = Api::all(client.clone());
    api.get_opt(name).await.ok().flatten().is_some()
}

fn image_of(deployment: &Deployment) -> Option<String> {
    deployment.spec.as_ref()?.template.spec.as_ref()?.containers[0]
        .image
        .clone()
}

async fn wait_preview_image(client: &kube::Client, namespace: &str, name: &str, tag: &str) {
    let want = format!("registry.example.com/{name}:{tag}");
    eventually(&format!("preview {namespace}/{name} at {tag}"), || {
        let want = want.clone();
        async move {
            let found = deployment(client, namespace, name).await?;
            (image_of(&found).as_deref() == Some(want.as_str())).then_some(())
        }
    })
    .await;
}

async fn wait_namespace_gone(client: &kube::Client, name: &str) {
    eventually(&format!("namespace {name} deleted"), || async move {
        (!namespace_exists(client, name).await).then_some(())
    })
    .await;
}

/// Waits for a comment of modelship on `pr` that contains `text`.
async fn reply_containing(double: &Double, pr: u64, text: &str) -> forge_support::Comment {
    eventually(&format!("a comment with {text}"), || async {
        double
            .own_comments(pr)
            .into_iter()
            .find(|c| c.body.contains(text))
    })
    .await
}

fn preview_comment(double: &Double, pr: u64) -> Option<String> {
    double
        .own_comments(pr)
        .into_iter()
        .find(|c| c.body.starts_with(Marker::Preview.text()))
        .map(|c| c.body)
}

#[tokio::test]
async fn a_labelled_pr_is_previewed_kept_out_of_main_updated_and_torn_down() {
    let sandbox = Sandbox::start().await.unwrap();
    let client = sandbox.client();
    let remote = Remote::new();
    commit_to(&remote.path(), "refs/heads/main", &main_files());
    let double = Double::start().await;
    let cache = tempfile::tempdir().unwrap();
    let daemon = start(&sandbox, &remote, &double, cache.path()).await;
    let addr = daemon.addr();
    wait_image(&client, "a", "1").await;

    let head = commit_to(&remote.path(), "refs/pull/11/head", &head_files("2")).to_string();
    let opened = pull_request("labeled", 11, &head, &[LABEL]);
    let mut opened = opened;
    opened["label"] = serde_json::json!({"name": LABEL});
    deliver_ok(addr, "pull_request", &opened, "p-1").await;
    wait_preview_image(&client, "ml-pr-11", "a", "2").await;

    let preview = deployment(&client, "ml-pr-11", "a").await.unwrap();
    assert_eq!(preview.spec.as_ref().and_then(|s| s.replicas), Some(1));
    let labels = preview.metadata.labels.clone().unwrap_or_default();
    assert_eq!(
        labels.get("modelship.dev/preview").map(String::as_str),
        Some("11")
    );
    let hpas: Api<HorizontalPodAutoscaler> = Api::namespaced(client.clone(), "ml-pr-11");
    assert!(
        hpas.get_opt("a").await.unwrap().is_none(),
        "no HPA in a preview"
    );
    assert!(
        deployment(&client, "ml-pr-11", "b").await.is_none(),
        "unchanged services are not previewed"
    );
    assert!(
        deployment(&client, "ml-pr-11", "g").await.is_none(),
        "GPU skipped"
    );
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let ns = namespaces.get("ml-pr-11").await.unwrap();
    let ns_labels = ns.metadata.labels.unwrap_or_default();
    assert_eq!(
        ns_labels.get("modelship.dev/preview").map(String::as_str),
        Some("11")
    );
    let comment = eventually("the preview comment", || async {
        preview_comment(&double, 11)
    })
    .await;
    assert!(comment.contains("`ml-pr-11`"), "{comment}");
    assert!(comment.contains("`ml/g` skipped: uses GPUs"), "{comment}");
    assert!(comment.contains("Deployment/a"), "{comment}");

    // The main reconcile neither lists nor prunes the preview.
    let mut main = main_files();
    main[2] = ("services/b.yaml", service("b", "2"));
    commit_to(&remote.path(), "refs/heads/main", &main);
    assert_eq!(push_webhook(addr, SECRET).await, 202);
    wait_image(&client, "b", "2").await;
    assert!(deployment(&client, "ml-pr-11", "a").await.is_some());
    let board = status(addr).await;
    assert!(board["services"].get("ml-pr-11/a").is_none(), "{board}");
    // Nor does the CLI's live read (plan, apply --prune).
    let mut kinds = modelship::cluster::Kinds::new(client.clone(), Default::default());
    let live = modelship::cluster::read_live(
        &client,
        &mut kinds,
        &Default::default(),
        &Default::default(),
    )
    .await
    .unwrap();
    use modelship::plan::LiveState as _;
    assert!(
        live.services().iter().all(|(ns, _)| ns == "ml"),
        "{:?}",
        live.services()
    );
    assert_eq!(board["pulls"]["acme/models#11"]["preview"][0], "ml-pr-11");

    // A push updates the preview in place.
    let head = commit_to(&remote.path(), "refs/pull/11/head", &head_files("3")).to_string();
    let pushed = pull_request("synchronize", 11, &head, &[LABEL]);
    deliver_ok(addr, "pull_request", &pushed, "p-2").await;
    wait_preview_image(&client, "ml-pr-11", "a", "3").await;
    assert_eq!(
        double
            .own_comments(11)
            .iter()
            .filter(|c| c.body.starts_with(Marker::Preview.text()))
            .count(),
        1,
        "one preview comment"
    );

    // The label goes: the preview goes.
    let mut unlabeled = pull_request("unlabeled", 11, &head, &[]);
    unlabeled["label"] = serde_json::json!({"name": LABEL});
    deliver_ok(addr, "pull_request", &unlabeled, "p-3").await;
    wait_namespace_gone(&client, "ml-pr-11").await;
    let comment = eventually("the torn-down comment", || async {
        preview_comment(&double, 11).filter(|c| c.contains("Torn down"))
    })
    .await;
    assert!(comment.contains("`ml-pr-11`"), "{comment}");
    assert_eq!(
        image(&client, "a").await.as_deref(),
        Some("registry.example.com/a:1")
    );
    daemon.stop().await;
}

#[tokio::test]
async fn previews_of_prs_closed_while_the_daemon_was_down_are_removed_at_start_up() {
    let sandbox = Sandbox::start().await.unwrap();
    let client = sandbox.client();
    let remote = Remote::new();
    commit_to(&remote.path(), "refs/heads/main", &main_files());
    let double = Double::start().await;
    let cache = tempfile::tempdir().unwrap();
    let daemon = start(&sandbox, &remote, &double, cache.path()).await;
    let addr = daemon.addr();
    for (pr, delivery) in [(12, "s-1"), (13, "s-2")] {
        let reference = format!("refs/pull/{pr}/head");
        let head = commit_to(&remote.path(), &reference, &head_files("2")).to_string();
        double.set_pull(pr, true, &head, &[LABEL]);
        let event = pull_request("opened", pr, &head, &[LABEL]);
        deliver_ok(addr, "pull_request", &event, delivery).await;
        wait_preview_image(&client, &format!("ml-pr-{pr}"), "a", "2").await;
    }
    daemon.stop().await;

    double.set_pull(12, false, "x", &[LABEL]);
    let daemon = start(&sandbox, &remote, &double, cache.path()).await;
    wait_namespace_gone(&client, "ml-pr-12").await;
    eventually("PR 13 asked about", || async {
        double
            .requests()
            .iter()
            .any(|r| r.path.ends_with("/pulls/13"))
            .then_some(())
    })
    .await;
    assert!(
        namespace_exists(&client, "ml-pr-13").await,
        "an open PR keeps its preview"
    );

    // Closing PR 13 tears its preview down at once.
    let mut closed = pull_request("closed", 13, "x", &[LABEL]);
    closed["pull_request"]["merged"] = false.into();
    deliver_ok(daemon.addr(), "pull_request", &closed, "s-3").await;
    wait_namespace_gone(&client, "ml-pr-13").await;
    daemon.stop().await;
}

/// A canary service over the replicas router (its analysis never runs here: no rollout
/// starts, the stable template is the desired one).
const CANARY: &str = "apiVersion: modelship.dev/v1alpha1\nkind: ModelService\nmetadata: {name: c, namespace: ml}\nspec:\n  model: {name: c, version: \"1.0.0\"}\n  runtime: {image: \"registry.example.com/c:1\"}\n  resources: {cpu: \"1\", memory: 1Gi}\n  replicas: 2\n  rollout: {strategy: canary, steps: [50, 100]}\n  traffic: {router: replicas}\n";

#[tokio::test]
async fn approvals_from_comments_write_the_command_for_writers_and_refuse_others() {
    let sandbox = Sandbox::start().await.unwrap();
    let client = sandbox.client();
    let remote = Remote::new();
    // `a` rolls out as a rolling update, `c` as a canary over the replicas router.
    let mut files = main_files();
    files[0].1 = modelship_yaml("  prometheus: {url: \"http://127.0.0.1:9\"}\n");
    files.push(("services/c.yaml", CANARY.to_string()));
    commit_to(&remote.path(), "refs/heads/main", &files);
    let double = Double::start().await;
    double.grant("alice", "write");
    double.grant("bob", "read");
    let cache = tempfile::tempdir().unwrap();
    let daemon = start(&sandbox, &remote, &double, cache.path()).await;
    let addr = daemon.addr();
    wait_image(&client, "a", "1").await;
    wait_image(&client, "c", "1").await;
    let command = |d: &Deployment| {
        d.metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get("modelship.dev/rollout-command"))
            .cloned()
    };

    let refused = issue_comment(20, "bob", "/modelship abort ml/a", 501);
    deliver_ok(addr, "issue_comment", &refused, "c-1").await;
    let reply = reply_containing(&double, 20, "Not done").await;
    assert!(
        reply.body.contains("@bob needs write permission"),
        "{}",
        reply.body
    );
    let live = deployment(&client, "ml", "a").await.unwrap();
    assert_eq!(command(&live), None, "nothing written for bob");

    // A service that is not a canary has no rollout to approve.
    let rolling = issue_comment(20, "alice", "/modelship approve ml/a", 505);
    deliver_ok(addr, "issue_comment", &rolling, "c-5").await;
    let reply = reply_containing(&double, 20, "`ml/a`").await;
    assert!(reply.body.contains("has no rollout"), "{}", reply.body);
    let live = deployment(&client, "ml", "a").await.unwrap();
    assert_eq!(
        command(&live),
        None,
        "nothing written for a rolling service"
    );

    let allowed = issue_comment(20, "alice", "LGTM\n/modelship approve ml/c", 502);
    deliver_ok(addr, "issue_comment", &allowed, "c-2").await;
    let reply = reply_containing(&double, 20, "@alice").await;
    assert!(
        reply.body.contains("sent") && reply.body.contains("ml/c"),
        "{}",
        reply.body
    );
    // The command is bound to the template the rollout state names.
    let live = deployment(&client, "ml", "c").await.unwrap();
    let state = live
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get("modelship.dev/rollout"))
        .cloned()
        .expect("the canary service has a rollout state");
    let hash = RolloutState::from_json(&state).unwrap().template_hash;
    assert!(
        reply.body.contains(&format!("approve@{hash}")),
        "{}",
        reply.body
    );
    if let Some(written) = command(&live) {
        assert_eq!(written, format!("approve@{hash}"));
    }

    let missing = issue_comment(20, "alice", "/modelship retry ml/nope", 503);
    deliver_ok(addr, "issue_comment", &missing, "c-3").await;
    let reply = reply_containing(&double, 20, "ml/nope").await;
    assert!(reply.body.contains("no Deployment"), "{}", reply.body);
    // `/modelship plan` plans the PR's head as GitHub reports it.
    let head = commit_to(&remote.path(), "refs/pull/20/head", &head_files("5")).to_string();
    double.set_pull(20, true, &head, &[]);
    let replan = issue_comment(20, "carol", "/modelship plan", 504);
    deliver_ok(addr, "issue_comment", &replan, "c-4").await;
    let plan = reply_containing(&double, 20, Marker::Plan.text()).await;
    assert!(plan.body.contains("a:5"), "{}", plan.body);
    // The main reconcile does not fight the annotation.
    assert_eq!(
        image(&client, "a").await.as_deref(),
        Some("registry.example.com/a:1")
    );
    daemon.stop().await;
}
