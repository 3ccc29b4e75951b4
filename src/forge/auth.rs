//! Credentials for the GitHub API: a token, or a GitHub App whose installation tokens are
//! fetched per repository and refreshed before they expire.
//!
//! ```text
//! Token(secret) ───────────────────────────────────────────────▶ Bearer <token>
//! App{id, key} ─JWT(RS256, 9 min)─▶ GET  /repos/O/R/installation     ─▶ installation id
//!                                   POST /app/installations/ID/access_tokens ─▶ token, expiresAt
//!                                   (cached; fetched again 5 minutes before expiresAt)
//! ```
//!
//! A [`Secret`] never shows in `Debug` or `Display`, so no log line, error or `/status`
//! can carry one. The JWT is signed with `ring` (already in the tree through rustls), from
//! a PKCS#1 (`BEGIN RSA PRIVATE KEY`, what GitHub hands out) or PKCS#8 PEM key.

use std::fmt;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use ring::rand::SystemRandom;
use ring::signature::{RSA_PKCS1_SHA256, RsaKeyPair};

use super::Error;

/// A credential: shown as `<redacted>` everywhere.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a credential, trimming surrounding whitespace (files end with a newline).
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into().trim().to_string())
    }

    /// The credential itself: only for an `Authorization` header.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// How modelship authenticates to GitHub.
#[derive(Debug, Clone)]
pub enum Credentials {
    /// A personal access token, fine-grained token or `GITHUB_TOKEN` of Actions.
    Token(Secret),
    /// A GitHub App: installation tokens per repository.
    App(AppKey),
}

impl Credentials {
    /// A token read from a file (surrounding whitespace trimmed).
    pub fn token_file(path: &Path) -> Result<Self, Error> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::Credentials {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        let secret = Secret::new(text);
        if secret.expose().is_empty() {
            return Err(Error::Credentials {
                path: path.to_path_buf(),
                reason: "the file is empty".to_string(),
            });
        }
        Ok(Credentials::Token(secret))
    }
}

/// The credentials the command line and the environment offer, before they are chosen:
/// `--github-token-file`, a token variable (`MODELSHIP_GITHUB_TOKEN` for the daemon,
/// `GITHUB_TOKEN` for `pr comment`), `--github-app-id` and `--github-app-key-file`.
#[derive(Debug, Default)]
pub struct CredentialSources<'a> {
    pub token_file: Option<&'a Path>,
    pub token_env: Option<Secret>,
    pub app_id: Option<u64>,
    pub app_key_file: Option<&'a Path>,
}

impl CredentialSources<'_> {
    /// The one credential given, `None` when none is (GitHub is then not used). A token
    /// file wins over the variable; an App and a token together, or half an App, are
    /// errors.
    pub fn resolve(&self) -> Result<Option<Credentials>, Error> {
        let token = match (self.token_file, &self.token_env) {
            (Some(path), _) => Some(Credentials::token_file(path)?),
            (None, Some(secret)) if !secret.expose().is_empty() => {
                Some(Credentials::Token(secret.clone()))
            }
            (None, _) => None,
        };
        let app = match (self.app_id, self.app_key_file) {
            (Some(id), Some(path)) => Some(Credentials::App(AppKey::from_file(id, path)?)),
            (None, None) => None,
            (Some(_), None) => {
                return Err(Error::CredentialChoice(
                    "--github-app-id needs --github-app-key-file".to_string(),
                ));
            }
            (None, Some(_)) => {
                return Err(Error::CredentialChoice(
                    "--github-app-key-file needs --github-app-id".to_string(),
                ));
            }
        };
        match (token, app) {
            (Some(_), Some(_)) => Err(Error::CredentialChoice(
                "give a token or a GitHub App, not both".to_string(),
            )),
            (token, app) => Ok(token.or(app)),
        }
    }
}

/// Why a GitHub App private key cannot be used. The text never quotes the key.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// No `-----BEGIN ...-----` line.
    #[error("no PEM block (-----BEGIN ...-----) found")]
    NoPemBlock,
    /// The PEM block is not closed by its `-----END ...-----` line (given here).
    #[error("the PEM block has no `{0}` line")]
    NoEnd(String),
    /// The body of the PEM block is not base64.
    #[error("the PEM block is not valid base64")]
    Base64,
    /// A PEM block of another kind (a certificate, an EC key...), with its label.
    #[error("expected an RSA private key, found `{0}`")]
    NotRsa(String),
    /// An RSA key that ring refuses (malformed, too small).
    #[error("not a usable RSA key: {0}")]
    Unusable(ring::error::KeyRejected),
}

impl KeyError {
    /// The label of this error in metrics.
    pub fn metric_label(&self) -> &'static str {
        "forge_credentials"
    }
}

