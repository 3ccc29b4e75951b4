//! API errors and the `Status` bodies the sandbox answers with.
//!
//! Every failed request ends here: a handler returns an [`ApiError`], which knows its HTTP
//! code and its `reason`, and [`ApiError::to_status`] renders the `v1 Status` object that
//! kube-apiserver would send (`kind: Status`, `status: Failure`, `message`, `reason`,
//! `details`, `code`). Messages follow the apiserver's wording so clients that match on
//! them (kubectl, kube-rs) behave as against a real cluster.

use serde_json::{Value, json};

/// Identifies the object an error is about, as in `Status.details`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Target {
    /// API group ("" for the core group).
    pub group: String,
    /// Plural resource name, e.g. `deployments`.
    pub resource: String,
    /// Object name ("" when the error is about a collection).
    pub name: String,
}

impl Target {
    /// `deployments.apps` or `configmaps`: how the apiserver names a resource in messages.
    pub fn qualified(&self) -> String {
        if self.group.is_empty() {
            self.resource.clone()
        } else {
            format!("{}.{}", self.resource, self.group)
        }
    }
}

/// What makes an object invalid (the payload of [`ApiError::Invalid`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind} \"{name}\" is invalid: {field}: {detail}")]
pub struct InvalidField {
    /// Kind (qualified by group when not core), e.g. `Deployment.apps`.
    pub kind: String,
    /// Object name as sent.
    pub name: String,
    /// The offending field path, e.g. `metadata.name`.
    pub field: String,
    /// What is wrong with it.
    pub detail: String,
    /// Group and resource for `details`.
    pub target: Target,
}

/// A failed API request. Each variant maps to one HTTP code and one `Status.reason`.
#[derive(Debug, Clone, thiserror::Error, PartialEq)]
pub enum ApiError {
    /// 404: the object does not exist.
    #[error("{} \"{}\" not found", .0.qualified(), .0.name)]
    NotFound(Target),
    /// 404: no resource is served at this path.
    #[error("the server could not find the requested resource")]
    NoRoute,
    /// 409: create of an object whose name is taken.
    #[error("{} \"{}\" already exists", .0.qualified(), .0.name)]
    AlreadyExists(Target),
    /// 409: the request's resourceVersion is stale (optimistic concurrency).
    #[error(
        "Operation cannot be fulfilled on {} \"{}\": the object has been modified; please apply your changes to the latest version and try again",
        .0.qualified(), .0.name
    )]
    Conflict(Target),
    /// 409: server-side apply found fields owned by other managers.
    #[error("{message}")]
    ApplyConflict {
        /// The object the apply targeted.
        target: Target,
        /// The whole message, phrased like kube's (`Apply failed with 1 conflict: ...`).
        message: String,
        /// `(field, manager message)` pairs for `details.causes`.
        causes: Vec<(String, String)>,
    },
    /// 422: the object is not valid (bad name, bad field value, ...).
    #[error("{0}")]
    Invalid(Box<InvalidField>),
    /// 422: a patch could not be applied to the live object.
    #[error("{0}")]
    UnprocessablePatch(String),
    /// 400: the request itself is malformed (bad JSON, missing fieldManager, ...).
    #[error("{0}")]
    BadRequest(String),
    /// 405: the verb is not supported on this resource.
    #[error("the server does not allow this method on the requested resource")]
    MethodNotAllowed,
    /// 410: the watch's resourceVersion is older than the kept history.
    #[error("too old resource version: {requested} ({oldest})")]
    Expired {
        /// The resourceVersion the client asked for.
        requested: u64,
        /// The oldest resourceVersion still available.
        oldest: u64,
    },
    /// 415: the patch content type is not supported for this resource.
    #[error("the body of the request was in an unknown format - accepted media types include: {0}")]
    UnsupportedMediaType(String),
    /// 415: a protobuf body of a kind the sandbox cannot decode (the message names it).
    #[error("{0}")]
    UnsupportedBody(String),
    /// 429: injected throttling.
    #[error("the server has received too many requests and has asked us to try again later")]
    TooManyRequests,
    /// 503: injected unavailability.
    #[error("the server is currently unable to handle the request")]
    ServiceUnavailable,
    /// 500: an internal failure (injected or a bug).
    #[error("Internal error occurred: {0}")]
    Internal(String),
}

impl ApiError {
    /// A 422 Invalid error.
    pub fn invalid(kind: String, name: &str, field: &str, detail: String, target: Target) -> Self {
        Self::Invalid(Box::new(InvalidField {
            kind,
            name: name.to_string(),
            field: field.to_string(),
            detail,
            target,
        }))
    }

