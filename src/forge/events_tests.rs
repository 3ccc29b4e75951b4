//! Parsing of `pull_request` and `issue_comment` deliveries, and delivery dedupe.

use serde_json::{Value, json};

use super::*;

fn pr_payload(action: &str) -> Value {
    json!({
        "action": action,
        "number": 7,
        "pull_request": {
            "number": 7,
            "head": {"sha": "abc123", "ref": "bump-llm", "repo": {"full_name": "alice/models"}},
            "base": {"ref": "main", "repo": {"full_name": "acme/models"}},
            "labels": [{"name": "modelship/preview"}, {"name": "genai"}],
            "merged": false,
            "merge_commit_sha": "ffff"
        },
        "repository": {"full_name": "acme/models"},
        "installation": {"id": 99}
    })
}

fn parse_json(event: &str, body: &Value) -> Event {
    parse(event, body.to_string().as_bytes()).unwrap()
}

fn pr(event: Event) -> PullRequestEvent {
    match event {
        Event::PullRequest(pr) => pr,
        other => panic!("not a pull request event: {other:?}"),
    }
}

#[test]
fn opened_from_a_fork_has_head_sha_labels_and_the_pull_ref() {
    let event = pr(parse_json("pull_request", &pr_payload("opened")));
    assert_eq!(event.action, PrAction::Opened);
    assert_eq!(event.repo.to_string(), "acme/models");
    assert_eq!(event.number, 7);
    assert_eq!(event.head.sha, "abc123");
    assert_eq!(event.head.branch, "bump-llm");
    assert!(event.is_fork());
    assert_eq!(event.head_ref(), "refs/pull/7/head");
    assert_eq!(event.base_branch, "main");
    assert!(event.has_label("modelship/preview"));
    assert_eq!(event.installation, Some(99));
    assert!(event.wants_plan());
}

#[test]
fn every_pull_request_action_modelship_follows() {
    for (action, expected, plans) in [
        ("synchronize", PrAction::Synchronize, true),
        ("reopened", PrAction::Reopened, true),
        (
            "closed",
            PrAction::Closed {
                merged: false,
                merge_commit_sha: None,
            },
            false,
        ),
    ] {
        let event = pr(parse_json("pull_request", &pr_payload(action)));
        assert_eq!(event.action, expected, "{action}");
        assert_eq!(event.wants_plan(), plans, "{action}");
    }
    let mut merged = pr_payload("closed");
    merged["pull_request"]["merged"] = json!(true);
    assert_eq!(
        pr(parse_json("pull_request", &merged)).action,
        PrAction::Closed {
            merged: true,
            merge_commit_sha: Some("ffff".into())
        }
    );
    let mut labeled = pr_payload("labeled");
    labeled["label"] = json!({"name": "modelship/preview"});
    assert_eq!(
        pr(parse_json("pull_request", &labeled)).action,
        PrAction::Labeled("modelship/preview".into())
    );
    let mut unlabeled = pr_payload("unlabeled");
    unlabeled["label"] = json!({"name": "modelship/preview"});
    unlabeled["pull_request"]["labels"] = json!([]);
    let event = pr(parse_json("pull_request", &unlabeled));
    assert_eq!(
        event.action,
        PrAction::Unlabeled("modelship/preview".into())
    );
    assert!(!event.has_label("modelship/preview"));
}

#[test]
fn same_repository_heads_and_deleted_forks_are_not_forks() {
    let mut own = pr_payload("opened");
    own["pull_request"]["head"]["repo"] = json!({"full_name": "acme/models"});
    assert!(!pr(parse_json("pull_request", &own)).is_fork());
    let mut deleted = pr_payload("opened");
    deleted["pull_request"]["head"]["repo"] = Value::Null;
    let event = pr(parse_json("pull_request", &deleted));
    assert_eq!(event.head.repo, None);
    assert!(!event.is_fork());
}

#[test]
fn other_actions_and_events_are_ignored_and_garbage_is_an_error() {
    assert!(matches!(
        parse_json("pull_request", &pr_payload("assigned")),
        Event::Ignored(_)
    ));
    assert!(matches!(
        parse("star", b"{}").unwrap(),
        Event::Ignored(why) if why.contains("star")
    ));
    let error = parse("pull_request", b"{\"action\": 1}").unwrap_err();
    assert!(
        error
            .to_string()
            .starts_with("`pull_request` delivery is not valid"),
        "{error}"
    );
    let labeled_without_label = pr_payload("labeled");
    assert!(parse("pull_request", labeled_without_label.to_string().as_bytes()).is_err());
}

fn comment_payload(body: &str, kind: &str, on_pr: bool) -> Value {
    let mut issue = json!({"number": 7});
    if on_pr {
        issue["pull_request"] = json!({"url": "https://api.github.com/repos/acme/models/pulls/7"});
    }
    json!({
        "action": "created",
        "issue": issue,
        "comment": {"id": 555, "body": body, "user": {"login": "bob", "type": kind}},
        "repository": {"full_name": "acme/models"}
    })
}

#[test]
fn approve_and_plan_commands_from_pull_request_comments() {
    let body = "Looks good.\n/modelship approve genai/llm-chat\nthanks";
    let Event::Command(event) = parse_json("issue_comment", &comment_payload(body, "User", true))
    else {
        panic!("not a command");
    };
    assert_eq!(
        event.command,
        Command::Approve("genai/llm-chat".parse().unwrap())
    );
    assert_eq!(
        (event.user.as_str(), event.number, event.comment_id),
        ("bob", 7, 555)
    );
    assert_eq!(command("/modelship plan"), Some(Command::Plan));
    assert_eq!(
        command("/modelship approve Not/Valid!"),
        Some(Command::Unknown("/modelship approve Not/Valid!".into()))
    );
    assert_eq!(
        command("/modelship deploy"),
        Some(Command::Unknown("/modelship deploy".into()))
    );
    assert_eq!(
        command("/modelship abort genai/llm-chat"),
        Some(Command::Abort("genai/llm-chat".parse().unwrap()))
    );
    assert_eq!(
        command("/modelship retry genai/llm-chat"),
        Some(Command::Retry("genai/llm-chat".parse().unwrap()))
    );
    assert_eq!(
        command("/modelship abort llm-chat"),
        Some(Command::Unknown("/modelship abort llm-chat".into()))
    );
    assert_eq!(command("/modelshipping plan"), None);
    assert_eq!(command("no command here"), None);
}

#[test]
fn bots_issues_and_edits_are_not_commands() {
    let cmd = "/modelship plan";
    for payload in [
        comment_payload(cmd, "Bot", true),
        comment_payload(cmd, "User", false),
        comment_payload("just a remark", "User", true),
    ] {
        assert!(matches!(
            parse_json("issue_comment", &payload),
            Event::Ignored(_)
        ));
    }
    let mut edited = comment_payload(cmd, "User", true);
    edited["action"] = json!("edited");
    assert!(matches!(
        parse_json("issue_comment", &edited),
        Event::Ignored(_)
    ));
}

#[test]
fn deliveries_are_handled_once_and_memory_is_bounded() {
    let mut deliveries = Deliveries::new(2);
    assert!(deliveries.first_time("a"));
    assert!(!deliveries.first_time("a"));
    assert!(deliveries.first_time("b"));
    assert!(deliveries.first_time("c"));
    // "a" was forgotten to make room for "c".
    assert!(deliveries.first_time("a"));
    assert!(!deliveries.first_time("c"));
    assert!(deliveries.first_time(""));
    assert!(deliveries.first_time(""));
}
