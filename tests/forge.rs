//! The GitHub client against the REST double: one sticky comment edited in place, statuses,
//! pagination, retries on 502 and rate limits, permissions, App tokens, and no credential
//! in any recorded body or error.

mod support;

use std::time::Duration;

use http::Method;
use modelship::forge::{
    AppKey, Approval, CommentWrite, Credentials, ForgeMetrics, GitHub, Marker, Permission, Repo,
    RetryPolicy, Secret, StatusContext, StatusState,
};
use support::forge::{Double, Fault, TOKEN};
use support::within;

fn fast() -> RetryPolicy {
    RetryPolicy {
        attempts: 4,
        base: Duration::from_millis(5),
        max: Duration::from_millis(20),
        max_wait: Duration::from_secs(5),
        timeout: Duration::from_secs(5),
    }
}

fn repo() -> Repo {
    "acme/models".parse().unwrap()
}

fn client(double: &Double) -> GitHub {
    GitHub::new(
        &double.url,
        Credentials::Token(Secret::new(TOKEN)),
        fast(),
        ForgeMetrics::default(),
    )
    .unwrap()
}

/// A client authenticating as GitHub App 42 with the test key.
fn app_client(double: &Double) -> GitHub {
    let key = AppKey::from_pem(42, include_str!("fixtures/forge/app-key.pem")).unwrap();
    GitHub::new(
        &double.url,
        Credentials::App(key),
        fast(),
        ForgeMetrics::default(),
    )
    .unwrap()
}

#[tokio::test]
async fn the_plan_comment_is_created_once_then_edited_in_place() {
    let double = Double::start().await;
    let github = client(&double);
    double.seed_comment(7, "alice", "Please look at the GPU count");
    let first = within(github.upsert_comment(&repo(), 7, Marker::Plan, "plan one"))
        .await
        .unwrap();
    assert!(matches!(first, CommentWrite::Created(_)));
    let second = within(github.upsert_comment(&repo(), 7, Marker::Plan, "plan two"))
        .await
        .unwrap();
    assert_eq!(second, CommentWrite::Updated(first.id()));
    let again = within(github.upsert_comment(&repo(), 7, Marker::Plan, "plan two"))
        .await
        .unwrap();
    assert_eq!(again, CommentWrite::Unchanged(first.id()));

    let own = double.own_comments(7);
    assert_eq!(own.len(), 1, "{own:?}");
    assert_eq!(own[0].body, "<!-- modelship:plan -->\nplan two");
    assert_eq!(double.comments(7)[0].body, "Please look at the GPU count");
    // Another kind of sticky comment is a comment of its own.
    within(github.upsert_comment(&repo(), 7, Marker::Outcome, "rolled out"))
        .await
        .unwrap();
    assert_eq!(double.own_comments(7).len(), 2);
    assert_eq!(github.metrics().count("ok"), double.requests().len() as u64);
}

#[tokio::test]
async fn the_marker_is_found_on_a_later_page() {
    let double = Double::start().await;
    double.set_per_page_max(2);
    let github = client(&double);
    for i in 0..5 {
        double.seed_comment(3, "alice", &format!("comment {i}"));
    }
    let created = within(github.upsert_comment(&repo(), 3, Marker::Plan, "one"))
        .await
        .unwrap();
    let edited = within(github.upsert_comment(&repo(), 3, Marker::Plan, "two"))
        .await
        .unwrap();
    assert_eq!(edited, CommentWrite::Updated(created.id()));
    let pages: Vec<String> = double
        .requests()
        .iter()
        .filter(|r| r.method == Method::GET)
        .map(|r| r.path.clone())
        .collect();
    assert!(
        pages.iter().any(|p| p.ends_with("page=3")),
        "the third page was read: {pages:?}"
    );
    assert_eq!(double.own_comments(3).len(), 1);
}

#[tokio::test]
async fn a_502_then_200_still_ends_with_one_comment() {
    let double = Double::start().await;
    let github = client(&double);
    double.fault(Method::GET, "/comments", Fault::Status(502));
    double.fault(Method::POST, "/comments", Fault::Status(502));
    within(github.upsert_comment(&repo(), 1, Marker::Plan, "plan"))
        .await
        .unwrap();
    assert_eq!(double.own_comments(1).len(), 1);
    assert_eq!(github.metrics().count("server_error"), 2);

    // GitHub stores the comment but the answer is lost: it is found and edited, not
    // posted twice.
    let double = Double::start().await;
    let github = client(&double);
    double.fault(Method::POST, "/comments", Fault::StatusAfterApplying(502));
    within(github.upsert_comment(&repo(), 1, Marker::Plan, "plan"))
        .await
        .unwrap();
    let own = double.own_comments(1);
    assert_eq!(own.len(), 1, "{own:?}");
    assert_eq!(own[0].body, "<!-- modelship:plan -->\nplan");
}

