//! Server-side defaulting: the documented subset of kube-apiserver's `SetDefaults_*`
//! functions (`pkg/apis/*/v*/defaults.go`) that objects modelship writes meet.
//!
//! Every default fills a field only when it is absent (or `null`), so defaulting is
//! idempotent, and a server-side apply after defaulting neither conflicts with nor removes
//! defaulted fields: no manager owns them. Defaults apply on every write, create or update,
//! as in kube-apiserver.
//!
//! | kind | defaults |
//! |---|---|
//! | Deployment | `replicas` 1, `revisionHistoryLimit` 10, `progressDeadlineSeconds` 600, `strategy` RollingUpdate with `maxUnavailable`/`maxSurge` 25%, pod template below |
//! | ReplicaSet, StatefulSet, DaemonSet, Pod | the pod spec below |
//! | pod spec | `restartPolicy` Always, `terminationGracePeriodSeconds` 30, `dnsPolicy` ClusterFirst, `schedulerName` default-scheduler, `securityContext` {}; configMap/secret/downwardAPI/projected volumes `defaultMode` 420; `emptyDir: {}` stays as is |
//! | containers | `resources` {} (always serialized by a typed server), `terminationMessagePath` /dev/termination-log, `terminationMessagePolicy` File, `imagePullPolicy` (Always for `:latest` or untagged, else IfNotPresent), ports `protocol` TCP, probes `timeoutSeconds` 1 `periodSeconds` 10 `successThreshold` 1 `failureThreshold` 3, `httpGet.scheme` HTTP, env `fieldRef.apiVersion` v1 |
//! | Service | `type` ClusterIP, `sessionAffinity` None, ports `protocol` TCP and `targetPort` = `port`; unless ExternalName: `ipFamilies` `["IPv4"]`, `ipFamilyPolicy` SingleStack, `internalTrafficPolicy` Cluster; NodePort/LoadBalancer: `externalTrafficPolicy` Cluster; LoadBalancer: `allocateLoadBalancerNodePorts` true |
//! | HorizontalPodAutoscaler v2 | `minReplicas` 1, `metrics` CPU utilization 80% when empty; when `behavior` is set: scaleUp `stabilizationWindowSeconds` 0, `selectPolicy` Max, policies Pods 4/15s and Percent 100/15s; scaleDown `selectPolicy` Max, policies Percent 100/15s (its stabilization window stays unset: kube leaves it to the controller's 300 s flag) |
//! | NetworkPolicy | `policyTypes` `["Ingress"]` (+ `"Egress"` when `egress` rules exist), rule ports `protocol` TCP |
//! | Secret | `type` Opaque |
//! | ValidatingAdmissionPolicy(+Binding) | `failurePolicy` Fail; match resources `matchPolicy` Equivalent, `namespaceSelector` {}, `objectSelector` {}, rules `scope` "*"; binding `paramRef.parameterNotFoundAction` Deny |
//!
//! Not done here: Service `clusterIP`/`clusterIPs` and `nodePort` allocation (the caller
//! allocates them, as they need cluster state), and status fields.

use serde_json::{Map, Value, json};

