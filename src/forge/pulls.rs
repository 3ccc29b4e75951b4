//! What GitHub says of one pull request now: open or closed, merged, its head and labels.
//! The daemon asks it of every PR with a preview at start-up and on every resync, so a
//! preview whose PR closed while the daemon was down is torn down.

use http::{Method, StatusCode};
use serde_json::Value;

use super::transport::{Request, Retry, decode};
use super::{GitHub, Repo, Result};

/// A pull request as GitHub holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullState {
    /// `false` once closed (merged or not), and for a pull request GitHub does not know.
    pub open: bool,
    pub merged: bool,
    pub head_sha: Option<String>,
    pub labels: Vec<String>,
    /// The login of the pull request's author.
    pub author: Option<String>,
}

impl GitHub {
    /// `GET /repos/O/R/pulls/N`. A pull request that does not exist (404) is reported
    /// closed: nothing of it should live on.
    pub async fn pull_request(&self, repo: &Repo, pr: u64) -> Result<PullState> {
        let request = Request {
            method: Method::GET,
            path: format!("/repos/{}/{}/pulls/{pr}", repo.owner, repo.name),
            body: None,
            retry: Retry::Safe,
        };
        let reply = self.transport.send(repo, &request).await?;
        if reply.status == StatusCode::NOT_FOUND {
            return Ok(PullState {
                open: false,
                merged: false,
                head_sha: None,
                labels: Vec::new(),
                author: None,
            });
        }
        let body = reply.json(&request)?;
        let state = body
            .get("state")
            .and_then(Value::as_str)
            .ok_or_else(|| decode(&request, "no state"))?;
        Ok(PullState {
            open: state == "open",
            merged: body.get("merged").and_then(Value::as_bool).unwrap_or(false),
            head_sha: body
                .pointer("/head/sha")
                .and_then(Value::as_str)
                .map(str::to_string),
            labels: body
                .get("labels")
                .and_then(Value::as_array)
                .map(|labels| {
                    labels
                        .iter()
                        .filter_map(|l| l.get("name").and_then(Value::as_str))
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default(),
            author: body
                .pointer("/user/login")
                .and_then(Value::as_str)
                .map(str::to_string),
        })
    }
}
