//! Shared by the table-driven rule tests: a valid base service, a configuration with a
//! GPU catalog, the case type, and the check that a case yields exactly its diagnostic.

use std::collections::BTreeMap;

use modelship::spec::{self, Diagnostic};

/// A valid service; `{meta}` extends metadata, `{extra}` adds lines to spec (from line 9).
pub const BASE: &str = "apiVersion: modelship.dev/v1alpha1
kind: ModelService
metadata:
  name: svc
spec:
  model: {name: m, version: \"1\"}
  runtime: {image: \"r.example.com/s:1\"}
  resources: {cpu: \"1\", memory: 1Gi}
";

/// A configuration with a GPU catalog, a gateway and a model loader.
pub const CONFIG: &str = "apiVersion: modelship.dev/v1alpha1
kind: RepositoryConfig
spec:
  traffic: {gateway: {name: gw, namespace: gateway-system}}
  prometheus: {url: \"http://prometheus.monitoring:9090\"}
  modelLoader: {image: \"r.example.com/loader:1\"}
  gpu:
    catalog:
      a100-80gb: {product: NVIDIA-A100-SXM4-80GB}
      l4: {product: NVIDIA-L4}
";

/// The base service with `extra` appended to its spec (extra starts at line 9).
pub fn with(extra: &str) -> String {
    format!("{BASE}{extra}")
}

/// The base service with one piece of text replaced.
pub fn edit(from: &str, to: &str) -> String {
    assert!(BASE.contains(from), "{from:?} not in the base service");
    BASE.replace(from, to)
}

pub struct Case {
    pub name: &'static str,
    pub service: String,
    pub config: Option<String>,
    /// (file, line, column, field, message substring)
    pub expect: (&'static str, usize, usize, &'static str, &'static str),
}

pub fn case(
    name: &'static str,
    service: String,
    expect: (&'static str, usize, usize, &'static str, &'static str),
) -> Case {
    Case {
        name,
        service,
        config: Some(CONFIG.to_string()),
        expect,
    }
}

pub const SVC: &str = "services/svc.yaml";
pub const CFG: &str = "modelship.yaml";

pub fn run(case: &Case) -> Vec<Diagnostic> {
    let mut files = BTreeMap::new();
    files.insert(SVC.to_string(), case.service.as_bytes().to_vec());
    if let Some(config) = &case.config {
        files.insert(CFG.to_string(), config.as_bytes().to_vec());
    }
    spec::load(&files).diagnostics
}

pub fn check(case: &Case) -> Result<(), String> {
    let diagnostics = run(case);
    let (file, line, column, field, message) = case.expect;
    let shown: Vec<String> = diagnostics.iter().map(ToString::to_string).collect();
    let [d] = diagnostics.as_slice() else {
        return Err(format!(
            "{}: expected one diagnostic, got {shown:#?}",
            case.name
        ));
    };
    let full = d.to_string();
    let ok = d.file == file
        && d.line == line
        && d.column == column
        && d.field == field
        && full.contains(message);
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{}: expected {file}:{line}:{column} {field:?} containing {message:?}, got {full}",
            case.name
        ))
    }
}

/// Runs every case and fails with all mismatches at once.
pub fn assert_cases(cases: &[Case]) {
    let failures: Vec<String> = cases.iter().filter_map(|c| check(c).err()).collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
