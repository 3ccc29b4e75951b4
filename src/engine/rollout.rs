//! Canary rollouts driven by the engine: inside a canary service's step (`step.rs`),
//! between compile and plan, the service is advanced one step of its state machine, its
//! analysis is run when the machine asks for one, and its desired objects are replaced by
//! those of the resulting state. Plan and apply then write weights, the canary Deployment and the state like any
//! other desired field (server-side apply, field manager `modelship`); a canary that is
//! no longer desired (promotion, rollback) is deleted by the same plan as any orphan.
//!
//! ```text
//! step (compiled once) ──objects at rest──▶ desired_template_hash ─────────┐
//! LiveState: stable <name> (annotations rollout, template-hash,          │
//!            rollout-command; readiness), canary <name>-canary           ▼
//!   now (the caller's clock) ──────────────────▶ rollout::advance ──analyse?──▶ Analyst
//!                                                      ▲                 (Prometheus)
//!                                                      └──── verdicts ◀──────┘
//!   state ──rollout::overlay──▶ desired objects ──▶ the step plans them
//!   after apply: record() clears the command annotation, writes one Event per transition
//! ```
//!
//! The clock is an input (`now`): the engine never reads the system clock, so tests drive
//! rollouts with a fake clock and fake verdicts ([`Analyst`]). State lives only in the
//! cluster (the annotation `modelship.dev/rollout` of the stable Deployment), so a restart
//! or a new leader resumes the same step with the time already spent.
//!
//! Decisions where SPEC.md is silent:
//! - An unreadable state annotation (edited by hand, a future format) is not trusted and
//!   not fatal: the rollout is taken as stable at the live template, so a changed template
//!   starts a fresh canary from weight 0 (never a direct replacement). The report says so.
//! - A command annotation is cleared after every apply that read it, whether the machine
//!   applied or ignored it, so a stale command never fires later. Commands are bound to the
//!   template hash of the rollout they were sent for.
//! - While no rollout runs, the recorded revision is the first one with the stable
//!   template: a commit that leaves the template alone writes nothing.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Mutex;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::PodTemplateSpec;
use serde_json::Value;

use super::Prepared;
use crate::compile::{self, Track};
use crate::meta::{ObjectKey, ServiceId};
use crate::prometheus::Prometheus;
use crate::rollout::{
    self, ANNOTATION_COMMAND, ANNOTATION_PLAN, ANNOTATION_ROLLOUT, ANNOTATION_TEMPLATE_HASH,
    AnalysisQueries, CommandOutcome, CommandRequest, Footprint, LiveStable, Observation, PhaseName,
    QueryResult, RecordedPlan, RolloutPlan, RolloutState, RolloutStatus, StepAnalysis, Transition,
};
use crate::spec::LoadedService;
use crate::state::LiveState;

#[path = "rollout_record.rs"]
mod record;
pub use record::{COMMAND_MANAGER, event_body, record, send_command, send_command_for};

/// The environment variable that shortens every canary's `stepInterval`, for tests and
/// demos only (SPEC.md's minimum of 30s holds for specs). A duration such as `2s`.
pub const TEST_STEP_INTERVAL_ENV: &str = "MODELSHIP_TEST_STEP_INTERVAL";

/// Why [`TEST_STEP_INTERVAL_ENV`] cannot be used. The text names the variable and its value.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// The value is not a duration (`2s`, `500ms`).
    #[error("{}={text}: {source}", TEST_STEP_INTERVAL_ENV)]
    Duration {
        text: String,
        source: crate::spec::UnitError,
    },
    /// The duration is too long to be a step interval.
    #[error("{}={text}: {source}", TEST_STEP_INTERVAL_ENV)]
    OutOfRange { text: String, source: jiff::Error },
}

impl SettingsError {
    /// The label of this error in metrics.
    pub fn metric_label(&self) -> &'static str {
        match self {
            SettingsError::Duration { .. } | SettingsError::OutOfRange { .. } => "rollout-settings",
        }
    }
}

/// Rollout settings of a run that do not come from the specs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Settings {
    /// Test only: replaces every canary's `stepInterval` ([`TEST_STEP_INTERVAL_ENV`]).
    pub step_interval: Option<SignedDuration>,
}

impl Settings {
    /// The settings of the environment; an unparsable [`TEST_STEP_INTERVAL_ENV`] is an
    /// error naming it.
    pub fn from_env() -> Result<Settings, SettingsError> {
        match std::env::var(TEST_STEP_INTERVAL_ENV) {
            Err(_) => Ok(Settings::default()),
            Ok(text) => Settings::with_step_interval(&text),
        }
    }

