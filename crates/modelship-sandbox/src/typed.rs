//! Structural validation of built-in kinds: an object must decode as its k8s-openapi type.
//!
//! kube-apiserver decodes every write into its Go type, so a Deployment whose `spec` is a
//! string or whose `replicas` is text never gets stored. The sandbox has no schemas, but
//! k8s-openapi's types say the same thing: [`check`] decodes the would-be stored object
//! into the type of its kind and reports the decode error. Unknown fields are not errors
//! here (they are kept, where kube would drop them); custom resources are not checked.

use super::registry::ResourceType;
use k8s_openapi::api;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// A built-in object that does not decode as its type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TypedError {
    /// The decode error, phrased by serde (`invalid type: string "x", expected ...`).
    #[error("error decoding {kind}: {message}")]
    Decode {
        /// The kind that was expected.
        kind: String,
        /// What serde reported.
        message: String,
    },
}

impl TypedError {
    /// A short, stable name for the cause, as a metric label.
    pub fn metric_label(&self) -> &'static str {
        match self {
            TypedError::Decode { .. } => "typed_decode",
        }
    }
}

fn decode<T: DeserializeOwned>(rt: &ResourceType, obj: &Value) -> Result<(), TypedError> {
    T::deserialize(obj)
        .map(|_| ())
        .map_err(|e| TypedError::Decode {
            kind: rt.kind.clone(),
            message: e.to_string(),
        })
}

/// Checks that `obj` decodes as the built-in type of `rt` (custom kinds always pass).
pub fn check(rt: &ResourceType, obj: &Value) -> Result<(), TypedError> {
    if rt.custom {
        return Ok(());
    }
    match (rt.group.as_str(), rt.kind.as_str()) {
        ("", "Namespace") => decode::<api::core::v1::Namespace>(rt, obj),
        ("", "ServiceAccount") => decode::<api::core::v1::ServiceAccount>(rt, obj),
        ("", "ConfigMap") => decode::<api::core::v1::ConfigMap>(rt, obj),
        ("", "Secret") => decode::<api::core::v1::Secret>(rt, obj),
        ("", "Service") => decode::<api::core::v1::Service>(rt, obj),
        ("", "Pod") => decode::<api::core::v1::Pod>(rt, obj),
        ("", "Event") => decode::<api::core::v1::Event>(rt, obj),
        ("", "ResourceQuota") => decode::<api::core::v1::ResourceQuota>(rt, obj),
        ("", "LimitRange") => decode::<api::core::v1::LimitRange>(rt, obj),
        ("apps", "Deployment") => decode::<api::apps::v1::Deployment>(rt, obj),
        ("autoscaling", "HorizontalPodAutoscaler") => {
            decode::<api::autoscaling::v2::HorizontalPodAutoscaler>(rt, obj)
        }
        ("policy", "PodDisruptionBudget") => {
            decode::<api::policy::v1::PodDisruptionBudget>(rt, obj)
        }
        ("networking.k8s.io", "NetworkPolicy") => {
            decode::<api::networking::v1::NetworkPolicy>(rt, obj)
        }
        ("coordination.k8s.io", "Lease") => decode::<api::coordination::v1::Lease>(rt, obj),
        ("events.k8s.io", "Event") => decode::<api::events::v1::Event>(rt, obj),
        ("admissionregistration.k8s.io", "ValidatingAdmissionPolicy") => {
            decode::<api::admissionregistration::v1::ValidatingAdmissionPolicy>(rt, obj)
        }
        ("admissionregistration.k8s.io", "ValidatingAdmissionPolicyBinding") => {
            decode::<api::admissionregistration::v1::ValidatingAdmissionPolicyBinding>(rt, obj)
        }
        ("apiextensions.k8s.io", "CustomResourceDefinition") => {
            decode::<CustomResourceDefinition>(rt, obj)
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::Registry;
    use serde_json::json;

    #[test]
    fn built_ins_must_decode_and_custom_kinds_pass() {
        let r = Registry::builtin();
        let deploys = r
            .find("apps", "v1", "deployments")
            .cloned()
            .expect("served");
        let ok = json!({ "apiVersion": "apps/v1", "kind": "Deployment", "metadata": { "name": "a" },
                         "spec": { "selector": {}, "template": {} } });
        assert_eq!(check(&deploys, &ok), Ok(()));
        let bad = json!({ "apiVersion": "apps/v1", "kind": "Deployment", "metadata": { "name": "a" }, "spec": "oops" });
        let err = check(&deploys, &bad).expect_err("spec must be an object");
        assert!(
            err.to_string()
                .starts_with("error decoding Deployment: invalid type"),
            "{err}"
        );
        let mut custom = deploys.clone();
        custom.custom = true;
        assert_eq!(check(&custom, &bad), Ok(()));
    }
}
