//! Format checks for names, keys and references: Kubernetes names, label keys and values,
//! environment variable names, image references and model URIs. Each returns what is
//! wrong (`Err(reason)`), so callers turn it into a located violation.

/// What is wrong with a name, key or login. The text reads after the name it is about
/// (`invalid name `X`: must not be empty`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// Nothing was given.
    #[error("must not be empty")]
    Empty,
    /// Longer than the format allows.
    #[error("is {len} characters long; at most {max} are allowed")]
    TooLong { len: usize, max: usize },
    /// An RFC 1035 label that starts with a digit.
    #[error("must start with a lowercase letter")]
    StartsWithDigit,
    /// An RFC 1123 label with a character other than `[-a-z0-9]`.
    #[error("may contain only lowercase letters, digits and '-'")]
    LowercaseCharacters,
    /// Starts or ends with something other than a letter or digit.
    #[error("must start and end with a letter or digit")]
    Ends,
    /// The DNS prefix of a label key (before the `/`) is not a subdomain.
    #[error("prefix `{prefix}` {reason}")]
    Prefix {
        prefix: String,
        reason: Box<NameError>,
    },
    /// A label key with nothing after its `/`.
    #[error("name part must not be empty")]
    EmptyNamePart,
    /// A label name or value with a character other than `[-_.a-zA-Z0-9]`.
    #[error("may contain only letters, digits, '-', '_' and '.'")]
    LabelCharacters,
    /// An environment variable name that is not a C identifier.
    #[error("must be a C identifier: letters, digits and '_', not starting with a digit")]
    NotIdentifier,
    /// A GitHub label with a line break or another control character.
    #[error("must not contain line breaks or control characters")]
    ControlCharacters,
    /// The organization of an `org/team` approver is not a GitHub login.
    #[error("organization {0}")]
    Organization(Box<NameError>),
    /// The team of an `org/team` approver is not a slug.
    #[error("a team slug is letters, digits, '-' and '_'")]
    TeamSlug,
    /// A GitHub login with a character other than `[-a-zA-Z0-9]`.
    #[error("may contain only letters, digits and '-'")]
    LoginCharacters,
    /// A GitHub login with a hyphen at an end or two in a row.
    #[error("must not start or end with '-' or hold '--'")]
    LoginHyphens,
}

impl NameError {
    /// A short, stable name for the cause, as a metric label.
    pub fn metric_label(&self) -> &'static str {
        match self {
            NameError::Empty | NameError::EmptyNamePart => "empty",
            NameError::TooLong { .. } => "too_long",
            NameError::StartsWithDigit | NameError::Ends | NameError::LoginHyphens => "ends",
            NameError::LowercaseCharacters
            | NameError::LabelCharacters
            | NameError::NotIdentifier
            | NameError::ControlCharacters
            | NameError::TeamSlug
            | NameError::LoginCharacters => "characters",
            NameError::Prefix { reason, .. } | NameError::Organization(reason) => {
                reason.metric_label()
            }
        }
    }
}

/// Checks an RFC 1035 label (`[a-z]([-a-z0-9]*[a-z0-9])?`, at most `max` characters).
pub fn rfc1035_label(text: &str, max: usize) -> Result<(), NameError> {
    rfc1123_label(text, max)?;
    match text.chars().next() {
        Some(c) if c.is_ascii_lowercase() => Ok(()),
        _ => Err(NameError::StartsWithDigit),
    }
}

/// Checks an RFC 1123 label (`[a-z0-9]([-a-z0-9]*[a-z0-9])?`, at most `max` characters).
pub fn rfc1123_label(text: &str, max: usize) -> Result<(), NameError> {
    if text.is_empty() {
        return Err(NameError::Empty);
    }
    if text.len() > max {
        return Err(NameError::TooLong {
            len: text.len(),
            max,
        });
    }
    if !text
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    {
        return Err(NameError::LowercaseCharacters);
    }
    if text.starts_with('-') || text.ends_with('-') {
        return Err(NameError::Ends);
    }
    Ok(())
}

