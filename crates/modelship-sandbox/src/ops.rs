//! The verbs: get, list, create, update, delete and the shared write path.
//!
//! [`Cluster`] owns the registry and the store. Every write goes through
//! [`Cluster::commit`], which does the apiserver's bookkeeping in one place: identity
//! (apiVersion, kind, name, namespace), uid, creationTimestamp, generation (bumped only
//! when something outside metadata and status changes), status-subresource rules,
//! defaulting, managedFields for non-apply writes, no-op detection (an unchanged object
//! keeps its resourceVersion) and `dryRun`. Side effects of particular kinds (CRDs
//! register routes, namespaces take their contents with them, Services hold a cluster
//! IP) live here too. Everything is synchronous: the server calls it under one lock.

use super::merge;
use super::registry::{Registry, ResourceType};
use super::rng::XorShift;
use super::selector::{FieldSelector, LabelSelector};
use super::services::IpAllocator;
use super::status::{ApiError, Target, success_status};
use super::store::{ResourceKey, Store};
use serde_json::{Map, Value, json};

/// Result of the verbs.
pub type Result<T, E = ApiError> = std::result::Result<T, E>;

/// Who writes, when, and whether for real.
#[derive(Debug, Clone, Copy)]
pub struct WriteCtx<'a> {
    /// `dryRun=All`: compute the result, store nothing.
    pub dry_run: bool,
    /// Field manager recorded in managedFields.
    pub manager: &'a str,
    /// The request time, RFC 3339.
    pub now: &'a str,
}

/// Which part of an object a write may change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteMode {
    /// The main resource; `record` says whether to add a managedFields Update entry
    /// (server-side apply records its own).
    Main {
        /// Record an Update entry for the manager.
        record: bool,
    },
    /// The `/status` subresource: only status changes.
    Status,
}

/// Namespaces that exist from the start, like in a fresh cluster.
pub const INITIAL_NAMESPACES: [&str; 3] = ["default", "kube-system", "kube-public"];

/// The cluster state: served kinds plus stored objects.
#[derive(Debug)]
pub struct Cluster {
    /// Served resources.
    pub registry: Registry,
    /// Stored objects and history.
    pub store: Store,
    rng: XorShift,
    uids: u64,
    ips: IpAllocator,
}

/// The store key of a resource type.
pub fn key_of(rt: &ResourceType) -> ResourceKey {
    ResourceKey {
        group: rt.group.clone(),
        plural: rt.plural.clone(),
    }
}

/// The error target for an object of `rt`.
pub fn target(rt: &ResourceType, name: &str) -> Target {
    Target {
        group: rt.group.clone(),
        resource: rt.plural.clone(),
        name: name.to_string(),
    }
}

fn meta_str<'a>(obj: &'a Value, field: &str) -> Option<&'a str> {
    obj.get("metadata")?.get(field)?.as_str()
}

/// `metadata` of an object as a map, created (and the object made an object) if needed.
pub fn meta_mut(obj: &mut Value) -> &mut Map<String, Value> {
    if !obj.is_object() {
        *obj = json!({});
    }
    if !obj.get("metadata").is_some_and(Value::is_object) {
        obj["metadata"] = json!({});
    }
    match obj.get_mut("metadata") {
        Some(Value::Object(m)) => m,
        // Unreachable: the branch above made metadata an object.
        _ => unreachable!("metadata was just set to an object"),
    }
}

/// Sets `apiVersion` to the version the request used (one stored copy serves all).
pub fn with_version(mut obj: Value, rt: &ResourceType, version: &str) -> Value {
    if obj.is_object() {
        obj["apiVersion"] = json!(rt.api_version(version));
    }
    obj
}

fn strip_for_spec_compare(obj: &Value) -> Value {
    let mut o = obj.clone();
    if let Some(m) = o.as_object_mut() {
        for k in ["metadata", "status", "apiVersion", "kind"] {
            m.remove(k);
        }
    }
    o
}

fn strip_volatile(obj: &Value) -> Value {
    let mut o = obj.clone();
    if let Some(m) = o.get_mut("metadata").and_then(Value::as_object_mut) {
        m.remove("resourceVersion");
        if let Some(Value::Array(entries)) = m.get_mut("managedFields") {
            for e in entries.iter_mut().filter_map(Value::as_object_mut) {
                e.remove("time");
            }
        }
    }
    o
}

fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

fn is_dns_subdomain(s: &str) -> bool {
    s.len() <= 253 && s.split('.').all(is_dns_label)
}

