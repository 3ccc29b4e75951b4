//! `modelship pr comment` end to end: the sandbox as the cluster (read only) and the
//! GitHub double: one comment per PR edited on each push, `modelship/plan` statuses,
//! invalid specs and policy denials failing the status. The tests with a cluster run on
//! the sandbox, then on the real cluster of `MODELSHIP_TEST_KUBECONFIG` (`support::target`).

mod support;

use std::path::Path;
use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use modelship::cli::Exit;
use modelship::cli::cluster::ClusterArgs;
use modelship::cli::pr::{PrCommentArgs, comment_command};
use modelship::forge::{Credentials, RetryPolicy, Secret};
use support::forge::{Double, TOKEN};
use support::target::{Target, on_each_target};
use support::*;

const PR: u64 = 12;
const SHA_1: &str = "1111111111111111111111111111111111111111";
const SHA_2: &str = "2222222222222222222222222222222222222222";

fn args(dir: &Path, kubeconfig: &Path, double: &Double, sha: &str) -> PrCommentArgs {
    PrCommentArgs {
        dir: dir.to_path_buf(),
        repo: "acme/models".parse().expect("repo"),
        pr: PR,
        sha: Some(sha.to_string()),
        github_api_url: double.url.clone(),
        github_token_file: None,
        cluster: ClusterArgs {
            kubeconfig: Some(kubeconfig.to_path_buf()),
            context: None,
            instance: Default::default(),
        },
        policies: Vec::new(),
        branch_config: None,
    }
}

async fn post(args: &PrCommentArgs) -> Exit {
    let retry = RetryPolicy {
        base: Duration::from_millis(5),
        max: Duration::from_millis(20),
        ..RetryPolicy::default()
    };
    tokio::time::timeout(
        STEP,
        comment_command(args, Credentials::Token(Secret::new(TOKEN)), retry),
    )
    .await
    .expect("pr comment finishes in time")
}

/// Applies example-repo (in the test's namespaces) to `cluster`.
async fn apply_example(cluster: &Target) {
    apply_with_rollouts(cluster, &cluster.example_repo()).await;
    cluster.reset_requests();
}

/// The generation of Deployment `namespace/name` (moved by every write of its spec).
async fn generation(cluster: &Target, namespace: &str, name: &str) -> Option<i64> {
    let api: kube::Api<Deployment> = kube::Api::namespaced(cluster.client(), namespace);
    let deployment = tokio::time::timeout(STEP, api.get(name))
        .await
        .expect("GET in time")
        .expect("the Deployment exists");
    deployment.metadata.generation
}

/// The stdout of `modelship plan DIR -o markdown` against the cluster.
async fn plan_markdown(dir: &Path, cluster: &Target) -> String {
    let args = ["plan", path_str(dir), "-o", "markdown"];
    let output = binary::output(binary::on_cluster(cluster.kubeconfig_path(), args), STEP).await;
    assert_eq!(output.status.code(), Some(1), "changes: exit 1");
    String::from_utf8(output.stdout).expect("UTF-8")
}

fn statuses(double: &Double, sha: &str) -> Vec<(String, String)> {
    double
        .statuses()
        .into_iter()
        .filter(|s| s.sha == sha && s.context == "modelship/plan")
        .map(|s| (s.state, s.description))
        .collect()
}

#[tokio::test]
async fn an_opened_pr_gets_one_comment_and_a_status_and_a_push_edits_the_same_comment() {
    on_each_target(
        "an_opened_pr_gets_one_comment_and_a_status_and_a_push_edits_the_same_comment",
        an_opened_pr_gets_one_comment_and_a_status_and_a_push_edits_the_same_comment_on,
    )
    .await;
}

