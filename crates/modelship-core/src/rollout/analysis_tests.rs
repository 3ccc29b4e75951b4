//! Query building per router and verdict classification.

use jiff::{SignedDuration, Timestamp};

use super::*;
use crate::spec::{AnalysisQuery, AnalysisSeries};

fn spec() -> AnalysisSpec {
    AnalysisSpec {
        success_rate: Some(99.0),
        latency_p99: Some("500ms".parse().unwrap()),
        min_requests: Some(100),
        failure_limit: Some(2),
        queries: vec![AnalysisQuery {
            name: "drift".to_string(),
            query: "max(model_drift{namespace=\"{{namespace}}\",service=\"{{ service }}\",\
                    track=\"{{track}}\"}[{{window}}])"
                .to_string(),
            max: Some(0.3),
            min: None,
        }],
    }
}

fn build(router: Router) -> AnalysisQueries {
    let series = SeriesNames::from(&AnalysisSeries::default());
    AnalysisQueries::build(
        Some(&spec()),
        "ml",
        "chat",
        router,
        &series,
        SignedDuration::from_mins(5),
    )
}

fn values(v: &[f64]) -> QueryResult {
    QueryResult::Values(v.to_vec())
}

#[test]
fn default_queries_of_the_model_server_series() {
    let q = build(Router::GatewayApi);
    let queries: Vec<&str> = q.checks.iter().map(|c| c.query.as_str()).collect();
    let sel = r#"namespace="ml",service="chat",track="canary""#;
    assert_eq!(
        queries,
        vec![
            format!("sum(increase(http_requests_total{{{sel}}}[300s]))"),
            format!(
                "100 * sum(increase(http_requests_total{{{sel},code!~\"5..\"}}[300s])) / \
                 sum(increase(http_requests_total{{{sel}}}[300s]))"
            ),
            format!(
                "histogram_quantile(0.99, sum by (le) \
                 (rate(http_request_duration_seconds_bucket{{{sel}}}[300s])))"
            ),
            format!("max(model_drift{{{sel}}}[300s])"),
        ]
    );
    assert_eq!(q.checks[2].threshold.max, Some(0.5));
    assert_eq!(q.checks[0].threshold.min, Some(100.0));
    assert_eq!(build(Router::Replicas), q, "replicas reads the same series");
}

#[test]
fn istio_queries_read_the_mesh_metrics_by_destination_workload() {
    let q = build(Router::Istio);
    let sel = r#"reporter="destination",destination_workload_namespace="ml",destination_workload="chat-canary""#;
    assert_eq!(
        q.checks[0].query,
        format!("sum(increase(istio_requests_total{{{sel}}}[300s]))")
    );
    assert!(
        q.checks[1].query.contains(&format!(
            "istio_requests_total{{{sel},response_code!~\"5..\"}}"
        )),
        "{}",
        q.checks[1].query
    );
    assert_eq!(
        q.checks[2].query,
        format!(
            "histogram_quantile(0.99, sum by (le) \
             (rate(istio_request_duration_milliseconds_bucket{{{sel}}}[300s]))) / 1000"
        )
    );
}

