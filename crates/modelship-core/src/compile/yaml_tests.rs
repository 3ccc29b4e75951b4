use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{Value, json};

use super::*;

fn yaml<T: Serialize>(value: &T) -> String {
    let mut out = String::new();
    write_document(&mut out, value).unwrap();
    out
}

#[test]
fn block_layout_matches_kubectl() {
    let value = json!({
        "metadata": {"name": "m", "labels": {"a": "b"}},
        "spec": {
            "ports": [{"name": "http", "port": 8080}, {"name": "grpc", "port": 8081}],
            "args": ["--model", "/mnt/models"],
            "empty": {},
            "none": [],
            "nested": [["a", "b"], []],
            "items": [{}, {"deep": {"x": true}}],
        }
    });
    let expected = "\
metadata:
  name: m
  labels:
    a: b
spec:
  ports:
  - name: http
    port: 8080
  - name: grpc
    port: 8081
  args:
  - --model
  - /mnt/models
  empty: {}
  none: []
  nested:
  - - a
    - b
  - []
  items:
  - {}
  - deep:
      x: true
";
    assert_eq!(yaml(&value), expected);
}

#[test]
fn scalars_are_plain_only_when_unambiguous() {
    let cases = [
        ("efficientnet-b4", "efficientnet-b4"),
        ("200Gi", "200Gi"),
        ("500m", "500m"),
        ("25%", "25%"),
        ("--model", "--model"),
        (
            "registry.example.com/a@sha256:0f",
            "registry.example.com/a@sha256:0f",
        ),
        ("http://x:80/p", "http://x:80/p"),
        ("3.1.0", "\"3.1.0\""),
        ("16", "\"16\""),
        ("0012", "\"0012\""),
        ("1e3", "\"1e3\""),
        ("0x1F", "\"0x1F\""),
        ("0o17", "\"0o17\""),
        ("6013771d3f", "6013771d3f"),
        ("0xZZ", "0xZZ"),
        ("1:30", "\"1:30\""),
        ("-19", "\"-19\""),
        (".5", "\".5\""),
        (".inf", "\".inf\""),
        ("-.Inf", "\"-.Inf\""),
        ("true", "\"true\""),
        ("Yes", "\"Yes\""),
        ("off", "\"off\""),
        ("y", "\"y\""),
        ("null", "\"null\""),
        ("~", "\"~\""),
        ("", "\"\""),
        ("-", "\"-\""),
        ("- x", "\"- x\""),
        ("a: b", "\"a: b\""),
        ("a #b", "\"a #b\""),
        ("key:", "\"key:\""),
        (" lead", "\" lead\""),
        ("trail ", "\"trail \""),
        ("*alias", "\"*alias\""),
        ("&anchor", "\"&anchor\""),
        ("!tag", "\"!tag\""),
        ("{x}", "\"{x}\""),
        ("[x]", "\"[x]\""),
        ("@x", "\"@x\""),
        ("'q'", "\"'q'\""),
        ("say \"hi\"", "say \"hi\""),
        ("\"hi\" said", "\"\\\"hi\\\" said\""),
        ("a\nb", "\"a\\nb\""),
        ("tab\there", "\"tab\\there\""),
        ("bell\u{7}", "\"bell\\u0007\""),
        ("ünïcode", "\"ünïcode\""),
        ("line\u{2028}sep", "\"line\\u2028sep\""),
    ];
    for (input, expected) in cases {
        assert_eq!(yaml(&input), format!("{expected}\n"), "{input:?}");
    }
}

#[test]
fn numbers_bools_and_nulls() {
    let cases: [(Value, &str); 7] = [
        (json!(8080), "8080"),
        (json!(-3), "-3"),
        (json!(1.5), "1.5"),
        (json!(2.0), "2.0"),
        (json!(true), "true"),
        (json!(false), "false"),
        (json!(null), "null"),
    ];
    for (value, expected) in cases {
        assert_eq!(yaml(&value), format!("{expected}\n"), "{value}");
    }
}

#[test]
fn output_reads_back_as_the_same_value() {
    let mut env = BTreeMap::new();
    for (i, s) in [
        "true",
        "0012",
        "",
        "null",
        "a: b\n- c",
        "#x",
        "x #y",
        "1:30",
        "ünï",
        "\"q\"",
        "\\",
        "-",
        "? x",
        "|",
        ">",
        "%x",
        "` x",
        "1.0",
        ".nan",
        "=",
        "<<",
    ]
    .iter()
    .enumerate()
    {
        env.insert(format!("K{i:02}"), s.to_string());
    }
    let value = json!({"list": [env.clone(), [], {}], "map": env, "n": [1, 2.5, false, null]});
    let text = yaml(&value);
    let back: Value = serde_saphyr::from_str(&text).unwrap();
    assert_eq!(back, value, "{text}");
}

#[test]
fn non_string_keys_are_errors() {
    let map = BTreeMap::from([(1, "a")]);
    let mut out = String::new();
    assert!(matches!(
        write_document(&mut out, &map),
        Err(YamlError::NonStringKey)
    ));
}
