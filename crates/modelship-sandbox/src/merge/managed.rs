//! `metadata.managedFields`: reading the entries of an object, resolving ownership after a
//! write (structured-merge-diff's `update`), and writing the entries back in
//! kube-apiserver's order.
//!
//! An entry is identified by manager, operation and subresource, plus apiVersion for
//! `Update` entries (kube keeps one Apply entry per manager whatever its apiVersion).

use serde_json::{Map, Value, json};

use super::compare::Comparison;
use super::fieldset::{FieldSet, FieldSetError, Path, path_string};
use super::{Conflict, MergeError, UpdateManager};

/// Why `metadata.managedFields` cannot be read. The text is the message of the 422
/// ([`MergeError::Invalid`]); nothing counts these apart.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub(super) enum ManagedFieldsError {
    /// `metadata.managedFields` is neither null nor a list.
    #[error("metadata.managedFields must be a list")]
    NotAList,
    /// An entry's operation is neither `Apply` nor `Update` (`None` when it has none).
    #[error("managedFields: invalid operation {0:?}")]
    Operation(Option<String>),
    /// An entry's `fieldsV1` is not a field set.
    #[error("managedFields: {0}")]
    Fields(#[from] FieldSetError),
}

/// The operation of a managedFields entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Operation {
    /// Server-side apply.
    Apply,
    /// Any other write.
    Update,
}

impl Operation {
    fn as_str(self) -> &'static str {
        match self {
            Operation::Apply => "Apply",
            Operation::Update => "Update",
        }
    }
}

/// One managedFields entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Entry {
    pub manager: String,
    pub operation: Operation,
    pub api_version: String,
    pub time: Option<String>,
    pub subresource: Option<String>,
    pub set: FieldSet,
}

impl Entry {
    /// Whether `other` is the same entry slot: same manager, operation and subresource,
    /// and for `Update` entries the same apiVersion.
    pub fn same_slot(&self, other: &Entry) -> bool {
        self.manager == other.manager
            && self.operation == other.operation
            && self.subresource == other.subresource
            && (self.operation == Operation::Apply || self.api_version == other.api_version)
    }

    fn conflict(&self, path: &Path) -> Conflict {
        Conflict {
            manager: self.manager.clone(),
            field: path_string(path),
            update: (self.operation == Operation::Update).then(|| UpdateManager {
                api_version: self.api_version.clone(),
                time: self.time.clone(),
            }),
        }
    }

    fn to_json(&self) -> Value {
        let mut map = Map::new();
        map.insert("manager".into(), json!(self.manager));
        map.insert("operation".into(), json!(self.operation.as_str()));
        map.insert("apiVersion".into(), json!(self.api_version));
        if let Some(time) = &self.time {
            map.insert("time".into(), json!(time));
        }
        map.insert("fieldsType".into(), json!("FieldsV1"));
        map.insert("fieldsV1".into(), self.set.to_json());
        if let Some(subresource) = &self.subresource {
            map.insert("subresource".into(), json!(subresource));
        }
        Value::Object(map)
    }

    fn from_json(json: &Value) -> Result<Entry, ManagedFieldsError> {
        let text = |name: &str| json.get(name).and_then(Value::as_str).map(str::to_string);
        let operation = match text("operation").as_deref() {
            Some("Apply") => Operation::Apply,
            Some("Update") => Operation::Update,
            other => return Err(ManagedFieldsError::Operation(other.map(String::from))),
        };
        let set = match json.get("fieldsV1") {
            Some(fields) => FieldSet::from_json(fields)?,
            None => FieldSet::new(),
        };
        Ok(Entry {
            manager: text("manager").unwrap_or_default(),
            operation,
            api_version: text("apiVersion").unwrap_or_default(),
            time: text("time"),
            subresource: text("subresource").filter(|s| !s.is_empty()),
            set,
        })
    }
}

/// All entries of one object.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct Managers {
    pub entries: Vec<Entry>,
}

impl Managers {
    /// Reads `metadata.managedFields` of `obj` (absent = none).
    pub fn from_object(obj: &Value) -> Result<Managers, ManagedFieldsError> {
        let Some(list) = obj.pointer("/metadata/managedFields") else {
            return Ok(Managers::default());
        };
        if list.is_null() {
            return Ok(Managers::default());
        }
        let items = list.as_array().ok_or(ManagedFieldsError::NotAList)?;
        let entries = items
            .iter()
            .map(Entry::from_json)
            .collect::<Result<_, _>>()?;
        Ok(Managers { entries })
    }