/// Checks an RFC 1123 subdomain (dot-separated labels, at most 253 characters): the
/// format of Secret, PersistentVolumeClaim and PriorityClass names.
pub fn rfc1123_subdomain(text: &str) -> Result<(), NameError> {
    if text.len() > 253 {
        return Err(NameError::TooLong {
            len: text.len(),
            max: 253,
        });
    }
    text.split('.')
        .try_for_each(|label| rfc1123_label(label, 63))
}

/// Checks a hostname of a route: an RFC 1123 subdomain, optionally `*.` wildcarded.
pub fn hostname(text: &str) -> Result<(), NameError> {
    rfc1123_subdomain(text.strip_prefix("*.").unwrap_or(text))
}

/// Checks a label value: at most 63 characters, alphanumeric at both ends, `-_.` inside.
pub fn label_value(text: &str) -> Result<(), NameError> {
    if text.is_empty() {
        return Ok(());
    }
    label_name(text)
}

/// The `app.kubernetes.io/` keys modelship sets on every object it writes.
pub const RESERVED_APP_KEYS: [&str; 5] = [
    crate::meta::LABEL_MANAGED_BY,
    crate::meta::LABEL_INSTANCE,
    crate::meta::LABEL_NAME,
    crate::meta::LABEL_VERSION,
    crate::meta::LABEL_COMPONENT,
];

/// True when a spec may not set this label or annotation key: modelship's own
/// `modelship.dev/` bookkeeping (spec hash, source, rollout state and commands...) and
/// the `app.kubernetes.io/` keys it sets. A spec that set them could approve its own
/// canary gates or pass for another service or instance.
pub fn reserved_key(key: &str) -> bool {
    key.starts_with("modelship.dev/") || RESERVED_APP_KEYS.contains(&key)
}

/// Checks a label or annotation key: an optional DNS subdomain prefix and `/`, then a name.
pub fn label_key(text: &str) -> Result<(), NameError> {
    let name = match text.rsplit_once('/') {
        Some((prefix, name)) => {
            rfc1123_subdomain(prefix).map_err(|reason| NameError::Prefix {
                prefix: prefix.to_string(),
                reason: Box::new(reason),
            })?;
            name
        }
        None => text,
    };
    if name.is_empty() {
        return Err(NameError::EmptyNamePart);
    }
    label_name(name)
}

fn label_name(text: &str) -> Result<(), NameError> {
    if text.len() > 63 {
        return Err(NameError::TooLong {
            len: text.len(),
            max: 63,
        });
    }
    if !text
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        return Err(NameError::LabelCharacters);
    }
    let alnum = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
    if !alnum(text.chars().next()) || !alnum(text.chars().last()) {
        return Err(NameError::Ends);
    }
    Ok(())
}

/// Checks an environment variable name: a C identifier.
pub fn env_name(text: &str) -> Result<(), NameError> {
    let mut chars = text.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    if first_ok && chars.all(|c| c.is_ascii_alphanumeric() || c == '_') {
        Ok(())
    } else {
        Err(NameError::NotIdentifier)
    }
}

/// What is wrong with an image reference, if anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageProblem {
    Empty,
    Untagged,
    Latest,
    BadDigest,
}

/// Checks that an image is pinned: a tag other than `latest`, or a digest.
pub fn image(reference: &str) -> Result<(), ImageProblem> {
    if reference.trim().is_empty() || reference.chars().any(char::is_whitespace) {
        return Err(ImageProblem::Empty);
    }
    if let Some((_, digest)) = reference.split_once('@') {
        let hex = digest.strip_prefix("sha256:").unwrap_or("");
        return if hex.len() == 64 && hex.chars().all(|c| c.is_ascii_hexdigit()) {
            Ok(())
        } else {
            Err(ImageProblem::BadDigest)
        };
    }
    // A registry port (`host:5000/x`) is in an earlier path component, never the last.
    let last = reference.rsplit('/').next().unwrap_or(reference);
    match last.split_once(':') {
        None => Err(ImageProblem::Untagged),
        Some((_, "")) => Err(ImageProblem::Untagged),
        Some((_, "latest")) => Err(ImageProblem::Latest),
        Some(_) => Ok(()),
    }
}