async fn an_opened_pr_gets_one_comment_and_a_status_and_a_push_edits_the_same_comment_on(
    cluster: Target,
) {
    apply_example(&cluster).await;
    let genai = cluster.ns("genai");
    let generation_before = generation(&cluster, &genai, "llm-chat").await;
    let double = Double::start().await;
    let repo = cluster.example_copy();
    bump_llm_chat_version(repo.path());
    assert_eq!(
        post(&args(
            repo.path(),
            cluster.kubeconfig_path(),
            &double,
            SHA_1
        ))
        .await,
        Exit::Ok
    );
    let comments = double.own_comments(PR);
    assert_eq!(comments.len(), 1, "{comments:?}");
    let first = &comments[0];
    assert!(
        first
            .body
            .starts_with("<!-- modelship:plan -->\n### modelship plan"),
        "{}",
        first.body
    );
    assert!(
        first.body.contains("version 3.1.0 -> 3.2.0"),
        "{}",
        first.body
    );
    // llm-chat is a GPU canary: the version bump starts a rollout whose peak is shown
    // (the stable pods, the canary's and the promotion's surge, 2 GPUs each).
    assert!(
        first
            .body
            .contains("Peak during canary rollouts: **20 GPUs**"),
        "{}",
        first.body
    );
    assert_eq!(
        statuses(&double, SHA_1),
        [
            ("pending".to_string(), "planning".to_string()),
            ("success".to_string(), "1 service changes".to_string())
        ]
    );
    // Planning a PR never writes to the cluster: the bumped version is not applied (on
    // both targets), and no write was served at all (only the sandbox counts them).
    assert_eq!(
        generation(&cluster, &genai, "llm-chat").await,
        generation_before
    );
    if let Some(requests) = cluster.served_requests() {
        assert_eq!(requests.total_writes(), 0, "{requests:?}");
    }
    // `plan -o markdown` prints the same Markdown.
    let printed = plan_markdown(repo.path(), &cluster).await;
    let body = first.body.strip_prefix("<!-- modelship:plan -->\n");
    // The canary's rollout state starts at each plan's own clock.
    assert_eq!(body.map(mask_since), Some(mask_since(&printed)));

    // A second push: the same comment, edited.
    edit(
        repo.path(),
        "services/risk/fraud-detection.yaml",
        "xgboost-server:2.1.0",
        "xgboost-server:2.2.0",
    );
    assert_eq!(
        post(&args(
            repo.path(),
            cluster.kubeconfig_path(),
            &double,
            SHA_2
        ))
        .await,
        Exit::Ok
    );
    let comments = double.own_comments(PR);
    assert_eq!(comments.len(), 1, "{comments:?}");
    assert_eq!(comments[0].id, first.id);
    assert!(
        comments[0].body.contains("**2 of 5 services change**"),
        "{}",
        comments[0].body
    );
    assert_eq!(
        statuses(&double, SHA_2).last().map(|s| s.0.as_str()),
        Some("success")
    );
    for request in double.requests() {
        assert!(!request.body.contains(TOKEN), "{request:?}");
    }
}

/// Posts the plan of example-repo with one edit, expecting a failed plan: the double, the
/// body of the one comment and the last `modelship/plan` status.
async fn post_failing(
    cluster: &Target,
    file: &str,
    from: &str,
    to: &str,
) -> (Double, String, (String, String)) {
    apply_example(cluster).await;
    let double = Double::start().await;
    let repo = cluster.example_copy();
    edit(repo.path(), file, from, to);
    let exit = post(&args(
        repo.path(),
        cluster.kubeconfig_path(),
        &double,
        SHA_1,
    ))
    .await;
    assert_eq!(exit, Exit::Invalid);
    let comments = double.own_comments(PR);
    assert_eq!(comments.len(), 1, "{comments:?}");
    let status = statuses(&double, SHA_1).pop().expect("a status");
    (double, comments[0].body.clone(), status)
}

#[tokio::test]
async fn an_invalid_spec_fails_the_status_and_links_the_error_to_the_head_commit() {
    on_each_target(
        "an_invalid_spec_fails_the_status_and_links_the_error_to_the_head_commit",
        an_invalid_spec_fails_the_status_and_links_the_error_to_the_head_commit_on,
    )
    .await;
}

async fn an_invalid_spec_fails_the_status_and_links_the_error_to_the_head_commit_on(
    cluster: Target,
) {
    let (double, body, status) = post_failing(
        &cluster,
        "services/genai/llm-chat.yaml",
        "maxReplicas: 6",
        "maxReplica: 6",
    )
    .await;
    assert_eq!(status, ("failure".into(), "invalid: 2 errors".into()));
    let link = format!(
        "]({}/acme/models/blob/{SHA_1}/services/genai/llm-chat.yaml#L39)",
        double.url
    );
    assert!(body.contains(&link), "{link} not in\n{body}");
    assert!(body.contains("did you mean maxReplicas?"), "{body}");
}

#[tokio::test]
async fn a_denied_service_fails_the_status_and_shows_the_policy_and_its_message() {
    on_each_target(
        "a_denied_service_fails_the_status_and_shows_the_policy_and_its_message",
        a_denied_service_fails_the_status_and_shows_the_policy_and_its_message_on,
    )
    .await;
}

