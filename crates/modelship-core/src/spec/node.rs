//! The located YAML node tree and field paths.
//!
//! `parse` builds a [`Node`] tree per YAML document; every node knows the line and column
//! where it starts. The tree is what typed values are deserialized from (see `de`) and what
//! validation findings are mapped back through ([`Node::locate`]), so every diagnostic can
//! name a place in the file:
//!
//! ```text
//! YAML text --parse--> Node tree --de--> ModelService
//!                          ^                  |
//!                          +--locate(path)----+-- validate --> FieldPath
//! ```
//!
//! Aliases share their anchored node (`Rc`), so a tree is a DAG whose expanded size is
//! bounded when it is built.

use std::fmt;
use std::rc::Rc;

/// A 1-based position in a file.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Mark {
    pub line: usize,
    pub column: usize,
}

/// How a scalar was written, which decides how it resolves when the target type does not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScalarStyle {
    /// Unquoted: resolved by the YAML 1.2 core schema (null, bool, int, float, string).
    Plain,
    /// Quoted, block, or tagged `!!str`: always a string.
    Text,
}

/// One entry of a mapping: a scalar key and its value.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub key: String,
    pub key_mark: Mark,
    pub value: Rc<Node>,
}

/// The content of a node.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Scalar { text: String, style: ScalarStyle },
    Seq(Vec<Rc<Node>>),
    Map(Vec<Entry>),
}

/// A YAML node with the place where it starts.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub mark: Mark,
    pub value: Value,
    /// Number of nodes in this subtree with aliases expanded (at least 1).
    pub size: usize,
}

impl Node {
    /// A node without children.
    pub fn scalar(mark: Mark, text: impl Into<String>, style: ScalarStyle) -> Node {
        Node {
            mark,
            value: Value::Scalar {
                text: text.into(),
                style,
            },
            size: 1,
        }
    }

    /// True for a plain scalar that the core schema reads as null (`~`, `null`, empty).
    pub fn is_null(&self) -> bool {
        match &self.value {
            Value::Scalar {
                text,
                style: ScalarStyle::Plain,
            } => is_null_text(text),
            _ => false,
        }
    }

    /// The value of `key` when this node is a mapping.
    pub fn get(&self, key: &str) -> Option<&Node> {
        self.entry(key).map(|entry| entry.value.as_ref())
    }

    /// The entry of `key` when this node is a mapping.
    pub fn entry(&self, key: &str) -> Option<&Entry> {
        match &self.value {
            Value::Map(entries) => entries.iter().find(|entry| entry.key == key),
            _ => None,
        }
    }

    /// The text of a scalar node that is not null.
    pub fn as_text(&self) -> Option<&str> {
        match &self.value {
            Value::Scalar { text, .. } if !self.is_null() => Some(text),
            _ => None,
        }
    }

    /// What kind of node this is, for messages (`a mapping`, `a list`, `a string`).
    pub fn describe(&self) -> &'static str {
        match &self.value {
            Value::Map(_) => "a mapping",
            Value::Seq(_) => "a list",
            Value::Scalar { .. } if self.is_null() => "null",
            Value::Scalar { .. } => "a scalar",
        }
    }

    /// Where the value at `path` starts (or its key, with `key`), falling back to the
    /// closest ancestor that exists: a missing field is reported at its parent.
    pub fn locate(&self, path: &FieldPath, key: bool) -> Mark {
        let mut node = self;
        let mut mark = self.mark;
        let last = path.0.len().saturating_sub(1);
        for (i, seg) in path.0.iter().enumerate() {
            let next = match (seg, &node.value) {
                (Seg::Key(name), Value::Map(entries)) => {
                    entries.iter().find(|e| &e.key == name).map(|e| {
                        if key && i == last {
                            (e.key_mark, e.value.as_ref())
                        } else {
                            (e.value.mark, e.value.as_ref())
                        }
                    })
                }
                (Seg::Index(index), Value::Seq(items)) => {
                    items.get(*index).map(|item| (item.mark, item.as_ref()))
                }
                _ => None,
            };
            match next {
                Some((at, child)) => {
                    mark = at;
                    node = child;
                }
                None => break,
            }
        }
        mark
    }
}

/// The core-schema null forms.
pub fn is_null_text(text: &str) -> bool {
    matches!(text, "" | "~" | "null" | "Null" | "NULL")
}

/// One step of a field path.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Seg {
    Key(String),
    Index(usize),
}

