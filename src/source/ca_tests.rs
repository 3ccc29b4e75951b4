use super::*;

#[path = "../../tests/support/git/certs.rs"]
mod certs;

/// A CA and a certificate it signed for `names`.
fn ca_and_leaf(names: &[&str]) -> (String, Vec<u8>) {
    let ca = certs::Ca::new();
    (ca.pem(), ca.leaf(names).der)
}

#[test]
fn a_certificate_signed_by_the_bundle_is_trusted_for_its_names_only() {
    let (ca, leaf) = ca_and_leaf(&["git.corp.example", "127.0.0.1"]);
    let bundle = CaBundle::parse(ca.as_bytes()).unwrap();
    assert_eq!(bundle.verify(&leaf, "git.corp.example"), Ok(()));
    assert_eq!(bundle.verify(&leaf, "127.0.0.1"), Ok(()));
    let error = bundle.verify(&leaf, "other.example").unwrap_err();
    assert!(
        matches!(&error, CaError::Untrusted { host, .. } if host == "other.example"),
        "{error}"
    );
}

#[test]
fn a_certificate_of_another_ca_is_untrusted() {
    let (ca, _) = ca_and_leaf(&["git.corp.example"]);
    let (_, foreign) = ca_and_leaf(&["git.corp.example"]);
    let bundle = CaBundle::parse(ca.as_bytes()).unwrap();
    assert!(matches!(
        bundle.verify(&foreign, "git.corp.example"),
        Err(CaError::Untrusted { .. })
    ));
}

#[test]
fn files_without_certificates_are_refused() {
    assert_eq!(CaBundle::parse(b"just text\n"), Err(CaError::Empty));
    let broken = b"-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n";
    assert!(matches!(
        CaBundle::parse(broken),
        Err(CaError::Pem(_) | CaError::Anchor(_))
    ));
}
