//! Output of compiled objects: a YAML stream (documents separated by `---`, what
//! `kubectl apply -f` reads; written by `yaml.rs`) or a JSON `v1 List`. Both are
//! deterministic: objects keep the order given, fields the API order of their types, maps
//! are sorted.

use super::{CompileError, Object, yaml};

/// The objects as a YAML stream, `---` between documents.
pub fn render_yaml<'a>(
    objects: impl IntoIterator<Item = &'a Object>,
) -> Result<String, CompileError> {
    let mut out = String::new();
    for (i, object) in objects.into_iter().enumerate() {
        if i > 0 {
            out.push_str("---\n");
        }
        // Typed objects stream straight to YAML, in the same field order `to_json` gives.
        yaml::write_document(&mut out, object).map_err(|e| serialize_error(object, e))?;
    }
    Ok(out)
}

/// The objects as a pretty-printed JSON `List` (apiVersion v1), with a final newline.
pub fn render_json<'a>(
    objects: impl IntoIterator<Item = &'a Object>,
) -> Result<String, CompileError> {
    /// A `v1 List`, serialized straight from the typed objects.
    #[derive(serde::Serialize)]
    struct List<'a> {
        #[serde(rename = "apiVersion")]
        api_version: &'static str,
        kind: &'static str,
        items: Vec<&'a Object>,
    }
    let list = List {
        api_version: "v1",
        kind: "List",
        items: objects.into_iter().collect(),
    };
    let mut out = serde_json::to_string_pretty(&list).map_err(|e| CompileError::Serialize {
        kind: "List",
        name: String::new(),
        message: e.to_string(),
    })?;
    out.push('\n');
    Ok(out)
}

fn serialize_error(object: &Object, e: impl std::fmt::Display) -> CompileError {
    CompileError::Serialize {
        kind: object.kind().as_str(),
        name: object.name().to_string(),
        message: e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compile::testutil::{cpu_service, loaded};
    use crate::compile::{Source, compile_service};
    use crate::spec::RepositoryConfig;
    use serde_json::Value;

    fn objects() -> Vec<Object> {
        let mut svc = cpu_service("fraud");
        // Values that YAML would read as other types unless quoted.
        svc.spec.runtime.env.insert("FLAG".into(), "true".into());
        svc.spec.runtime.env.insert("COUNT".into(), "0012".into());
        svc.spec.runtime.env.insert("EMPTY".into(), String::new());
        svc.spec.runtime.env.insert("NULLISH".into(), "null".into());
        svc.spec
            .runtime
            .env
            .insert("MULTI".into(), "a: b\n- c".into());
        let long = "word ".repeat(40).trim().to_string();
        svc.spec.runtime.env.insert("LONG".into(), long);
        svc.metadata.annotations.insert("note".into(), "yes".into());
        compile_service(&loaded(svc), &RepositoryConfig::default(), &Source::local())
            .unwrap()
            .objects
    }

    #[test]
    fn yaml_round_trips_to_the_same_json() {
        let objects = objects();
        let yaml = render_yaml(&objects).unwrap();
        let docs: Vec<Value> = serde_saphyr::from_multiple(&yaml).unwrap();
        let expected: Vec<Value> = objects.iter().map(|o| o.to_json().unwrap()).collect();
        assert_eq!(docs, expected);
        assert_eq!(yaml.matches("\n---\n").count(), objects.len() - 1);
        assert!(
            !yaml.contains(">-"),
            "long strings stay on one line:\n{yaml}"
        );
    }

    #[test]
    fn json_is_a_list_of_the_objects() {
        let objects = objects();
        let json: Value = serde_json::from_str(&render_json(&objects).unwrap()).unwrap();
        assert_eq!(json["kind"], "List");
        let items = json["items"].as_array().unwrap();
        assert_eq!(items.len(), objects.len());
        for (item, object) in items.iter().zip(&objects) {
            assert_eq!(item, &object.to_json().unwrap());
        }
    }

    #[test]
    fn rendering_is_deterministic() {
        let a = render_yaml(&objects()).unwrap();
        let b = render_yaml(&objects()).unwrap();
        assert_eq!(a, b);
        assert_eq!(
            render_json(&objects()).unwrap(),
            render_json(&objects()).unwrap()
        );
    }

    #[test]
    fn nothing_renders_to_nothing() {
        assert_eq!(render_yaml(&[]).unwrap(), "");
        let json: Value = serde_json::from_str(&render_json(&[]).unwrap()).unwrap();
        assert_eq!(json["items"], serde_json::json!([]));
    }
}
