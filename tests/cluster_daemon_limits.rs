//! The daemon and a revision over its limits: 120 paths to one 3.9 MB blob (a pack of a
//! few KB) are refused as a whole. On the followed branch the last good revision stays
//! applied, and /status and /metrics say which limit was broken; a pull request whose head
//! is the bomb gets a failure status and a plan comment naming the limit. On the sandbox,
//! then on the real cluster of `MODELSHIP_TEST_KUBECONFIG`, in namespaces of their own.

mod support;

use std::path::Path;

use git2::{Oid, Repository, Signature};
use support::daemon::*;
use support::pulls::world::World;
use support::target::{Target, on_each_target};

/// Paths of the bomb, all pointing at one blob.
const PATHS: usize = 120;

fn metric(text: &str, series: &str) -> u64 {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or(0)
}

/// Commits on `reference` of the bare repository at `path` (on top of it, else of main):
/// `services/<name>.yaml` holding `spec`, and [`PATHS`] files that are one 3.9 MB blob.
fn commit_bomb(path: &Path, reference: &str, name: &str, spec: &str) -> Oid {
    let repo = Repository::open_bare(path).unwrap();
    let mut padding = service("bomb", "1");
    let line = "# padding of a file that many paths hold\n";
    padding.push_str(&line.repeat(3_900_000 / line.len()));
    let bomb = repo.blob(padding.as_bytes()).unwrap();
    let spec = repo.blob(spec.as_bytes()).unwrap();
    let mut services = repo.treebuilder(None).unwrap();
    services
        .insert(format!("{name}.yaml"), spec, 0o100644)
        .unwrap();
    for i in 0..PATHS {
        services
            .insert(format!("bomb-{i:03}.yaml"), bomb, 0o100644)
            .unwrap();
    }
    let services = services.write().unwrap();
    let mut root = repo.treebuilder(None).unwrap();
    root.insert("services", services, 0o040000).unwrap();
    let tree = repo.find_tree(root.write().unwrap()).unwrap();
    let parent = repo
        .refname_to_id(reference)
        .or_else(|_| repo.refname_to_id("refs/heads/main"))
        .and_then(|id| repo.find_commit(id))
        .unwrap();
    let signature = Signature::now("test", "test@example.com").unwrap();
    repo.commit(
        Some(reference),
        &signature,
        &signature,
        "bomb",
        &tree,
        &[&parent],
    )
    .unwrap()
}

#[tokio::test]
async fn a_blob_bomb_is_refused_and_the_last_good_revision_stays() {
    on_each_target(
        "a_blob_bomb_is_refused_and_the_last_good_revision_stays",
        a_blob_bomb_is_refused_and_the_last_good_revision_stays_on,
    )
    .await;
}

async fn a_blob_bomb_is_refused_and_the_last_good_revision_stays_on(cluster: Target) {
    let place = Place {
        client: cluster.client(),
        namespace: cluster.ns(NS),
        patience: cluster.patience(),
    };
    let remote = Remote::new();
    remote.commit(&place.files(&[("alpha", "1")]));
    let cache = tempfile::tempdir().unwrap();
    let interval = std::time::Duration::from_millis(200);
    let daemon = Running::start(
        config(remote.path().display().to_string(), cache.path(), interval),
        cluster.client(),
    )
    .await;
    daemon.wait_ready_within(cluster.patience()).await;
    place.wait_image("alpha", "1").await;

    let bomb = commit_bomb(
        &remote.path(),
        "refs/heads/main",
        "alpha",
        &service_in(&place.namespace, "alpha", "2"),
    );
    let refused = place
        .eventually("the refusal on /status", || async {
            let status = status(daemon.addr()).await;
            status["source_error"].is_string().then_some(status)
        })
        .await;
    let error = refused["source_error"].as_str().unwrap();
    assert_eq!(
        error,
        format!(
            "commit {bomb} refused: 446.3 MiB of YAML (a file counted at each of its paths), \
             over the limit of 32.0 MiB per revision; largest: services/bomb-000.yaml (3.7 MiB), \
             services/bomb-001.yaml (3.7 MiB), services/bomb-002.yaml (3.7 MiB), \
             services/bomb-003.yaml (3.7 MiB), services/bomb-004.yaml (3.7 MiB)"
        )
    );
    let text = metrics(daemon.addr()).await;
    assert!(metric(&text, r#"modelship_source_fetches_total{result="refused"}"#) >= 1);
    assert!(
        metric(
            &text,
            r#"modelship_errors_total{cause="revision_too_large"}"#
        ) >= 1
    );
    assert_eq!(refused["services"][place.key("alpha")]["state"], "in-sync");
    assert_eq!(
        place.image("alpha").await.as_deref(),
        Some("registry.example.com/alpha:1"),
        "the refused revision changed nothing"
    );

    // Without the bomb, the next commit is read and applied, and the error clears.
    remote.commit(&place.files(&[("alpha", "3")]));
    place.wait_image("alpha", "3").await;
    place
        .eventually("the source error cleared", || async {
            status(daemon.addr()).await["source_error"]
                .is_null()
                .then_some(())
        })
        .await;
    daemon.stop().await;
}

#[tokio::test]
async fn a_pull_request_whose_head_is_a_blob_bomb_fails_naming_the_limit() {
    on_each_target(
        "a_pull_request_whose_head_is_a_blob_bomb_fails_naming_the_limit",
        a_pull_request_whose_head_is_a_blob_bomb_fails_naming_the_limit_on,
    )
    .await;
}

async fn a_pull_request_whose_head_is_a_blob_bomb_fails_naming_the_limit_on(cluster: Target) {
    let ml = cluster.ns(NS);
    let world = World::start(cluster, &[("services/a.yaml", service_in(&ml, "a", "1"))]).await;
    world.place().wait_image("a", "1").await;
    let sha = commit_bomb(
        &world.remote.path(),
        "refs/pull/9/head",
        "a",
        &service_in(&ml, "a", "2"),
    )
    .to_string();
    let event = support::pulls::pull_request("opened", 9, &sha, &[]);
    support::pulls::deliver_ok(world.daemon.addr(), "pull_request", &event, "bomb-1").await;
    assert_eq!(world.plan_status(&sha).await, "failure");
    let comments = world.plan_comments(9);
    assert_eq!(comments.len(), 1, "{comments:?}");
    let body = &comments[0].body;
    assert!(
        body.contains(&format!("Commit `{sha}` was not planned")),
        "{body}"
    );
    assert!(
        body.contains(
            "over the limit of 32.0 MiB per revision; largest: services/bomb-000.yaml (3.7 MiB)"
        ),
        "{body}"
    );
    world.place().wait_image("a", "1").await;
    world.stop().await;
}
