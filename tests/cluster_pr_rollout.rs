//! The whole pull-request loop of a canary service, end to end through the real
//! `modelship run` binary: the sandbox as the cluster, then the real cluster of
//! `MODELSHIP_TEST_KUBECONFIG` (each test runs on both), a bare Git remote holding
//! example-repo on main and the PR's head on `refs/pull/<n>/head`, the GitHub double
//! behind `--github-token-file` and `--github-api-url`, signed deliveries on
//! `/hooks/github`, and a real Prometheus scraping an exporter the test drives per track,
//! with the test-only step interval.
//!
//! A version bump of llm-chat (steps 5, 25, gate, 50, 100) is planned on the PR, merged,
//! rolled out to the gate, refused for a reader and approved by a writer from PR comments,
//! promoted, and only then reported on the merged PR; with bad metrics it is rolled back
//! and reported with the reason and the measured values. Every wait polls with a deadline.

mod support;

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use modelship::forge::Marker;
use modelship::rollout::{ANNOTATION_COMMAND, Phase, RolloutState};
use support::daemon::{Remote, SECRET, commit_to, push_webhook};
use support::forge::{Comment, Double, TOKEN};
use support::prometheus::Traffic;
use support::pulls::{REPO, deliver_ok, issue_comment, pull_request, statuses_of};
use support::rollout::{
    BROKEN, Env, HEALTHY, deployment, model_version, on_each_cluster, route_weights, state,
};
use support::{eventually_within, wait_for};
use tokio::process::Child;

const GENAI: &str = "genai";
const LLM: &str = "llm-chat";
const LLM_FILE: &str = "services/genai/llm-chat.yaml";
/// A bound on any wait of a rollout (a few 4 s steps, on a busy machine).
const ROLLOUT: Duration = Duration::from_secs(150);
/// A bound on a wait for the daemon or GitHub.
const QUICK: Duration = Duration::from_secs(60);
/// Between two reads of the cluster while waiting.
const THROTTLE: Duration = Duration::from_millis(100);

/// Every file below `dir`, as (path with `/`, content).
fn tree_files(dir: &Path, prefix: &str, out: &mut Vec<(String, String)>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .expect("read_dir")
        .map(|e| e.expect("entry"))
        .collect();
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let name = format!("{prefix}{}", entry.file_name().to_string_lossy());
        if entry.path().is_dir() {
            tree_files(&entry.path(), &format!("{name}/"), out);
        } else {
            let text = std::fs::read_to_string(entry.path()).expect("a text file");
            out.push((name, text));
        }
    }
}

/// `files` with llm-chat's model version bumped from 3.1.0 to 3.2.0.
fn bumped(files: &[(String, String)]) -> Vec<(String, String)> {
    files
        .iter()
        .map(|(path, text)| {
            let text = if path == LLM_FILE {
                assert!(text.contains("version: \"3.1.0\""), "{text}");
                text.replacen("version: \"3.1.0\"", "version: \"3.2.0\"", 1)
            } else {
                text.clone()
            };
            (path.clone(), text)
        })
        .collect()
}

fn as_refs(files: &[(String, String)]) -> Vec<(&str, String)> {
    files.iter().map(|(p, t)| (p.as_str(), t.clone())).collect()
}

/// Merges `head` into main as GitHub's merge button does: a commit with main and the
/// head as parents and the head's tree. Returns the merge commit.
fn merge_commit(remote: &Path, pr: u64, head: &str) -> String {
    let repo = git2::Repository::open_bare(remote).expect("the remote");
    let main = repo.refname_to_id("refs/heads/main").expect("main");
    let main = repo.find_commit(main).expect("main's commit");
    let head = repo
        .find_commit(git2::Oid::from_str(head).expect("an id"))
        .expect("the head commit");
    let tree = head.tree().expect("the head's tree");
    let signature = git2::Signature::now("test", "test@example.com").expect("signature");
    let message = format!("Merge pull request #{pr} from acme/feature");
    repo.commit(
        Some("refs/heads/main"),
        &signature,
        &signature,
        &message,
        &tree,
        &[&main, &head],
    )
    .expect("the merge commit")
    .to_string()
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().expect("address").port()
}

