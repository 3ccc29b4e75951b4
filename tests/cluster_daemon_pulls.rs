//! The daemon acting on pull requests, end to end: signed deliveries on the real
//! `/hooks/github`, a bare Git remote with `refs/pull/<n>/head` and the GitHub double, on
//! the sandbox, then on the real cluster of `MODELSHIP_TEST_KUBECONFIG`
//! (`support::target`), in namespaces of the test's own. Every wait polls with a deadline.

mod support;

use http::Method;
use modelship::forge::Marker;
use support::daemon::*;
use support::forge::{Double, Fault, TOKEN};
use support::poll::*;
use support::pulls::world::World;
use support::pulls::*;
use support::target::{Target, on_each_target};

/// The file of service `a` at `tag`, in namespace `ml`.
fn a_file(ml: &str, tag: &str) -> (&'static str, String) {
    ("services/a.yaml", service_in(ml, "a", tag))
}

/// A world whose main holds service `a` at tag 1 in the test's namespace `ml`.
async fn world_of_a(cluster: Target) -> World {
    let ml = cluster.ns(NS);
    World::start(cluster, &[a_file(&ml, "1")]).await
}

/// Commits exactly `files` on main and waits until the daemon follows that commit: what
/// pull requests are then judged by.
async fn branch_has(world: &World, files: &[(&str, String)]) {
    let main = commit_to(&world.remote.path(), "refs/heads/main", files).to_string();
    world.daemon.handles.trigger.notify_one();
    let addr = world.daemon.addr();
    world
        .eventually("the daemon follows the new main", || async {
            let status = status(addr).await;
            (status["revision"].as_str() == Some(main.as_str())).then_some(())
        })
        .await;
}

#[tokio::test]
async fn an_opened_pr_gets_one_plan_comment_edited_on_the_next_push_and_statuses() {
    on_each_target(
        "an_opened_pr_gets_one_plan_comment_edited_on_the_next_push_and_statuses",
        an_opened_pr_gets_one_plan_comment_edited_on_the_next_push_and_statuses_on,
    )
    .await;
}

