//! Server-side apply and update ownership tracking, following kube-apiserver's
//! structured-merge-diff (`merge/update.go`: `Apply`, `Update`, `prune`).
//!
//! ```text
//!  apply:  config ─sanitize─▶ applied set (FieldSet::from_value)
//!          live ⊕ config (tree::merge) ─▶ prune what the applier dropped ─▶ compare(live, new)
//!          ─▶ Managers::resolve (conflicts unless force) ─▶ write managedFields
//!  update: compare(old, new) ─▶ Managers::resolve(force) ─▶ updater gains added ∪ modified
//! ```
//!
//! Not owned by anyone (kube's `stripmeta`): `apiVersion`, `kind`, and `metadata.name`,
//! `namespace`, `uid`, `resourceVersion`, `generation`, `creationTimestamp`, `selfLink`,
//! `managedFields`, `deletionTimestamp`, `deletionGracePeriodSeconds`. Those bookkeeping
//! fields in an applied configuration are ignored (the caller checks `resourceVersion`);
//! so is `status` for kinds with a status subresource.

use serde_json::{Value, json};

use super::compare::compare;
use super::fieldset::{FieldSet, Path, PathElement};
use super::managed::{Entry, Managers, Operation, without_managed_fields};
use super::schema::ObjectSchema;
use super::tree::{merge, remove_path};
use super::{ApplyOptions, MergeError};

/// `metadata` fields no manager owns and an applied configuration does not set.
const BOOKKEEPING: &[&str] = &[
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "selfLink",
    "managedFields",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
];

/// The manager kube-apiserver credits with an object's fields when the first apply finds
/// an object without managedFields.
const BEFORE_FIRST_APPLY: &str = "before-first-apply";

/// Whether a path can be owned (kube's `stripmeta` leaves out identity and bookkeeping).
fn is_owned_path(path: &Path) -> bool {
    match path.as_slice() {
        [PathElement::Field(top), ..] if top == "apiVersion" || top == "kind" => false,
        [PathElement::Field(meta), PathElement::Field(field), ..] if meta == "metadata" => {
            field != "name" && field != "namespace" && !BOOKKEEPING.contains(&field.as_str())
        }
        _ => true,
    }
}

/// Reads a required string field of the top level.
fn type_field<'a>(obj: &'a Value, name: &str) -> Result<&'a str, MergeError> {
    obj.get(name)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| MergeError::Invalid(format!("{name} must be set")))
}

/// The resource an apply writes to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Part {
    /// The main resource: `status` is ignored for kinds with a status subresource.
    Main,
    /// The `status` subresource: only `status` is applied.
    Status,
}

/// The applied configuration without what apply ignores: bookkeeping metadata and, for
/// kinds with a status subresource, `status` (main resource) or everything but `status`
/// (status subresource).
fn sanitize_config(config: &Value, schema: &ObjectSchema, part: Part) -> Value {
    let mut config = config.clone();
    if let Some(root) = config.as_object_mut() {
        match part {
            Part::Main if schema.has_status_subresource() => {
                root.remove("status");
            }
            Part::Main => {}
            Part::Status => {
                root.retain(|k, _| {
                    matches!(k.as_str(), "apiVersion" | "kind" | "metadata" | "status")
                });
                if let Some(metadata) = root.get_mut("metadata").and_then(Value::as_object_mut) {
                    metadata.retain(|k, _| k == "name" || k == "namespace");
                }
            }
        }
        if let Some(metadata) = root.get_mut("metadata").and_then(Value::as_object_mut) {
            for field in BOOKKEEPING {
                metadata.remove(*field);
            }
        }
    }
    config
}

/// Server-side apply of `config` by `opts.manager` onto `live` (`None` = create).
///
/// Returns the merged object with `metadata.managedFields` updated: the applier's `Apply`
/// entry owns exactly the fields of `config`; fields another manager owns with a different
/// value are conflicts unless `opts.force` (then they move to the applier); fields the
/// applier owned before and no longer sends are removed unless another applier owns them.
/// An apply that changes nothing returns `live` unchanged (managedFields times included).
/// No bookkeeping (uid, resourceVersion, generation, timestamps) and no defaulting.
pub fn server_side_apply(
    live: Option<&Value>,
    config: &Value,
    opts: &ApplyOptions,
) -> Result<Value, MergeError> {
    apply_to(live, config, opts, Part::Main)
}

/// Server-side apply to the `status` subresource (`kubectl apply --subresource=status`):
/// only the config's `status` is applied, and the applier's entry carries
/// `subresource: status`. Otherwise like [`server_side_apply`].
pub fn server_side_apply_status(
    live: &Value,
    config: &Value,
    opts: &ApplyOptions,
) -> Result<Value, MergeError> {
    apply_to(Some(live), config, opts, Part::Status)
}

