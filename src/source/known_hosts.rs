//! OpenSSH `known_hosts` files: the trusted host keys of SSH remotes, checked the way
//! OpenSSH checks them.
//!
//! ```text
//! remote ssh://git@host:2222/repo ──▶ host name "[host]:2222" (plain "host" for port 22)
//! server's raw host key ──▶ KnownHosts::check(name, key)
//!     lines whose host field matches the name:
//!         plain patterns   host,[host]:2222,*.example.com,!bad.example.com
//!         hashed           |1|base64(salt)|base64(HMAC-SHA1(salt, name))
//!     @revoked line with this key        ──▶ refused (Revoked)
//!     plain line with this key           ──▶ trusted
//!     plain line, same type, other key   ──▶ refused (Changed)
//!     plain lines of other key types     ──▶ refused (NoKeyOfType)
//!     only @cert-authority lines         ──▶ refused (CertAuthorityOnly: libssh2 has no
//!                                            host certificates)
//!     nothing                            ──▶ refused (Unknown)
//! ```
//!
//! The file is parsed on every fetch, so a rotated known_hosts Secret applies at once.

use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use hmac::{Hmac, Mac};
use sha1::Sha1;
use sha2::{Digest, Sha256};

/// What a line says about its key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Marker {
    /// A trusted host key.
    Trusted,
    /// `@revoked`: the key must never be accepted.
    Revoked,
    /// `@cert-authority`: the key signs host certificates.
    CertAuthority,
}

/// The host field of a line.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Hosts {
    /// `|1|salt|hash`, as `ssh-keygen -H` and `ssh-keyscan -H` write.
    Hashed { salt: Vec<u8>, hash: Vec<u8> },
    /// Comma-separated patterns (`*`, `?`, and `!` for negation), lower-cased.
    Patterns(Vec<String>),
}

/// One line of a known_hosts file.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    marker: Marker,
    hosts: Hosts,
    key_type: String,
    key: Vec<u8>,
}

/// The trusted host keys of a known_hosts file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KnownHosts {
    entries: Vec<Entry>,
}

/// Why a host key is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HostKeyError {
    /// No line names the host.
    #[error(
        "the host is not in known_hosts (add its key with `ssh-keyscan -p PORT HOST >> known_hosts`)"
    )]
    Unknown,
    /// A line names the host with another key of the same type.
    #[error(
        "the {key_type} host key has changed: the server presented {fingerprint}, which is not the key in known_hosts; this is a man-in-the-middle attack or the server's key was replaced: check it, then update known_hosts"
    )]
    Changed {
        key_type: String,
        fingerprint: String,
    },
    /// Lines name the host, but none with a key of the type the server presented.
    #[error(
        "the server presented a {offered} key ({fingerprint}) but known_hosts has only {known} keys for the host (add it with `ssh-keyscan -t {offered}`)"
    )]
    NoKeyOfType {
        offered: String,
        known: String,
        fingerprint: String,
    },
    /// The key is marked `@revoked` for the host.
    #[error("the host key {fingerprint} is marked @revoked in known_hosts")]
    Revoked { fingerprint: String },
    /// Only `@cert-authority` lines name the host: host certificates cannot be checked.
    #[error(
        "known_hosts trusts only a @cert-authority for the host, and host certificates are not supported: add the host's own key (ssh-keyscan)"
    )]
    CertAuthorityOnly,
}

impl HostKeyError {
    /// The label of this error in metrics.
    pub fn metric_label(&self) -> &'static str {
        match self {
            HostKeyError::Unknown => "git_host_unknown",
            HostKeyError::Changed { .. } => "git_host_key_changed",
            HostKeyError::NoKeyOfType { .. } => "git_host_key_type",
            HostKeyError::Revoked { .. } => "git_host_key_revoked",
            HostKeyError::CertAuthorityOnly => "git_host_cert_authority",
        }
    }
}

impl KnownHosts {
    /// Reads and parses a file.
    pub fn read(path: &Path) -> std::io::Result<Self> {
        Ok(Self::parse(&std::fs::read_to_string(path)?))
    }

    /// Parses the text of a known_hosts file; comments and malformed lines are skipped.
    pub fn parse(text: &str) -> Self {
        let entries = text.lines().filter_map(parse_line).collect();
        KnownHosts { entries }
    }

