//! A GitHub REST double for the tests: a local axum server speaking exactly the endpoints
//! modelship calls, recording every request, with scripted faults.
//!
//! | endpoint | behaviour |
//! |---|---|
//! | `GET /repos/O/R/issues/N/comments?per_page&page` | the PR's comments, paginated with a `Link: rel="next"` header |
//! | `POST /repos/O/R/issues/N/comments` | creates a comment (author `modelship[bot]`) |
//! | `PATCH /repos/O/R/issues/comments/ID` | edits a comment |
//! | `POST /repos/O/R/statuses/SHA` | appends a status |
//! | `GET /repos/O/R/collaborators/U/permission` | the permission set with [`Double::grant`], 404 otherwise |
//! | `GET /orgs/ORG/teams/T/memberships/U` | `active` for members added with [`Double::add_to_team`] |
//! | `GET /repos/O/R/pulls/N` | the state set with [`Double::set_pull`], 404 otherwise |
//! | `GET /repos/O/R/installation` | installation 7 (a JWT is required) |
//! | `POST /app/installations/7/access_tokens` | a fresh token `ghs_installation_N`, valid an hour |
//!
//! Repository endpoints require `Authorization: Bearer` with the double's token (or an
//! installation token it issued): anything else is a 401, as on GitHub. Faults are matched
//! in order by method and path fragment and used once each.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// The token the double accepts.
pub const TOKEN: &str = "ghp_double_token_0123456789";

/// One recorded request.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: Method,
    /// Path and query.
    pub path: String,
    pub authorization: Option<String>,
    pub body: String,
    /// The status the double answered.
    pub status: u16,
}

/// A scripted failure.
#[derive(Debug, Clone)]
pub enum Fault {
    /// Answer with this status and do nothing.
    Status(u16),
    /// Do what was asked, then answer with this status (a proxy timing out).
    StatusAfterApplying(u16),
    /// 403, `Retry-After: N`, the rate-limit message.
    RateLimited { retry_after: u64 },
}