/// A GitHub App's id and private key.
pub struct AppKey {
    pub app_id: u64,
    key: std::sync::Arc<RsaKeyPair>,
}

impl Clone for AppKey {
    fn clone(&self) -> Self {
        AppKey {
            app_id: self.app_id,
            key: self.key.clone(),
        }
    }
}

impl fmt::Debug for AppKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AppKey")
            .field("app_id", &self.app_id)
            .field("key", &"<redacted>")
            .finish()
    }
}

impl AppKey {
    /// Reads the App's PEM private key.
    pub fn from_file(app_id: u64, path: &Path) -> Result<Self, Error> {
        let pem = std::fs::read_to_string(path).map_err(|e| Error::Credentials {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        Self::from_pem(app_id, &pem).map_err(|e| Error::Credentials {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })
    }

    /// Parses a PKCS#1 or PKCS#8 PEM RSA key. The error never quotes the key.
    pub fn from_pem(app_id: u64, pem: &str) -> Result<Self, KeyError> {
        let (label, der) = pem_body(pem)?;
        let key = match label.as_str() {
            "RSA PRIVATE KEY" => RsaKeyPair::from_der(&der),
            "PRIVATE KEY" => RsaKeyPair::from_pkcs8(&der),
            _ => return Err(KeyError::NotRsa(label)),
        }
        .map_err(KeyError::Unusable)?;
        Ok(AppKey {
            app_id,
            key: std::sync::Arc::new(key),
        })
    }

    /// A JWT for the App: issued a minute ago (clock skew), valid for 9 minutes (GitHub
    /// allows 10).
    pub fn jwt(&self, now: SystemTime) -> Result<Secret, Error> {
        let now = now
            .duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO)
            .as_secs();
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"RS256","typ":"JWT"}"#);
        let claims = serde_json::json!({
            "iat": now.saturating_sub(60),
            "exp": now + 540,
            "iss": self.app_id.to_string(),
        });
        let claims = URL_SAFE_NO_PAD.encode(claims.to_string());
        let message = format!("{header}.{claims}");
        let mut signature = vec![0; self.key.public().modulus_len()];
        self.key
            .sign(
                &RSA_PKCS1_SHA256,
                &SystemRandom::new(),
                message.as_bytes(),
                &mut signature,
            )
            .map_err(|_| Error::Signing)?;
        Ok(Secret(format!(
            "{message}.{}",
            URL_SAFE_NO_PAD.encode(signature)
        )))
    }

    /// The public key (PKCS#1 `RSAPublicKey` DER), to check signatures in tests.
    pub fn public_key_der(&self) -> Vec<u8> {
        self.key.public().as_ref().to_vec()
    }
}

/// The label and decoded body of the first PEM block.
fn pem_body(pem: &str) -> Result<(String, Vec<u8>), KeyError> {
    let begin = pem
        .lines()
        .position(|l| l.starts_with("-----BEGIN "))
        .ok_or(KeyError::NoPemBlock)?;
    // `begin` indexes these same lines, and the END line found below comes after the
    // BEGIN line (they differ), so every slice here is in range.
    let lines: Vec<&str> = pem.lines().collect();
    let label = lines[begin]
        .trim()
        .trim_start_matches("-----BEGIN ")
        .trim_end_matches("-----")
        .to_string();
    let end_line = format!("-----END {label}-----");
    let end = lines[begin..]
        .iter()
        .position(|l| l.trim() == end_line)
        .ok_or(KeyError::NoEnd(end_line))?;
    let body: String = lines[begin + 1..begin + end]
        .iter()
        .map(|l| l.trim())
        .collect();
    let der = STANDARD.decode(body).map_err(|_| KeyError::Base64)?;
    Ok((label, der))
}

/// An installation token and when it stops working.
#[derive(Debug, Clone)]
pub(crate) struct InstallationToken {
    pub token: Secret,
    pub expires_at: SystemTime,
}

impl InstallationToken {
    /// Refresh this long before the token expires.
    pub const MARGIN: Duration = Duration::from_secs(300);

    /// True while the token has more than [`Self::MARGIN`] left at `now`.
    pub fn fresh(&self, now: SystemTime) -> bool {
        self.expires_at
            .duration_since(now)
            .is_ok_and(|left| left > Self::MARGIN)
    }