/// The cluster, Prometheus, the remote, the double and `modelship run` following main.
struct Loop {
    env: Env,
    remote: Remote,
    double: Double,
    daemon: Option<Child>,
    addr: std::net::SocketAddr,
    /// Token, webhook secret, Git cache and the daemon's log.
    dir: tempfile::TempDir,
    /// main as committed first: example-repo with the test's Prometheus.
    main: Vec<(String, String)>,
}

impl Drop for Loop {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let log = std::fs::read_to_string(self.dir.path().join("daemon.log"));
            eprintln!("--- modelship run ---\n{}", log.unwrap_or_default());
        }
    }
}

impl Loop {
    /// Everything started on `env`, llm-chat deployed at 3.1.0 with `canary` traffic.
    async fn start(env: Env, canary: Traffic) -> Loop {
        env.exporter
            .set(&env.ns(GENAI), LLM, "canary", Some(canary));
        // The daemon keeps its pull-request state in its own namespace ($POD_NAMESPACE).
        let state_namespace = env.cluster.namespace("modelship").await;
        let mut main = Vec::new();
        tree_files(env.repo.path(), "", &mut main);
        let remote = Remote::new();
        commit_to(&remote.path(), "refs/heads/main", &as_refs(&main));
        let double = Double::start().await;
        double.grant("alice", "write");
        double.grant("bob", "read");
        let dir = tempfile::tempdir().expect("tempdir");
        let token = dir.path().join("token");
        let secret = dir.path().join("webhook-secret");
        std::fs::write(&token, TOKEN).expect("token file");
        std::fs::write(&secret, SECRET).expect("secret file");
        let log = std::fs::File::create(dir.path().join("daemon.log")).expect("log");
        let port = free_port();
        let listen = format!("127.0.0.1:{port}");
        let repo = remote.path().display().to_string();
        let cache = dir.path().join("cache").display().to_string();
        let token = token.display().to_string();
        let secret = secret.display().to_string();
        let args = [
            "run",
            "--repo",
            &repo,
            "--cache-dir",
            &cache,
            "--listen",
            &listen,
            "--create-namespaces",
            "--log-format",
            "plain",
            "--github-token-file",
            &token,
            "--github-api-url",
            &double.url,
            "--github-repository",
            REPO,
            "--webhook-secret-file",
            &secret,
        ];
        let daemon = support::rollout::command(&env, &args)
            .env_remove("MODELSHIP_GITHUB_TOKEN")
            .env_remove("MODELSHIP_WEBHOOK_SECRET")
            .env("POD_NAMESPACE", &state_namespace)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("modelship run starts");
        let world = Loop {
            env,
            remote,
            double,
            daemon: Some(daemon),
            addr: listen.parse().expect("address"),
            dir,
            main,
        };
        wait_for("the daemon to be ready", QUICK, || async {
            reqwest::get(format!("http://{listen}/readyz"))
                .await
                .is_ok_and(|r| r.status().is_success())
        })
        .await;
        world
            .wait_phase("the first deployment, stable", |p| *p == Phase::Stable)
            .await;
        assert_eq!(
            model_version(&world.env.cluster, &world.env.ns(GENAI), LLM).await,
            "3.1.0"
        );
        world
    }

    /// llm-chat as the commands take it: `NAMESPACE/NAME`.
    fn target(&self) -> String {
        self.env.service(GENAI, LLM)
    }

    async fn state(&self) -> Option<RolloutState> {
        state(&self.env.cluster, &self.env.ns(GENAI), LLM).await
    }

    async fn wait_phase(&self, what: &str, pred: impl Fn(&Phase) -> bool) -> RolloutState {
        let pred = &pred;
        eventually_within(ROLLOUT, what, || async move {
            tokio::time::sleep(THROTTLE).await;
            self.state().await.filter(|s| pred(&s.phase))
        })
        .await
    }

