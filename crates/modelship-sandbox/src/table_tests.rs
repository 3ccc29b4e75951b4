use super::*;
use crate::registry::Registry;

fn rt(group: &str, kind: &str) -> ResourceType {
    Registry::builtin()
        .find_kind(group, kind)
        .cloned()
        .expect("built-in kind")
}

fn now() -> jiff::Timestamp {
    "2026-01-01T00:10:00Z".parse().expect("timestamp")
}

fn headers(t: &Value) -> Vec<&str> {
    t["columnDefinitions"]
        .as_array()
        .expect("columns")
        .iter()
        .filter(|c| c["priority"] == 0)
        .map(|c| c["name"].as_str().expect("name"))
        .collect()
}

fn deployment() -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": { "name": "llama", "namespace": "ml", "creationTimestamp": "2026-01-01T00:05:00Z", "resourceVersion": "7" },
        "spec": { "replicas": 3, "selector": { "matchLabels": { "app": "llama" } },
            "template": { "spec": { "containers": [{ "name": "server", "image": "llama:1" }] } } },
        "status": { "readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2 }
    })
}

#[test]
fn accept_header_selects_v1_tables_only() {
    assert!(wanted(
        "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json"
    ));
    assert!(!wanted("application/json;as=Table;v=v1beta1;g=meta.k8s.io"));
    assert!(!wanted("application/json"));
}

#[test]
fn include_object_parses_and_rejects_unknown_values() {
    assert_eq!(Include::from_query(None), Ok(Include::Metadata));
    assert_eq!(Include::from_query(Some("None")), Ok(Include::None));
    assert_eq!(Include::from_query(Some("Object")), Ok(Include::Object));
    assert_eq!(
        Include::from_query(Some("All")).map_err(|e| e.code()),
        Err(400)
    );
}

#[test]
fn deployment_rows_show_ready_over_desired() {
    let list = json!({ "metadata": { "resourceVersion": "9" }, "items": [deployment()] });
    let t = of_list(&rt("apps", "Deployment"), &list, Include::Metadata, now());
    assert_eq!(t["kind"], "Table");
    assert_eq!(t["apiVersion"], "meta.k8s.io/v1");
    assert_eq!(t["metadata"]["resourceVersion"], "9");
    assert_eq!(
        headers(&t),
        ["Name", "Ready", "Up-to-date", "Available", "Age"]
    );
    assert_eq!(
        t["rows"][0]["cells"],
        json!(["llama", "2/3", 3, 2, "5m", "server", "llama:1", "app=llama"])
    );
    assert_eq!(
        t["rows"][0]["object"],
        json!({ "kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
            "metadata": deployment()["metadata"] })
    );
}

#[test]
fn service_rows_show_type_ip_and_ports() {
    let svc = json!({
        "metadata": { "name": "llama", "creationTimestamp": "2026-01-01T00:09:30Z" },
        "spec": { "type": "NodePort", "clusterIP": "10.96.0.2", "selector": { "app": "llama" },
            "ports": [{ "port": 80, "protocol": "TCP", "nodePort": 30080 }, { "port": 9090 }] }
    });
    let t = of_object(&rt("", "Service"), &svc, Include::None, now());
    assert_eq!(
        headers(&t),
        [
            "Name",
            "Type",
            "Cluster-IP",
            "External-IP",
            "Port(s)",
            "Age"
        ]
    );
    assert_eq!(
        t["rows"][0]["cells"],
        json!([
            "llama",
            "NodePort",
            "10.96.0.2",
            "<none>",
            "80:30080/TCP,9090/TCP",
            "30s",
            "app=llama"
        ])
    );
    assert!(t["rows"][0].get("object").is_none());
    let lb = json!({ "metadata": { "name": "lb" }, "spec": { "type": "LoadBalancer" } });
    let t = of_object(&rt("", "Service"), &lb, Include::Object, now());
    assert_eq!(t["rows"][0]["cells"][3], "<pending>");
    assert_eq!(t["rows"][0]["cells"][5], "<unknown>");
    assert_eq!(t["rows"][0]["object"], lb);
}

#[test]
fn namespaces_show_status_and_other_kinds_name_and_age() {
    let ns = json!({ "metadata": { "name": "ml", "creationTimestamp": "2026-01-01T00:00:00Z" } });
    let t = of_object(&rt("", "Namespace"), &ns, Include::Metadata, now());
    assert_eq!(headers(&t), ["Name", "Status", "Age"]);
    assert_eq!(t["rows"][0]["cells"], json!(["ml", "Active", "10m"]));
    let t = of_object(
        &rt("coordination.k8s.io", "Lease"),
        &ns,
        Include::Metadata,
        now(),
    );
    assert_eq!(headers(&t), ["Name", "Age"]);
    assert_eq!(t["rows"][0]["cells"], json!(["ml", "10m"]));
}

#[test]
fn configmaps_secrets_and_serviceaccounts_count_their_keys() {
    let cm = json!({ "metadata": { "name": "cfg" }, "data": { "a": "1", "b": "2" }, "binaryData": { "c": "AA==" } });
    let t = of_object(&rt("", "ConfigMap"), &cm, Include::None, now());
    assert_eq!(headers(&t), ["Name", "Data", "Age"]);
    assert_eq!(t["rows"][0]["cells"], json!(["cfg", 3, "<unknown>"]));
    let secret = json!({ "metadata": { "name": "s" }, "type": "kubernetes.io/tls", "data": { "a": "" }, "stringData": { "a": "x", "b": "y" } });
    let t = of_object(&rt("", "Secret"), &secret, Include::None, now());
    assert_eq!(headers(&t), ["Name", "Type", "Data", "Age"]);
    assert_eq!(
        t["rows"][0]["cells"],
        json!(["s", "kubernetes.io/tls", 2, "<unknown>"])
    );
    let sa = json!({ "metadata": { "name": "bot" }, "secrets": [{ "name": "t" }] });
    let t = of_object(&rt("", "ServiceAccount"), &sa, Include::None, now());
    assert_eq!(headers(&t), ["Name", "Secrets", "Age"]);
    assert_eq!(t["rows"][0]["cells"], json!(["bot", 1, "<unknown>"]));
    let crd = json!({ "metadata": { "name": "a.b", "creationTimestamp": "2026-01-01T00:00:00Z" } });
    let t = of_object(
        &rt("apiextensions.k8s.io", "CustomResourceDefinition"),
        &crd,
        Include::None,
        now(),
    );
    assert_eq!(headers(&t), ["Name", "Created At"]);
    assert_eq!(
        t["rows"][0]["cells"],
        json!(["a.b", "2026-01-01T00:00:00Z"])
    );
}

#[test]
fn ages_read_like_kubectl() {
    let cases = [
        (-5, "<invalid>"),
        (0, "0s"),
        (119, "119s"),
        (150, "2m30s"),
        (600, "10m"),
        (3 * 3600, "3h"),
        (3 * 3600 + 60 * 5, "3h5m"),
        (30 * 3600, "30h"),
        (3 * 86400 + 3600, "3d1h"),
        (40 * 86400, "40d"),
        (3 * 365 * 86400 + 86400, "3y1d"),
        (10 * 365 * 86400, "10y"),
    ];
    for (secs, want) in cases {
        assert_eq!(human_duration(secs), want, "{secs}s");
    }
}
