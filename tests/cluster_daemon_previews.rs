//! Preview environments and comment commands of pull requests, end to end through the
//! daemon's `/hooks/github` with the GitHub double, on the sandbox, then on the real
//! cluster of `MODELSHIP_TEST_KUBECONFIG` (`support::target`), in namespaces of the test's
//! own (the previews of its namespace `ml` are `<ml>-pr-<n>`, so they are its own too).

mod support;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{LimitRange, ResourceQuota};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::Api;
use modelship::forge::Marker;
use modelship::rollout::RolloutState;
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

/// A head: `a` at `a_tag`, `b` unchanged, a new GPU service `g`.
fn head_files(ml: &str, a_tag: &str) -> Vec<(&'static str, String)> {
    vec![
        ("modelship.yaml", modelship_yaml(ml, "")),
        ("services/a.yaml", scaled_service(ml, "a", a_tag)),
        ("services/b.yaml", service_in(ml, "b", "1")),
        ("services/g.yaml", gpu_service(ml, "g", "1")),
    ]
}

/// The preview comment of modelship on PR `pr`, if any.
fn preview_comment(world: &World, pr: u64) -> Option<String> {
    let comment = world.comments_with(pr, Marker::Preview).into_iter().next();
    comment.map(|c| c.body)
}

#[tokio::test]
async fn a_labelled_pr_is_previewed_kept_out_of_main_updated_and_torn_down() {
    on_each_target(
        "a_labelled_pr_is_previewed_kept_out_of_main_updated_and_torn_down",
        a_labelled_pr_is_previewed_kept_out_of_main_updated_and_torn_down_on,
    )
    .await;
}

