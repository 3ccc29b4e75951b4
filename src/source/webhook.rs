//! GitHub push webhooks: signature check and what a delivery asks for. Pure: the HTTP
//! handler in `daemon::serve` hands in headers and body and maps the outcome to a status.
//!
//! ```text
//! body, X-Hub-Signature-256 ──verify──▶ Ok | Unsigned | BadSignature      (401)
//! X-GitHub-Event, body ──classify──▶ Fetch (202) | Ping (200) | Ignore (204) | Malformed (400)
//! ```

use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::Sha256;

/// Largest accepted body; larger deliveries get 413 before any parsing.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// Why a delivery is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookError {
    /// No `X-Hub-Signature-256` header.
    #[error("missing X-Hub-Signature-256 header")]
    Unsigned,
    /// The header is not `sha256=<64 hex digits>`.
    #[error("X-Hub-Signature-256 is not of the form sha256=<hex>")]
    MalformedSignature,
    /// The signature does not match the body and the secret.
    #[error("signature does not match")]
    BadSignature,
    /// The body is larger than [`MAX_BODY_BYTES`].
    #[error("body larger than {MAX_BODY_BYTES} bytes")]
    TooLarge,
    /// A push event whose body is not the JSON GitHub sends.
    #[error("push event body is not valid: {0}")]
    Malformed(String),
}

impl WebhookError {
    /// The label of this error in metrics.
    pub fn metric_label(&self) -> &'static str {
        match self {
            WebhookError::Unsigned => "webhook_unsigned",
            WebhookError::MalformedSignature => "webhook_malformed_signature",
            WebhookError::BadSignature => "webhook_bad_signature",
            WebhookError::TooLarge => "webhook_too_large",
            WebhookError::Malformed(_) => "webhook_malformed",
        }
    }

    /// The HTTP status the delivery gets.
    pub fn status(&self) -> u16 {
        match self {
            WebhookError::Unsigned
            | WebhookError::MalformedSignature
            | WebhookError::BadSignature => 401,
            WebhookError::TooLarge => 413,
            WebhookError::Malformed(_) => 400,
        }
    }
}

/// Checks `X-Hub-Signature-256: sha256=<hex>` against HMAC-SHA256(secret, body) in
/// constant time.
pub fn verify_signature(
    secret: &[u8],
    header: Option<&str>,
    body: &[u8],
) -> Result<(), WebhookError> {
    if body.len() > MAX_BODY_BYTES {
        return Err(WebhookError::TooLarge);
    }
    let header = header.ok_or(WebhookError::Unsigned)?;
    let hex = header
        .trim()
        .strip_prefix("sha256=")
        .ok_or(WebhookError::MalformedSignature)?;
    let expected = decode_hex(hex).ok_or(WebhookError::MalformedSignature)?;
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).map_err(|_| WebhookError::BadSignature)?;
    mac.update(body);
    mac.verify_slice(&expected)
        .map_err(|_| WebhookError::BadSignature)
}

/// The signature header value GitHub would send for `body` (for tests and tools).
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    // HMAC accepts keys of any length: `new_from_slice` never fails.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) else {
        return String::new();
    };
    mac.update(body);
    let bytes = mac.finalize().into_bytes();
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256={hex}")
}

fn decode_hex(hex: &str) -> Option<Vec<u8>> {
    if hex.len() != 64 || !hex.is_ascii() {
        return None;
    }
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).ok())
        .collect()
}

/// What a verified delivery asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// A push to the followed branch: fetch now. Carries the pushed commit.
    Fetch { after: String },
    /// GitHub's `ping` on webhook creation.
    Ping,
    /// Another branch, a tag, or another event: nothing to do.
    Ignore { reason: String },
}

#[derive(Deserialize)]
struct PushEvent {
    #[serde(rename = "ref")]
    reference: String,
    #[serde(default)]
    after: String,
}

/// Classifies a verified delivery by its `X-GitHub-Event` header and body.
pub fn classify(event: Option<&str>, body: &[u8], branch: &str) -> Result<Delivery, WebhookError> {
    match event {
        Some("ping") => Ok(Delivery::Ping),
        Some("push") => {
            let push: PushEvent =
                serde_json::from_slice(body).map_err(|e| WebhookError::Malformed(e.to_string()))?;
            if push.reference == format!("refs/heads/{branch}") {
                Ok(Delivery::Fetch { after: push.after })
            } else {
                Ok(Delivery::Ignore {
                    reason: format!("push to {}", push.reference),
                })
            }
        }
        other => Ok(Delivery::Ignore {
            reason: format!("event {}", other.unwrap_or("(none)")),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"It's a Secret to Everybody";
    const BODY: &[u8] = b"Hello, World!";
    /// GitHub's documented example for SECRET and BODY.
    const GITHUB_EXAMPLE: &str =
        "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";

    #[test]
    fn githubs_documented_example_verifies_and_is_what_sign_produces() {
        assert_eq!(verify_signature(SECRET, Some(GITHUB_EXAMPLE), BODY), Ok(()));
        assert_eq!(sign(SECRET, BODY), GITHUB_EXAMPLE);
    }

    #[test]
    fn signature_failures_are_told_apart() {
        let wrong_secret = sign(b"another secret", BODY);
        let sha1 = GITHUB_EXAMPLE.replace("sha256=", "sha1=");
        let short = &GITHUB_EXAMPLE[..GITHUB_EXAMPLE.len() - 2];
        let cases: [(Option<&str>, &[u8], WebhookError); 6] = [
            (None, BODY, WebhookError::Unsigned),
            (Some(&wrong_secret), BODY, WebhookError::BadSignature),
            (
                Some(GITHUB_EXAMPLE),
                b"Hello, World?",
                WebhookError::BadSignature,
            ),
            (Some(&sha1), BODY, WebhookError::MalformedSignature),
            (Some(short), BODY, WebhookError::MalformedSignature),
            (Some("sha256=zz"), BODY, WebhookError::MalformedSignature),
        ];
        for (header, body, expected) in cases {
            assert_eq!(
                verify_signature(SECRET, header, body),
                Err(expected.clone()),
                "{header:?}"
            );
            assert_eq!(expected.status(), 401);
        }
    }

    #[test]
    fn oversized_bodies_are_refused_before_checking() {
        let body = vec![b'x'; MAX_BODY_BYTES + 1];
        let signature = sign(SECRET, &body);
        let error = verify_signature(SECRET, Some(&signature), &body).unwrap_err();
        assert_eq!(error, WebhookError::TooLarge);
        assert_eq!(error.status(), 413);
    }

    #[test]
    fn only_pushes_to_the_followed_branch_fetch() {
        let push = |r: &str| format!(r#"{{"ref":"{r}","after":"abc123","commits":[]}}"#);
        assert_eq!(
            classify(Some("push"), push("refs/heads/main").as_bytes(), "main"),
            Ok(Delivery::Fetch {
                after: "abc123".into()
            })
        );
        for other in ["refs/heads/dev", "refs/tags/main", "refs/heads/main2"] {
            assert!(matches!(
                classify(Some("push"), push(other).as_bytes(), "main"),
                Ok(Delivery::Ignore { .. })
            ));
        }
        assert_eq!(classify(Some("ping"), b"{}", "main"), Ok(Delivery::Ping));
        assert!(matches!(
            classify(Some("pull_request"), b"{}", "main"),
            Ok(Delivery::Ignore { .. })
        ));
        assert!(matches!(
            classify(Some("push"), b"not json", "main"),
            Err(WebhookError::Malformed(_))
        ));
    }
}