async fn a_denied_service_fails_the_status_and_shows_the_policy_and_its_message_on(
    cluster: Target,
) {
    let (_double, body, status) = post_failing(
        &cluster,
        "services/risk/fraud-detection.yaml",
        "  owner: risk-ml@example.com\n",
        "",
    )
    .await;
    assert_eq!(
        status,
        ("failure".into(), "1 service denied by policy".into())
    );
    let denied = format!(
        "**1 service denied by policy ({}/fraud-detection)**",
        cluster.ns("risk-prod")
    );
    assert!(body.contains(&denied), "{denied} not in\n{body}");
    assert!(body.contains("policy `require-owner`"), "{body}");
    assert!(body.contains("spec.owner is required"), "{body}");
}

// No cluster at all (nothing listens on the address), so nothing to run on a real one.
#[tokio::test]
async fn an_unreachable_cluster_posts_an_error_status_and_says_why() {
    let double = Double::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let kubeconfig = dir.path().join("kubeconfig");
    // Port 1 on loopback: nothing listens there.
    std::fs::write(
        &kubeconfig,
        modelship::sandbox::kubeconfig("http://127.0.0.1:1"),
    )
    .expect("write kubeconfig");
    let args = args(&example_repo(), &kubeconfig, &double, SHA_1);
    assert_eq!(post(&args).await, Exit::Cluster);
    assert_eq!(
        statuses(&double, SHA_1).last(),
        Some(&(
            "error".to_string(),
            "the cluster could not be read".to_string()
        ))
    );
    let body = &double.own_comments(PR)[0].body;
    assert!(
        body.contains("**Nothing was planned**: the cluster could not be read."),
        "{body}"
    );
}

/// The text with the timestamps of rollout states (`"since":"..."`, quoted as JSON or
/// escaped inside YAML) masked.
fn mask_since(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find("since") {
        let (head, tail) = rest.split_at(at + "since".len());
        out.push_str(head);
        let separator = tail.len() - tail.trim_start_matches(['\\', '"', ':']).len();
        let (quote, tail) = tail.split_at(separator);
        out.push_str(quote);
        let time = tail.len()
            - tail
                .trim_start_matches(|c: char| c.is_ascii_digit() || "-:T.Z".contains(c))
                .len();
        if time > 0 {
            out.push('T');
        }
        rest = &tail[time..];
    }
    out.push_str(rest);
    out
}

#[tokio::test]
async fn with_the_branch_config_a_head_widening_its_tenant_is_planned_with_the_branch_s() {
    on_each_target(
        "with_the_branch_config_a_head_widening_its_tenant_is_planned_with_the_branch_s",
        with_the_branch_config_a_head_widening_its_tenant_is_planned_with_the_branch_s_on,
    )
    .await;
}

/// `--branch-config`: the head's tenants do not apply, the branch's do, and the comment
/// says so.
async fn with_the_branch_config_a_head_widening_its_tenant_is_planned_with_the_branch_s_on(
    cluster: Target,
) {
    apply_example(&cluster).await;
    let (risk, genai) = (cluster.ns("risk-prod"), cluster.ns("genai"));
    let tenants = |genai_namespaces: &str| {
        format!(
            "  tenants:\n    - {{name: risk, paths: [\"services/risk/**\"], namespaces: [\"{risk}\"]}}\n    - {{name: genai, paths: [\"services/genai/**\"], namespaces: [{genai_namespaces}]}}\n"
        )
    };
    let repo = cluster.example_copy();
    let config = repo.path().join("modelship.yaml");
    let text = std::fs::read_to_string(&config).unwrap();
    let branch = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        branch.path(),
        text.clone() + &tenants(&format!("\"{genai}\"")),
    )
    .unwrap();
    // The head lets genai into risk's namespace and moves a service there.
    std::fs::write(
        &config,
        text + &tenants(&format!("\"{genai}\", \"{risk}\"")),
    )
    .unwrap();
    edit(
        repo.path(),
        "services/genai/image-classifier.yaml",
        &cluster.ns_line("genai"),
        &cluster.ns_line("risk-prod"),
    );
    let double = Double::start().await;
    let mut with_branch = args(repo.path(), cluster.kubeconfig_path(), &double, SHA_1);
    with_branch.branch_config = Some(branch.path().to_path_buf());
    assert_eq!(post(&with_branch).await, Exit::Invalid);
    let body = &double.own_comments(PR)[0].body;
    assert!(
        body.contains(
            "modelship.yaml: this change edits tenants; they take effect when merged; this \
             plan uses the branch's."
        ),
        "{body}"
    );
    assert!(
        body.contains(&format!("tenant genai may not use namespace \\`{risk}\\`")),
        "{body}"
    );
}