    /// modelship's comments on `pr` that start with `marker`.
    fn marked(&self, pr: u64, marker: Marker) -> Vec<Comment> {
        self.double
            .own_comments(pr)
            .into_iter()
            .filter(|c| c.body.starts_with(marker.text()))
            .collect()
    }

    /// Waits for a comment of modelship on `pr` containing `text`.
    async fn reply(&self, pr: u64, text: &str) -> String {
        eventually_within(QUICK, &format!("a reply with {text:?}"), || async move {
            self.double
                .own_comments(pr)
                .into_iter()
                .find(|c| c.body.contains(text))
                .map(|c| c.body)
        })
        .await
    }

    /// The last state of `context` on `sha` once it has left pending.
    async fn final_status(&self, sha: &str, context: &str) -> String {
        eventually_within(
            ROLLOUT,
            &format!("a final {context} on {sha}"),
            || async move {
                statuses_of(&self.double, sha)
                    .into_iter()
                    .rev()
                    .find(|(c, s)| c == context && s != "pending")
                    .map(|(_, s)| s)
            },
        )
        .await
    }

    /// Waits for `modelship/apply` on `merge` to leave pending, expects `state`, and
    /// returns the one outcome comment of `pr`.
    async fn outcome(&self, pr: u64, merge: &str, state: &str) -> String {
        assert_eq!(self.final_status(merge, "modelship/apply").await, state);
        let mut outcomes = self.marked(pr, Marker::Outcome);
        assert_eq!(outcomes.len(), 1, "{outcomes:?}");
        outcomes.remove(0).body
    }

    /// Opens PR `pr` bumping llm-chat and waits for its plan; returns the head.
    async fn open(&self, pr: u64) -> String {
        let head = bumped(&self.main);
        let reference = format!("refs/pull/{pr}/head");
        let sha = commit_to(&self.remote.path(), &reference, &as_refs(&head)).to_string();
        let opened = pull_request("opened", pr, &sha, &[]);
        deliver_ok(self.addr, "pull_request", &opened, &format!("open-{pr}")).await;
        assert_eq!(self.final_status(&sha, "modelship/plan").await, "success");
        sha
    }

    /// Merges PR `pr` (its head as the new main, the merged `closed` event, the push);
    /// returns the merge commit once `modelship/apply` is pending on it.
    async fn merge(&self, pr: u64, head: &str) -> String {
        let merge = merge_commit(&self.remote.path(), pr, head);
        let mut closed = pull_request("closed", pr, head, &[]);
        closed["pull_request"]["merged"] = true.into();
        closed["pull_request"]["merge_commit_sha"] = merge.clone().into();
        self.double.set_pull_author(pr, "alice", false);
        self.double.merge_pull(pr, &merge);
        deliver_ok(self.addr, "pull_request", &closed, &format!("close-{pr}")).await;
        assert_eq!(push_webhook(self.addr, SECRET).await, 202);
        wait_for("modelship/apply pending on the merge", QUICK, || async {
            statuses_of(&self.double, &merge)
                .contains(&("modelship/apply".to_string(), "pending".to_string()))
        })
        .await;
        merge
    }

    /// Delivers `/modelship approve genai/llm-chat` from `user` on PR `pr`.
    async fn approve_comment(&self, pr: u64, user: &str, id: u64) {
        let body = format!("Looks fine.\n/modelship approve {}", self.target());
        let event = issue_comment(pr, user, &body, id);
        let delivery = format!("comment-{id}");
        deliver_ok(self.addr, "issue_comment", &event, &delivery).await;
    }

    /// The rollout command annotation on the stable Deployment, if any.
    async fn command_annotation(&self) -> Option<String> {
        let live = deployment(&self.env.cluster, &self.env.ns(GENAI), LLM).await?;
        live.metadata.annotations?.get(ANNOTATION_COMMAND).cloned()
    }