async fn a_labelled_pr_is_previewed_kept_out_of_main_updated_and_torn_down_on(cluster: Target) {
    let ml = cluster.ns(NS);
    let world = World::start(cluster, &main_files(&ml)).await;
    let client = world.cluster.client();
    let addr = world.daemon.addr();
    world.place().wait_image("a", "1").await;
    let preview = world.preview(11);
    let namespace = preview.namespace.clone();

    let head = world.push_pr(11, &head_files(&ml, "2"));
    let mut opened = pull_request("labeled", 11, &head, &[LABEL]);
    opened["label"] = serde_json::json!({"name": LABEL});
    deliver_ok(addr, "pull_request", &opened, "p-1").await;
    preview.wait_image("a", "2").await;

    let deployed = world
        .deployment(&namespace, "a")
        .await
        .expect("the preview of a");
    assert_eq!(deployed.spec.as_ref().and_then(|s| s.replicas), Some(1));
    let labels = deployed.metadata.labels.clone().unwrap_or_default();
    assert_eq!(
        labels.get("modelship.dev/preview").map(String::as_str),
        Some("11")
    );
    let hpas: Api<HorizontalPodAutoscaler> = Api::namespaced(client.clone(), &namespace);
    assert!(
        hpas.get_opt("a").await.unwrap().is_none(),
        "no HPA in a preview"
    );
    assert!(
        world.deployment(&namespace, "b").await.is_none(),
        "unchanged services are not previewed"
    );
    assert!(
        world.deployment(&namespace, "g").await.is_none(),
        "GPU skipped"
    );
    let ns = world
        .namespace(&namespace)
        .await
        .expect("the preview namespace");
    let ns_labels = ns.metadata.labels.unwrap_or_default();
    assert_eq!(
        ns_labels.get("modelship.dev/preview").map(String::as_str),
        Some("11")
    );
    // The box: the restricted Pod Security profile, a quota, a LimitRange, egress denied.
    assert_eq!(
        ns_labels
            .get("pod-security.kubernetes.io/enforce")
            .map(String::as_str),
        Some("restricted")
    );
    let quotas: Api<ResourceQuota> = Api::namespaced(client.clone(), &namespace);
    let quota = quotas.get("modelship-preview").await.expect("the quota");
    let hard = quota.spec.and_then(|s| s.hard).unwrap_or_default();
    assert_eq!(hard.get("pods").map(|q| q.0.as_str()), Some("10"));
    assert_eq!(hard.get("requests.cpu").map(|q| q.0.as_str()), Some("8"));
    let limits: Api<LimitRange> = Api::namespaced(client.clone(), &namespace);
    assert!(limits.get_opt("modelship-preview").await.unwrap().is_some());
    let policies: Api<NetworkPolicy> = Api::namespaced(client.clone(), &namespace);
    let egress = policies
        .get("modelship-preview")
        .await
        .expect("the egress policy");
    let spec = egress.spec.expect("a spec");
    assert_eq!(spec.policy_types, Some(vec!["Egress".to_string()]));
    assert_eq!(
        spec.egress.map(|rules| rules.len()),
        Some(2),
        "DNS and the namespace"
    );
    if world.cluster.is_real() {
        // The API server enforces the profile: a pod that runs as root, may escalate and
        // keeps its capabilities (no securityContext at all) is refused there.
        let pods: Api<k8s_openapi::api::core::v1::Pod> =
            Api::namespaced(client.clone(), &namespace);
        let unconfined: k8s_openapi::api::core::v1::Pod =
            serde_json::from_value(serde_json::json!({
                "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "unconfined"},
                "spec": {"containers": [{"name": "x", "image": "registry.example.com/x:1"}]}
            }))
            .unwrap();
        let params = kube::api::PostParams {
            dry_run: true,
            ..Default::default()
        };
        match pods.create(&params, &unconfined).await {
            Err(kube::Error::Api(status)) => assert!(
                status.code == 403 && status.message.contains("restricted"),
                "{status:?}"
            ),
            other => panic!("an unconfined pod in a preview is refused: {other:?}"),
        }
        // The preview's own pods meet the profile: its Deployment gets a ready pod.
        world
            .eventually("the preview's pod admitted and ready", || async {
                let deployment = world.deployment(&namespace, "a").await?;
                let ready = deployment.status?.ready_replicas.unwrap_or(0);
                (ready >= 1).then_some(())
            })
            .await;
    } else {
        eprintln!(
            "the sandbox enforces no Pod Security admission: that an unconfined pod is refused \
             in a preview is checked on the real control plane"
        );
    }
    let comment = world
        .eventually("the preview comment", || async {
            preview_comment(&world, 11)
        })
        .await;
    assert!(comment.contains(&format!("`{namespace}`")), "{comment}");
    assert!(
        comment.contains(&format!("`{ml}/g` skipped: uses GPUs")),
        "{comment}"
    );
    assert!(comment.contains("Deployment/a"), "{comment}");

    // The main reconcile neither lists nor prunes the preview.
    let mut main = main_files(&ml);
    main[2] = ("services/b.yaml", service_in(&ml, "b", "2"));
    commit_to(&world.remote.path(), "refs/heads/main", &main);
    assert_eq!(push_webhook(addr, SECRET).await, 202);
    world.place().wait_image("b", "2").await;
    assert!(world.deployment(&namespace, "a").await.is_some());
    let board = status(addr).await;
    assert!(
        board["services"].get(format!("{namespace}/a")).is_none(),
        "{board}"
    );
    // Nor does the CLI's live read (plan, apply --prune), of the whole cluster.
    let mut kinds = modelship::cluster::Kinds::new(client.clone(), Default::default());
    let live = tokio::time::timeout(
        LIMIT,
        modelship::cluster::read_live(
            &client,
            &mut kinds,
            &Default::default(),
            &Default::default(),
            &Default::default(),
        ),
    )
    .await
    .expect("live state read in time")
    .unwrap();
    use modelship::plan::LiveState as _;
    assert!(
        live.services().iter().all(|id| id.namespace() == ml),
        "{:?}",
        live.services()
    );
    assert_eq!(
        board["pulls"]["acme/models#11"]["preview"][0],
        namespace.as_str()
    );

    // A push updates the preview in place.
    let head = world.push_pr(11, &head_files(&ml, "3"));
    let pushed = pull_request("synchronize", 11, &head, &[LABEL]);
    deliver_ok(addr, "pull_request", &pushed, "p-2").await;
    preview.wait_image("a", "3").await;
    assert_eq!(
        world.comments_with(11, Marker::Preview).len(),
        1,
        "one preview comment"
    );

    // The label goes: the preview goes.
    let mut unlabeled = pull_request("unlabeled", 11, &head, &[]);
    unlabeled["label"] = serde_json::json!({"name": LABEL});
    deliver_ok(addr, "pull_request", &unlabeled, "p-3").await;
    world.wait_namespace_deleted(&namespace).await;
    let comment = world
        .eventually("the torn-down comment", || async {
            preview_comment(&world, 11).filter(|c| c.contains("Torn down"))
        })
        .await;
    assert!(comment.contains(&format!("`{namespace}`")), "{comment}");
    assert_eq!(
        world.place().image("a").await.as_deref(),
        Some("registry.example.com/a:1")
    );
    world.stop().await;
}

#[tokio::test]
async fn previews_of_prs_closed_while_the_daemon_was_down_are_removed_at_start_up() {
    on_each_target(
        "previews_of_prs_closed_while_the_daemon_was_down_are_removed_at_start_up",
        previews_of_prs_closed_while_the_daemon_was_down_are_removed_at_start_up_on,
    )
    .await;
}