    /// Parses the answer of `POST /app/installations/ID/access_tokens`.
    pub fn from_response(body: &serde_json::Value) -> Option<Self> {
        let token = body.get("token")?.as_str()?;
        let expires = body.get("expires_at")?.as_str()?;
        let timestamp: jiff::Timestamp = expires.parse().ok()?;
        let seconds = u64::try_from(timestamp.as_second()).ok()?;
        Some(InstallationToken {
            token: Secret::new(token),
            expires_at: UNIX_EPOCH + Duration::from_secs(seconds),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = include_str!("../../tests/fixtures/forge/app-key.pem");

    #[test]
    fn one_credential_is_chosen_from_the_sources() {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("key.pem");
        std::fs::write(&key, KEY).unwrap();
        let token = dir.path().join("token");
        std::fs::write(&token, "ghp_from_file\n").unwrap();
        let env = || Some(Secret::new("ghp_from_env"));
        let resolve = |sources: CredentialSources| sources.resolve();
        assert!(resolve(CredentialSources::default()).unwrap().is_none());
        let Some(Credentials::Token(t)) = resolve(CredentialSources {
            token_file: Some(&token),
            token_env: env(),
            ..CredentialSources::default()
        })
        .unwrap() else {
            panic!("a token");
        };
        assert_eq!(t.expose(), "ghp_from_file");
        let app = resolve(CredentialSources {
            app_id: Some(7),
            app_key_file: Some(&key),
            ..CredentialSources::default()
        });
        assert!(matches!(app, Ok(Some(Credentials::App(k))) if k.app_id == 7));
        let both = resolve(CredentialSources {
            token_env: env(),
            app_id: Some(7),
            app_key_file: Some(&key),
            ..CredentialSources::default()
        });
        assert!(both.unwrap_err().to_string().contains("not both"));
        let half = resolve(CredentialSources {
            app_id: Some(7),
            ..CredentialSources::default()
        });
        assert!(
            half.unwrap_err()
                .to_string()
                .contains("needs --github-app-key-file")
        );
        let missing = resolve(CredentialSources {
            token_file: Some(&dir.path().join("nope")),
            ..CredentialSources::default()
        });
        assert!(missing.unwrap_err().to_string().contains("nope"));
    }

    #[test]
    fn secrets_never_show_in_debug() {
        let secret = Secret::new("ghp_topsecret\n");
        assert_eq!(secret.expose(), "ghp_topsecret");
        let credentials = Credentials::Token(secret);
        assert!(!format!("{credentials:?}").contains("topsecret"));
        let app = AppKey::from_pem(42, KEY).unwrap();
        let shown = format!("{:?}", Credentials::App(app));
        assert!(
            shown.contains("42") && shown.contains("<redacted>"),
            "{shown}"
        );
    }

    #[test]
    fn the_jwt_is_rs256_signed_by_the_app_key_and_names_the_app() {
        use ring::signature::{RSA_PKCS1_2048_8192_SHA256, UnparsedPublicKey};
        let app = AppKey::from_pem(42, KEY).unwrap();
        let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let jwt = app.jwt(now).unwrap();
        let parts: Vec<&str> = jwt.expose().split('.').collect();
        assert_eq!(parts.len(), 3);
        let claims: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
        assert_eq!(claims["iss"], "42");
        assert_eq!(claims["iat"], 1_700_000_000 - 60);
        assert_eq!(claims["exp"], 1_700_000_000 + 540);
        let signature = URL_SAFE_NO_PAD.decode(parts[2]).unwrap();
        let public = app.public_key_der();
        UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, public)
            .verify(format!("{}.{}", parts[0], parts[1]).as_bytes(), &signature)
            .expect("signature verifies");
    }

    #[test]
    fn bad_keys_are_clear_errors_that_quote_nothing() {
        assert!(
            AppKey::from_pem(1, "hello")
                .unwrap_err()
                .to_string()
                .contains("no PEM block")
        );
        let wrong = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        assert!(
            AppKey::from_pem(1, wrong)
                .unwrap_err()
                .to_string()
                .contains("expected an RSA private key, found `CERTIFICATE`")
        );
        let garbage = "-----BEGIN RSA PRIVATE KEY-----\nc2VjcmV0\n-----END RSA PRIVATE KEY-----\n";
        let error = AppKey::from_pem(1, garbage).unwrap_err().to_string();
        assert!(error.starts_with("not a usable RSA key"), "{error}");
        assert!(!error.contains("c2VjcmV0"));
    }

    #[test]
    fn installation_tokens_refresh_five_minutes_before_expiry() {
        let body = serde_json::json!({"token": "ghs_x", "expires_at": "2026-01-01T01:00:00Z"});
        let token = InstallationToken::from_response(&body).unwrap();
        let at =
            |h: u64, m: u64| UNIX_EPOCH + Duration::from_secs(1_767_225_600 + h * 3600 + m * 60);
        assert!(token.fresh(at(0, 50)));
        assert!(!token.fresh(at(0, 56)));
        assert!(!token.fresh(at(2, 0)));
        assert!(InstallationToken::from_response(&serde_json::json!({"token": 1})).is_none());
    }
}
