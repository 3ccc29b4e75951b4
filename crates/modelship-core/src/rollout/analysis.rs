//! Canary analysis without I/O: the PromQL of each check of a step ([`AnalysisQueries`]),
//! and the verdict of each check from the values Prometheus returned
//! ([`AnalysisQueries::classify`]). The engine runs the queries through `metrics`.
//!
//! Default queries, over the window `W` (the step's duration, in seconds) and the canary
//! track of service `S` in namespace `N`:
//!
//! | check | istio router | other routers (series names from modelship.yaml `analysis`) |
//! |---|---|---|
//! | requests | `sum(increase(istio_requests_total{reporter="destination",destination_workload_namespace="N",destination_workload="S-canary"}[W]))` | `sum(increase(http_requests_total{namespace="N",service="S",track="canary"}[W]))` |
//! | successRate (%) | 100 × the same with `response_code!~"5.."` / requests | 100 × the same with `code!~"5.."` / requests |
//! | latencyP99 (s) | `histogram_quantile(0.99, sum by (le) (rate(istio_request_duration_milliseconds_bucket{…}[W]))) / 1000` | `histogram_quantile(0.99, sum by (le) (rate(http_request_duration_seconds_bucket{…}[W])))` |
//!
//! Verdicts: a query that failed is an error; an empty vector or only NaN is no data;
//! fewer requests than `minRequests` makes successRate and latencyP99 no data too (custom
//! queries are judged on their own); otherwise the value against its threshold.

use jiff::{SignedDuration, Timestamp};

use super::plan::DEFAULT_MIN_REQUESTS;
use super::verdict::{CheckResult, StepAnalysis, Threshold, Verdict};
use crate::compile::{Track, router_of};
use crate::spec::{AnalysisSeries, AnalysisSpec, LoadedService, RepositoryConfig, Router};

/// The series names the default queries of non-Istio routers read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeriesNames {
    /// A request counter.
    pub requests: String,
    /// Its status-code label.
    pub status_label: String,
    /// A latency histogram in seconds, without `_bucket`.
    pub latency: String,
}

impl From<&AnalysisSeries> for SeriesNames {
    fn from(series: &AnalysisSeries) -> Self {
        SeriesNames {
            requests: series.requests.metric.clone(),
            status_label: series.requests.status_label.clone(),
            latency: series.latency.metric.clone(),
        }
    }
}

/// What a check measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckKind {
    /// Requests in the window; below `minRequests` the traffic checks have no data.
    Requests,
    /// Percent of non-5xx responses.
    SuccessRate,
    /// p99 latency in seconds.
    LatencyP99,
    /// A query of `analysis.queries`.
    Custom,
}

/// One query of a step's analysis and the bound its value must respect.
#[derive(Debug, Clone, PartialEq)]
pub struct Check {
    /// `requests`, `successRate`, `latencyP99`, or the custom query's name.
    pub name: String,
    pub kind: CheckKind,
    /// PromQL for an instant query at the end of the window.
    pub query: String,
    pub threshold: Threshold,
}

/// What Prometheus answered to one query, as the engine hands it in.
#[derive(Debug, Clone, PartialEq)]
pub enum QueryResult {
    /// The sample values of the vector (one for a scalar); empty for an empty vector.
    Values(Vec<f64>),
    /// The query could not be answered: Prometheus unreachable, a broken query...
    Failed(String),
}

/// Every check of one step, in order: requests first, then the checks of the spec.
#[derive(Debug, Clone, PartialEq)]
pub struct AnalysisQueries {
    pub min_requests: u64,
    pub checks: Vec<Check>,
}

/// The names of the checks that `analysis` compiles to.
const REQUESTS: &str = "requests";
const SUCCESS_RATE: &str = "successRate";
const LATENCY_P99: &str = "latencyP99";

impl AnalysisQueries {
    /// The queries of a loaded service over a window: its `rollout.analysis`, namespace
    /// and router, and the series names of modelship.yaml.
    pub fn for_service(
        svc: &LoadedService,
        config: &RepositoryConfig,
        window: SignedDuration,
    ) -> AnalysisQueries {
        let spec = &svc.service.spec;
        AnalysisQueries::build(
            spec.rollout.as_ref().and_then(|r| r.analysis.as_ref()),
            svc.namespace(),
            svc.name(),
            router_of(spec, config),
            &SeriesNames::from(&config.spec.analysis),
            window,
        )
    }

