//! Where modelship reads and writes: every namespace (a ClusterRoleBinding), or only the
//! tenants' namespaces named by `--namespaces a,b,c` (RoleBindings of the same ClusterRole
//! in each). With [`Namespaces::Only`], every LIST and WATCH of live objects is made in
//! each of those namespaces instead of cluster-wide, namespace labels are read with one
//! GET per namespace (a RoleBinding grants `get` on its own namespace) instead of a LIST
//! of all Namespaces, and a service of another namespace is refused before anything is
//! sent (`engine::Prepared::confine`), so no request can meet a 403 there.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

/// The namespaces modelship may read and write.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Namespaces {
    /// Every namespace: cluster-wide LISTs and WATCHes.
    #[default]
    All,
    /// These namespaces only (never empty).
    Only(BTreeSet<String>),
}

impl Namespaces {
    /// True when objects of `namespace` may be read and written.
    pub fn contains(&self, namespace: &str) -> bool {
        match self {
            Namespaces::All => true,
            Namespaces::Only(names) => names.contains(namespace),
        }
    }

    /// The namespaces to LIST or WATCH in: `[None]` (cluster-wide) for [`Namespaces::All`],
    /// else each namespace.
    pub fn targets(&self) -> Vec<Option<&str>> {
        match self {
            Namespaces::All => vec![None],
            Namespaces::Only(names) => names.iter().map(|n| Some(n.as_str())).collect(),
        }
    }
}

impl fmt::Display for Namespaces {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Namespaces::All => f.write_str("all namespaces"),
            Namespaces::Only(names) => {
                let names: Vec<&str> = names.iter().map(String::as_str).collect();
                f.write_str(&names.join(","))
            }
        }
    }
}

/// Why a `--namespaces` value was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NamespacesError {
    /// No namespace was named (an empty value, or only commas).
    #[error("no namespace named: give a comma-separated list, e.g. `team-a,team-b`")]
    Empty,
    /// An entry is not a namespace name (an RFC 1123 label).
    #[error(
        "`{0}` is not a namespace name (at most 63 lower-case letters, digits and `-`, beginning and ending with a letter or digit)"
    )]
    Invalid(String),
}

impl FromStr for Namespaces {
    type Err = NamespacesError;

    /// A comma-separated list of namespace names; blanks around names are ignored.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let mut names = BTreeSet::new();
        for name in text.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            if !is_label(name) {
                return Err(NamespacesError::Invalid(name.to_string()));
            }
            names.insert(name.to_string());
        }
        if names.is_empty() {
            return Err(NamespacesError::Empty);
        }
        Ok(Namespaces::Only(names))
    }
}

/// An RFC 1123 label: what a namespace name is.
fn is_label(name: &str) -> bool {
    let edge = |c: Option<char>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    name.len() <= 63
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && edge(name.chars().next())
        && edge(name.chars().last())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_comma_separated_list() {
        let only = |names: &[&str]| {
            Namespaces::Only(names.iter().map(|n| n.to_string()).collect::<BTreeSet<_>>())
        };
        for (text, expected) in [
            ("a", Ok(only(&["a"]))),
            ("b,a", Ok(only(&["a", "b"]))),
            (" team-a , team-b ,", Ok(only(&["team-a", "team-b"]))),
            ("a,a", Ok(only(&["a"]))),
            ("", Err(NamespacesError::Empty)),
            (" , ", Err(NamespacesError::Empty)),
            ("a,Team", Err(NamespacesError::Invalid("Team".into()))),
            ("a/b", Err(NamespacesError::Invalid("a/b".into()))),
            ("-a", Err(NamespacesError::Invalid("-a".into()))),
        ] {
            assert_eq!(text.parse::<Namespaces>(), expected, "{text:?}");
        }
    }

    #[test]
    fn all_contains_every_namespace_and_lists_cluster_wide() {
        assert!(Namespaces::All.contains("anything"));
        assert_eq!(Namespaces::All.targets(), [None]);
        let only: Namespaces = "b,a".parse().unwrap();
        assert!(only.contains("a") && !only.contains("c"));
        assert_eq!(only.targets(), [Some("a"), Some("b")]);
        assert_eq!(only.to_string(), "a,b");
    }
}
