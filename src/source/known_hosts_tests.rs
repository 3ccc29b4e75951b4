use super::*;

/// A real ed25519 key, and the lines `ssh-keygen -H` wrote for it from
/// `[127.0.0.1]:2222 ...` and `git.example.com ...`.
const ED25519: &str = "AAAAC3NzaC1lZDI1NTE5AAAAIHawBb3i/GIi2tTaZjy24gjYmfg1zyzBYdn4XIbig4HP";
const ED25519_FINGERPRINT: &str = "SHA256:u3UvNaA/0cjoo2JG5SEbdNAFiuvKRvCLhEUg8qRearw";
const HASHED_PORT_2222: &str = "|1|saDHXXTvseDiaBxVX6t0s1OQYG0=|W+q5nL5SCNKSBJT89D4lIRkmFLI=";
const HASHED_EXAMPLE: &str = "|1|/sRX3NYT0PZUhLXP5iBrnK2wZDE=|OjSfb3If73IDK1TMYbpE6safuY4=";

fn real_key() -> Vec<u8> {
    STANDARD.decode(ED25519).unwrap()
}

/// An SSH wire-format key of `key_type` with `body` as its key material.
fn wire_key(key_type: &str, body: &[u8]) -> Vec<u8> {
    let mut key = (key_type.len() as u32).to_be_bytes().to_vec();
    key.extend_from_slice(key_type.as_bytes());
    key.extend_from_slice(&(body.len() as u32).to_be_bytes());
    key.extend_from_slice(body);
    key
}

fn line(hosts: &str, key: &[u8]) -> String {
    let key_type = key_type(key).unwrap();
    format!("{hosts} {key_type} {} comment\n", STANDARD.encode(key))
}

#[test]
fn host_names_carry_the_port_unless_it_is_22() {
    assert_eq!(host_name("github.com", 22), "github.com");
    assert_eq!(host_name("127.0.0.1", 12222), "[127.0.0.1]:12222");
    assert_eq!(host_name("[::1]", 2222), "[::1]:2222");
}

#[test]
fn plain_entries_match_the_host_with_its_port() {
    let key = real_key();
    let hosts = KnownHosts::parse(&format!(
        "# comment\n{}{}",
        line("github.com,140.82.112.3", &key),
        line("[127.0.0.1]:12222", &key)
    ));
    assert_eq!(hosts.check("github.com", &key), Ok(()));
    assert_eq!(hosts.check("GitHub.com", &key), Ok(()));
    assert_eq!(hosts.check("140.82.112.3", &key), Ok(()));
    assert_eq!(hosts.check(&host_name("127.0.0.1", 12222), &key), Ok(()));
    // Listed for port 12222 only; github.com for port 22 only.
    assert_eq!(hosts.check("127.0.0.1", &key), Err(HostKeyError::Unknown));
    assert_eq!(
        hosts.check(&host_name("github.com", 2222), &key),
        Err(HostKeyError::Unknown)
    );
}

#[test]
fn hashed_entries_written_by_ssh_keygen_match_with_and_without_a_port() {
    let key = real_key();
    let hosts = KnownHosts::parse(&format!(
        "{HASHED_PORT_2222} ssh-ed25519 {ED25519}\n{HASHED_EXAMPLE} ssh-ed25519 {ED25519}\n"
    ));
    assert_eq!(hosts.check("[127.0.0.1]:2222", &key), Ok(()));
    assert_eq!(hosts.check("git.example.com", &key), Ok(()));
    assert_eq!(hosts.check("127.0.0.1", &key), Err(HostKeyError::Unknown));
    assert_eq!(
        hosts.check("[127.0.0.1]:2223", &key),
        Err(HostKeyError::Unknown)
    );
}

#[test]
fn another_key_of_the_same_type_is_a_change_naming_the_presented_fingerprint() {
    let hosts = KnownHosts::parse(&line("[git.example.com]:2222", &real_key()));
    let other = wire_key("ssh-ed25519", &[7; 32]);
    let error = hosts.check("[git.example.com]:2222", &other).unwrap_err();
    assert_eq!(
        error,
        HostKeyError::Changed {
            key_type: "ssh-ed25519".into(),
            fingerprint: fingerprint(&other)
        }
    );
    assert!(error.to_string().contains("has changed"), "{error}");
    assert_eq!(error.metric_label(), "git_host_key_changed");
}

#[test]
fn a_key_of_a_type_known_hosts_lacks_is_not_called_a_change() {
    let hosts = KnownHosts::parse(&line("git.example.com", &real_key()));
    let rsa = wire_key("ssh-rsa", &[1; 64]);
    let error = hosts.check("git.example.com", &rsa).unwrap_err();
    assert!(
        matches!(&error, HostKeyError::NoKeyOfType { offered, known, .. }
            if offered == "ssh-rsa" && known == "ssh-ed25519"),
        "{error:?}"
    );
}

#[test]
fn the_fingerprint_is_the_one_ssh_keygen_prints() {
    assert_eq!(fingerprint(&real_key()), ED25519_FINGERPRINT);
}

#[test]
fn revoked_keys_are_refused_even_when_also_trusted() {
    let key = real_key();
    let hosts = KnownHosts::parse(&format!(
        "{}@revoked * ssh-ed25519 {ED25519}\n",
        line("git.example.com", &key)
    ));
    assert_eq!(
        hosts.check("git.example.com", &key),
        Err(HostKeyError::Revoked {
            fingerprint: ED25519_FINGERPRINT.into()
        })
    );
}

#[test]
fn cert_authority_lines_never_trust_a_plain_key_and_say_why() {
    let key = real_key();
    let hosts = KnownHosts::parse(&format!(
        "@cert-authority *.example.com ssh-ed25519 {ED25519}\n@unknown-marker git.example.com ssh-ed25519 {ED25519}\n"
    ));
    assert_eq!(
        hosts.check("git.example.com", &key),
        Err(HostKeyError::CertAuthorityOnly)
    );
    assert_eq!(hosts.check("example.org", &key), Err(HostKeyError::Unknown));
}

#[test]
fn wildcards_and_negations_follow_openssh() {
    let key = real_key();
    let hosts = KnownHosts::parse(&line("*.example.com,!evil.example.com,git?.corp", &key));
    assert_eq!(hosts.check("a.example.com", &key), Ok(()));
    assert_eq!(hosts.check("git1.corp", &key), Ok(()));
    assert_eq!(
        hosts.check("evil.example.com", &key),
        Err(HostKeyError::Unknown)
    );
    assert_eq!(hosts.check("git12.corp", &key), Err(HostKeyError::Unknown));
}

#[test]
fn malformed_lines_are_skipped_not_fatal() {
    let key = real_key();
    let hosts = KnownHosts::parse(&format!(
        "broken-line\nhost ssh-ed25519 not-base64!\n|1|bad base64|x ssh-ed25519 {ED25519}\n{}",
        line("ok.example.com", &key)
    ));
    assert_eq!(hosts.check("ok.example.com", &key), Ok(()));
    assert_eq!(
        KnownHosts::default().check("ok.example.com", &key),
        Err(HostKeyError::Unknown)
    );
}
