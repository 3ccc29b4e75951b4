//! Property tests: `spec::load` never panics, whatever the input, and its result keeps its
//! invariants (sorted diagnostics, a failing document never among the valid services).

use std::collections::BTreeMap;

use modelship::meta::ServiceId;
use modelship::spec::{self, Repository};
use proptest::prelude::*;

const FULL: &str = include_str!("fixtures/spec/full/services/risk/fraud.yaml");
const CONFIG: &str = include_str!("fixtures/spec/full/modelship.yaml");
const FILE: &str = "services/svc.yaml";

fn load_one(service: &[u8], config: Option<&[u8]>) -> Repository {
    let mut files = BTreeMap::new();
    files.insert(FILE.to_string(), service.to_vec());
    if let Some(config) = config {
        files.insert("modelship.yaml".to_string(), config.to_vec());
    }
    spec::load(&files)
}

/// Invariants of every result.
fn check_invariants(repo: &Repository) -> Result<(), TestCaseError> {
    let keys: Vec<_> = repo
        .diagnostics
        .iter()
        .map(|d| (d.file.clone(), d.line, d.column))
        .collect();
    let mut sorted = keys.clone();
    sorted.sort();
    prop_assert_eq!(keys, sorted, "diagnostics not sorted");
    let ids: Vec<_> = repo.services.iter().map(|s| s.id().clone()).collect();
    let mut sorted_ids = ids.clone();
    sorted_ids.sort();
    prop_assert_eq!(&ids, &sorted_ids, "services not sorted");
    for id in &ids {
        prop_assert!(
            !repo.invalid.contains(id),
            "{:?} both valid and invalid",
            id
        );
    }
    for d in &repo.diagnostics {
        // Every rendered diagnostic names its file.
        prop_assert!(d.to_string().starts_with(&d.file));
    }
    Ok(())
}

/// A YAML tree rendered in flow or block style, with anchors and aliases.
#[derive(Debug, Clone)]
enum Yaml {
    Scalar(String),
    List(Vec<Yaml>),
    Map(Vec<(String, Yaml)>),
    Anchored(String, Box<Yaml>),
    Alias(String),
}

fn scalar() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("~".to_string()),
        Just("".to_string()),
        Just("true".to_string()),
        Just("yes".to_string()),
        Just("1.10".to_string()),
        Just("-0x1F".to_string()),
        Just(".inf".to_string()),
        Just("\"quoted: text\"".to_string()),
        Just("'single'".to_string()),
        Just("8Gi".to_string()),
        Just("5m".to_string()),
        Just("modelship.dev/v1alpha1".to_string()),
        Just("ModelService".to_string()),
        Just("!!str 12".to_string()),
        Just("!custom x".to_string()),
        any::<i64>().prop_map(|n| n.to_string()),
        "[a-zA-Z0-9 _./:-]{0,12}",
    ]
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("apiVersion".to_string()),
        Just("kind".to_string()),
        Just("metadata".to_string()),
        Just("name".to_string()),
        Just("spec".to_string()),
        Just("model".to_string()),
        Just("runtime".to_string()),
        Just("autoscaling".to_string()),
        Just("metrics".to_string()),
        Just("cpu".to_string()),
        Just("<<".to_string()),
        "[a-zA-Z]{1,8}",
    ]
}

fn yaml() -> impl Strategy<Value = Yaml> {
    let leaf = prop_oneof![
        4 => scalar().prop_map(Yaml::Scalar),
        1 => "a[0-3]".prop_map(Yaml::Alias),
    ];
    leaf.prop_recursive(8, 64, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Yaml::List),
            prop::collection::vec((key(), inner.clone()), 0..6).prop_map(Yaml::Map),
            ("a[0-3]", inner).prop_map(|(name, node)| Yaml::Anchored(name, Box::new(node))),
        ]
    })
}

fn flow(node: &Yaml, out: &mut String) {
    match node {
        Yaml::Scalar(text) => out.push_str(text),
        Yaml::Alias(name) => {
            out.push('*');
            out.push_str(name);
        }
        Yaml::Anchored(name, inner) => {
            out.push('&');
            out.push_str(name);
            out.push(' ');
            flow(inner, out);
        }
        Yaml::List(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                flow(item, out);
            }
            out.push(']');
        }
        Yaml::Map(entries) => {
            out.push('{');
            for (i, (key, value)) in entries.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                out.push_str(key);
                out.push_str(": ");
                flow(value, out);
            }
            out.push('}');
        }
    }
}

fn block(node: &Yaml, indent: usize, out: &mut String) {
    let pad = " ".repeat(indent);
    match node {
        Yaml::Map(entries) if !entries.is_empty() => {
            for (key, value) in entries {
                out.push_str(&format!("{pad}{key}:"));
                nested(value, indent, out);
            }
        }
        Yaml::List(items) if !items.is_empty() => {
            for item in items {
                out.push_str(&format!("{pad}-"));
                nested(item, indent, out);
            }
        }
        other => {
            out.push_str(&pad);
            flow(other, out);
            out.push('\n');
        }
    }
}