/// Server-side defaulting by the `apiVersion`/`kind` found in the object; objects of
/// other kinds are left untouched.
pub fn apply_defaults(obj: &mut Value) {
    let text = |name: &str| {
        obj.get(name)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    let (api_version, kind) = (text("apiVersion"), text("kind"));
    let group = api_version.split_once('/').map_or("", |(g, _)| g);
    let Some(root) = obj.as_object_mut() else {
        return;
    };
    match (group, kind.as_str()) {
        ("apps", "Deployment") => deployment(root),
        ("apps", "ReplicaSet" | "StatefulSet" | "DaemonSet") => {
            if let Some(pod) = child(root, "spec").and_then(|s| child(s, "template")) {
                pod_template(pod);
            }
        }
        ("", "Pod") => {
            if let Some(spec) = child(root, "spec") {
                pod_spec(spec);
            }
        }
        ("", "Service") => {
            if let Some(spec) = child(root, "spec") {
                service_spec(spec);
            }
        }
        ("", "Secret") => set_default(root, "type", json!("Opaque")),
        ("autoscaling", "HorizontalPodAutoscaler") if api_version == "autoscaling/v2" => {
            if let Some(spec) = child(root, "spec") {
                hpa_spec(spec);
            }
        }
        ("admissionregistration.k8s.io", "ValidatingAdmissionPolicy") => {
            if let Some(spec) = child(root, "spec") {
                set_default(spec, "failurePolicy", json!("Fail"));
                if let Some(resources) = child(spec, "matchConstraints") {
                    match_resources(resources);
                }
            }
        }
        ("admissionregistration.k8s.io", "ValidatingAdmissionPolicyBinding") => {
            if let Some(spec) = child(root, "spec") {
                if let Some(resources) = child(spec, "matchResources") {
                    match_resources(resources);
                }
                if let Some(param_ref) = child(spec, "paramRef") {
                    set_default(param_ref, "parameterNotFoundAction", json!("Deny"));
                }
            }
        }
        ("networking.k8s.io", "NetworkPolicy") => {
            if let Some(spec) = child(root, "spec") {
                network_policy_spec(spec);
            }
        }
        _ => {}
    }
}

/// Sets `map[key]` to `value` when absent or null.
fn set_default(map: &mut Map<String, Value>, key: &str, value: Value) {
    match map.get(key) {
        Some(v) if !v.is_null() => {}
        _ => {
            map.insert(key.to_string(), value);
        }
    }
}

/// The object at `map[key]`, if there is one.
fn child<'a>(map: &'a mut Map<String, Value>, key: &str) -> Option<&'a mut Map<String, Value>> {
    map.get_mut(key).and_then(Value::as_object_mut)
}

/// The object at `map[key]`, created empty when absent or null; `None` if it is not an
/// object.
fn ensure<'a>(map: &'a mut Map<String, Value>, key: &str) -> Option<&'a mut Map<String, Value>> {
    set_default(map, key, json!({}));
    child(map, key)
}

/// The objects of the list at `map[key]`.
fn items<'a>(
    map: &'a mut Map<String, Value>,
    key: &str,
) -> impl Iterator<Item = &'a mut Map<String, Value>> {
    map.get_mut(key)
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
        .filter_map(Value::as_object_mut)
}

fn deployment(root: &mut Map<String, Value>) {
    let Some(spec) = ensure(root, "spec") else {
        return;
    };
    set_default(spec, "replicas", json!(1));
    set_default(spec, "revisionHistoryLimit", json!(10));
    set_default(spec, "progressDeadlineSeconds", json!(600));
    if let Some(strategy) = ensure(spec, "strategy") {
        set_default(strategy, "type", json!("RollingUpdate"));
        if strategy.get("type") == Some(&json!("RollingUpdate"))
            && let Some(rolling) = ensure(strategy, "rollingUpdate")
        {
            set_default(rolling, "maxUnavailable", json!("25%"));
            set_default(rolling, "maxSurge", json!("25%"));
        }
    }
    if let Some(template) = child(spec, "template") {
        pod_template(template);
    }
}

fn pod_template(template: &mut Map<String, Value>) {
    if let Some(spec) = child(template, "spec") {
        pod_spec(spec);
    }
}

fn pod_spec(spec: &mut Map<String, Value>) {
    set_default(spec, "restartPolicy", json!("Always"));
    set_default(spec, "terminationGracePeriodSeconds", json!(30));
    set_default(spec, "dnsPolicy", json!("ClusterFirst"));
    set_default(spec, "schedulerName", json!("default-scheduler"));
    set_default(spec, "securityContext", json!({}));
    for list in ["containers", "initContainers"] {
        for container in items(spec, list) {
            container_defaults(container);
        }
    }
    for volume in items(spec, "volumes") {
        for source in ["configMap", "secret", "downwardAPI", "projected"] {
            if let Some(source) = child(volume, source) {
                set_default(source, "defaultMode", json!(420));
            }
        }
    }
}