impl Cluster {
    /// A fresh cluster with the built-in kinds and the initial namespaces, created `now`
    /// (RFC 3339).
    pub fn new(window: usize, seed: u64, now: &str) -> Self {
        let mut cluster = Self {
            registry: Registry::builtin(),
            store: Store::new(window),
            rng: XorShift::new(seed),
            uids: 0,
            ips: IpAllocator::default(),
        };
        let ctx = WriteCtx {
            dry_run: false,
            manager: "sandbox",
            now,
        };
        let ns_type = cluster.namespace_type();
        for ns in INITIAL_NAMESPACES {
            let body =
                json!({ "apiVersion": "v1", "kind": "Namespace", "metadata": { "name": ns } });
            // Creating fixed, valid namespaces in an empty store cannot fail.
            let _ = cluster.create(&ns_type, None, body, ctx);
        }
        cluster
    }

    fn namespace_type(&self) -> ResourceType {
        self.registry
            .find("", "v1", "namespaces")
            .cloned()
            .unwrap_or_else(|| unreachable!("namespaces are built in"))
    }

    fn next_uid(&mut self) -> String {
        self.uids += 1;
        let r = self.rng.next_u64();
        format!(
            "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
            r >> 32,
            (r >> 16) & 0xffff,
            (r >> 4) & 0xfff,
            r & 0xfff,
            self.uids
        )
    }

    fn generate_name(&mut self, prefix: &str) -> String {
        const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
        let suffix: String = (0..5)
            .filter_map(|_| {
                ALPHABET
                    .get(self.rng.below(ALPHABET.len()))
                    .copied()
                    .map(char::from)
            })
            .collect();
        format!("{prefix}{suffix}")
    }

    fn require_namespace(&self, rt: &ResourceType, ns: Option<&str>) -> Result<String> {
        if !rt.namespaced {
            return Ok(String::new());
        }
        let ns = ns.ok_or_else(|| {
            ApiError::BadRequest("the namespace of the object must be set".into())
        })?;
        let ns_key = ResourceKey {
            group: String::new(),
            plural: "namespaces".into(),
        };
        if self.store.get(&ns_key, "", ns).is_none() {
            return Err(ApiError::NotFound(Target {
                group: String::new(),
                resource: "namespaces".into(),
                name: ns.into(),
            }));
        }
        Ok(ns.to_string())
    }

    /// GET one object.
    pub fn get(&self, rt: &ResourceType, ns: Option<&str>, name: &str) -> Result<Value> {
        let ns = if rt.namespaced {
            ns.unwrap_or_default()
        } else {
            ""
        };
        self.store
            .get(&key_of(rt), ns, name)
            .cloned()
            .ok_or_else(|| ApiError::NotFound(target(rt, name)))
    }

    /// LIST objects (one namespace or all) as a `<Kind>List`.
    pub fn list(
        &self,
        rt: &ResourceType,
        version: &str,
        ns: Option<&str>,
        labels: &LabelSelector,
        fields: &FieldSelector,
    ) -> Value {
        let ns = if rt.namespaced { ns } else { None };
        let items: Vec<Value> = self
            .store
            .list(&key_of(rt), ns)
            .filter(|o| labels.matches(o) && fields.matches(o))
            .map(|o| with_version(o.clone(), rt, version))
            .collect();
        json!({
            "kind": format!("{}List", rt.kind),
            "apiVersion": rt.api_version(version),
            "metadata": { "resourceVersion": self.store.current_rv().to_string() },
            "items": items,
        })
    }

    /// Checks that a request body names the same kind and object as the URL.
    pub fn check_identity(
        rt: &ResourceType,
        version: &str,
        body: &Value,
        ns: Option<&str>,
        name: Option<&str>,
    ) -> Result<()> {
        if !body.is_object() {
            return Err(ApiError::BadRequest(
                "the request body must be a JSON object".into(),
            ));
        }
        if body.get("metadata").is_some_and(|m| !m.is_object()) {
            return Err(ApiError::BadRequest(
                "error decoding request body: metadata must be an object".into(),
            ));
        }
        match body.get("kind").and_then(Value::as_str) {
            None | Some("") => {
                return Err(ApiError::BadRequest(
                    "Object 'Kind' is missing in request body".into(),
                ));
            }
            Some(k) if k != rt.kind => {
                return Err(ApiError::BadRequest(format!(
                    "the kind in the data ({k}) does not match the expected kind ({})",
                    rt.kind
                )));
            }
            Some(_) => {}
        }
        let expected = rt.api_version(version);
        match body.get("apiVersion").and_then(Value::as_str) {
            Some(v) if v != expected => {
                return Err(ApiError::BadRequest(format!(
                    "the API version in the data ({v}) does not match the expected API version ({expected})"
                )));
            }
            _ => {}
        }
        if let (Some(url), Some(got)) = (name, meta_str(body, "name"))
            && url != got
        {
            return Err(ApiError::BadRequest(format!(
                "the name of the object ({got}) does not match the name on the URL ({url})"
            )));
        }
        if let (true, Some(url), Some(got)) = (rt.namespaced, ns, meta_str(body, "namespace"))
            && url != got
            && !got.is_empty()
        {
            return Err(ApiError::BadRequest(
                    "the namespace of the provided object does not match the namespace sent on the request".into(),
                ));
        }
        Ok(())
    }

