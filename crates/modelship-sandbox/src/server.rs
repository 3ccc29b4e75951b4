//! The HTTP edge: one axum fallback handler that routes every request by its path.
//!
//! ```text
//! request -> path::parse -> discovery document
//!                        -> resource: registry lookup -> verb -> counters -> faults
//!                           -> ops / patch (under the cluster lock) -> JSON answer
//!                           -> watch::stream (chunked WatchEvents)
//! ```
//! All cluster state sits behind one mutex in [`Shared`]; handlers hold it only for the
//! synchronous operation, never across an await. After every write the new
//! resourceVersion is published on `changes`, which wakes watches and the Deployment
//! controller.

use super::counters::{Counters, Verb, Write};
use super::discovery;
use super::faults::Faults;
use super::openapi;
use super::ops::{Cluster, WriteCtx, WriteMode, target, with_version};
use super::partial;
use super::patch::{Part, PatchKind, PatchRequest, scale_of};
use super::path::{self, ResourcePath, Route};
use super::protobuf::{self, ProtoError};
use super::registry::ResourceType;
use super::selector::{FieldSelector, LabelSelector};
use super::status::ApiError;
use super::table::{self, Include};
use super::watch;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;
use tokio::sync::watch as channel;

/// State shared by all handlers and background tasks.
#[derive(Debug)]
pub struct Shared {
    /// Registry and store.
    pub cluster: Mutex<Cluster>,
    /// The latest resourceVersion, published after every write.
    pub changes: channel::Sender<u64>,
    /// Request counters.
    pub counters: Counters,
    /// Fault plan.
    pub faults: Faults,
    /// `host:port` the server listens on (for `/api`).
    pub server_address: String,
    /// Interval between BOOKMARK events on watches that asked for them.
    pub bookmark_interval: Duration,
    /// Deployments the controller keeps unready: `(namespace, name)`.
    pub held: Mutex<HashSet<(String, String)>>,
}

impl Shared {
    /// Locks the cluster (a poisoned lock is recovered: the state is always consistent
    /// between operations).
    pub fn lock(&self) -> MutexGuard<'_, Cluster> {
        self.cluster.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs a write and publishes the resulting resourceVersion.
    pub fn write<R>(&self, f: impl FnOnce(&mut Cluster) -> R) -> R {
        let (out, rv) = {
            let mut cluster = self.lock();
            let out = f(&mut cluster);
            (out, cluster.store.current_rv())
        };
        self.changes.send_if_modified(|old| {
            let changed = *old != rv;
            *old = rv;
            changed
        });
        out
    }

    /// Wakes watchers of `changes` without a write (e.g. a hold was released).
    pub fn poke(&self) {
        self.changes.send_modify(|_| {});
    }
}

