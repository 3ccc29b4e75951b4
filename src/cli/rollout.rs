//! `modelship rollout status|approve|abort|retry`, and what `plan` and `apply` print of
//! canary rollouts. Every decision is the engine's (`engine::rollout`): `status` reads the
//! state the engine stored on the stable Deployments, the commands write the command
//! annotation through `engine::rollout::send_command`, which the engine reads at its next
//! advance of the service (at once under `modelship run`, at the next `modelship apply`
//! otherwise).
//!
//! ```text
//! status [NS/NAME] [--watch] [-o json]
//!     cluster: the stable Deployments (one GET, or one LIST of modelship's)
//!       ──engine::rollout::recorded_statuses(now)──▶ table | JSON
//!       (the state and the plan the engine records on each: no checkout needed)
//!     --watch: redraw every 2s until every rollout shown is settled
//! approve|abort|retry NS/NAME ──engine::rollout::send_command──▶ annotation
//! ```

use std::io::{IsTerminal, Write};
use std::time::Duration;

use jiff::Timestamp;
use serde::Serialize;

use super::Exit;
use super::cluster::ClusterArgs;
use crate::cluster::{self, ConnectOptions, RetryPolicy, WriteMode, Writer};
use crate::engine::rollout::{self, RolloutReport};
use crate::meta::ServiceId;
use crate::rollout::{Command, PhaseName, RolloutStatus, StepAnalysis};

/// How often `--watch` redraws, and `apply --wait` looks at rollouts waiting on readiness.
const POLL: Duration = Duration::from_secs(2);

/// `modelship rollout ...`.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum RolloutCommand {
    /// Where each canary rollout stands: phase, step, weight, time left, the last
    /// verdicts with their values and thresholds, peak GPUs.
    Status(StatusArgs),
    /// Let a rollout waiting at a manual gate move on.
    Approve(TargetArgs),
    /// Roll a running or paused rollout back now (not once promotion has begun).
    Abort(TargetArgs),
    /// Try a rolled-back template again, or resume a paused rollout.
    Retry(TargetArgs),
}

/// `rollout status [NAMESPACE/NAME]`.
#[derive(Debug, Clone, clap::Args)]
pub struct StatusArgs {
    /// One service; every canary service in the cluster when absent.
    pub target: Option<String>,
    /// Redraw every 2 seconds until every rollout shown is settled (promoted, rolled
    /// back, paused, waiting at a gate, or stable).
    #[arg(long)]
    pub watch: bool,
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value_t)]
    pub output: StatusFormat,
    #[command(flatten)]
    pub cluster: ClusterArgs,
}

/// `-o text|json` of `rollout status`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum StatusFormat {
    #[default]
    Text,
    Json,
}

/// `rollout approve|abort|retry NAMESPACE/NAME`.
#[derive(Debug, Clone, clap::Args)]
pub struct TargetArgs {
    /// The service, as NAMESPACE/NAME.
    pub target: String,
    #[command(flatten)]
    pub cluster: ClusterArgs,
}

/// Runs a `rollout` command.
pub async fn run(command: &RolloutCommand) -> Exit {
    match command {
        RolloutCommand::Status(args) => run_status(args).await,
        RolloutCommand::Approve(args) => run_command(args, Command::Approve).await,
        RolloutCommand::Abort(args) => run_command(args, Command::Abort).await,
        RolloutCommand::Retry(args) => run_command(args, Command::Retry).await,
    }
}

/// A target of a `rollout` command that names no service.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    /// Not two non-empty parts around a `/`.
    #[error("`{0}` is not NAMESPACE/NAME")]
    NotNamespaceName(String),
}

impl TargetError {
    /// The label of this error in metrics.
    pub fn metric_label(&self) -> &'static str {
        match self {
            TargetError::NotNamespaceName(_) => "target",
        }
    }
}

/// `NAMESPACE/NAME` as a service id.
fn parse_target(text: &str) -> Result<ServiceId, TargetError> {
    match text.split_once('/') {
        Some((namespace, name)) if !namespace.is_empty() && !name.is_empty() => {
            Ok((namespace.to_string(), name.to_string()))
        }
        _ => Err(TargetError::NotNamespaceName(text.to_string())),
    }
}

async fn connect(args: &ClusterArgs) -> Result<kube::Client, Exit> {
    let options = ConnectOptions {
        kubeconfig: args.kubeconfig.clone(),
        context: args.context.clone(),
    };
    cluster::connect(&options).await.map_err(|error| {
        eprintln!("error: {error}");
        Exit::Cluster
    })
}

