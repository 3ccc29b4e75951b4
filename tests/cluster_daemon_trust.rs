//! Who may make a pull request do what, end to end through the daemon's `/hooks/github`
//! with the GitHub double, on the sandbox, then on the real cluster of
//! `MODELSHIP_TEST_KUBECONFIG` (`support::target`): previews only for labels a writer
//! added, suspended by a push of someone who cannot write, never for forks by default;
//! deliveries of another repository refused; rollout commands bound to the rollout their
//! pull request's merge started; a delivery acted on once, restarts included.

mod support;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use modelship::forge::Marker;
use serde_json::{Value, json};
use support::daemon::*;
use support::forge::Double;
use support::poll::*;
use support::pulls::world::World;
use support::pulls::*;
use support::target::{Target, on_each_target};

const LABEL: &str = "modelship/preview";

/// Main: `a` scaled (HPA and PDB), `b` plain, in namespace `ml`.
fn main_files(ml: &str) -> Vec<(&'static str, String)> {
    vec![
        ("modelship.yaml", modelship_yaml(ml, "")),
        ("services/a.yaml", scaled_service(ml, "a", "1")),
        ("services/b.yaml", service_in(ml, "b", "1")),
    ]
}

/// A head changing `a` to `a_tag`.
fn head_files(ml: &str, a_tag: &str) -> Vec<(&'static str, String)> {
    vec![
        ("modelship.yaml", modelship_yaml(ml, "")),
        ("services/a.yaml", scaled_service(ml, "a", a_tag)),
        ("services/b.yaml", service_in(ml, "b", "1")),
    ]
}

/// `action` of PR `pr` at `sha`, sent by `sender`, the preview label on it.
fn labelled(action: &str, pr: u64, sha: &str, sender: &str) -> Value {
    let mut event = pull_request(action, pr, sha, &[LABEL]);
    event["sender"] = json!({"login": sender});
    if action == "labeled" {
        event["label"] = json!({"name": LABEL});
    }
    event
}

/// The preview comment of modelship on PR `pr` once it contains `text`.
async fn preview_comment_with(world: &World, pr: u64, text: &str) -> String {
    world
        .eventually(&format!("a preview comment with {text}"), || async {
            world
                .comments_with(pr, Marker::Preview)
                .into_iter()
                .map(|c| c.body)
                .find(|body| body.contains(text))
        })
        .await
}

/// The replicas of Deployment `name` of `namespace`.
async fn replicas(world: &World, namespace: &str, name: &str) -> Option<i32> {
    let deployment = world.deployment(namespace, name).await?;
    deployment.spec.and_then(|s| s.replicas)
}

#[tokio::test]
async fn previews_follow_who_labelled_who_pushed_and_where_from() {
    on_each_target(
        "previews_follow_who_labelled_who_pushed_and_where_from",
        previews_follow_who_labelled_who_pushed_and_where_from_on,
    )
    .await;
}