    fn validate_name(rt: &ResourceType, name: &str) -> Result<()> {
        let (ok, rule) = match rt.plural.as_str() {
            "namespaces" => (
                is_dns_label(name),
                "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character",
            ),
            "services" => (
                is_dns_label(name) && name.starts_with(|c: char| c.is_ascii_lowercase()),
                "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character",
            ),
            _ => (
                is_dns_subdomain(name),
                "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character",
            ),
        };
        if ok {
            Ok(())
        } else {
            Err(ApiError::invalid(
                rt.qualified_kind(),
                name,
                "metadata.name",
                format!("Invalid value: \"{name}\": {rule}"),
                target(rt, name),
            ))
        }
    }

    /// POST: create an object (name or generateName).
    pub fn create(
        &mut self,
        rt: &ResourceType,
        ns: Option<&str>,
        body: Value,
        ctx: WriteCtx<'_>,
    ) -> Result<Value> {
        self.create_inner(rt, ns, body, ctx, WriteMode::Main { record: true })
    }

    /// Creates the object a server-side apply produced (managedFields already set).
    pub fn create_applied(
        &mut self,
        rt: &ResourceType,
        ns: Option<&str>,
        body: Value,
        ctx: WriteCtx<'_>,
    ) -> Result<Value> {
        self.create_inner(rt, ns, body, ctx, WriteMode::Main { record: false })
    }

    fn create_inner(
        &mut self,
        rt: &ResourceType,
        ns: Option<&str>,
        mut body: Value,
        ctx: WriteCtx<'_>,
        mode: WriteMode,
    ) -> Result<Value> {
        let ns = self.require_namespace(rt, ns)?;
        let name = match meta_str(&body, "name").filter(|n| !n.is_empty()) {
            Some(n) => n.to_string(),
            None => match meta_str(&body, "generateName").filter(|n| !n.is_empty()) {
                Some(prefix) => {
                    let prefix = prefix.to_string();
                    self.generate_name(&prefix)
                }
                None => {
                    return Err(ApiError::invalid(
                        rt.qualified_kind(),
                        "",
                        "metadata.name",
                        "Required value: name or generateName is required".into(),
                        target(rt, ""),
                    ));
                }
            },
        };
        Self::validate_name(rt, &name)?;
        if self.store.get(&key_of(rt), &ns, &name).is_some() {
            return Err(ApiError::AlreadyExists(target(rt, &name)));
        }
        meta_mut(&mut body).insert("name".into(), json!(name));
        self.commit(rt, &ns, &name, None, body, ctx, mode)
    }

    /// PUT: replace an object, honouring a resourceVersion precondition.
    pub fn update(
        &mut self,
        rt: &ResourceType,
        ns: Option<&str>,
        name: &str,
        body: Value,
        ctx: WriteCtx<'_>,
        mode: WriteMode,
    ) -> Result<Value> {
        let ns = self.require_namespace(rt, ns)?;
        let old = self.get(rt, Some(&ns), name)?;
        check_rv(rt, name, &body, &old)?;
        let new = match mode {
            WriteMode::Status => replace_status(&old, &body),
            WriteMode::Main { .. } => body,
        };
        self.commit(rt, &ns, name, Some(old), new, ctx, mode)
    }

    /// DELETE: remove an object (and what depends on it); answers a success Status.
    pub fn delete(
        &mut self,
        rt: &ResourceType,
        ns: Option<&str>,
        name: &str,
        options: &Value,
        ctx: WriteCtx<'_>,
    ) -> Result<Value> {
        let ns = if rt.namespaced {
            ns.unwrap_or_default().to_string()
        } else {
            String::new()
        };
        let old = self.get(rt, Some(&ns), name)?;
        let uid = meta_str(&old, "uid").unwrap_or_default().to_string();
        if let Some(pre) = options.get("preconditions") {
            let want_uid = pre.get("uid").and_then(Value::as_str);
            let want_rv = pre.get("resourceVersion").and_then(Value::as_str);
            if want_uid.is_some_and(|u| u != uid)
                || want_rv.is_some_and(|r| Some(r) != meta_str(&old, "resourceVersion"))
            {
                return Err(ApiError::Conflict(target(rt, name)));
            }
        }
        if !ctx.dry_run {
            self.remove_with_dependents(rt, &ns, name, &old);
        }
        Ok(success_status(&target(rt, name), &uid))
    }

