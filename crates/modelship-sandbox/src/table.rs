//! `meta.k8s.io/v1 Table`: the server-side printing kubectl asks for with
//! `Accept: application/json;as=Table;v=v1;g=meta.k8s.io`.
//!
//! ```text
//! get / list answer --(kind of the resource)--> column definitions + one row per object
//!                                               row.object = PartialObjectMetadata (default)
//! ```
//!
//! Columns follow kube-apiserver's printers for deployments (Name, Ready, Up-to-date,
//! Available, Age; Containers, Images and Selector at priority 1, shown by `-o wide`),
//! services (Name, Type, Cluster-IP, External-IP, Port(s), Age; Selector) and namespaces
//! (Name, Status, Age), configmaps (Name, Data, Age), secrets (Name, Type, Data, Age),
//! serviceaccounts (Name, Secrets, Age) and CRDs (Name, Created At); every other kind
//! (custom resources included: `additionalPrinterColumns` are not read) gets Name and Age. kubectl adds the NAMESPACE
//! column itself from each row's object metadata. `includeObject` selects the row object:
//! `None`, `Metadata` (the default, as in kube-apiserver) or `Object`.

use super::partial;
use super::registry::ResourceType;
use super::status::ApiError;
use serde_json::{Value, json};

const API_VERSION: &str = "meta.k8s.io/v1";

/// What each row carries in `object` (`?includeObject=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Include {
    /// No object.
    None,
    /// The object's `PartialObjectMetadata` (the default).
    Metadata,
    /// The whole object.
    Object,
}

impl Include {
    /// Parses `includeObject`; an unknown value is a 400 as in kube-apiserver.
    pub fn from_query(value: Option<&str>) -> Result<Self, ApiError> {
        match value {
            None | Some("") | Some("Metadata") => Ok(Self::Metadata),
            Some("None") => Ok(Self::None),
            Some("Object") => Ok(Self::Object),
            Some(other) => Err(ApiError::BadRequest(format!(
                "includeObject: Unsupported value: \"{other}\": supported values: \"Metadata\", \"None\", \"Object\""
            ))),
        }
    }
}

/// Whether an Accept header asks for a `meta.k8s.io/v1` Table.
pub fn wanted(accept: &str) -> bool {
    accept.split(',').any(|m| {
        let params: Vec<&str> = m.split(';').map(str::trim).collect();
        params.contains(&"as=Table")
            && params.contains(&"g=meta.k8s.io")
            && params.contains(&"v=v1")
    })
}

/// One column: header name, type, format and priority (0 = always shown).
struct Column {
    name: &'static str,
    kind: &'static str,
    format: &'static str,
    priority: u8,
    description: &'static str,
}

const fn col(
    name: &'static str,
    kind: &'static str,
    priority: u8,
    description: &'static str,
) -> Column {
    Column {
        name,
        kind,
        format: "",
        priority,
        description,
    }
}

const NAME: Column = Column {
    name: "Name",
    kind: "string",
    format: "name",
    priority: 0,
    description: "Name must be unique within a namespace.",
};
const AGE: Column = col(
    "Age",
    "string",
    0,
    "CreationTimestamp is a timestamp representing the server time when this object was created.",
);

/// The printer of a resource: its columns and how to fill a row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Printer {
    Deployment,
    Service,
    Namespace,
    ConfigMap,
    Secret,
    ServiceAccount,
    CustomResourceDefinition,
    Default,
}

impl Printer {
    fn of(rt: &ResourceType) -> Self {
        match (rt.group.as_str(), rt.kind.as_str()) {
            ("apps", "Deployment") => Self::Deployment,
            ("", "Service") => Self::Service,
            ("", "Namespace") => Self::Namespace,
            ("", "ConfigMap") => Self::ConfigMap,
            ("", "Secret") => Self::Secret,
            ("", "ServiceAccount") => Self::ServiceAccount,
            ("apiextensions.k8s.io", "CustomResourceDefinition") => Self::CustomResourceDefinition,
            _ => Self::Default,
        }
    }

