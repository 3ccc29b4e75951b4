//! YAML text to located node trees, one per document of a multi-document stream.
//!
//! Events of `granit_parser` (the parser under serde-saphyr) are folded into [`Node`]s with
//! an explicit stack, so deep nesting costs heap, not call stack. What YAML allows but a
//! spec must not depend on is handled here, each with a located [`ParseError`]:
//!
//! - syntax errors: the document is kept as far as it was read (so its name can still be
//!   recovered) and parsing resumes at the next `---`;
//! - aliases resolve to the anchored node (shared, not copied); a document whose expanded
//!   size passes [`MAX_NODES`] is rejected, so alias bombs cost nothing;
//! - a document nested deeper than [`MAX_DEPTH`] or with more than [`MAX_ALIASES`] aliases
//!   is rejected as well (the rest of it is scanned, not kept);
//! - documents are read one at a time ([`documents`]), so a file's memory is that of its
//!   largest document, not of all of them;
//! - merge keys (`<<: *defaults`) are applied, explicit keys win;
//! - duplicate keys, non-scalar keys and custom tags are errors.

use std::collections::{HashMap, HashSet};
use std::rc::Rc;

use serde_saphyr::granit_parser::{
    Event, Options, Parser, ScalarStyle as YamlStyle, ScanError, Span, StrInput, Tag,
};

use super::node::{Entry, Mark, Node, ScalarStyle, Value};

/// Largest document, in nodes with aliases expanded. A real spec has a few hundred.
pub const MAX_NODES: usize = 100_000;

/// Deepest nesting of lists and mappings in a document. A real spec nests about ten deep.
pub const MAX_DEPTH: usize = 64;

/// Most aliases (`*name`) in a document. A real spec has a handful.
pub const MAX_ALIASES: usize = 1_000;

/// A problem in the YAML text itself.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// The text is not valid YAML.
    #[error("YAML syntax error: {0}")]
    Syntax(String),
    /// A mapping has the same key twice.
    #[error("duplicate key `{key}` (first at line {first_line})")]
    DuplicateKey { key: String, first_line: usize },
    /// A mapping key is a list or a mapping.
    #[error("mapping keys must be plain scalars")]
    ComplexKey,
    /// An alias names an anchor that is not (yet) complete, such as itself.
    #[error("alias to an anchor that is not defined before it")]
    UnknownAlias,
    /// The document is too large once aliases are expanded.
    #[error("document too large: more than {MAX_NODES} nodes once aliases are expanded")]
    TooLarge,
    /// Lists and mappings nest deeper than [`MAX_DEPTH`].
    #[error("document nested too deep: more than {MAX_DEPTH} levels of lists and mappings")]
    TooDeep,
    /// The document has more than [`MAX_ALIASES`] aliases.
    #[error("too many aliases: more than {MAX_ALIASES} in one document")]
    TooManyAliases,
    /// A tag other than the YAML core schema tags.
    #[error("unsupported tag `{0}`: only the YAML core tags (!!str, !!int, ...) are allowed")]
    CustomTag(String),
    /// A `<<` merge key whose value is not a mapping or a list of mappings.
    #[error("merge key `<<` needs a mapping or a list of mappings")]
    BadMerge,
}

impl ParseError {
    /// A short, stable name for the cause, as a metric label.
    pub fn metric_label(&self) -> &'static str {
        match self {
            ParseError::Syntax(_) => "yaml_syntax",
            ParseError::DuplicateKey { .. } => "yaml_duplicate_key",
            ParseError::ComplexKey => "yaml_complex_key",
            ParseError::UnknownAlias => "yaml_unknown_alias",
            ParseError::TooLarge => "yaml_too_large",
            ParseError::TooDeep => "yaml_too_deep",
            ParseError::TooManyAliases => "yaml_too_many_aliases",
            ParseError::CustomTag(_) => "yaml_custom_tag",
            ParseError::BadMerge => "yaml_bad_merge",
        }
    }
}

