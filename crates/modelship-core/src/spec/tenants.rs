//! Tenants: who owns which spec files, and which namespaces their services may use; and
//! the settings of modelship.yaml that decide what a change may do, which the followed
//! branch decides (DESIGN.md, *Trust model*).
//!
//! ```text
//! modelship.yaml tenants ──Tenancy::new──▶ [(tenant, path globs, namespace globs)]
//! spec file ──owner(path)──▶ the FIRST tenant whose paths match (modelship.yaml order)
//!                            | Implicit (no `tenants`: one tenant owns everything)
//!                            | Unowned (an error at the spec's metadata)
//! Boundaries { tenancy, own namespace } ──check(file, spec)──▶ findings
//!   no tenant owns the file; the namespace is not its tenant's; modelship's own namespace
//! ```
//!
//! Overlapping tenants are allowed: a file matched by several tenants' paths belongs to the
//! first of them in modelship.yaml, so a broad tenant listed after a narrow one keeps the
//! rest. The GPU budget of a tenant needs the live services, so it is `crate::budget`'s.

use globset::{Glob, GlobBuilder, GlobMatcher, GlobSet, GlobSetBuilder};
use serde::{Deserialize, Serialize};

use super::node::FieldPath;
use super::types::{ModelService, RepositoryConfig, RepositoryConfigSpec};
use super::validate::{Finding, Violation};

/// The namespace modelship runs in when nothing says otherwise (the CLI's view; the daemon
/// is told its own by `POD_NAMESPACE`).
pub const DEFAULT_OWN_NAMESPACE: &str = "modelship";

/// One entry of `tenants` in modelship.yaml.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Tenant {
    /// Named in errors, plans and PR comments; an RFC 1123 label, unique.
    pub name: String,
    /// Globs of the spec files the tenant owns, relative to the root.
    pub paths: Vec<String>,
    /// The namespaces its services may use: names or globs.
    pub namespaces: Vec<String>,
    /// GPUs of all its services at maximum scale, canary peaks included. None: no limit.
    #[serde(default, rename = "maxGPUs", skip_serializing_if = "Option::is_none")]
    pub max_gpus: Option<u32>,
}

/// The globs of one tenant, compiled.
#[derive(Debug)]
struct Matchers<'a> {
    tenant: &'a Tenant,
    paths: GlobSet,
    namespaces: Vec<GlobMatcher>,
}

/// Who owns a spec file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner<'a> {
    /// modelship.yaml names no tenants: one implicit tenant owns every path and namespace.
    Implicit,
    /// The first tenant whose paths match.
    Tenant(&'a Tenant),
    /// Tenants are named and none of them owns the file.
    Unowned,
}

/// The tenants of a configuration with their globs compiled. Invalid globs were reported
/// by config validation; they match nothing here.
#[derive(Debug)]
pub struct Tenancy<'a> {
    tenants: Vec<Matchers<'a>>,
}

impl<'a> Tenancy<'a> {
    /// The tenants of `config`, in modelship.yaml order.
    pub fn new(config: &'a RepositoryConfigSpec) -> Self {
        let tenants = config
            .tenants
            .iter()
            .map(|tenant| {
                let mut paths = GlobSetBuilder::new();
                for pattern in &tenant.paths {
                    if let Ok(glob) = GlobBuilder::new(pattern).literal_separator(true).build() {
                        paths.add(glob);
                    }
                }
                let namespaces = tenant
                    .namespaces
                    .iter()
                    .filter_map(|pattern| Glob::new(pattern).ok())
                    .map(|glob| glob.compile_matcher())
                    .collect();
                Matchers {
                    tenant,
                    paths: paths.build().unwrap_or_else(|_| GlobSet::empty()),
                    namespaces,
                }
            })
            .collect();
        Tenancy { tenants }
    }

