//! The Prometheus HTTP API client of canary analysis: instant queries against
//! `prometheus.url` of modelship.yaml, each with a timeout, and every failure as an
//! [`Error`] that knows its metric label. The pure side (which queries, what the values
//! mean) is `rollout::AnalysisQueries`; this module only asks and parses.
//!
//! ```text
//! AnalysisQueries ──Prometheus::observe(at)──▶ POST /api/v1/query {query, time, timeout}
//!                                         ◀── vector | scalar  ──▶ [QueryResult]
//!                                         ◀── error / no answer ──▶ QueryResult::Failed
//! ```

use std::time::Duration;

use jiff::Timestamp;
use serde_json::Value;

use crate::rollout::{AnalysisQueries, QueryResult};

/// Everything that can go wrong asking Prometheus.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Error {
    /// `prometheus.url` is not an http(s) URL.
    #[error("prometheus url `{0}` must start with http:// or https://")]
    InvalidUrl(String),
    /// The HTTP client could not be built (TLS roots unavailable).
    #[error("cannot build the Prometheus HTTP client: {0}")]
    Client(String),
    /// No connection: refused, reset, DNS, TLS.
    #[error("Prometheus at {url} is unreachable: {message}")]
    Unreachable { url: String, message: String },
    /// No answer within the timeout.
    #[error("Prometheus at {url} did not answer within {timeout:?}")]
    Timeout { url: String, timeout: Duration },
    /// Prometheus refused the query (`bad_data`): a broken PromQL expression.
    #[error("Prometheus refused the query: {message}")]
    BadQuery { message: String },
    /// Any other non-success status, with Prometheus' own message when it gave one.
    #[error("Prometheus answered HTTP {status}: {message}")]
    Status { status: u16, message: String },
    /// A success status with a body that is not a Prometheus answer modelship can use.
    #[error("unexpected answer from Prometheus: {0}")]
    BadResponse(String),
}

impl Error {
    /// The metric label of the cause (`modelship_errors_total{cause}`).
    pub fn metric_label(&self) -> &'static str {
        match self {
            Error::InvalidUrl(_) | Error::Client(_) => "prometheus-config",
            Error::Unreachable { .. } => "prometheus-unreachable",
            Error::Timeout { .. } => "prometheus-timeout",
            Error::BadQuery { .. } => "prometheus-bad-query",
            Error::Status { .. } => "prometheus-status",
            Error::BadResponse(_) => "prometheus-bad-response",
        }
    }
}

/// Results of this module.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The default time one query may take, end to end.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// A client of one Prometheus server.
#[derive(Debug, Clone)]
pub struct Prometheus {
    client: reqwest::Client,
    /// The query endpoint, `<url>/api/v1/query`.
    endpoint: String,
    url: String,
    timeout: Duration,
}

impl Prometheus {
    /// A client of the Prometheus at `url` (e.g. `http://prometheus.monitoring:9090`, a
    /// path prefix allowed); each query fails after `timeout`.
    pub fn new(url: &str, timeout: Duration) -> Result<Prometheus> {
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(Error::InvalidUrl(url.to_string()));
        }
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .build()
            .map_err(|e| Error::Client(e.to_string()))?;
        let url = url.trim_end_matches('/').to_string();
        Ok(Prometheus {
            client,
            endpoint: format!("{url}/api/v1/query"),
            url,
            timeout,
        })
    }

    /// Runs an instant query at `at` (Prometheus' now when `None`) and returns the sample
    /// values: one per series of a vector, one for a scalar, none for an empty vector.
    pub async fn query(&self, promql: &str, at: Option<Timestamp>) -> Result<Vec<f64>> {
        let mut form = vec![
            ("query", promql.to_string()),
            ("timeout", format!("{}ms", self.timeout.as_millis())),
        ];
        if let Some(at) = at {
            let secs = at.as_millisecond() as f64 / 1000.0;
            form.push(("time", format!("{secs:.3}")));
        }
        let send = self.client.post(&self.endpoint).form(&form).send();
        // reqwest enforces the timeout too; this bounds the wait whatever it does.
        let response = tokio::time::timeout(self.timeout, send)
            .await
            .map_err(|_| self.timed_out())?
            .map_err(|e| self.transport(e))?;
        let status = response.status();
        let body = tokio::time::timeout(self.timeout, response.bytes())
            .await
            .map_err(|_| self.timed_out())?
            .map_err(|e| self.transport(e))?;
        parse_answer(status.as_u16(), &body)
    }

    /// Runs every check of a step's analysis at `at` and hands back one result per check,
    /// in order, for [`AnalysisQueries::classify`]. A failure of one query is that check's
    /// error, never the whole analysis'.
    pub async fn observe(&self, queries: &AnalysisQueries, at: Timestamp) -> Vec<QueryResult> {
        let mut results = Vec::with_capacity(queries.checks.len());
        for check in &queries.checks {
            results.push(match self.query(&check.query, Some(at)).await {
                Ok(values) => QueryResult::Values(values),
                Err(error) => QueryResult::Failed(error.to_string()),
            });
        }
        results
    }

    fn timed_out(&self) -> Error {
        Error::Timeout {
            url: self.url.clone(),
            timeout: self.timeout,
        }
    }

    fn transport(&self, error: reqwest::Error) -> Error {
        if error.is_timeout() {
            return self.timed_out();
        }
        let mut message = error.to_string();
        let mut source = std::error::Error::source(&error);
        while let Some(cause) = source {
            message = format!("{message}: {cause}");
            source = cause.source();
        }
        Error::Unreachable {
            url: self.url.clone(),
            message,
        }
    }
}