    /// Removes and returns the entry in the same slot as `like`.
    pub fn take(&mut self, like: &Entry) -> Option<Entry> {
        let index = self.entries.iter().position(|e| e.same_slot(like))?;
        Some(self.entries.remove(index))
    }

    /// The union of the sets of all `Apply` entries.
    pub fn applied_union(&self) -> FieldSet {
        self.entries
            .iter()
            .filter(|e| e.operation == Operation::Apply)
            .fold(FieldSet::new(), |acc, e| acc.union(&e.set))
    }

    /// structured-merge-diff's `update`: every entry but `acting` conflicts on the fields
    /// it owns that `comparison` added or modified; unless `force`, conflicts fail the
    /// write; otherwise conflicting fields move away from their owners, removed fields
    /// are dropped from every other entry, and empty entries disappear.
    pub fn resolve(
        &mut self,
        acting: &Entry,
        comparison: &Comparison,
        force: bool,
    ) -> Result<(), MergeError> {
        let changed = comparison.changed();
        let mut conflicts = Vec::new();
        for entry in &mut self.entries {
            if entry.same_slot(acting) {
                continue;
            }
            let lost = entry.set.intersection(&changed);
            conflicts.extend(lost.iter().map(|path| entry.conflict(path)));
            entry.set = entry.set.difference(&lost).difference(&comparison.removed);
        }
        if !force && !conflicts.is_empty() {
            return Err(MergeError::Conflicts(conflicts));
        }
        self.entries.retain(|e| !e.set.is_empty());
        Ok(())
    }

    /// Writes the entries into `obj.metadata.managedFields`, sorted like kube-apiserver
    /// (operation, time, manager, apiVersion); removes the field when there are none.
    pub fn write(&self, obj: &mut Value) {
        let mut entries: Vec<&Entry> = self.entries.iter().filter(|e| !e.set.is_empty()).collect();
        entries.sort_by(|a, b| {
            (a.operation, &a.time, &a.manager, &a.api_version).cmp(&(
                b.operation,
                &b.time,
                &b.manager,
                &b.api_version,
            ))
        });
        let Some(root) = obj.as_object_mut() else {
            return;
        };
        let metadata = root
            .entry("metadata")
            .or_insert_with(|| Value::Object(Map::new()));
        let Some(metadata) = metadata.as_object_mut() else {
            return;
        };
        if entries.is_empty() {
            metadata.remove("managedFields");
        } else {
            let list = entries.iter().map(|e| e.to_json()).collect();
            metadata.insert("managedFields".into(), Value::Array(list));
        }
    }
}

/// A copy of `obj` without `metadata.managedFields`.
pub(super) fn without_managed_fields(obj: &Value) -> Value {
    let mut copy = obj.clone();
    if let Some(metadata) = copy.get_mut("metadata").and_then(Value::as_object_mut) {
        metadata.remove("managedFields");
    }
    copy
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip_and_sort_like_kube() {
        let obj = json!({"metadata": {"managedFields": [
            {"manager": "b", "operation": "Update", "apiVersion": "apps/v1",
             "time": "2026-01-01T00:00:02Z", "fieldsType": "FieldsV1",
             "fieldsV1": {"f:spec": {"f:replicas": {}}}},
            {"manager": "a", "operation": "Apply", "apiVersion": "apps/v1",
             "time": "2026-01-01T00:00:03Z", "fieldsType": "FieldsV1",
             "fieldsV1": {"f:spec": {"f:paused": {}}}}
        ]}});
        let managers = Managers::from_object(&obj).expect("valid");
        let mut out = json!({});
        managers.write(&mut out);
        let names: Vec<&str> = out["metadata"]["managedFields"]
            .as_array()
            .expect("list")
            .iter()
            .filter_map(|e| e["manager"].as_str())
            .collect();
        assert_eq!(names, ["a", "b"]);
        let mut sorted = managers;
        sorted.entries.reverse();
        assert_eq!(Managers::from_object(&out), Ok(sorted));
    }

    #[test]
    fn malformed_entries_are_rejected() {
        let cases = [
            json!({"metadata": {"managedFields": {}}}),
            json!({"metadata": {"managedFields": [{"manager": "a", "operation": "Edit"}]}}),
            json!({"metadata": {"managedFields": [{"manager": "a", "operation": "Apply",
                "fieldsV1": {"bad": {}}}]}}),
        ];
        for obj in cases {
            assert!(Managers::from_object(&obj).is_err(), "{obj}");
        }
    }
}
