//! `modelship plan` and `modelship apply`: the commands that talk to a cluster.
//!
//! ```text
//! DIR, --policies DIR... ──read──> files ──engine::prepare──> Prepared (broken policy: exit 2)
//!  --kubeconfig/--context ──connect──> Client ──read_live (cluster-wide, by label)──> LiveSet
//!                         engine::namespace_labels ──> Revision
//!   plan:  engine::Run::plan_all  (the step per service, read-only) ──> Plan ──render──> stdout
//!   apply: engine::Run::apply_all (the step per service with a Writer, then prune)
//!            ──> Plan ──render──> stdout; cluster::wait_healthy (--wait)
//! ```
//!
//! The daemon calls the same step per service, so both decide alike.
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

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::Exit;
use super::advanced;
use super::output::{Color, write_diagnostics};
use crate::cluster::{
    self, ConnectOptions, DeploymentHealth, HealthOptions, Kinds, RetryPolicy, WriteMode, Writer,
};
use crate::compile::Source;
use crate::engine::{self, ApplyReport, Keep, Prepared, Revision, Run, Strategy, Verdict, rollout};
use crate::ownership::Instance;
use crate::plan::render::{self, Format};
use crate::plan::{Action, BlockReason, Detail, ObjectKey, Plan, PruneMode, ServiceStatus};
use crate::source::DirError;
use crate::spec;
use crate::state::{LiveSet, LiveState};

/// How the commands reach the cluster.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ClusterArgs {
    /// Path to the kubeconfig file (default: $KUBECONFIG, ~/.kube/config, or in-cluster).
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,
    /// The kubeconfig context to use (default: its current context).
    #[arg(long)]
    pub context: Option<String>,
    /// The modelship instance: its objects carry `modelship.dev/instance: NAME`, and it
    /// reads, heals and prunes only those (several instances can share a cluster).
    #[arg(long, env = "MODELSHIP_INSTANCE", default_value_t)]
    pub instance: Instance,
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

fn parse_duration(text: &str) -> Result<Duration, spec::UnitError> {
    text.parse::<spec::Duration>().map(|d| d.value())
}

/// Why a repository could not be prepared: a directory could not be read. The engine's
/// own findings (diagnostics, compile errors, policy problems) are not errors here.
#[derive(Debug, thiserror::Error)]
pub enum PrepareError {
    /// The repository directory could not be read.
    #[error(transparent)]
    Repository(DirError),
    /// A `--policies` directory could not be read.
    #[error(transparent)]
    Policies(DirError),
}