/// `imagePullPolicy` from the image reference: Always when the tag is `latest` or there
/// is neither tag nor digest, IfNotPresent otherwise.
fn pull_policy(image: &str) -> &'static str {
    let (name, digest) = match image.split_once('@') {
        Some((name, _)) => (name, true),
        None => (image, false),
    };
    let last_segment = name.rsplit('/').next().unwrap_or(name);
    let tag = last_segment.split_once(':').map(|(_, tag)| tag);
    match tag {
        Some("latest") => "Always",
        None if !digest => "Always",
        _ => "IfNotPresent",
    }
}

fn container_defaults(container: &mut Map<String, Value>) {
    set_default(
        container,
        "terminationMessagePath",
        json!("/dev/termination-log"),
    );
    set_default(container, "terminationMessagePolicy", json!("File"));
    // Container.Resources is a non-pointer struct: a typed server always returns it.
    set_default(container, "resources", json!({}));
    let image = container
        .get("image")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    set_default(container, "imagePullPolicy", json!(pull_policy(&image)));
    for port in items(container, "ports") {
        set_default(port, "protocol", json!("TCP"));
    }
    for probe in ["livenessProbe", "readinessProbe", "startupProbe"] {
        if let Some(probe) = child(container, probe) {
            set_default(probe, "timeoutSeconds", json!(1));
            set_default(probe, "periodSeconds", json!(10));
            set_default(probe, "successThreshold", json!(1));
            set_default(probe, "failureThreshold", json!(3));
            if let Some(http) = child(probe, "httpGet") {
                set_default(http, "scheme", json!("HTTP"));
            }
        }
    }
    for env in items(container, "env") {
        if let Some(field_ref) = child(env, "valueFrom").and_then(|v| child(v, "fieldRef")) {
            set_default(field_ref, "apiVersion", json!("v1"));
        }
    }
}

fn service_spec(spec: &mut Map<String, Value>) {
    set_default(spec, "type", json!("ClusterIP"));
    set_default(spec, "sessionAffinity", json!("None"));
    let service_type = spec
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    if service_type != "ExternalName" {
        set_default(spec, "ipFamilies", json!(["IPv4"]));
        set_default(spec, "ipFamilyPolicy", json!("SingleStack"));
        set_default(spec, "internalTrafficPolicy", json!("Cluster"));
    }
    if service_type == "NodePort" || service_type == "LoadBalancer" {
        set_default(spec, "externalTrafficPolicy", json!("Cluster"));
    }
    if service_type == "LoadBalancer" {
        set_default(spec, "allocateLoadBalancerNodePorts", json!(true));
    }
    for port in items(spec, "ports") {
        set_default(port, "protocol", json!("TCP"));
        if let Some(number) = port.get("port").cloned() {
            set_default(port, "targetPort", number);
        }
    }
}

fn hpa_spec(spec: &mut Map<String, Value>) {
    set_default(spec, "minReplicas", json!(1));
    let no_metrics = spec
        .get("metrics")
        .and_then(Value::as_array)
        .is_none_or(Vec::is_empty);
    if no_metrics {
        spec.insert(
            "metrics".into(),
            json!([{"type": "Resource", "resource": {"name": "cpu",
                "target": {"type": "Utilization", "averageUtilization": 80}}}]),
        );
    }
    if let Some(behavior) = child(spec, "behavior") {
        if let Some(up) = ensure(behavior, "scaleUp") {
            set_default(up, "stabilizationWindowSeconds", json!(0));
            set_default(up, "selectPolicy", json!("Max"));
            set_default(
                up,
                "policies",
                json!([{"type": "Pods", "value": 4, "periodSeconds": 15},
                       {"type": "Percent", "value": 100, "periodSeconds": 15}]),
            );
        }
        if let Some(down) = ensure(behavior, "scaleDown") {
            set_default(down, "selectPolicy", json!("Max"));
            set_default(
                down,
                "policies",
                json!([{"type": "Percent", "value": 100, "periodSeconds": 15}]),
            );
        }
    }
}

