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
//!
//! Credentials come from files ([`Auth`]: `--prometheus-bearer-token-file`,
//! `--prometheus-basic-auth-file`), read at every query so a rotated Secret counts at once.
//! A `user:password@` in the URL still authenticates, but is never shown: every error
//! names the URL with its userinfo redacted ([`crate::meta::redact_userinfo`]), and so do
//! the analysis results the rollout records. Redirects are not followed (credentials
//! must not travel to another host).

use std::path::PathBuf;
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
    /// A credentials file cannot be read or is malformed (its content is never shown).
    #[error("Prometheus credentials {}: {message}", path.display())]
    Credentials { path: PathBuf, message: String },
}

/// How modelship authenticates to Prometheus: from files, never from the repository.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Auth {
    /// No credentials (or those of a `user:password@` in the URL).
    #[default]
    None,
    /// `Authorization: Bearer <the file's content, trimmed>`.
    BearerFile(PathBuf),
    /// HTTP basic authentication from a file holding `user:password`.
    BasicFile(PathBuf),
}

impl Auth {
    /// `request` with the credentials of the files, read now.
    fn apply(&self, request: reqwest::RequestBuilder) -> Result<reqwest::RequestBuilder> {
        let read = |path: &PathBuf| {
            std::fs::read_to_string(path)
                .map(|text| text.trim().to_string())
                .map_err(|e| Error::Credentials {
                    path: path.clone(),
                    message: e.to_string(),
                })
        };
        Ok(match self {
            Auth::None => request,
            Auth::BearerFile(path) => request.bearer_auth(read(path)?),
            Auth::BasicFile(path) => {
                let text = read(path)?;
                let (user, password) = text.split_once(':').ok_or_else(|| Error::Credentials {
                    path: path.clone(),
                    message: "expected `user:password`".to_string(),
                })?;
                request.basic_auth(user, Some(password))
            }
        })
    }
}

impl Error {
    /// The metric label of the cause (`modelship_errors_total{cause}`).
    pub fn metric_label(&self) -> &'static str {
        match self {
            Error::InvalidUrl(_) | Error::Client(_) | Error::Credentials { .. } => {
                "prometheus-config"
            }
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
    /// The URL as it may be shown (userinfo redacted).
    url: String,
    timeout: Duration,
    auth: Auth,
}

impl Prometheus {
    /// A client of the Prometheus at `url` (e.g. `http://prometheus.monitoring:9090`, a
    /// path prefix allowed); each query fails after `timeout`.
    pub fn new(url: &str, timeout: Duration) -> Result<Prometheus> {
        Prometheus::with_auth(url, timeout, Auth::None)
    }

    /// [`Prometheus::new`], authenticating as `auth` says.
    pub fn with_auth(url: &str, timeout: Duration, auth: Auth) -> Result<Prometheus> {
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(Error::InvalidUrl(crate::meta::redact_userinfo(url)));
        }
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| Error::Client(e.to_string()))?;
        let url = url.trim_end_matches('/').to_string();
        Ok(Prometheus {
            client,
            endpoint: format!("{url}/api/v1/query"),
            url: crate::meta::redact_userinfo(&url),
            timeout,
            auth,
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
        let request = self
            .auth
            .apply(self.client.post(&self.endpoint).form(&form))?;
        let send = request.send();
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
        // reqwest names the URL in its errors: without it, then redacted by the caller.
        let error = error.without_url();
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

    /// A server that answers one request with `answer` and hands back the request.
    async fn one_answer(answer: &'static str) -> (String, tokio::task::JoinHandle<String>) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let served = tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            let mut request = vec![0; 8192];
            let n = stream.read(&mut request).await.unwrap();
            stream.write_all(answer.as_bytes()).await.unwrap();
            String::from_utf8_lossy(&request[..n]).to_string()
        });
        (format!("http://{addr}"), served)
    }

    #[tokio::test]
    async fn credentials_come_from_files_redirects_are_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let token = dir.path().join("token");
        std::fs::write(&token, "tok-123\n").unwrap();
        let redirect = "HTTP/1.1 302 Found\r\nLocation: http://elsewhere.invalid/\r\ncontent-length: 0\r\n\r\n";
        let (url, served) = one_answer(redirect).await;
        let client =
            Prometheus::with_auth(&url, Duration::from_secs(5), Auth::BearerFile(token)).unwrap();
        let answer = tokio::time::timeout(Duration::from_secs(10), client.query("up", None))
            .await
            .unwrap();
        assert!(
            matches!(answer, Err(Error::Status { status: 302, .. })),
            "{answer:?}"
        );
        let request = served.await.unwrap().to_lowercase();
        assert!(
            request.contains("authorization: bearer tok-123"),
            "{request}"
        );

        let missing = Auth::BasicFile(dir.path().join("none"));
        let client = Prometheus::with_auth(&url, Duration::from_secs(5), missing).unwrap();
        let error = client.query("up", None).await.unwrap_err();
        assert_eq!(error.metric_label(), "prometheus-config");
    }

    #[tokio::test]
    async fn userinfo_in_the_url_is_never_in_an_error() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let url = format!("http://admin:hunter2@127.0.0.1:{port}");
        let client = Prometheus::new(&url, Duration::from_secs(2)).unwrap();
        let error = client.query("up", None).await.unwrap_err().to_string();
        assert!(
            !error.contains("hunter2") && !error.contains("admin"),
            "{error}"
        );
        assert!(error.contains("***@127.0.0.1"), "{error}");
        let invalid = Prometheus::new("admin:hunter2@prom:9090", DEFAULT_TIMEOUT).unwrap_err();
        assert!(!invalid.to_string().contains("hunter2"), "{invalid}");
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
