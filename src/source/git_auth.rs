//! Credentials of a Git remote: what the configuration names ([`GitAuth`], `--git-ca-file`),
//! the files read again at every fetch ([`Credentials::load`]), and the libgit2 callbacks
//! that hand them over and check the server (SSH host key against known_hosts with the
//! URL's port, HTTPS certificate against the private CA).
//!
//! ```text
//! GitConfig { auth, ca_file } ──load (each fetch)──▶ Credentials { secret values, KnownHosts, CaBundle }
//!                                                      └─▶ Callbacks: credentials, certificate_check
//!                                                            └─▶ Rejection (why the server or we said no)
//! ```
//!
//! A rotated Kubernetes Secret (mounted files are swapped atomically) is therefore used at
//! the next fetch without a restart; a file that cannot be read fails that fetch with an
//! error naming the file, and the daemon keeps the last good revision. Credential values
//! are [`Secret`]s: their `Debug` form never shows them, and no error carries them.

use std::cell::RefCell;
use std::fmt;
use std::path::{Path, PathBuf};

use git2::{CertificateCheckStatus, Cred, CredentialType, RemoteCallbacks};

use super::ca::{CaBundle, CaError};
use super::git::GitError;
use super::known_hosts::{self, KnownHosts};

/// A credential value read from the environment or a mounted Secret file.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value; surrounding whitespace (a trailing newline of a file) is dropped.
    pub fn new(value: &str) -> Self {
        Secret(value.trim().to_string())
    }

    /// The value, for the one place that hands it to libgit2 or HMAC.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Where a password or token comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    /// A value fixed at start-up (an environment variable).
    Value(Secret),
    /// A file read again at every fetch (a mounted Secret that may be rotated).
    File(PathBuf),
}

/// How to authenticate to the remote.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum GitAuth {
    /// No credentials (public remotes, local repositories).
    #[default]
    Anonymous,
    /// HTTPS basic auth; a token is a password with any user name
    /// (`x-access-token` by default, as GitHub expects).
    Basic {
        username: String,
        password: SecretSource,
    },
    /// An SSH private key; the server's host key must be in `known_hosts`.
    Ssh {
        username: String,
        private_key: PathBuf,
        known_hosts: PathBuf,
    },
}

/// What a credential file is, for error messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialKind {
    Password,
    PrivateKey,
    KnownHosts,
    CaFile,
}

impl fmt::Display for CredentialKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CredentialKind::Password => "git token or password file",
            CredentialKind::PrivateKey => "SSH private key file",
            CredentialKind::KnownHosts => "known_hosts file",
            CredentialKind::CaFile => "CA file",
        })
    }
}

/// The credentials of one fetch, read from their files just before it.
pub(super) struct Credentials {
    basic: Option<(String, Secret)>,
    ssh: Option<(String, Secret)>,
    known_hosts: Option<(PathBuf, KnownHosts)>,
    ca: Option<CaBundle>,
}

fn read(kind: CredentialKind, path: &Path) -> Result<String, GitError> {
    std::fs::read_to_string(path).map_err(|source| GitError::CredentialFile {
        kind,
        path: path.to_path_buf(),
        source,
    })
}

impl Credentials {
    /// Reads every credential file the configuration names.
    pub(super) fn load(auth: &GitAuth, ca_file: Option<&Path>) -> Result<Self, GitError> {
        let mut credentials = Credentials {
            basic: None,
            ssh: None,
            known_hosts: None,
            ca: None,
        };
        match auth {
            GitAuth::Anonymous => {}
            GitAuth::Basic { username, password } => {
                let password = match password {
                    SecretSource::Value(value) => value.clone(),
                    SecretSource::File(path) => Secret::new(&read(CredentialKind::Password, path)?),
                };
                credentials.basic = Some((username.clone(), password));
            }
            GitAuth::Ssh {
                username,
                private_key,
                known_hosts,
            } => {
                let text = read(CredentialKind::KnownHosts, known_hosts)?;
                credentials.known_hosts = Some((known_hosts.clone(), KnownHosts::parse(&text)));
                let key = read(CredentialKind::PrivateKey, private_key)?;
                // Not trimmed: the key is handed to libssh2 exactly as written.
                credentials.ssh = Some((username.clone(), Secret(key)));
            }
        }
        if let Some(path) = ca_file {
            let pem = read(CredentialKind::CaFile, path)?;
            let bundle = CaBundle::parse(pem.as_bytes()).map_err(|reason| GitError::CaFile {
                path: path.to_path_buf(),
                reason,
            })?;
            credentials.ca = Some(bundle);
        }
        Ok(credentials)
    }
}

/// Why the last fetch was refused, as the callbacks saw it.
#[derive(Debug, Default)]
pub(super) struct Rejection {
    /// The host key check refused the server.
    pub host_key: Option<GitError>,
    /// The private CA did not verify the server's certificate (the system store may still
    /// have), kept for the message if the connection fails.
    pub certificate: Option<CaError>,
    /// Credentials were asked for again after being given: the server refused them.
    pub credentials_refused: bool,
}

