//! WATCH: newline-delimited `WatchEvent`s streamed over a chunked response.
//!
//! A watch starts either from "now" with synthetic `ADDED` events for every existing
//! object (`resourceVersion` unset or `"0"`, as kube-apiserver does) or from a given
//! resourceVersion, replaying the store's history after it. It then follows new
//! writes (woken by `Shared::changes`), adds `BOOKMARK` events every bookmark interval
//! when `allowWatchBookmarks=true`, ends after `timeoutSeconds`, on
//! `Faults::drop_watches`, or when the client goes away. A starting point older than the
//! kept history yields one `ERROR` event carrying a `410 Expired` Status.
//! `sendInitialEvents=true` is supported: initial `ADDED` events, then a BOOKMARK
//! annotated `k8s.io/initial-events-end: "true"`. Event objects are whole objects,
//! `PartialObjectMetadata` or one-row Tables ([`View`]), as the Accept header asks.

use super::ops::{key_of, with_version};
use super::path::ResourcePath;
use super::registry::ResourceType;
use super::selector::{FieldSelector, LabelSelector};
use super::server::{Shared, stream_body};
use super::status::ApiError;
use super::store::{Event, EventType, StoreError};
use super::table::{self, Include};
use axum::body::Bytes;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// Where and what a watch follows.
#[derive(Debug, Clone)]
pub struct WatchParams {
    /// Only this namespace (`None`: all).
    pub namespace: Option<String>,
    /// Start after this resourceVersion; `None` means "now, with initial ADDED events".
    pub since: Option<u64>,
    /// Label filter.
    pub labels: LabelSelector,
    /// Field filter.
    pub fields: FieldSelector,
    /// `timeoutSeconds`.
    pub timeout: Option<Duration>,
    /// `allowWatchBookmarks=true`.
    pub bookmarks: bool,
    /// `sendInitialEvents=true`.
    pub send_initial_events: bool,
    /// Version the client asked for (objects are presented in it).
    pub version: String,
    /// How event objects are presented.
    pub view: View,
}

/// How a watch presents the objects of its events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    /// Whole objects.
    Full,
    /// `PartialObjectMetadata` objects.
    Metadata,
    /// One-row `meta.k8s.io/v1` Tables (`kubectl get -w`), rows carrying this object.
    Table(Include),
}

impl WatchParams {
    /// Reads the watch parameters from the query string.
    pub fn from_query(
        rt: &ResourceType,
        rp: &ResourcePath,
        q: &HashMap<String, String>,
    ) -> Result<Self, ApiError> {
        let bad = |e: super::selector::SelectorError| ApiError::BadRequest(e.to_string());
        let since = match q.get("resourceVersion").map(String::as_str) {
            None | Some("") | Some("0") => None,
            Some(rv) => Some(
                rv.parse::<u64>()
                    .map_err(|_| ApiError::BadRequest(format!("invalid resource version: {rv}")))?,
            ),
        };
        let timeout = match q.get("timeoutSeconds") {
            Some(t) => Some(Duration::from_secs(t.parse().map_err(|_| {
                ApiError::BadRequest(format!("invalid timeoutSeconds: {t}"))
            })?)),
            None => None,
        };
        let send_initial_events = q.get("sendInitialEvents").is_some_and(|v| v == "true");
        Ok(Self {
            namespace: if rt.namespaced {
                rp.namespace.clone()
            } else {
                None
            },
            since: if send_initial_events { None } else { since },
            labels: LabelSelector::parse(q.get("labelSelector").map_or("", String::as_str))
                .map_err(bad)?,
            fields: FieldSelector::parse(q.get("fieldSelector").map_or("", String::as_str))
                .map_err(bad)?,
            timeout,
            bookmarks: q
                .get("allowWatchBookmarks")
                .is_some_and(|v| v == "true" || v == "1"),
            send_initial_events,
            version: rp.version.clone(),
            view: View::Full,
        })
    }

    /// How a watch with these filters reports an event, if at all. As in the apiserver's
    /// watch cache, a modification that moves an object into the selection is an ADDED,
    /// and one that moves it out is a DELETED carrying the previous state (stamped with
    /// the event's resourceVersion).
    fn seen_as(&self, e: &Event) -> Option<(EventType, Value)> {
        let now = self.matches(&e.object);
        let before = e.previous.as_deref().filter(|p| self.matches(p));
        match (e.kind, before, now) {
            (EventType::Modified, Some(prev), false) => {
                let mut prev = prev.clone();
                if let Some(meta) = prev.get_mut("metadata").and_then(Value::as_object_mut) {
                    meta.insert("resourceVersion".into(), json!(e.rv.to_string()));
                }
                Some((EventType::Deleted, prev))
            }
            (EventType::Modified, None, true) => Some((EventType::Added, (*e.object).clone())),
            (kind, _, true) => Some((kind, (*e.object).clone())),
            _ => None,
        }
    }

    /// An object as this watch's client wants to see it.
    fn present(&self, rt: &ResourceType, obj: Value) -> Value {
        let obj = with_version(obj, rt, &self.version);
        match self.view {
            View::Full => obj,
            View::Metadata => super::partial::object(&obj),
            View::Table(include) => table::of_object(rt, &obj, include, jiff::Timestamp::now()),
        }
    }

    fn matches(&self, obj: &Value) -> bool {
        let ns_ok = self.namespace.as_deref().is_none_or(|ns| {
            obj.pointer("/metadata/namespace").and_then(Value::as_str) == Some(ns)
        });
        ns_ok && self.labels.matches(obj) && self.fields.matches(obj)
    }
}

