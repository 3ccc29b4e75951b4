//! Request paths: the pure parse of a URL path into what it addresses.
//!
//! `/api/v1/namespaces/{ns}/{resource}/{name}/{subresource}` and its cluster-scoped and
//! all-namespaces forms (and the same under `/apis/{group}/{version}`) become a
//! [`ResourcePath`]; discovery paths become the other [`Route`] variants. Whether the
//! resource exists is decided later against the registry.

/// What a request path addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// `/version`
    Version,
    /// `/api`
    CoreVersions,
    /// `/apis`
    Groups,
    /// `/apis/{group}`
    Group(String),
    /// `/api/v1` or `/apis/{group}/{version}`
    GroupVersion {
        /// API group ("" for core).
        group: String,
        /// API version.
        version: String,
    },
    /// A collection, object or subresource.
    Resource(ResourcePath),
    /// `/openapi/v3`
    OpenApiRoot,
    /// `/openapi/v3/api/v1` or `/openapi/v3/apis/{group}/{version}`
    OpenApi {
        /// API group ("" for core).
        group: String,
        /// API version.
        version: String,
    },
}

/// A path under a group/version that names a resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourcePath {
    /// API group ("" for core).
    pub group: String,
    /// API version.
    pub version: String,
    /// Plural resource name.
    pub plural: String,
    /// Namespace segment, if the path has one.
    pub namespace: Option<String>,
    /// Object name, if the path addresses one object.
    pub name: Option<String>,
    /// Subresource (`status`, `scale`), if any.
    pub subresource: Option<String>,
}

/// Parses a URL path; `None` when it addresses nothing the sandbox serves.
pub fn parse(path: &str) -> Option<Route> {
    let segments: Vec<&str> = path.trim_end_matches('/').split('/').skip(1).collect();
    match segments.as_slice() {
        ["version"] => Some(Route::Version),
        ["api"] => Some(Route::CoreVersions),
        ["apis"] => Some(Route::Groups),
        ["apis", group] => Some(Route::Group((*group).to_string())),
        ["openapi", "v3"] => Some(Route::OpenApiRoot),
        ["openapi", "v3", "api", version] => Some(Route::OpenApi {
            group: String::new(),
            version: (*version).to_string(),
        }),
        ["openapi", "v3", "apis", group, version] => Some(Route::OpenApi {
            group: (*group).to_string(),
            version: (*version).to_string(),
        }),
        ["api", version, rest @ ..] => resource_or_gv("", version, rest),
        ["apis", group, version, rest @ ..] => resource_or_gv(group, version, rest),
        _ => None,
    }
}

fn resource_or_gv(group: &str, version: &str, rest: &[&str]) -> Option<Route> {
    if rest.is_empty() {
        return Some(Route::GroupVersion {
            group: group.to_string(),
            version: version.to_string(),
        });
    }
    let owned = |s: &&str| (*s).to_string();
    let namespace_subresource = matches!(rest, ["namespaces", _, "status" | "finalize"]);
    let (namespace, tail) = match rest {
        ["namespaces", ns, tail @ ..] if !tail.is_empty() && !namespace_subresource => {
            (Some((*ns).to_string()), tail)
        }
        _ => (None, rest),
    };
    let (plural, name, subresource) = match tail {
        [plural] => (plural, None, None),
        [plural, name] => (plural, Some(owned(name)), None),
        [plural, name, sub] => (plural, Some(owned(name)), Some(owned(sub))),
        _ => return None,
    };
    if [plural, name.as_deref().unwrap_or("x")]
        .iter()
        .any(|s| s.is_empty())
        || namespace.as_deref() == Some("")
    {
        return None;
    }
    Some(Route::Resource(ResourcePath {
        group: group.to_string(),
        version: version.to_string(),
        plural: (*plural).to_string(),
        namespace,
        name,
        subresource,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn res(path: &str) -> ResourcePath {
        match parse(path) {
            Some(Route::Resource(r)) => r,
            other => panic!("{path}: {other:?}"),
        }
    }

    #[test]
    fn discovery_paths() {
        assert_eq!(parse("/api"), Some(Route::CoreVersions));
        assert_eq!(parse("/apis/"), Some(Route::Groups));
        assert_eq!(
            parse("/apis/apps/v1"),
            Some(Route::GroupVersion {
                group: "apps".into(),
                version: "v1".into()
            })
        );
        assert_eq!(parse("/healthz/x/y"), None);
    }

    #[test]
    fn namespaced_object_with_subresource() {
        let r = res("/apis/apps/v1/namespaces/prod/deployments/web/scale");
        assert_eq!(r.namespace.as_deref(), Some("prod"));
        assert_eq!(r.plural, "deployments");
        assert_eq!(r.name.as_deref(), Some("web"));
        assert_eq!(r.subresource.as_deref(), Some("scale"));
    }

    #[test]
    fn namespaces_themselves_are_cluster_scoped() {
        let r = res("/api/v1/namespaces/prod");
        assert_eq!(
            (r.plural.as_str(), r.name.as_deref(), r.namespace),
            ("namespaces", Some("prod"), None)
        );
        let s = res("/api/v1/namespaces/prod/status");
        assert_eq!(s.subresource.as_deref(), Some("status"));
        let l = res("/api/v1/namespaces/prod/configmaps");
        assert_eq!((l.namespace.as_deref(), l.name), (Some("prod"), None));
    }

    #[test]
    fn all_namespaces_list() {
        let r = res("/apis/apps/v1/deployments");
        assert_eq!((r.namespace, r.name), (None, None));
        assert_eq!(parse("/api/v1/namespaces/a/b/c/d/e"), None);
    }
}
