//! Webhook routing to the leader: the daemon labels its own Pod `modelship.dev/leader:
//! "true"` while it leads and removes the label when it stops leading or starts as a
//! standby (`src/daemon/leader_label.rs`); the Service `modelship-webhooks` of `deploy/`
//! selects that label. The Pods are bare Pods the test creates (on a real cluster kwok's
//! fake nodes run them); the daemons run in the test, told their Pod as `POD_NAME` and
//! `POD_NAMESPACE` would. Each test runs on the sandbox, then on the real cluster of
//! `MODELSHIP_TEST_KUBECONFIG` (`support::target`), in namespaces of its own.

mod support;

use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use modelship::daemon::PodRef;
use modelship::daemon::leader::label::LABEL;
use modelship::sandbox::Verb;
use serde_json::json;
use support::daemon::*;
use support::poll::*;
use support::target::{Target, on_each_target};

const FAST: Duration = Duration::from_millis(200);
const ROUTED: &str = "leader-label";

/// What every test here has: the cluster, the namespace `ml` of the services the daemons
/// apply, the namespace of the Pods and the Lease, a repository with one service, and the
/// daemons' Git caches.
struct Setup<'a> {
    cluster: &'a Target,
    place: Place,
    ns: String,
    remote: Remote,
    caches: tempfile::TempDir,
}

impl<'a> Setup<'a> {
    async fn new(cluster: &'a Target) -> Self {
        let place = Place {
            client: cluster.client(),
            namespace: cluster.ns(NS),
            patience: cluster.patience(),
        };
        let remote = Remote::new();
        remote.commit(&place.files(&[("alpha", "1")]));
        Setup {
            cluster,
            place,
            ns: cluster.namespace("modelship").await,
            remote,
            caches: tempfile::tempdir().unwrap(),
        }
    }

    /// A daemon told its Pod `name` (`None`: no POD_NAME), electing a leader on the Lease
    /// in the Pods' namespace when `elect`.
    async fn daemon(&self, pod: Option<&str>, elect: bool) -> Running {
        let cache = self.caches.path().join(pod.unwrap_or("no-pod"));
        let mut config = config(self.remote.path().display().to_string(), &cache, FAST);
        config.pod = pod.map(|name| PodRef {
            namespace: self.ns.clone(),
            name: name.to_string(),
        });
        if let (true, Some(name)) = (elect, pod) {
            config.election = Some(election_in(&self.ns, name));
        }
        Running::start(config, self.cluster.client()).await
    }

    /// Creates the bare Pod `name`, with the leader label when `labelled`. A real API
    /// server admits Pods only once the namespace's `default` ServiceAccount exists, so the
    /// creation is retried until then.
    async fn create_pod(&self, name: &str, labelled: bool) {
        let pods: Api<Pod> = Api::namespaced(self.cluster.client(), &self.ns);
        let mut labels = json!({"app.kubernetes.io/name": "modelship"});
        if labelled {
            labels[LABEL] = json!("true");
        }
        let pod: Pod = serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "labels": labels},
            "spec": {"containers": [{"name": "pause", "image": "registry.example.com/pause:1"}]},
        }))
        .unwrap();
        let what = format!("Pod {}/{name} created", self.ns);
        self.place
            .eventually(&what, || async {
                match tokio::time::timeout(LIMIT, pods.create(&Default::default(), &pod)).await {
                    Ok(Ok(_)) => Some(()),
                    Ok(Err(error)) => {
                        eprintln!("creating Pod {name}: {error}; retrying");
                        tokio::time::sleep(Duration::from_millis(200)).await;
                        None
                    }
                    Err(_) => None,
                }
            })
            .await;
    }

    /// Which of the Pods `names` carry the leader label (`"true"`).
    async fn labelled(&self, names: &[&str]) -> Vec<String> {
        let pods: Api<Pod> = Api::namespaced(self.cluster.client(), &self.ns);
        let mut out = Vec::new();
        for name in names {
            let pod = tokio::time::timeout(LIMIT, pods.get(name))
                .await
                .expect("GET in time")
                .unwrap_or_else(|e| panic!("Pod {}/{name}: {e}", self.ns));
            let label = pod.metadata.labels.unwrap_or_default().remove(LABEL);
            if label.as_deref() == Some("true") {
                out.push(name.to_string());
            }
        }
        out
    }
}

