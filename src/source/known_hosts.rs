//! OpenSSH `known_hosts` files: the trusted host keys of SSH remotes.
//!
//! Supported lines: `host[,host...] key-type base64-key [comment]`, with hosts written as
//! `name` or `[name]:port`. Hashed host names (`|1|...`), markers (`@revoked`,
//! `@cert-authority`) and wildcards are not supported: such lines are ignored, so a host
//! only they would trust is refused. Write plain host names in the mounted file.

use std::path::Path;

use base64::Engine;

use super::git::GitError;

/// One trusted key.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    hosts: Vec<String>,
    key: Vec<u8>,
}

/// The trusted host keys of a known_hosts file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KnownHosts {
    entries: Vec<Entry>,
}

/// Why a host key is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HostKeyError {
    /// No line names the host.
    #[error("host is not in known_hosts")]
    Unknown,
    /// Lines name the host, but with other keys.
    #[error("host key does not match known_hosts (possible man-in-the-middle)")]
    Mismatch,
}

impl KnownHosts {
    /// Reads and parses a file.
    pub fn read(path: &Path) -> Result<Self, GitError> {
        let text = std::fs::read_to_string(path).map_err(|source| GitError::CredentialFile {
            path: path.to_path_buf(),
            source,
        })?;
        Ok(Self::parse(&text))
    }

    /// Parses the text of a known_hosts file; unsupported or malformed lines are skipped.
    pub fn parse(text: &str) -> Self {
        let entries = text.lines().filter_map(parse_line).collect();
        KnownHosts { entries }
    }

    /// Checks the raw host key (as the SSH transport reports it) of `host`, which may
    /// carry a port as `host:port` or `[host]:port`.
    pub fn check(&self, host: &str, key: &[u8]) -> Result<(), HostKeyError> {
        let names = host_names(host);
        let mut known = false;
        for entry in &self.entries {
            if entry.hosts.iter().any(|h| names.contains(h)) {
                if entry.key == key {
                    return Ok(());
                }
                known = true;
            }
        }
        Err(if known {
            HostKeyError::Mismatch
        } else {
            HostKeyError::Unknown
        })
    }
}

fn parse_line(line: &str) -> Option<Entry> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') || line.starts_with('@') {
        return None;
    }
    let mut fields = line.split_whitespace();
    let hosts = fields.next()?;
    let _key_type = fields.next()?;
    let key = base64::engine::general_purpose::STANDARD
        .decode(fields.next()?)
        .ok()?;
    let hosts = hosts
        .split(',')
        .filter(|h| !h.starts_with('|') && !h.contains(['*', '?', '!']))
        .map(str::to_ascii_lowercase)
        .collect::<Vec<_>>();
    (!hosts.is_empty()).then_some(Entry { hosts, key })
}

/// The names under which known_hosts may list `host`: `name` for port 22 (or none), and
/// `[name]:port` for another port.
fn host_names(host: &str) -> Vec<String> {
    let host = host.to_ascii_lowercase();
    let (name, port) = match host.strip_prefix('[').and_then(|h| h.split_once("]:")) {
        Some((name, port)) => (name.to_string(), Some(port.to_string())),
        None => match host.rsplit_once(':') {
            Some((name, port)) if port.chars().all(|c| c.is_ascii_digit()) => {
                (name.to_string(), Some(port.to_string()))
            }
            _ => (host.clone(), None),
        },
    };
    match port.as_deref() {
        None | Some("22") => vec![name.clone(), format!("[{name}]:22")],
        Some(port) => vec![format!("[{name}]:{port}")],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY_A: &[u8] = b"key-a-bytes";
    const KEY_B: &[u8] = b"key-b-bytes";

    fn b64(key: &[u8]) -> String {
        base64::engine::general_purpose::STANDARD.encode(key)
    }

    fn file() -> KnownHosts {
        KnownHosts::parse(&format!(
            "# comment\n\
             github.com,140.82.112.3 ssh-ed25519 {a}\n\
             [git.example.com]:2222 ssh-rsa {b} ops@example\n\
             |1|hashed=|salt= ssh-ed25519 {b}\n\
             @revoked evil.example.com ssh-ed25519 {a}\n\
             broken-line\n",
            a = b64(KEY_A),
            b = b64(KEY_B)
        ))
    }

    #[test]
    fn a_listed_host_with_its_key_is_trusted() {
        assert_eq!(file().check("github.com", KEY_A), Ok(()));
        assert_eq!(file().check("GitHub.com:22", KEY_A), Ok(()));
        assert_eq!(file().check("140.82.112.3", KEY_A), Ok(()));
        assert_eq!(file().check("[git.example.com]:2222", KEY_B), Ok(()));
        assert_eq!(file().check("git.example.com:2222", KEY_B), Ok(()));
    }

    #[test]
    fn a_listed_host_with_another_key_is_a_mismatch() {
        assert_eq!(
            file().check("github.com", KEY_B),
            Err(HostKeyError::Mismatch)
        );
    }

    #[test]
    fn unlisted_hosts_ports_and_markers_are_unknown() {
        assert_eq!(
            file().check("gitlab.com", KEY_A),
            Err(HostKeyError::Unknown)
        );
        // Listed only for port 2222.
        assert_eq!(
            file().check("git.example.com", KEY_B),
            Err(HostKeyError::Unknown)
        );
        assert_eq!(
            file().check("evil.example.com", KEY_A),
            Err(HostKeyError::Unknown)
        );
        assert_eq!(
            KnownHosts::default().check("github.com", KEY_A),
            Err(HostKeyError::Unknown)
        );
    }
}