#[tokio::test]
async fn a_403_with_retry_after_is_waited_out_and_ends_with_one_comment() {
    let double = Double::start().await;
    let github = client(&double);
    double.fault(
        Method::GET,
        "/comments",
        Fault::RateLimited { retry_after: 1 },
    );
    let started = std::time::Instant::now();
    within(github.upsert_comment(&repo(), 1, Marker::Plan, "plan"))
        .await
        .unwrap();
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "Retry-After was honoured"
    );
    assert_eq!(double.own_comments(1).len(), 1);
    assert_eq!(github.metrics().count("rate_limited"), 1);

    // A wait longer than the policy allows fails at once, saying so.
    double.fault(
        Method::GET,
        "/comments",
        Fault::RateLimited { retry_after: 3600 },
    );
    let error = within(github.upsert_comment(&repo(), 1, Marker::Plan, "plan"))
        .await
        .unwrap_err();
    assert!(
        error.to_string().contains("rate limited for 3600s"),
        "{error}"
    );
}

#[tokio::test]
async fn statuses_go_pending_then_success_or_failure() {
    let double = Double::start().await;
    let github = client(&double);
    let sha = "0123456789abcdef0123456789abcdef01234567";
    for (state, text) in [
        (StatusState::Pending, "planning"),
        (StatusState::Success, "1 service changes"),
        (StatusState::Failure, &"x".repeat(300)[..]),
    ] {
        within(github.set_status(&repo(), sha, StatusContext::Plan, state, text, None))
            .await
            .unwrap();
    }
    within(github.set_status(
        &repo(),
        sha,
        StatusContext::Apply,
        StatusState::Pending,
        "rolling out",
        None,
    ))
    .await
    .unwrap();
    let statuses = double.statuses();
    let states: Vec<(&str, &str)> = statuses
        .iter()
        .map(|s| (s.context.as_str(), s.state.as_str()))
        .collect();
    assert_eq!(
        states,
        [
            ("modelship/plan", "pending"),
            ("modelship/plan", "success"),
            ("modelship/plan", "failure"),
            ("modelship/apply", "pending")
        ]
    );
    assert_eq!(
        statuses[2].description.chars().count(),
        140,
        "cut to GitHub's limit"
    );
    assert!(statuses.iter().all(|s| s.sha == sha));
}

#[tokio::test]
async fn publishing_a_plan_sets_the_status_after_the_comment_or_error_when_it_fails() {
    let double = Double::start().await;
    let github = client(&double);
    let sha = "abcdef1234567";
    let write = within(github.publish_plan(
        &repo(),
        4,
        sha,
        "plan",
        StatusState::Failure,
        "invalid: 1 error",
    ))
    .await
    .unwrap();
    assert!(matches!(write, CommentWrite::Created(_)));
    double.fault(Method::PATCH, "/issues/comments/", Fault::Status(422));
    let error = within(github.publish_plan(
        &repo(),
        4,
        sha,
        "plan two",
        StatusState::Success,
        "no changes",
    ))
    .await
    .unwrap_err();
    assert!(error.to_string().contains("422"), "{error}");
    let states: Vec<(String, String)> = double
        .statuses()
        .into_iter()
        .map(|s| (s.state, s.description))
        .collect();
    assert_eq!(
        states,
        [
            ("failure".to_string(), "invalid: 1 error".to_string()),
            (
                "error".to_string(),
                "the plan comment could not be posted".to_string()
            )
        ]
    );
}

#[tokio::test]
async fn approvals_need_write_permission_or_a_listed_approver() {
    let double = Double::start().await;
    let github = client(&double);
    double.grant("maria", "maintain");
    double.grant("rita", "read");
    double.add_to_team("acme/ml-platform", "tom");
    let check = |user: &'static str, approvers: Vec<String>| {
        let github = github.clone();
        async move {
            within(github.may_approve(&repo(), user, &approvers))
                .await
                .unwrap()
        }
    };
    assert_eq!(check("maria", vec![]).await, Approval::Allowed);
    let Approval::Refused(why) = check("rita", vec![]).await else {
        panic!("a reader may not approve");
    };
    assert!(
        why.contains("@rita needs write permission on acme/models"),
        "{why}"
    );
    assert!(matches!(
        check("stranger", vec![]).await,
        Approval::Refused(_)
    ));
    let listed = vec!["Rita".to_string(), "acme/ml-platform".to_string()];
    assert_eq!(check("rita", listed.clone()).await, Approval::Allowed);
    assert_eq!(check("tom", listed.clone()).await, Approval::Allowed);
    let Approval::Refused(why) = check("maria", listed).await else {
        panic!("with approvers listed, write permission alone is not enough");
    };
    assert!(why.contains("not among the approvers"), "{why}");
    assert_eq!(
        within(github.permission(&repo(), "stranger"))
            .await
            .unwrap(),
        Permission::None
    );
}