/// A parse error and where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located {
    pub mark: Mark,
    pub error: ParseError,
}

/// One document of a stream.
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    /// The root node; `None` for an empty document.
    pub root: Option<Rc<Node>>,
    /// Where the document starts (1-based line).
    pub line: usize,
    /// True when a syntax error cut the document short: `root` holds what was read.
    pub truncated: bool,
    /// Problems inside this document.
    pub errors: Vec<Located>,
}

/// Parses a YAML stream into its documents. Never fails: problems are in the documents.
pub fn parse_stream(text: &str) -> Vec<Document> {
    documents(text).collect()
}

/// The documents of a YAML stream, parsed as they are taken: only one document's nodes
/// are held at a time. Never fails: problems are in the documents.
pub fn documents(text: &str) -> Documents<'_> {
    let mut options = Options::default();
    options.set_emit_comments(false);
    Documents {
        parser: Parser::new_from_str_with_options(text, options),
        builder: Builder::default(),
        next: None,
        done: false,
    }
}

/// The iterator of [`documents`].
pub struct Documents<'a> {
    parser: Parser<'a, StrInput<'a>>,
    builder: Builder,
    /// A document to give before reading on (the second of a failed resumption).
    next: Option<Document>,
    done: bool,
}

impl Iterator for Documents<'_> {
    type Item = Document;

    fn next(&mut self) -> Option<Document> {
        if let Some(doc) = self.next.take() {
            return Some(doc);
        }
        while !self.done {
            match self.parser.next_event() {
                None => self.done = true,
                Some(Ok((event, span))) => {
                    if let Some(doc) = self.builder.event(event, span) {
                        return Some(doc);
                    }
                }
                Some(Err(error)) => {
                    let doc = self.builder.abort(&error);
                    match self.parser.proceed_next_document() {
                        Ok(true) => {}
                        Ok(false) => self.done = true,
                        Err(error) => {
                            self.next = Some(Builder::default().abort(&error));
                            self.done = true;
                        }
                    }
                    return Some(doc);
                }
            }
        }
        None
    }
}

fn mark_of(span: &Span) -> Mark {
    Mark {
        line: span.start.line(),
        column: span.start.col() + 1,
    }
}

/// Where a node's tag starts, else the node itself.
fn tag_mark(span: &Span, mark: Mark) -> Mark {
    span.tag_start().map_or(mark, |m| Mark {
        line: m.line(),
        column: m.col() + 1,
    })
}

/// An open collection.
#[derive(Debug)]
enum Frame {
    Seq {
        mark: Mark,
        anchor: usize,
        items: Vec<Rc<Node>>,
        size: usize,
    },
    Map {
        mark: Mark,
        anchor: usize,
        entries: Vec<Entry>,
        merges: Vec<(Mark, Rc<Node>)>,
        key: Option<(Mark, Option<String>)>,
        /// Line of each key, for duplicate checks in constant time.
        lines: HashMap<String, usize>,
        size: usize,
    },
}

/// Folds events into the current document.
#[derive(Debug, Default)]
struct Builder {
    stack: Vec<Frame>,
    anchors: HashMap<usize, Rc<Node>>,
    root: Option<Rc<Node>>,
    line: usize,
    errors: Vec<Located>,
    /// Aliases read in this document.
    aliases: usize,
    /// Set when the document was given up (too large, deep or aliased): later events are
    /// ignored.
    abandoned: bool,
    /// Between a document's start and end.
    open: bool,
}

