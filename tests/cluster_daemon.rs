//! The daemon end to end: a bare Git repository on disk, a cluster, `daemon::run` with its
//! HTTP server. Every wait polls with a deadline. The tests about the cluster (invalid
//! specs, an unreachable remote, drift, restarts, leader election) run on the sandbox,
//! then on the real cluster of `MODELSHIP_TEST_KUBECONFIG` (`support::target`), in
//! namespaces of their own; the two that bound elapsed time stay on the sandbox.

mod support;

use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::Deployment;
use kube::Api;
use kube::api::{Patch, PatchParams};
use modelship::sandbox::{Sandbox, Verb};
use serde_json::json;
use support::daemon::*;
use support::poll::*;
use support::target::{Target, on_each_target, sandbox_only};

const FAST: Duration = Duration::from_millis(200);
const HOUR: Duration = Duration::from_secs(3600);

fn metric(text: &str, series: &str) -> u64 {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or(0)
}

/// The test's namespace `ml` on `cluster`, waited on as long as the cluster needs.
fn place(cluster: &Target) -> Place {
    Place {
        client: cluster.client(),
        namespace: cluster.ns(NS),
        patience: cluster.patience(),
    }
}

/// A daemon following `remote` every `interval` against `cluster`, once ready.
async fn start(
    cluster: &Target,
    remote: &Remote,
    cache: &tempfile::TempDir,
    interval: Duration,
) -> Running {
    let daemon = Running::start(
        config(remote.path().display().to_string(), cache.path(), interval),
        cluster.client(),
    )
    .await;
    daemon.wait_ready_within(cluster.patience()).await;
    daemon
}

#[tokio::test]
async fn a_commit_is_applied_within_the_poll_interval() {
    // Sandbox only: it bounds the time from a commit to its apply.
    sandbox_only(
        "a_commit_is_applied_within_the_poll_interval",
        "it bounds the time from a commit to its apply (5 s), which a shared real cluster \
         does not promise",
    );
    let sandbox = Sandbox::start().await.unwrap();
    let remote = Remote::new();
    remote.commit(&files(&[("alpha", "1"), ("beta", "1")]));
    let cache = tempfile::tempdir().unwrap();
    let daemon = Running::start(
        config(remote.path().display().to_string(), cache.path(), FAST),
        sandbox.client(),
    )
    .await;
    daemon.wait_ready().await;
    wait_image(&sandbox.client(), "alpha", "1").await;
    wait_image(&sandbox.client(), "beta", "1").await;

    remote.commit(&files(&[("alpha", "2"), ("beta", "1")]));
    let committed = Instant::now();
    wait_image(&sandbox.client(), "alpha", "2").await;
    let elapsed = committed.elapsed();
    println!("commit to applied by polling: {elapsed:?} (interval {FAST:?})");
    assert!(elapsed < Duration::from_secs(5), "{elapsed:?}");
    daemon.stop().await;
}