/// `webhook_routing` on the daemon's /status.
async fn routing(daemon: &Running) -> String {
    let status = support::daemon::status(daemon.addr()).await;
    status["webhook_routing"]
        .as_str()
        .unwrap_or_else(|| panic!("webhook_routing on /status: {status}"))
        .to_string()
}

async fn leads(daemon: &Running) -> bool {
    daemon.handles.board.read().await.leader
}

#[tokio::test]
async fn the_leaders_pod_is_labelled_and_the_label_moves_with_the_lease() {
    on_each_target(
        "the_leaders_pod_is_labelled_and_the_label_moves_with_the_lease",
        the_leaders_pod_is_labelled_and_the_label_moves_with_the_lease_on,
    )
    .await;
}

async fn the_leaders_pod_is_labelled_and_the_label_moves_with_the_lease_on(cluster: Target) {
    let setup = Setup::new(&cluster).await;
    let names = ["replica-a", "replica-b"];
    for name in names {
        setup.create_pod(name, false).await;
    }
    let a = setup.daemon(Some("replica-a"), true).await;
    let b = setup.daemon(Some("replica-b"), true).await;

    let a_leads = setup
        .place
        .eventually("exactly the leader's Pod labelled", || async {
            let labels = setup.labelled(&names).await;
            match (leads(&a).await, leads(&b).await) {
                (true, true) => panic!("two leaders"),
                (true, false) if labels == ["replica-a"] => Some(true),
                (false, true) if labels == ["replica-b"] => Some(false),
                _ => None,
            }
        })
        .await;
    let (leader, standby, leader_pod, standby_pod) = if a_leads {
        (a, b, "replica-a", "replica-b")
    } else {
        (b, a, "replica-b", "replica-a")
    };
    setup.place.wait_image("alpha", "1").await;
    for daemon in [&leader, &standby] {
        setup
            .place
            .eventually("routing in effect on both replicas", || async {
                (routing(daemon).await == ROUTED).then_some(())
            })
            .await;
    }
    assert_eq!(
        setup.labelled(&names).await,
        [leader_pod],
        "the standby's Pod is not labelled"
    );

    // A graceful stop removes the label before the daemon ends; the standby takes over
    // and labels its own Pod.
    leader.stop().await;
    assert!(
        setup.labelled(&[leader_pod]).await.is_empty(),
        "the stopped leader's Pod lost its label before it ended"
    );
    setup
        .place
        .eventually("the label moved to the new leader's Pod", || async {
            let labels = setup.labelled(&names).await;
            (leads(&standby).await && labels == [standby_pod]).then_some(())
        })
        .await;
    assert_eq!(routing(&standby).await, ROUTED);
    standby.stop().await;
    assert!(
        setup.labelled(&names).await.is_empty(),
        "no Pod labelled once every daemon stopped"
    );
}

#[tokio::test]
async fn a_stale_label_is_removed_when_its_daemon_starts_as_standby() {
    on_each_target(
        "a_stale_label_is_removed_when_its_daemon_starts_as_standby",
        a_stale_label_is_removed_when_its_daemon_starts_as_standby_on,
    )
    .await;
}

async fn a_stale_label_is_removed_when_its_daemon_starts_as_standby_on(cluster: Target) {
    let setup = Setup::new(&cluster).await;
    setup.create_pod("replica-a", false).await;
    // replica-b led before its container crashed: the restarted container finds the label.
    setup.create_pod("replica-b", true).await;
    let a = setup.daemon(Some("replica-a"), true).await;
    setup
        .place
        .eventually("replica-a leads with its Pod labelled", || async {
            (leads(&a).await && setup.labelled(&["replica-a"]).await.len() == 1).then_some(())
        })
        .await;

    let b = setup.daemon(Some("replica-b"), true).await;
    setup
        .place
        .eventually("the stale label removed by the standby", || async {
            let labels = setup.labelled(&["replica-a", "replica-b"]).await;
            (labels == ["replica-a"] && routing(&b).await == ROUTED).then_some(())
        })
        .await;
    assert!(!leads(&b).await, "replica-b stands by");
    assert!(leads(&a).await, "replica-a still leads");
    b.stop().await;
    a.stop().await;
}