    /// The owner of the spec file at `path` (relative to the root, `/` separators).
    pub fn owner(&self, path: &str) -> Owner<'a> {
        if self.tenants.is_empty() {
            return Owner::Implicit;
        }
        self.tenants
            .iter()
            .find(|m| m.paths.is_match(path))
            .map_or(Owner::Unowned, |m| Owner::Tenant(m.tenant))
    }

    /// True when the services of `owner` may use `namespace`.
    pub fn may_use(&self, owner: Owner<'_>, namespace: &str) -> bool {
        match owner {
            Owner::Implicit => true,
            Owner::Unowned => false,
            Owner::Tenant(tenant) => self
                .tenants
                .iter()
                .find(|m| std::ptr::eq(m.tenant, tenant))
                .is_some_and(|m| m.namespaces.iter().any(|g| g.is_match(namespace))),
        }
    }

    /// Every tenant's path globs, for the error of a file no tenant owns.
    fn all_paths(&self) -> Vec<String> {
        self.tenants
            .iter()
            .flat_map(|m| m.tenant.paths.iter().cloned())
            .collect()
    }
}

/// What a spec may touch: its tenant's paths and namespaces, and never modelship's own
/// namespace (system and configured protected namespaces are `validate::service`'s).
#[derive(Debug)]
pub struct Boundaries<'a> {
    pub tenancy: Tenancy<'a>,
    config: &'a RepositoryConfigSpec,
    own_namespace: &'a str,
}

impl<'a> Boundaries<'a> {
    /// The boundaries of `config`, with modelship running in `own_namespace`.
    pub fn new(config: &'a RepositoryConfig, own_namespace: &'a str) -> Self {
        Boundaries {
            tenancy: Tenancy::new(&config.spec),
            config: &config.spec,
            own_namespace,
        }
    }

    /// The findings of the spec `svc` written in `file`.
    pub fn check(&self, file: &str, svc: &ModelService) -> Vec<Finding> {
        let metadata = FieldPath::root().key("metadata");
        let owner = self.tenancy.owner(file);
        if owner == Owner::Unowned {
            return vec![Finding {
                path: metadata,
                at_key: true,
                violation: Violation::NoTenant {
                    file: file.to_string(),
                    paths: self.tenancy.all_paths(),
                },
            }];
        }
        // Reported at the namespace, or at the name when the default namespace is used.
        let (namespace, at) = match &svc.metadata.namespace {
            Some(namespace) => (namespace, metadata.key("namespace")),
            None => (&self.config.default_namespace, metadata.key("name")),
        };
        // A protected namespace is reported once, by `validate::service`.
        if self.config.is_protected(namespace) {
            return Vec::new();
        }
        let violation = if namespace == self.own_namespace {
            Violation::ProtectedNamespace(namespace.clone())
        } else if let Owner::Tenant(tenant) = owner
            && !self.tenancy.may_use(owner, namespace)
        {
            Violation::TenantNamespace {
                tenant: tenant.name.clone(),
                namespace: namespace.clone(),
                allowed: tenant.namespaces.clone(),
            }
        } else {
            return Vec::new();
        };
        vec![Finding {
            path: at,
            at_key: false,
            violation,
        }]
    }
}

/// The settings of modelship.yaml that decide what a change may do: the followed branch's
/// apply to a pull request, whatever its head says.
pub const GOVERNING: [&str; 6] = [
    "tenants",
    "protectedNamespaces",
    "previews",
    "github",
    "prometheus",
    "analysis",
];

/// Replaces the governing settings ([`GOVERNING`]) of `head` with `branch`'s; returns the
/// names of those `head` had changed, in [`GOVERNING`] order.
pub fn govern(head: &mut RepositoryConfigSpec, branch: &RepositoryConfigSpec) -> Vec<&'static str> {
    let differs = [
        head.tenants != branch.tenants,
        head.protected_namespaces != branch.protected_namespaces,
        head.previews != branch.previews,
        head.github != branch.github,
        head.prometheus != branch.prometheus,
        head.analysis != branch.analysis,
    ];
    head.tenants.clone_from(&branch.tenants);
    head.protected_namespaces
        .clone_from(&branch.protected_namespaces);
    head.previews.clone_from(&branch.previews);
    head.github.clone_from(&branch.github);
    head.prometheus.clone_from(&branch.prometheus);
    head.analysis.clone_from(&branch.analysis);
    GOVERNING
        .into_iter()
        .zip(differs)
        .filter_map(|(name, differs)| differs.then_some(name))
        .collect()
}

#[cfg(test)]
#[path = "tenants_tests.rs"]
mod tests;