impl Builder {
    /// Handles one event; returns the document when it ends.
    fn event(&mut self, event: Event<'_>, span: Span) -> Option<Document> {
        let mark = mark_of(&span);
        match event {
            Event::DocumentStart(..) => {
                *self = Builder {
                    line: mark.line,
                    open: true,
                    ..Builder::default()
                };
                None
            }
            Event::DocumentEnd => {
                self.open = false;
                Some(self.finish(false))
            }
            _ if self.abandoned => None,
            Event::Scalar(text, style, anchor, tag) => {
                let style = self.scalar_style(style, tag.as_deref(), tag_mark(&span, mark));
                let node = Rc::new(Node::scalar(mark, text.into_owned(), style));
                self.complete(node, anchor);
                None
            }
            Event::SequenceStart(..) | Event::MappingStart(..) if self.stack.len() >= MAX_DEPTH => {
                self.abandon(mark, ParseError::TooDeep);
                None
            }
            Event::SequenceStart(_, anchor, tag) => {
                self.check_tag(tag.as_deref(), tag_mark(&span, mark));
                self.stack.push(Frame::Seq {
                    mark,
                    anchor,
                    items: Vec::new(),
                    size: 1,
                });
                None
            }
            Event::MappingStart(_, anchor, tag) => {
                self.check_tag(tag.as_deref(), tag_mark(&span, mark));
                self.stack.push(Frame::Map {
                    mark,
                    anchor,
                    entries: Vec::new(),
                    merges: Vec::new(),
                    key: None,
                    lines: HashMap::new(),
                    size: 1,
                });
                None
            }
            Event::SequenceEnd | Event::MappingEnd => {
                if let Some((node, anchor)) = self.stack.pop().map(|f| self.close(f)) {
                    self.complete(Rc::new(node), anchor);
                }
                None
            }
            Event::Alias(_) if self.aliases >= MAX_ALIASES => {
                self.abandon(mark, ParseError::TooManyAliases);
                None
            }
            Event::Alias(id) => {
                self.aliases += 1;
                match self.anchors.get(&id).cloned() {
                    Some(node) => self.complete(node, 0),
                    None => self.error(mark, ParseError::UnknownAlias),
                }
                None
            }
            _ => None,
        }
    }

    /// Ends the document after a syntax error, keeping what was read.
    fn abort(&mut self, error: &ScanError) -> Document {
        let mark = Mark {
            line: error.marker().line(),
            column: error.marker().col() + 1,
        };
        if !self.open {
            // The error is before any document start: the document begins here.
            *self = Builder {
                line: mark.line,
                ..Builder::default()
            };
        }
        self.open = false;
        self.error(mark, ParseError::Syntax(error.info()));
        // Close what is open; a key still waiting for its value is dropped.
        while let Some(frame) = self.stack.pop() {
            let (node, _) = self.close(frame);
            self.attach(Rc::new(node));
        }
        self.finish(true)
    }

    fn finish(&mut self, truncated: bool) -> Document {
        let root = if self.abandoned {
            None
        } else {
            self.root.take()
        };
        Document {
            root,
            line: self.line.max(1),
            truncated,
            errors: std::mem::take(&mut self.errors),
        }
    }

    fn error(&mut self, mark: Mark, error: ParseError) {
        self.errors.push(Located { mark, error });
    }

    /// Gives the document up at `mark`: what was read is dropped, the rest is scanned only.
    fn abandon(&mut self, mark: Mark, error: ParseError) {
        self.error(mark, error);
        self.abandoned = true;
        self.stack.clear();
        self.anchors.clear();
        self.root = None;
    }

    fn scalar_style(&mut self, style: YamlStyle, tag: Option<&Tag>, mark: Mark) -> ScalarStyle {
        self.check_tag(tag, mark);
        let forced_string = tag.is_some_and(|t| t.core_suffix() == Some("str"));
        match style {
            YamlStyle::Plain if !forced_string => ScalarStyle::Plain,
            _ => ScalarStyle::Text,
        }
    }

    fn check_tag(&mut self, tag: Option<&Tag>, mark: Mark) {
        if let Some(tag) = tag
            && tag.core_suffix().is_none()
        {
            self.error(mark, ParseError::CustomTag(tag.original()));
        }
    }

    /// A finished node: register its anchor and attach it to its parent.
    fn complete(&mut self, node: Rc<Node>, anchor: usize) {
        if node.size > MAX_NODES {
            self.abandon(node.mark, ParseError::TooLarge);
            return;
        }
        if anchor != 0 {
            self.anchors.insert(anchor, Rc::clone(&node));
        }
        self.attach(node);
    }