/// The callbacks of one fetch over `credentials`, to the remote at `url`.
pub(super) fn callbacks<'a>(
    credentials: &'a Credentials,
    url: &str,
    rejection: &'a RefCell<Rejection>,
) -> RemoteCallbacks<'a> {
    let port = ssh_port(url);
    let mut callbacks = RemoteCallbacks::new();
    let mut answered = CredentialType::empty();
    callbacks.credentials(move |_url, username_from_url, allowed| {
        let (kind, cred) = give_credentials(credentials, username_from_url, allowed)?;
        // libgit2 asks again after a rejected credential: answering the same kind again
        // would loop. A user name first and a key next (ssh URLs without a user) is fine.
        if answered.contains(kind) {
            rejection.borrow_mut().credentials_refused = true;
            return Err(git2::Error::from_str("credentials rejected"));
        }
        answered.insert(kind);
        Ok(cred)
    });
    callbacks.certificate_check(move |cert, host| {
        if let Some(hostkey) = cert.as_hostkey() {
            let Some((path, known)) = &credentials.known_hosts else {
                return Ok(CertificateCheckStatus::CertificatePassthrough);
            };
            let name = known_hosts::host_name(host, port);
            let key = hostkey.hostkey().unwrap_or_default();
            return match known.check(&name, key) {
                Ok(()) => Ok(CertificateCheckStatus::CertificateOk),
                Err(reason) => {
                    rejection.borrow_mut().host_key = Some(GitError::HostKey {
                        host: name,
                        known_hosts: path.clone(),
                        reason,
                    });
                    Err(git2::Error::from_str("untrusted host key"))
                }
            };
        }
        if let (Some(x509), Some(ca)) = (cert.as_x509(), &credentials.ca) {
            match ca.verify(x509.data(), host) {
                Ok(()) => return Ok(CertificateCheckStatus::CertificateOk),
                Err(reason) => rejection.borrow_mut().certificate = Some(reason),
            }
        }
        Ok(CertificateCheckStatus::CertificatePassthrough)
    });
    callbacks
}

/// The credential to answer a request allowing `allowed`, and its kind.
fn give_credentials(
    credentials: &Credentials,
    username_from_url: Option<&str>,
    allowed: CredentialType,
) -> Result<(CredentialType, Cred), git2::Error> {
    if let Some((username, password)) = &credentials.basic
        && allowed.contains(CredentialType::USER_PASS_PLAINTEXT)
    {
        let cred = Cred::userpass_plaintext(username, password.expose())?;
        return Ok((CredentialType::USER_PASS_PLAINTEXT, cred));
    }
    if let Some((username, key)) = &credentials.ssh {
        let user = username_from_url.unwrap_or(username);
        if allowed.contains(CredentialType::SSH_KEY) {
            let cred = Cred::ssh_key_from_memory(user, None, key.expose(), None)?;
            return Ok((CredentialType::SSH_KEY, cred));
        }
        if allowed.contains(CredentialType::USERNAME) {
            return Ok((CredentialType::USERNAME, Cred::username(user)?));
        }
    }
    if allowed.contains(CredentialType::DEFAULT) {
        return Ok((CredentialType::DEFAULT, Cred::default()?));
    }
    Err(git2::Error::from_str("no credentials configured"))
}

/// The port of an SSH remote: the one of `ssh://host:port/...`, else 22 (also for the
/// scp-like `user@host:path`, which has no port). libgit2 reports the host of a host key
/// without its port, so the port comes from the URL.
pub fn ssh_port(url: &str) -> u16 {
    let Some((scheme, rest)) = url.split_once("://") else {
        return 22;
    };
    if !scheme.contains("ssh") {
        return 22;
    }
    let authority = rest.split('/').next().unwrap_or_default();
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let port = match host_port.rsplit_once("]:") {
        Some((_, port)) => Some(port),
        None if host_port.starts_with('[') => None,
        None => host_port.rsplit_once(':').map(|(_, port)| port),
    };
    port.and_then(|p| p.parse().ok()).unwrap_or(22)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ssh_port_comes_from_the_url() {
        assert_eq!(ssh_port("ssh://git@127.0.0.1:12222/srv/repo.git"), 12222);
        assert_eq!(ssh_port("ssh://git@[::1]:2222/repo"), 2222);
        assert_eq!(ssh_port("ssh://[::1]/repo"), 22);
        assert_eq!(ssh_port("ssh://git@github.com/org/repo.git"), 22);
        assert_eq!(ssh_port("git+ssh://host:2200/repo"), 2200);
        assert_eq!(ssh_port("git@github.com:org/repo.git"), 22);
        assert_eq!(ssh_port("ssh://host:notaport/repo"), 22);
    }

    #[test]
    fn password_files_are_read_at_each_load_and_never_shown() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("token");
        std::fs::write(&file, "first\n").unwrap();
        let auth = GitAuth::Basic {
            username: "bot".into(),
            password: SecretSource::File(file.clone()),
        };
        let loaded = Credentials::load(&auth, None).unwrap();
        assert_eq!(loaded.basic.as_ref().unwrap().1.expose(), "first");
        std::fs::write(&file, "second").unwrap();
        let loaded = Credentials::load(&auth, None).unwrap();
        assert_eq!(loaded.basic.as_ref().unwrap().1.expose(), "second");
        assert!(!format!("{:?}", loaded.basic).contains("second"));

        std::fs::remove_file(&file).unwrap();
        let Err(error) = Credentials::load(&auth, None) else {
            panic!("a missing token file must fail the load")
        };
        assert!(
            matches!(&error, GitError::CredentialFile { kind: CredentialKind::Password, path, .. } if path == &file),
            "{error}"
        );
        assert!(
            error.to_string().contains("token or password file"),
            "{error}"
        );
    }

    #[test]
    fn a_ca_file_without_certificates_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("ca.crt");
        std::fs::write(&file, "not a certificate").unwrap();
        let Err(error) = Credentials::load(&GitAuth::Anonymous, Some(&file)) else {
            panic!("an empty CA file must fail the load")
        };
        assert!(
            matches!(&error, GitError::CaFile { path, .. } if path == &file),
            "{error}"
        );
    }
}
