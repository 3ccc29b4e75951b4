//! Who owns a live object: the modelship [`Instance`] that wrote it and the service it was
//! compiled from, or nobody modelship knows.
//!
//! Several modelship instances may share a cluster (one per repository); each labels what
//! it writes `modelship.dev/instance: <name>` and sees, heals and prunes only those objects.
//! An object of the same name that it did not write is an [`Occupant`]: the plan shows it
//! as a conflict and its service is blocked, unless a person handed the object over with
//! the annotation `modelship.dev/adopt: <namespace>/<service>`.
//!
//! ```text
//! live object ──Instance::owns──▶ ours (this instance; no instance label = the default)
//!             ──occupant(id)────▶ None (this service's) | Some(Unmanaged | Instance | Service)
//!             ──adopts(id)──────▶ a person asked this service to take it over
//! ```

use std::fmt;
use std::str::FromStr;

use serde::Serialize;
use serde_json::Value;

use crate::meta::{LABEL_MANAGED_BY, LABEL_PREVIEW, LABEL_SERVICE, MANAGED_BY_VALUE, ServiceId};

/// The label naming the modelship instance that wrote an object.
pub const LABEL_MODELSHIP_INSTANCE: &str = "modelship.dev/instance";
/// The annotation by which a person hands an object to a service:
/// `modelship.dev/adopt: <namespace>/<service>`.
pub const ANNOTATION_ADOPT: &str = "modelship.dev/adopt";
/// The instance of `--instance`'s default; objects written before instances existed carry
/// no instance label and belong to it.
pub const DEFAULT_INSTANCE: &str = "modelship";

/// The name of a modelship instance: a label value of 1 to 63 characters, lowercase
/// letters, digits and `-`, starting and ending alphanumeric (it also names the Lease and
/// field manager of the instance, which are held to the same rules).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct Instance(String);

/// Why a text is not an instance name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "instance name `{0}` is not valid: 1 to 63 lowercase letters, digits or `-`, \
     starting and ending with a letter or digit"
)]
pub struct InvalidInstance(pub String);

impl Instance {
    /// Validates a name.
    pub fn new(name: &str) -> Result<Self, InvalidInstance> {
        let bytes = name.as_bytes();
        let valid = !bytes.is_empty()
            && bytes.len() <= 63
            && bytes
                .iter()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
            && bytes.first().is_some_and(u8::is_ascii_alphanumeric)
            && bytes.last().is_some_and(u8::is_ascii_alphanumeric);
        if valid {
            Ok(Instance(name.to_string()))
        } else {
            Err(InvalidInstance(name.to_string()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// True for [`DEFAULT_INSTANCE`].
    pub fn is_default(&self) -> bool {
        self.0 == DEFAULT_INSTANCE
    }

    /// The label selector of this instance's objects outside previews. The default
    /// instance cannot select "its label, or none" on the server, so it selects every
    /// object of modelship's and [`Instance::owns`] drops the other instances' ones.
    pub fn selector(&self) -> String {
        let main = format!("{LABEL_MANAGED_BY}={MANAGED_BY_VALUE},!{LABEL_PREVIEW}");
        if self.is_default() {
            main
        } else {
            format!("{main},{LABEL_MODELSHIP_INSTANCE}={}", self.0)
        }
    }

    /// The label selector of this instance's preview of pull request `pr`.
    pub fn preview_selector(&self, pr: u64) -> String {
        let preview = format!("{LABEL_MANAGED_BY}={MANAGED_BY_VALUE},{LABEL_PREVIEW}={pr}");
        if self.is_default() {
            preview
        } else {
            format!("{preview},{LABEL_MODELSHIP_INSTANCE}={}", self.0)
        }
    }

    /// True when `object` is labelled managed-by modelship for this instance (an object
    /// without an instance label belongs to the default instance).
    pub fn owns(&self, object: &Value) -> bool {
        instance_of(object).is_some_and(|name| name == self.0)
    }

    /// Who, other than service `id` of this instance, holds `object`; `None` when it is
    /// `id`'s own.
    pub fn occupant(&self, object: &Value, id: &ServiceId) -> Option<Occupant> {
        match instance_of(object) {
            None => Some(Occupant::Unmanaged),
            Some(name) if name != self.0 => Some(Occupant::Instance {
                name: name.to_string(),
            }),
            Some(_) => match label(object, LABEL_SERVICE)
                .and_then(|service| ServiceId::new(namespace_of(object), service).ok())
            {
                Some(service) if service == *id => None,
                Some(service) => Some(Occupant::Service { id: service }),
                // Labelled ours without a service: nothing of ours writes that.
                None => Some(Occupant::Unmanaged),
            },
        }
    }
}

impl Default for Instance {
    fn default() -> Self {
        Instance(DEFAULT_INSTANCE.to_string())
    }
}

impl fmt::Display for Instance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for Instance {
    type Err = InvalidInstance;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Instance::new(s)
    }
}

/// Who holds an object that a service would create.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "by", rename_all = "kebab-case")]
pub enum Occupant {
    /// An object without modelship's labels: another tool's or a person's.
    Unmanaged,
    /// An object of another modelship instance.
    Instance { name: String },
    /// An object of another service of this instance.
    Service { id: ServiceId },
}

impl fmt::Display for Occupant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Occupant::Unmanaged => f.write_str("exists, not managed by modelship"),
            Occupant::Instance { name } => {
                write!(f, "exists, managed by modelship instance {name}")
            }
            Occupant::Service { id } => write!(f, "exists, managed by service {id}"),
        }
    }
}

