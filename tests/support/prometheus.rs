//! A real Prometheus for analysis tests, and the model-server metrics it scrapes.
//!
//! [`Exporter`] serves `/metrics` on loopback like a fleet of model servers would after
//! the PodMonitor's relabelling: `http_requests_total{namespace,service,track,code}` and
//! the histogram `http_request_duration_seconds{namespace,service,track}`, vLLM's
//! `vllm:time_to_first_token_seconds` histogram with the same labels, and the series an
//! Istio sidecar reports (`istio_requests_total` and
//! `istio_request_duration_milliseconds` by `destination_workload`). Every scrape
//! adds the traffic of each series' [`Traffic`], so counters grow as real ones do.
//! [`PrometheusServer`] runs `/usr/bin/prometheus` (Debian package `prometheus`, installed
//! by `scripts/setup`) on a free loopback port, scraping the exporter every second, and
//! kills it on drop.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use tokio::process::{Child, Command};

use crate::support::poll::wait_for;

/// What one track of one service receives per scrape.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Traffic {
    pub ok: u64,
    pub errors: u64,
    /// Every request of the scrape takes this long, in seconds.
    pub latency: f64,
}

/// Upper bounds of the latency histogram, in seconds (`+Inf` added).
const BUCKETS: [f64; 5] = [0.05, 0.1, 0.25, 0.5, 1.0];

#[derive(Debug, Default)]
struct Series {
    traffic: Option<Traffic>,
    ok: u64,
    errors: u64,
    /// Cumulative counts per bucket of BUCKETS, then +Inf.
    buckets: [u64; BUCKETS.len() + 1],
    sum: f64,
}

type Key = (String, String, String);

/// A `/metrics` endpoint whose traffic the test sets per (namespace, service, track).
#[derive(Clone, Default)]
pub struct Exporter {
    series: Arc<Mutex<BTreeMap<Key, Series>>>,
}

impl Exporter {
    /// Sets the traffic of one track; `None` stops it (the counters stay).
    pub fn set(&self, namespace: &str, service: &str, track: &str, traffic: Option<Traffic>) {
        let mut series = self.series.lock().unwrap_or_else(PoisonError::into_inner);
        let key = (namespace.into(), service.into(), track.into());
        series.entry(key).or_default().traffic = traffic;
    }

    /// Serves `/metrics` on a free loopback port.
    pub async fn serve(&self) -> SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = Router::new()
            .route("/metrics", get(scrape))
            .with_state(self.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        addr
    }

    fn scrape(&self) -> String {
        let mut all = self.series.lock().unwrap_or_else(PoisonError::into_inner);
        let mut out = String::from(
            "# TYPE http_requests_total counter\n\
             # TYPE http_request_duration_seconds histogram\n\
             # TYPE vllm:time_to_first_token_seconds histogram\n\
             # TYPE istio_requests_total counter\n\
             # TYPE istio_request_duration_milliseconds histogram\n",
        );
        for ((namespace, service, track), s) in all.iter_mut() {
            if let Some(t) = s.traffic {
                s.ok += t.ok;
                s.errors += t.errors;
                let n = t.ok + t.errors;
                for (bound, bucket) in BUCKETS.iter().zip(s.buckets.iter_mut()) {
                    if t.latency <= *bound {
                        *bucket += n;
                    }
                }
                s.buckets[BUCKETS.len()] += n;
                s.sum += t.latency * n as f64;
            }
            let labels = format!(r#"namespace="{namespace}",service="{service}",track="{track}""#);
            out += &format!("http_requests_total{{{labels},code=\"200\"}} {}\n", s.ok);
            out += &format!(
                "http_requests_total{{{labels},code=\"503\"}} {}\n",
                s.errors
            );
            for (i, count) in s.buckets.iter().enumerate() {
                let le = BUCKETS.get(i).map_or("+Inf".to_string(), |b| b.to_string());
                out += &format!(
                    "http_request_duration_seconds_bucket{{{labels},le=\"{le}\"}} {count}\n"
                );
            }
            let count = s.ok + s.errors;
            out += &format!("http_request_duration_seconds_sum{{{labels}}} {}\n", s.sum);
            out += &format!("http_request_duration_seconds_count{{{labels}}} {count}\n");
            for (i, count) in s.buckets.iter().enumerate() {
                let le = BUCKETS.get(i).map_or("+Inf".to_string(), |b| b.to_string());
                out += &format!(
                    "vllm:time_to_first_token_seconds_bucket{{{labels},le=\"{le}\"}} {count}\n"
                );
            }
            let workload = if track == "canary" {
                format!("{service}-canary")
            } else {
                service.clone()
            };
            let istio = format!(
                r#"reporter="destination",destination_workload_namespace="{namespace}",destination_workload="{workload}""#
            );
            out += &format!(
                "istio_requests_total{{{istio},response_code=\"200\"}} {}\n",
                s.ok
            );
            out += &format!(
                "istio_requests_total{{{istio},response_code=\"503\"}} {}\n",
                s.errors
            );
            for (i, count) in s.buckets.iter().enumerate() {
                let le = BUCKETS
                    .get(i)
                    .map_or("+Inf".to_string(), |b| (b * 1000.0).to_string());
                out += &format!(
                    "istio_request_duration_milliseconds_bucket{{{istio},le=\"{le}\"}} {count}\n"
                );
            }
        }
        out
    }
}

async fn scrape(State(exporter): State<Exporter>) -> String {
    exporter.scrape()
}

/// The Prometheus binary, or why the test cannot run.
pub fn prometheus_binary() -> Result<PathBuf, String> {
    let path = PathBuf::from(
        std::env::var("MODELSHIP_TEST_PROMETHEUS").unwrap_or("/usr/bin/prometheus".into()),
    );
    if path.exists() {
        Ok(path)
    } else {
        Err(format!(
            "{} not found: run scripts/setup (installs the Debian package prometheus) \
             or set MODELSHIP_TEST_PROMETHEUS",
            path.display()
        ))
    }
}

/// A running Prometheus, killed on drop.
pub struct PrometheusServer {
    pub url: String,
    child: Option<Child>,
    _dir: tempfile::TempDir,
}

impl PrometheusServer {
    /// Starts Prometheus scraping `target` every second and waits until it is ready.
    pub async fn start(binary: &PathBuf, target: SocketAddr) -> PrometheusServer {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global: {{scrape_interval: 1s, evaluation_interval: 1s}}\n\
                 scrape_configs:\n\
                 - job_name: model-servers\n  honor_labels: true\n  \
                 static_configs: [{{targets: ['{target}']}}]\n"
            ),
        )
        .unwrap();
        let port = free_port();
        let url = format!("http://127.0.0.1:{port}");
        let child = Command::new(binary)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--log.level=warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let server = PrometheusServer {
            url,
            child: Some(child),
            _dir: dir,
        };
        let ready = format!("{}/-/ready", server.url);
        let http = reqwest::Client::new();
        wait_for(
            "Prometheus to be ready",
            Duration::from_secs(30),
            || async {
                http.get(&ready)
                    .send()
                    .await
                    .is_ok_and(|r| r.status().is_success())
            },
        )
        .await;
        server
    }

    /// Kills Prometheus and waits until it is gone.
    pub async fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.start_kill();
            let _ = tokio::time::timeout(Duration::from_secs(10), child.wait()).await;
        }
    }
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}