    /// The settings with a test-only step interval given as text (`2s`, `500ms`).
    pub fn with_step_interval(text: &str) -> Result<Settings, SettingsError> {
        let duration =
            text.parse::<crate::spec::Duration>()
                .map_err(|source| SettingsError::Duration {
                    text: text.to_string(),
                    source,
                })?;
        let interval = SignedDuration::try_from(duration.value()).map_err(|source| {
            SettingsError::OutOfRange {
                text: text.to_string(),
                source,
            }
        })?;
        Ok(Settings {
            step_interval: Some(interval),
        })
    }

    /// The rollout plan of a service under these settings; `None` for rolling services.
    pub fn plan(&self, svc: &LoadedService) -> Option<RolloutPlan> {
        let plan = RolloutPlan::from_spec(&svc.service.spec)?;
        Some(match self.step_interval {
            Some(interval) => plan.with_step_interval(interval),
            None => plan,
        })
    }
}

/// Runs the checks of one analysis. The engine's only way to Prometheus, so tests hand in
/// fake verdicts.
pub trait Analyst: Sync {
    /// One result per check of `queries`, in order, measured at `at`. `url` is
    /// `prometheus.url` of modelship.yaml, when set.
    fn observe(
        &self,
        url: Option<&str>,
        queries: &AnalysisQueries,
        at: Timestamp,
    ) -> impl Future<Output = Vec<QueryResult>> + Send;
}

/// Why [`PrometheusAnalyst`] has no Prometheus to ask: every check of the analysis then
/// fails with this text.
#[derive(Debug, Clone, thiserror::Error)]
pub enum AnalystError {
    /// modelship.yaml has no `prometheus.url`.
    #[error("no prometheus.url in modelship.yaml")]
    NoUrl,
    /// No client could be built for the URL.
    #[error(transparent)]
    Client(#[from] crate::prometheus::Error),
}

impl AnalystError {
    /// The label of this error in metrics.
    pub fn metric_label(&self) -> &'static str {
        match self {
            AnalystError::NoUrl => "prometheus-config",
            AnalystError::Client(e) => e.metric_label(),
        }
    }
}

/// The [`Analyst`] of production: the Prometheus of `prometheus.url`, one client per URL.
#[derive(Debug)]
pub struct PrometheusAnalyst {
    timeout: Duration,
    auth: crate::prometheus::Auth,
    clients: Mutex<BTreeMap<String, Result<Prometheus, AnalystError>>>,
}

impl Default for PrometheusAnalyst {
    fn default() -> Self {
        PrometheusAnalyst::new(crate::prometheus::DEFAULT_TIMEOUT)
    }
}

impl PrometheusAnalyst {
    /// An analyst whose every query times out after `timeout`.
    pub fn new(timeout: Duration) -> Self {
        PrometheusAnalyst::with_auth(timeout, crate::prometheus::Auth::None)
    }

    /// [`PrometheusAnalyst::new`], authenticating to Prometheus as `auth` says.
    pub fn with_auth(timeout: Duration, auth: crate::prometheus::Auth) -> Self {
        PrometheusAnalyst {
            timeout,
            auth,
            clients: Mutex::new(BTreeMap::new()),
        }
    }

    fn client(&self, url: &str) -> Result<Prometheus, AnalystError> {
        let mut clients = self
            .clients
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        clients
            .entry(url.to_string())
            .or_insert_with(|| {
                Prometheus::with_auth(url, self.timeout, self.auth.clone())
                    .map_err(AnalystError::Client)
            })
            .clone()
    }
}

impl Analyst for PrometheusAnalyst {
    fn observe(
        &self,
        url: Option<&str>,
        queries: &AnalysisQueries,
        at: Timestamp,
    ) -> impl Future<Output = Vec<QueryResult>> + Send {
        let client = match url {
            Some(url) => self.client(url),
            None => Err(AnalystError::NoUrl),
        };
        async move {
            match client {
                Ok(client) => client.observe(queries, at).await,
                Err(why) => queries
                    .checks
                    .iter()
                    .map(|_| QueryResult::Failed(why.to_string()))
                    .collect(),
            }
        }
    }
}