/// A path to a field, displayed as `spec.autoscaling.metrics[1].cpu`; keys that are not
/// simple words display quoted: `metadata.labels["app.kubernetes.io/name"]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FieldPath(pub Vec<Seg>);

impl FieldPath {
    /// The empty path (the document itself).
    pub fn root() -> FieldPath {
        FieldPath(Vec::new())
    }

    /// Parses `spec.runtime.port` or `spec.autoscaling.metrics[1]`. Keys with dots cannot be
    /// written this way; build those with [`FieldPath::key`].
    pub fn parse(text: &str) -> FieldPath {
        let mut segs = Vec::new();
        for part in text.split('.').filter(|p| !p.is_empty()) {
            let mut rest = part;
            if let Some(open) = rest.find('[') {
                let (name, tail) = rest.split_at(open);
                if !name.is_empty() {
                    segs.push(Seg::Key(name.to_string()));
                }
                rest = tail;
                while let Some(tail) = rest.strip_prefix('[') {
                    let Some(close) = tail.find(']') else { break };
                    let (index, after) = tail.split_at(close);
                    match index.parse() {
                        Ok(index) => segs.push(Seg::Index(index)),
                        Err(_) => segs.push(Seg::Key(index.to_string())),
                    }
                    rest = after.get(1..).unwrap_or("");
                }
            } else {
                segs.push(Seg::Key(rest.to_string()));
            }
        }
        FieldPath(segs)
    }

    /// This path extended by a key.
    pub fn key(&self, key: impl Into<String>) -> FieldPath {
        let mut segs = self.0.clone();
        segs.push(Seg::Key(key.into()));
        FieldPath(segs)
    }

    /// This path extended by a list index.
    pub fn index(&self, index: usize) -> FieldPath {
        let mut segs = self.0.clone();
        segs.push(Seg::Index(index));
        FieldPath(segs)
    }

    /// True when `self` is `other` or lies below it.
    pub fn starts_with(&self, other: &FieldPath) -> bool {
        self.0.starts_with(&other.0)
    }

    /// The path one step up; the root is its own parent.
    pub fn parent(&self) -> FieldPath {
        let mut segs = self.0.clone();
        segs.pop();
        FieldPath(segs)
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, seg) in self.0.iter().enumerate() {
            match seg {
                Seg::Key(key) if is_word(key) => {
                    if i > 0 {
                        f.write_str(".")?;
                    }
                    f.write_str(key)?;
                }
                Seg::Key(key) => write!(f, "[{key:?}]")?,
                Seg::Index(index) => write!(f, "[{index}]")?,
            }
        }
        Ok(())
    }
}

fn is_word(key: &str) -> bool {
    key.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_')
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_display_and_parse() {
        let cases = [
            (
                "spec.autoscaling.metrics[1].cpu",
                "spec.autoscaling.metrics[1].cpu",
            ),
            ("spec", "spec"),
            ("spec.rollout.steps[0]", "spec.rollout.steps[0]"),
            ("", ""),
        ];
        for (text, shown) in cases {
            assert_eq!(FieldPath::parse(text).to_string(), shown);
        }
        let label = FieldPath::parse("metadata.labels").key("app.kubernetes.io/name");
        assert_eq!(
            label.to_string(),
            "metadata.labels[\"app.kubernetes.io/name\"]"
        );
    }

    #[test]
    fn locate_falls_back_to_the_closest_ancestor() {
        let leaf = Rc::new(Node::scalar(
            Mark { line: 3, column: 9 },
            "1",
            ScalarStyle::Plain,
        ));
        let inner = Rc::new(Node {
            mark: Mark { line: 3, column: 3 },
            value: Value::Map(vec![Entry {
                key: "count".into(),
                key_mark: Mark { line: 3, column: 3 },
                value: leaf,
            }]),
            size: 2,
        });
        let root = Node {
            mark: Mark { line: 1, column: 1 },
            value: Value::Map(vec![Entry {
                key: "gpu".into(),
                key_mark: Mark { line: 2, column: 1 },
                value: inner,
            }]),
            size: 3,
        };
        let at = |p: &str, key| {
            let m = root.locate(&FieldPath::parse(p), key);
            (m.line, m.column)
        };
        assert_eq!(at("gpu.count", false), (3, 9));
        assert_eq!(at("gpu.count", true), (3, 3));
        assert_eq!(at("gpu.type", false), (3, 3));
        assert_eq!(at("gpu", true), (2, 1));
        assert_eq!(at("nothing.here", false), (1, 1));
    }
}