/// Reports an input error on stderr: exit 2.
fn invalid(error: impl std::fmt::Display) -> Exit {
    eprintln!("error: {error}");
    Exit::Invalid
}

async fn run_command(args: &TargetArgs, command: Command) -> Exit {
    match send(args, command).await {
        Ok(exit) | Err(exit) => exit,
    }
}

async fn send(args: &TargetArgs, command: Command) -> Result<Exit, Exit> {
    let id = parse_target(&args.target).map_err(invalid)?;
    let client = connect(&args.cluster).await?;
    let writer = Writer::new(client, RetryPolicy::default(), WriteMode::Persist);
    match rollout::send_command(&writer, &id, command).await {
        Ok((request, state)) => {
            println!(
                "{request} sent to {}/{} (rollout of revision {}, now {}); modelship acts on it at its next reconcile of the service (`modelship apply`, or at once under `modelship run`)",
                id.0,
                id.1,
                state.revision,
                state.phase.name().as_str()
            );
            Ok(Exit::Ok)
        }
        Err(rollout::Error::Cluster(error)) => {
            eprintln!("error: {error}");
            Err(Exit::Cluster)
        }
        Err(error) => {
            eprintln!("error: {error}");
            Err(Exit::Failure)
        }
    }
}

/// One service's rollout in `rollout status -o json`.
#[derive(Debug, Serialize)]
struct Shown<'a> {
    namespace: &'a str,
    name: &'a str,
    rollout: &'a RolloutStatus,
}

async fn run_status(args: &StatusArgs) -> Exit {
    match status(args).await {
        Ok(exit) | Err(exit) => exit,
    }
}

async fn status(args: &StatusArgs) -> Result<Exit, Exit> {
    let only = args
        .target
        .as_deref()
        .map(parse_target)
        .transpose()
        .map_err(invalid)?;
    let client = connect(&args.cluster).await?;
    let redraw = args.watch && std::io::stdout().is_terminal();
    let mut said = std::collections::BTreeSet::new();
    loop {
        let deployments = stable_deployments(&client, only.as_ref()).await?;
        let (statuses, notes) = rollout::recorded_statuses(&deployments, Timestamp::now());
        for note in notes {
            if said.insert(note.clone()) {
                eprintln!("note: {note}");
            }
        }
        if let Some(only) = &only
            && statuses.is_empty()
        {
            return Err(invalid(format!(
                "{}/{} has no canary rollout in the cluster (not a canary service, or not \
                 deployed by modelship yet)",
                only.0, only.1
            )));
        }
        let text = match args.output {
            StatusFormat::Json => {
                let shown: Vec<Shown> = statuses
                    .iter()
                    .map(|(id, rollout)| Shown {
                        namespace: &id.0,
                        name: &id.1,
                        rollout,
                    })
                    .collect();
                // Plain data: serializing it cannot fail.
                serde_json::to_string_pretty(&shown).unwrap_or_default() + "\n"
            }
            StatusFormat::Text => status_text(&statuses),
        };
        if redraw {
            print!("\x1b[H\x1b[2J");
        }
        print!("{text}");
        let _ = std::io::stdout().flush();
        let settled = statuses.iter().all(|(_, s)| is_settled(s.phase));
        if !args.watch || settled {
            let attention = statuses
                .iter()
                .any(|(_, s)| matches!(s.phase, PhaseName::RolledBack | PhaseName::Paused));
            return Ok(if args.watch && attention {
                Exit::Failure
            } else {
                Exit::Ok
            });
        }
        tokio::time::sleep(POLL).await;
    }
}

/// The stable Deployment of `only` (none when it does not exist), or every Deployment
/// modelship manages outside previews.
async fn stable_deployments(
    client: &kube::Client,
    only: Option<&ServiceId>,
) -> Result<Vec<serde_json::Value>, Exit> {
    use k8s_openapi::api::apps::v1::Deployment;
    let failed = |error: kube::Error| {
        eprintln!("error: reading Deployments: {error}");
        Exit::Cluster
    };
    let deployments: Vec<Deployment> = match only {
        Some((namespace, name)) => {
            let api: kube::Api<Deployment> = kube::Api::namespaced(client.clone(), namespace);
            api.get_opt(name)
                .await
                .map_err(failed)?
                .into_iter()
                .collect()
        }
        None => {
            let api: kube::Api<Deployment> = kube::Api::all(client.clone());
            let params = kube::api::ListParams::default().labels(crate::meta::MAIN_SELECTOR);
            api.list(&params).await.map_err(failed)?.items
        }
    };
    // A Deployment read from the API server is plain JSON: serializing it cannot fail.
    Ok(deployments
        .iter()
        .filter_map(|d| serde_json::to_value(d).ok())
        .collect())
}