/// The two kinds of Prometheus names modelship.yaml can set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PromName {
    /// `[a-zA-Z_:][a-zA-Z0-9_:]*`
    Metric,
    /// `[a-zA-Z_][a-zA-Z0-9_]*`
    Label,
}

impl PromName {
    /// "metric" or "label", for messages.
    pub fn as_str(self) -> &'static str {
        match self {
            PromName::Metric => "metric",
            PromName::Label => "label",
        }
    }

    /// True when Prometheus accepts `name` as this kind of name.
    pub fn is_valid(self, name: &str) -> bool {
        let extra = |c: char| c == '_' || (self == PromName::Metric && c == ':');
        let mut chars = name.chars();
        chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || extra(c))
            && chars.all(|c| c.is_ascii_alphanumeric() || extra(c))
    }
}

/// The schemes `model.uri` accepts.
pub const URI_SCHEMES: [&str; 6] = ["pvc", "s3", "gs", "hf", "https", "oci"];

/// Schemes whose model is copied in by the model-loader init container.
pub const LOADER_SCHEMES: [&str; 4] = ["s3", "gs", "hf", "https"];

/// What is wrong with a model URI, if anything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UriProblem {
    NoScheme,
    UnknownScheme(String),
    Malformed(String),
}

/// Checks a model URI and returns its scheme.
pub fn model_uri(uri: &str) -> Result<&str, UriProblem> {
    let Some((scheme, rest)) = uri.split_once("://") else {
        return Err(UriProblem::NoScheme);
    };
    if !URI_SCHEMES.contains(&scheme) {
        return Err(UriProblem::UnknownScheme(scheme.to_string()));
    }
    if rest.is_empty() || rest.chars().any(char::is_whitespace) {
        return Err(UriProblem::Malformed(
            "needs a location after the scheme, without spaces".to_string(),
        ));
    }
    let first = rest.split('/').next().unwrap_or("");
    match scheme {
        "pvc" => {
            rfc1123_subdomain(first).map_err(|reason| {
                UriProblem::Malformed(format!("claim name `{first}` {reason}"))
            })?;
            if rest.split('/').any(|seg| seg == "..") {
                return Err(UriProblem::Malformed(
                    "the path inside the claim must not contain `..`".to_string(),
                ));
            }
        }
        _ if first.is_empty() => {
            return Err(UriProblem::Malformed(format!(
                "needs a {} after {scheme}://",
                if scheme == "https" {
                    "host"
                } else {
                    "bucket or repository"
                }
            )));
        }
        _ => {}
    }
    Ok(scheme)
}

/// Checks a GitHub label name: 1 to 50 characters, not blank, no line breaks.
pub fn github_label(text: &str) -> Result<(), NameError> {
    if text.trim().is_empty() {
        return Err(NameError::Empty);
    }
    let length = text.chars().count();
    if length > 50 {
        return Err(NameError::TooLong {
            len: length,
            max: 50,
        });
    }
    if text.chars().any(char::is_control) {
        return Err(NameError::ControlCharacters);
    }
    Ok(())
}

/// Checks a GitHub login (letters, digits and single inner hyphens, at most 39
/// characters) or an `org/team-slug`.
pub fn github_approver(text: &str) -> Result<(), NameError> {
    match text.split_once('/') {
        Some((org, team)) => {
            github_login(org).map_err(|reason| NameError::Organization(Box::new(reason)))?;
            let slug_ok = !team.is_empty()
                && team
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
            if slug_ok {
                Ok(())
            } else {
                Err(NameError::TeamSlug)
            }
        }
        None => github_login(text),
    }
}