async fn previews_of_prs_closed_while_the_daemon_was_down_are_removed_at_start_up_on(
    cluster: Target,
) {
    let ml = cluster.ns(NS);
    let world = World::start(cluster, &main_files(&ml)).await;
    for (pr, delivery) in [(12, "s-1"), (13, "s-2")] {
        let head = world.push_pr(pr, &head_files(&ml, "2"));
        world.double.set_pull(pr, true, &head, &[LABEL]);
        let event = pull_request("opened", pr, &head, &[LABEL]);
        deliver_ok(world.daemon.addr(), "pull_request", &event, delivery).await;
        world.preview(pr).wait_image("a", "2").await;
    }
    let (closed_early, open) = (world.preview(12).namespace, world.preview(13).namespace);

    world.double.set_pull(12, false, "x", &[LABEL]);
    let world = world.restart().await;
    world.wait_namespace_deleted(&closed_early).await;
    let double = &world.double;
    world
        .eventually("PR 13 asked about", || async {
            double
                .requests()
                .iter()
                .any(|r| r.path.ends_with("/pulls/13"))
                .then_some(())
        })
        .await;
    assert!(
        world.namespace_live(&open).await,
        "an open PR keeps its preview"
    );

    // Closing PR 13 tears its preview down at once.
    let mut closed = pull_request("closed", 13, "x", &[LABEL]);
    closed["pull_request"]["merged"] = false.into();
    deliver_ok(world.daemon.addr(), "pull_request", &closed, "s-3").await;
    world.wait_namespace_deleted(&open).await;
    world.stop().await;
}

#[tokio::test]
async fn a_namespace_of_the_previews_name_that_is_not_its_own_is_left_alone() {
    on_each_target(
        "a_namespace_of_the_previews_name_that_is_not_its_own_is_left_alone",
        a_namespace_of_the_previews_name_that_is_not_its_own_is_left_alone_on,
    )
    .await;
}

async fn a_namespace_of_the_previews_name_that_is_not_its_own_is_left_alone_on(cluster: Target) {
    use k8s_openapi::api::core::v1::Namespace;
    let ml = cluster.ns(NS);
    let world = World::start(cluster, &main_files(&ml)).await;
    world.place().wait_image("a", "1").await;
    let namespace = world.preview(14).namespace;
    // Someone else's namespace, of the name the preview of PR 14 would take.
    let namespaces: Api<Namespace> = Api::all(world.cluster.client());
    let theirs: Namespace = serde_json::from_value(serde_json::json!({
        "metadata": {"name": namespace, "labels": {"team": "someone-else"}}
    }))
    .unwrap();
    tokio::time::timeout(LIMIT, namespaces.create(&Default::default(), &theirs))
        .await
        .expect("create in time")
        .expect("namespace created");

    let addr = world.daemon.addr();
    let head = world.push_pr(14, &head_files(&ml, "2"));
    let mut labeled = pull_request("labeled", 14, &head, &[LABEL]);
    labeled["label"] = serde_json::json!({"name": LABEL});
    deliver_ok(addr, "pull_request", &labeled, "t-1").await;
    let comment = world
        .eventually("the preview comment", || async {
            preview_comment(&world, 14)
        })
        .await;
    assert!(
        comment.contains(&format!(
            "`{ml}/a` skipped: the namespace `{namespace}` exists and was not created by modelship for this pull request: it is left alone"
        )),
        "{comment}"
    );
    assert!(world.deployment(&namespace, "a").await.is_none());
    let ns = world.namespace(&namespace).await.expect("still there");
    let labels = ns.metadata.labels.unwrap_or_default();
    assert!(!labels.contains_key("modelship.dev/preview"), "{labels:?}");
    assert_eq!(labels.get("team").map(String::as_str), Some("someone-else"));

    // Closing the PR deletes nothing of it.
    let mut closed = pull_request("closed", 14, &head, &[LABEL]);
    closed["pull_request"]["merged"] = false.into();
    deliver_ok(addr, "pull_request", &closed, "t-2").await;
    world
        .eventually("the closed PR off the board", || async {
            let board = status(addr).await;
            board["pulls"].get("acme/models#14").is_none().then_some(())
        })
        .await;
    assert!(world.namespace_live(&namespace).await, "left alone");
    let _ = namespaces.delete(&namespace, &Default::default()).await;
    world.stop().await;
}

/// A canary service of namespace `ml` over the replicas router (its analysis never runs
/// here: no rollout starts, the stable template is the desired one).
fn canary(ml: &str) -> String {
    format!(
        "apiVersion: modelship.dev/v1alpha1\nkind: ModelService\nmetadata: {{name: c, namespace: {ml}}}\nspec:\n  model: {{name: c, version: \"1.0.0\"}}\n  runtime: {{image: \"registry.example.com/c:1\"}}\n  resources: {{cpu: \"1\", memory: 1Gi}}\n  replicas: 2\n  rollout: {{strategy: canary, steps: [50, 100]}}\n  traffic: {{router: replicas}}\n"
    )
}