/// Reads an answer of `/api/v1/query`.
fn parse_answer(status: u16, body: &[u8]) -> Result<Vec<f64>> {
    let answer: Option<Value> = serde_json::from_slice(body).ok();
    let field = |name: &str| {
        answer
            .as_ref()
            .and_then(|a| a.get(name))
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    if !(200..300).contains(&status) || field("status").as_deref() != Some("success") {
        let message = field("error").unwrap_or_else(|| {
            String::from_utf8_lossy(body)
                .chars()
                .take(200)
                .collect::<String>()
        });
        return Err(match field("errorType").as_deref() {
            Some("bad_data") => Error::BadQuery { message },
            _ if (200..300).contains(&status) => Error::BadResponse(message),
            _ => Error::Status { status, message },
        });
    }
    let data = answer
        .as_ref()
        .and_then(|a| a.get("data"))
        .ok_or_else(|| Error::BadResponse("no data".to_string()))?;
    let result = data.get("result");
    match data.get("resultType").and_then(Value::as_str) {
        Some("vector") => result
            .and_then(Value::as_array)
            .ok_or_else(|| Error::BadResponse("vector without a result list".to_string()))?
            .iter()
            .map(|series| sample(series.get("value")))
            .collect(),
        Some("scalar") => Ok(vec![sample(result)?]),
        Some(other) => Err(Error::BadQuery {
            message: format!("the query returns a {other}, analysis needs an instant vector"),
        }),
        None => Err(Error::BadResponse("no resultType".to_string())),
    }
}

/// Reads `[<time>, "<value>"]`; Prometheus writes `NaN`, `+Inf` and `-Inf` as text.
fn sample(value: Option<&Value>) -> Result<f64> {
    let text = value
        .and_then(Value::as_array)
        .and_then(|pair| pair.get(1))
        .and_then(Value::as_str)
        .ok_or_else(|| Error::BadResponse("a sample is not [time, value]".to_string()))?;
    text.parse::<f64>()
        .map_err(|_| Error::BadResponse(format!("sample value `{text}` is not a number")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_of_each_shape() {
        let vector = br#"{"status":"success","data":{"resultType":"vector","result":[
            {"metric":{"a":"1"},"value":[1700000000.1,"99.5"]},
            {"metric":{"a":"2"},"value":[1700000000.1,"NaN"]},
            {"metric":{"a":"3"},"value":[1700000000.1,"+Inf"]}]}}"#;
        let values = parse_answer(200, vector).unwrap();
        assert_eq!(values[0], 99.5);
        assert!(values[1].is_nan());
        assert_eq!(values[2], f64::INFINITY);
        let empty = br#"{"status":"success","data":{"resultType":"vector","result":[]}}"#;
        assert_eq!(parse_answer(200, empty).unwrap(), Vec::<f64>::new());
        let scalar = br#"{"status":"success","data":{"resultType":"scalar","result":[1,"4"]}}"#;
        assert_eq!(parse_answer(200, scalar).unwrap(), vec![4.0]);
    }

    #[test]
    fn errors_of_each_kind() {
        let bad = br#"{"status":"error","errorType":"bad_data","error":"parse error at char 5"}"#;
        assert_eq!(
            parse_answer(400, bad),
            Err(Error::BadQuery {
                message: "parse error at char 5".to_string()
            })
        );
        let matrix = br#"{"status":"success","data":{"resultType":"matrix","result":[]}}"#;
        assert!(matches!(
            parse_answer(200, matrix),
            Err(Error::BadQuery { .. })
        ));
        assert_eq!(
            parse_answer(502, b"<html>bad gateway</html>"),
            Err(Error::Status {
                status: 502,
                message: "<html>bad gateway</html>".to_string()
            })
        );
        assert!(matches!(
            parse_answer(200, b"not json"),
            Err(Error::BadResponse(_))
        ));
        let broken =
            br#"{"status":"success","data":{"resultType":"vector","result":[{"value":[1,"x"]}]}}"#;
        assert!(matches!(
            parse_answer(200, broken),
            Err(Error::BadResponse(_))
        ));
        assert_eq!(
            Prometheus::new("prometheus:9090", DEFAULT_TIMEOUT).err(),
            Some(Error::InvalidUrl("prometheus:9090".to_string()))
        );
    }
}
