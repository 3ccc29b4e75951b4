//! Temporary stand-in for `sandbox::merge` with the agreed signatures (removed once the
//! real module is merged).
#![allow(dead_code)]

use serde_json::Value;

pub struct ApplyOptions<'a> {
    pub manager: &'a str,
    pub force: bool,
    pub now: &'a str,
}

#[derive(Debug, Clone)]
pub struct Conflict {
    pub manager: String,
    pub field: String,
}

#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    #[error("conflicts")]
    Conflicts(Vec<Conflict>),
    #[error("{0}")]
    Invalid(String),
}

pub fn server_side_apply(
    live: Option<&Value>,
    config: &Value,
    _opts: &ApplyOptions,
) -> Result<Value, MergeError> {
    let mut out = live.cloned().unwrap_or_else(|| serde_json::json!({}));
    json_patch::merge(&mut out, config);
    Ok(out)
}

pub fn record_update(_old: Option<&Value>, _new: &mut Value, _manager: &str, _now: &str) {}

pub fn strategic_merge(live: &Value, patch: &Value) -> Result<Value, MergeError> {
    let mut out = live.clone();
    json_patch::merge(&mut out, patch);
    Ok(out)
}

pub fn apply_defaults(_obj: &mut Value) {}