fn line(kind: &str, object: Value) -> Bytes {
    let mut s = json!({ "type": kind, "object": object }).to_string();
    s.push('\n');
    Bytes::from(s)
}

fn bookmark(rt: &ResourceType, version: &str, rv: u64, initial_end: bool) -> Bytes {
    let mut meta = json!({ "resourceVersion": rv.to_string() });
    if initial_end {
        meta["annotations"] = json!({ "k8s.io/initial-events-end": "true" });
    }
    line(
        "BOOKMARK",
        json!({ "kind": rt.kind, "apiVersion": rt.api_version(version), "metadata": meta }),
    )
}

/// Starts the watch task and answers with its stream.
pub fn response(shared: Arc<Shared>, rt: ResourceType, params: WatchParams) -> Response {
    let (tx, rx) = mpsc::channel(64);
    tokio::spawn(run(shared, rt, params, tx));
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        stream_body(rx),
    )
        .into_response()
}

/// What one look at the store produced.
enum Batch {
    Lines(Vec<Bytes>, u64),
    Expired(Bytes),
}

fn initial(shared: &Shared, rt: &ResourceType, p: &WatchParams) -> (Vec<Bytes>, u64) {
    let cluster = shared.lock();
    let lines = cluster
        .store
        .list(&key_of(rt), p.namespace.as_deref())
        .filter(|o| p.matches(o))
        .map(|o| line("ADDED", p.present(rt, o.clone())))
        .collect();
    (lines, cluster.store.current_rv())
}

fn since(shared: &Shared, rt: &ResourceType, p: &WatchParams, cursor: u64) -> Batch {
    let cluster = shared.lock();
    match cluster.store.events_since(&key_of(rt), cursor) {
        Ok(events) => {
            let lines = events
                .iter()
                .filter_map(|e| {
                    let (kind, object) = p.seen_as(e)?;
                    Some(line(kind.as_str(), p.present(rt, object)))
                })
                .collect();
            Batch::Lines(lines, cluster.store.current_rv().max(cursor))
        }
        Err(StoreError::Expired { requested, oldest }) => Batch::Expired(line(
            "ERROR",
            ApiError::Expired { requested, oldest }.to_status(),
        )),
    }
}

async fn send_all(tx: &mpsc::Sender<Bytes>, lines: Vec<Bytes>) -> bool {
    for l in lines {
        if tx.send(l).await.is_err() {
            return false;
        }
    }
    true
}

async fn run(shared: Arc<Shared>, rt: ResourceType, p: WatchParams, tx: mpsc::Sender<Bytes>) {
    let mut changes = shared.changes.subscribe();
    let mut drops = shared.faults.watch_drops();
    drops.mark_unchanged();
    let mut cursor = match p.since {
        Some(rv) => rv,
        None => {
            let (lines, rv) = initial(&shared, &rt, &p);
            if !send_all(&tx, lines).await {
                return;
            }
            if p.send_initial_events
                && p.bookmarks
                && tx.send(bookmark(&rt, &p.version, rv, true)).await.is_err()
            {
                return;
            }
            rv
        }
    };
    let deadline = p.timeout.map(|t| tokio::time::Instant::now() + t);
    let mut ticks = tokio::time::interval(shared.bookmark_interval);
    ticks.tick().await;
    loop {
        match since(&shared, &rt, &p, cursor) {
            Batch::Expired(err) => {
                let _ = tx.send(err).await;
                return;
            }
            Batch::Lines(lines, rv) => {
                if !send_all(&tx, lines).await {
                    return;
                }
                cursor = rv;
            }
        }
        let until_deadline = async {
            match deadline {
                Some(d) => tokio::time::sleep_until(d).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            changed = changes.changed() => if changed.is_err() { return },
            _ = ticks.tick() => {
                if p.bookmarks && tx.send(bookmark(&rt, &p.version, cursor, false)).await.is_err() {
                    return;
                }
            }
            _ = until_deadline => return,
            _ = drops.changed() => return,
            _ = tx.closed() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::ResourceKey;

    fn params(labels: &str) -> WatchParams {
        WatchParams {
            namespace: None,
            since: None,
            labels: LabelSelector::parse(labels).expect("selector"),
            fields: FieldSelector::default(),
            timeout: None,
            bookmarks: false,
            send_initial_events: false,
            version: "v1".into(),
            view: View::Full,
        }
    }

    fn event(kind: EventType, before: Option<&str>, after: &str) -> Event {
        let obj =
            |app: &str| Arc::new(json!({ "metadata": { "name": "x", "labels": { "app": app } } }));
        Event {
            rv: 9,
            kind,
            resource: ResourceKey {
                group: String::new(),
                plural: "configmaps".into(),
            },
            object: obj(after),
            previous: before.map(obj),
        }
    }

    #[test]
    fn objects_entering_and_leaving_a_selection() {
        let p = params("app=web");
        let kind = |e: &Event| p.seen_as(e).map(|(k, _)| k);
        assert_eq!(
            kind(&event(EventType::Modified, Some("api"), "web")),
            Some(EventType::Added)
        );
        assert_eq!(
            kind(&event(EventType::Modified, Some("web"), "web")),
            Some(EventType::Modified)
        );
        assert_eq!(kind(&event(EventType::Modified, Some("api"), "db")), None);
        let left = p.seen_as(&event(EventType::Modified, Some("web"), "api"));
        let (k, obj) = left.expect("reported");
        assert_eq!(k, EventType::Deleted);
        assert_eq!(
            obj["metadata"]["labels"]["app"], "web",
            "DELETED carries the state that matched"
        );
        assert_eq!(obj["metadata"]["resourceVersion"], "9");
        assert_eq!(kind(&event(EventType::Added, None, "api")), None);
    }
}
