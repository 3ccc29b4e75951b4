//! Names of documents that failed: which service a broken document meant, so that its
//! live objects are left untouched. Generous on purpose: a false name protects nothing
//! that exists, a missed one could let a service be pruned.
//!
//! A name or namespace that cannot make a [`ServiceId`] (empty, holding `/`, whitespace or
//! a control character) is not read: such a document is already an error diagnostic, so
//! the repository is invalid and nothing is pruned, and no live service can carry that
//! name.
//!
//! The node tree is read first; when the tree is broken (cut short by a syntax error, a
//! duplicate `metadata` dropped), the text is also scanned line by line.

use super::node::{FieldPath, Mark, Node};
use super::types::RepositoryConfig;
use crate::service_id::ServiceId;

/// A service id and where its name is written.
pub type Named = (ServiceId, Mark);

/// Every reading of the name of a failed document, without repeats.
pub fn failed_ids(
    root: Option<&Node>,
    text: &str,
    line: usize,
    broken: bool,
    config: &RepositoryConfig,
) -> Vec<Named> {
    let mut ids: Vec<Named> = root
        .and_then(|r| from_tree(r, config))
        .into_iter()
        .collect();
    if broken
        && let Some(scanned) = from_text(text, line, config)
        && !ids.iter().any(|(id, _)| *id == scanned.0)
    {
        ids.push(scanned);
    }
    ids
}

/// The service of a document whose `metadata.name` is still readable in the tree.
pub fn from_tree(root: &Node, config: &RepositoryConfig) -> Option<Named> {
    let metadata = root.get("metadata")?;
    let name = metadata.get("name")?.as_text()?.trim();
    let namespace = metadata
        .get("namespace")
        .and_then(Node::as_text)
        .unwrap_or(&config.spec.default_namespace);
    let mark = root.locate(&FieldPath::parse("metadata.name"), false);
    Some((ServiceId::new(namespace, name).ok()?, mark))
}

/// The service read line by line from the document starting at `from_line`:
/// `metadata:` at column 0, then indented `name:` and `namespace:` lines.
pub fn from_text(text: &str, from_line: usize, config: &RepositoryConfig) -> Option<Named> {
    let first = from_line.max(1);
    let lines = text.lines().enumerate().skip(first - 1);
    let mut in_metadata = false;
    let (mut name, mut namespace) = (None, None);
    for (index, line) in lines {
        if index + 1 > first && (line.starts_with("---") || line.starts_with("...")) {
            break;
        }
        if !line.starts_with([' ', '\t']) && !line.trim().is_empty() {
            in_metadata = line.trim_end() == "metadata:";
            continue;
        }
        if !in_metadata {
            continue;
        }
        let Some((key, value)) = line.trim().split_once(':') else {
            continue;
        };
        let value = value.split(" #").next().unwrap_or("").trim();
        let value = value.trim_matches(|c| c == '"' || c == '\'');
        if value.is_empty() || value.contains(char::is_whitespace) {
            continue;
        }
        let before = line.find(value).and_then(|at| line.get(..at)).unwrap_or("");
        let column = before.chars().count() + 1;
        let mark = Mark {
            line: index + 1,
            column,
        };
        match key {
            "name" if name.is_none() => name = Some((value.to_string(), mark)),
            "namespace" if namespace.is_none() => namespace = Some(value.to_string()),
            _ => {}
        }
    }
    let namespace = namespace.unwrap_or_else(|| config.spec.default_namespace.clone());
    let (name, mark) = name?;
    Some((ServiceId::new(namespace, name).ok()?, mark))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_scanned_from_broken_text() {
        let config = RepositoryConfig::default();
        let text = "a: [\n---\nkind: X\nmetadata:\n  name: \"svc\" # the service\n  namespace: ml\nspec: [\n";
        let found = from_text(text, 2, &config);
        let mark = Mark {
            line: 5,
            column: 10,
        };
        assert_eq!(found, Some((ServiceId::new("ml", "svc").unwrap(), mark)));
        assert_eq!(
            from_text(text, 1, &config),
            None,
            "stops at the next document"
        );
    }
}