async fn an_opened_pr_gets_one_plan_comment_edited_on_the_next_push_and_statuses_on(
    cluster: Target,
) {
    let world = world_of_a(cluster).await;
    let ml = world.ml();
    world.place().wait_image("a", "1").await;
    let addr = world.daemon.addr();
    let first = world.open_pr(5, &[a_file(&ml, "2")], "d-1").await;
    assert_eq!(world.plan_status(&first).await, "success");
    let comments = world.plan_comments(5);
    assert_eq!(comments.len(), 1, "{comments:?}");
    let body = &comments[0].body;
    assert!(body.contains("a:2"), "the new image is in the diff: {body}");
    assert_eq!(
        statuses_of(&world.double, &first)[0],
        ("modelship/plan".to_string(), "pending".to_string()),
        "pending first"
    );

    let second = world.push_pr(5, &[a_file(&ml, "3")]);
    deliver_ok(
        addr,
        "pull_request",
        &pull_request("synchronize", 5, &second, &[]),
        "d-2",
    )
    .await;
    assert_eq!(world.plan_status(&second).await, "success");
    let edited = world.plan_comments(5);
    assert_eq!(edited.len(), 1, "still one comment");
    assert_eq!(edited[0].id, comments[0].id, "edited in place");
    assert!(edited[0].body.contains("a:3"), "{}", edited[0].body);

    // Read-only: the cluster still runs main.
    assert_eq!(
        world.place().image("a").await.as_deref(),
        Some("registry.example.com/a:1")
    );
    let status = status(addr).await;
    assert_eq!(
        status["pulls"]["acme/models#5"]["state"], "planned",
        "{status}"
    );
    assert_eq!(status["pulls"]["acme/models#5"]["head"], second.as_str());
    let comments: String = world
        .double
        .comments(5)
        .iter()
        .map(|c| c.body.clone())
        .collect();
    let text = format!("{status}{}{comments}", metrics(addr).await);
    assert!(
        !text.contains(TOKEN),
        "no credential on /status or /metrics"
    );
    assert!(
        text.contains(r#"modelship_forge_requests_total{result="ok"}"#),
        "GitHub requests counted"
    );
    world.stop().await;
}

#[tokio::test]
async fn unsigned_badly_signed_and_duplicate_deliveries_change_nothing() {
    on_each_target(
        "unsigned_badly_signed_and_duplicate_deliveries_change_nothing",
        unsigned_badly_signed_and_duplicate_deliveries_change_nothing_on,
    )
    .await;
}

async fn unsigned_badly_signed_and_duplicate_deliveries_change_nothing_on(cluster: Target) {
    let world = world_of_a(cluster).await;
    let ml = world.ml();
    let addr = world.daemon.addr();
    let sha = world.push_pr(6, &[a_file(&ml, "2")]);
    let payload = pull_request("opened", 6, &sha, &[]);
    let (code, _) = deliver(addr, "pull_request", &payload, None, "u-1").await;
    assert_eq!(code, 401);
    let (code, _) = deliver(addr, "pull_request", &payload, Some("wrong"), "u-2").await;
    assert_eq!(code, 401);
    // A later, good delivery of another PR is handled; the refused ones never were (the
    // worker takes PR 6 before PR 7).
    let other = world.push_pr(7, &[a_file(&ml, "3")]);
    deliver_ok(
        addr,
        "pull_request",
        &pull_request("opened", 7, &other, &[]),
        "g-1",
    )
    .await;
    world.plan_status(&other).await;
    assert!(statuses_of(&world.double, &sha).is_empty());
    assert!(world.double.comments(6).is_empty());

    let (code, body) = deliver(
        addr,
        "pull_request",
        &pull_request("synchronize", 7, &other, &[]),
        Some(SECRET),
        "g-1",
    )
    .await;
    assert_eq!((code, body.as_str()), (200, "already handled"));
    let text = metrics(addr).await;
    assert!(
        text.contains(r#"modelship_webhooks_total{outcome="duplicate"} 1"#),
        "{text}"
    );
    assert!(text.contains(r#"modelship_webhooks_total{outcome="webhook_bad_signature"} 1"#));
    world.stop().await;
}

#[tokio::test]
async fn an_invalid_head_fails_with_file_line_links_and_a_fork_is_planned_too() {
    on_each_target(
        "an_invalid_head_fails_with_file_line_links_and_a_fork_is_planned_too",
        an_invalid_head_fails_with_file_line_links_and_a_fork_is_planned_too_on,
    )
    .await;
}

async fn an_invalid_head_fails_with_file_line_links_and_a_fork_is_planned_too_on(cluster: Target) {
    let world = world_of_a(cluster).await;
    let addr = world.daemon.addr();
    let broken = a_file(&world.ml(), "2")
        .1
        .replace("memory: 1Gi", "memory: 1Gi, maxReplica: 3");
    let sha = world.push_pr(8, &[("services/a.yaml", broken)]);
    let mut payload = pull_request("opened", 8, &sha, &[]);
    payload["pull_request"]["head"]["repo"]["full_name"] = "someone/models-fork".into();
    deliver_ok(addr, "pull_request", &payload, "f-1").await;
    assert_eq!(world.plan_status(&sha).await, "failure");
    let body = &world.plan_comments(8)[0].body;
    let link = format!(
        "{}/acme/models/blob/{sha}/services/a.yaml#L",
        world.double.url
    );
    assert!(body.contains(&link), "a file:line link to the head: {body}");
    assert!(body.contains("maxReplica"), "{body}");
    world.stop().await;
}

#[tokio::test]
async fn a_policy_denial_fails_the_status_and_names_the_policy() {
    on_each_target(
        "a_policy_denial_fails_the_status_and_names_the_policy",
        a_policy_denial_fails_the_status_and_names_the_policy_on,
    )
    .await;
}

/// The policy is the followed branch's, evaluated by modelship: nothing of it is written
/// to the cluster, and the pull request is judged by it.
async fn a_policy_denial_fails_the_status_and_names_the_policy_on(cluster: Target) {
    let policy = "apiVersion: admissionregistration.k8s.io/v1\nkind: ValidatingAdmissionPolicy\nmetadata: {name: no-tag-3}\nspec:\n  matchConstraints:\n    resourceRules:\n      - {apiGroups: [modelship.dev], apiVersions: [v1alpha1], resources: [modelservices], operations: [CREATE, UPDATE]}\n  validations:\n    - expression: \"!object.spec.runtime.image.endsWith(':3')\"\n      message: tag 3 is banned\n".to_string();
    let world = world_of_a(cluster).await;
    let ml = world.ml();
    let main = [a_file(&ml, "1"), ("policies/no-tag-3.yaml", policy.clone())];
    branch_has(&world, &main).await;
    let sha = world.push_pr(9, &[a_file(&ml, "3"), ("policies/no-tag-3.yaml", policy)]);
    let addr = world.daemon.addr();
    deliver_ok(
        addr,
        "pull_request",
        &pull_request("opened", 9, &sha, &[]),
        "p-1",
    )
    .await;
    assert_eq!(world.plan_status(&sha).await, "failure");
    let body = &world.plan_comments(9)[0].body;
    assert!(
        body.contains("no-tag-3") && body.contains("tag 3 is banned"),
        "{body}"
    );
    world.stop().await;
}

#[tokio::test]
async fn github_failing_is_retried_shown_and_ends_with_one_comment() {
    on_each_target(
        "github_failing_is_retried_shown_and_ends_with_one_comment",
        github_failing_is_retried_shown_and_ends_with_one_comment_on,
    )
    .await;
}

async fn github_failing_is_retried_shown_and_ends_with_one_comment_on(cluster: Target) {
    let world = world_of_a(cluster).await;
    let ml = world.ml();
    let addr = world.daemon.addr();
    let sha = world.push_pr(10, &[a_file(&ml, "2")]);
    // The client's own retries absorb one 502 and a short rate limit; five 502s in a row
    // outlast them, so the worker retries the whole plan later.
    world
        .double
        .fault(Method::POST, "/statuses/", Fault::Status(502));
    world.double.fault(
        Method::GET,
        "/issues/10/comments",
        Fault::RateLimited { retry_after: 1 },
    );
    for _ in 0..5 {
        world
            .double
            .fault(Method::POST, "/issues/10/comments", Fault::Status(502));
    }
    deliver_ok(
        addr,
        "pull_request",
        &pull_request("opened", 10, &sha, &[]),
        "r-1",
    )
    .await;
    let status = world
        .eventually("the failure on /status", || async move {
            let status = status(addr).await;
            let pull = &status["pulls"]["acme/models#10"];
            (pull["failures"].as_u64() > Some(0)).then(|| pull.clone())
        })
        .await;
    assert!(
        status["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("502")),
        "{status}"
    );
    world.wait_plan_status(&sha, "success").await;
    assert_eq!(
        world.plan_comments(10).len(),
        1,
        "one comment after the retries"
    );
    let text = metrics(addr).await;
    assert!(text.contains(r#"modelship_forge_requests_total{result="server_error"}"#));
    assert!(text.contains(r#"modelship_forge_requests_total{result="rate_limited"}"#));
    // Main is reconciled meanwhile: a push to main still applies.
    world.remote.commit(&files_in(&ml, &[("a", "4")]));
    assert_eq!(push_webhook(addr, SECRET).await, 202);
    world.place().wait_image("a", "4").await;
    world.stop().await;
}

/// Opens PR `pr` changing `a` to tag 2 and waits for its plan; merges it on main; returns
/// the merge commit after delivering the `closed` (merged) event.
async fn merge_pr(world: &World, pr: u64) -> String {
    let addr = world.daemon.addr();
    let ml = world.ml();
    let head = world.push_pr(pr, &[a_file(&ml, "2")]);
    deliver_ok(
        addr,
        "pull_request",
        &pull_request("opened", pr, &head, &[]),
        "m-1",
    )
    .await;
    world.wait_plan_status(&head, "success").await;
    let merge = commit_to(&world.remote.path(), "refs/heads/main", &[a_file(&ml, "2")]).to_string();
    let mut closed = pull_request("closed", pr, &head, &[]);
    closed["pull_request"]["merged"] = true.into();
    closed["pull_request"]["merge_commit_sha"] = merge.clone().into();
    deliver_ok(addr, "pull_request", &closed, "m-2").await;
    let double = &world.double;
    let merge_ref = &merge;
    world
        .eventually("modelship/apply pending on the merge", || async move {
            statuses_of(double, merge_ref)
                .contains(&("modelship/apply".to_string(), "pending".to_string()))
                .then_some(())
        })
        .await;
    merge
}

async fn outcome_of(world: &World, pr: u64, merge: &str) -> (String, String) {
    let comment = world
        .eventually("the outcome comment", || async move {
            world
                .comments_with(pr, Marker::Outcome)
                .into_iter()
                .next()
                .map(|c| c.body)
        })
        .await;
    let double = &world.double;
    let state = world
        .eventually("a final apply status", || async move {
            statuses_of(double, merge)
                .into_iter()
                .rev()
                .find(|(c, s)| c == "modelship/apply" && s != "pending")
                .map(|(_, s)| s)
        })
        .await;
    (comment, state)
}

/// The row of service `a` in sync in an outcome comment.
fn a_in_sync(world: &World) -> String {
    format!("| `{}/a` | in sync |", world.ml())
}

#[tokio::test]
async fn a_merged_pr_gets_its_outcome_once_main_has_reconciled_it() {
    on_each_target(
        "a_merged_pr_gets_its_outcome_once_main_has_reconciled_it",
        a_merged_pr_gets_its_outcome_once_main_has_reconciled_it_on,
    )
    .await;
}

async fn a_merged_pr_gets_its_outcome_once_main_has_reconciled_it_on(cluster: Target) {
    let world = world_of_a(cluster).await;
    world.place().wait_image("a", "1").await;
    let merge = merge_pr(&world, 30).await;
    assert!(
        world.comments_with(30, Marker::Outcome).is_empty(),
        "no outcome before main reconciled the merge"
    );
    assert_eq!(push_webhook(world.daemon.addr(), SECRET).await, 202);
    world.place().wait_image("a", "2").await;
    let (comment, state) = outcome_of(&world, 30, &merge).await;
    assert!(comment.contains(&a_in_sync(&world)), "{comment}");
    assert_eq!(state, "success");
    let addr = world.daemon.addr();
    world
        .eventually("the PR off the board", || async move {
            status(addr).await["pulls"]
                .get("acme/models#30")
                .is_none()
                .then_some(())
        })
        .await;
    world.stop().await;
}

#[tokio::test]
async fn a_rolled_back_service_is_reported_with_its_reason_and_values() {
    on_each_target(
        "a_rolled_back_service_is_reported_with_its_reason_and_values",
        a_rolled_back_service_is_reported_with_its_reason_and_values_on,
    )
    .await;
}

async fn a_rolled_back_service_is_reported_with_its_reason_and_values_on(cluster: Target) {
    use modelship::rollout::{
        CheckResult, Phase, RollbackReason, RolloutState, StepAnalysis, Threshold, Verdict,
    };
    let world = world_of_a(cluster).await;
    world.place().wait_image("a", "1").await;
    let merge = merge_pr(&world, 31).await;
    // What the rollout engine records on the stable Deployment after a rollback.
    let state = RolloutState {
        phase: Phase::RolledBack {
            at: jiff::Timestamp::UNIX_EPOCH,
            reason: RollbackReason::AnalysisFailed,
        },
        last_analysis: Some(StepAnalysis {
            at: jiff::Timestamp::UNIX_EPOCH,
            weight: 10,
            checks: vec![CheckResult {
                name: "latencyP99".into(),
                verdict: Verdict::Fail,
                value: Some(0.9),
                threshold: Threshold {
                    min: None,
                    max: Some(0.5),
                },
                message: None,
            }],
        }),
        ..RolloutState::default()
    };
    let annotation = serde_json::json!({"metadata": {"annotations": {
        modelship::rollout::ANNOTATION_ROLLOUT: serde_json::to_string(&state).unwrap()
    }}});
    let api: kube::Api<k8s_openapi::api::apps::v1::Deployment> =
        kube::Api::namespaced(world.cluster.client(), &world.ml());
    tokio::time::timeout(
        LIMIT,
        api.patch(
            "a",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(&annotation),
        ),
    )
    .await
    .expect("patched in time")
    .unwrap();
    assert_eq!(push_webhook(world.daemon.addr(), SECRET).await, 202);
    let (comment, state) = outcome_of(&world, 31, &merge).await;
    assert!(
        comment.contains("rolled back: analysis failed"),
        "{comment}"
    );
    assert!(
        comment.contains("latencyP99 0.900 (max 0.5: Fail)"),
        "{comment}"
    );
    assert_eq!(state, "failure");
    world.stop().await;
}

#[tokio::test]
async fn a_pending_outcome_survives_a_restart_of_the_daemon() {
    on_each_target(
        "a_pending_outcome_survives_a_restart_of_the_daemon",
        a_pending_outcome_survives_a_restart_of_the_daemon_on,
    )
    .await;
}

async fn a_pending_outcome_survives_a_restart_of_the_daemon_on(cluster: Target) {
    let world = world_of_a(cluster).await;
    world.place().wait_image("a", "1").await;
    let merge = merge_pr(&world, 32).await;
    // The new daemon reads main (with the merge) at start-up and the pending outcome from
    // the cluster.
    let world = world.restart().await;
    let (comment, state) = outcome_of(&world, 32, &merge).await;
    assert!(comment.contains(&a_in_sync(&world)), "{comment}");
    assert_eq!(state, "success");
    world.stop().await;
}

#[tokio::test]
async fn a_head_that_cannot_be_fetched_gets_an_error_status_saying_why() {
    on_each_target(
        "a_head_that_cannot_be_fetched_gets_an_error_status_saying_why",
        a_head_that_cannot_be_fetched_gets_an_error_status_saying_why_on,
    )
    .await;
}

async fn a_head_that_cannot_be_fetched_gets_an_error_status_saying_why_on(cluster: Target) {
    let world = world_of_a(cluster).await;
    let addr = world.daemon.addr();
    let sha = "4040404040404040404040404040404040404040";
    deliver_ok(
        addr,
        "pull_request",
        &pull_request("opened", 40, sha, &[]),
        "e-1",
    )
    .await;
    world.wait_plan_status(sha, "error").await;
    let description = world
        .double
        .statuses()
        .into_iter()
        .rev()
        .find(|s| s.sha == sha)
        .map(|s| s.description)
        .unwrap_or_default();
    assert!(
        description.starts_with("could not plan: fetching"),
        "{description}"
    );
    world
        .eventually("the failure on /status", || async move {
            let status = status(addr).await;
            (status["pulls"]["acme/models#40"]["failures"].as_u64() >= Some(1)).then_some(())
        })
        .await;
    assert!(
        world.plan_comments(40).is_empty(),
        "no comment without a plan"
    );
    world.stop().await;
}

#[tokio::test]
async fn a_github_app_plans_with_installation_tokens() {
    on_each_target(
        "a_github_app_plans_with_installation_tokens",
        a_github_app_plans_with_installation_tokens_on,
    )
    .await;
}

async fn a_github_app_plans_with_installation_tokens_on(cluster: Target) {
    use modelship::forge::{AppKey, Credentials};
    let ml = cluster.ns(NS);
    let double = Double::start().await;
    double.enable_app();
    let key = AppKey::from_pem(42, include_str!("fixtures/forge/app-key.pem")).unwrap();
    let world = World::start_with(cluster, &[a_file(&ml, "1")], double, |config| {
        let github = config.github.as_mut().expect("pulls_config sets GitHub");
        github.credentials = Credentials::App(key);
    })
    .await;
    let addr = world.daemon.addr();
    let sha = world.open_pr(41, &[a_file(&ml, "2")], "a-1").await;
    assert_eq!(world.plan_status(&sha).await, "success");
    assert_eq!(world.plan_comments(41).len(), 1);
    let tokens = world.double.issued_tokens();
    assert!(!tokens.is_empty(), "an installation token was used");
    let text = format!("{}{}", status(addr).await, metrics(addr).await);
    assert!(tokens.iter().all(|t| !text.contains(t.as_str())));
    world.stop().await;
}

#[tokio::test]
async fn a_pull_request_and_the_daemon_see_the_same_namespace_labels() {
    on_each_target(
        "a_pull_request_and_the_daemon_see_the_same_namespace_labels",
        a_pull_request_and_the_daemon_see_the_same_namespace_labels_on,
    )
    .await;
}

/// A policy on `namespaceObject` (the namespace's live labels) judges a pull request's
/// head as the daemon judges the same content once it is on main: both read the labels
/// through the one `engine::namespace_labels`.
async fn a_pull_request_and_the_daemon_see_the_same_namespace_labels_on(cluster: Target) {
    let frozen = "apiVersion: admissionregistration.k8s.io/v1\nkind: ValidatingAdmissionPolicy\nmetadata: {name: frozen-namespaces}\nspec:\n  matchConstraints:\n    resourceRules:\n      - {apiGroups: [apps], apiVersions: [v1], resources: [deployments], operations: [CREATE, UPDATE]}\n  validations:\n    - expression: namespaceObject == null || namespaceObject.metadata.labels['freeze'] != 'yes'\n      message: the namespace is frozen\n".to_string();
    let world = world_of_a(cluster).await;
    let ml = world.ml();
    world.place().wait_image("a", "1").await;
    let namespaces: kube::Api<k8s_openapi::api::core::v1::Namespace> =
        kube::Api::all(world.cluster.client());
    let label = serde_json::json!({"metadata": {"labels": {"freeze": "yes"}}});
    within(async {
        namespaces
            .patch(
                &ml,
                &kube::api::PatchParams::default(),
                &kube::api::Patch::Merge(&label),
            )
            .await
            .expect("namespace labelled")
    })
    .await;
    // The policy is the followed branch's: a pull request is judged by the branch's.
    branch_has(
        &world,
        &[a_file(&ml, "1"), ("policies/frozen.yaml", frozen.clone())],
    )
    .await;
    let files = [a_file(&ml, "2"), ("policies/frozen.yaml", frozen)];
    let head = world.open_pr(12, &files, "f-1").await;
    assert_eq!(world.plan_status(&head).await, "failure");
    let body = &world.plan_comments(12)[0].body;
    assert!(
        body.contains("frozen-namespaces") && body.contains("the namespace is frozen"),
        "the pull request's plan sees the label: {body}"
    );
    // The same content on main: the daemon denies it alike and leaves `a` at tag 1.
    commit_to(&world.remote.path(), "refs/heads/main", &files);
    world.daemon.handles.trigger.notify_one();
    let addr = world.daemon.addr();
    let key = format!("{ml}/a");
    let error = world
        .eventually("the daemon blocks a", || async {
            let status = status(addr).await;
            let service = &status["services"][&key];
            (service["state"] == "invalid").then(|| {
                service["last_error"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string()
            })
        })
        .await;
    assert!(error.contains("the namespace is frozen"), "{error}");
    world.place().wait_image("a", "1").await;
    world.stop().await;
}

#[tokio::test]
async fn a_pr_widening_its_own_tenant_is_planned_against_the_branch_s_tenants() {
    on_each_target(
        "a_pr_widening_its_own_tenant_is_planned_against_the_branch_s_tenants",
        a_pr_widening_its_own_tenant_is_planned_against_the_branch_s_tenants_on,
    )
    .await;
}

/// What a change may do is the followed branch's to decide: a PR that gives its tenant a
/// new namespace and puts a service there gets that service blocked in its plan, and the
/// comment says the tenants it edits take effect when merged.
async fn a_pr_widening_its_own_tenant_is_planned_against_the_branch_s_tenants_on(cluster: Target) {
    let (ml, other) = (cluster.ns(NS), cluster.ns("other"));
    let config = |namespaces: &str| {
        let tenants = format!(
            "  tenants: [{{name: team, paths: [\"services/**\"], namespaces: [{namespaces}]}}]\n"
        );
        ("modelship.yaml", modelship_yaml(&ml, &tenants))
    };
    let main = [config(&format!("\"{ml}\"")), a_file(&ml, "1")];
    let world = World::start(cluster, &main).await;
    world.place().wait_image("a", "1").await;
    let head = [
        config(&format!("\"{ml}\", \"{other}\"")),
        a_file(&ml, "1"),
        ("services/b.yaml", service_in(&other, "b", "1")),
    ];
    let sha = world.open_pr(12, &head, "t-1").await;
    assert_eq!(world.plan_status(&sha).await, "failure");
    let body = &world.plan_comments(12)[0].body;
    assert!(
        body.contains(
            "modelship.yaml: this change edits tenants; they take effect when merged; this \
             plan uses the branch's."
        ),
        "{body}"
    );
    assert!(
        body.contains(&format!("tenant team may not use namespace \\`{other}\\`")),
        "{body}"
    );
    world.stop().await;
}