fn apply_to(
    live: Option<&Value>,
    config: &Value,
    opts: &ApplyOptions,
    part: Part,
) -> Result<Value, MergeError> {
    let (api_version, kind) = validate_config(live, config)?;
    let schema = ObjectSchema::for_type(api_version, kind);
    let config = sanitize_config(config, &schema, part);
    let applied = FieldSet::from_value(&config, &schema)
        .map_err(|e| MergeError::Invalid(e.to_string()))?
        .filter(is_owned_path);

    let live_body = live
        .map(without_managed_fields)
        .unwrap_or_else(|| json!({}));
    let mut managers = live_managers(live, &live_body, &schema, api_version)?;
    let original = managers.clone();
    let acting = Entry {
        manager: opts.manager.to_string(),
        operation: Operation::Apply,
        api_version: api_version.to_string(),
        time: Some(opts.now.to_string()),
        subresource: (part == Part::Status).then(|| "status".to_string()),
        set: applied,
    };
    let last = managers.take(&acting).map(|e| e.set);
    managers.entries.push(acting.clone());
    let mut merged = merge(&live_body, &config, &schema);
    if let Some(last) = &last {
        prune(&mut merged, last, &managers.applied_union(), &schema);
        // Pruning drops maps it empties; merging the config again restores the ones the
        // config sets itself (`labels: {}`), so that a re-apply is a no-op.
        merged = merge(&merged, &config, &schema);
    }

    let comparison = compare(&live_body, &merged, &schema).filter(is_owned_path);
    managers
        .resolve(&acting, &comparison, opts.force)
        .map_err(sort_conflicts)?;

    if let Some(live) = live
        && merged == live_body
        && unchanged_except_time(&original, &managers, &acting)
    {
        return Ok(live.clone());
    }
    managers.write(&mut merged);
    Ok(merged)
}

/// Checks the applied configuration's shape and returns its apiVersion and kind.
fn validate_config<'a>(
    live: Option<&Value>,
    config: &'a Value,
) -> Result<(&'a str, &'a str), MergeError> {
    if !config.is_object() {
        return Err(MergeError::Invalid(
            "the applied configuration must be an object".into(),
        ));
    }
    let api_version = type_field(config, "apiVersion")?;
    let kind = type_field(config, "kind")?;
    check_against_live(live, api_version, kind)?;
    if config
        .pointer("/metadata/managedFields")
        .is_some_and(|m| !m.is_null())
    {
        return Err(MergeError::Invalid(
            "metadata.managedFields must be nil".into(),
        ));
    }
    Ok((api_version, kind))
}

/// The managedFields entries of the live object; an existing object without any gets
/// kube's `before-first-apply` entry owning all its fields.
fn live_managers(
    live: Option<&Value>,
    live_body: &Value,
    schema: &ObjectSchema,
    api_version: &str,
) -> Result<Managers, MergeError> {
    let Some(live) = live else {
        return Ok(Managers::default());
    };
    let mut managers =
        Managers::from_object(live).map_err(|error| MergeError::Invalid(error.to_string()))?;
    if managers.entries.is_empty() {
        managers
            .entries
            .push(before_first_apply(live_body, schema, api_version));
    }
    Ok(managers)
}

/// An applied configuration must name the live object's kind and version (no conversion
/// here), with kube-apiserver's message for a version mismatch.
fn check_against_live(
    live: Option<&Value>,
    api_version: &str,
    kind: &str,
) -> Result<(), MergeError> {
    let Some(live) = live else {
        return Ok(());
    };
    let field = |name: &str| live.get(name).and_then(Value::as_str).unwrap_or("");
    if field("kind") != kind {
        return Err(MergeError::Invalid(format!(
            "kind {kind} does not match the live object's kind {:?}",
            field("kind")
        )));
    }
    if field("apiVersion") != api_version {
        return Err(MergeError::Invalid(format!(
            "Incorrect version specified in apply patch. Specified patch version: {api_version}, expected: {}",
            field("apiVersion")
        )));
    }
    Ok(())
}

/// Orders conflicts by manager, then field, for a stable message.
fn sort_conflicts(error: MergeError) -> MergeError {
    match error {
        MergeError::Conflicts(mut conflicts) => {
            conflicts.sort_by(|a, b| a.manager.cmp(&b.manager));
            MergeError::Conflicts(conflicts)
        }
        other => other,
    }
}

