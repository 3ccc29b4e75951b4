use super::*;

/// `kubectl create namespace demo` (kubectl 1.33), as printed by `-v=9`.
const KUBECTL_NAMESPACE: &[u8] = b"k8s\x00\x0a\x0f\x0a\x02v1\x12\x09Namespace\x12\x1c\x0a\x14\x0a\x04demo\x12\x00\x1a\x00\x22\x00\x2a\x00\x32\x00\x38\x00\x42\x00\x12\x00\x1a\x02\x0a\x00\x1a\x00\x22\x00";

/// `kubectl create configmap cfg --from-literal=a=b -n default`.
const KUBECTL_CONFIGMAP: &[u8] = b"k8s\x00\x0a\x0f\x0a\x02v1\x12\x09ConfigMap\x12\x24\x0a\x1a\x0a\x03cfg\x12\x00\x1a\x07default\x22\x00\x2a\x00\x32\x00\x38\x00\x42\x00\x12\x06\x0a\x01a\x12\x01b\x1a\x00\x22\x00";

/// `kubectl create secret generic sec --from-literal=a=b -n default`.
const KUBECTL_SECRET: &[u8] = b"k8s\x00\x0a\x0c\x0a\x02v1\x12\x06Secret\x12\x26\x0a\x1a\x0a\x03sec\x12\x00\x1a\x07default\x22\x00\x2a\x00\x32\x00\x38\x00\x42\x00\x12\x06\x0a\x01a\x12\x01b\x1a\x00\x1a\x00\x22\x00";

/// `kubectl create serviceaccount bot -n default`.
const KUBECTL_SERVICEACCOUNT: &[u8] = b"k8s\x00\x0a\x14\x0a\x02v1\x12\x0eServiceAccount\x12\x1c\x0a\x1a\x0a\x03bot\x12\x00\x1a\x07default\x22\x00\x2a\x00\x32\x00\x38\x00\x42\x00\x1a\x00\x22\x00";

/// A minimal protobuf encoder for building test messages.
#[derive(Default)]
struct Enc(Vec<u8>);

impl Enc {
    fn varint(mut self, mut v: u64) -> Self {
        loop {
            let byte = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                self.0.push(byte);
                return self;
            }
            self.0.push(byte | 0x80);
        }
    }

    fn key(self, field: u64, wire: u64) -> Self {
        self.varint(field << 3 | wire)
    }

    fn bytes(self, field: u64, b: &[u8]) -> Self {
        let mut e = self.key(field, 2).varint(b.len() as u64);
        e.0.extend_from_slice(b);
        e
    }

    fn str(self, field: u64, s: &str) -> Self {
        self.bytes(field, s.as_bytes())
    }

    fn msg(self, field: u64, m: Enc) -> Self {
        self.bytes(field, &m.0)
    }

    fn bool(self, field: u64, b: bool) -> Self {
        self.key(field, 0).varint(u64::from(b))
    }

    fn entry(self, field: u64, k: &str, v: &[u8]) -> Self {
        self.msg(field, Enc::default().str(1, k).bytes(2, v))
    }
}

fn envelope_of(api_version: &str, kind: &str, raw: Enc) -> Vec<u8> {
    let unknown = Enc::default()
        .msg(1, Enc::default().str(1, api_version).str(2, kind))
        .msg(2, raw)
        .str(3, "")
        .str(4, "");
    let mut body = MAGIC.to_vec();
    body.extend_from_slice(&unknown.0);
    body
}

fn meta(name: &str) -> Enc {
    Enc::default()
        .str(1, name)
        .str(3, "ml")
        .entry(11, "app", b"llama")
        .entry(12, "note", b"hi")
        .str(5, "ignored-uid")
}

#[test]
fn media_type_is_recognised_with_parameters() {
    assert!(is_protobuf("application/vnd.kubernetes.protobuf"));
    assert!(is_protobuf(
        "application/vnd.kubernetes.protobuf; charset=x"
    ));
    assert!(!is_protobuf("application/json"));
}

#[test]
fn kubectl_namespace_decodes() {
    assert_eq!(
        decode(KUBECTL_NAMESPACE),
        Ok(json!({ "apiVersion": "v1", "kind": "Namespace", "metadata": { "name": "demo" } }))
    );
}

#[test]
fn kubectl_configmap_secret_and_serviceaccount_decode() {
    assert_eq!(
        decode(KUBECTL_CONFIGMAP),
        Ok(json!({ "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": { "name": "cfg", "namespace": "default" }, "data": { "a": "b" } }))
    );
    assert_eq!(
        decode(KUBECTL_SECRET),
        Ok(json!({ "apiVersion": "v1", "kind": "Secret",
            "metadata": { "name": "sec", "namespace": "default" }, "data": { "a": "Yg==" } }))
    );
    assert_eq!(
        decode(KUBECTL_SERVICEACCOUNT),
        Ok(json!({ "apiVersion": "v1", "kind": "ServiceAccount",
            "metadata": { "name": "bot", "namespace": "default" } }))
    );
}

#[test]
fn metadata_labels_annotations_and_finalizers_are_carried() {
    let raw = Enc::default().msg(
        1,
        meta("demo")
            .str(2, "gen-")
            .str(14, "example.com/f")
            .entry(11, "tier", b"gpu")
            .msg(
                13,
                Enc::default()
                    .str(1, "Deployment")
                    .str(3, "web")
                    .str(4, "u-1")
                    .str(5, "apps/v1")
                    .bool(6, true)
                    .bool(7, false),
            ),
    );
    let got = decode(&envelope_of("v1", "Namespace", raw)).expect("decodes");
    assert_eq!(
        got["metadata"],
        json!({ "name": "demo", "generateName": "gen-", "namespace": "ml",
            "labels": { "app": "llama", "tier": "gpu" }, "annotations": { "note": "hi" },
            "ownerReferences": [{ "kind": "Deployment", "name": "web", "uid": "u-1",
                "apiVersion": "apps/v1", "controller": true, "blockOwnerDeletion": false }],
            "finalizers": ["example.com/f"] })
    );
}

