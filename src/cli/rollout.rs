//! `modelship rollout status|approve|abort|retry` (what `plan` and `apply` print of the
//! rollouts they advance is `advanced.rs`'s). Every decision is the engine's (`engine::rollout`): `status` reads the
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

use jiff::Timestamp;
use serde::Serialize;

use super::Exit;
use super::cluster::ClusterArgs;
use crate::cluster::{self, ConnectOptions, RetryPolicy, WriteMode, Writer};
use crate::engine::rollout;
use crate::meta::ServiceId;
use crate::rollout::{Command, PhaseName, RolloutStatus, StepAnalysis};

use super::advanced::POLL;

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
    text.parse()
        .map_err(|_| TargetError::NotNamespaceName(text.to_string()))
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
                "{request} sent to {id} (rollout of revision {}, now {}); modelship acts on it at its next reconcile of the service (`modelship apply`, or at once under `modelship run`)",
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
        let deployments =
            stable_deployments(&client, only.as_ref(), &args.cluster.instance).await?;
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
                "{only} has no canary rollout in the cluster (not a canary service, or not \
                 deployed by modelship yet)"
            )));
        }
        let text = match args.output {
            StatusFormat::Json => {
                let shown: Vec<Shown> = statuses
                    .iter()
                    .map(|(id, rollout)| Shown {
                        namespace: id.namespace(),
                        name: id.name(),
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
/// `instance` manages outside previews.
async fn stable_deployments(
    client: &kube::Client,
    only: Option<&ServiceId>,
    instance: &crate::ownership::Instance,
) -> Result<Vec<serde_json::Value>, Exit> {
    use k8s_openapi::api::apps::v1::Deployment;
    let failed = |error: kube::Error| {
        eprintln!("error: reading Deployments: {error}");
        Exit::Cluster
    };
    let deployments: Vec<Deployment> = match only {
        Some(id) => {
            let api: kube::Api<Deployment> = kube::Api::namespaced(client.clone(), id.namespace());
            api.get_opt(id.name())
                .await
                .map_err(failed)?
                .into_iter()
                .collect()
        }
        None => {
            let api: kube::Api<Deployment> = kube::Api::all(client.clone());
            let params = kube::api::ListParams::default().labels(&instance.selector());
            api.list(&params).await.map_err(failed)?.items
        }
    };
    // A Deployment read from the API server is plain JSON: serializing it cannot fail.
    Ok(deployments
        .iter()
        .filter_map(|d| serde_json::to_value(d).ok())
        .filter(|d| only.is_some() || instance.owns(d))
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
        out += &format!("{id}: {status}\n");
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_are_namespace_slash_name() {
        assert_eq!(
            parse_target("genai/llm-chat"),
            Ok(ServiceId::new("genai", "llm-chat").unwrap())
        );
        for bad in ["llm-chat", "/x", "x/", ""] {
            assert!(parse_target(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn no_rollout_shows_no_canary_services() {
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
        let id = ServiceId::new("genai", "llm-chat").unwrap();
        assert_eq!(
            status_text(&[(id, status)]),
            "genai/llm-chat: progressing step 2/4 weight 25, 42s left\n\
             \x20 revision abc123, template 0123456789ab; failures 1/2, inconclusive 0/3; peak 20 GPUs ($139.60/h)\n\
             \x20 last analysis at weight 5 (1970-01-01T00:00:00Z):\n\
             \x20   successRate 91.5000 fail (min 99)\n"
        );
    }
}
