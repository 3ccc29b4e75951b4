//! `plan` of 1,000 services against a warm sandbox: reading the live state (one LIST per
//! kind and namespace) and planning it, plus the pure planning step alone (measured after
//! the sandbox is stopped). Before measuring, it prints the API requests one plan makes
//! and checks it makes no write.
//!
//! ```text
//! cargo bench --bench plan -- --warm-up-time 1 --measurement-time 5
//! ```

use std::collections::BTreeSet;

use criterion::{Criterion, criterion_group, criterion_main};
use modelship::cluster::{self, ApplyOptions, Kinds, RetryPolicy};
use modelship::compile::{Source, compile_repository};
use modelship::plan::{self, DesiredState, LiveSet};
use modelship::sandbox::{Sandbox, Verb};
use modelship::spec::Repository;

mod support;

use support::NAMESPACES;

const SERVICES: usize = 1_000;

fn repository() -> Repository {
    support::repository(SERVICES)
}

fn retry() -> RetryPolicy {
    RetryPolicy::default()
}

async fn read_live(
    sandbox: &Sandbox,
    desired: &DesiredState,
    namespaces: &BTreeSet<String>,
) -> LiveSet {
    let client = sandbox.client();
    let mut kinds = Kinds::new(client.clone(), retry());
    cluster::read_live(&client, &mut kinds, namespaces, desired, &retry())
        .await
        .expect("live state read")
}

fn bench(c: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let repo = repository();
    let compiled = compile_repository(&repo, &Source::local());
    let desired = plan::desired_state(&repo, &compiled);
    assert!(desired.repository_valid);
    let namespaces: BTreeSet<String> = desired
        .services
        .iter()
        .map(|s| s.namespace.clone())
        .collect();
    let sandbox = runtime.block_on(Sandbox::start()).expect("sandbox starts");

    // Warm the sandbox: apply everything once.
    runtime.block_on(async {
        let client = sandbox.client();
        let mut kinds = Kinds::new(client.clone(), retry());
        let live = read_live(&sandbox, &desired, &namespaces).await;
        let planned = plan::plan(&desired, &live).expect("plan");
        let options = ApplyOptions {
            create_namespaces: true,
            ..ApplyOptions::default()
        };
        let report = cluster::apply(&client, &mut kinds, &planned, &desired, &options)
            .await
            .expect("apply");
        assert!(report.failures.is_empty(), "{:?}", report.failures);
        eprintln!("warm: {} objects applied", report.applied.len());
    });

    // Requests of one plan.
    sandbox.reset_requests();
    let live = runtime.block_on(read_live(&sandbox, &desired, &namespaces));
    let planned = plan::plan(&desired, &live).expect("plan");
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
            let live = runtime.block_on(read_live(&sandbox, &desired, &namespaces));
            plan::plan(&desired, &live).expect("plan").services.len()
        })
    });
    // The sandbox's simulated Deployment controller keeps polling its 1,000 Deployments on
    // another thread; stop it so that the pure step is measured alone.
    drop(sandbox);
    group.bench_function("plan_only", |b| {
        b.iter(|| plan::plan(&desired, &live).expect("plan").services.len())
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
