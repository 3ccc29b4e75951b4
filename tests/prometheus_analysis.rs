//! Canary analysis against a real Prometheus (Debian package `prometheus`) scraping a
//! metrics endpoint the test controls: a healthy canary passes, a bad one fails, one
//! without traffic has no data, and a stopped Prometheus is an error. Then the state
//! machine drives whole rollouts on those verdicts: promoted, rolled back, paused.

mod support;

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use modelship::prometheus::{self, Prometheus};
use modelship::rollout::{
    self, AnalysisQueries, Command, Observation, Phase, RollbackReason, RolloutPlan, RolloutState,
    SeriesNames, Verdict,
};
use modelship::spec::{AnalysisQuery, AnalysisSeries, AnalysisSpec, Router};
use support::prometheus::*;
use support::wait_for;

const NS: &str = "ml";
const WINDOW: SignedDuration = SignedDuration::from_secs(10);
const HEALTHY: Traffic = Traffic {
    ok: 20,
    errors: 0,
    latency: 0.08,
};
const BROKEN: Traffic = Traffic {
    ok: 10,
    errors: 10,
    latency: 0.8,
};

fn analysis() -> AnalysisSpec {
    AnalysisSpec {
        success_rate: Some(99.0),
        latency_p99: Some("500ms".parse().unwrap()),
        min_requests: Some(20),
        failure_limit: Some(2),
        queries: vec![AnalysisQuery {
            name: "errors".to_string(),
            query: "sum(increase(http_requests_total{namespace=\"{{namespace}}\",\
                    service=\"{{service}}\",track=\"{{track}}\",code=~\"5..\"}[{{window}}]))"
                .to_string(),
            max: Some(5.0),
            min: None,
        }],
    }
}

fn queries(service: &str) -> AnalysisQueries {
    let series = SeriesNames::from(&AnalysisSeries::default());
    AnalysisQueries::build(
        Some(&analysis()),
        NS,
        service,
        Router::GatewayApi,
        &series,
        WINDOW,
    )
}

/// Steps 10, 50, 100, a gate before 50, one (fake) minute each.
fn plan() -> RolloutPlan {
    RolloutPlan {
        steps: vec![10, 50, 100],
        step_interval: SignedDuration::from_mins(1),
        gates: [50].into(),
        load_timeout: SignedDuration::from_mins(5),
        failure_limit: 2,
        inconclusive_limit: 3,
    }
}

/// Drives a rollout of `service` from its first change to where it settles, with a fake
/// clock for the machine and real analyses (at Prometheus' now) whenever it asks. The gate
/// is approved when reached. Returns the final state and the number of analyses.
async fn drive(client: &Prometheus, service: &str) -> (RolloutState, usize) {
    let plan = plan();
    let start = Timestamp::from_second(1_800_000_000).unwrap();
    let mut state = RolloutState {
        template_hash: "old".to_string(),
        ..RolloutState::default()
    };
    let mut analyses = 0;
    for tick in 0..30 {
        let now = start + SignedDuration::from_mins(tick);
        let promoting = matches!(state.phase, Phase::Promoting { .. });
        let waiting = matches!(state.phase, Phase::WaitingForGate { .. });
        let mut obs = Observation {
            now,
            revision: "r2",
            desired_hash: "new",
            stable_hash: Some(if promoting { "new" } else { "old" }),
            canary_ready: state.phase.is_active(),
            stable_ready: true,
            analysis: None,
            command: waiting.then_some(Command::Approve),
        };
        let mut advance = rollout::advance(&state, &plan, &obs);
        let measured;
        if let Some(window) = advance.analyse {
            analyses += 1;
            let q = queries(service);
            let at = Timestamp::now();
            let step = q.classify(at, window.weight, &client.observe(&q, at).await);
            measured = rollout::StepAnalysis { at: now, ..step };
            obs.analysis = Some(&measured);
            advance = rollout::advance(&state, &plan, &obs);
        }
        state = advance.state;
        let settled = matches!(
            state.phase,
            Phase::Promoted { .. } | Phase::RolledBack { .. } | Phase::Paused { .. }
        );
        if settled {
            break;
        }
    }
    (state, analyses)
}

