//! Compile + render of a repository of mixed-shape services (CPU, whole GPU, MIG, shared
//! GPU; rolling and canary over gateway-api, istio and replicas; fixed replicas and HPAs;
//! every model.uri scheme), at 100, 1,000 and 10,000 services to show the cost is linear.
//!
//! ```text
//! cargo bench --bench render -- --warm-up-time 1 --measurement-time 3
//! ```

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use modelship::compile::{Source, compile_repository, render_json, render_yaml};
use modelship::spec::Repository;

mod support;

use support::repository;

fn source() -> Source {
    Source {
        repo: Some("github.com/example/models".to_string()),
        commit: Some("0123456789abcdef0123456789abcdef01234567".to_string()),
        instance: Default::default(),
    }
}

/// Compiles and renders everything; returns the YAML length so nothing is optimized away.
fn compile_and_render(repo: &Repository, source: &Source) -> usize {
    let set = compile_repository(repo, source);
    assert!(set.errors.is_empty(), "{:?}", set.errors);
    render_yaml(set.objects()).expect("renders").len()
}

fn bench(c: &mut Criterion) {
    let source = source();
    let mut group = c.benchmark_group("compile_render");
    group.sample_size(10);
    for n in [100, 1_000, 10_000] {
        let repo = repository(n);
        group.throughput(Throughput::Elements(n as u64));
        group.bench_with_input(BenchmarkId::from_parameter(n), &repo, |b, repo| {
            b.iter(|| compile_and_render(repo, &source));
        });
    }
    group.finish();

    let repo = repository(1_000);
    let mut group = c.benchmark_group("stages_1000");
    group.sample_size(10);
    group.bench_function("compile", |b| b.iter(|| compile_repository(&repo, &source)));
    let set = compile_repository(&repo, &source);
    group.bench_function("render_yaml", |b| {
        b.iter(|| render_yaml(set.objects()).expect("renders").len())
    });
    group.bench_function("render_json", |b| {
        b.iter(|| render_json(set.objects()).expect("renders").len())
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