    /// Checks the raw host key (the SSH wire form the transport reports) of the host
    /// `name`, written as known_hosts writes it (see [`host_name`]).
    pub fn check(&self, name: &str, key: &[u8]) -> Result<(), HostKeyError> {
        let name = name.to_ascii_lowercase();
        let fingerprint = || fingerprint(key);
        let matching: Vec<&Entry> = self
            .entries
            .iter()
            .filter(|e| e.hosts.matches(&name))
            .collect();
        if matching
            .iter()
            .any(|e| e.marker == Marker::Revoked && e.key == key)
        {
            return Err(HostKeyError::Revoked {
                fingerprint: fingerprint(),
            });
        }
        let trusted: Vec<&&Entry> = matching
            .iter()
            .filter(|e| e.marker == Marker::Trusted)
            .collect();
        if trusted.iter().any(|e| e.key == key) {
            return Ok(());
        }
        let offered = key_type(key).unwrap_or("unknown").to_string();
        if trusted.iter().any(|e| e.key_type == offered) {
            return Err(HostKeyError::Changed {
                key_type: offered,
                fingerprint: fingerprint(),
            });
        }
        if !trusted.is_empty() {
            let mut known: Vec<&str> = trusted.iter().map(|e| e.key_type.as_str()).collect();
            known.sort_unstable();
            known.dedup();
            return Err(HostKeyError::NoKeyOfType {
                offered,
                known: known.join(", "),
                fingerprint: fingerprint(),
            });
        }
        if matching.iter().any(|e| e.marker == Marker::CertAuthority) {
            return Err(HostKeyError::CertAuthorityOnly);
        }
        Err(HostKeyError::Unknown)
    }
}

/// The name under which known_hosts lists a host: `host` for port 22, `[host]:port` for
/// any other port (what `ssh-keyscan -p` writes and OpenSSH looks up).
pub fn host_name(host: &str, port: u16) -> String {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if port == 22 {
        host.to_string()
    } else {
        format!("[{host}]:{port}")
    }
}

/// The OpenSSH fingerprint of a raw key: `SHA256:` and the unpadded base64 of its sha256.
pub fn fingerprint(key: &[u8]) -> String {
    format!("SHA256:{}", STANDARD_NO_PAD.encode(Sha256::digest(key)))
}

/// The key type named at the start of an SSH wire-format key (`ssh-ed25519`, ...).
fn key_type(key: &[u8]) -> Option<&str> {
    let length = u32::from_be_bytes(key.get(..4)?.try_into().ok()?) as usize;
    std::str::from_utf8(key.get(4..4 + length)?).ok()
}

impl Hosts {
    fn matches(&self, name: &str) -> bool {
        match self {
            Hosts::Hashed { salt, hash } => {
                // HMAC accepts a key of any length, so `new_from_slice` cannot fail.
                let Ok(mut mac) = Hmac::<Sha1>::new_from_slice(salt) else {
                    return false;
                };
                mac.update(name.as_bytes());
                mac.verify_slice(hash).is_ok()
            }
            Hosts::Patterns(patterns) => {
                let mut matched = false;
                for pattern in patterns {
                    match pattern.strip_prefix('!') {
                        Some(negated) if glob(negated.as_bytes(), name.as_bytes()) => {
                            return false;
                        }
                        Some(_) => {}
                        None => matched |= glob(pattern.as_bytes(), name.as_bytes()),
                    }
                }
                matched
            }
        }
    }
}

/// OpenSSH's host patterns: `*` matches any run of characters, `?` any one.
fn glob(pattern: &[u8], name: &[u8]) -> bool {
    match pattern.split_first() {
        None => name.is_empty(),
        Some((b'*', rest)) => (0..=name.len()).any(|skip| glob(rest, &name[skip..])),
        Some((b'?', rest)) => !name.is_empty() && glob(rest, &name[1..]),
        Some((c, rest)) => name.first() == Some(c) && glob(rest, &name[1..]),
    }
}

fn parse_line(line: &str) -> Option<Entry> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let mut fields = line.split_whitespace().peekable();
    let marker = match fields.peek().copied() {
        Some("@revoked") => Marker::Revoked,
        Some("@cert-authority") => Marker::CertAuthority,
        Some(other) if other.starts_with('@') => return None,
        _ => Marker::Trusted,
    };
    if marker != Marker::Trusted {
        fields.next();
    }
    let hosts = parse_hosts(fields.next()?)?;
    let key_type = fields.next()?.to_string();
    let key = STANDARD.decode(fields.next()?).ok()?;
    Some(Entry {
        marker,
        hosts,
        key_type,
        key,
    })
}

fn parse_hosts(field: &str) -> Option<Hosts> {
    if let Some(hashed) = field.strip_prefix("|1|") {
        let (salt, hash) = hashed.split_once('|')?;
        return Some(Hosts::Hashed {
            salt: STANDARD.decode(salt).ok()?,
            hash: STANDARD.decode(hash).ok()?,
        });
    }
    if field.starts_with('|') {
        return None;
    }
    let patterns: Vec<String> = field
        .split(',')
        .filter(|p| !p.is_empty())
        .map(str::to_ascii_lowercase)
        .collect();
    (!patterns.is_empty()).then_some(Hosts::Patterns(patterns))
}

#[cfg(test)]
#[path = "known_hosts_tests.rs"]
mod tests;