/// Why a canary service could not be advanced. Its objects are then left untouched.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The rollout core refused (no compiled Deployment, a template that cannot be hashed).
    #[error("rollout of {id}: {source}")]
    Rollout {
        id: ServiceId,
        #[source]
        source: rollout::Error,
    },
    /// The service's objects could not be compiled or serialized.
    #[error("rollout of {id}: {source}")]
    Compile {
        id: ServiceId,
        #[source]
        source: compile::CompileError,
    },
    /// A command was sent for a Deployment that does not exist.
    #[error("no Deployment {0}: is it a service modelship deployed?")]
    NoDeployment(ServiceId),
    /// A command was sent for a service with no rollout state.
    #[error(
        "Deployment {0} has no rollout state: it is not a canary service, or modelship has not applied it since it became one"
    )]
    NoRollout(ServiceId),
    /// A command bound to the rollout of one revision found the rollout of another.
    #[error(
        "the rollout of {id} is for revision {found}, not {expected}: the command was not sent"
    )]
    OtherRevision {
        id: ServiceId,
        /// The revision the command was sent for.
        expected: String,
        /// The revision the rollout state names (empty when it names none).
        found: String,
    },
    /// Reading or writing the cluster failed.
    #[error(transparent)]
    Cluster(#[from] crate::cluster::Error),
}

impl Error {
    /// The label of this error in metrics.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Error::Rollout { source, .. } => source.metric_label(),
            Error::Compile { .. } => "rollout-compile",
            Error::NoDeployment(_) | Error::NoRollout(_) | Error::OtherRevision { .. } => {
                "rollout-command"
            }
            Error::Cluster(e) => e.metric_label(),
        }
    }
}

/// What one advance did to one canary service.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceRollout {
    pub id: ServiceId,
    pub plan: RolloutPlan,
    /// The state read from the cluster (default when there was none).
    pub previous: RolloutState,
    /// The state written with the desired objects.
    pub state: RolloutState,
    pub transitions: Vec<Transition>,
    /// When time alone changes something next: call again then (or on a readiness change).
    pub requeue_at: Option<Timestamp>,
    pub status: RolloutStatus,
    pub footprint: Footprint,
    /// What became of a person's command.
    pub command: Option<CommandOutcome>,
    /// The command annotation found on the stable Deployment, cleared by [`record`].
    pub command_annotation: Option<String>,
    /// The analysis run by this advance, if one was due.
    pub analysis: Option<StepAnalysis>,
    /// Things people should know that did not stop the rollout (an unreadable state or
    /// command).
    pub notes: Vec<String>,
    /// The uid of the live stable Deployment, for events.
    pub stable_uid: Option<String>,
}

impl ServiceRollout {
    /// True when nothing moves without a person or a commit: stable, promoted, rolled
    /// back, paused or waiting at a gate.
    pub fn settled(&self) -> bool {
        !matches!(
            self.state.phase.name(),
            PhaseName::Starting | PhaseName::Progressing | PhaseName::Promoting
        )
    }

    /// True when this advance started a rollout (a new template reached a live service).
    pub fn starts(&self) -> bool {
        self.transitions.iter().any(|t| t.to == PhaseName::Starting)
    }

    /// True when a rollout starts or runs at this advance: what a plan reports.
    pub fn in_plan(&self) -> bool {
        self.starts() || self.state.phase.is_active()
    }
}

/// The rollouts of one run of the engine over a whole revision (`modelship plan`,
/// `apply`, a pull request's plan): what each canary service's step did.
#[derive(Debug, Default)]
pub struct RolloutReport {
    pub services: Vec<ServiceRollout>,
}

impl RolloutReport {
    /// The earliest time a rollout wants to be advanced again.
    pub fn requeue_at(&self) -> Option<Timestamp> {
        self.services.iter().filter_map(|s| s.requeue_at).min()
    }

    /// True when every rollout is settled ([`ServiceRollout::settled`]).
    pub fn settled(&self) -> bool {
        self.services.iter().all(ServiceRollout::settled)
    }
}

/// How far one advance may move a rollout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Advancing {
    /// The revision is the followed branch's (`plan`, `apply`, the daemon): time, commands
    /// and analysis move the rollout.
    #[default]
    Live,
    /// The revision is a proposal (a pull request's head): only what the change itself
    /// starts is shown. No analysis is run, no command is read, and a rollout whose
    /// template the change leaves alone stays exactly where the cluster has it.
    Proposal,
}

/// What an advance needs besides the service: the prepared revision, its revision id, the
/// clock and the analyst.
pub struct Context<'a, A> {
    pub prepared: &'a Prepared,
    /// The revision (commit) being applied.
    pub revision: &'a str,
    pub now: Timestamp,
    pub analyst: &'a A,
    pub advancing: Advancing,
}