    fn attach(&mut self, node: Rc<Node>) {
        let Some(frame) = self.stack.last_mut() else {
            self.root = Some(node);
            return;
        };
        match frame {
            Frame::Seq { items, size, .. } => {
                *size = size.saturating_add(node.size);
                items.push(node);
            }
            Frame::Map {
                entries,
                merges,
                key,
                lines,
                size,
                ..
            } => match key.take() {
                None => {
                    let key_mark = node.mark;
                    match &node.value {
                        Value::Scalar { text, .. } => *key = Some((key_mark, Some(text.clone()))),
                        _ => {
                            *key = Some((key_mark, None));
                            self.errors.push(Located {
                                mark: key_mark,
                                error: ParseError::ComplexKey,
                            });
                        }
                    }
                }
                Some((_, None)) => {}
                Some((key_mark, Some(key))) => {
                    *size = size.saturating_add(node.size);
                    if key == "<<" {
                        merges.push((key_mark, node));
                    } else if let Some(&first_line) = lines.get(&key) {
                        self.errors.push(Located {
                            mark: key_mark,
                            error: ParseError::DuplicateKey { key, first_line },
                        });
                    } else {
                        lines.insert(key.clone(), key_mark.line);
                        entries.push(Entry {
                            key,
                            key_mark,
                            value: node,
                        });
                    }
                }
            },
        }
    }

    /// Turns a closed frame into its node, applying merge keys.
    fn close(&mut self, frame: Frame) -> (Node, usize) {
        match frame {
            Frame::Seq {
                mark,
                anchor,
                items,
                size,
            } => (
                Node {
                    mark,
                    value: Value::Seq(items),
                    size,
                },
                anchor,
            ),
            Frame::Map {
                mark,
                anchor,
                mut entries,
                merges,
                size,
                ..
            } => {
                for (key_mark, merged) in merges {
                    if !merge_into(&mut entries, &merged) {
                        self.error(key_mark, ParseError::BadMerge);
                    }
                }
                (
                    Node {
                        mark,
                        value: Value::Map(entries),
                        size,
                    },
                    anchor,
                )
            }
        }
    }
}