    /// The HTTP status code of this error.
    pub fn code(&self) -> u16 {
        match self {
            Self::NotFound(_) | Self::NoRoute => 404,
            Self::AlreadyExists(_) | Self::Conflict(_) | Self::ApplyConflict { .. } => 409,
            Self::Invalid(_) | Self::UnprocessablePatch(_) => 422,
            Self::BadRequest(_) => 400,
            Self::MethodNotAllowed => 405,
            Self::Expired { .. } => 410,
            Self::UnsupportedMediaType(_) | Self::UnsupportedBody(_) => 415,
            Self::TooManyRequests => 429,
            Self::ServiceUnavailable => 503,
            Self::Internal(_) => 500,
        }
    }

    /// The label of this error in metrics: its `Status.reason` ([`ApiError::reason`]).
    pub fn metric_label(&self) -> &'static str {
        self.reason()
    }

    /// The machine-readable `Status.reason`.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::NotFound(_) | Self::NoRoute => "NotFound",
            Self::AlreadyExists(_) => "AlreadyExists",
            Self::Conflict(_) | Self::ApplyConflict { .. } => "Conflict",
            Self::Invalid(_) | Self::UnprocessablePatch(_) => "Invalid",
            Self::BadRequest(_) => "BadRequest",
            Self::MethodNotAllowed => "MethodNotAllowed",
            Self::Expired { .. } => "Expired",
            Self::UnsupportedMediaType(_) | Self::UnsupportedBody(_) => "UnsupportedMediaType",
            Self::TooManyRequests => "TooManyRequests",
            Self::ServiceUnavailable => "ServiceUnavailable",
            Self::Internal(_) => "InternalError",
        }
    }

    fn details(&self) -> Option<Value> {
        let target_details = |t: &Target| {
            let mut d = json!({ "name": t.name, "kind": t.resource });
            if !t.group.is_empty() {
                d["group"] = json!(t.group);
            }
            d
        };
        match self {
            Self::NotFound(t) | Self::AlreadyExists(t) | Self::Conflict(t) => {
                Some(target_details(t))
            }
            Self::ApplyConflict { target, causes, .. } => {
                let mut d = target_details(target);
                d["causes"] = causes
                    .iter()
                    .map(|(field, message)| {
                        json!({ "type": "FieldManagerConflict", "message": message, "field": field })
                    })
                    .collect();
                Some(d)
            }
            Self::Invalid(invalid) => {
                let mut d = target_details(&invalid.target);
                d["causes"] = json!([{ "reason": "FieldValueInvalid", "message": invalid.detail, "field": invalid.field }]);
                Some(d)
            }
            Self::NoRoute => Some(json!({
                "causes": [{ "reason": "UnexpectedServerResponse", "message": "404 page not found" }]
            })),
            Self::TooManyRequests | Self::ServiceUnavailable => {
                Some(json!({ "retryAfterSeconds": 1 }))
            }
            _ => None,
        }
    }

    /// The `v1 Status` body for this error.
    pub fn to_status(&self) -> Value {
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.to_string(),
            "reason": self.reason(),
            "code": self.code(),
        });
        if let Some(details) = self.details() {
            status["details"] = details;
        }
        status
    }
}

/// The `Status` a successful DELETE answers with.
pub fn success_status(target: &Target, uid: &str) -> Value {
    let mut details = json!({ "name": target.name, "kind": target.resource, "uid": uid });
    if !target.group.is_empty() {
        details["group"] = json!(target.group);
    }
    json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
        "details": details,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deploy(name: &str) -> Target {
        Target {
            group: "apps".into(),
            resource: "deployments".into(),
            name: name.into(),
        }
    }

    #[test]
    fn not_found_reads_like_the_apiserver() {
        let status = ApiError::NotFound(deploy("web")).to_status();
        assert_eq!(status["message"], "deployments.apps \"web\" not found");
        assert_eq!(status["reason"], "NotFound");
        assert_eq!(status["code"], 404);
        assert_eq!(status["details"]["group"], "apps");
        assert_eq!(status["details"]["kind"], "deployments");
    }

    #[test]
    fn core_group_is_not_qualified() {
        let t = Target {
            group: String::new(),
            resource: "namespaces".into(),
            name: "x".into(),
        };
        assert_eq!(
            ApiError::NotFound(t).to_string(),
            "namespaces \"x\" not found"
        );
    }

    #[test]
    fn apply_conflict_lists_causes() {
        let err = ApiError::ApplyConflict {
            target: deploy("web"),
            message: "Apply failed with 1 conflict: conflict with \"a\": .spec.replicas".into(),
            causes: vec![(".spec.replicas".into(), "conflict with \"a\"".into())],
        };
        let status = err.to_status();
        assert_eq!(status["code"], 409);
        assert_eq!(status["details"]["causes"][0]["field"], ".spec.replicas");
        assert!(err.to_string().starts_with("Apply failed with 1 conflict:"));
    }
}