/// The `Update` entry kube-apiserver creates for the fields of an object that had no
/// managedFields when first applied to.
fn before_first_apply(live: &Value, schema: &ObjectSchema, api_version: &str) -> Entry {
    let set = compare(&json!({}), live, schema)
        .changed()
        .filter(is_owned_path);
    Entry {
        manager: BEFORE_FIRST_APPLY.to_string(),
        operation: Operation::Update,
        api_version: api_version.to_string(),
        time: None,
        subresource: None,
        set,
    }
}

/// Whether `after` has the same entries as `before` apart from the acting entry's time
/// (and its position).
fn unchanged_except_time(before: &Managers, after: &Managers, acting: &Entry) -> bool {
    if before.entries.len() != after.entries.len() {
        return false;
    }
    before.entries.iter().all(|old| {
        after.entries.iter().any(|new| {
            if new.same_slot(acting) && old.same_slot(acting) {
                new.set == old.set && new.api_version == old.api_version
            } else {
                new == old
            }
        })
    })
}

/// Removes from `merged` what the applier owned last time (`last`) and no applier owns
/// now (`applied`), like structured-merge-diff's `prune`: leaves, list items, atomic
/// values. Fields owned by `Update` managers only are removed too, as kube does.
fn prune(merged: &mut Value, last: &FieldSet, applied: &FieldSet, schema: &ObjectSchema) {
    // A map the applier owned empty and now fills is not stale.
    let stale = last.filter(|path| {
        !applied.contains(path) && !applied.has_descendant(path) && is_owned_path(path)
    });
    // A stale item goes as a whole: paths under it (its key fields among them) are not
    // removed one by one first, or the item could no longer be found by its key.
    let outermost = stale
        .iter()
        .filter(|path| !(1..path.len()).any(|n| path.get(..n).is_some_and(|p| stale.contains(p))));
    for path in outermost {
        remove_path(merged, path, schema);
    }
}

/// After a non-apply write (create, update, merge/JSON/strategic patch) by `manager`,
/// records in `new.metadata.managedFields` an `Update` entry owning the fields that changed
/// from `old`, and removes those fields from other managers' sets, like kube-apiserver.
///
/// The base entries are those `new` carries when they are valid and not empty (clients
/// may rewrite managedFields, as kube allows), else `old`'s; `managedFields: [{}]` clears
/// them, as kube documents.
pub fn record_update(old: Option<&Value>, new: &mut Value, manager: &str, now: &str) {
    record_write(old, new, manager, now, None);
}

/// [`record_update`] for a write to the `status` subresource: the entry carries
/// `subresource: status`, as kube-apiserver records controllers' status updates.
pub fn record_status_update(old: &Value, new: &mut Value, manager: &str, now: &str) {
    record_write(Some(old), new, manager, now, Some("status"));
}

fn record_write(
    old: Option<&Value>,
    new: &mut Value,
    manager: &str,
    now: &str,
    subresource: Option<&str>,
) {
    let Some(api_version) = new
        .get("apiVersion")
        .and_then(Value::as_str)
        .map(str::to_string)
    else {
        return;
    };
    let schema = ObjectSchema::for_object(new);
    let old_body = old.map(without_managed_fields).unwrap_or_else(|| json!({}));
    let new_body = without_managed_fields(new);
    let mut managers = base_managers(old, new);

    let comparison = compare(&old_body, &new_body, &schema).filter(is_owned_path);
    let slot = Entry {
        manager: manager.to_string(),
        operation: Operation::Update,
        api_version,
        time: None,
        subresource: subresource.map(str::to_string),
        set: FieldSet::new(),
    };
    let mut acting = managers.take(&slot).unwrap_or(slot);
    // Forced, so resolving cannot fail.
    let _ = managers.resolve(&acting, &comparison, true);
    let changed = comparison.changed();
    acting.set = acting.set.union(&changed).difference(&comparison.removed);
    if !changed.is_empty() {
        acting.time = Some(now.to_string());
    }
    if !acting.set.is_empty() {
        managers.entries.push(acting);
    }
    managers.write(new);
}

/// The entries an update starts from (see [`record_update`]).
fn base_managers(old: Option<&Value>, new: &Value) -> Managers {
    let given = new.pointer("/metadata/managedFields");
    if given == Some(&json!([{}])) {
        return Managers::default();
    }
    match Managers::from_object(new) {
        Ok(managers) if !managers.entries.is_empty() => managers,
        _ => old
            .and_then(|old| Managers::from_object(old).ok())
            .unwrap_or_default(),
    }
}

#[cfg(test)]
#[path = "apply_tests.rs"]
mod tests;