fn nested(value: &Yaml, indent: usize, out: &mut String) {
    match value {
        Yaml::Map(e) if !e.is_empty() => {
            out.push('\n');
            block(value, indent + 2, out);
        }
        Yaml::List(i) if !i.is_empty() => {
            out.push('\n');
            block(value, indent + 2, out);
        }
        other => {
            out.push(' ');
            flow(other, out);
            out.push('\n');
        }
    }
}

/// Line edits of a valid document.
#[derive(Debug, Clone)]
enum Mutation {
    Delete(usize),
    Duplicate(usize),
    Swap(usize, usize),
    Indent(usize),
}

fn mutate(text: &str, mutations: &[Mutation]) -> String {
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    for m in mutations {
        let n = lines.len();
        if n == 0 {
            break;
        }
        match *m {
            Mutation::Delete(i) => {
                lines.remove(i % n);
            }
            Mutation::Duplicate(i) => {
                let line = lines[i % n].clone();
                lines.insert(i % n, line);
            }
            Mutation::Swap(a, b) => lines.swap(a % n, b % n),
            Mutation::Indent(i) => lines[i % n].insert(0, ' '),
        }
    }
    lines.join("\n")
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        any::<usize>().prop_map(Mutation::Delete),
        any::<usize>().prop_map(Mutation::Duplicate),
        (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Mutation::Swap(a, b)),
        any::<usize>().prop_map(Mutation::Indent),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        check_invariants(&load_one(&bytes, None))?;
        check_invariants(&load_one(FULL.as_bytes(), Some(&bytes)))?;
    }

    #[test]
    fn structured_yaml_never_panics(doc in yaml(), docs in prop::collection::vec(yaml(), 0..3)) {
        let mut block_text = String::new();
        block(&doc, 0, &mut block_text);
        let mut flow_text = String::new();
        flow(&doc, &mut flow_text);
        for other in &docs {
            flow_text.push_str("\n---\n");
            flow(other, &mut flow_text);
        }
        check_invariants(&load_one(block_text.as_bytes(), None))?;
        check_invariants(&load_one(flow_text.as_bytes(), None))?;
        check_invariants(&load_one(FULL.as_bytes(), Some(block_text.as_bytes())))?;
    }

    #[test]
    fn mutated_services_never_panic_and_failures_stay_out(
        mutations in prop::collection::vec(mutation(), 1..6)
    ) {
        let text = mutate(FULL, &mutations);
        let repo = load_one(text.as_bytes(), Some(CONFIG.as_bytes()));
        check_invariants(&repo)?;
        let file_has_errors = repo.diagnostics.iter().any(|d| d.file == FILE);
        prop_assert_eq!(
            file_has_errors,
            repo.services.is_empty(),
            "{}\n{:#?}", text, repo.diagnostics
        );
        if file_has_errors && text.contains("\n  name: fraud-detection\n")
            && text.contains("\nmetadata:\n  name: fraud-detection\n")
        {
            prop_assert!(
                repo.invalid.iter().any(|id| id.name() == "fraud-detection"),
                "name not recovered:\n{}\n{:#?}", text, repo.diagnostics
            );
        }
    }

    #[test]
    fn deep_nesting_is_bounded(depth in 1usize..1000, block_style in any::<bool>()) {
        let text = if block_style {
            (0..depth).map(|i| format!("{}k:\n", " ".repeat(i))).collect::<String>()
        } else {
            format!("{}{}", "[".repeat(depth), "]".repeat(depth))
        };
        check_invariants(&load_one(text.as_bytes(), None))?;
    }
}

#[test]
fn alias_bombs_are_rejected_with_a_diagnostic() {
    let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 1..15 {
        let p = i - 1;
        let refs = vec![format!("*a{p}"); 10].join(", ");
        text.push_str(&format!("a{i}: &a{i} [{refs}]\n"));
    }
    let repo = load_one(text.as_bytes(), None);
    let shown: Vec<String> = repo.diagnostics.iter().map(ToString::to_string).collect();
    assert_eq!(shown.len(), 1, "{shown:#?}");
    assert!(shown[0].contains("document too large"), "{shown:#?}");
}

#[test]
fn huge_documents_load_in_linear_time_with_a_bounded_report() {
    // 50,000 unknown fields: duplicate checks and reports must not be quadratic, and the
    // report stops at a readable number of problems.
    let mut text = String::from(FULL);
    for i in 0..50_000 {
        text.push_str(&format!("  unknown{i}: {i}\n"));
    }
    let repo = load_one(text.as_bytes(), Some(CONFIG.as_bytes()));
    assert_eq!(repo.diagnostics.len(), spec::de::MAX_PROBLEMS);
    assert!(repo.services.is_empty());
    assert_eq!(
        repo.invalid,
        [ServiceId::new("ml-prod", "fraud-detection").unwrap()]
    );
}