/// True when a person annotated `object` to hand it to service `id`.
pub fn adopts(object: &Value, id: &ServiceId) -> bool {
    object
        .pointer("/metadata/annotations")
        .and_then(|a| a.get(ANNOTATION_ADOPT))
        .and_then(Value::as_str)
        .is_some_and(|value| value.trim() == id.to_string())
}

/// The instance an object is labelled for: `None` when it is not managed by modelship (or
/// is a preview's, which belongs to no reconcile of the main branch).
fn instance_of(object: &Value) -> Option<&str> {
    if label(object, LABEL_MANAGED_BY) != Some(MANAGED_BY_VALUE) {
        return None;
    }
    Some(label(object, LABEL_MODELSHIP_INSTANCE).unwrap_or(DEFAULT_INSTANCE))
}

fn label<'a>(object: &'a Value, name: &str) -> Option<&'a str> {
    object
        .pointer("/metadata/labels")
        .and_then(|labels| labels.get(name))
        .and_then(Value::as_str)
}

fn namespace_of(object: &Value) -> &str {
    object
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn object(labels: Value, annotations: Value) -> Value {
        json!({"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "fraud", "namespace": "risk",
                "labels": labels, "annotations": annotations}})
    }

    fn id(text: &str) -> ServiceId {
        text.parse().unwrap()
    }

    #[test]
    fn instance_names_are_label_values() {
        for good in ["modelship", "team-a", "a", "x1", &"a".repeat(63)] {
            assert!(Instance::new(good).is_ok(), "{good}");
        }
        for bad in ["", "-a", "a-", "A", "a_b", "a.b", "a/b", &"a".repeat(64)] {
            assert_eq!(
                Instance::new(bad),
                Err(InvalidInstance(bad.to_string())),
                "{bad}"
            );
        }
        assert!(Instance::default().is_default());
        assert_eq!("team-a".parse::<Instance>().unwrap().as_str(), "team-a");
    }

    #[test]
    fn selectors_name_the_instance_except_the_default() {
        assert_eq!(
            Instance::default().selector(),
            "app.kubernetes.io/managed-by=modelship,!modelship.dev/preview"
        );
        let named = Instance::new("team-a").unwrap();
        assert_eq!(
            named.selector(),
            "app.kubernetes.io/managed-by=modelship,!modelship.dev/preview,\
             modelship.dev/instance=team-a"
        );
        assert_eq!(
            named.preview_selector(7),
            "app.kubernetes.io/managed-by=modelship,modelship.dev/preview=7,\
             modelship.dev/instance=team-a"
        );
    }

    #[test]
    fn ownership_by_labels() {
        let default = Instance::default();
        let team = Instance::new("team-a").unwrap();
        let me = id("risk/fraud");
        let unlabelled = object(json!({"app": "payments-api"}), json!({}));
        let legacy = object(
            json!({"app.kubernetes.io/managed-by": "modelship", "modelship.dev/service": "fraud"}),
            json!({}),
        );
        let of_team = object(
            json!({"app.kubernetes.io/managed-by": "modelship", "modelship.dev/service": "fraud",
                   "modelship.dev/instance": "team-a"}),
            json!({}),
        );
        let of_other_service = object(
            json!({"app.kubernetes.io/managed-by": "modelship", "modelship.dev/service": "other",
                   "modelship.dev/instance": "modelship"}),
            json!({}),
        );
        let cases: [(&Value, &Instance, bool, Option<Occupant>); 8] = [
            (&unlabelled, &default, false, Some(Occupant::Unmanaged)),
            (&unlabelled, &team, false, Some(Occupant::Unmanaged)),
            (&legacy, &default, true, None),
            (
                &legacy,
                &team,
                false,
                Some(Occupant::Instance {
                    name: "modelship".into(),
                }),
            ),
            (&of_team, &team, true, None),
            (
                &of_team,
                &default,
                false,
                Some(Occupant::Instance {
                    name: "team-a".into(),
                }),
            ),
            (
                &of_other_service,
                &default,
                true,
                Some(Occupant::Service {
                    id: id("risk/other"),
                }),
            ),
            (
                &of_other_service,
                &team,
                false,
                Some(Occupant::Instance {
                    name: "modelship".into(),
                }),
            ),
        ];
        for (object, instance, owned, occupant) in cases {
            assert_eq!(instance.owns(object), owned, "{instance} {object}");
            assert_eq!(
                instance.occupant(object, &me),
                occupant,
                "{instance} {object}"
            );
        }
    }

    #[test]
    fn adoption_names_exactly_one_service() {
        let me = id("risk/fraud");
        let handed = object(json!({}), json!({"modelship.dev/adopt": "risk/fraud"}));
        assert!(adopts(&handed, &me));
        assert!(!adopts(&handed, &id("risk/other")));
        assert!(!adopts(&handed, &id("prod/fraud")));
        assert!(!adopts(&object(json!({}), json!({})), &me));
    }

    #[test]
    fn occupants_read_as_plan_lines() {
        assert_eq!(
            Occupant::Unmanaged.to_string(),
            "exists, not managed by modelship"
        );
        assert_eq!(
            Occupant::Instance { name: "b".into() }.to_string(),
            "exists, managed by modelship instance b"
        );
        assert_eq!(
            Occupant::Service { id: id("ns/x") }.to_string(),
            "exists, managed by service ns/x"
        );
    }
}
