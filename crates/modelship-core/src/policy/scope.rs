//! Which objects an exported policy is enforced on in the cluster: what modelship manages
//! (the default), or every object its rules match. A policy says so with the annotation
//! [`ANNOTATION_SCOPE`] on its `metadata`, so the file stays a plain
//! ValidatingAdmissionPolicy that `kubectl apply` accepts as written:
//!
//! ```yaml
//! metadata:
//!   name: no-privileged-pods
//!   annotations:
//!     modelship.dev/scope: cluster   # or `managed`, the default
//! ```
//!
//! modelship's own checks are unaffected (they only ever see modelship's objects); the
//! scope decides the binding `policies export` writes ([`super::export`]).

use std::collections::BTreeMap;

/// The annotation naming a policy's [`Scope`].
pub const ANNOTATION_SCOPE: &str = "modelship.dev/scope";

/// Where an exported policy is enforced.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Scope {
    /// Only objects labelled as this modelship instance's (`managed`, the default): other
    /// teams' workloads in the same cluster are not modelship's to judge.
    #[default]
    Managed,
    /// Every object the policy's rules match (`cluster`), whoever wrote it.
    Cluster,
}

impl Scope {
    /// The value as written in the annotation.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Managed => "managed",
            Scope::Cluster => "cluster",
        }
    }

    /// Reads the scope from a policy's annotations; the message of the error names the
    /// value found and the values allowed.
    pub fn of(annotations: &BTreeMap<String, String>) -> Result<Scope, String> {
        match annotations.get(ANNOTATION_SCOPE).map(String::as_str) {
            None | Some("managed") => Ok(Scope::Managed),
            Some("cluster") => Ok(Scope::Cluster),
            Some(other) => Err(format!(
                "unknown scope `{other}` (one of `managed`, the default: objects modelship manages; `cluster`: every object the rules match)"
            )),
        }
    }
}

/// The 1-based line and column of the annotation's value in a document's text (0, 0 when
/// it is not written on a line of its own, as in a flow mapping).
pub fn locate(text: &str) -> (usize, usize) {
    text.lines()
        .enumerate()
        .find_map(|(i, line)| {
            let at = line.find(ANNOTATION_SCOPE)?;
            let after = &line[at + ANNOTATION_SCOPE.len()..];
            let after = after.trim_start_matches(['"', '\'']).strip_prefix(':')?;
            let value = after.len() - after.trim_start().len();
            let column = line.len() - after.len() + value + 1;
            Some((i + 1, column))
        })
        .unwrap_or((0, 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn annotations(value: Option<&str>) -> BTreeMap<String, String> {
        value
            .map(|v| (ANNOTATION_SCOPE.to_string(), v.to_string()))
            .into_iter()
            .collect()
    }

    #[test]
    fn scopes_as_written() {
        for (written, expected) in [
            (None, Ok(Scope::Managed)),
            (Some("managed"), Ok(Scope::Managed)),
            (Some("cluster"), Ok(Scope::Cluster)),
            (Some("Cluster"), Err("unknown scope `Cluster`")),
            (Some(""), Err("unknown scope ``")),
            (Some("namespace"), Err("unknown scope `namespace`")),
        ] {
            let got = Scope::of(&annotations(written));
            match (got, expected) {
                (Ok(got), Ok(expected)) => assert_eq!(got, expected, "{written:?}"),
                (Err(got), Err(expected)) => assert!(got.starts_with(expected), "{got}"),
                (got, expected) => panic!("{written:?}: {got:?}, expected {expected:?}"),
            }
        }
    }

    #[test]
    fn locates_the_value() {
        let text = "metadata:\n  name: p\n  annotations:\n    modelship.dev/scope: clusterwide\n";
        assert_eq!(locate(text), (4, 26));
        let quoted = "metadata:\n  annotations:\n    \"modelship.dev/scope\": x\n";
        assert_eq!(locate(quoted), (3, 28));
        assert_eq!(locate("metadata: {name: p}\n"), (0, 0));
    }
}