fn is_settled(phase: PhaseName) -> bool {
    !matches!(
        phase,
        PhaseName::Starting | PhaseName::Progressing | PhaseName::Promoting
    )
}

/// The text of `rollout status`: a block per service.
pub fn status_text(statuses: &[(ServiceId, RolloutStatus)]) -> String {
    if statuses.is_empty() {
        return "no canary services\n".to_string();
    }
    let mut out = String::new();
    for (id, status) in statuses {
        out += &format!("{}/{}: {status}\n", id.0, id.1);
        let short: String = status.template_hash.chars().take(12).collect();
        out += &format!(
            "  revision {}, template {short}; failures {}/{}, inconclusive {}/{}",
            if status.revision.is_empty() {
                "-"
            } else {
                &status.revision
            },
            status.failures,
            status.failure_limit,
            status.inconclusive,
            status.inconclusive_limit
        );
        if let Some(gpus) = status.peak_gpus.filter(|g| *g > 0) {
            out += &format!("; peak {gpus} GPUs");
            if let Some(cost) = status.peak_hourly_cost {
                out += &format!(" (${cost:.2}/h)");
            }
        }
        out += "\n";
        if let Some(analysis) = &status.last_analysis {
            out += &analysis_text(analysis);
        }
    }
    out
}

/// The last analysis, one line per check: `successRate 99.9 pass (min 99.5)`.
fn analysis_text(analysis: &StepAnalysis) -> String {
    let mut out = format!(
        "  last analysis at weight {} ({}):\n",
        analysis.weight, analysis.at
    );
    for check in &analysis.checks {
        let value = check
            .value
            .map_or_else(|| "-".to_string(), |v| format!("{v:.4}"));
        let bound = match (check.threshold.min, check.threshold.max) {
            (Some(min), Some(max)) => format!("min {min}, max {max}"),
            (Some(min), None) => format!("min {min}"),
            (None, Some(max)) => format!("max {max}"),
            (None, None) => "no bound".to_string(),
        };
        out += &format!(
            "    {} {value} {} ({bound})",
            check.name,
            check.verdict.as_str()
        );
        if let Some(message) = &check.message {
            out += &format!(": {message}");
        }
        out += "\n";
    }
    out
}

/// What `apply` says of the rollouts it advanced: where each stands and what changed.
pub fn print_advanced(report: &RolloutReport, out: &mut impl Write) {
    for rollout in &report.services {
        let (namespace, name) = &rollout.id;
        for transition in &rollout.transitions {
            let _ = writeln!(out, "rollout {namespace}/{name}: {}", transition.message);
        }
        if let Some(crate::rollout::CommandOutcome::Ignored(command, why)) = &rollout.command {
            let _ = writeln!(
                out,
                "rollout {namespace}/{name}: command {command:?} ignored: {why}"
            );
        }
        for note in &rollout.notes {
            let _ = writeln!(out, "warning: rollout {namespace}/{name}: {note}");
        }
        if rollout.state.phase.is_active() || !rollout.transitions.is_empty() {
            let _ = writeln!(out, "rollout {namespace}/{name}: {}", rollout.status);
        }
    }
}

/// What `plan` says of canary services whose template changes: the steps and gates, the
/// interval, and the peak GPUs and hourly cost during the rollout.
pub fn plan_text(report: &RolloutReport) -> String {
    let mut out = String::new();
    for rollout in &report.services {
        if !rollout.in_plan() {
            continue;
        }
        let plan = &rollout.plan;
        let steps: Vec<String> = plan
            .steps
            .iter()
            .map(|w| {
                if plan.gates.contains(w) {
                    format!("[approve] {w}%")
                } else {
                    format!("{w}%")
                }
            })
            .collect();
        let (namespace, name) = &rollout.id;
        out += &format!(
            "Canary {namespace}/{name}: {} ({}), each step {}s then analysed\n",
            steps.join(" -> "),
            rollout.status,
            plan.step_interval.as_secs()
        );
        let footprint = &rollout.footprint;
        if footprint.peak_gpus > 0 {
            out += &format!(
                "  peak {} GPUs ({} per pod)",
                footprint.peak_gpus, footprint.gpus_per_pod
            );
            if let Some(cost) = footprint.peak_hourly_cost {
                out += &format!(", ${cost:.2}/h at the peak");
            }
            out += "\n";
        }
    }
    out
}

