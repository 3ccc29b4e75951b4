use jiff::Timestamp;

use super::*;
use crate::rollout::{CheckResult, RollbackReason, StepAnalysis, Threshold, Verdict as Check};

fn pending(services: &[&str]) -> Pending {
    Pending {
        repo: "acme/models".parse().unwrap(),
        pr: 3,
        merge_sha: "abcdef0123".into(),
        services: services
            .iter()
            .map(|n| ServiceId::new("ml", *n).unwrap())
            .collect(),
    }
}

fn board(revision: &str, services: &[(&str, Option<Verdict>, &str)]) -> Board {
    let mut board = Board {
        revision: Some(revision.into()),
        ..Board::default()
    };
    for (name, state, at) in services {
        let status = board.service(&ServiceId::new("ml", *name).unwrap());
        status.verdict.clone_from(state);
        status.revision = Some(at.to_string());
    }
    board
}

fn rolled_back() -> RolloutState {
    RolloutState {
        phase: Phase::RolledBack {
            at: Timestamp::UNIX_EPOCH,
            reason: RollbackReason::AnalysisFailed,
        },
        last_analysis: Some(StepAnalysis {
            at: Timestamp::UNIX_EPOCH,
            weight: 25,
            checks: vec![CheckResult {
                name: "successRate".into(),
                verdict: Check::Fail,
                value: Some(97.5),
                threshold: Threshold {
                    min: Some(99.0),
                    max: None,
                },
                message: None,
            }],
        }),
        ..RolloutState::default()
    }
}

#[test]
fn nothing_settles_before_every_service_is_done_at_the_current_revision() {
    let none = |_: &ServiceId| None;
    let p = pending(&["a", "b"]);
    let old = board(
        "r2",
        &[
            ("a", Some(Verdict::InSync), "r2"),
            ("b", Some(Verdict::InSync), "r1"),
        ],
    );
    assert_eq!(settle(&p, &old, &none), None, "b is at an older revision");
    let pending_b = board(
        "r2",
        &[("a", Some(Verdict::InSync), "r2"), ("b", None, "r2")],
    );
    assert_eq!(settle(&p, &pending_b, &none), None);
    let done = board(
        "r2",
        &[
            ("a", Some(Verdict::InSync), "r2"),
            ("b", Some(Verdict::Pruned), "r1"),
        ],
    );
    let results = settle(&p, &done, &none).expect("settled");
    assert_eq!(
        results,
        [
            (
                ServiceId::new("ml", "a").unwrap(),
                Settled {
                    verdict: Verdict::InSync,
                    rollout: None
                }
            ),
            (
                ServiceId::new("ml", "b").unwrap(),
                Settled {
                    verdict: Verdict::Pruned,
                    rollout: None
                }
            )
        ]
    );
    assert!(passed(&results));
}

#[test]
fn a_running_rollout_waits_and_a_rollback_is_reported_with_its_values() {
    let p = pending(&["a"]);
    let at = board("r2", &[("a", Some(Verdict::InSync), "r2")]);
    let running = RolloutState {
        phase: Phase::Progressing {
            step: 1,
            since: Timestamp::UNIX_EPOCH,
        },
        ..RolloutState::default()
    };
    assert_eq!(settle(&p, &at, &|_| Some(running.clone())), None);
    let results = settle(&p, &at, &|_| Some(rolled_back())).expect("settled");
    assert!(!passed(&results));
    let text = comment(&p, "r2", &results);
    assert!(
        text.contains("| `ml/a` | rolled back: analysis failed"),
        "{text}"
    );
    assert!(text.contains("successRate 97.500 (min 99: Fail)"), "{text}");
    assert!(text.contains("weight 25%"), "{text}");
    assert!(text.contains("`abcdef0`"), "{text}");
}

#[test]
fn a_pending_outcome_is_stored_and_read_back() {
    let p = pending(&["a", "b"]);
    assert_eq!(p.key(), "acme.models.3");
    assert_eq!(Pending::decode(&p.encode()), Some(p));
    assert_eq!(Pending::decode("{\"repo\": \"nope\"}"), None);
    assert_eq!(Pending::decode("not json"), None);
}
