//! Git's smart HTTP for one test: `git http-backend` run as a CGI program behind a TLS
//! server (tokio-rustls, hyper) on a free loopback port, with a certificate of a private
//! CA (rcgen) and HTTP Basic auth. The accepted credentials can be changed while it runs
//! (a rotated token), and the server can go away and come back on the same port.
//!
//! ```text
//! libgit2 ──TLS (leaf for 127.0.0.1 and localhost, signed by the test CA)──▶ hyper
//!     no or wrong Authorization ──▶ 401 WWW-Authenticate: Basic
//!     else ──▶ git http-backend (GIT_PROJECT_ROOT=<dir>, CGI environment) ──▶ response
//! ```
#![allow(dead_code)]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use base64::Engine;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::{self, pki_types};

use super::certs::{Ca, Leaf};
use super::missing_tool;

const BACKEND: &str = "/usr/lib/git-core/git-http-backend";

/// A private CA and a server certificate it signed for `127.0.0.1` and `localhost`.
pub struct TestCa {
    pub ca_pem: String,
    leaf: Leaf,
}

impl TestCa {
    pub fn new() -> Self {
        let ca = Ca::new();
        TestCa {
            ca_pem: ca.pem(),
            leaf: ca.leaf(&["127.0.0.1", "localhost"]),
        }
    }

    /// Writes the CA's PEM to `path` (what `--git-ca-file` names).
    pub fn write_ca(&self, path: &Path) {
        std::fs::write(path, &self.ca_pem).unwrap();
    }

    fn server_config(&self) -> Arc<rustls::ServerConfig> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let key = pki_types::PrivateKeyDer::Pkcs8(self.leaf.key.clone().into());
        let cert = pki_types::CertificateDer::from(self.leaf.der.clone());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![cert], key)
            .unwrap();
        Arc::new(config)
    }
}

#[derive(Clone)]
struct State {
    root: PathBuf,
    /// `user:password` pairs the server accepts.
    accepted: Arc<Mutex<Vec<String>>>,
    /// Every Authorization header received (to check what the client sent).
    seen: Arc<Mutex<Vec<String>>>,
}

pub struct GitHttps {
    pub addr: SocketAddr,
    pub ca: TestCa,
    state: State,
    tls: TlsAcceptor,
    server: Option<tokio::task::JoinHandle<()>>,
}

impl GitHttps {
    /// Serves the bare repositories below `root` (`https://127.0.0.1:PORT/<name>`),
    /// accepting `user:password`; `None` (after printing why) without git http-backend.
    pub async fn start(root: &Path, user: &str, password: &str) -> Option<GitHttps> {
        if missing_tool(BACKEND, "git http-backend (apt-get install git)") {
            return None;
        }
        let ca = TestCa::new();
        let tls = TlsAcceptor::from(ca.server_config());
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = State {
            root: root.to_path_buf(),
            accepted: Arc::new(Mutex::new(vec![format!("{user}:{password}")])),
            seen: Arc::default(),
        };
        let mut server = GitHttps {
            addr,
            ca,
            state,
            tls,
            server: None,
        };
        server.serve(listener);
        Some(server)
    }

