//! Protobuf request bodies (`Content-Type: application/vnd.kubernetes.protobuf`).
//!
//! kubectl's `create namespace|configmap|secret generic|serviceaccount` generators send
//! built-in kinds in Kubernetes' protobuf encoding. This module decodes those bodies into
//! the JSON the JSON path would have received, so the rest of the sandbox never sees
//! protobuf:
//!
//! ```text
//! "k8s\0" magic | runtime.Unknown { typeMeta{apiVersion, kind}, raw, contentEncoding, contentType }
//!                                              |
//!                           raw = typed message (Namespace, ConfigMap, Secret, ServiceAccount)
//!                                              |
//!                                 serde_json::Value (same shape as a JSON body)
//! ```
//!
//! Only the wire format is implemented (varints, length-delimited fields, skipping of
//! fixed-width fields), with the field numbers of `k8s.io/api/core/v1/generated.proto` and
//! `k8s.io/apimachinery/pkg/apis/meta/v1/generated.proto`. Nesting depth is fixed by the
//! schema (no recursion on input), every length is checked against the remaining bytes,
//! so a malformed body is an error, never a panic. Other kinds are refused with
//! [`ProtoError::UnsupportedKind`] (a 415 naming the kind).

use base64::Engine;
use serde_json::{Map, Value, json};

/// The media type kubectl sends for protobuf bodies.
pub const MEDIA_TYPE: &str = "application/vnd.kubernetes.protobuf";

/// The 4-byte prefix of every Kubernetes protobuf body.
const MAGIC: &[u8; 4] = b"k8s\x00";

/// Why a protobuf body could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtoError {
    /// The body does not start with `k8s\0`.
    #[error("protobuf body does not start with the k8s\\x00 magic prefix")]
    Magic,
    /// A varint, length or fixed-width value runs past the end of its message.
    #[error("truncated protobuf message in {0}")]
    Truncated(&'static str),
    /// A varint is longer than 10 bytes.
    #[error("malformed varint in {0}")]
    Varint(&'static str),
    /// A wire type that is not 0, 1, 2 or 5 (groups are not used by Kubernetes).
    #[error("unsupported protobuf wire type {wire} in {message}")]
    WireType {
        /// The message being decoded.
        message: &'static str,
        /// The wire type found.
        wire: u64,
    },
    /// A known field arrived with the wrong wire type.
    #[error("field {field} of {message} has the wrong wire type")]
    WrongType {
        /// The message being decoded.
        message: &'static str,
        /// The field number.
        field: u64,
    },
    /// A string field is not UTF-8.
    #[error("field {field} of {message} is not valid UTF-8")]
    Utf8 {
        /// The message being decoded.
        message: &'static str,
        /// The field number.
        field: u64,
    },
    /// The envelope declares a content encoding (e.g. gzip) the sandbox does not decode.
    #[error("unsupported protobuf content encoding {0:?}")]
    Encoding(String),
    /// A kind whose protobuf schema the sandbox does not know.
    #[error(
        "the sandbox decodes protobuf bodies only for Namespace, ConfigMap, Secret and ServiceAccount, not {kind} ({api_version}); send it as JSON instead, e.g. with kubectl apply -f"
    )]
    UnsupportedKind {
        /// `apiVersion` from the envelope.
        api_version: String,
        /// `kind` from the envelope.
        kind: String,
    },
}

impl ProtoError {
    /// A short, stable name for the cause, as a metric label.
    pub fn metric_label(&self) -> &'static str {
        match self {
            ProtoError::Magic => "proto_magic",
            ProtoError::Truncated(_) | ProtoError::Varint(_) => "proto_truncated",
            ProtoError::WireType { .. } | ProtoError::WrongType { .. } => "proto_wire_type",
            ProtoError::Utf8 { .. } => "proto_utf8",
            ProtoError::Encoding(_) => "proto_encoding",
            ProtoError::UnsupportedKind { .. } => "proto_unsupported_kind",
        }
    }
}

type Result<T, E = ProtoError> = std::result::Result<T, E>;

/// Whether a Content-Type header names the Kubernetes protobuf media type.
pub fn is_protobuf(content_type: &str) -> bool {
    content_type
        .split(';')
        .next()
        .is_some_and(|m| m.trim().eq_ignore_ascii_case(MEDIA_TYPE))
}

/// One field value on the wire.
#[derive(Debug, Clone, Copy)]
enum Wire<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
    /// A fixed 32- or 64-bit value (not used by the decoded kinds; skipped).
    Fixed,
}