    fn columns(self) -> Vec<Column> {
        match self {
            Self::Deployment => vec![
                NAME,
                col("Ready", "string", 0, "Number of the pod with ready state"),
                col(
                    "Up-to-date",
                    "integer",
                    0,
                    "Total number of non-terminated pods targeted by this deployment that have the desired template spec.",
                ),
                col(
                    "Available",
                    "integer",
                    0,
                    "Total number of available pods (ready for at least minReadySeconds) targeted by this deployment.",
                ),
                AGE,
                col(
                    "Containers",
                    "string",
                    1,
                    "Names of each container in the template.",
                ),
                col(
                    "Images",
                    "string",
                    1,
                    "Images referenced by each container in the template.",
                ),
                col(
                    "Selector",
                    "string",
                    1,
                    "Label selector for pods. Existing ReplicaSets whose pods are selected by this will be the ones affected by this deployment.",
                ),
            ],
            Self::Service => vec![
                NAME,
                col(
                    "Type",
                    "string",
                    0,
                    "type determines how the Service is exposed.",
                ),
                col(
                    "Cluster-IP",
                    "string",
                    0,
                    "clusterIP is the IP address of the service.",
                ),
                col(
                    "External-IP",
                    "string",
                    0,
                    "externalIPs is a list of IP addresses for which nodes in the cluster will also accept traffic for this service.",
                ),
                col(
                    "Port(s)",
                    "string",
                    0,
                    "The list of ports that are exposed by this service.",
                ),
                AGE,
                col(
                    "Selector",
                    "string",
                    1,
                    "Route service traffic to pods with label keys and values matching this selector.",
                ),
            ],
            Self::Namespace => vec![
                NAME,
                col("Status", "string", 0, "The status of the namespace"),
                AGE,
            ],
            Self::ConfigMap => vec![NAME, col("Data", "integer", 0, "Number of keys"), AGE],
            Self::Secret => vec![
                NAME,
                col(
                    "Type",
                    "string",
                    0,
                    "Used to facilitate programmatic handling of secret data.",
                ),
                col("Data", "integer", 0, "Number of keys"),
                AGE,
            ],
            Self::ServiceAccount => {
                vec![NAME, col("Secrets", "integer", 0, "Number of secrets"), AGE]
            }
            Self::CustomResourceDefinition => vec![
                NAME,
                Column {
                    name: "Created At",
                    kind: "date",
                    format: "",
                    priority: 0,
                    description: "CreationTimestamp is a timestamp representing the server time when this object was created.",
                },
            ],
            Self::Default => vec![NAME, AGE],
        }
    }

    fn cells(self, obj: &Value, now: jiff::Timestamp) -> Vec<Value> {
        let name = json!(str_at(obj, "/metadata/name"));
        let age = json!(age(obj, now));
        match self {
            Self::Deployment => {
                let int = |p: &str| obj.pointer(p).and_then(Value::as_i64).unwrap_or(0);
                let containers = obj
                    .pointer("/spec/template/spec/containers")
                    .and_then(Value::as_array)
                    .map(Vec::as_slice)
                    .unwrap_or_default();
                let join = |key: &str| {
                    containers
                        .iter()
                        .filter_map(|c| c.get(key).and_then(Value::as_str))
                        .collect::<Vec<_>>()
                        .join(",")
                };
                vec![
                    name,
                    json!(format!(
                        "{}/{}",
                        int("/status/readyReplicas"),
                        obj.pointer("/spec/replicas")
                            .and_then(Value::as_i64)
                            .unwrap_or(1)
                    )),
                    json!(int("/status/updatedReplicas")),
                    json!(int("/status/availableReplicas")),
                    age,
                    json!(join("name")),
                    json!(join("image")),
                    json!(selector(obj.pointer("/spec/selector/matchLabels"))),
                ]
            }
            Self::Service => vec![
                name,
                json!(
                    obj.pointer("/spec/type")
                        .and_then(Value::as_str)
                        .unwrap_or("ClusterIP")
                ),
                json!(none_if_empty(str_at(obj, "/spec/clusterIP"))),
                json!(external_ip(obj)),
                json!(ports(obj)),
                age,
                json!(selector(obj.pointer("/spec/selector"))),
            ],
            Self::Namespace => vec![
                name,
                json!(
                    obj.pointer("/status/phase")
                        .and_then(Value::as_str)
                        .unwrap_or("Active")
                ),
                age,
            ],
            Self::ConfigMap => vec![name, json!(keys(obj, &["data", "binaryData"])), age],
            Self::Secret => vec![
                name,
                json!(obj.get("type").and_then(Value::as_str).unwrap_or("Opaque")),
                json!(keys(obj, &["data", "stringData"])),
                age,
            ],
            Self::ServiceAccount => {
                let secrets = obj
                    .get("secrets")
                    .and_then(Value::as_array)
                    .map_or(0, Vec::len);
                vec![name, json!(secrets), age]
            }
            Self::CustomResourceDefinition => {
                vec![name, json!(str_at(obj, "/metadata/creationTimestamp"))]
            }
            Self::Default => vec![name, age],
        }
    }
}

/// The number of distinct keys in the given maps of `obj` (e.g. `data` and `binaryData`).
fn keys(obj: &Value, maps: &[&str]) -> usize {
    let mut all: Vec<&String> = maps
        .iter()
        .filter_map(|m| obj.get(*m).and_then(Value::as_object))
        .flat_map(|m| m.keys())
        .collect();
    all.sort();
    all.dedup();
    all.len()
}

fn str_at<'a>(obj: &'a Value, pointer: &str) -> &'a str {
    obj.pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_default()
}

fn none_if_empty(s: &str) -> String {
    if s.is_empty() {
        "<none>".into()
    } else {
        s.into()
    }
}

/// `k=v,k2=v2` of a label map, `<none>` when empty.
fn selector(labels: Option<&Value>) -> String {
    let pairs: Vec<String> = labels
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
        .collect();
    none_if_empty(&pairs.join(","))
}