    fn serve(&mut self, listener: TcpListener) {
        let tls = self.tls.clone();
        let state = self.state.clone();
        self.server = Some(tokio::spawn(async move {
            // Dropped with this task: stopping the server ends its connections too.
            let mut connections = JoinSet::new();
            while let Ok((tcp, _)) = listener.accept().await {
                let tls = tls.clone();
                let state = state.clone();
                connections.spawn(async move {
                    let Ok(stream) = tls.accept(tcp).await else {
                        return;
                    };
                    let service = hyper::service::service_fn(move |request| {
                        let state = state.clone();
                        async move { Ok::<_, Infallible>(handle(request, &state).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        }));
    }

    /// The URL of repository `name` below the root.
    pub fn url(&self, name: &str) -> String {
        format!("https://{}/{name}", self.addr)
    }

    /// From now on only `user:password` is accepted.
    pub fn accept_only(&self, user: &str, password: &str) {
        *self.state.accepted.lock().unwrap() = vec![format!("{user}:{password}")];
    }

    /// The Authorization headers received so far.
    pub fn authorizations(&self) -> Vec<String> {
        self.state.seen.lock().unwrap().clone()
    }

    /// Stops listening: connections are refused until [`GitHttps::restart`].
    pub async fn stop(&mut self) {
        if let Some(server) = self.server.take() {
            server.abort();
            let _ = server.await;
        }
    }

    /// Listens again on the same port.
    pub async fn restart(&mut self) {
        self.stop().await;
        let listener = TcpListener::bind(self.addr).await.unwrap();
        self.serve(listener);
    }
}

impl Drop for GitHttps {
    fn drop(&mut self) {
        if let Some(server) = self.server.take() {
            server.abort();
        }
    }
}

fn respond(status: StatusCode, headers: &[(&str, &str)], body: Vec<u8>) -> Response<Full<Bytes>> {
    let mut response = Response::builder().status(status);
    for (name, value) in headers {
        response = response.header(*name, *value);
    }
    response.body(Full::new(Bytes::from(body))).unwrap()
}

async fn handle(request: Request<Incoming>, state: &State) -> Response<Full<Bytes>> {
    let authorization = request
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    state.seen.lock().unwrap().push(authorization.clone());
    let user = authorization
        .strip_prefix("Basic ")
        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
        .and_then(|b| String::from_utf8(b).ok())
        .filter(|pair| state.accepted.lock().unwrap().contains(pair))
        .map(|pair| pair.split(':').next().unwrap_or_default().to_string());
    let Some(user) = user else {
        return respond(
            StatusCode::UNAUTHORIZED,
            &[("www-authenticate", "Basic realm=\"git\"")],
            b"authentication required\n".to_vec(),
        );
    };
    cgi(request, state, &user).await
}

/// Runs git http-backend for one request (RFC 3875 environment, body on stdin).
async fn cgi(request: Request<Incoming>, state: &State, user: &str) -> Response<Full<Bytes>> {
    let (parts, body) = request.into_parts();
    let body = match body.collect().await {
        Ok(body) => body.to_bytes(),
        Err(_) => return respond(StatusCode::BAD_REQUEST, &[], Vec::new()),
    };
    let header = |name: &str| {
        parts
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    let mut command = tokio::process::Command::new(BACKEND);
    command
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("GIT_PROJECT_ROOT", &state.root)
        .env("GIT_HTTP_EXPORT_ALL", "1")
        .env("REQUEST_METHOD", parts.method.as_str())
        .env("PATH_INFO", parts.uri.path())
        .env("QUERY_STRING", parts.uri.query().unwrap_or_default())
        .env("CONTENT_TYPE", header("content-type"))
        .env("CONTENT_LENGTH", body.len().to_string())
        .env("HTTP_CONTENT_ENCODING", header("content-encoding"))
        .env("GIT_PROTOCOL", header("git-protocol"))
        .env("REMOTE_USER", user)
        .env("REMOTE_ADDR", "127.0.0.1")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null());
    let Ok(mut child) = command.spawn() else {
        return respond(StatusCode::INTERNAL_SERVER_ERROR, &[], Vec::new());
    };
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(&body).await;
    }
    let Ok(output) = child.wait_with_output().await else {
        return respond(StatusCode::INTERNAL_SERVER_ERROR, &[], Vec::new());
    };
    let out = output.stdout;
    let split = out
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| (i, 4))
        .or_else(|| out.windows(2).position(|w| w == b"\n\n").map(|i| (i, 2)));
    let Some((end, gap)) = split else {
        return respond(StatusCode::BAD_GATEWAY, &[], out);
    };
    let head = String::from_utf8_lossy(&out[..end]).to_string();
    let mut status = StatusCode::OK;
    let mut headers = Vec::new();
    for line in head.lines() {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("status") {
            status = value
                .split_whitespace()
                .next()
                .and_then(|code| code.parse().ok())
                .and_then(|code| StatusCode::from_u16(code).ok())
                .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        } else {
            headers.push((name.trim().to_string(), value.to_string()));
        }
    }
    let headers: Vec<(&str, &str)> = headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    respond(status, &headers, out[end + gap..].to_vec())
}
