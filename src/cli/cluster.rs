//! `modelship plan` and `modelship apply`: the commands that talk to a cluster.
//!
//! ```text
//! DIR ──read──> files ──spec::load──> Repository ──compile──> DesiredState
//! DIR/policies, --policies DIR... ──PolicySet::load──> PolicySet   (broken: exit 2)
//!                                                                 │
//!  --kubeconfig/--context ──connect──> Client ──read_live──> LiveSet
//!                                     (policies loaded) read_namespace_labels
//!                                                                 │
//!   plan::plan ──> Plan ──policy::check_desired_by_service + plan::enforce──> Plan
//!                                                        │ ──render──> stdout
//!                                                        │ (apply)
//!                              cluster::apply ──> cluster::wait_healthy (--wait)
//! ```
//!
//! Policies see every ModelService and every compiled object, with the live object the
//! plan read as `oldObject` and the namespace's live labels. A Deny violation blocks its
//! service (nothing of it is written or deleted); the other services are planned and
//! applied as usual.
//!
//! Exit codes of `plan`, like `kubectl diff`: 0 no changes, 1 changes, 2 invalid input or
//! a policy denies a service, 3 cluster error. `apply`: 0 done, 1 some objects failed, did
//! not become ready, or the mass-prune guard refused, 2 invalid input or a policy denies a
//! service (the other services were still applied; nothing at all when a policy is
//! broken), 3 cluster error.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::output::{Color, write_diagnostics};
use crate::cluster::{
    self, ApplyMode, ApplyOptions, ConnectOptions, DeploymentHealth, HealthOptions, Kinds,
    PruneMode, RetryPolicy,
};
use crate::compile::{self, Source};
use crate::plan::render::{self, Format};
use crate::plan::{self, Action, DesiredState, ObjectKey, Plan, ServiceStatus};
use crate::policy::{self, PolicySet};
use crate::spec;

/// How the commands reach the cluster.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ClusterArgs {
    /// Path to the kubeconfig file (default: $KUBECONFIG, ~/.kube/config, or in-cluster).
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,
    /// The kubeconfig context to use (default: its current context).
    #[arg(long)]
    pub context: Option<String>,
}

/// `-o text|markdown|json`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    /// A summary table and diffs, coloured on a terminal.
    #[default]
    Text,
    /// Collapsible sections per service, for pull-request comments.
    Markdown,
    /// The versioned JSON schema documented in `plan::render::json`.
    Json,
}

impl From<OutputFormat> for Format {
    fn from(format: OutputFormat) -> Self {
        match format {
            OutputFormat::Text => Format::Text,
            OutputFormat::Markdown => Format::Markdown,
            OutputFormat::Json => Format::Json,
        }
    }
}

/// `modelship plan [DIR]`: what apply would change.
#[derive(Debug, Clone, clap::Args)]
pub struct PlanArgs {
    /// The repository directory.
    #[arg(default_value = ".")]
    pub dir: PathBuf,
    #[command(flatten)]
    pub cluster: ClusterArgs,
    /// More policy directories, checked with the repository's policies/ (repeatable).
    #[arg(long = "policies", value_name = "DIR")]
    pub policies: Vec<PathBuf>,
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value_t)]
    pub output: OutputFormat,
}

/// `modelship apply [DIR]`: make the cluster match the repository.
#[derive(Debug, Clone, clap::Args)]
pub struct ApplyArgs {
    /// The repository directory.
    #[arg(default_value = ".")]
    pub dir: PathBuf,
    /// Delete the objects of services gone from the repository (only when the whole
    /// repository is valid).
    #[arg(long)]
    pub prune: bool,
    /// Allow pruning more than half of the services of a namespace in one run.
    #[arg(long, requires = "prune")]
    pub allow_mass_prune: bool,
    /// Send everything with dryRun=All: the server validates, nothing persists.
    #[arg(long)]
    pub dry_run: bool,
    /// Wait until the Deployments are rolled out and available.
    #[arg(long)]
    pub wait: bool,
    /// How long --wait waits (e.g. 90s, 5m).
    #[arg(long, default_value = "5m", value_parser = parse_duration)]
    pub timeout: Duration,
    /// Create the namespaces the repository uses when they are missing (they are never
    /// pruned).
    #[arg(long)]
    pub create_namespaces: bool,
    #[command(flatten)]
    pub cluster: ClusterArgs,
    /// More policy directories, checked with the repository's policies/ (repeatable).
    #[arg(long = "policies", value_name = "DIR")]
    pub policies: Vec<PathBuf>,
    /// Output format of the plan.
    #[arg(short = 'o', long, value_enum, default_value_t)]
    pub output: OutputFormat,
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    text.parse::<spec::Duration>()
        .map(|d| d.value())
        .map_err(|e| e.to_string())
}