#[tokio::test]
async fn a_pull_request_tells_its_author_fork_and_merge_commit_and_writers_are_told_apart() {
    let double = Double::start().await;
    let github = client(&double);
    double.grant("maria", "write");
    double.set_pull(3, true, "abc", &[]);
    double.set_pull_author(3, "maria", false);
    let own = within(github.pull_request(&repo(), 3)).await.unwrap();
    assert_eq!((own.author.as_str(), own.fork), ("maria", false));
    assert_eq!(own.merge_commit_sha, None);
    double.set_pull_author(3, "mallory", true);
    double.merge_pull(3, "fff");
    let fork = within(github.pull_request(&repo(), 3)).await.unwrap();
    assert!(fork.fork && fork.merged);
    assert_eq!(fork.merge_commit_sha.as_deref(), Some("fff"));
    assert!(within(github.can_write(&repo(), "maria")).await.unwrap());
    assert!(!within(github.can_write(&repo(), "mallory")).await.unwrap());
    let asked = double.requests().len();
    assert!(!within(github.can_write(&repo(), "")).await.unwrap());
    assert_eq!(double.requests().len(), asked, "no login, no question");
}

#[tokio::test]
async fn a_github_app_gets_an_installation_token_once_and_uses_it() {
    let double = Double::start().await;
    double.enable_app();
    let github = app_client(&double);
    within(github.upsert_comment(&repo(), 2, Marker::Plan, "one"))
        .await
        .unwrap();
    within(github.set_status(
        &repo(),
        "abcdef1",
        StatusContext::Plan,
        StatusState::Success,
        "ok",
        None,
    ))
    .await
    .unwrap();
    assert_eq!(
        double.issued_tokens(),
        ["ghs_installation_1"],
        "one token, cached"
    );
    assert_eq!(
        within(github.installation(&repo())).await.unwrap(),
        Some(7),
        "the installation deliveries must come from"
    );
    assert_eq!(
        within(client(&double).installation(&repo())).await.unwrap(),
        None
    );
    let repo_calls: Vec<_> = double
        .requests()
        .into_iter()
        .filter(|r| r.path.starts_with("/repos/acme/models/") && !r.path.ends_with("/installation"))
        .collect();
    assert!(!repo_calls.is_empty());
    for call in repo_calls {
        assert_eq!(
            call.authorization.as_deref(),
            Some("Bearer ghs_installation_1"),
            "{call:?}"
        );
    }
}

#[tokio::test]
async fn an_installation_token_close_to_expiry_is_replaced_before_use() {
    let double = Double::start().await;
    double.enable_app();
    // Four minutes left is inside the five-minute margin: every use fetches a new one.
    double.set_token_lifetime(Duration::from_secs(240));
    let github = app_client(&double);
    for text in ["one", "two"] {
        within(github.set_status(
            &repo(),
            "abcdef1",
            StatusContext::Plan,
            StatusState::Pending,
            text,
            None,
        ))
        .await
        .unwrap();
    }
    assert_eq!(
        double.issued_tokens(),
        ["ghs_installation_1", "ghs_installation_2"]
    );
    let last = double.requests().pop().expect("a request");
    assert_eq!(
        last.authorization.as_deref(),
        Some("Bearer ghs_installation_2")
    );
}

#[tokio::test]
async fn no_credential_appears_in_bodies_errors_or_debug_output() {
    let double = Double::start().await;
    let github = client(&double);
    within(github.upsert_comment(&repo(), 1, Marker::Plan, "plan"))
        .await
        .unwrap();
    double.fault(Method::POST, "/statuses/", Fault::Status(422));
    let error = within(github.set_status(
        &repo(),
        "abcdef1",
        StatusContext::Plan,
        StatusState::Success,
        "x",
        None,
    ))
    .await
    .unwrap_err();
    let wrong = GitHub::new(
        &double.url,
        Credentials::Token(Secret::new("ghp_wrong_secret_value")),
        fast(),
        ForgeMetrics::default(),
    )
    .unwrap();
    let refused = within(wrong.upsert_comment(&repo(), 1, Marker::Plan, "plan"))
        .await
        .unwrap_err();
    assert!(refused.to_string().contains("401"), "{refused}");
    let shown = [
        format!("{error} {error:?}"),
        format!("{refused} {refused:?}"),
        format!("{github:?} {wrong:?}"),
    ];
    for text in &shown {
        assert!(
            !text.contains(TOKEN) && !text.contains("ghp_wrong_secret_value"),
            "{text}"
        );
    }
    for request in double.requests() {
        assert!(!request.body.contains(TOKEN), "{request:?}");
        assert!(!request.path.contains(TOKEN), "{request:?}");
    }
}