/// Adds the entries of `merged` (a mapping or a list of mappings) whose keys are not set
/// yet. Returns false when `merged` has the wrong shape.
fn merge_into(entries: &mut Vec<Entry>, merged: &Node) -> bool {
    let mut present: HashSet<String> = entries.iter().map(|e| e.key.clone()).collect();
    let sources: Vec<&Node> = match &merged.value {
        Value::Map(_) => vec![merged],
        Value::Seq(items) => items.iter().map(|item| item.as_ref()).collect(),
        Value::Scalar { .. } => return false,
    };
    for source in sources {
        let Value::Map(extra) = &source.value else {
            return false;
        };
        for entry in extra {
            if present.insert(entry.key.clone()) {
                entries.push(entry.clone());
            }
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(text: &str) -> Document {
        let mut docs = parse_stream(text);
        assert_eq!(docs.len(), 1, "{docs:?}");
        docs.remove(0)
    }

    #[test]
    fn nodes_carry_line_and_column() {
        let doc = one("a:\n  b: [1, 'x']\n");
        assert!(doc.errors.is_empty(), "{:?}", doc.errors);
        let root = doc.root.expect("root");
        let b = root.get("a").and_then(|a| a.get("b")).expect("a.b");
        assert_eq!(b.mark, Mark { line: 2, column: 6 });
        let Value::Seq(items) = &b.value else {
            panic!("not a list")
        };
        assert_eq!(
            items[1].mark,
            Mark {
                line: 2,
                column: 10
            }
        );
        assert_eq!(
            items[1].value,
            Value::Scalar {
                text: "x".into(),
                style: ScalarStyle::Text
            }
        );
    }

    #[test]
    fn streams_split_into_documents_and_recover_after_syntax_errors() {
        let docs = parse_stream("a: 1\n---\nb: [1, 2\n---\nc: 3\n");
        assert_eq!(docs.len(), 3, "{docs:?}");
        assert!(docs[0].errors.is_empty());
        assert!(docs[1].truncated);
        assert!(matches!(docs[1].errors[0].error, ParseError::Syntax(_)));
        assert!(docs[2].root.as_ref().and_then(|r| r.get("c")).is_some());
    }

    #[test]
    fn duplicate_keys_and_custom_tags_are_errors() {
        let doc = one("a: 1\nb: !custom 2\na: 3\n");
        let errors: Vec<_> = doc.errors.iter().map(|e| (e.mark.line, &e.error)).collect();
        assert_eq!(
            errors,
            vec![
                (2, &ParseError::CustomTag("!custom".into())),
                (
                    3,
                    &ParseError::DuplicateKey {
                        key: "a".into(),
                        first_line: 1
                    }
                ),
            ]
        );
    }

    #[test]
    fn aliases_and_merge_keys_resolve() {
        let doc = one("base: &b {x: 1, y: 2}\nc:\n  <<: *b\n  y: 3\n");
        assert!(doc.errors.is_empty(), "{:?}", doc.errors);
        let c = doc.root.as_ref().and_then(|r| r.get("c")).expect("c");
        assert_eq!(c.get("x").and_then(Node::as_text), Some("1"));
        assert_eq!(c.get("y").and_then(Node::as_text), Some("3"));
    }

    #[test]
    fn alias_bombs_are_rejected() {
        let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..12 {
            let prev = i - 1;
            text.push_str(&format!(
                "a{i}: &a{i} [*a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}]\n"
            ));
        }
        let doc = one(&text);
        assert!(doc.errors.iter().any(|e| e.error == ParseError::TooLarge));
        assert!(doc.root.is_none());
    }

    #[test]
    fn documents_past_a_limit_are_rejected_at_the_node_that_broke_it() {
        let deep = |levels: usize| format!("{}x{}\n", "[".repeat(levels), "]".repeat(levels));
        let block_deep = (0..MAX_DEPTH + 1)
            .map(|i| format!("{}k{i}:\n", "  ".repeat(i)))
            .collect::<String>();
        let aliases = |n: usize| {
            let mut text = String::from("a: &a 1\nl:\n");
            text.push_str(&"- *a\n".repeat(n));
            text
        };
        let cases: Vec<(String, Option<(ParseError, usize)>)> = vec![
            (deep(MAX_DEPTH), None),
            (deep(MAX_DEPTH + 1), Some((ParseError::TooDeep, 1))),
            (block_deep, Some((ParseError::TooDeep, MAX_DEPTH + 1))),
            (aliases(MAX_ALIASES), None),
            (
                aliases(MAX_ALIASES + 1),
                Some((ParseError::TooManyAliases, MAX_ALIASES + 3)),
            ),
        ];
        for (text, expected) in cases {
            let doc = one(&text);
            let got = doc.errors.first().map(|e| (e.error.clone(), e.mark.line));
            assert_eq!(got, expected, "{}", &text[..text.len().min(80)]);
            assert_eq!(doc.root.is_some(), expected.is_none());
            if let Some((error, _)) = expected {
                assert!(error.metric_label().starts_with("yaml_too_"));
            }
        }
    }

    #[test]
    fn a_rejected_document_leaves_the_next_ones_read() {
        let text = format!("{}x{}\n---\nb: 1\n", "[".repeat(100), "]".repeat(100));
        let docs: Vec<Document> = documents(&text).collect();
        assert_eq!(docs.len(), 2, "{docs:?}");
        assert_eq!(docs[0].errors[0].error, ParseError::TooDeep);
        assert_eq!(docs[0].errors.len(), 1);
        assert!(docs[1].errors.is_empty());
        assert!(docs[1].root.as_ref().and_then(|r| r.get("b")).is_some());
    }
}