    /// DELETE on a collection: removes every matching object, answers them as a List.
    pub fn delete_collection(
        &mut self,
        rt: &ResourceType,
        version: &str,
        ns: Option<&str>,
        labels: &LabelSelector,
        fields: &FieldSelector,
        ctx: WriteCtx<'_>,
    ) -> Value {
        let list = self.list(rt, version, ns, labels, fields);
        if !ctx.dry_run {
            for item in list["items"].as_array().into_iter().flatten() {
                let item_ns = meta_str(item, "namespace").unwrap_or_default().to_string();
                let name = meta_str(item, "name").unwrap_or_default().to_string();
                self.remove_with_dependents(rt, &item_ns, &name, item);
            }
        }
        list
    }

    fn remove_with_dependents(&mut self, rt: &ResourceType, ns: &str, name: &str, old: &Value) {
        match (rt.group.as_str(), rt.plural.as_str()) {
            ("", "namespaces") => {
                self.store.remove_namespace_contents(name);
            }
            ("apiextensions.k8s.io", "customresourcedefinitions") => {
                if let Some(gone) = self.registry.unregister_crd(old) {
                    self.store.remove_resource(&key_of(&gone));
                }
            }
            ("", "services") => self.ips.release(old),
            _ => {}
        }
        self.store.remove(&key_of(rt), ns, name);
    }

    /// The shared write path (see the module docs). `old` is the live object, if any.
    #[allow(clippy::too_many_arguments)]
    pub fn commit(
        &mut self,
        rt: &ResourceType,
        ns: &str,
        name: &str,
        old: Option<Value>,
        mut new: Value,
        ctx: WriteCtx<'_>,
        mode: WriteMode,
    ) -> Result<Value> {
        if !new.is_object() {
            return Err(ApiError::BadRequest(
                "the object must be a JSON object".into(),
            ));
        }
        new["kind"] = json!(rt.kind);
        if new.get("apiVersion").and_then(Value::as_str).is_none() {
            let version = rt.versions.first().map_or("v1", String::as_str);
            new["apiVersion"] = json!(rt.api_version(version));
        }
        let meta = meta_mut(&mut new);
        meta.insert("name".into(), json!(name));
        if rt.namespaced {
            meta.insert("namespace".into(), json!(ns));
        } else {
            meta.remove("namespace");
        }
        match &old {
            Some(old) => self.carry_over(rt, old, &mut new, mode),
            None => {
                let uid = self.next_uid();
                let meta = meta_mut(&mut new);
                meta.insert("uid".into(), json!(uid));
                meta.insert("creationTimestamp".into(), json!(ctx.now));
                if rt.has_generation() {
                    meta.insert("generation".into(), json!(1));
                } else {
                    meta.remove("generation");
                }
                meta.remove("resourceVersion");
                if rt.status_subresource
                    && let Some(m) = new.as_object_mut()
                {
                    m.remove("status");
                }
            }
        }
        merge::apply_defaults(&mut new);
        self.kind_specific(rt, old.as_ref(), &mut new, ctx)?;
        if let Some(old) = &old
            && rt.has_generation()
        {
            let generation = old
                .pointer("/metadata/generation")
                .and_then(Value::as_i64)
                .unwrap_or(1);
            let changed = strip_for_spec_compare(old) != strip_for_spec_compare(&new);
            meta_mut(&mut new).insert(
                "generation".into(),
                json!(if changed { generation + 1 } else { generation }),
            );
        }
        match (mode, &old) {
            (WriteMode::Main { record: true }, _) => {
                merge::record_update(old.as_ref(), &mut new, ctx.manager, ctx.now)
            }
            (WriteMode::Status, Some(old)) => {
                merge::record_status_update(old, &mut new, ctx.manager, ctx.now)
            }
            _ => {}
        }
        if let Some(old) = &old
            && strip_volatile(old) == strip_volatile(&new)
        {
            return Ok(old.clone());
        }
        super::typed::check(rt, &new).map_err(|e| ApiError::BadRequest(e.to_string()))?;
        if ctx.dry_run {
            return Ok(new);
        }
        if rt.group == "apiextensions.k8s.io" && rt.plural == "customresourcedefinitions" {
            self.registry
                .register_crd(&new)
                .map_err(|e| crd_invalid(rt, name, e))?;
        }
        if rt.group.is_empty() && rt.plural == "services" {
            self.ips.commit(&new);
        }
        Ok(self.store.put(&key_of(rt), ns, name, new))
    }