/// The documented exit codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Nothing to change (plan) or everything done (apply).
    Ok = 0,
    /// Changes planned (plan) or some objects failed (apply).
    Changes = 1,
    /// The repository has errors, or a policy is broken or denies a service.
    Invalid = 2,
    /// The cluster could not be reached or read.
    Cluster = 3,
}

impl From<Exit> for super::ExitCode {
    fn from(exit: Exit) -> Self {
        match exit {
            Exit::Ok => super::ExitCode::Success,
            Exit::Changes => super::ExitCode::Failure,
            Exit::Invalid => super::ExitCode::Invalid,
            Exit::Cluster => super::ExitCode::Cluster,
        }
    }
}

/// Runs a command future on a runtime of its own (the CLI is otherwise synchronous).
pub fn block_on(command: impl std::future::Future<Output = Exit>) -> Exit {
    match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime.block_on(command),
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            Exit::Cluster
        }
    }
}

/// A repository read and compiled.
#[derive(Debug)]
pub struct Loaded {
    pub repository: spec::Repository,
    pub desired: DesiredState,
    /// Namespaces whose live objects are read: every namespace the repository uses.
    pub namespaces: BTreeSet<String>,
}

/// Reads, validates and compiles a repository directory, writing its diagnostics to
/// `errors`. `Err` when the directory cannot be read.
pub fn load(dir: &Path, errors: &mut impl Write, color: Color) -> Result<Loaded, String> {
    let files = crate::source::read_dir(dir).map_err(|e| e.to_string())?;
    let repository = spec::load(&files);
    // A closed stderr leaves nobody to tell; the exit code still says what happened.
    let _ = write_diagnostics(errors, &repository.diagnostics, color);
    let compiled = compile::compile_repository(&repository, &Source::local());
    for failure in &compiled.errors {
        let _ = writeln!(
            errors,
            "{}: service {}/{}: {}",
            failure.file, failure.namespace, failure.name, failure.error
        );
    }
    let desired = plan::desired_state(&repository, &compiled);
    let mut namespaces: BTreeSet<String> = desired
        .services
        .iter()
        .map(|s| s.namespace.clone())
        .chain(desired.invalid.iter().map(|(ns, _)| ns.clone()))
        .collect();
    namespaces.insert(repository.config.spec.default_namespace.clone());
    Ok(Loaded {
        repository,
        desired,
        namespaces,
    })
}

/// Loads the policies of the repository at `dir` (`policies/`) and of every extra
/// directory, writing their located diagnostics to `errors`. `Err` when a directory cannot
/// be read or a policy has errors: nothing may be planned or applied then.
pub fn load_policies(
    dir: &Path,
    extra_dirs: &[PathBuf],
    errors: &mut impl Write,
    color: Color,
) -> Result<PolicySet, String> {
    let (set, diagnostics) =
        super::policies::load_policies(dir, extra_dirs).map_err(|e| format!("{e:#}"))?;
    // A closed stderr leaves nobody to tell; the exit code still says what happened.
    let _ = write_diagnostics(errors, &diagnostics, color);
    let broken = diagnostics
        .iter()
        .filter(|d| d.severity == spec::Severity::Error)
        .count();
    match broken {
        0 => Ok(set),
        1 => Err("a policy has an error: nothing was planned or applied".to_string()),
        n => Err(format!(
            "policies have {n} errors: nothing was planned or applied"
        )),
    }
}

/// Whether stdout shows colours: a terminal, and `NO_COLOR` unset.
fn color() -> bool {
    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none()
}

/// A plan against the cluster, with the client and kinds to apply it and the live state
/// it was planned against.
pub struct Planned {
    pub client: kube::Client,
    pub kinds: Kinds,
    pub plan: Plan,
    pub live: plan::LiveSet,
}