async fn previews_follow_who_labelled_who_pushed_and_where_from_on(cluster: Target) {
    let ml = cluster.ns(NS);
    let double = Double::start().await;
    double.grant("alice", "write");
    double.grant("bob", "read");
    let world = World::start_with(cluster, &main_files(&ml), double, |_| {}).await;
    let addr = world.daemon.addr();
    world.place().wait_image("a", "1").await;

    // A delivery about another repository: refused, nothing posted.
    let head = world.push_pr(30, &head_files(&ml, "2"));
    let mut foreign = labelled("labeled", 30, &head, "alice");
    foreign["repository"]["full_name"] = "evil/models".into();
    let (code, body) = deliver(addr, "pull_request", &foreign, Some(SECRET), "t-0").await;
    assert_eq!(code, 403, "{body}");
    assert!(body.contains("evil/models"), "{body}");

    // The label added by bob, who can only read: planned, not previewed.
    deliver_ok(
        addr,
        "pull_request",
        &labelled("labeled", 30, &head, "bob"),
        "t-1",
    )
    .await;
    let refused = preview_comment_with(&world, 30, "Not previewed").await;
    assert!(refused.contains("@bob"), "{refused}");
    assert_eq!(world.plan_status(&head).await, "success");
    let namespace = world.preview(30).namespace;
    assert!(
        !world.namespace_live(&namespace).await,
        "no preview for bob's label"
    );
    assert!(
        world.double.own_comments(30).len() >= 2,
        "the plan and the preview comment, and not the foreign delivery's"
    );

    // Alice, who can write, labels: previewed.
    deliver_ok(
        addr,
        "pull_request",
        &labelled("labeled", 30, &head, "alice"),
        "t-2",
    )
    .await;
    world.preview(30).wait_image("a", "2").await;
    assert_eq!(replicas(&world, &namespace, "a").await, Some(1));

    // Bob pushes: the preview is suspended, its code not deployed.
    let pushed = world.push_pr(30, &head_files(&ml, "3"));
    let push = labelled("synchronize", 30, &pushed, "bob");
    deliver_ok(addr, "pull_request", &push, "t-3").await;
    let suspended = preview_comment_with(&world, 30, "Suspended").await;
    assert!(
        suspended.contains("@bob") && suspended.contains(&pushed),
        "{suspended}"
    );
    assert_eq!(replicas(&world, &namespace, "a").await, Some(0));
    assert_eq!(world.plan_status(&pushed).await, "success");
    assert_eq!(
        world.preview(30).image("a").await.as_deref(),
        Some("registry.example.com/a:2"),
        "bob's push is not previewed"
    );

    // Alice pushes on top: still suspended, until a writer labels again.
    let again = world.push_pr(30, &head_files(&ml, "4"));
    deliver_ok(
        addr,
        "pull_request",
        &labelled("synchronize", 30, &again, "alice"),
        "t-4",
    )
    .await;
    assert_eq!(world.plan_status(&again).await, "success");
    assert_eq!(replicas(&world, &namespace, "a").await, Some(0));
    deliver_ok(
        addr,
        "pull_request",
        &labelled("labeled", 30, &again, "alice"),
        "t-5",
    )
    .await;
    world.preview(30).wait_image("a", "4").await;
    world
        .eventually("the preview scaled back to one", || async {
            (replicas(&world, &namespace, "a").await == Some(1)).then_some(())
        })
        .await;

    // A fork, labelled by alice: planned, never previewed (previews.forks is false).
    let fork_head = world.push_pr(31, &head_files(&ml, "5"));
    let mut fork = labelled("labeled", 31, &fork_head, "alice");
    fork["pull_request"]["head"]["repo"] = json!({"full_name": "mallory/models"});
    fork["pull_request"]["user"] = json!({"login": "mallory"});
    deliver_ok(addr, "pull_request", &fork, "t-6").await;
    let refused = preview_comment_with(&world, 31, "Not previewed").await;
    assert!(refused.contains("forks"), "{refused}");
    assert_eq!(world.plan_status(&fork_head).await, "success");
    assert!(!world.namespace_live(&world.preview(31).namespace).await);
    world.stop().await;
}

/// A canary service of namespace `ml` over the replicas router.
fn canary(ml: &str) -> String {
    format!(
        "apiVersion: modelship.dev/v1alpha1\nkind: ModelService\nmetadata: {{name: c, namespace: {ml}}}\nspec:\n  model: {{name: c, version: \"1.0.0\"}}\n  runtime: {{image: \"registry.example.com/c:1\"}}\n  resources: {{cpu: \"1\", memory: 1Gi}}\n  replicas: 2\n  rollout: {{strategy: canary, steps: [50, 100]}}\n  traffic: {{router: replicas}}\n"
    )
}

/// The delivery ids the daemon keeps in its state ConfigMap.
async fn remembered_deliveries(world: &World) -> String {
    let namespace = world.cluster.ns("modelship");
    let api: Api<ConfigMap> = Api::namespaced(world.cluster.client(), &namespace);
    let map = tokio::time::timeout(LIMIT, api.get_opt("modelship-pull-outcomes"))
        .await
        .expect("GET in time")
        .expect("ConfigMap read");
    map.and_then(|m| m.data)
        .and_then(|d| d.get("deliveries").cloned())
        .unwrap_or_default()
}

#[tokio::test]
async fn commands_are_bound_to_their_pull_request_and_act_once() {
    on_each_target(
        "commands_are_bound_to_their_pull_request_and_act_once",
        commands_are_bound_to_their_pull_request_and_act_once_on,
    )
    .await;
}