/// Advances the canary rollout of one service whose objects at rest are `objects`
/// (compiled once by the caller, the engine's step) under `plan`: reads its state from the
/// live stable Deployment, runs the analysis the machine asks for, and returns the desired
/// objects of the new state, and what happened.
pub async fn advance<A: Analyst>(
    ctx: &Context<'_, A>,
    svc: &LoadedService,
    plan: RolloutPlan,
    mut objects: compile::ServiceObjects,
    live: &(dyn LiveState + Sync),
) -> Result<(Vec<Value>, ServiceRollout), Error> {
    let prepared = ctx.prepared;
    let config = &prepared.repository.config;
    let id = objects.id.clone();
    let rollout_error = |source| Error::Rollout {
        id: id.clone(),
        source,
    };
    let compile_error = |source| Error::Compile {
        id: id.clone(),
        source,
    };
    let desired_hash = rollout::desired_template_hash(&objects).map_err(rollout_error)?;
    let stable = live.get(&deployment_key(&id, Track::Stable));
    let canary = live.get(&deployment_key(&id, Track::Canary));
    let mut notes = Vec::new();
    let previous = stored_state(stable, &mut notes);
    let command_annotation = annotation(stable, ANNOTATION_COMMAND).map(str::to_string);
    let command = command_annotation
        .as_deref()
        .filter(|_| ctx.advancing == Advancing::Live)
        .and_then(|text| match text.parse::<CommandRequest>() {
            Ok(request) => request.for_state(&previous),
            Err(error) => {
                notes.push(format!("{ANNOTATION_COMMAND}: {error}"));
                None
            }
        });
    let mut observation = Observation {
        now: ctx.now,
        revision: ctx.revision,
        desired_hash: &desired_hash,
        stable_hash: annotation(stable, ANNOTATION_TEMPLATE_HASH),
        canary_ready: canary.is_some_and(|c| {
            is_ready(c)
                && annotation(Some(c), ANNOTATION_TEMPLATE_HASH)
                    == Some(previous.template_hash.as_str())
        }),
        stable_ready: stable.is_some_and(is_ready),
        analysis: None,
        command,
    };
    let mut advance = rollout::advance(&previous, &plan, &observation);
    if ctx.advancing == Advancing::Proposal && desired_hash == previous.template_hash {
        // The change leaves this rollout's template alone: it stays where it is.
        advance = rollout::Advance {
            state: previous.clone(),
            analyse: None,
            requeue_at: None,
            transitions: Vec::new(),
            command: None,
        };
    }
    let analysis = match advance.analyse {
        Some(_) if ctx.advancing == Advancing::Proposal => None,
        Some(window) => {
            let queries = AnalysisQueries::for_service(svc, config, window.duration());
            let url = config.spec.prometheus.as_ref().map(|p| p.url.as_str());
            let results = ctx.analyst.observe(url, &queries, window.end).await;
            Some(queries.classify(ctx.now, window.weight, &results))
        }
        None => None,
    };
    if let Some(analysis) = &analysis {
        observation.analysis = Some(analysis);
        advance = rollout::advance(&previous, &plan, &observation);
    }
    let mut state = advance.state;
    if !state.phase.is_active()
        && state.phase == previous.phase
        && state.template_hash == previous.template_hash
        && !previous.revision.is_empty()
    {
        // Nothing rolls out: keep the revision the template was first seen at, so a
        // commit that leaves the template alone writes nothing.
        state.revision.clone_from(&previous.revision);
    }
    let live_stable = stable.and_then(|l| live_template(l, &objects));
    let footprint = rollout::footprint(&svc.service.spec, config, &plan);
    rollout::overlay(
        &mut objects,
        svc,
        config,
        prepared.source(),
        &state,
        &RecordedPlan::of(&plan, &footprint),
        live_stable.as_ref(),
    )
    .map_err(rollout_error)?;
    let desired: Vec<Value> = objects
        .objects
        .iter()
        .map(compile::Object::to_json)
        .collect::<Result<_, _>>()
        .map_err(compile_error)?;
    let status = RolloutStatus::of(&state, &plan, ctx.now, Some(&footprint));
    let rollout = ServiceRollout {
        id,
        plan,
        previous,
        state,
        transitions: advance.transitions,
        requeue_at: advance.requeue_at,
        status,
        footprint,
        command: advance.command,
        command_annotation,
        analysis,
        notes,
        stable_uid: stable
            .and_then(|s| s.pointer("/metadata/uid"))
            .and_then(Value::as_str)
            .map(str::to_string),
    };
    Ok((desired, rollout))
}