    async fn canary_gone(&self) {
        wait_for("the canary Deployment to be deleted", QUICK, || async {
            deployment(&self.env.cluster, &self.env.ns(GENAI), "llm-chat-canary")
                .await
                .is_none()
        })
        .await;
    }

    async fn stop(mut self) {
        if let Some(mut child) = self.daemon.take() {
            child.start_kill().expect("kill the daemon");
            let _ = tokio::time::timeout(Duration::from_secs(10), child.wait()).await;
        }
    }
}

#[tokio::test]
async fn a_merged_canary_pr_is_approved_from_a_comment_promoted_and_then_reported() {
    on_each_cluster(
        "a_merged_canary_pr_is_approved_from_a_comment_promoted_and_then_reported",
        |env| async move {
            a_merged_canary_pr_is_approved_from_a_comment_promoted_and_then_reported_on(
                Loop::start(env, HEALTHY).await,
            )
            .await;
        },
    )
    .await;
}

async fn a_merged_canary_pr_is_approved_from_a_comment_promoted_and_then_reported_on(world: Loop) {
    let pr = 21;

    // 1. The plan comment of the opened PR says what merging will do.
    let head = world.open(pr).await;
    let plans = world.marked(pr, Marker::Plan);
    assert_eq!(plans.len(), 1, "{plans:?}");
    let plan = &plans[0].body;
    assert!(plan.contains("version 3.1.0 -> 3.2.0"), "{plan}");
    assert!(
        plan.contains("**Merging will** start a canary: 5% → 25% → ⏸ gate, then 50% → 100%"),
        "the steps and the gate: {plan}"
    );
    assert!(
        plan.contains(&format!("`/modelship approve {}`", world.target())),
        "{plan}"
    );
    assert_eq!(
        model_version(&world.env.cluster, &world.env.ns(GENAI), LLM).await,
        "3.1.0",
        "planning a PR changes nothing"
    );
    assert!(
        deployment(&world.env.cluster, &world.env.ns(GENAI), "llm-chat-canary")
            .await
            .is_none()
    );

    // 2. Merged: the canary starts and healthy metrics take it to the gate before 50%.
    let merge = world.merge(pr, &head).await;
    let at_gate = world
        .wait_phase("the gate", |p| matches!(p, Phase::WaitingForGate { .. }))
        .await;
    assert!(at_gate.approvals.is_empty(), "{at_gate:?}");
    assert_eq!(
        route_weights(&world.env.cluster, &world.env.ns(GENAI), LLM).await,
        (75, 25)
    );
    assert_eq!(
        model_version(&world.env.cluster, &world.env.ns(GENAI), "llm-chat-canary").await,
        "3.2.0"
    );
    assert_eq!(
        model_version(&world.env.cluster, &world.env.ns(GENAI), LLM).await,
        "3.1.0"
    );
    assert!(
        world.marked(pr, Marker::Outcome).is_empty(),
        "no outcome while the rollout waits at the gate"
    );
    assert_eq!(
        statuses_of(&world.double, &merge),
        vec![("modelship/apply".to_string(), "pending".to_string())]
    );

    // A PR opened now, leaving llm-chat as merged, is planned as a proposal: the live
    // rollout is shown where it is and left there.
    let other = world.open(pr + 100).await;
    let plans = world.marked(pr + 100, Marker::Plan);
    let plan = &plans.first().expect("the plan of the other PR").body;
    assert!(plan.contains("**No changes**"), "{plan}");
    assert!(!plan.contains("Merging will"), "{plan}");
    assert_eq!(world.state().await.expect("state"), at_gate, "{other}");

    // 3. A reader is refused with a reply; the rollout stays at the gate.
    world.approve_comment(pr, "bob", 9001).await;
    let refused = world.reply(pr, "@bob needs write permission").await;
    assert!(refused.starts_with("Not done:"), "{refused}");
    assert!(refused.contains(REPO), "{refused}");
    assert_eq!(
        world.command_annotation().await,
        None,
        "no command was sent"
    );
    let still = world.state().await.expect("state");
    assert_eq!(still.phase, at_gate.phase, "still at the same gate");
    assert!(still.approvals.is_empty());

    // A writer's approval passes the gate; the rollout goes on to promotion.
    world.approve_comment(pr, "alice", 9002).await;
    let sent = world
        .reply(
            pr,
            &format!(
                "@alice asked to approve the rollout of `{}`: sent",
                world.target()
            ),
        )
        .await;
    assert!(sent.contains(ANNOTATION_COMMAND), "{sent}");
    // Comments are read before the phase (a promotion is final): an outcome seen with a
    // phase read after it that is not promoted was posted too early.
    let early = eventually_within(ROLLOUT, "promotion", || async {
        tokio::time::sleep(THROTTLE).await;
        let posted = !world.marked(pr, Marker::Outcome).is_empty();
        let state = world.state().await?;
        match state.phase {
            Phase::Promoted { .. } => Some(None),
            _ if posted => Some(Some(state)),
            _ => None,
        }
    })
    .await;
    assert_eq!(early, None, "the outcome was posted before the promotion");
    let promoted = world.state().await.expect("state");
    assert!(!promoted.approvals.is_empty(), "{promoted:?}");
    assert_eq!(
        model_version(&world.env.cluster, &world.env.ns(GENAI), LLM).await,
        "3.2.0"
    );
    world.canary_gone().await;

    // 4. The outcome, once, and the merge commit's apply status.
    let outcome = &world.outcome(pr, &merge, "success").await;
    assert!(
        outcome.contains(&format!("| `{}` | canary promoted |", world.target())),
        "{outcome}"
    );
    assert!(outcome.contains(&merge[..7]), "{outcome}");
    world.stop().await;
}