async fn commands_are_bound_to_their_pull_request_and_act_once_on(cluster: Target) {
    let ml = cluster.ns(NS);
    let files = vec![
        (
            "modelship.yaml",
            modelship_yaml(&ml, "  prometheus: {url: \"http://127.0.0.1:9\"}\n"),
        ),
        ("services/c.yaml", canary(&ml)),
    ];
    let double = Double::start().await;
    double.grant("alice", "write");
    let world = World::start_with(cluster, &files, double, |_| {}).await;
    let addr = world.daemon.addr();
    world.place().wait_image("c", "1").await;
    let approve = format!("/modelship approve {ml}/c");

    // PR 40 was merged, but c's rollout is main's, not its merge commit's.
    world.double.set_pull_author(40, "alice", false);
    world
        .double
        .merge_pull(40, "4040404040404040404040404040404040404040");
    let other = issue_comment(40, "alice", &approve, 601);
    deliver_ok(addr, "issue_comment", &other, "k-1").await;
    let reply = world.reply_containing(40, "Not done").await;
    assert!(
        reply.body.contains(&world.main_head()) && reply.body.contains("merge commit"),
        "{}",
        reply.body
    );

    // PR 41 comes from a fork: no commands there, whoever writes them.
    world.double.set_pull_author(41, "mallory", true);
    world.double.merge_pull(41, &world.main_head());
    let forked = issue_comment(41, "alice", &approve, 602);
    deliver_ok(addr, "issue_comment", &forked, "k-2").await;
    let reply = world.reply_containing(41, "Not done").await;
    assert!(reply.body.contains("fork"), "{}", reply.body);

    // PR 42 was merged as main's tip: alice's approval is sent, and names the rollout.
    world.double.set_pull_author(42, "alice", false);
    world.double.merge_pull(42, &world.main_head());
    let bound = issue_comment(42, "alice", &approve, 603);
    deliver_ok(addr, "issue_comment", &bound, "k-3").await;
    let reply = world.reply_containing(42, "sent").await;
    assert!(
        reply.body.contains(&world.main_head()) && reply.body.contains(&format!("{ml}/c")),
        "{}",
        reply.body
    );
    world
        .eventually("the delivery id stored", || async {
            remembered_deliveries(&world)
                .await
                .lines()
                .any(|l| l == "k-3")
                .then_some(())
        })
        .await;

    // After a restart, GitHub sends k-3 again: nothing is done twice.
    let world = world.restart().await;
    let addr = world.daemon.addr();
    deliver_ok(addr, "issue_comment", &bound, "k-3").await;
    let later = issue_comment(40, "alice", "/modelship nonsense", 604);
    deliver_ok(addr, "issue_comment", &later, "k-4").await;
    world.reply_containing(40, "not a modelship command").await;
    let replies: Vec<_> = world
        .double
        .own_comments(42)
        .into_iter()
        .filter(|c| c.body.contains("asked to approve"))
        .collect();
    assert_eq!(replies.len(), 1, "{replies:?}");
    world.stop().await;
}

#[tokio::test]
async fn the_followed_branch_decides_fork_previews_and_plans_of_untrusted_prs() {
    on_each_target(
        "the_followed_branch_decides_fork_previews_and_plans_of_untrusted_prs",
        the_followed_branch_decides_fork_previews_and_plans_of_untrusted_prs_on,
    )
    .await;
}

async fn the_followed_branch_decides_fork_previews_and_plans_of_untrusted_prs_on(cluster: Target) {
    let ml = cluster.ns(NS);
    let mut main = main_files(&ml);
    main[0].1 = modelship_yaml(&ml, "  previews: {forks: true}\n");
    let double = Double::start().await;
    double.grant("alice", "write");
    let world = World::start_with(cluster, &main, double, |_| {}).await;
    let addr = world.daemon.addr();
    world.place().wait_image("a", "1").await;

    // previews.forks: a fork labelled by a writer is previewed.
    let head = world.push_pr(50, &head_files(&ml, "2"));
    let mut fork = labelled("labeled", 50, &head, "alice");
    fork["pull_request"]["head"]["repo"] = json!({"full_name": "mallory/models"});
    fork["pull_request"]["user"] = json!({"login": "mallory"});
    deliver_ok(addr, "pull_request", &fork, "u-1").await;
    world.preview(50).wait_image("a", "2").await;

    // github.planUntrusted: false on main: a PR by carol, who cannot write, gets nothing.
    main[0].1 = modelship_yaml(&ml, "  github: {planUntrusted: false}\n");
    main[2] = ("services/b.yaml", service_in(&ml, "b", "2"));
    commit_to(&world.remote.path(), "refs/heads/main", &main);
    assert_eq!(push_webhook(addr, SECRET).await, 202);
    world.place().wait_image("b", "2").await;
    let carols = world.push_pr(51, &head_files(&ml, "3"));
    let mut opened = pull_request("opened", 51, &carols, &[]);
    opened["pull_request"]["user"] = json!({"login": "carol"});
    opened["sender"] = json!({"login": "carol"});
    deliver_ok(addr, "pull_request", &opened, "u-2").await;
    // Alice's PR 52, queued after it, is planned: PR 51 has been handled by then.
    let alices = world.open_pr(52, &head_files(&ml, "4"), "u-3").await;
    assert_eq!(world.plan_status(&alices).await, "success");
    assert!(statuses_of(&world.double, &carols).is_empty());
    assert!(world.double.own_comments(51).is_empty());
    world.stop().await;
}