#[test]
fn series_names_come_from_modelship_yaml() {
    let series = SeriesNames {
        requests: "triton_requests_total".to_string(),
        status_label: "status".to_string(),
        latency: "triton_latency_seconds".to_string(),
    };
    let q = AnalysisQueries::build(
        Some(&spec()),
        "ml",
        "chat",
        Router::GatewayApi,
        &series,
        SignedDuration::from_secs(30),
    );
    assert!(q.checks[1].query.contains("triton_requests_total{"));
    assert!(q.checks[1].query.contains(r#"status!~"5..""#));
    assert!(q.checks[2].query.contains("triton_latency_seconds_bucket{"));
    assert!(q.checks[2].query.contains("[30s]"));
}

#[test]
fn without_analysis_only_requests_are_counted() {
    let series = SeriesNames::from(&AnalysisSeries::default());
    let q = AnalysisQueries::build(
        None,
        "ml",
        "chat",
        Router::Replicas,
        &series,
        SignedDuration::ZERO,
    );
    assert_eq!(q.checks.len(), 1);
    assert_eq!(q.min_requests, DEFAULT_MIN_REQUESTS);
    assert!(
        q.checks[0].query.ends_with("[1s]))"),
        "{}",
        q.checks[0].query
    );
}

#[test]
fn verdicts_of_each_kind_of_answer() {
    let q = build(Router::GatewayApi);
    let at = Timestamp::UNIX_EPOCH;
    let cases: Vec<(&str, Vec<QueryResult>, Vec<Verdict>, Verdict)> = vec![
        (
            "healthy",
            vec![
                values(&[500.0]),
                values(&[99.8]),
                values(&[0.2]),
                values(&[0.1]),
            ],
            vec![Verdict::Pass; 4],
            Verdict::Pass,
        ),
        (
            "too many errors",
            vec![
                values(&[500.0]),
                values(&[91.0]),
                values(&[0.2]),
                values(&[0.1]),
            ],
            vec![Verdict::Pass, Verdict::Fail, Verdict::Pass, Verdict::Pass],
            Verdict::Fail,
        ),
        (
            "too slow, +Inf included",
            vec![
                values(&[500.0]),
                values(&[100.0]),
                values(&[f64::INFINITY]),
                values(&[0.1]),
            ],
            vec![Verdict::Pass, Verdict::Pass, Verdict::Fail, Verdict::Pass],
            Verdict::Fail,
        ),
        (
            "fewer than minRequests: traffic checks have no data",
            vec![
                values(&[42.0]),
                values(&[50.0]),
                values(&[9.0]),
                values(&[0.1]),
            ],
            vec![
                Verdict::NoData,
                Verdict::NoData,
                Verdict::NoData,
                Verdict::Pass,
            ],
            Verdict::NoData,
        ),
        (
            "empty vectors and NaN",
            vec![values(&[]), values(&[f64::NAN]), values(&[]), values(&[])],
            vec![Verdict::NoData; 4],
            Verdict::NoData,
        ),
        (
            "Prometheus unreachable",
            vec![
                QueryResult::Failed("connection refused".to_string()),
                QueryResult::Failed("connection refused".to_string()),
            ],
            vec![Verdict::Error; 4],
            Verdict::Error,
        ),
        (
            "a custom query breaks its max on one series",
            vec![
                values(&[500.0]),
                values(&[100.0]),
                values(&[0.1]),
                values(&[0.1, 0.7]),
            ],
            vec![Verdict::Pass, Verdict::Pass, Verdict::Pass, Verdict::Fail],
            Verdict::Fail,
        ),
    ];
    for (name, results, verdicts, overall) in cases {
        let step = q.classify(at, 10, &results);
        let got: Vec<Verdict> = step.checks.iter().map(|c| c.verdict).collect();
        assert_eq!(got, verdicts, "{name}");
        assert_eq!(step.verdict(), overall, "{name}");
    }
}

#[test]
fn classified_values_keep_what_was_measured() {
    let q = build(Router::GatewayApi);
    let step = q.classify(
        Timestamp::UNIX_EPOCH,
        25,
        &[
            values(&[40.0]),
            values(&[91.0]),
            values(&[0.2]),
            values(&[0.1, 0.25]),
        ],
    );
    assert_eq!(step.weight, 25);
    assert_eq!(step.checks[0].value, Some(40.0));
    assert_eq!(
        step.checks[0].message.as_deref(),
        Some("40 requests, fewer than minRequests 100")
    );
    assert_eq!(step.checks[1].message, step.checks[0].message);
    assert_eq!(
        step.checks[3].value,
        Some(0.25),
        "the value nearest to the max"
    );
}

#[test]
fn templates_fill_known_placeholders_only() {
    let render = |q| render_template(q, "ml", "chat", Track::Canary, "60s");
    assert_eq!(
        render("x{a=\"{{namespace}}\",b=\"{{ service }}\",c=\"{{track}}\"}[{{window}}]"),
        "x{a=\"ml\",b=\"chat\",c=\"canary\"}[60s]"
    );
    assert_eq!(render("{{other}} {{service"), "{{other}} {{service");
    assert_eq!(render("no placeholders"), "no placeholders");
}

#[test]
fn a_loaded_service_brings_its_namespace_router_and_series() {
    use crate::compile::testutil::{cpu_service, loaded};
    let mut svc = cpu_service("chat");
    svc.metadata.namespace = Some("ml".to_string());
    svc.spec.rollout = Some(crate::spec::RolloutSpec {
        strategy: crate::spec::Strategy::Canary,
        steps: vec![100],
        step_interval: None,
        manual_gates: Vec::new(),
        analysis: Some(spec()),
    });
    let mut config = crate::spec::RepositoryConfig::default();
    config.spec.analysis.requests.metric = "served_total".to_string();
    let q = AnalysisQueries::for_service(&loaded(svc), &config, SignedDuration::from_mins(5));
    assert_eq!(q.checks.len(), 4);
    assert_eq!(
        q.checks[0].query,
        r#"sum(increase(served_total{namespace="ml",service="chat",track="canary"}[300s]))"#
    );
}
