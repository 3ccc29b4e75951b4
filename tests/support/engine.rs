//! Loading a repository, planning and applying it through the engine and the real client,
//! as `modelship plan` and `apply` do, against anything with a client ([`HasClient`]): a
//! sandbox, or a [`super::target::Target`] (the sandbox or a real cluster).

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use modelship::cli::cluster::prepare_dir;
use modelship::cluster::{self, Kinds, RetryPolicy, WriteMode, Writer};
use modelship::engine::{self, ApplyReport, NamespaceLabels, Prepared, Scope, Strategy};
use modelship::plan::{self, LiveSet, MassPrune, Plan};
use modelship::sandbox::Sandbox;

/// Every test step that talks to the sandbox finishes within this.
pub const STEP: Duration = Duration::from_secs(30);

/// Fast retries for tests: a fault-injected request is retried within milliseconds.
pub fn fast_retry() -> RetryPolicy {
    RetryPolicy::new(8, Duration::from_millis(5), Duration::from_millis(50))
}

/// Loads, compiles and prepares a repository directory with the engine.
pub fn load_repo(dir: &Path) -> Prepared {
    let mut diagnostics = Vec::new();
    prepare_dir(
        dir,
        &[],
        &mut diagnostics,
        modelship::cli::output::Color::Never,
    )
    .expect("repository directory readable")
}

/// Advances the canary rollouts of `prepared` over the live state, as `modelship plan`
/// and `apply` do before planning (the clock and Prometheus of production).
pub async fn drive_rollouts(
    sandbox: &impl HasClient,
    prepared: &mut Prepared,
) -> engine::rollout::RolloutReport {
    let live = read_live(sandbox, prepared).await;
    let analyst = engine::rollout::PrometheusAnalyst::default();
    let now = jiff::Timestamp::now();
    let settings = engine::rollout::Settings::default();
    let skip = BTreeSet::new();
    engine::rollout::drive(prepared, &live, now, &analyst, settings, &skip).await
}

/// Applies the repository at `dir` as `modelship apply` does: canary services record
/// their rollout state with the other objects.
pub async fn apply_with_rollouts(sandbox: &impl HasClient, dir: &Path) -> ApplyReport {
    let mut prepared = load_repo(dir);
    drive_rollouts(sandbox, &mut prepared).await;
    apply_ok(sandbox, &prepared, &options()).await
}

/// Plans `prepared` with its rollouts advanced, as `modelship plan` and `apply` do.
pub async fn plan_with_rollouts(prepared: &mut Prepared, live: &LiveSet) -> Plan {
    let analyst = engine::rollout::PrometheusAnalyst::default();
    let now = jiff::Timestamp::now();
    let settings = engine::rollout::Settings::default();
    let labels = NamespaceLabels::new();
    engine::rollout::plan_all(prepared, live, &labels, now, &analyst, settings)
        .await
        .expect("plan")
        .0
}

/// The API resource of Gateway API HTTPRoutes.
pub fn http_route_resource() -> kube::api::ApiResource {
    kube::api::ApiResource {
        group: "gateway.networking.k8s.io".into(),
        version: "v1".into(),
        api_version: "gateway.networking.k8s.io/v1".into(),
        kind: "HTTPRoute".into(),
        plural: "httproutes".into(),
    }
}

/// Starts a sandbox.
pub async fn sandbox() -> Sandbox {
    tokio::time::timeout(STEP, Sandbox::start())
        .await
        .expect("sandbox starts in time")
        .expect("sandbox starts")
}

/// A cluster the helpers can talk to.
pub trait HasClient {
    /// A client of the cluster.
    fn client(&self) -> kube::Client;
}

impl HasClient for Sandbox {
    fn client(&self) -> kube::Client {
        Sandbox::client(self)
    }
}

/// Reads the live state as the CLI does (one cluster-wide LIST per kind).
pub async fn read_live(sandbox: &impl HasClient, prepared: &Prepared) -> LiveSet {
    let client = sandbox.client();
    let mut kinds = Kinds::new(client.clone(), fast_retry());
    tokio::time::timeout(
        STEP,
        cluster::read_live(&client, &mut kinds, &prepared.desired, &fast_retry()),
    )
    .await
    .expect("live state read in time")
    .expect("live state read")
}

/// Reads the live state and plans `prepared` against it with the engine.
pub async fn plan_repo(sandbox: &impl HasClient, prepared: &Prepared) -> Plan {
    let live = read_live(sandbox, prepared).await;
    engine::plan(prepared, &live, &NamespaceLabels::new(), Scope::All).expect("plan")
}

/// A strategy that creates namespaces; no prune.
pub fn options() -> Strategy {
    Strategy {
        create_namespaces: true,
        ..Strategy::default()
    }
}

/// A writer with fast retries.
pub fn writer(sandbox: &impl HasClient, mode: WriteMode) -> Writer {
    Writer::new(sandbox.client(), fast_retry(), mode)
}

/// Plans and applies `prepared`; returns the plan and the report.
pub async fn apply_repo(
    sandbox: &impl HasClient,
    prepared: &Prepared,
    strategy: &Strategy,
) -> (Plan, Result<ApplyReport, MassPrune>) {
    apply_repo_with(sandbox, prepared, strategy, WriteMode::Persist).await
}

/// [`apply_repo`] in a write mode.
pub async fn apply_repo_with(
    sandbox: &impl HasClient,
    prepared: &Prepared,
    strategy: &Strategy,
    mode: WriteMode,
) -> (Plan, Result<ApplyReport, MassPrune>) {
    let plan = plan_repo(sandbox, prepared).await;
    let writer = writer(sandbox, mode);
    let report = tokio::time::timeout(
        STEP,
        engine::apply(&writer, &plan, &prepared.desired, strategy),
    )
    .await
    .expect("apply finishes in time");
    (plan, report)
}

/// Applies `prepared` and asserts every object succeeded.
pub async fn apply_ok(
    sandbox: &impl HasClient,
    prepared: &Prepared,
    strategy: &Strategy,
) -> ApplyReport {
    let (_, report) = apply_repo(sandbox, prepared, strategy).await;
    let report = report.expect("apply");
    assert!(
        report.failures.is_empty(),
        "failures: {:#?}",
        report.failures
    );
    report
}

/// The annotations of an object but those a real cluster's controllers write on their own
/// time (the Deployment controller's `deployment.kubernetes.io/revision`), for "left
/// untouched" checks that must hold on a real cluster too.
pub fn annotations_but_controllers(
    meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
) -> std::collections::BTreeMap<String, String> {
    let mut annotations = meta.annotations.clone().unwrap_or_default();
    annotations.remove("deployment.kubernetes.io/revision");
    annotations
}

/// A one-line description of every object that would change.
pub fn changes(plan: &Plan) -> Vec<String> {
    plan.services
        .iter()
        .flat_map(|s| &s.objects)
        .filter(|o| !matches!(o.action, plan::Action::Unchanged | plan::Action::Blocked))
        .map(|o| {
            let paths: Vec<String> = o.changes.iter().map(|c| c.path.to_string()).collect();
            format!("{:?} {} {}\n{}", o.action, o.key, paths.join(", "), o.diff)
        })
        .collect()
}

/// Services (namespace/name) that have live objects.
pub fn live_services(plan: &Plan) -> BTreeSet<String> {
    plan.services
        .iter()
        .filter(|s| !s.objects.iter().all(|o| o.action == plan::Action::Create))
        .map(|s| format!("{}/{}", s.namespace, s.name))
        .collect()
}