#[tokio::test]
async fn verdicts_and_rollouts_on_a_real_prometheus() {
    let binary = match prometheus_binary() {
        Ok(binary) => binary,
        Err(why) => {
            eprintln!("skipped: {why}");
            return;
        }
    };
    let exporter = Exporter::default();
    // The stable tracks carry the opposite traffic: the queries must select the canary.
    exporter.set(NS, "healthy", "canary", Some(HEALTHY));
    exporter.set(NS, "healthy", "stable", Some(BROKEN));
    exporter.set(NS, "bad", "canary", Some(BROKEN));
    exporter.set(NS, "bad", "stable", Some(HEALTHY));
    exporter.set(NS, "idle", "stable", Some(HEALTHY));
    let target = exporter.serve().await;
    let mut prometheus = PrometheusServer::start(&binary, target).await;
    let client = Prometheus::new(&prometheus.url, Duration::from_secs(5)).unwrap();

    let requests = queries("bad").checks[0].query.clone();
    wait_for(
        "canary requests in the window",
        Duration::from_secs(60),
        || async {
            let answer = client.query(&requests, None).await;
            answer.is_ok_and(|v| v.first().is_some_and(|n| *n >= 100.0))
        },
    )
    .await;

    let at = Timestamp::now();
    let cases = [
        ("healthy", Verdict::Pass),
        ("bad", Verdict::Fail),
        ("idle", Verdict::NoData),
    ];
    for (service, expected) in cases {
        let q = queries(service);
        let step = q.classify(at, 10, &client.observe(&q, at).await);
        assert_eq!(step.verdict(), expected, "{service}: {step:#?}");
    }
    let bad = queries("bad");
    let step = bad.classify(at, 10, &client.observe(&bad, at).await);
    let value = |name: &str| {
        step.checks
            .iter()
            .find(|c| c.name == name)
            .and_then(|c| c.value)
            .unwrap()
    };
    assert!((value("successRate") - 50.0).abs() < 1.0, "{step:#?}");
    assert!(value("latencyP99") > 0.5, "{step:#?}");
    assert!(value("errors") > 5.0, "{step:#?}");
    assert!(matches!(
        client.query("sum(rate(", None).await,
        Err(prometheus::Error::BadQuery { .. })
    ));

    let (healthy, analyses) = drive(&client, "healthy").await;
    assert!(
        matches!(healthy.phase, Phase::Promoted { .. }),
        "{healthy:#?}"
    );
    assert_eq!(
        (analyses, healthy.failures),
        (3, 0),
        "one analysis per step"
    );
    let (bad, analyses) = drive(&client, "bad").await;
    assert!(
        matches!(
            bad.phase,
            Phase::RolledBack {
                reason: RollbackReason::AnalysisFailed,
                ..
            }
        ),
        "{bad:#?}"
    );
    assert_eq!(analyses, 2, "rolled back at failureLimit");
    let last = bad.last_analysis.as_ref().unwrap();
    assert!(
        last.checks
            .iter()
            .any(|c| c.verdict == Verdict::Fail && c.value.is_some())
    );
    let (idle, analyses) = drive(&client, "idle").await;
    assert!(matches!(idle.phase, Phase::Paused { .. }), "{idle:#?}");
    assert_eq!(analyses, 3, "paused after the inconclusive budget");

    prometheus.stop().await;
    let healthy = queries("healthy");
    let step = healthy.classify(at, 10, &client.observe(&healthy, at).await);
    assert_eq!(step.verdict(), Verdict::Error, "{step:#?}");
    for check in &step.checks {
        assert_eq!(check.verdict, Verdict::Error);
        let message = check.message.as_deref().unwrap_or_default();
        assert!(message.contains("unreachable"), "{message}");
    }
    let (stopped, _) = drive(&client, "healthy").await;
    assert!(
        matches!(stopped.phase, Phase::Paused { .. }),
        "held, never promoted: {stopped:#?}"
    );
}