#[test]
fn namespace_spec_finalizers_are_kept() {
    let raw = Enc::default()
        .msg(1, meta("demo"))
        .msg(2, Enc::default().str(1, "kubernetes"));
    let got = decode(&envelope_of("v1", "Namespace", raw)).expect("decodes");
    assert_eq!(got["spec"], json!({ "finalizers": ["kubernetes"] }));
}

#[test]
fn configmap_binary_data_is_base64_and_immutable_is_kept() {
    let raw = Enc::default()
        .msg(1, meta("cfg"))
        .entry(2, "k", b"v")
        .entry(3, "bin", &[0xff, 0x00, 0x01])
        .bool(4, true);
    let got = decode(&envelope_of("v1", "ConfigMap", raw)).expect("decodes");
    assert_eq!(got["data"], json!({ "k": "v" }));
    assert_eq!(got["binaryData"], json!({ "bin": "/wAB" }));
    assert_eq!(got["immutable"], json!(true));
}

#[test]
fn secret_fields_decode() {
    let raw = Enc::default()
        .msg(1, meta("sec"))
        .entry(2, "token", &[0xde, 0xad])
        .str(3, "kubernetes.io/tls")
        .entry(4, "plain", b"text")
        .bool(5, false);
    let got = decode(&envelope_of("v1", "Secret", raw)).expect("decodes");
    assert_eq!(got["data"], json!({ "token": "3q0=" }));
    assert_eq!(got["type"], "kubernetes.io/tls");
    assert_eq!(got["stringData"], json!({ "plain": "text" }));
    assert_eq!(got["immutable"], json!(false));
}

#[test]
fn serviceaccount_references_and_automount_decode() {
    let raw = Enc::default()
        .msg(1, meta("bot"))
        .msg(
            2,
            Enc::default()
                .str(1, "Secret")
                .str(2, "ml")
                .str(3, "bot-token")
                .str(7, ""),
        )
        .msg(3, Enc::default().str(1, "registry"))
        .bool(4, false);
    let got = decode(&envelope_of("v1", "ServiceAccount", raw)).expect("decodes");
    assert_eq!(
        got["secrets"],
        json!([{ "kind": "Secret", "namespace": "ml", "name": "bot-token" }])
    );
    assert_eq!(got["imagePullSecrets"], json!([{ "name": "registry" }]));
    assert_eq!(got["automountServiceAccountToken"], json!(false));
}

#[test]
fn other_kinds_are_refused_by_name() {
    let raw = Enc::default().msg(1, meta("web"));
    let err = decode(&envelope_of("apps/v1", "Deployment", raw)).expect_err("refused");
    assert_eq!(
        err,
        ProtoError::UnsupportedKind {
            api_version: "apps/v1".into(),
            kind: "Deployment".into()
        }
    );
    let msg = err.to_string();
    assert!(
        msg.contains("Deployment") && msg.contains("kubectl apply -f"),
        "{msg}"
    );
}

#[test]
fn malformed_bodies_are_errors() {
    let cases: Vec<(Vec<u8>, ProtoError)> = vec![
        (b"{\"kind\":\"x\"}".to_vec(), ProtoError::Magic),
        (
            b"k8s\x00\x0a\x7f".to_vec(),
            ProtoError::Truncated("runtime.Unknown"),
        ),
        (
            b"k8s\x00\x0a".to_vec(),
            ProtoError::Truncated("runtime.Unknown"),
        ),
        (
            [b"k8s\x00".as_slice(), &[0x80; 11]].concat(),
            ProtoError::Varint("runtime.Unknown"),
        ),
        (
            b"k8s\x00\x0b".to_vec(),
            ProtoError::WireType {
                message: "runtime.Unknown",
                wire: 3,
            },
        ),
        (
            b"k8s\x00\x08\x01".to_vec(),
            ProtoError::WrongType {
                message: "runtime.Unknown",
                field: 1,
            },
        ),
        (
            envelope_of(
                "v1",
                "ConfigMap",
                Enc::default().msg(1, Enc::default().bytes(1, &[0xff])),
            ),
            ProtoError::Utf8 {
                message: "ObjectMeta",
                field: 1,
            },
        ),
        (
            envelope_of(
                "v1",
                "ConfigMap",
                Enc::default().bytes(1, &[0x0a, 0x05, b'a']),
            ),
            ProtoError::Truncated("ObjectMeta"),
        ),
    ];
    for (body, want) in cases {
        assert_eq!(decode(&body), Err(want), "{body:?}");
    }
    let gzip = {
        let unknown = Enc::default()
            .msg(1, Enc::default().str(1, "v1").str(2, "ConfigMap"))
            .str(3, "gzip");
        [MAGIC.as_slice(), &unknown.0].concat()
    };
    assert_eq!(decode(&gzip), Err(ProtoError::Encoding("gzip".into())));
}

proptest::proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(tail in proptest::collection::vec(proptest::num::u8::ANY, 0..256)) {
        let _ = decode(&[MAGIC.as_slice(), &tail].concat());
    }

    #[test]
    fn mutated_kubectl_bodies_never_panic(at in 0usize..64, byte in proptest::num::u8::ANY) {
        let mut body = KUBECTL_CONFIGMAP.to_vec();
        let i = at % body.len();
        body[i] = byte;
        let _ = decode(&body);
    }
}