/// A JSON answer with a status code.
pub fn json_response(code: u16, body: &Value) -> Response {
    let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

fn error_response(err: &ApiError) -> Response {
    json_response(err.code(), &err.to_status())
}

/// The axum router of the sandbox.
pub fn router(shared: Arc<Shared>) -> axum::Router {
    axum::Router::new().fallback(dispatch).with_state(shared)
}

async fn dispatch(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(route) = path::parse(uri.path()) else {
        return error_response(&ApiError::NoRoute);
    };
    let query = parse_query(&uri);
    if let Route::Resource(rp) = route {
        return resource(shared, method, rp, query, &headers, body).await;
    }
    if method != Method::GET {
        return error_response(&ApiError::MethodNotAllowed);
    }
    let cluster = shared.lock();
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if matches!(route, Route::CoreVersions | Route::Groups) && discovery::wants_aggregated(accept) {
        let doc = discovery::aggregated(&cluster.registry, route == Route::CoreVersions);
        return (
            StatusCode::OK,
            [(header::CONTENT_TYPE, discovery::AGGREGATED_V2)],
            doc.to_string(),
        )
            .into_response();
    }
    let doc = match route {
        Route::Version => Some(discovery::version()),
        Route::CoreVersions => Some(discovery::core_versions(&shared.server_address)),
        Route::Groups => Some(discovery::group_list(&cluster.registry)),
        Route::Group(g) => discovery::group_list(&cluster.registry)["groups"]
            .as_array()
            .and_then(|gs| gs.iter().find(|x| x["name"] == g.as_str()).cloned())
            .map(|mut g| {
                g["kind"] = json!("APIGroup");
                g["apiVersion"] = json!("v1");
                g
            }),
        Route::GroupVersion { group, version } => {
            discovery::resource_list(&cluster.registry, &group, &version)
        }
        Route::OpenApiRoot => Some(openapi::root(&cluster.registry)),
        Route::OpenApi { group, version } => {
            openapi::group_version(&cluster.registry, &group, &version)
        }
        Route::Resource(_) => None,
    };
    match doc {
        Some(doc) => json_response(200, &doc),
        None => error_response(&ApiError::NoRoute),
    }
}

fn parse_query(uri: &Uri) -> HashMap<String, String> {
    axum::extract::Query::<HashMap<String, String>>::try_from_uri(uri)
        .map(|q| q.0)
        .unwrap_or_default()
}

fn is_true(q: &HashMap<String, String>, key: &str) -> bool {
    q.get(key).is_some_and(|v| v == "true" || v == "1")
}

fn classify(
    method: &Method,
    rp: &ResourcePath,
    q: &HashMap<String, String>,
    headers: &HeaderMap,
) -> Result<Verb, ApiError> {
    let named = rp.name.is_some();
    Ok(match (method.as_str(), named) {
        ("GET", true) => Verb::Get,
        ("GET", false) if is_true(q, "watch") => Verb::Watch,
        ("GET", false) => Verb::List,
        ("POST", false) => Verb::Create,
        ("PUT", true) => Verb::Update,
        ("PATCH", true) => {
            let ct = headers
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default();
            match PatchKind::from_content_type(ct) {
                Some(PatchKind::Apply) => Verb::Apply,
                Some(_) => Verb::Patch,
                None => {
                    return Err(ApiError::UnsupportedMediaType(
                        "application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json, application/apply-patch+yaml".into(),
                    ));
                }
            }
        }
        ("DELETE", _) => Verb::Delete,
        _ => return Err(ApiError::MethodNotAllowed),
    })
}

/// The field manager of a write: `fieldManager`, else the User-Agent up to its first `/`.
fn manager(q: &HashMap<String, String>, headers: &HeaderMap) -> String {
    if let Some(m) = q.get("fieldManager").filter(|m| !m.is_empty()) {
        return m.clone();
    }
    let ua = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("unknown");
    ua.split('/')
        .next()
        .unwrap_or("unknown")
        .chars()
        .filter(|c| !c.is_control())
        .take(128)
        .collect()
}

fn dry_run(q: &HashMap<String, String>) -> Result<bool, ApiError> {
    match q.get("dryRun").map(String::as_str) {
        None | Some("") => Ok(false),
        Some("All") => Ok(true),
        Some(other) => Err(ApiError::BadRequest(format!(
            "Invalid dry run value: {other}; the only valid value is All"
        ))),
    }
}

async fn resource(
    shared: Arc<Shared>,
    method: Method,
    rp: ResourcePath,
    q: HashMap<String, String>,
    headers: &HeaderMap,
    body: Bytes,
) -> Response {
    let rt = shared
        .lock()
        .registry
        .find(&rp.group, &rp.version, &rp.plural)
        .cloned();
    let Some(rt) = rt else {
        return error_response(&ApiError::NoRoute);
    };
    let Some(part) = Part::of(&rt, rp.subresource.as_deref()) else {
        return error_response(&ApiError::NoRoute);
    };
    let verb = match classify(&method, &rp, &q, headers) {
        Ok(v) => v,
        Err(e) => return error_response(&e),
    };
    let counted = match &rp.subresource {
        Some(sub) => format!("{}/{sub}", rt.plural),
        None => rt.plural.clone(),
    };
    shared.counters.record(verb, &counted);
    if verb.is_write() {
        shared.counters.record_write(Write {
            verb,
            resource: counted.clone(),
            namespace: rp.namespace.clone().unwrap_or_default(),
            name: rp.name.clone().unwrap_or_default(),
        });
    }
    let decision = shared.faults.decide(
        verb,
        &counted,
        &target(&rt, rp.name.as_deref().unwrap_or_default()),
    );
    if !decision.delay.is_zero() {
        tokio::time::sleep(decision.delay).await;
    }
    if let Some(err) = decision.fail {
        return error_response(&err);
    }
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    // Only object bodies (create, update) are decoded from protobuf; DeleteOptions are not.
    let decodes_protobuf = matches!(verb, Verb::Create | Verb::Update) && protobuf::is_protobuf(ct);
    let body = if decodes_protobuf {
        match decode_protobuf(&body) {
            Ok(json) => json,
            Err(e) => return error_response(&e),
        }
    } else {
        body
    };
    if matches!(verb, Verb::Create | Verb::Update | Verb::Delete)
        && !body.is_empty()
        && !ct.is_empty()
        && !ct.starts_with("application/json")
        && !decodes_protobuf
    {
        return error_response(&ApiError::UnsupportedMediaType("application/json".into()));
    }
    if verb == Verb::Watch {
        let view = match table_wanted(headers, &q) {
            Ok(Some(include)) => watch::View::Table(include),
            Ok(None) if metadata_only(headers) => watch::View::Metadata,
            Ok(None) => watch::View::Full,
            Err(e) => return error_response(&e),
        };
        return match watch::WatchParams::from_query(&rt, &rp, &q) {
            Ok(params) => watch::response(shared, rt, watch::WatchParams { view, ..params }),
            Err(e) => error_response(&e),
        };
    }
    match handle(&shared, verb, &rt, &rp, part, &q, headers, &body) {
        Ok((code, value)) => json_response(code, &value),
        Err(e) => error_response(&e),
    }
}

/// A protobuf request body re-encoded as the JSON body the rest of the server expects.
fn decode_protobuf(body: &[u8]) -> Result<Bytes, ApiError> {
    let value = protobuf::decode(body).map_err(|e| match e {
        ProtoError::UnsupportedKind { .. } => ApiError::UnsupportedBody(e.to_string()),
        _ => ApiError::BadRequest(format!("error decoding request body: {e}")),
    })?;
    Ok(Bytes::from(value.to_string()))
}

fn accept(headers: &HeaderMap) -> &str {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
}

/// The row object a Table answer should carry, when the client asked for a Table.
fn table_wanted(
    headers: &HeaderMap,
    q: &HashMap<String, String>,
) -> Result<Option<Include>, ApiError> {
    if !table::wanted(accept(headers)) {
        return Ok(None);
    }
    Include::from_query(q.get("includeObject").map(String::as_str)).map(Some)
}

fn metadata_only(headers: &HeaderMap) -> bool {
    partial::wanted(accept(headers))
}

fn selectors(q: &HashMap<String, String>) -> Result<(LabelSelector, FieldSelector), ApiError> {
    let get = |k: &str| q.get(k).map_or("", String::as_str);
    let bad = |e: super::selector::SelectorError| ApiError::BadRequest(e.to_string());
    Ok((
        LabelSelector::parse(get("labelSelector")).map_err(bad)?,
        FieldSelector::parse(get("fieldSelector")).map_err(bad)?,
    ))
}

fn parse_body(body: &[u8]) -> Result<Value, ApiError> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::BadRequest(format!("error decoding request body: {e}")))
}