#[tokio::test]
async fn a_signed_webhook_applies_at_once_and_a_bad_one_changes_nothing() {
    // Sandbox only: it bounds the time from the webhook to the first write.
    sandbox_only(
        "a_signed_webhook_applies_at_once_and_a_bad_one_changes_nothing",
        "it bounds the time from the webhook to the first write (1 s), which a shared real \
         cluster does not promise",
    );
    let sandbox = Sandbox::start().await.unwrap();
    let remote = Remote::new();
    remote.commit(&files(&[("alpha", "1")]));
    let cache = tempfile::tempdir().unwrap();
    let daemon = Running::start(
        config(remote.path().display().to_string(), cache.path(), HOUR),
        sandbox.client(),
    )
    .await;
    daemon.wait_ready().await;
    wait_image(&sandbox.client(), "alpha", "1").await;
    let fetches = |text: &str| metric(text, r#"modelship_source_fetches_total{result="ok"}"#);
    let before = fetches(&metrics(daemon.addr()).await);
    assert_eq!(before, 1, "one fetch at start, the interval is an hour");

    remote.commit(&files(&[("alpha", "2")]));
    assert_eq!(push_webhook(daemon.addr(), "wrong secret").await, 401);
    let text = metrics(daemon.addr()).await;
    assert_eq!(
        metric(
            &text,
            r#"modelship_webhooks_total{outcome="webhook_bad_signature"}"#
        ),
        1
    );
    assert_eq!(fetches(&text), before, "a refused webhook fetches nothing");
    assert_eq!(
        image(&sandbox.client(), "alpha").await.as_deref(),
        Some("registry.example.com/alpha:1")
    );

    let writes_before = sandbox.requests().total_writes();
    let sent = Instant::now();
    assert_eq!(push_webhook(daemon.addr(), SECRET).await, 202);
    let client = sandbox.client();
    eventually("first write after the webhook", || {
        let sandbox = &sandbox;
        async move { (sandbox.requests().total_writes() > writes_before).then_some(()) }
    })
    .await;
    let first_write = sent.elapsed();
    wait_image(&client, "alpha", "2").await;
    println!(
        "webhook to first write: {first_write:?}; to applied: {:?}",
        sent.elapsed()
    );
    assert!(first_write < Duration::from_secs(1), "{first_write:?}");
    daemon.stop().await;
}

#[tokio::test]
async fn a_broken_spec_blocks_only_its_service_until_a_fix() {
    on_each_target(
        "a_broken_spec_blocks_only_its_service_until_a_fix",
        a_broken_spec_blocks_only_its_service_until_a_fix_on,
    )
    .await;
}

async fn a_broken_spec_blocks_only_its_service_until_a_fix_on(cluster: Target) {
    let place = place(&cluster);
    let remote = Remote::new();
    remote.commit(&place.files(&[("alpha", "1"), ("beta", "1")]));
    let cache = tempfile::tempdir().unwrap();
    let daemon = start(&cluster, &remote, &cache, FAST).await;
    place.wait_image("alpha", "1").await;

    // `:latest` is refused by validation: alpha is invalid, beta moves on.
    remote.commit(&place.files(&[("alpha", "latest"), ("beta", "2")]));
    place.wait_image("beta", "2").await;
    let alpha = place.key("alpha");
    let status = place
        .eventually("alpha reported invalid", || async {
            let status = support::daemon::status(daemon.addr()).await;
            (status["services"][&alpha]["state"] == "invalid").then_some(status)
        })
        .await;
    let error = status["services"][&alpha]["last_error"].as_str().unwrap();
    assert!(error.contains("latest"), "{error}");
    assert_eq!(
        place.image("alpha").await.as_deref(),
        Some("registry.example.com/alpha:1"),
        "the invalid service's live objects are untouched"
    );
    let text = metrics(daemon.addr()).await;
    assert!(metric(&text, r#"modelship_errors_total{cause="invalid_spec"}"#) >= 1);
    assert!(
        metric(&text, r#"modelship_services{state="invalid"}"#) == 1,
        "{text}"
    );

    remote.commit(&place.files(&[("alpha", "3"), ("beta", "2")]));
    place.wait_image("alpha", "3").await;
    place
        .eventually("alpha back in sync", || async {
            let status = support::daemon::status(daemon.addr()).await;
            let alpha = &status["services"][&alpha];
            (alpha["state"] == "in-sync" && alpha.get("last_error").is_none()).then_some(())
        })
        .await;
    daemon.stop().await;
}

#[tokio::test]
async fn an_unreachable_remote_keeps_the_last_good_state_and_says_so() {
    on_each_target(
        "an_unreachable_remote_keeps_the_last_good_state_and_says_so",
        an_unreachable_remote_keeps_the_last_good_state_and_says_so_on,
    )
    .await;
}

async fn an_unreachable_remote_keeps_the_last_good_state_and_says_so_on(cluster: Target) {
    let place = place(&cluster);
    let remote = Remote::new();
    remote.commit(&place.files(&[("alpha", "1")]));
    let cache = tempfile::tempdir().unwrap();
    let daemon = start(&cluster, &remote, &cache, FAST).await;
    place.wait_image("alpha", "1").await;

    std::fs::remove_dir_all(remote.path()).unwrap();
    let status = place
        .eventually("source error reported", || async {
            let status = support::daemon::status(daemon.addr()).await;
            status["source_error"].is_string().then_some(status)
        })
        .await;
    assert_eq!(status["services"][place.key("alpha")]["state"], "in-sync");
    let text = metrics(daemon.addr()).await;
    assert!(metric(&text, r#"modelship_source_fetches_total{result="error"}"#) >= 1);
    assert!(metric(&text, r#"modelship_errors_total{cause="git_fetch"}"#) >= 1);
    assert_eq!(
        place.image("alpha").await.as_deref(),
        Some("registry.example.com/alpha:1")
    );
    daemon.stop().await;
}

/// Sets the image of Deployment `alpha` to `alpha:hacked`, as another client would.
async fn hack_alpha(place: &Place) {
    let api: Api<Deployment> = Api::namespaced(place.client.clone(), &place.namespace);
    let edit = json!({"spec": {"template": {"spec": {"containers": [
        {"name": "server", "image": "registry.example.com/alpha:hacked"}]}}}});
    tokio::time::timeout(
        LIMIT,
        api.patch("alpha", &PatchParams::default(), &Patch::Strategic(&edit)),
    )
    .await
    .expect("patched in time")
    .unwrap();
}

#[tokio::test]
async fn an_edit_in_the_cluster_is_healed() {
    on_each_target(
        "an_edit_in_the_cluster_is_healed",
        an_edit_in_the_cluster_is_healed_on,
    )
    .await;
}

async fn an_edit_in_the_cluster_is_healed_on(cluster: Target) {
    let place = place(&cluster);
    let remote = Remote::new();
    remote.commit(&place.files(&[("alpha", "1")]));
    let cache = tempfile::tempdir().unwrap();
    let daemon = start(&cluster, &remote, &cache, HOUR).await;
    place.wait_image("alpha", "1").await;

    hack_alpha(&place).await;
    place.wait_image("alpha", "1").await;
    place
        .eventually("drift correction counted", || async {
            let text = metrics(daemon.addr()).await;
            (metric(&text, "modelship_drift_corrections_total") == 1).then_some(())
        })
        .await;
    daemon.stop().await;
}

#[tokio::test]
async fn a_restart_with_nothing_changed_writes_nothing_and_lists_nothing_after_warm_up() {
    on_each_target(
        "a_restart_with_nothing_changed_writes_nothing_and_lists_nothing_after_warm_up",
        a_restart_with_nothing_changed_writes_nothing_and_lists_nothing_after_warm_up_on,
    )
    .await;
}

/// The requests counted are those of the daemons' client: the sandbox counts what it
/// serves, the real target what its client sends (the daemons are its only users here).
async fn a_restart_with_nothing_changed_writes_nothing_and_lists_nothing_after_warm_up_on(
    cluster: Target,
) {
    let place = place(&cluster);
    let remote = Remote::new();
    remote.commit(&place.files(&[("alpha", "1"), ("beta", "1"), ("gamma", "1")]));
    let cache = tempfile::tempdir().unwrap();
    let first = start(&cluster, &remote, &cache, FAST).await;
    place.wait_image("gamma", "1").await;
    first.stop().await;

    cluster.reset_requests();
    let second = start(&cluster, &remote, &cache, FAST).await;
    let lists_after_warm_up = cluster.requests().verb_total(Verb::List);
    let fetches = |text: &str| metric(text, r#"modelship_source_fetches_total{result="ok"}"#);
    let at_ready = fetches(&metrics(second.addr()).await);
    place
        .eventually("three more poll cycles", || async {
            (fetches(&metrics(second.addr()).await) >= at_ready + 3).then_some(())
        })
        .await;
    let requests = cluster.requests();
    println!("requests of a restart with nothing changed: {requests:?}");
    assert_eq!(requests.total_writes(), 0, "{requests:?}");
    assert_eq!(requests.verb_total(Verb::List), lists_after_warm_up);
    let status = support::daemon::status(second.addr()).await;
    for name in ["alpha", "beta", "gamma"] {
        assert_eq!(status["services"][place.key(name)]["state"], "in-sync");
    }
    second.stop().await;
}

#[tokio::test]
async fn with_two_daemons_exactly_one_writes_and_the_other_takes_over() {
    on_each_target(
        "with_two_daemons_exactly_one_writes_and_the_other_takes_over",
        with_two_daemons_exactly_one_writes_and_the_other_takes_over_on,
    )
    .await;
}

async fn with_two_daemons_exactly_one_writes_and_the_other_takes_over_on(cluster: Target) {
    let place = place(&cluster);
    let client = cluster.client();
    // The Lease in `default` on the sandbox, in a namespace of the test's own on a real
    // cluster (where `default` is shared).
    let leases = cluster.namespace("default").await;
    let remote = Remote::new();
    remote.commit(&place.files(&[("alpha", "1")]));
    let url = remote.path().display().to_string();
    let (cache_a, cache_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut config_a = config(url.clone(), cache_a.path(), FAST);
    config_a.election = Some(election_in(&leases, "replica-a"));
    let mut config_b = config(url, cache_b.path(), FAST);
    config_b.election = Some(election_in(&leases, "replica-b"));
    let a = Running::start(config_a, client.clone()).await;
    let b = Running::start(config_b, client.clone()).await;

    let leader_of = |running: &Running| {
        let board = running.handles.board.clone();
        async move { board.read().await.leader }
    };
    let a_leads = place
        .eventually("a leader", || async {
            match (leader_of(&a).await, leader_of(&b).await) {
                (true, false) => Some(true),
                (false, true) => Some(false),
                (true, true) => panic!("two leaders"),
                _ => None,
            }
        })
        .await;
    let (leader, standby) = if a_leads { (a, b) } else { (b, a) };
    place.wait_image("alpha", "1").await;
    leader.wait_ready_within(cluster.patience()).await;
    assert!(
        standby.handles.board.read().await.services.is_empty(),
        "the standby reconciles nothing"
    );
    assert!(!leader_of(&standby).await);
    let (ready, _) = http(standby.addr(), "GET", "/readyz", &[], b"").await;
    assert_eq!(ready, 200, "a standby is ready (rolling updates finish)");

    leader.stop().await;
    place
        .eventually("the standby takes over", || async {
            leader_of(&standby).await.then_some(())
        })
        .await;
    remote.commit(&place.files(&[("alpha", "2")]));
    place.wait_image("alpha", "2").await;
    standby.stop().await;
}

#[tokio::test]
async fn with_drift_warn_an_edit_is_reported_and_left_alone() {
    on_each_target(
        "with_drift_warn_an_edit_is_reported_and_left_alone",
        with_drift_warn_an_edit_is_reported_and_left_alone_on,
    )
    .await;
}

async fn with_drift_warn_an_edit_is_reported_and_left_alone_on(cluster: Target) {
    let place = place(&cluster);
    let remote = Remote::new();
    remote.commit(&place.files(&[("alpha", "1")]));
    let cache = tempfile::tempdir().unwrap();
    let mut config = config(remote.path().display().to_string(), cache.path(), HOUR);
    config.drift = modelship::daemon::DriftMode::Warn;
    let daemon = Running::start(config, cluster.client()).await;
    daemon.wait_ready_within(cluster.patience()).await;
    place.wait_image("alpha", "1").await;

    // The edit and the daemon share the counted client (see the restart test).
    let writes_before = cluster.requests().total_writes();
    hack_alpha(&place).await;
    let alpha = place.key("alpha");
    place
        .eventually("alpha reported drifted", || async {
            let status = support::daemon::status(daemon.addr()).await;
            (status["services"][&alpha]["state"] == "drifted").then_some(())
        })
        .await;
    assert_eq!(
        cluster.requests().total_writes(),
        writes_before + 1,
        "only the edit itself was written"
    );
    assert_eq!(
        place.image("alpha").await.as_deref(),
        Some("registry.example.com/alpha:hacked")
    );
    let text = metrics(daemon.addr()).await;
    assert_eq!(metric(&text, "modelship_drift_corrections_total"), 0);
    assert_eq!(metric(&text, r#"modelship_services{state="drifted"}"#), 1);
    daemon.stop().await;
}