/// `SetDefaults_MatchResources` and `SetDefaults_Rule` (admissionregistration/v1).
fn match_resources(resources: &mut Map<String, Value>) {
    set_default(resources, "matchPolicy", json!("Equivalent"));
    set_default(resources, "namespaceSelector", json!({}));
    set_default(resources, "objectSelector", json!({}));
    for list in ["resourceRules", "excludeResourceRules"] {
        for rule in items(resources, list) {
            set_default(rule, "scope", json!("*"));
        }
    }
}

fn network_policy_spec(spec: &mut Map<String, Value>) {
    let has_egress = spec.get("egress").is_some_and(|e| !e.is_null());
    let no_types = spec
        .get("policyTypes")
        .and_then(Value::as_array)
        .is_none_or(Vec::is_empty);
    if no_types {
        let types = if has_egress {
            json!(["Ingress", "Egress"])
        } else {
            json!(["Ingress"])
        };
        spec.insert("policyTypes".into(), types);
    }
    for direction in ["ingress", "egress"] {
        for rule in items(spec, direction) {
            for port in items(rule, "ports") {
                set_default(port, "protocol", json!("TCP"));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn defaulted(mut obj: Value) -> Value {
        apply_defaults(&mut obj);
        obj
    }

    #[test]
    fn deployment_defaults() {
        let got = defaulted(json!({
            "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
            "spec": {"template": {"spec": {
                "containers": [{"name": "a", "image": "registry:5000/ml/a",
                    "ports": [{"containerPort": 80}],
                    "readinessProbe": {"httpGet": {"path": "/", "port": 80}}}],
                "volumes": [{"name": "cache", "emptyDir": {}},
                            {"name": "cfg", "configMap": {"name": "c"}}]}}}
        }));
        let want = json!({
            "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
            "spec": {
                "replicas": 1, "revisionHistoryLimit": 10, "progressDeadlineSeconds": 600,
                "strategy": {"type": "RollingUpdate",
                    "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}},
                "template": {"spec": {
                    "containers": [{"name": "a", "image": "registry:5000/ml/a",
                        "ports": [{"containerPort": 80, "protocol": "TCP"}],
                        "readinessProbe": {"httpGet": {"path": "/", "port": 80, "scheme": "HTTP"},
                            "timeoutSeconds": 1, "periodSeconds": 10,
                            "successThreshold": 1, "failureThreshold": 3},
                        "terminationMessagePath": "/dev/termination-log",
                        "terminationMessagePolicy": "File", "resources": {},
                        "imagePullPolicy": "Always"}],
                    "volumes": [{"name": "cache", "emptyDir": {}},
                                {"name": "cfg", "configMap": {"name": "c", "defaultMode": 420}}],
                    "restartPolicy": "Always", "terminationGracePeriodSeconds": 30,
                    "dnsPolicy": "ClusterFirst", "schedulerName": "default-scheduler",
                    "securityContext": {}}}
            }
        });
        assert_eq!(got, want);
    }

    #[test]
    fn image_pull_policy_table() {
        let cases = [
            ("nginx", "Always"),
            ("nginx:latest", "Always"),
            ("nginx:1.27", "IfNotPresent"),
            ("registry:5000/nginx", "Always"),
            ("registry:5000/nginx:2", "IfNotPresent"),
            ("nginx@sha256:abc", "IfNotPresent"),
        ];
        for (image, want) in cases {
            assert_eq!(pull_policy(image), want, "{image}");
        }
    }

    #[test]
    fn explicit_values_are_kept() {
        let obj = json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "spec": {"replicas": 0, "strategy": {"type": "Recreate"}}});
        let got = defaulted(obj);
        assert_eq!(got["spec"]["replicas"], json!(0));
        assert_eq!(got["spec"]["strategy"], json!({"type": "Recreate"}));
    }

    #[test]
    fn service_hpa_network_policy_secret_defaults() {
        let cases = [
            (
                json!({"apiVersion": "v1", "kind": "Service",
                       "spec": {"ports": [{"port": 80}, {"port": 81, "targetPort": "http"}]}}),
                json!({"apiVersion": "v1", "kind": "Service", "spec": {
                    "ports": [{"port": 80, "protocol": "TCP", "targetPort": 80},
                              {"port": 81, "targetPort": "http", "protocol": "TCP"}],
                    "type": "ClusterIP", "sessionAffinity": "None", "ipFamilies": ["IPv4"],
                    "ipFamilyPolicy": "SingleStack", "internalTrafficPolicy": "Cluster"}}),
            ),
            (
                json!({"apiVersion": "v1", "kind": "Service",
                       "spec": {"type": "ExternalName", "externalName": "x.example"}}),
                json!({"apiVersion": "v1", "kind": "Service", "spec": {"type": "ExternalName",
                    "externalName": "x.example", "sessionAffinity": "None"}}),
            ),
            (
                json!({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
                       "spec": {"maxReplicas": 4, "behavior": {"scaleDown": {"stabilizationWindowSeconds": 60}}}}),
                json!({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "spec": {
                    "maxReplicas": 4,
                    "behavior": {
                        "scaleDown": {"stabilizationWindowSeconds": 60, "selectPolicy": "Max",
                            "policies": [{"type": "Percent", "value": 100, "periodSeconds": 15}]},
                        "scaleUp": {"stabilizationWindowSeconds": 0, "selectPolicy": "Max",
                            "policies": [{"type": "Pods", "value": 4, "periodSeconds": 15},
                                         {"type": "Percent", "value": 100, "periodSeconds": 15}]}},
                    "minReplicas": 1,
                    "metrics": [{"type": "Resource", "resource": {"name": "cpu",
                        "target": {"type": "Utilization", "averageUtilization": 80}}}]}}),
            ),
            (
                json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                       "spec": {"egress": [{"ports": [{"port": 53}]}]}}),
                json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                       "spec": {"egress": [{"ports": [{"port": 53, "protocol": "TCP"}]}],
                                "policyTypes": ["Ingress", "Egress"]}}),
            ),
            (
                json!({"apiVersion": "admissionregistration.k8s.io/v1",
                       "kind": "ValidatingAdmissionPolicy", "spec": {"matchConstraints": {
                           "resourceRules": [{"apiGroups": ["apps"], "resources": ["deployments"]}]}}}),
                json!({"apiVersion": "admissionregistration.k8s.io/v1",
                       "kind": "ValidatingAdmissionPolicy", "spec": {"matchConstraints": {
                           "resourceRules": [{"apiGroups": ["apps"], "resources": ["deployments"],
                               "scope": "*"}],
                           "matchPolicy": "Equivalent", "namespaceSelector": {}, "objectSelector": {}},
                           "failurePolicy": "Fail"}}),
            ),
            (
                json!({"apiVersion": "admissionregistration.k8s.io/v1",
                       "kind": "ValidatingAdmissionPolicyBinding",
                       "spec": {"policyName": "p", "paramRef": {"name": "x"}}}),
                json!({"apiVersion": "admissionregistration.k8s.io/v1",
                       "kind": "ValidatingAdmissionPolicyBinding",
                       "spec": {"policyName": "p",
                                "paramRef": {"name": "x", "parameterNotFoundAction": "Deny"}}}),
            ),
            (
                json!({"apiVersion": "v1", "kind": "Secret"}),
                json!({"apiVersion": "v1", "kind": "Secret", "type": "Opaque"}),
            ),
            (
                json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute", "spec": {}}),
                json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute", "spec": {}}),
            ),
        ];
        for (input, want) in cases {
            assert_eq!(defaulted(input.clone()), want, "{input}");
        }
    }

    #[test]
    fn defaulting_twice_equals_defaulting_once() {
        let objects = [
            json!({"apiVersion": "apps/v1", "kind": "Deployment",
                   "spec": {"template": {"spec": {"containers": [{"name": "a", "image": "a"}]}}}}),
            json!({"apiVersion": "v1", "kind": "Service", "spec": {"ports": [{"port": 80}]}}),
            json!({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
                   "spec": {"behavior": {}}}),
            json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "spec": {}}),
        ];
        for obj in objects {
            let once = defaulted(obj.clone());
            assert_ne!(once, obj, "defaulting changes {obj}");
            assert_eq!(defaulted(once.clone()), once, "{obj}");
        }
    }
}