    /// The queries of the canary track of service `name` over a window.
    pub fn build(
        analysis: Option<&AnalysisSpec>,
        namespace: &str,
        name: &str,
        router: Router,
        series: &SeriesNames,
        window: SignedDuration,
    ) -> AnalysisQueries {
        let range = format!("{}s", window.as_secs().max(1));
        let min_requests = analysis
            .and_then(|a| a.min_requests)
            .unwrap_or(DEFAULT_MIN_REQUESTS);
        let q = Queries::new(router, namespace, name, series, &range);
        let mut checks = vec![Check {
            name: REQUESTS.to_string(),
            kind: CheckKind::Requests,
            query: q.requests(),
            threshold: bound(Some(min_requests as f64), None),
        }];
        let Some(analysis) = analysis else {
            return AnalysisQueries {
                min_requests,
                checks,
            };
        };
        if let Some(rate) = analysis.success_rate {
            checks.push(Check {
                name: SUCCESS_RATE.to_string(),
                kind: CheckKind::SuccessRate,
                query: q.success_rate(),
                threshold: bound(Some(rate), None),
            });
        }
        if let Some(latency) = &analysis.latency_p99 {
            checks.push(Check {
                name: LATENCY_P99.to_string(),
                kind: CheckKind::LatencyP99,
                query: q.latency_p99(),
                threshold: bound(None, Some(latency.value().as_secs_f64())),
            });
        }
        for custom in &analysis.queries {
            checks.push(Check {
                name: custom.name.clone(),
                kind: CheckKind::Custom,
                query: render_template(&custom.query, namespace, name, Track::Canary, &range),
                threshold: bound(custom.min, custom.max),
            });
        }
        AnalysisQueries {
            min_requests,
            checks,
        }
    }

    /// The verdicts of the checks from the query results, in the order of `checks` (a
    /// missing result is an error). `at` is the end of the window, `weight` the canary's.
    pub fn classify(&self, at: Timestamp, weight: u32, results: &[QueryResult]) -> StepAnalysis {
        let mut checks: Vec<CheckResult> = self
            .checks
            .iter()
            .enumerate()
            .map(|(i, check)| judge(check, results.get(i)))
            .collect();
        let scarce = checks.iter().zip(&self.checks).find_map(|(result, check)| {
            (check.kind == CheckKind::Requests && result.verdict == Verdict::NoData)
                .then(|| result.message.clone())
        });
        if let Some(why) = scarce {
            for (result, check) in checks.iter_mut().zip(&self.checks) {
                let traffic = matches!(check.kind, CheckKind::SuccessRate | CheckKind::LatencyP99);
                if traffic && result.verdict != Verdict::Error {
                    result.verdict = Verdict::NoData;
                    result.message.clone_from(&why);
                }
            }
        }
        StepAnalysis { at, weight, checks }
    }
}

fn bound(min: Option<f64>, max: Option<f64>) -> Threshold {
    Threshold { min, max }
}

/// The verdict of one check.
fn judge(check: &Check, result: Option<&QueryResult>) -> CheckResult {
    let verdict = |verdict, value, message: Option<String>| CheckResult {
        name: check.name.clone(),
        verdict,
        value,
        threshold: check.threshold,
        message,
    };
    let values = match result {
        None => return verdict(Verdict::Error, None, Some("no result".to_string())),
        Some(QueryResult::Failed(message)) => {
            return verdict(Verdict::Error, None, Some(message.clone()));
        }
        Some(QueryResult::Values(values)) => values,
    };
    let numbers: Vec<f64> = values.iter().copied().filter(|v| !v.is_nan()).collect();
    if numbers.is_empty() {
        let why = if values.is_empty() {
            "empty result"
        } else {
            "NaN"
        };
        return verdict(Verdict::NoData, None, Some(why.to_string()));
    }
    if check.kind == CheckKind::Requests {
        let total: f64 = numbers.iter().sum();
        return if check.threshold.holds(total) {
            verdict(Verdict::Pass, Some(total), None)
        } else {
            let min = check.threshold.min.unwrap_or_default();
            let why = format!("{total} requests, fewer than minRequests {min}");
            verdict(Verdict::NoData, Some(total), Some(why))
        };
    }
    // The worst value speaks for the vector: the first that breaks the bound, else the
    // one nearest to it.
    match numbers.iter().find(|v| !check.threshold.holds(**v)) {
        Some(bad) => verdict(Verdict::Fail, Some(*bad), None),
        None => {
            let nearest = if check.threshold.max.is_some() {
                numbers.iter().copied().fold(f64::MIN, f64::max)
            } else {
                numbers.iter().copied().fold(f64::MAX, f64::min)
            };
            verdict(Verdict::Pass, Some(nearest), None)
        }
    }
}

