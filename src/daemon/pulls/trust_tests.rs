//! Who may make a pull request do what: the followed repository, and the preview step.

use super::*;
use crate::forge::events::Head;

const LABEL: &str = "modelship/preview";

fn repo(text: &str) -> Repo {
    text.parse().unwrap()
}

fn event(action: PrAction, labels: &[&str]) -> PullRequestEvent {
    PullRequestEvent {
        action,
        repo: repo("acme/models"),
        number: 4,
        head: Head {
            sha: "abc".into(),
            branch: "f".into(),
            repo: Some(repo("acme/models")),
        },
        base_branch: "main".into(),
        labels: labels.iter().map(|l| l.to_string()).collect(),
        installation: None,
        author: "alice".into(),
        sender: "alice".into(),
    }
}

/// The step for `event` of a PR trusted as `trust`, its sender a writer or not, armed
/// or not (`previews.forks` false unless `forks`).
fn step(
    trust: &Trust,
    event: &PullRequestEvent,
    sender_writes: bool,
    armed: bool,
    forks: bool,
) -> (PreviewStep, bool) {
    preview_step(&PreviewInput {
        trust,
        forks,
        label: LABEL,
        event,
        sender_writes,
        armed,
        replan: false,
    })
}

#[test]
fn only_the_followed_repository_and_installation_are_taken() {
    let followed = Followed::new(Some(repo("acme/models")));
    assert_eq!(followed.check(&repo("Acme/Models"), Some(9)), Ok(()));
    assert_eq!(
        followed.check(&repo("evil/models"), None),
        Err(Foreign::Repository(repo("evil/models")))
    );
    followed.learn_installation(Some(7));
    assert_eq!(followed.check(&repo("acme/models"), Some(7)), Ok(()));
    assert_eq!(followed.check(&repo("acme/models"), None), Ok(()));
    let other = followed.check(&repo("acme/models"), Some(8));
    assert_eq!(other, Err(Foreign::Installation(8)));
    assert_eq!(
        Followed::new(None).check(&repo("acme/models"), None),
        Err(Foreign::Unknown)
    );
    assert_eq!(Foreign::Unknown.metric_label(), "repository_unknown");
}

#[test]
fn the_followed_repository_is_read_from_the_git_url() {
    for url in [
        "https://github.com/acme/models.git",
        "https://x-access-token@github.com/acme/models",
        "git@github.com:acme/models.git",
        "ssh://git@git.example.com:2222/acme/models.git/",
    ] {
        assert_eq!(Repo::from_git_url(url), Some(repo("acme/models")), "{url}");
    }
    assert_eq!(Repo::from_git_url("/tmp/remote"), Some(repo("tmp/remote")));
    assert_eq!(Repo::from_git_url("models"), None);
}

#[test]
fn a_writer_s_label_arms_the_preview_and_a_non_writer_s_does_not() {
    let trusted = Trust::Trusted;
    let labelled = event(PrAction::Labeled(LABEL.into()), &[LABEL]);
    assert_eq!(
        step(&trusted, &labelled, true, false, false),
        (PreviewStep::Deploy, true)
    );
    let (refused, armed) = step(&trusted, &labelled, false, false, false);
    assert!(
        matches!(&refused, PreviewStep::Refuse(why) if why.contains("write permission")),
        "{refused:?}"
    );
    assert!(!armed);
    // Another label changes nothing of an armed preview, whoever adds it.
    let other = event(PrAction::Labeled("genai".into()), &[LABEL, "genai"]);
    assert_eq!(
        step(&trusted, &other, false, true, false),
        (PreviewStep::Deploy, true)
    );
    assert_eq!(
        step(&trusted, &other, false, false, false),
        (PreviewStep::Leave, false)
    );
}

#[test]
fn a_push_by_a_non_writer_suspends_until_a_writer_labels_again() {
    let trusted = Trust::Trusted;
    let push = event(PrAction::Synchronize, &[LABEL]);
    assert_eq!(
        step(&trusted, &push, false, true, false),
        (PreviewStep::Suspend, false)
    );
    assert_eq!(
        step(&trusted, &push, true, false, false),
        (PreviewStep::Leave, false),
        "a writer's push does not resume a suspended preview"
    );
    assert_eq!(
        step(&trusted, &push, true, true, false),
        (PreviewStep::Deploy, true)
    );
    let relabelled = event(PrAction::Labeled(LABEL.into()), &[LABEL]);
    assert_eq!(
        step(&trusted, &relabelled, true, false, false),
        (PreviewStep::Deploy, true)
    );
}

#[test]
fn forks_are_previewed_only_when_the_branch_allows_it_and_untrusted_authors_never() {
    let fork = Trust::Untrusted(Untrusted::Fork);
    let labelled = event(PrAction::Labeled(LABEL.into()), &[LABEL]);
    let (refused, _) = step(&fork, &labelled, true, false, false);
    assert!(
        matches!(&refused, PreviewStep::Refuse(why) if why.contains("previews.forks")),
        "{refused:?}"
    );
    assert_eq!(
        step(&fork, &labelled, true, false, true),
        (PreviewStep::Deploy, true)
    );
    let author = Trust::Untrusted(Untrusted::Author("mallory".into()));
    let (refused, armed) = step(&author, &labelled, true, true, true);
    assert!(
        matches!(&refused, PreviewStep::Refuse(why) if why.contains("@mallory")),
        "{refused:?}"
    );
    assert!(!armed);
}

#[test]
fn without_the_label_the_preview_goes_and_a_replan_follows_the_arming() {
    let trusted = Trust::Trusted;
    let unlabelled = event(PrAction::Unlabeled(LABEL.into()), &[]);
    assert_eq!(
        step(&trusted, &unlabelled, true, true, false),
        (PreviewStep::TearDown, false)
    );
    let replan = |armed| {
        preview_step(&PreviewInput {
            trust: &trusted,
            forks: false,
            label: LABEL,
            event: &event(PrAction::Synchronize, &[LABEL]),
            sender_writes: false,
            armed,
            replan: true,
        })
    };
    assert_eq!(replan(true), (PreviewStep::Deploy, true));
    assert_eq!(replan(false), (PreviewStep::Leave, false));
}

#[test]
fn armed_pull_requests_round_trip() {
    let armed: BTreeSet<(Repo, u64)> = [(repo("acme/models"), 4), (repo("acme/models"), 12)]
        .into_iter()
        .collect();
    assert_eq!(decode_armed(&encode_armed(&armed)), armed);
    assert!(decode_armed("garbage\nacme/models#x\n").is_empty());
}