fn github_login(text: &str) -> Result<(), NameError> {
    if text.is_empty() {
        return Err(NameError::Empty);
    }
    if text.len() > 39 {
        return Err(NameError::TooLong {
            len: text.len(),
            max: 39,
        });
    }
    if !text.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
        return Err(NameError::LoginCharacters);
    }
    if text.starts_with('-') || text.ends_with('-') || text.contains("--") {
        return Err(NameError::LoginHyphens);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn github_names() {
        assert!(github_label("modelship/preview").is_ok());
        assert!(github_label("").is_err());
        assert!(github_label(&"x".repeat(51)).is_err());
        assert!(github_label("a\nb").is_err());
        for ok in ["octocat", "a-b", "acme/ml-platform", "acme/ml_team"] {
            assert!(github_approver(ok).is_ok(), "{ok}");
        }
        for bad in ["", "-a", "a--b", "a b", "acme/", "/team", &"a".repeat(40)] {
            assert!(github_approver(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn names() {
        let cases: [(&str, bool); 8] = [
            ("fraud-detection", true),
            ("a", true),
            ("1abc", false),
            ("Abc", false),
            ("abc-", false),
            ("a_b", false),
            ("", false),
            ("a.b", false),
        ];
        for (name, ok) in cases {
            assert_eq!(rfc1035_label(name, 45).is_ok(), ok, "{name}");
        }
        assert!(rfc1123_label("1abc", 63).is_ok());
        assert!(rfc1035_label(&"a".repeat(46), 45).is_err());
    }

    #[test]
    fn images() {
        let cases = [
            ("registry.example.com/triton:24.05", Ok(())),
            ("host:5000/team/model", Err(ImageProblem::Untagged)),
            ("host:5000/team/model:1.0", Ok(())),
            ("nginx", Err(ImageProblem::Untagged)),
            ("nginx:latest", Err(ImageProblem::Latest)),
            (
                "nginx@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
                Ok(()),
            ),
            ("nginx@sha256:abc", Err(ImageProblem::BadDigest)),
            ("", Err(ImageProblem::Empty)),
        ];
        for (reference, expected) in cases {
            assert_eq!(image(reference), expected, "{reference}");
        }
    }

    #[test]
    fn reserved_keys_are_modelships_bookkeeping_and_the_app_keys_it_sets() {
        for key in [
            "modelship.dev/rollout-command",
            "modelship.dev/spec-hash",
            "modelship.dev/anything",
            "app.kubernetes.io/managed-by",
            "app.kubernetes.io/instance",
            "app.kubernetes.io/name",
            "app.kubernetes.io/version",
            "app.kubernetes.io/component",
        ] {
            assert!(reserved_key(key), "{key}");
        }
        for key in [
            "team",
            "app.kubernetes.io/part-of",
            "app.kubernetes.io/created-by",
            "example.com/modelship.dev",
            "modelship.dev",
            "sub.modelship.dev/x",
        ] {
            assert!(!reserved_key(key), "{key}");
        }
    }

    #[test]
    fn labels_and_env() {
        assert!(label_key("app.kubernetes.io/name").is_ok());
        assert!(label_key("team").is_ok());
        assert!(label_key("Bad Key").is_err());
        assert!(label_key("/x").is_err());
        assert!(label_value("").is_ok());
        assert!(label_value("1.4.2").is_ok());
        assert!(label_value("1.4.2+build").is_err());
        assert!(env_name("LOG_LEVEL").is_ok());
        assert!(env_name("2X").is_err());
        assert!(env_name("A-B").is_err());
    }

    #[test]
    fn uris() {
        assert_eq!(model_uri("s3://models/fraud"), Ok("s3"));
        assert_eq!(model_uri("pvc://models/fraud/1"), Ok("pvc"));
        assert!(matches!(
            model_uri("pvc://Bad_Claim/x"),
            Err(UriProblem::Malformed(_))
        ));
        assert!(matches!(
            model_uri("pvc://c/../x"),
            Err(UriProblem::Malformed(_))
        ));
        assert_eq!(
            model_uri("ftp://x/y"),
            Err(UriProblem::UnknownScheme("ftp".into()))
        );
        assert_eq!(model_uri("models/fraud"), Err(UriProblem::NoScheme));
        assert!(matches!(model_uri("s3://"), Err(UriProblem::Malformed(_))));
    }
}