#[derive(Debug, Clone)]
pub struct Comment {
    pub id: u64,
    pub body: String,
    pub user: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Status {
    pub sha: String,
    pub state: String,
    pub context: String,
    pub description: String,
}

#[derive(Debug, Default)]
struct State {
    next_id: u64,
    comments: BTreeMap<u64, Vec<Comment>>,
    statuses: Vec<Status>,
    permissions: BTreeMap<String, String>,
    teams: BTreeMap<String, Vec<String>>,
    /// Pull requests: (open, head sha, labels).
    pulls: BTreeMap<u64, (bool, String, Vec<String>)>,
    /// The author of each pull request ([`Double::set_pull_author`]).
    authors: BTreeMap<u64, String>,
    tokens: Vec<String>,
    faults: Vec<(Method, String, Fault)>,
    requests: Vec<Recorded>,
    /// Accept a JWT on the App endpoints.
    app: bool,
    /// How long issued installation tokens live (GitHub: an hour).
    token_lifetime_secs: i64,
    per_page_max: usize,
}

/// A running double; stops when dropped.
pub struct Double {
    pub url: String,
    state: Arc<Mutex<State>>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for Double {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl Double {
    /// Starts a double on a random loopback port.
    pub async fn start() -> Double {
        let state = Arc::new(Mutex::new(State {
            next_id: 1000,
            per_page_max: 100,
            token_lifetime_secs: 3600,
            ..State::default()
        }));
        let shared = state.clone();
        let app = axum::Router::new().fallback(
            move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
                let state = shared.clone();
                async move { handle(&state, method, uri, headers, body) }
            },
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the double");
        let addr = listener.local_addr().expect("local addr");
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Double {
            url: format!("http://{addr}"),
            state,
            server,
        }
    }

    fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        f(&mut self.state.lock().expect("double state"))
    }

    /// Accept GitHub App JWTs and hand out installation tokens.
    pub fn enable_app(&self) {
        self.with(|s| s.app = true);
    }

    /// Issues installation tokens that live this long.
    pub fn set_token_lifetime(&self, lifetime: std::time::Duration) {
        let secs = i64::try_from(lifetime.as_secs()).unwrap_or(i64::MAX);
        self.with(|s| s.token_lifetime_secs = secs);
    }

    /// Gives a user a role (`admin`, `maintain`, `write`, `triage`, `read`).
    pub fn grant(&self, user: &str, role: &str) {
        self.with(|s| s.permissions.insert(user.to_string(), role.to_string()));
    }

    /// Makes a user an active member of `org/team`.
    pub fn add_to_team(&self, team: &str, user: &str) {
        self.with(|s| {
            s.teams
                .entry(team.to_string())
                .or_default()
                .push(user.to_string())
        });
    }

    /// Sets what GitHub says of pull request `number`.
    pub fn set_pull(&self, number: u64, open: bool, sha: &str, labels: &[&str]) {
        let labels = labels.iter().map(|l| l.to_string()).collect();
        self.with(|s| s.pulls.insert(number, (open, sha.to_string(), labels)));
    }

    /// Sets the author (`user.login`) of pull request `number`.
    pub fn set_pull_author(&self, number: u64, login: &str) {
        self.with(|s| s.authors.insert(number, login.to_string()));
    }

    /// Queues a fault for the next request of `method` whose path contains `path`.
    pub fn fault(&self, method: Method, path: &str, fault: Fault) {
        self.with(|s| s.faults.push((method, path.to_string(), fault)));
    }

    /// Adds a comment by someone else (to fill pages).
    pub fn seed_comment(&self, pr: u64, user: &str, body: &str) {
        self.with(|s| {
            s.next_id += 1;
            let id = s.next_id;
            s.comments.entry(pr).or_default().push(Comment {
                id,
                body: body.to_string(),
                user: user.to_string(),
            });
        });
    }

    /// The largest page the double serves (GitHub's is 100).
    pub fn set_per_page_max(&self, max: usize) {
        self.with(|s| s.per_page_max = max);
    }

    pub fn comments(&self, pr: u64) -> Vec<Comment> {
        self.with(|s| s.comments.get(&pr).cloned().unwrap_or_default())
    }

    /// Comments of `pr` written by modelship (the double's bot user).
    pub fn own_comments(&self, pr: u64) -> Vec<Comment> {
        self.comments(pr)
            .into_iter()
            .filter(|c| c.user == "modelship[bot]")
            .collect()
    }

    pub fn statuses(&self) -> Vec<Status> {
        self.with(|s| s.statuses.clone())
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.with(|s| s.requests.clone())
    }

    /// Installation tokens issued so far.
    pub fn issued_tokens(&self) -> Vec<String> {
        self.with(|s| s.tokens.clone())
    }
}

fn handle(
    state: &Mutex<State>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut s = state.lock().expect("double state");
    let path = uri.path().to_string();
    let query = uri.query().unwrap_or("").to_string();
    let authorization = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let fault = s
        .faults
        .iter()
        .position(|(m, p, _)| *m == method && path.contains(p.as_str()))
        .map(|i| s.faults.remove(i).2);
    // A fault answers instead of the route, except one that fails after applying.
    let applies = matches!(fault, None | Some(Fault::StatusAfterApplying(_)));
    let routed = applies.then(|| {
        route(
            &mut s,
            &method,
            &path,
            &query,
            authorization.as_deref(),
            &body,
        )
    });
    let (status, response) = match (fault, routed) {
        (Some(Fault::Status(code) | Fault::StatusAfterApplying(code)), _) => {
            (code, error(code, "scripted failure"))
        }
        (Some(Fault::RateLimited { retry_after }), _) => {
            let mut response = error(403, "API rate limit exceeded for installation");
            response.headers_mut().insert(
                "retry-after",
                retry_after.to_string().parse().expect("header"),
            );
            (403, response)
        }
        (None, Some(routed)) => routed,
        (None, None) => (500, error(500, "the double routed nothing")),
    };
    s.requests.push(Recorded {
        method,
        path: if query.is_empty() {
            path
        } else {
            format!("{path}?{query}")
        },
        authorization,
        body: String::from_utf8_lossy(&body).into_owned(),
        status,
    });
    response
}

fn error(code: u16, message: &str) -> Response {
    let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, axum::Json(json!({"message": message}))).into_response()
}

fn ok(status: u16, value: Value) -> (u16, Response) {
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
    (status, (code, axum::Json(value)).into_response())
}

fn route(
    s: &mut State,
    method: &Method,
    path: &str,
    query: &str,
    authorization: Option<&str>,
    body: &Bytes,
) -> (u16, Response) {
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    let bearer = authorization.and_then(|a| a.strip_prefix("Bearer "));
    let jwt = bearer.is_some_and(|t| t.split('.').count() == 3);
    // App endpoints take the App's JWT.
    match (method.as_str(), parts.as_slice()) {
        ("GET", ["repos", _, _, "installation"]) if s.app && jwt => {
            return ok(200, json!({"id": 7}));
        }
        ("POST", ["app", "installations", "7", "access_tokens"]) if s.app && jwt => {
            let token = format!("ghs_installation_{}", s.tokens.len() + 1);
            s.tokens.push(token.clone());
            let expires =
                jiff::Timestamp::now() + jiff::SignedDuration::from_secs(s.token_lifetime_secs);
            return ok(
                201,
                json!({"token": token, "expires_at": expires.to_string()}),
            );
        }
        (_, ["repos", _, _, "installation"]) | (_, ["app", ..]) => {
            return (401, error(401, "A JSON web token could not be decoded"));
        }
        _ => {}
    }
    let authorized = bearer.is_some_and(|t| t == TOKEN || s.tokens.iter().any(|i| i == t));
    if !authorized {
        return (401, error(401, "Bad credentials"));
    }
    let json_body: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    match (method.as_str(), parts.as_slice()) {
        ("GET", ["repos", _, _, "issues", number, "comments"]) => {
            let number: u64 = number.parse().unwrap_or(0);
            list_comments(s, number, query)
        }
        ("POST", ["repos", _, _, "issues", number, "comments"]) => {
            let Some(text) = json_body.get("body").and_then(Value::as_str) else {
                return (422, error(422, "body is required"));
            };
            let number: u64 = number.parse().unwrap_or(0);
            s.next_id += 1;
            let id = s.next_id;
            s.comments.entry(number).or_default().push(Comment {
                id,
                body: text.to_string(),
                user: "modelship[bot]".to_string(),
            });
            ok(201, json!({"id": id, "body": text}))
        }
        ("PATCH", ["repos", _, _, "issues", "comments", id]) => {
            let id: u64 = id.parse().unwrap_or(0);
            let Some(text) = json_body.get("body").and_then(Value::as_str) else {
                return (422, error(422, "body is required"));
            };
            let found = s.comments.values_mut().flatten().find(|c| c.id == id);
            match found {
                Some(comment) => {
                    comment.body = text.to_string();
                    ok(200, json!({"id": id, "body": text}))
                }
                None => (404, error(404, "Not Found")),
            }
        }
        ("POST", ["repos", _, _, "statuses", sha]) => {
            let field = |name: &str| {
                json_body
                    .get(name)
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string()
            };
            let state = field("state");
            if !["pending", "success", "failure", "error"].contains(&state.as_str()) {
                return (422, error(422, "state is invalid"));
            }
            let description = field("description");
            if description.chars().count() > 140 {
                return (
                    422,
                    error(422, "description is too long (maximum is 140 characters)"),
                );
            }
            s.statuses.push(Status {
                sha: sha.to_string(),
                state: state.clone(),
                context: field("context"),
                description,
            });
            ok(201, json!({"state": state}))
        }
        ("GET", ["repos", _, _, "collaborators", user, "permission"]) => {
            match s.permissions.get(*user) {
                Some(role) => {
                    let permission = match role.as_str() {
                        "maintain" => "write",
                        "triage" => "read",
                        other => other,
                    };
                    ok(
                        200,
                        json!({"permission": permission, "role_name": role, "user": {"login": user}}),
                    )
                }
                None => (404, error(404, "Not Found")),
            }
        }
        ("GET", ["repos", _, _, "pulls", number]) => {
            let number: u64 = number.parse().unwrap_or(0);
            match s.pulls.get(&number) {
                Some((open, sha, labels)) => ok(
                    200,
                    json!({
                        "number": number,
                        "state": if *open { "open" } else { "closed" },
                        "merged": false,
                        "head": {"sha": sha},
                        "user": {"login": s.authors.get(&number).map_or("octocat", String::as_str)},
                        "labels": labels.iter().map(|l| json!({"name": l})).collect::<Vec<_>>(),
                    }),
                ),
                None => (404, error(404, "Not Found")),
            }
        }
        ("GET", ["orgs", org, "teams", team, "memberships", user]) => {
            let key = format!("{org}/{team}");
            if s.teams
                .get(&key)
                .is_some_and(|m| m.iter().any(|u| u == user))
            {
                ok(200, json!({"state": "active", "role": "member"}))
            } else {
                (404, error(404, "Not Found"))
            }
        }
        _ => (404, error(404, "Not Found")),
    }
}

fn list_comments(s: &State, number: u64, query: &str) -> (u16, Response) {
    let param = |name: &str| {
        query
            .split('&')
            .filter_map(|kv| kv.split_once('='))
            .find(|(k, _)| *k == name)
            .and_then(|(_, v)| v.parse::<usize>().ok())
    };
    let per_page = param("per_page").unwrap_or(30).clamp(1, s.per_page_max);
    let page = param("page").unwrap_or(1).max(1);
    let all = s.comments.get(&number).cloned().unwrap_or_default();
    let items: Vec<Value> = all
        .iter()
        .skip((page - 1) * per_page)
        .take(per_page)
        .map(|c| json!({"id": c.id, "body": c.body, "user": {"login": c.user}}))
        .collect();
    let mut response = (StatusCode::OK, axum::Json(Value::Array(items))).into_response();
    if page * per_page < all.len() {
        let next = format!(
            "<http://double/repos/o/r/issues/{number}/comments?per_page={per_page}&page={}>; rel=\"next\"",
            page + 1
        );
        response
            .headers_mut()
            .insert("link", next.parse().expect("link header"));
    }
    (200, response)
}
