//! Loading a repository, planning and applying it through the engine and the real client,
//! as `modelship plan` and `apply` do, against anything with a client ([`HasClient`]): a
//! sandbox, or a [`super::target::Target`] (the sandbox or a real cluster).

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use modelship::cli::cluster::prepare_dir;
use modelship::cluster::{self, Kinds, RetryPolicy, WriteMode, Writer};
use modelship::engine::{self, ApplyReport, NamespaceLabels, Prepared, Revision, Run, Strategy};
use modelship::plan::{self, Detail, LiveSet, MassPrune, Plan};
use modelship::sandbox::Sandbox;

/// Every test step that talks to the sandbox finishes within this.
pub const STEP: Duration = Duration::from_secs(30);

/// Fast retries for tests: a fault-injected request is retried within milliseconds.
pub fn fast_retry() -> RetryPolicy {
    RetryPolicy::new(8, Duration::from_millis(5), Duration::from_millis(50))
}

/// Loads, compiles and prepares a repository directory with the engine, as a revision
/// whose policies see no namespace labels.
pub fn load_repo(dir: &Path) -> Revision {
    let mut diagnostics = Vec::new();
    let prepared = prepare_dir(
        dir,
        &[],
        &Default::default(),
        &mut diagnostics,
        modelship::cli::output::Color::Never,
    )
    .expect("repository directory readable");
    Revision::new(prepared, NamespaceLabels::new(), &Default::default())
}

/// The engine's whole run over a revision at the clock and Prometheus of production, as
/// `modelship plan` and `apply` make it, with no object beyond the live view.
pub fn run<'a>(
    revision: &'a Revision,
    analyst: &'a engine::rollout::PrometheusAnalyst,
) -> Run<'a, engine::rollout::PrometheusAnalyst> {
    run_with(revision, analyst, &engine::Nobody)
}

/// [`run`] with who holds the objects it would create (the cluster's, for the
/// helpers that have one).
pub fn run_with<'a>(
    revision: &'a Revision,
    analyst: &'a engine::rollout::PrometheusAnalyst,
    owners: &'a dyn engine::Owners,
) -> Run<'a, engine::rollout::PrometheusAnalyst> {
    Run {
        revision,
        now: jiff::Timestamp::now(),
        analyst,
        settings: engine::rollout::Settings::default(),
        detail: Detail::Full,
        owners,
    }
}

/// Applies the repository at `dir` as `modelship apply` does: canary services record
/// their rollout state with the other objects.
pub async fn apply_with_rollouts(sandbox: &impl HasClient, dir: &Path) -> ApplyReport {
    let revision = load_repo(dir);
    apply_ok(sandbox, &revision, &options()).await
}

/// Plans `revision` with its rollouts advanced, as `modelship plan` and `apply` do.
pub async fn plan_with_rollouts(revision: &Revision, live: &LiveSet) -> Plan {
    let analyst = engine::rollout::PrometheusAnalyst::default();
    run(revision, &analyst).plan_all(live).await.plan
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
        cluster::read_live(
            &client,
            &mut kinds,
            &prepared.desired,
            &fast_retry(),
            &prepared.source().instance,
        ),
    )
    .await
    .expect("live state read in time")
    .expect("live state read")
}

/// Reads the live state and plans `revision` against it with the engine (read-only).
pub async fn plan_repo(sandbox: &impl HasClient, revision: &Revision) -> Plan {
    let live = read_live(sandbox, revision).await;
    let analyst = engine::rollout::PrometheusAnalyst::default();
    let owners = engine::ClusterOwners::new(sandbox.client(), fast_retry());
    run_with(revision, &analyst, &owners)
        .plan_all(&live)
        .await
        .plan
}

/// Plans the desired objects of `prepared` as they are, no rollout advanced (the core's
/// planner): what tests of hand-made desired states (a rollout state's objects) check.
pub async fn plan_desired(sandbox: &impl HasClient, prepared: &Prepared) -> Plan {
    let live = read_live(sandbox, prepared).await;
    plan::plan(&prepared.desired, &live).expect("plan")
}

/// Writes what [`plan_desired`] plans, through the writer: namespaces created, creates
/// and updates with server-side apply in the apply order, orphans deleted; asserts every
/// write succeeds.
pub async fn apply_desired(sandbox: &impl HasClient, prepared: &Prepared) {
    let plan = plan_desired(sandbox, prepared).await;
    let writer = writer(sandbox, WriteMode::Persist);
    for service in &plan.services {
        let Some(desired) = prepared.desired.service(&service.id) else {
            continue;
        };
        if service.has_changes() {
            writer
                .ensure_namespace(service.id.namespace())
                .await
                .expect("namespace");
        }
        let writes = service
            .objects
            .iter()
            .filter(|o| o.action != plan::Action::Delete);
        let deletes = service
            .objects
            .iter()
            .filter(|o| o.action == plan::Action::Delete);
        for object in writes.chain(deletes.rev()) {
            let body = desired
                .objects
                .iter()
                .find(|d| plan::ObjectKey::of(d).as_ref() == Some(&object.key));
            let written = match (object.action, body) {
                (plan::Action::Create | plan::Action::Update, Some(body)) => writer
                    .apply(&object.key, &object.api_version, body)
                    .await
                    .map(drop),
                (plan::Action::Delete, _) => {
                    writer
                        .delete(&object.key, &object.api_version, object.live_uid.as_deref())
                        .await
                }
                _ => Ok(()),
            };
            written.unwrap_or_else(|e| panic!("{:?}: {e}", object.key));
        }
    }
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

/// Plans and applies `revision` as `modelship apply` does (the engine's step per service,
/// then prune); returns the plan and the report.
pub async fn apply_repo(
    sandbox: &impl HasClient,
    revision: &Revision,
    strategy: &Strategy,
) -> (Plan, Result<ApplyReport, MassPrune>) {
    apply_repo_with(sandbox, revision, strategy, WriteMode::Persist).await
}

/// [`apply_repo`] in a write mode.
pub async fn apply_repo_with(
    sandbox: &impl HasClient,
    revision: &Revision,
    strategy: &Strategy,
    mode: WriteMode,
) -> (Plan, Result<ApplyReport, MassPrune>) {
    let live = read_live(sandbox, revision).await;
    let writer = writer(sandbox, mode);
    let analyst = engine::rollout::PrometheusAnalyst::default();
    let owners = engine::ClusterOwners::new(sandbox.client(), fast_retry());
    let (sweep, report) = tokio::time::timeout(
        STEP,
        run_with(revision, &analyst, &owners).apply_all(&live, &writer, *strategy),
    )
    .await
    .expect("apply finishes in time");
    (sweep.plan, report)
}

/// Applies `revision` and asserts every object succeeded.
pub async fn apply_ok(
    sandbox: &impl HasClient,
    revision: &Revision,
    strategy: &Strategy,
) -> ApplyReport {
    let (_, report) = apply_repo(sandbox, revision, strategy).await;
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
        .map(|s| s.id.to_string())
        .collect()
}