/// The `rollouts` of `plan -o json`: the canary services whose rollout the plan starts
/// or moves, as `plan_text` lists them (schema in `plan::render::json`).
pub fn plan_json(report: &RolloutReport) -> serde_json::Value {
    let rollouts: Vec<serde_json::Value> = report
        .services
        .iter()
        .filter(|rollout| rollout.in_plan())
        .map(|rollout| {
            let plan = &rollout.plan;
            serde_json::json!({
                "namespace": rollout.id.0,
                "name": rollout.id.1,
                "steps": plan.steps,
                "gates": plan.gates,
                "stepIntervalSeconds": plan.step_interval.as_secs(),
                "loadTimeoutSeconds": plan.load_timeout.as_secs(),
                "failureLimit": plan.failure_limit,
                "inconclusiveLimit": plan.inconclusive_limit,
                "status": rollout.status,
                "footprint": rollout.footprint,
            })
        })
        .collect();
    serde_json::Value::Array(rollouts)
}

/// How long `apply --wait` sleeps before advancing again: until the earliest rollout is
/// due, or [`POLL`] while one waits on readiness (starting, promoting).
pub fn next_wake(report: &RolloutReport, now: Timestamp) -> Duration {
    let waiting_on_readiness = report.services.iter().any(|s| {
        matches!(
            s.state.phase.name(),
            PhaseName::Starting | PhaseName::Promoting
        )
    });
    let due = report
        .requeue_at()
        .map(|at| at.duration_since(now))
        .and_then(|d| Duration::try_from(d).ok())
        .unwrap_or(POLL);
    let wake = if waiting_on_readiness {
        due.min(POLL)
    } else {
        due
    };
    wake.max(Duration::from_millis(100))
}

/// True when a rollout rolled back or paused: `apply --wait` exits 1 then.
pub fn needs_attention(report: &RolloutReport) -> bool {
    report.services.iter().any(|s| {
        matches!(
            s.state.phase.name(),
            PhaseName::RolledBack | PhaseName::Paused
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_are_namespace_slash_name() {
        assert_eq!(
            parse_target("genai/llm-chat"),
            Ok(("genai".to_string(), "llm-chat".to_string()))
        );
        for bad in ["llm-chat", "/x", "x/", ""] {
            assert!(parse_target(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn an_empty_report_wakes_after_the_poll_and_needs_nothing() {
        let report = RolloutReport::default();
        assert_eq!(next_wake(&report, Timestamp::UNIX_EPOCH), POLL);
        assert!(!needs_attention(&report));
        assert_eq!(plan_text(&report), "");
        assert_eq!(status_text(&[]), "no canary services\n");
    }

    #[test]
    fn status_text_shows_the_step_the_counts_the_verdicts_and_the_peak() {
        use crate::rollout::{CheckResult, Threshold, Verdict};
        let status = RolloutStatus {
            phase: PhaseName::Progressing,
            revision: "abc123".into(),
            template_hash: "0123456789abcdef".into(),
            step: Some(2),
            steps: 4,
            weight: Some(25),
            seconds_left: Some(42),
            waiting_for: None,
            reason: None,
            failures: 1,
            failure_limit: 2,
            inconclusive: 0,
            inconclusive_limit: 3,
            last_analysis: Some(StepAnalysis {
                at: Timestamp::UNIX_EPOCH,
                weight: 5,
                checks: vec![CheckResult {
                    name: "successRate".into(),
                    verdict: Verdict::Fail,
                    value: Some(91.5),
                    threshold: Threshold {
                        min: Some(99.0),
                        max: None,
                    },
                    message: None,
                }],
            }),
            peak_gpus: Some(20),
            peak_hourly_cost: Some(139.6),
        };
        let id = ("genai".to_string(), "llm-chat".to_string());
        assert_eq!(
            status_text(&[(id, status)]),
            "genai/llm-chat: progressing step 2/4 weight 25, 42s left\n\
             \x20 revision abc123, template 0123456789ab; failures 1/2, inconclusive 0/3; peak 20 GPUs ($139.60/h)\n\
             \x20 last analysis at weight 5 (1970-01-01T00:00:00Z):\n\
             \x20   successRate 91.5000 fail (min 99)\n"
        );
    }
}