/// Where each rollout stands, from the cluster alone (`modelship rollout status`): the
/// state and the plan the engine recorded on each stable Deployment of `deployments`,
/// without advancing anything. A Deployment without a rollout state is no canary service
/// and is left out; one whose state or plan is missing or unreadable is left out with a
/// note saying why (modelship records both at its next reconcile of the service).
pub fn recorded_statuses(
    deployments: &[Value],
    now: Timestamp,
) -> (Vec<(ServiceId, RolloutStatus)>, Vec<String>) {
    let mut statuses = Vec::new();
    let mut notes = Vec::new();
    for deployment in deployments {
        let Some(text) = annotation(Some(deployment), ANNOTATION_ROLLOUT) else {
            continue;
        };
        let field = |name: &str| {
            deployment
                .pointer(&format!("/metadata/{name}"))
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        let id = match ServiceId::new(field("namespace"), field("name")) {
            Ok(id) => id,
            Err(error) => {
                notes.push(format!(
                    "a Deployment with a rollout state: {error}: left out"
                ));
                continue;
            }
        };
        let recorded = annotation(Some(deployment), ANNOTATION_PLAN)
            .ok_or_else(|| format!("no {ANNOTATION_PLAN} annotation yet"))
            .and_then(|plan| RecordedPlan::from_json(plan).map_err(|e| e.to_string()));
        let state = RolloutState::from_json(text).map_err(|e| e.to_string());
        match (state, recorded) {
            (Ok(state), Ok(recorded)) => statuses.push((id, recorded.status(&state, now))),
            (Err(why), _) | (_, Err(why)) => notes.push(format!(
                "{id}: {why}: left out (modelship records the rollout at its next reconcile of the service)"
            )),
        }
    }
    statuses.sort_by(|a, b| a.0.cmp(&b.0));
    (statuses, notes)
}

/// The key of a service's Deployment of one track.
pub fn deployment_key(id: &ServiceId, track: Track) -> ObjectKey {
    ObjectKey::new(
        "apps",
        "Deployment",
        id.namespace(),
        &track.object_name(id.name()),
    )
}

fn annotation<'a>(object: Option<&'a Value>, name: &str) -> Option<&'a str> {
    object?
        .pointer("/metadata/annotations")?
        .get(name)?
        .as_str()
}

/// The state stored on the live stable Deployment. None stored: the default (stable, no
/// template known). Unreadable: stable at the live template, with a note.
fn stored_state(stable: Option<&Value>, notes: &mut Vec<String>) -> RolloutState {
    let Some(text) = annotation(stable, ANNOTATION_ROLLOUT) else {
        return RolloutState::default();
    };
    match RolloutState::from_json(text) {
        Ok(state) => state,
        Err(error) => {
            notes.push(format!(
                "{error}: taken as stable at the live template (a changed template starts a new canary)"
            ));
            RolloutState {
                template_hash: annotation(stable, ANNOTATION_TEMPLATE_HASH)
                    .unwrap_or_default()
                    .to_string(),
                ..RolloutState::default()
            }
        }
    }
}

/// A live Deployment is ready: its latest generation observed, every replica updated and
/// available.
fn is_ready(deployment: &Value) -> bool {
    let Ok(deployment) = serde_json::from_value::<Deployment>(deployment.clone()) else {
        return false;
    };
    let status = deployment.status.unwrap_or_default();
    let replicas = deployment.spec.and_then(|s| s.replicas).unwrap_or(1);
    let generation = deployment.metadata.generation.unwrap_or(0);
    status.observed_generation.unwrap_or(0) >= generation
        && status.updated_replicas.unwrap_or(0) >= replicas
        && status.available_replicas.unwrap_or(0) >= replicas
}

/// The live stable Deployment's template, projected onto the fields modelship applies (so
/// server defaults are not claimed), with its recorded template hash.
fn live_template(live: &Value, objects: &compile::ServiceObjects) -> Option<LiveStable> {
    let desired = objects.objects.iter().find_map(|o| match o {
        compile::Object::Deployment(d) if d.metadata.name.as_deref() == Some(objects.id.name()) => {
            o.to_json().ok()
        }
        _ => None,
    })?;
    let projected = crate::plan::project(live, &desired);
    let template = projected.pointer("/spec/template")?.clone();
    let template: PodTemplateSpec = serde_json::from_value(template).ok()?;
    Some(LiveStable {
        template,
        template_hash: annotation(Some(live), ANNOTATION_TEMPLATE_HASH).map(str::to_string),
    })
}

/// True when a phase change is worth a Warning event rather than a Normal one.
fn is_warning(phase: PhaseName) -> bool {
    matches!(phase, PhaseName::RolledBack | PhaseName::Paused)
}

#[cfg(test)]
#[path = "rollout_tests.rs"]
mod tests;