/// Fills the placeholders of a custom query: `{{namespace}}`, `{{service}}`, `{{track}}`
/// and `{{window}}` (the step's duration as a PromQL range, e.g. `300s`). Spaces inside
/// the braces are allowed (`{{ service }}`); other text is left as written.
pub fn render_template(
    query: &str,
    namespace: &str,
    service: &str,
    track: Track,
    window: &str,
) -> String {
    let mut out = String::with_capacity(query.len());
    let mut rest = query;
    while let Some(open) = rest.find("{{") {
        out.push_str(&rest[..open]);
        let after = &rest[open + 2..];
        let Some(close) = after.find("}}") else {
            out.push_str(&rest[open..]);
            return out;
        };
        let value = match after[..close].trim() {
            "namespace" => Some(namespace),
            "service" => Some(service),
            "track" => Some(track.as_str()),
            "window" => Some(window),
            _ => None,
        };
        match value {
            Some(value) => out.push_str(value),
            None => out.push_str(&rest[open..open + 2 + close + 2]),
        }
        rest = &after[close + 2..];
    }
    out.push_str(rest);
    out
}

/// The default queries of one router.
struct Queries {
    /// The request counter.
    requests: String,
    /// The selector of the canary track, without braces.
    selector: String,
    /// The status-code label.
    status: String,
    /// The latency histogram's bucket series.
    buckets: String,
    /// What turns the histogram's unit into seconds (`/ 1000` for Istio's milliseconds).
    to_seconds: &'static str,
    range: String,
}

impl Queries {
    fn new(router: Router, namespace: &str, name: &str, series: &SeriesNames, range: &str) -> Self {
        match router {
            Router::Istio => Queries {
                requests: "istio_requests_total".to_string(),
                selector: format!(
                    "reporter=\"destination\",destination_workload_namespace=\"{namespace}\",\
                     destination_workload=\"{}\"",
                    Track::Canary.object_name(name)
                ),
                status: "response_code".to_string(),
                buckets: "istio_request_duration_milliseconds_bucket".to_string(),
                to_seconds: " / 1000",
                range: range.to_string(),
            },
            Router::GatewayApi | Router::Replicas => Queries {
                requests: series.requests.clone(),
                selector: format!(
                    "namespace=\"{namespace}\",service=\"{name}\",track=\"{}\"",
                    Track::Canary.as_str()
                ),
                status: series.status_label.clone(),
                buckets: format!("{}_bucket", series.latency),
                to_seconds: "",
                range: range.to_string(),
            },
        }
    }

    fn increase(&self, extra: &str) -> String {
        format!(
            "sum(increase({}{{{}{extra}}}[{}]))",
            self.requests, self.selector, self.range
        )
    }

    fn requests(&self) -> String {
        self.increase("")
    }

    fn success_rate(&self) -> String {
        let good = self.increase(&format!(",{}!~\"5..\"", self.status));
        format!("100 * {good} / {}", self.requests())
    }

    fn latency_p99(&self) -> String {
        format!(
            "histogram_quantile(0.99, sum by (le) (rate({}{{{}}}[{}]))){}",
            self.buckets, self.selector, self.range, self.to_seconds
        )
    }
}

#[cfg(test)]
#[path = "analysis_tests.rs"]
mod tests;