/// Why a plan could not be made.
#[derive(Debug, thiserror::Error)]
enum PlanFailure {
    /// The cluster could not be reached or read (exit 3).
    #[error(transparent)]
    Cluster(#[from] cluster::Error),
    /// The compiled objects could not be planned: a compiler bug (exit 1).
    #[error(transparent)]
    Plan(#[from] plan::Error),
    /// The policies could not be evaluated on the repository (exit 2).
    #[error(transparent)]
    Policy(#[from] policy::Error),
}

impl PlanFailure {
    fn exit(&self) -> Exit {
        match self {
            PlanFailure::Cluster(_) => Exit::Cluster,
            PlanFailure::Plan(_) => Exit::Changes,
            PlanFailure::Policy(_) => Exit::Invalid,
        }
    }
}

/// Reads the live state, plans the repository against it and enforces the policies: the
/// live objects are their `oldObject`, and, when any policy is loaded, the namespaces'
/// labels are read with one more LIST.
async fn plan_against_cluster(
    loaded: &Loaded,
    policies: &PolicySet,
    cluster: &ClusterArgs,
    retry: &RetryPolicy,
) -> Result<Planned, PlanFailure> {
    let options = ConnectOptions {
        kubeconfig: cluster.kubeconfig.clone(),
        context: cluster.context.clone(),
    };
    let client = cluster::connect(&options).await?;
    let mut kinds = Kinds::new(client.clone(), *retry);
    let live = cluster::read_live(
        &client,
        &mut kinds,
        &loaded.namespaces,
        &loaded.desired,
        retry,
    )
    .await?;
    let labels = if policies.is_empty() {
        BTreeMap::new()
    } else {
        cluster::read_namespace_labels(&client, &mut kinds, &loaded.namespaces, retry).await?
    };
    let mut plan = plan::plan(&loaded.desired, &live)?;
    let violations = policy::check_desired_by_service(
        &loaded.repository,
        &loaded.desired,
        &live,
        &labels,
        policies,
    )?;
    plan::enforce(&mut plan, violations);
    Ok(Planned {
        client,
        kinds,
        plan,
        live,
    })
}

/// Loads the repository and its policies, and plans against the cluster; `Err` is the
/// exit code of a failure, already reported on `stderr`.
pub async fn prepare(
    dir: &Path,
    policy_dirs: &[PathBuf],
    cluster: &ClusterArgs,
    retry: &RetryPolicy,
    stderr: &mut impl Write,
) -> Result<(Loaded, Planned), Exit> {
    let color = Color::for_stderr();
    let loaded = load(dir, stderr, color).map_err(|error| {
        let _ = writeln!(stderr, "error: {error}");
        Exit::Invalid
    })?;
    let policies = load_policies(dir, policy_dirs, stderr, color).map_err(|error| {
        let _ = writeln!(stderr, "error: {error}");
        Exit::Invalid
    })?;
    let planned = plan_against_cluster(&loaded, &policies, cluster, retry)
        .await
        .map_err(|error| {
            let _ = writeln!(stderr, "error: {error}");
            error.exit()
        })?;
    Ok((loaded, planned))
}

/// Runs `modelship plan`.
pub async fn run_plan(args: &PlanArgs) -> Exit {
    let mut stderr = std::io::stderr();
    let retry = RetryPolicy::default();
    let (loaded, planned) = match prepare(
        &args.dir,
        &args.policies,
        &args.cluster,
        &retry,
        &mut stderr,
    )
    .await
    {
        Ok(prepared) => prepared,
        Err(exit) => return exit,
    };
    let plan = &planned.plan;
    match args.output {
        // The pull-request comment, with GPUs, costs and diagnostics.
        OutputFormat::Markdown => print!(
            "{}",
            super::pr::markdown(&loaded, plan, &planned.live, None)
        ),
        other => print!("{}", render::render(plan, other.into(), color())),
    }
    if let Some(denied) = render::denied_text(plan) {
        let _ = writeln!(
            stderr,
            "error: {denied}: apply would leave their objects untouched and apply the other services"
        );
    }
    plan_exit(&loaded, plan)
}

/// The exit code of `plan` for a plan of a loaded repository.
pub fn plan_exit(loaded: &Loaded, plan: &Plan) -> Exit {
    if !loaded.desired.repository_valid || plan.denied().next().is_some() {
        Exit::Invalid
    } else if plan.has_changes() {
        Exit::Changes
    } else {
        Exit::Ok
    }
}

/// Runs `modelship apply`.
pub async fn run_apply(args: &ApplyArgs) -> Exit {
    let mut stderr = std::io::stderr();
    let retry = RetryPolicy::default();
    let (loaded, planned) = match prepare(
        &args.dir,
        &args.policies,
        &args.cluster,
        &retry,
        &mut stderr,
    )
    .await
    {
        Ok(prepared) => prepared,
        Err(exit) => return exit,
    };
    let Planned {
        client,
        mut kinds,
        plan,
        ..
    } = planned;
    print!("{}", render::render(&plan, args.output.into(), color()));
    let options = apply_options(args, retry);
    let report = match cluster::apply(&client, &mut kinds, &plan, &loaded.desired, &options).await {
        Ok(report) => report,
        Err(error) => {
            let _ = writeln!(stderr, "error: {error}");
            return Exit::Changes;
        }
    };
    report_apply(&report, &mut stderr);
    let mut exit = if report.is_success() {
        Exit::Ok
    } else {
        Exit::Changes
    };
    if args.wait && options.mode == ApplyMode::Apply && exit == Exit::Ok {
        exit = wait(&client, &plan, args.timeout, retry, &mut stderr).await;
    }
    if let Some(denied) = render::denied_text(&plan) {
        let _ = writeln!(
            stderr,
            "error: {denied}: their objects were left untouched; the other services were applied"
        );
        exit = Exit::Invalid;
    }
    if !loaded.desired.repository_valid {
        let _ = writeln!(
            stderr,
            "error: the repository has errors: invalid services were left untouched and nothing was pruned"
        );
        return Exit::Invalid;
    }
    exit
}

/// The apply options the flags ask for.
pub fn apply_options(args: &ApplyArgs, retry: RetryPolicy) -> ApplyOptions {
    ApplyOptions {
        mode: if args.dry_run {
            ApplyMode::DryRun
        } else {
            ApplyMode::Apply
        },
        prune: match (args.prune, args.allow_mass_prune) {
            (false, _) => PruneMode::Keep,
            (true, false) => PruneMode::Prune,
            (true, true) => PruneMode::PruneAllowMass,
        },
        create_namespaces: args.create_namespaces,
        retry,
    }
}

fn report_apply(report: &cluster::ApplyReport, out: &mut impl Write) {
    for namespace in &report.namespaces_created {
        let _ = writeln!(out, "created namespace {namespace}");
    }
    let _ = writeln!(
        out,
        "applied {} objects, deleted {}",
        report.applied.len(),
        report.deleted.len()
    );
    if !report.not_pruned.is_empty() {
        let _ = writeln!(
            out,
            "{} objects of removed services were kept: pass --prune to delete them",
            report.not_pruned.len()
        );
    }
    for failure in &report.failures {
        let _ = writeln!(out, "error: {failure}");
    }
}

/// The Deployments apply leaves in place for present services.
fn deployments(plan: &Plan) -> Vec<ObjectKey> {
    plan.services
        .iter()
        .filter(|s| s.status == ServiceStatus::Present)
        .flat_map(|s| &s.objects)
        .filter(|o| o.key.kind == "Deployment" && o.action != Action::Delete)
        .map(|o| o.key.clone())
        .collect()
}

async fn wait(
    client: &kube::Client,
    plan: &Plan,
    timeout: Duration,
    retry: RetryPolicy,
    out: &mut impl Write,
) -> Exit {
    let keys = deployments(plan);
    let options = HealthOptions {
        timeout,
        retry,
        ..HealthOptions::default()
    };
    let terminal = std::io::stderr().is_terminal();
    let mut last_ready = usize::MAX;
    let progress = |health: &[DeploymentHealth]| {
        let ready = health.iter().filter(|h| h.is_ready()).count();
        if terminal && ready != last_ready {
            eprintln!("waiting: {ready}/{} deployments ready", health.len());
            last_ready = ready;
        }
    };
    match cluster::wait_healthy(client, &keys, &options, progress).await {
        Ok(health) => {
            let _ = writeln!(out, "{} deployments ready", health.len());
            Exit::Ok
        }
        Err(error) => {
            let _ = writeln!(out, "error: {error}");
            Exit::Changes
        }
    }
}