impl PrepareError {
    /// The label of this error in metrics.
    pub fn metric_label(&self) -> &'static str {
        match self {
            PrepareError::Repository(_) => "read_repository",
            PrepareError::Policies(_) => "read_policies",
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

/// Reads the repository at `dir` and the extra policy directories, and prepares them with
/// the engine, writing every diagnostic to `errors`. `Err` when a directory cannot be read.
pub fn prepare_dir(
    dir: &Path,
    policy_dirs: &[PathBuf],
    instance: &Instance,
    errors: &mut impl Write,
    color: Color,
) -> Result<Prepared, PrepareError> {
    prepare_dir_with(
        dir,
        policy_dirs,
        instance,
        errors,
        color,
        spec::LoadOptions::default(),
    )
}

/// [`prepare_dir`], loading the specs as `load` says (`pr comment --branch-config`: the
/// followed branch's governing settings).
pub fn prepare_dir_with(
    dir: &Path,
    policy_dirs: &[PathBuf],
    instance: &Instance,
    errors: &mut impl Write,
    color: Color,
    load: spec::LoadOptions<'_>,
) -> Result<Prepared, PrepareError> {
    let files = crate::source::read_dir(dir).map_err(PrepareError::Repository)?;
    let extra = super::policies::read_policy_dirs(policy_dirs).map_err(PrepareError::Policies)?;
    let source = Source {
        instance: instance.clone(),
        ..Source::local()
    };
    let prepared = engine::prepare_with(&files, &extra, &source, Keep::Objects, load);
    // A closed stderr leaves nobody to tell; the exit code still says what happened.
    let _ = write_diagnostics(errors, &prepared.repository.diagnostics, color);
    for line in &prepared.compile_errors {
        let _ = writeln!(errors, "{line}");
    }
    let _ = write_diagnostics(errors, &prepared.policy_diagnostics, color);
    Ok(prepared)
}

/// Whether stdout shows colours: a terminal, and `NO_COLOR` unset.
fn color() -> bool {
    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none()
}

/// A repository opened against the cluster: its revision (with the namespace labels its
/// policies see), the client, and the live state it is planned against.
pub struct Opened {
    pub revision: Revision,
    pub client: kube::Client,
    pub live: LiveSet,
    /// Who holds the objects a plan creates.
    pub owners: engine::ClusterOwners,
}

/// A repository planned against the cluster, read-only.
pub struct Planned {
    pub revision: Revision,
    pub client: kube::Client,
    pub plan: Plan,
    pub live: LiveSet,
    /// The canary rollouts advanced for this plan.
    pub rollouts: rollout::RolloutReport,
}

/// Why a plan could not be made.
#[derive(Debug, thiserror::Error)]
enum PlanFailure {
    /// The cluster could not be reached or read (exit 3).
    #[error(transparent)]
    Cluster(#[from] cluster::Error),
    /// The plan could not be made: a compiler bug (exit 1), or a policy that could not be
    /// evaluated (exit 2).
    #[error(transparent)]
    Engine(#[from] engine::Error),
}

impl PlanFailure {
    fn exit(&self) -> Exit {
        match self {
            PlanFailure::Cluster(_) => Exit::Cluster,
            PlanFailure::Engine(engine::Error::Plan(_)) => Exit::Failure,
            PlanFailure::Engine(engine::Error::Policy(_)) => Exit::Invalid,
        }
    }
}

/// Prepares the repository and reads the cluster: every object labelled
/// managed-by=modelship, in every namespace (one cluster-wide LIST per kind; the daemon's
/// watch cache sees the same objects), and the labels of the namespaces its policies see
/// (`engine::namespace_labels`, as the daemon and pull requests read them). `Err` is the
/// exit code of a failure, already reported on `stderr`.
pub async fn open(
    dir: &Path,
    policy_dirs: &[PathBuf],
    cluster_args: &ClusterArgs,
    retry: &RetryPolicy,
    stderr: &mut impl Write,
) -> Result<Opened, Exit> {
    let load = spec::LoadOptions::default();
    open_with(dir, policy_dirs, cluster_args, retry, stderr, load).await
}

/// [`open`], loading the specs as `load` says.
pub async fn open_with(
    dir: &Path,
    policy_dirs: &[PathBuf],
    cluster_args: &ClusterArgs,
    retry: &RetryPolicy,
    stderr: &mut impl Write,
    load: spec::LoadOptions<'_>,
) -> Result<Opened, Exit> {
    let color = Color::for_stderr();
    let instance = &cluster_args.instance;
    let mut prepared =
        prepare_dir_with(dir, policy_dirs, instance, stderr, color, load).map_err(|error| {
            let _ = writeln!(stderr, "error: {error}");
            Exit::Invalid
        })?;
    if prepared.policies_broken() {
        let _ = writeln!(
            stderr,
            "error: a policy file has errors: nothing was planned or applied"
        );
        return Err(Exit::Invalid);
    }
    let options = ConnectOptions {
        kubeconfig: cluster_args.kubeconfig.clone(),
        context: cluster_args.context.clone(),
    };
    let connected = async {
        let client = cluster::connect(&options).await?;
        let mut kinds = Kinds::new(client.clone(), *retry);
        let live =
            cluster::read_live(&client, &mut kinds, &prepared.desired, retry, instance).await?;
        let labels = engine::namespace_labels(&client, &prepared, live.services(), retry).await?;
        Ok::<_, cluster::Error>((client, live, labels))
    }
    .await;
    let (client, live, labels) = connected.map_err(|error| {
        let _ = writeln!(stderr, "error: {error}");
        PlanFailure::from(error).exit()
    })?;
    // Tenants' GPU budgets count the services that run first: known only now.
    let live_services = live.services();
    let over_budget = prepared.enforce_budgets(&live_services);
    let _ = write_diagnostics(stderr, &over_budget, Color::for_stderr());
    Ok(Opened {
        revision: Revision::new(prepared, labels, &live_services),
        owners: engine::ClusterOwners::new(client.clone(), *retry),
        client,
        live,
    })
}

/// The rollout settings of the environment; `Err` is the exit code, reported.
fn settings(stderr: &mut impl Write) -> Result<rollout::Settings, Exit> {
    rollout::Settings::from_env().map_err(|error| {
        let _ = writeln!(stderr, "error: {error}");
        Exit::Invalid
    })
}

/// Reports the services whose canary rollout could not be advanced (left untouched).
fn report_blocked_rollouts(sweep: &engine::Sweep, stderr: &mut impl Write) {
    for outcome in &sweep.outcomes {
        if let Verdict::Blocked {
            reason: BlockReason::Rollout,
            message,
        } = &outcome.verdict
        {
            let _ = writeln!(
                stderr,
                "error: {message}: the objects of {} were left untouched",
                outcome.id
            );
        }
    }
}

/// Opens the repository and plans it against the cluster with its canary rollouts
/// advanced at the clock's now (see `engine::rollout`; an analysis due asks Prometheus),
/// read-only; `Err` is the exit code of a failure, already reported on `stderr`.
pub async fn prepare_and_plan(
    dir: &Path,
    policy_dirs: &[PathBuf],
    cluster_args: &ClusterArgs,
    retry: &RetryPolicy,
    stderr: &mut impl Write,
) -> Result<Planned, Exit> {
    let load = spec::LoadOptions::default();
    prepare_and_plan_with(dir, policy_dirs, cluster_args, retry, stderr, load).await
}

/// [`prepare_and_plan`], loading the specs as `load` says.
pub async fn prepare_and_plan_with(
    dir: &Path,
    policy_dirs: &[PathBuf],
    cluster_args: &ClusterArgs,
    retry: &RetryPolicy,
    stderr: &mut impl Write,
    load: spec::LoadOptions<'_>,
) -> Result<Planned, Exit> {
    let settings = settings(stderr)?;
    let opened = open_with(dir, policy_dirs, cluster_args, retry, stderr, load).await?;
    let analyst = rollout::PrometheusAnalyst::default();
    let run = Run {
        revision: &opened.revision,
        // The CLI's clock; the engine never reads one itself.
        now: jiff::Timestamp::now(),
        analyst: &analyst,
        settings,
        detail: Detail::Full,
        owners: &opened.owners,
    };
    let sweep = run.plan_all(&opened.live).await;
    if let Some(error) = sweep.failure() {
        let _ = writeln!(stderr, "error: {error}");
        return Err(match error {
            engine::Error::Plan(_) => Exit::Failure,
            engine::Error::Policy(_) => Exit::Invalid,
        });
    }
    report_blocked_rollouts(&sweep, stderr);
    Ok(Planned {
        revision: opened.revision,
        client: opened.client,
        plan: sweep.plan,
        live: opened.live,
        rollouts: sweep.rollouts,
    })
}

/// Runs `modelship plan`.
pub async fn run_plan(args: &PlanArgs) -> Exit {
    let mut stderr = std::io::stderr();
    let retry = RetryPolicy::default();
    let planned = match prepare_and_plan(
        &args.dir,
        &args.policies,
        &args.cluster,
        &retry,
        &mut stderr,
    )
    .await
    {
        Ok(planned) => planned,
        Err(exit) => return exit,
    };
    let plan = &planned.plan;
    match args.output {
        // The pull-request comment, with GPUs, costs and diagnostics.
        OutputFormat::Markdown => print!(
            "{}",
            crate::engine::comment::markdown(
                &planned.revision.prepared,
                plan,
                &planned.live,
                &planned.rollouts,
                None
            )
        ),
        // The plan's document with where each rollout it starts or moves stands.
        OutputFormat::Json => {
            let mut document = render::json::document(plan);
            document["rollouts"] = advanced::plan_json(&planned.rollouts);
            print!("{}", render::json::pretty(&document));
        }
        other => print!("{}", render::render(plan, other.into(), color())),
    }
    if args.output == OutputFormat::Text {
        print!("{}", advanced::plan_text(&planned.rollouts));
    }
    if let Some(denied) = render::denied_text(plan) {
        let _ = writeln!(
            stderr,
            "error: {denied}: apply would leave their objects untouched and apply the other services"
        );
    }
    report_conflicts(plan, "apply would write nothing of them", &mut stderr);
    plan_exit(&planned.revision.prepared, plan)
}

/// Reports the services blocked by objects they do not own, each conflict with how to
/// hand the object over; `what` says what happens to them.
fn report_conflicts(plan: &Plan, what: &str, stderr: &mut impl Write) {
    let Some(summary) = render::conflicts_text(plan) else {
        return;
    };
    let _ = writeln!(stderr, "error: {summary}: {what}");
    for service in &plan.services {
        if service.conflicts().next().is_some() {
            let _ = writeln!(
                stderr,
                "  {}: {}",
                service.id,
                crate::plan::conflict_message(service)
            );
        }
    }
}

/// True when a service is blocked by a policy or by an object it does not own: the
/// exit code of a denied service.
fn refused(plan: &Plan) -> bool {
    plan.denied().next().is_some() || render::conflicts_text(plan).is_some()
}

/// The exit code of `plan` for a plan of a prepared repository.
pub fn plan_exit(prepared: &Prepared, plan: &Plan) -> Exit {
    if !prepared.desired.repository_valid || refused(plan) {
        Exit::Invalid
    } else if plan.has_changes() {
        Exit::Failure
    } else {
        Exit::Ok
    }
}

/// Runs `modelship apply`: the engine's step over every service with writes, then prune.
/// With `--wait`, canary rollouts are driven until each settles (promoted, rolled back,
/// paused or waiting at a gate): the repository is opened and applied again whenever the
/// earliest rollout is due, within `--timeout`.
pub async fn run_apply(args: &ApplyArgs) -> Exit {
    let mut stderr = std::io::stderr();
    let retry = RetryPolicy::default();
    let deadline = tokio::time::Instant::now() + args.timeout;
    let mode = if args.dry_run {
        WriteMode::DryRun
    } else {
        WriteMode::Persist
    };
    let settings = match settings(&mut stderr) {
        Ok(settings) => settings,
        Err(exit) => return exit,
    };
    let analyst = rollout::PrometheusAnalyst::default();
    let mut round = 0;
    loop {
        let opened = open(
            &args.dir,
            &args.policies,
            &args.cluster,
            &retry,
            &mut stderr,
        );
        let opened = match opened.await {
            Ok(opened) => opened,
            Err(exit) => return exit,
        };
        let writer = Writer::new(opened.client.clone(), retry, mode);
        let run = Run {
            revision: &opened.revision,
            // The CLI's clock; the engine never reads one itself.
            now: jiff::Timestamp::now(),
            analyst: &analyst,
            settings,
            detail: Detail::Full,
            owners: &opened.owners,
        };
        let (sweep, applied) = run.apply_all(&opened.live, &writer, strategy(args)).await;
        if let Some(error) = sweep.failure() {
            let _ = writeln!(stderr, "error: {error}");
            return match error {
                engine::Error::Plan(_) => Exit::Failure,
                engine::Error::Policy(_) => Exit::Invalid,
            };
        }
        report_blocked_rollouts(&sweep, &mut stderr);
        if round == 0 || sweep.plan.has_changes() {
            print!(
                "{}",
                render::render(&sweep.plan, args.output.into(), color())
            );
        }
        let exit = match applied {
            Ok(report) => {
                report_apply(&report, &mut stderr);
                report_warnings(&sweep, &mut stderr);
                if report.is_success() {
                    Exit::Ok
                } else {
                    Exit::Failure
                }
            }
            Err(guard) => {
                let _ = writeln!(stderr, "error: {guard}");
                Exit::Failure
            }
        };
        advanced::print_advanced(&sweep.rollouts, &mut stderr);
        let settled = sweep.rollouts.settled();
        let drive_on = args.wait && mode == WriteMode::Persist && exit == Exit::Ok;
        if !drive_on || settled {
            return finish_apply(args, &opened, &sweep, exit, mode, &retry, &mut stderr).await;
        }
        round += 1;
        let now = jiff::Timestamp::now();
        let wake = advanced::next_wake(&sweep.rollouts, now);
        if tokio::time::Instant::now() + wake > deadline {
            let _ = writeln!(
                stderr,
                "error: rollouts still running after {}s (raise --timeout): run apply again or `modelship rollout status`",
                args.timeout.as_secs()
            );
            return Exit::Failure;
        }
        tokio::time::sleep(wake).await;
    }
}

/// Reports what the steps could not record of their rollouts (never fatal).
fn report_warnings(sweep: &engine::Sweep, stderr: &mut impl Write) {
    for warning in sweep.outcomes.iter().flat_map(|o| &o.warnings) {
        let _ = writeln!(stderr, "warning: {warning}");
    }
}

/// The end of `apply`: the health wait (`--wait`), and the exit code of denied or
/// invalid services and of rollouts that rolled back or paused.
async fn finish_apply(
    args: &ApplyArgs,
    opened: &Opened,
    sweep: &engine::Sweep,
    mut exit: Exit,
    mode: WriteMode,
    retry: &RetryPolicy,
    stderr: &mut impl Write,
) -> Exit {
    let plan = &sweep.plan;
    if args.wait && mode == WriteMode::Persist && exit == Exit::Ok {
        exit = wait(&opened.client, plan, args.timeout, *retry, stderr).await;
        if exit == Exit::Ok && advanced::needs_attention(&sweep.rollouts) {
            exit = Exit::Failure;
        }
    }
    if let Some(denied) = render::denied_text(plan) {
        let _ = writeln!(
            stderr,
            "error: {denied}: their objects were left untouched; the other services were applied"
        );
        exit = Exit::Invalid;
    }
    if refused(plan) {
        report_conflicts(
            plan,
            "nothing of them was written; the other services were applied",
            stderr,
        );
        exit = Exit::Invalid;
    }
    if !opened.revision.prepared.desired.repository_valid {
        let _ = writeln!(
            stderr,
            "error: the repository has errors: invalid services were left untouched and nothing was pruned"
        );
        return Exit::Invalid;
    }
    exit
}

/// The engine strategy the flags ask for.
pub fn strategy(args: &ApplyArgs) -> Strategy {
    Strategy {
        prune: match (args.prune, args.allow_mass_prune) {
            (false, _) => PruneMode::Keep,
            (true, false) => PruneMode::Guarded,
            (true, true) => PruneMode::Unguarded,
        },
        create_namespaces: args.create_namespaces,
    }
}

fn report_apply(report: &ApplyReport, out: &mut impl Write) {
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
            Exit::Failure
        }
    }
}
