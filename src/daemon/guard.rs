//! Policies in the loop: the repository's `policies/` are checked on every revision against
//! every spec and compiled object (pure, through [`crate::policy`]). A service with a
//! denying violation is treated like an invalid one: reported, its live objects left
//! untouched. Warnings and audits are reported only.
//!
//! The daemon checks without cluster context: every object is a CREATE (no `oldObject`) and
//! namespace labels are unknown, so rules comparing with the live object only apply at
//! admission (`modelship policies export`).

use std::collections::BTreeMap;

use super::sync::{InvalidService, ServiceId};
use crate::compile::DesiredSet;
use crate::policy::{ClusterView, PolicySet, check_repository, policy_files};
use crate::spec::{Repository, Severity};

/// What the policies say about one revision.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Verdict {
    /// Services blocked by a denying policy.
    pub blocked: Vec<InvalidService>,
    /// Problems to report: broken policy files, warnings and audits.
    pub reports: Vec<String>,
    /// True when a policy file has an error: the repository is not fully valid then, so
    /// nothing is pruned.
    pub broken: bool,
}

/// Checks the policies of `files` against the repository and its compiled objects.
pub fn check(
    files: &BTreeMap<String, Vec<u8>>,
    repo: &Repository,
    desired: &DesiredSet,
) -> Verdict {
    let policy_files = policy_files(files);
    let mut verdict = Verdict::default();
    if policy_files.is_empty() {
        return verdict;
    }
    let (policies, diagnostics) = PolicySet::load(&policy_files);
    for diagnostic in &diagnostics {
        verdict.broken |= diagnostic.severity == Severity::Error;
        verdict.reports.push(diagnostic.to_string());
    }
    let violations = match check_repository(repo, desired, &policies, &ClusterView::default()) {
        Ok(violations) => violations,
        Err(error) => {
            verdict.broken = true;
            verdict.reports.push(format!("policies: {error}"));
            return verdict;
        }
    };
    let owner = owners(repo, desired);
    let mut blocked: BTreeMap<ServiceId, Vec<String>> = BTreeMap::new();
    for violation in violations {
        if !violation.is_deny() {
            verdict.reports.push(violation.to_string());
            continue;
        }
        let namespace = violation.namespace.clone().unwrap_or_default();
        let key = (namespace, violation.kind.clone(), violation.name.clone());
        match owner.get(&key) {
            Some(service) => blocked
                .entry(service.clone())
                .or_default()
                .push(violation.to_string()),
            None => verdict.reports.push(violation.to_string()),
        }
    }
    verdict.blocked = blocked
        .into_iter()
        .map(|((namespace, name), messages)| InvalidService {
            namespace,
            name,
            error: messages.join("; "),
            cause: "policy_denied",
        })
        .collect();
    verdict
}

/// (namespace, kind, name) of every spec and compiled object -> its service.
fn owners(
    repo: &Repository,
    desired: &DesiredSet,
) -> BTreeMap<(String, String, String), ServiceId> {
    let mut owners = BTreeMap::new();
    for service in &repo.services {
        let namespace = service.namespace(&repo.config).to_string();
        let id = (namespace.clone(), service.name().to_string());
        owners.insert(
            (namespace, "ModelService".into(), service.name().into()),
            id,
        );
    }
    for service in &desired.services {
        let id = (service.namespace.clone(), service.name.clone());
        for object in &service.objects {
            let key = (
                object.namespace().to_string(),
                object.kind().as_str().to_string(),
                object.name().to_string(),
            );
            owners.insert(key, id.clone());
        }
    }
    owners
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compile::{Source, compile_repository};

    fn check_example(extra: &[(&str, &str)]) -> (Verdict, Repository) {
        let mut files = crate::source::read_dir(std::path::Path::new("example-repo")).unwrap();
        for (path, content) in extra {
            files.insert(path.to_string(), content.as_bytes().to_vec());
        }
        let repo = crate::spec::load(&files);
        let desired = compile_repository(&repo, &Source::local());
        (check(&files, &repo, &desired), repo)
    }

    #[test]
    fn the_example_repository_passes_its_own_policies() {
        let (verdict, repo) = check_example(&[]);
        assert!(repo.is_valid());
        assert_eq!(verdict.blocked, vec![], "{:?}", verdict.reports);
        assert!(!verdict.broken, "{:?}", verdict.reports);
    }

    #[test]
    fn a_denying_policy_blocks_exactly_the_services_it_names() {
        let policy = r#"apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata: {name: no-llm-chat}
spec:
  matchConstraints:
    resourceRules:
      - apiGroups: ["apps"]
        apiVersions: ["v1"]
        operations: ["CREATE", "UPDATE"]
        resources: ["deployments"]
  validations:
    - expression: "object.metadata.name != 'llm-chat'"
      message: llm-chat is frozen
"#;
        let (verdict, _) = check_example(&[("policies/freeze.yaml", policy)]);
        assert!(!verdict.broken, "{:?}", verdict.reports);
        assert_eq!(verdict.blocked.len(), 1, "{:?}", verdict.blocked);
        assert_eq!(verdict.blocked[0].name, "llm-chat");
        assert!(verdict.blocked[0].error.contains("llm-chat is frozen"));
    }

    #[test]
    fn a_broken_policy_file_is_reported_and_marks_the_revision() {
        let (verdict, _) = check_example(&[("policies/broken.yaml", "kind: [")]);
        assert!(verdict.broken);
        assert!(!verdict.reports.is_empty());
    }
}
