//! The pull-request comment rendered from changes of example-repo, against a live state
//! that is example-repo as applied, checked against golden Markdown files; a 1,000-service
//! repository with one change; Secret values.
//!
//! After an intended change of the output, rewrite the files and review the diff:
//!
//! ```text
//! UPDATE_GOLDEN=1 cargo test --test pr_comment
//! git diff tests/golden/comments docs/pr-comment-example.md
//! ```

mod support;

use std::path::Path;

use modelship::engine::{self, Revision, Run, Sweep};
use modelship::plan::LiveSet;
use modelship::plan::render::{COMMENT_LIMIT, Links};
use serde_json::json;
use support::*;

const SHA: &str = "4f2a9c1e8b7d6a5f4e3d2c1b0a9f8e7d6c5b4a39";

/// The clock of these plans (fixed, so the files stay the same).
fn now() -> jiff::Timestamp {
    jiff::Timestamp::from_second(1_800_000_000).expect("a valid time")
}

/// `loaded` planned against `live` with its canary rollouts advanced, as `modelship plan`
/// and the daemon plan it.
fn plan_with_rollouts(loaded: &Revision, live: &LiveSet) -> Sweep {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let analyst = engine::rollout::PrometheusAnalyst::default();
    let run = Run {
        revision: loaded,
        now: now(),
        analyst: &analyst,
        settings: engine::rollout::Settings::default(),
        detail: modelship::plan::Detail::Full,
        owners: &engine::Nobody,
    };
    let sweep = runtime.block_on(run.plan_all(live));
    assert!(sweep.failure().is_none(), "{:?}", sweep.failure());
    sweep
}

/// The live state of a repository as applied from nothing: its compiled objects, with the
/// rollout state a first deployment records on canary services.
fn applied(dir: &Path) -> LiveSet {
    let loaded = load_repo(dir);
    plan_with_rollouts(&loaded, &LiveSet::default())
        .outcomes
        .into_iter()
        .filter_map(|o| o.desired)
        .flat_map(|s| s.objects)
        .collect()
}

/// The comment of the repository at `dir` planned against `live`, with its policies and
/// its canary rollouts advanced.
fn comment(dir: &Path, live: &LiveSet) -> String {
    let loaded = load_repo(dir);
    assert!(!loaded.policies_broken(), "example policies load");
    let Sweep { plan, rollouts, .. } = plan_with_rollouts(&loaded, live);
    let links = Links {
        repository_url: "https://github.com/acme/ml-models".to_string(),
        sha: SHA.to_string(),
        root: String::new(),
    };
    modelship::engine::comment::markdown(&loaded, &plan, live, &rollouts, Some(links))
}

/// Compares with `tests/golden/comments/NAME.md` (or rewrites it with UPDATE_GOLDEN).
fn golden(name: &str, actual: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden/comments")
        .join(format!("{name}.md"));
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(path.parent().expect("golden dir")).expect("mkdir");
        std::fs::write(&path, actual).expect("write golden");
        return;
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}; run with UPDATE_GOLDEN=1", path.display()));
    assert!(
        expected == actual,
        "{} differs; if intended: UPDATE_GOLDEN=1 cargo test --test pr_comment\n--- actual ---\n{actual}",
        path.display()
    );
}

#[test]
fn a_model_version_bump_of_a_canary_gpu_service() {
    let live = applied(&example_repo());
    let repo = example_copy();
    bump_llm_chat_version(repo.path());
    let md = comment(repo.path(), &live);
    // Every object of the service carries the version label, but only the Deployment's
    // diff is shown.
    assert_eq!(md.matches("```diff").count(), 1, "{md}");
    assert!(
        md.contains("only the version label changes (3.1.0 → 3.2.0)"),
        "{md}"
    );
    assert!(
        md.contains("**Merging will** start a canary: 5% → 25% → ⏸ gate, then 50% → 100%"),
        "{md}"
    );
    golden("llm-chat-version-bump", &md);
    // The README's example comment is this one.
    let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/pr-comment-example.md");
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&docs, &md).expect("write docs/pr-comment-example.md");
    }
    let example = std::fs::read_to_string(&docs).expect("docs/pr-comment-example.md");
    assert!(
        example == md,
        "docs/pr-comment-example.md is out of date: cp tests/golden/comments/llm-chat-version-bump.md docs/pr-comment-example.md"
    );
}

#[test]
fn more_gpus_show_their_cost_and_the_policy_that_denies_them() {
    let live = applied(&example_repo());
    let repo = example_copy();
    edit(
        repo.path(),
        "services/genai/llm-chat.yaml",
        "count: 4",
        "count: 12",
    );
    edit(
        repo.path(),
        "services/risk/fraud-detection.yaml",
        "xgboost-server:2.1.0",
        "xgboost-server:2.2.0",
    );
    let md = comment(repo.path(), &live);
    assert!(
        md.contains("**1 service denied by policy (genai/llm-chat)**"),
        "{md}"
    );
    assert!(md.contains("- **error** policy `gpu-budget`"), "{md}");
    assert!(
        md.contains("**Merging will** leave this service untouched."),
        "{md}"
    );
    golden("gpu-increase-denied-and-image-bump", &md);
}