#[tokio::test]
async fn approvals_from_comments_write_the_command_for_writers_and_refuse_others() {
    on_each_target(
        "approvals_from_comments_write_the_command_for_writers_and_refuse_others",
        approvals_from_comments_write_the_command_for_writers_and_refuse_others_on,
    )
    .await;
}

async fn approvals_from_comments_write_the_command_for_writers_and_refuse_others_on(
    cluster: Target,
) {
    let ml = cluster.ns(NS);
    // `a` rolls out as a rolling update, `c` as a canary over the replicas router.
    let mut files = main_files(&ml);
    files[0].1 = modelship_yaml(&ml, "  prometheus: {url: \"http://127.0.0.1:9\"}\n");
    files.push(("services/c.yaml", canary(&ml)));
    let double = Double::start().await;
    double.grant("alice", "write");
    double.grant("bob", "read");
    let world = World::start_with(cluster, &files, double, |_| {}).await;
    let addr = world.daemon.addr();
    world.place().wait_image("a", "1").await;
    world.place().wait_image("c", "1").await;
    // PR 20, alice's branch, was merged as main's tip: its rollouts are the ones started
    // there, and commands on it act on them.
    world.double.set_pull_author(20, "alice", false);
    world.double.merge_pull(20, &world.main_head());
    let command = |d: &Deployment| {
        d.metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get("modelship.dev/rollout-command"))
            .cloned()
    };
    let live = |name: &'static str| {
        let world = &world;
        let ml = &ml;
        async move { world.deployment(ml, name).await.expect("the Deployment") }
    };

    let refused = issue_comment(20, "bob", &format!("/modelship abort {ml}/a"), 501);
    deliver_ok(addr, "issue_comment", &refused, "c-1").await;
    let reply = world.reply_containing(20, "Not done").await;
    assert!(
        reply.body.contains("@bob needs write permission"),
        "{}",
        reply.body
    );
    assert_eq!(command(&live("a").await), None, "nothing written for bob");

    // A service that is not a canary has no rollout to approve.
    let rolling = issue_comment(20, "alice", &format!("/modelship approve {ml}/a"), 505);
    deliver_ok(addr, "issue_comment", &rolling, "c-5").await;
    let reply = world.reply_containing(20, &format!("`{ml}/a`")).await;
    assert!(reply.body.contains("has no rollout"), "{}", reply.body);
    assert_eq!(
        command(&live("a").await),
        None,
        "nothing written for a rolling service"
    );

    let approve = format!("LGTM\n/modelship approve {ml}/c");
    let allowed = issue_comment(20, "alice", &approve, 502);
    deliver_ok(addr, "issue_comment", &allowed, "c-2").await;
    let reply = world.reply_containing(20, "@alice").await;
    assert!(
        reply.body.contains("sent") && reply.body.contains(&format!("{ml}/c")),
        "{}",
        reply.body
    );
    // The command is bound to the template the rollout state names.
    let c = live("c").await;
    let state = c
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
    if let Some(written) = command(&c) {
        assert_eq!(written, format!("approve@{hash}"));
    }

    let missing = issue_comment(20, "alice", &format!("/modelship retry {ml}/nope"), 503);
    deliver_ok(addr, "issue_comment", &missing, "c-3").await;
    let reply = world.reply_containing(20, &format!("{ml}/nope")).await;
    assert!(reply.body.contains("no Deployment"), "{}", reply.body);
    // `/modelship plan` plans the PR's head as GitHub reports it.
    let head = world.push_pr(20, &head_files(&ml, "5"));
    world.double.set_pull(20, true, &head, &[]);
    // Its author (alice, who can write: the PR is trusted) may ask; dave is neither its
    // author nor a writer, and his comment (handled first: an older comment) gets no reply.
    let stranger = issue_comment(20, "dave", "/modelship hello", 500);
    deliver_ok(addr, "issue_comment", &stranger, "c-6").await;
    let replan = issue_comment(20, "alice", "/modelship plan", 504);
    deliver_ok(addr, "issue_comment", &replan, "c-4").await;
    let plan = world.reply_containing(20, Marker::Plan.text()).await;
    assert!(plan.body.contains("a:5"), "{}", plan.body);
    assert!(
        world
            .double
            .comments(20)
            .iter()
            .all(|c| !c.body.contains("not a modelship command")),
        "no reply to dave"
    );
    // The main reconcile does not fight the annotation.
    assert_eq!(
        world.place().image("a").await.as_deref(),
        Some("registry.example.com/a:1")
    );
    world.stop().await;
}