/// Iterates the fields of one message.
struct Fields<'a> {
    message: &'static str,
    buf: &'a [u8],
}

impl<'a> Fields<'a> {
    fn new(message: &'static str, buf: &'a [u8]) -> Self {
        Self { message, buf }
    }

    fn varint(&mut self) -> Result<u64> {
        let mut value = 0u64;
        for (i, byte) in self.buf.iter().enumerate().take(10) {
            value |= u64::from(byte & 0x7f) << (7 * i);
            if byte & 0x80 == 0 {
                self.buf = &self.buf[i + 1..];
                return Ok(value);
            }
        }
        if self.buf.len() < 10 {
            Err(ProtoError::Truncated(self.message))
        } else {
            Err(ProtoError::Varint(self.message))
        }
    }

    fn take(&mut self, n: u64) -> Result<&'a [u8]> {
        let n = usize::try_from(n).map_err(|_| ProtoError::Truncated(self.message))?;
        if n > self.buf.len() {
            return Err(ProtoError::Truncated(self.message));
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    /// The next `(field number, value)`, or `None` at the end of the message.
    fn next_field(&mut self) -> Result<Option<(u64, Wire<'a>)>> {
        if self.buf.is_empty() {
            return Ok(None);
        }
        let key = self.varint()?;
        let value = match key & 7 {
            0 => Wire::Varint(self.varint()?),
            1 => {
                self.take(8)?;
                Wire::Fixed
            }
            2 => {
                let len = self.varint()?;
                Wire::Bytes(self.take(len)?)
            }
            5 => {
                self.take(4)?;
                Wire::Fixed
            }
            wire => {
                return Err(ProtoError::WireType {
                    message: self.message,
                    wire,
                });
            }
        };
        Ok(Some((key >> 3, value)))
    }

    /// Calls `f` for every field of the message.
    fn each(mut self, mut f: impl FnMut(u64, Wire<'a>) -> Result<()>) -> Result<()> {
        while let Some((field, value)) = self.next_field()? {
            f(field, value)?;
        }
        Ok(())
    }
}

fn bytes<'a>(message: &'static str, field: u64, w: Wire<'a>) -> Result<&'a [u8]> {
    match w {
        Wire::Bytes(b) => Ok(b),
        _ => Err(ProtoError::WrongType { message, field }),
    }
}

fn string(message: &'static str, field: u64, w: Wire<'_>) -> Result<String> {
    let b = bytes(message, field, w)?;
    String::from_utf8(b.to_vec()).map_err(|_| ProtoError::Utf8 { message, field })
}

fn boolean(message: &'static str, field: u64, w: Wire<'_>) -> Result<bool> {
    match w {
        Wire::Varint(v) => Ok(v != 0),
        _ => Err(ProtoError::WrongType { message, field }),
    }
}

/// One `map<string, V>` entry (`key = 1`, `value = 2`); `V` is returned as raw bytes.
fn map_entry<'a>(message: &'static str, b: &'a [u8]) -> Result<(String, &'a [u8])> {
    let mut key = String::new();
    let mut value: &[u8] = &[];
    Fields::new(message, b).each(|f, w| {
        match f {
            1 => key = string(message, f, w)?,
            2 => value = bytes(message, f, w)?,
            _ => {}
        }
        Ok(())
    })?;
    Ok((key, value))
}

fn string_entry(message: &'static str, b: &[u8], into: &mut Map<String, Value>) -> Result<()> {
    let (k, v) = map_entry(message, b)?;
    let v = String::from_utf8(v.to_vec()).map_err(|_| ProtoError::Utf8 { message, field: 2 })?;
    into.insert(k, Value::String(v));
    Ok(())
}

fn base64_entry(message: &'static str, b: &[u8], into: &mut Map<String, Value>) -> Result<()> {
    let (k, v) = map_entry(message, b)?;
    let encoded = base64::engine::general_purpose::STANDARD.encode(v);
    into.insert(k, Value::String(encoded));
    Ok(())
}

/// Inserts `key: value` when `value` is not empty (proto2 sends empty strings and maps
/// for unset Go fields; JSON omits them).
fn put_nonempty(obj: &mut Map<String, Value>, key: &str, value: Value) {
    let empty = match &value {
        Value::String(s) => s.is_empty(),
        Value::Object(m) => m.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Null => true,
        _ => false,
    };
    if !empty {
        obj.insert(key.to_string(), value);
    }
}

/// `metav1.ObjectMeta`: name, generateName, namespace, labels, annotations,
/// ownerReferences and finalizers. Server-owned fields (uid, resourceVersion, timestamps, managedFields) are
/// skipped, as the server sets them anyway.
fn object_meta(b: &[u8]) -> Result<Value> {
    const M: &str = "ObjectMeta";
    let mut meta = Map::new();
    let (mut labels, mut annotations) = (Map::new(), Map::new());
    let (mut finalizers, mut owners) = (Vec::new(), Vec::new());
    Fields::new(M, b).each(|f, w| {
        match f {
            1 => put_nonempty(&mut meta, "name", json!(string(M, f, w)?)),
            2 => put_nonempty(&mut meta, "generateName", json!(string(M, f, w)?)),
            3 => put_nonempty(&mut meta, "namespace", json!(string(M, f, w)?)),
            11 => string_entry(M, bytes(M, f, w)?, &mut labels)?,
            12 => string_entry(M, bytes(M, f, w)?, &mut annotations)?,
            13 => owners.push(reference("OwnerReference", bytes(M, f, w)?)?),
            14 => finalizers.push(json!(string(M, f, w)?)),
            _ => {}
        }
        Ok(())
    })?;
    put_nonempty(&mut meta, "labels", Value::Object(labels));
    put_nonempty(&mut meta, "annotations", Value::Object(annotations));
    put_nonempty(&mut meta, "ownerReferences", Value::Array(owners));
    put_nonempty(&mut meta, "finalizers", Value::Array(finalizers));
    Ok(Value::Object(meta))
}

/// Starts a JSON object with `apiVersion` and `kind`.
fn typed(api_version: &str, kind: &str) -> Map<String, Value> {
    let mut obj = Map::new();
    obj.insert("apiVersion".into(), json!(api_version));
    obj.insert("kind".into(), json!(kind));
    obj
}

fn namespace(obj: &mut Map<String, Value>, b: &[u8]) -> Result<()> {
    const M: &str = "Namespace";
    Fields::new(M, b).each(|f, w| {
        match f {
            1 => {
                obj.insert("metadata".into(), object_meta(bytes(M, f, w)?)?);
            }
            2 => {
                let mut finalizers = Vec::new();
                Fields::new("NamespaceSpec", bytes(M, f, w)?).each(|f, w| {
                    if f == 1 {
                        finalizers.push(json!(string("NamespaceSpec", f, w)?));
                    }
                    Ok(())
                })?;
                if !finalizers.is_empty() {
                    obj.insert("spec".into(), json!({ "finalizers": finalizers }));
                }
            }
            _ => {}
        }
        Ok(())
    })
}

fn config_map(obj: &mut Map<String, Value>, b: &[u8]) -> Result<()> {
    const M: &str = "ConfigMap";
    let (mut data, mut binary) = (Map::new(), Map::new());
    Fields::new(M, b).each(|f, w| {
        match f {
            1 => {
                obj.insert("metadata".into(), object_meta(bytes(M, f, w)?)?);
            }
            2 => string_entry(M, bytes(M, f, w)?, &mut data)?,
            3 => base64_entry(M, bytes(M, f, w)?, &mut binary)?,
            4 => {
                obj.insert("immutable".into(), json!(boolean(M, f, w)?));
            }
            _ => {}
        }
        Ok(())
    })?;
    put_nonempty(obj, "data", Value::Object(data));
    put_nonempty(obj, "binaryData", Value::Object(binary));
    Ok(())
}

fn secret(obj: &mut Map<String, Value>, b: &[u8]) -> Result<()> {
    const M: &str = "Secret";
    let (mut data, mut string_data) = (Map::new(), Map::new());
    Fields::new(M, b).each(|f, w| {
        match f {
            1 => {
                obj.insert("metadata".into(), object_meta(bytes(M, f, w)?)?);
            }
            2 => base64_entry(M, bytes(M, f, w)?, &mut data)?,
            3 => put_nonempty(obj, "type", json!(string(M, f, w)?)),
            4 => string_entry(M, bytes(M, f, w)?, &mut string_data)?,
            5 => {
                obj.insert("immutable".into(), json!(boolean(M, f, w)?));
            }
            _ => {}
        }
        Ok(())
    })?;
    put_nonempty(obj, "data", Value::Object(data));
    put_nonempty(obj, "stringData", Value::Object(string_data));
    Ok(())
}

/// A `LocalObjectReference`: `name` (1).
fn local_reference(b: &[u8]) -> Result<Value> {
    const M: &str = "LocalObjectReference";
    let mut r = Map::new();
    Fields::new(M, b).each(|f, w| {
        if f == 1 {
            put_nonempty(&mut r, "name", json!(string(M, f, w)?));
        }
        Ok(())
    })?;
    Ok(Value::Object(r))
}

/// An `ObjectReference` (kind 1, namespace 2, name 3, uid 4, apiVersion 5,
/// resourceVersion 6, fieldPath 7; all strings) or an `OwnerReference` (kind 1, name 3,
/// uid 4, apiVersion 5 as strings; controller 6, blockOwnerDeletion 7 as booleans).
fn reference(message: &'static str, b: &[u8]) -> Result<Value> {
    let owner = message == "OwnerReference";
    let mut r = Map::new();
    Fields::new(message, b).each(|f, w| {
        let key = match (f, owner) {
            (1, _) => "kind",
            (2, false) => "namespace",
            (3, _) => "name",
            (4, _) => "uid",
            (5, _) => "apiVersion",
            (6, false) => "resourceVersion",
            (7, false) => "fieldPath",
            (6, true) => {
                r.insert("controller".into(), json!(boolean(message, f, w)?));
                return Ok(());
            }
            (7, true) => {
                r.insert("blockOwnerDeletion".into(), json!(boolean(message, f, w)?));
                return Ok(());
            }
            _ => return Ok(()),
        };
        put_nonempty(&mut r, key, json!(string(message, f, w)?));
        Ok(())
    })?;
    Ok(Value::Object(r))
}

fn service_account(obj: &mut Map<String, Value>, b: &[u8]) -> Result<()> {
    const M: &str = "ServiceAccount";
    let (mut secrets, mut pull) = (Vec::new(), Vec::new());
    Fields::new(M, b).each(|f, w| {
        match f {
            1 => {
                obj.insert("metadata".into(), object_meta(bytes(M, f, w)?)?);
            }
            2 => secrets.push(reference("ObjectReference", bytes(M, f, w)?)?),
            3 => pull.push(local_reference(bytes(M, f, w)?)?),
            4 => {
                obj.insert(
                    "automountServiceAccountToken".into(),
                    json!(boolean(M, f, w)?),
                );
            }
            _ => {}
        }
        Ok(())
    })?;
    put_nonempty(obj, "secrets", Value::Array(secrets));
    put_nonempty(obj, "imagePullSecrets", Value::Array(pull));
    Ok(())
}

/// The decoded `runtime.Unknown` envelope.
struct Envelope<'a> {
    api_version: String,
    kind: String,
    raw: &'a [u8],
    content_encoding: String,
}