fn external_ip(svc: &Value) -> String {
    let mut ips: Vec<&str> = Vec::new();
    if str_at(svc, "/spec/type") == "LoadBalancer" {
        for ingress in svc
            .pointer("/status/loadBalancer/ingress")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let ip = str_at(ingress, "/ip");
            ips.push(if ip.is_empty() {
                str_at(ingress, "/hostname")
            } else {
                ip
            });
        }
        if ips.is_empty() && svc.pointer("/spec/externalIPs").is_none() {
            return "<pending>".into();
        }
    }
    if str_at(svc, "/spec/type") == "ExternalName" {
        return none_if_empty(str_at(svc, "/spec/externalName"));
    }
    for ip in svc
        .pointer("/spec/externalIPs")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
    {
        ips.push(ip);
    }
    none_if_empty(&ips.join(","))
}

/// `80/TCP,443:30443/TCP`.
fn ports(svc: &Value) -> String {
    let list: Vec<String> = svc
        .pointer("/spec/ports")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|p| {
            let port = p.get("port").and_then(Value::as_i64).unwrap_or(0);
            let proto = p.get("protocol").and_then(Value::as_str).unwrap_or("TCP");
            match p.get("nodePort").and_then(Value::as_i64) {
                Some(node) => format!("{port}:{node}/{proto}"),
                None => format!("{port}/{proto}"),
            }
        })
        .collect();
    none_if_empty(&list.join(","))
}

/// The object's age as kubectl prints it (`<unknown>` without a creationTimestamp).
fn age(obj: &Value, now: jiff::Timestamp) -> String {
    str_at(obj, "/metadata/creationTimestamp")
        .parse::<jiff::Timestamp>()
        .map_or_else(
            |_| "<unknown>".into(),
            |t| human_duration(now.as_second() - t.as_second()),
        )
}

/// Kubernetes' `duration.HumanDuration`: two significant units at most, coarser with age.
pub fn human_duration(seconds: i64) -> String {
    if seconds < -1 {
        return "<invalid>".into();
    }
    let s = seconds.max(0);
    let (m, h) = (s / 60, s / 3600);
    let (d, y) = (h / 24, h / (24 * 365));
    match () {
        () if s < 120 => format!("{s}s"),
        () if m < 10 => match s % 60 {
            0 => format!("{m}m"),
            rem => format!("{m}m{rem}s"),
        },
        () if m < 180 => format!("{m}m"),
        () if h < 8 => match m % 60 {
            0 => format!("{h}h"),
            rem => format!("{h}h{rem}m"),
        },
        () if h < 48 => format!("{h}h"),
        () if h < 24 * 8 => match h % 24 {
            0 => format!("{d}d"),
            rem => format!("{d}d{rem}h"),
        },
        () if h < 24 * 365 * 2 => format!("{d}d"),
        () if h < 24 * 365 * 8 => match d % 365 {
            0 => format!("{y}y"),
            rem => format!("{y}y{rem}d"),
        },
        () => format!("{y}y"),
    }
}

fn column_definitions(printer: Printer) -> Vec<Value> {
    printer
        .columns()
        .iter()
        .map(|c| {
            json!({
                "name": c.name,
                "type": c.kind,
                "format": c.format,
                "description": c.description,
                "priority": c.priority,
            })
        })
        .collect()
}

fn row(printer: Printer, obj: &Value, include: Include, now: jiff::Timestamp) -> Value {
    let mut row = json!({ "cells": printer.cells(obj, now) });
    match include {
        Include::None => {}
        Include::Metadata => row["object"] = partial::object(obj),
        Include::Object => row["object"] = obj.clone(),
    }
    row
}

fn table(printer: Printer, resource_version: Value, rows: Vec<Value>) -> Value {
    json!({
        "kind": "Table",
        "apiVersion": API_VERSION,
        "metadata": { "resourceVersion": resource_version },
        "columnDefinitions": column_definitions(printer),
        "rows": rows,
    })
}

/// A `<Kind>List` as a Table.
pub fn of_list(rt: &ResourceType, list: &Value, include: Include, now: jiff::Timestamp) -> Value {
    let printer = Printer::of(rt);
    let rows = list
        .get("items")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|o| row(printer, o, include, now))
        .collect();
    let rv = list
        .pointer("/metadata/resourceVersion")
        .cloned()
        .unwrap_or(json!(""));
    table(printer, rv, rows)
}

/// One object as a one-row Table.
pub fn of_object(rt: &ResourceType, obj: &Value, include: Include, now: jiff::Timestamp) -> Value {
    let printer = Printer::of(rt);
    let rv = obj
        .pointer("/metadata/resourceVersion")
        .cloned()
        .unwrap_or(json!(""));
    table(printer, rv, vec![row(printer, obj, include, now)])
}

#[cfg(test)]
#[path = "table_tests.rs"]
mod tests;