#[tokio::test]
async fn a_single_daemon_without_election_labels_its_pod_until_it_stops() {
    on_each_target(
        "a_single_daemon_without_election_labels_its_pod_until_it_stops",
        a_single_daemon_without_election_labels_its_pod_until_it_stops_on,
    )
    .await;
}

async fn a_single_daemon_without_election_labels_its_pod_until_it_stops_on(cluster: Target) {
    let setup = Setup::new(&cluster).await;
    setup.create_pod("single", false).await;
    let daemon = setup.daemon(Some("single"), false).await;
    setup
        .place
        .eventually("the single daemon's Pod labelled", || async {
            (setup.labelled(&["single"]).await.len() == 1 && routing(&daemon).await == ROUTED)
                .then_some(())
        })
        .await;
    setup.place.wait_image("alpha", "1").await;
    daemon.stop().await;
    assert!(
        setup.labelled(&["single"]).await.is_empty(),
        "the label goes with the daemon"
    );
}

#[tokio::test]
async fn without_pod_name_the_daemon_reconciles_and_routing_is_off() {
    on_each_target(
        "without_pod_name_the_daemon_reconciles_and_routing_is_off",
        without_pod_name_the_daemon_reconciles_and_routing_is_off_on,
    )
    .await;
}

async fn without_pod_name_the_daemon_reconciles_and_routing_is_off_on(cluster: Target) {
    let setup = Setup::new(&cluster).await;
    cluster.reset_requests();
    let daemon = setup.daemon(None, false).await;
    daemon.wait_ready_within(cluster.patience()).await;
    setup.place.wait_image("alpha", "1").await;
    assert_eq!(routing(&daemon).await, "off: no POD_NAME or POD_NAMESPACE");
    let requests = cluster.requests();
    for verb in [Verb::Get, Verb::Patch, Verb::Apply] {
        assert_eq!(requests.get(verb, "pods"), 0, "{requests:?}");
    }
    daemon.stop().await;
}

#[tokio::test]
async fn a_missing_pod_leaves_routing_unavailable_and_reconciling_unharmed() {
    on_each_target(
        "a_missing_pod_leaves_routing_unavailable_and_reconciling_unharmed",
        a_missing_pod_leaves_routing_unavailable_and_reconciling_unharmed_on,
    )
    .await;
}

async fn a_missing_pod_leaves_routing_unavailable_and_reconciling_unharmed_on(cluster: Target) {
    let setup = Setup::new(&cluster).await;
    let daemon = setup.daemon(Some("replica-gone"), true).await;
    let shown = setup
        .place
        .eventually("routing reported unavailable", || async {
            let shown = routing(&daemon).await;
            shown.starts_with("unavailable: ").then_some(shown)
        })
        .await;
    assert!(
        shown.contains(&format!("{}/replica-gone", setup.ns)),
        "{shown}"
    );
    setup.place.wait_image("alpha", "1").await;
    daemon.wait_ready_within(cluster.patience()).await;
    assert!(leads(&daemon).await, "it leads and reconciles all the same");
    let text = metrics(daemon.addr()).await;
    assert!(
        text.contains(r#"modelship_errors_total{cause="leader_label"}"#),
        "{text}"
    );

    // The Pod appears (as when RBAC is fixed, the next retry succeeds): it is labelled.
    setup.create_pod("replica-gone", false).await;
    setup
        .place
        .eventually("the Pod labelled once it can be", || async {
            (setup.labelled(&["replica-gone"]).await.len() == 1 && routing(&daemon).await == ROUTED)
                .then_some(())
        })
        .await;
    setup.remote.commit(&setup.place.files(&[("alpha", "2")]));
    setup.place.wait_image("alpha", "2").await;
    daemon.stop().await;
}