fn envelope(body: &[u8]) -> Result<Envelope<'_>> {
    const M: &str = "runtime.Unknown";
    let rest = body.strip_prefix(MAGIC).ok_or(ProtoError::Magic)?;
    let mut env = Envelope {
        api_version: String::new(),
        kind: String::new(),
        raw: &[],
        content_encoding: String::new(),
    };
    Fields::new(M, rest).each(|f, w| {
        match f {
            1 => Fields::new("TypeMeta", bytes(M, f, w)?).each(|f, w| {
                match f {
                    1 => env.api_version = string("TypeMeta", f, w)?,
                    2 => env.kind = string("TypeMeta", f, w)?,
                    _ => {}
                }
                Ok(())
            })?,
            2 => env.raw = bytes(M, f, w)?,
            3 => env.content_encoding = string(M, f, w)?,
            _ => {}
        }
        Ok(())
    })?;
    Ok(env)
}

/// Decodes a Kubernetes protobuf body into the JSON object the JSON path would receive.
pub fn decode(body: &[u8]) -> Result<Value> {
    let env = envelope(body)?;
    if !env.content_encoding.is_empty() {
        return Err(ProtoError::Encoding(env.content_encoding));
    }
    let mut obj = typed(&env.api_version, &env.kind);
    match (env.api_version.as_str(), env.kind.as_str()) {
        ("v1", "Namespace") => namespace(&mut obj, env.raw)?,
        ("v1", "ConfigMap") => config_map(&mut obj, env.raw)?,
        ("v1", "Secret") => secret(&mut obj, env.raw)?,
        ("v1", "ServiceAccount") => service_account(&mut obj, env.raw)?,
        _ => {
            return Err(ProtoError::UnsupportedKind {
                api_version: env.api_version,
                kind: env.kind,
            });
        }
    }
    Ok(Value::Object(obj))
}

#[cfg(test)]
#[path = "protobuf_tests.rs"]
mod tests;
