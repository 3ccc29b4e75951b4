//! `plan` of 1,000 services against a warm sandbox: reading the live state (one
//! cluster-wide LIST per kind) and planning it with the engine as `modelship plan` does
//! (the step of every service, canary rollouts advanced, read-only), plus the planning
//! alone and with the preparation of the revision (measured after the sandbox is
//! stopped). Before measuring, it prints the API requests one plan makes
//! and checks it makes no write.
//!
//! ```text
//! cargo bench --bench plan -- --warm-up-time 1 --measurement-time 5
//! ```

use criterion::{Criterion, criterion_group, criterion_main};
use modelship::cluster::{self, Kinds, RetryPolicy, WriteMode, Writer};
use modelship::engine::{self, NamespaceLabels, Revision, Run, Strategy};
use modelship::plan::{DesiredState, LiveSet};
use modelship::sandbox::{Sandbox, Verb};

mod support;

use support::NAMESPACES;

const SERVICES: usize = 1_000;

fn revision() -> Revision {
    Revision::new(
        support::prepared(SERVICES),
        NamespaceLabels::new(),
        &Default::default(),
    )
}

fn run<'a>(
    revision: &'a Revision,
    analyst: &'a engine::rollout::PrometheusAnalyst,
) -> Run<'a, engine::rollout::PrometheusAnalyst> {
    Run {
        revision,
        now: jiff::Timestamp::now(),
        analyst,
        settings: engine::rollout::Settings::default(),
        detail: modelship::plan::Detail::Full,
        owners: &engine::Nobody,
    }
}

fn retry() -> RetryPolicy {
    RetryPolicy::default()
}

async fn read_live(sandbox: &Sandbox, desired: &DesiredState) -> LiveSet {
    let client = sandbox.client();
    let mut kinds = Kinds::new(client.clone(), retry());
    cluster::read_live(&client, &mut kinds, desired, &retry(), &Default::default())
        .await
        .expect("live state read")
}

/// The whole revision planned as `modelship plan` plans it: the engine's step per
/// service, read-only.
fn plan(
    runtime: &tokio::runtime::Runtime,
    revision: &Revision,
    live: &LiveSet,
) -> modelship::plan::Plan {
    let analyst = engine::rollout::PrometheusAnalyst::default();
    runtime
        .block_on(run(revision, &analyst).plan_all(live))
        .plan
}

fn bench(c: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let prepared = revision();
    let desired = &prepared.desired;
    assert!(desired.repository_valid);
    let sandbox = runtime.block_on(Sandbox::start()).expect("sandbox starts");

    // Warm the sandbox: apply everything once.
    runtime.block_on(async {
        let writer = Writer::new(sandbox.client(), retry(), WriteMode::Persist);
        let live = read_live(&sandbox, desired).await;
        let strategy = Strategy {
            create_namespaces: true,
            ..Strategy::default()
        };
        let analyst = engine::rollout::PrometheusAnalyst::default();
        let (_, report) = run(&prepared, &analyst)
            .apply_all(&live, &writer, strategy)
            .await;
        let report = report.expect("apply");
        assert!(report.failures.is_empty(), "{:?}", report.failures);
        eprintln!("warm: {} objects applied", report.applied.len());
    });

    // Requests of one plan.
    sandbox.reset_requests();
    let live = runtime.block_on(read_live(&sandbox, desired));
    let planned = plan(&runtime, &prepared, &live);
    let requests = sandbox.requests();
    assert!(!planned.has_changes(), "a warm sandbox plans no change");
    assert_eq!(requests.total_writes(), 0, "planning never writes");
    eprintln!(
        "one plan of {SERVICES} services in {NAMESPACES} namespaces ({} live objects): \
         {} requests = {} LIST, {} GET (discovery), {} writes",
        live.len(),
        requests.total(),
        requests.verb_total(Verb::List),
        requests.verb_total(Verb::Get),
        requests.total_writes()
    );

    let mut group = c.benchmark_group("plan_1000");
    group.sample_size(10);
    group.bench_function("read_live_and_plan", |b| {
        b.iter(|| {
            let live = runtime.block_on(read_live(&sandbox, desired));
            plan(&runtime, &prepared, &live).services.len()
        })
    });
    // The sandbox's simulated Deployment controller keeps polling its 1,000 Deployments on
    // another thread; stop it so that the pure step is measured alone.
    drop(sandbox);
    group.bench_function("plan_with_rollouts", |b| {
        b.iter(|| plan(&runtime, &prepared, &live).services.len())
    });
    // What `modelship plan` does between reading the files and the cluster, and printing:
    // prepare the revision, then the step of every service.
    group.bench_function("prepare_and_plan_with_rollouts", |b| {
        b.iter(|| plan(&runtime, &revision(), &live).services.len())
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