#[tokio::test]
async fn a_merged_canary_pr_rolled_back_by_bad_metrics_is_reported_with_the_values() {
    on_each_cluster(
        "a_merged_canary_pr_rolled_back_by_bad_metrics_is_reported_with_the_values",
        |env| async move {
            a_merged_canary_pr_rolled_back_by_bad_metrics_is_reported_with_the_values_on(
                Loop::start(env, BROKEN).await,
            )
            .await;
        },
    )
    .await;
}

async fn a_merged_canary_pr_rolled_back_by_bad_metrics_is_reported_with_the_values_on(world: Loop) {
    let pr = 22;
    let head = world.open(pr).await;
    let merge = world.merge(pr, &head).await;

    let rolled_back = world
        .wait_phase("the rollback", |p| matches!(p, Phase::RolledBack { .. }))
        .await;
    let Phase::RolledBack { reason, .. } = &rolled_back.phase else {
        unreachable!()
    };
    assert_eq!(rolled_back.failures, 2, "failureLimit of llm-chat");
    assert_eq!(
        model_version(&world.env.cluster, &world.env.ns(GENAI), LLM).await,
        "3.1.0"
    );
    world.canary_gone().await;

    let outcome = &world.outcome(pr, &merge, "failure").await;
    assert!(
        outcome.contains(&format!(
            "| `{}` | rolled back: {}",
            world.target(),
            reason.as_str()
        )),
        "{outcome}"
    );
    // The measured values recorded by the last analysis, each against its threshold.
    let analysis = rolled_back.last_analysis.expect("the last analysis");
    assert!(
        outcome.contains(&format!("last analysis at weight {}%", analysis.weight)),
        "{outcome}"
    );
    let success = analysis
        .checks
        .iter()
        .find(|c| c.name == "successRate")
        .and_then(|c| c.value)
        .expect("a measured success rate");
    assert!(
        success < 99.5,
        "the broken canary's success rate: {success}"
    );
    let shown = format!("successRate {success:.3} (min 99.5: Fail)");
    assert!(outcome.contains(&shown), "{shown} in {outcome}");
    for check in &analysis.checks {
        let value = check
            .value
            .map_or("no data".to_string(), |v| format!("{v:.3}"));
        let shown = format!("{} {value} (", check.name);
        assert!(outcome.contains(&shown), "{shown} in {outcome}");
    }
    world.stop().await;
}