#[allow(clippy::too_many_arguments)]
fn handle(
    shared: &Shared,
    verb: Verb,
    rt: &ResourceType,
    rp: &ResourcePath,
    part: Part,
    q: &HashMap<String, String>,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(u16, Value), ApiError> {
    let ns = rp.namespace.as_deref();
    let name = rp.name.as_deref().unwrap_or_default();
    let version = rp.version.as_str();
    if !rt.namespaced && ns.is_some() {
        return Err(ApiError::NoRoute);
    }
    if rt.namespaced && ns.is_none() && !matches!(verb, Verb::List | Verb::Watch) {
        return Err(ApiError::NoRoute);
    }
    let now = jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    let who = manager(q, headers);
    let ctx = WriteCtx {
        dry_run: dry_run(q)?,
        manager: &who,
        now: &now,
    };
    let present = |v: Value| match part {
        Part::Scale => v,
        _ => with_version(v, rt, version),
    };
    match verb {
        Verb::Get => {
            let obj = shared.lock().get(rt, ns, name)?;
            let as_table = table_wanted(headers, q)?;
            Ok((
                200,
                match (part, as_table) {
                    (Part::Scale, _) => scale_of(&obj),
                    (_, Some(include)) => {
                        table::of_object(rt, &present(obj), include, jiff::Timestamp::now())
                    }
                    (_, None) if metadata_only(headers) => partial::object(&present(obj)),
                    _ => present(obj),
                },
            ))
        }
        Verb::List => {
            let (labels, fields) = selectors(q)?;
            let as_table = table_wanted(headers, q)?;
            let list = shared.lock().list(rt, version, ns, &labels, &fields);
            Ok((
                200,
                if let Some(include) = as_table {
                    table::of_list(rt, &list, include, jiff::Timestamp::now())
                } else if metadata_only(headers) {
                    partial::list(&list)
                } else {
                    list
                },
            ))
        }
        Verb::Create => {
            let body = parse_body(body)?;
            Cluster::check_identity(rt, version, &body, ns, None)?;
            shared
                .write(|c| c.create(rt, ns, body, ctx))
                .map(|v| (201, present(v)))
        }
        Verb::Update => {
            let body = parse_body(body)?;
            if part == Part::Scale {
                return shared
                    .write(|c| c.update_scale(rt, ns, name, &body, ctx))
                    .map(|v| (200, v));
            }
            Cluster::check_identity(rt, version, &body, ns, Some(name))?;
            let mode = if part == Part::Status {
                WriteMode::Status
            } else {
                WriteMode::Main { record: true }
            };
            shared
                .write(|c| c.update(rt, ns, name, body, ctx, mode))
                .map(|v| (200, present(v)))
        }
        Verb::Patch | Verb::Apply => {
            if verb == Verb::Apply && q.get("fieldManager").is_none_or(|m| m.is_empty()) {
                return Err(ApiError::BadRequest(
                    "PATCH, application/apply-patch+yaml requires fieldManager to be set".into(),
                ));
            }
            let ct = headers
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default();
            let kind = PatchKind::from_content_type(ct)
                .ok_or_else(|| ApiError::UnsupportedMediaType(ct.to_string()))?;
            let req = PatchRequest {
                kind,
                body,
                force: is_true(q, "force"),
                part,
            };
            let (v, created) = shared.write(|c| c.patch(rt, version, ns, name, req, ctx))?;
            Ok((if created { 201 } else { 200 }, present(v)))
        }
        Verb::Delete => {
            let options = if body.is_empty() {
                json!({})
            } else {
                parse_body(body)?
            };
            // DeleteOptions may carry dryRun in the body as well as in the query.
            let in_body = options
                .get("dryRun")
                .and_then(Value::as_array)
                .is_some_and(|d| d.iter().any(|v| v == "All"));
            let ctx = WriteCtx {
                dry_run: ctx.dry_run || in_body,
                ..ctx
            };
            if rp.name.is_none() {
                let (labels, fields) = selectors(q)?;
                return Ok((
                    200,
                    shared.write(|c| c.delete_collection(rt, version, ns, &labels, &fields, ctx)),
                ));
            }
            shared
                .write(|c| c.delete(rt, ns, name, &options, ctx))
                .map(|v| (200, v))
        }
        Verb::Watch => Err(ApiError::MethodNotAllowed),
    }
}

/// A streaming body from a channel of chunks.
pub fn stream_body(rx: tokio::sync::mpsc::Receiver<Bytes>) -> Body {
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|chunk| (Ok::<_, std::convert::Infallible>(chunk), rx))
    });
    Body::from_stream(stream)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn manager_comes_from_field_manager_or_user_agent() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::USER_AGENT,
            "kubectl/v1.32.0 (linux/amd64) kubernetes/abc"
                .parse()
                .expect("header"),
        );
        assert_eq!(manager(&query(&[]), &headers), "kubectl");
        assert_eq!(
            manager(&query(&[("fieldManager", "modelship")]), &headers),
            "modelship"
        );
        assert_eq!(manager(&query(&[]), &HeaderMap::new()), "unknown");
    }

    #[test]
    fn protobuf_bodies_fail_as_400_when_malformed_and_415_for_other_kinds() {
        let code = |body: &[u8]| decode_protobuf(body).map(|_| ()).map_err(|e| e.code());
        assert_eq!(code(b"{}"), Err(400));
        assert_eq!(code(b"k8s\x00\x0a\x7f"), Err(400));
        let deployment = b"k8s\x00\x0a\x15\x0a\x07apps/v1\x12\x0aDeployment";
        let err = decode_protobuf(deployment).expect_err("Deployment is refused");
        assert_eq!((err.code(), err.reason()), (415, "UnsupportedMediaType"));
        assert!(
            err.to_string().contains("not Deployment (apps/v1)"),
            "{err}"
        );
        let namespace = b"k8s\x00\x0a\x0f\x0a\x02v1\x12\x09Namespace\x12\x06\x0a\x04\x0a\x02ml";
        let json: Value = decode_protobuf(namespace)
            .map(|b| serde_json::from_slice(&b).expect("JSON"))
            .expect("Namespace decodes");
        assert_eq!(json["metadata"]["name"], "ml");
    }

    #[test]
    fn dry_run_accepts_only_all() {
        assert_eq!(dry_run(&query(&[])), Ok(false));
        assert_eq!(dry_run(&query(&[("dryRun", "All")])), Ok(true));
        assert_eq!(
            dry_run(&query(&[("dryRun", "Some")])).map_err(|e| e.code()),
            Err(400)
        );
    }

    #[test]
    fn verbs_follow_method_name_and_query() {
        let rp = |name: Option<&str>| ResourcePath {
            group: "apps".into(),
            version: "v1".into(),
            plural: "deployments".into(),
            namespace: Some("default".into()),
            name: name.map(String::from),
            subresource: None,
        };
        let none = HeaderMap::new();
        let mut apply = HeaderMap::new();
        apply.insert(
            header::CONTENT_TYPE,
            "application/apply-patch+yaml".parse().expect("header"),
        );
        let cases = [
            (Method::GET, rp(Some("a")), query(&[]), &none, Ok(Verb::Get)),
            (
                Method::GET,
                rp(None),
                query(&[("watch", "1")]),
                &none,
                Ok(Verb::Watch),
            ),
            (Method::GET, rp(None), query(&[]), &none, Ok(Verb::List)),
            (Method::POST, rp(None), query(&[]), &none, Ok(Verb::Create)),
            (
                Method::PUT,
                rp(Some("a")),
                query(&[]),
                &none,
                Ok(Verb::Update),
            ),
            (
                Method::PATCH,
                rp(Some("a")),
                query(&[]),
                &apply,
                Ok(Verb::Apply),
            ),
            (Method::PATCH, rp(Some("a")), query(&[]), &none, Err(415)),
            (
                Method::DELETE,
                rp(None),
                query(&[]),
                &none,
                Ok(Verb::Delete),
            ),
            (Method::POST, rp(Some("a")), query(&[]), &none, Err(405)),
        ];
        for (method, path, q, headers, want) in cases {
            let got = classify(&method, &path, &q, headers).map_err(|e| e.code());
            assert_eq!(got, want, "{method} {:?}", path.name);
        }
    }
}