#[test]
fn validation_errors_link_to_the_head_commit() {
    let live = applied(&example_repo());
    let repo = example_copy();
    edit(
        repo.path(),
        "services/genai/llm-chat.yaml",
        "maxReplicas: 6",
        "maxReplica: 6",
    );
    let md = comment(repo.path(), &live);
    assert!(
        md.contains(&format!(
            "(https://github.com/acme/ml-models/blob/{SHA}/services/genai/llm-chat.yaml#L"
        )),
        "{md}"
    );
    assert!(md.contains("did you mean maxReplicas?"), "{md}");
    golden("invalid-spec", &md);
}

/// The head edits modelship.yaml's tenants and Prometheus URL: the plan uses the followed
/// branch's (example-repo as shipped), and says so in one line.
#[test]
fn a_head_that_edits_governing_settings_is_planned_with_the_branch_s() {
    let live = applied(&example_repo());
    let repo = example_copy();
    edit(
        repo.path(),
        "modelship.yaml",
        "url: http://prometheus.monitoring.svc:9090",
        "url: http://prometheus.elsewhere.example.com:9090",
    );
    let tenants =
        "  tenants:\n    - {name: genai, paths: [\"services/genai/**\"], namespaces: [genai]}\n";
    let config = repo.path().join("modelship.yaml");
    let text = std::fs::read_to_string(&config).expect("modelship.yaml");
    std::fs::write(&config, text + tenants).expect("write modelship.yaml");
    let branch = modelship::spec::load(&modelship::source::read_dir(&example_repo()).unwrap());
    let load = modelship::spec::LoadOptions {
        governing: Some(&branch.config),
        ..Default::default()
    };
    let files = modelship::source::read_dir(repo.path()).expect("readable");
    let prepared = engine::prepare_with(
        &files,
        &Default::default(),
        &modelship::compile::Source::local(),
        engine::Keep::Objects,
        load,
    );
    let revision = Revision::new(
        prepared,
        Default::default(),
        &modelship::plan::LiveState::services(&live),
    );
    // The head's tenants would own no risk service: the branch has none, so all plan.
    assert!(
        revision.repository.is_valid(),
        "{:?}",
        revision.repository.diagnostics
    );
    let Sweep { plan, rollouts, .. } = plan_with_rollouts(&revision, &live);
    let links = Links {
        repository_url: "https://github.com/acme/ml-models".to_string(),
        sha: SHA.to_string(),
        root: String::new(),
    };
    let md = engine::comment::markdown(&revision, &plan, &live, &rollouts, Some(links));
    assert!(
        md.contains(
            "modelship.yaml: this change edits tenants, prometheus; they take effect when \
             merged; this plan uses the branch's."
        ),
        "{md}"
    );
    golden("governing-settings-from-the-branch", &md);
}

#[test]
fn a_secret_value_never_appears() {
    let mut live = applied(&example_repo());
    // A Secret modelship once managed for a service that is gone: its deletion is planned.
    live.insert(json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "old-model-keys", "namespace": "genai", "labels": {
            "app.kubernetes.io/managed-by": "modelship",
            "modelship.dev/service": "old-model"}},
        "data": {"api-key": "c3VwZXItc2VjcmV0LWtleQ=="},
        "stringData": {"token": "plain-secret-token"}
    }));
    let md = comment(&example_repo(), &live);
    assert!(md.contains("<b>genai/old-model</b>"), "{md}");
    assert!(md.contains("redacted"), "{md}");
    for secret in [
        "c3VwZXItc2VjcmV0LWtleQ==",
        "super-secret-key",
        "plain-secret-token",
    ] {
        assert!(!md.contains(secret), "{secret} leaked:\n{md}");
    }
}

/// A repository of `n` small CPU services.
fn many_services(dir: &Path, n: usize) {
    std::fs::create_dir_all(dir.join("services")).expect("mkdir");
    for i in 0..n {
        let text = format!(
            "apiVersion: modelship.dev/v1alpha1\nkind: ModelService\nmetadata:\n  name: svc-{i:04}\n  \
             namespace: ns-{}\nspec:\n  owner: team@example.com\n  model: {{name: m, version: \"1.0.{i}\"}}\n  \
             runtime: {{image: \"registry.example.com/server:1.0\"}}\n  resources: {{cpu: \"1\", memory: 1Gi}}\n",
            i % 10
        );
        std::fs::write(dir.join(format!("services/svc-{i:04}.yaml")), text).expect("write");
    }
}

#[test]
fn a_thousand_services_with_one_change_give_a_short_comment() {
    let dir = tempfile::tempdir().expect("tempdir");
    many_services(dir.path(), 1_000);
    let live = applied(dir.path());
    edit(
        dir.path(),
        "services/svc-0421.yaml",
        "server:1.0",
        "server:1.1",
    );
    let md = comment(dir.path(), &live);
    assert!(md.contains("**1 of 1000 services changes**"), "{md}");
    assert!(
        md.contains("999 more services unchanged, not listed."),
        "{md}"
    );
    assert!(md.contains("<b>ns-1/svc-0421</b>"), "{md}");
    assert!(md.len() < 3_000, "{} characters:\n{md}", md.len());
    assert!(md.len() < COMMENT_LIMIT);
}