    fn carry_over(&self, rt: &ResourceType, old: &Value, new: &mut Value, mode: WriteMode) {
        for field in [
            "uid",
            "creationTimestamp",
            "generation",
            "deletionTimestamp",
        ] {
            match old.get("metadata").and_then(|m| m.get(field)) {
                Some(v) => {
                    meta_mut(new).insert(field.into(), v.clone());
                }
                None => {
                    meta_mut(new).remove(field);
                }
            }
        }
        if rt.status_subresource
            && matches!(mode, WriteMode::Main { .. })
            && let Some(m) = new.as_object_mut()
        {
            match old.get("status") {
                Some(s) => m.insert("status".into(), s.clone()),
                None => m.remove("status"),
            };
        }
    }

    fn kind_specific(
        &mut self,
        rt: &ResourceType,
        old: Option<&Value>,
        new: &mut Value,
        ctx: WriteCtx<'_>,
    ) -> Result<()> {
        match (rt.group.as_str(), rt.plural.as_str()) {
            ("", "services") => self.ips.assign(old, new).map_err(|error| {
                ApiError::invalid(
                    rt.qualified_kind(),
                    meta_str(new, "name").unwrap_or_default(),
                    "spec.clusterIPs",
                    error.to_string(),
                    target(rt, meta_str(new, "name").unwrap_or_default()),
                )
            }),
            ("", "namespaces") => {
                new["status"] = json!({ "phase": "Active" });
                if new.pointer("/spec/finalizers").is_none() {
                    new["spec"] = json!({ "finalizers": ["kubernetes"] });
                }
                let name = json!(meta_str(new, "name").unwrap_or_default());
                if let Some(labels) = meta_mut(new)
                    .entry("labels")
                    .or_insert_with(|| json!({}))
                    .as_object_mut()
                {
                    labels.insert("kubernetes.io/metadata.name".into(), name);
                }
                Ok(())
            }
            ("apiextensions.k8s.io", "customresourcedefinitions") => {
                let name = meta_str(new, "name").unwrap_or_default().to_string();
                super::registry::crd_resource_type(new).map_err(|e| crd_invalid(rt, &name, e))?;
                new["status"] = crd_status(new, ctx.now);
                Ok(())
            }
            _ => Ok(()),
        }
    }
}

fn crd_invalid(rt: &ResourceType, name: &str, e: super::registry::RegistryError) -> ApiError {
    let text = e.to_string();
    let (field, detail) = text
        .split_once(": ")
        .map_or((String::new(), text.clone()), |(f, d)| {
            (f.to_string(), d.to_string())
        });
    ApiError::invalid(rt.qualified_kind(), name, &field, detail, target(rt, name))
}

/// The status a CRD gets once accepted: names accepted, established, stored versions.
fn crd_status(crd: &Value, now: &str) -> Value {
    let stored: Vec<Value> = crd
        .pointer("/spec/versions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|v| v.get("storage").and_then(Value::as_bool).unwrap_or(false))
        .filter_map(|v| v.get("name").cloned())
        .collect();
    let condition = |kind: &str, reason: &str, message: &str| {
        json!({ "type": kind, "status": "True", "reason": reason, "message": message,
                "lastTransitionTime": now })
    };
    json!({
        "acceptedNames": crd.pointer("/spec/names").cloned().unwrap_or(json!({})),
        "conditions": [
            condition("NamesAccepted", "NoConflicts", "no conflicts found"),
            condition("Established", "InitialNamesAccepted", "the initial names have been accepted"),
        ],
        "storedVersions": stored,
    })
}

/// 409 when the body carries a resourceVersion other than the live one.
pub fn check_rv(rt: &ResourceType, name: &str, body: &Value, live: &Value) -> Result<()> {
    match meta_str(body, "resourceVersion").filter(|rv| !rv.is_empty()) {
        Some(rv) if Some(rv) != meta_str(live, "resourceVersion") => {
            Err(ApiError::Conflict(target(rt, name)))
        }
        _ => Ok(()),
    }
}

/// `old` with its status replaced by `body`'s (what a `/status` write may change).
pub fn replace_status(old: &Value, body: &Value) -> Value {
    let mut new = old.clone();
    match body.get("status") {
        Some(s) => new["status"] = s.clone(),
        None => {
            if let Some(m) = new.as_object_mut() {
                m.remove("status");
            }
        }
    }
    new
}

#[cfg(test)]
#[path = "ops_tests.rs"]
mod tests;
