//! The name of one service: [`ServiceId`], a namespace and a name that are always valid.
//!
//! Every layer names services with it: the loaded specs, the desired and live states, the
//! plan's prune guard, policy verdicts, the engine, the daemon's `/status` board, the
//! pull-request bookkeeping and the metrics. Its text form is `namespace/name`, written by
//! [`Display`](fmt::Display) and read back by [`FromStr`]; serde uses the same string (so an
//! id is a JSON map key). The parts never hold `/`, whitespace or control characters, so
//! the text form round-trips exactly.
//!
//! ```text
//! spec (namespace, name) ──ServiceId::new──▶ ServiceId ──Display──▶ "ns/name"
//!                                                 ▲                      │
//!                                                 └────────FromStr───────┘
//! ```

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The longest namespace or name accepted, in bytes (a Kubernetes object name's limit).
pub const MAX_PART_LEN: usize = 253;

/// Which half of a [`ServiceId`] a problem is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// The namespace.
    Namespace,
    /// The name.
    Name,
}

impl fmt::Display for Part {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Part::Namespace => "namespace",
            Part::Name => "name",
        })
    }
}

/// Why a namespace and name (or a `namespace/name` text) are not a [`ServiceId`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidServiceId {
    /// The text has no `/` between namespace and name.
    #[error("service id `{0}` is not `namespace/name`")]
    NoSlash(String),
    /// A part is empty.
    #[error("service {0} is empty")]
    Empty(Part),
    /// A part is longer than [`MAX_PART_LEN`] bytes.
    #[error("service {part} is {len} bytes long, more than {MAX_PART_LEN}")]
    TooLong {
        /// The part that is too long.
        part: Part,
        /// Its length in bytes.
        len: usize,
    },
    /// A part contains `/`.
    #[error("service {part} `{value}` contains `/`")]
    Slash {
        /// The part holding the slash.
        part: Part,
        /// Its value.
        value: String,
    },
    /// A part contains whitespace or a control character.
    #[error("service {part} `{}` contains whitespace or a control character", value.escape_debug())]
    Unprintable {
        /// The part holding the character.
        part: Part,
        /// Its value.
        value: String,
    },
}

/// A service: its namespace and name, both non-empty, at most [`MAX_PART_LEN`] bytes, with
/// no `/`, whitespace or control characters. Ordered by namespace, then name.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ServiceId {
    // The field order is the ordering: namespace first.
    namespace: String,
    name: String,
}

impl ServiceId {
    /// Validates a namespace and a name into an id.
    pub fn new(
        namespace: impl Into<String>,
        name: impl Into<String>,
    ) -> Result<Self, InvalidServiceId> {
        let namespace = check(Part::Namespace, namespace.into())?;
        let name = check(Part::Name, name.into())?;
        Ok(ServiceId { namespace, name })
    }

    /// The namespace.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// The name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

fn check(part: Part, value: String) -> Result<String, InvalidServiceId> {
    if value.is_empty() {
        return Err(InvalidServiceId::Empty(part));
    }
    if value.len() > MAX_PART_LEN {
        return Err(InvalidServiceId::TooLong {
            part,
            len: value.len(),
        });
    }
    if value.contains('/') {
        return Err(InvalidServiceId::Slash { part, value });
    }
    if value.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(InvalidServiceId::Unprintable { part, value });
    }
    Ok(value)
}

impl fmt::Display for ServiceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

impl fmt::Debug for ServiceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ServiceId(\"{self}\")")
    }
}

impl FromStr for ServiceId {
    type Err = InvalidServiceId;

    /// Reads `namespace/name`; the name may not hold a further `/`.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (namespace, name) = text
            .split_once('/')
            .ok_or_else(|| InvalidServiceId::NoSlash(text.to_string()))?;
        ServiceId::new(namespace, name)
    }
}

impl Serialize for ServiceId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ServiceId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use proptest::prelude::*;

    use super::*;

    fn id(namespace: &str, name: &str) -> ServiceId {
        ServiceId::new(namespace, name).unwrap()
    }

    #[test]
    fn display_and_from_str_round_trip() {
        let service = id("ml", "llama");
        assert_eq!(service.to_string(), "ml/llama");
        assert_eq!(format!("{service:?}"), "ServiceId(\"ml/llama\")");
        assert_eq!("ml/llama".parse::<ServiceId>().unwrap(), service);
        assert_eq!(service.namespace(), "ml");
        assert_eq!(service.name(), "llama");
    }

    #[test]
    fn rejects_what_would_not_round_trip() {
        let long = "a".repeat(MAX_PART_LEN + 1);
        let cases: Vec<(&str, &str, InvalidServiceId)> = vec![
            ("", "a", InvalidServiceId::Empty(Part::Namespace)),
            ("ns", "", InvalidServiceId::Empty(Part::Name)),
            (
                &long,
                "a",
                InvalidServiceId::TooLong {
                    part: Part::Namespace,
                    len: MAX_PART_LEN + 1,
                },
            ),
            (
                "ns",
                &long,
                InvalidServiceId::TooLong {
                    part: Part::Name,
                    len: MAX_PART_LEN + 1,
                },
            ),
            (
                "a/b",
                "c",
                InvalidServiceId::Slash {
                    part: Part::Namespace,
                    value: "a/b".into(),
                },
            ),
            (
                "ns",
                "b/c",
                InvalidServiceId::Slash {
                    part: Part::Name,
                    value: "b/c".into(),
                },
            ),
            (
                "n s",
                "a",
                InvalidServiceId::Unprintable {
                    part: Part::Namespace,
                    value: "n s".into(),
                },
            ),
            (
                "ns",
                "a\u{7}",
                InvalidServiceId::Unprintable {
                    part: Part::Name,
                    value: "a\u{7}".into(),
                },
            ),
        ];
        for (namespace, name, error) in cases {
            assert_eq!(
                ServiceId::new(namespace, name),
                Err(error),
                "{namespace:?} {name:?}"
            );
        }
        assert!(ServiceId::new("a".repeat(MAX_PART_LEN), "b").is_ok());
    }

    #[test]
    fn from_str_rejects_malformed_text() {
        assert_eq!(
            "llama".parse::<ServiceId>(),
            Err(InvalidServiceId::NoSlash("llama".into()))
        );
        assert_eq!(
            "ml/a/b".parse::<ServiceId>(),
            Err(InvalidServiceId::Slash {
                part: Part::Name,
                value: "a/b".into()
            })
        );
        assert_eq!(
            "/a".parse::<ServiceId>(),
            Err(InvalidServiceId::Empty(Part::Namespace))
        );
        assert_eq!(
            "ml/a\n".parse::<ServiceId>().unwrap_err().to_string(),
            "service name `a\\n` contains whitespace or a control character"
        );
    }

    #[test]
    fn orders_by_namespace_then_name() {
        let mut ids = vec![id("b", "a"), id("a", "z"), id("a", "b"), id("ab", "a")];
        ids.sort();
        assert_eq!(
            ids,
            [id("a", "b"), id("a", "z"), id("ab", "a"), id("b", "a")]
        );
        // The same order as the (namespace, name) pair.
        let pairs: Vec<(&str, &str)> = ids.iter().map(|i| (i.namespace(), i.name())).collect();
        let mut sorted = pairs.clone();
        sorted.sort();
        assert_eq!(pairs, sorted);
    }

    #[test]
    fn serde_is_the_text_form() {
        let service = id("ml", "llama");
        assert_eq!(serde_json::to_string(&service).unwrap(), "\"ml/llama\"");
        assert_eq!(
            serde_json::from_str::<ServiceId>("\"ml/llama\"").unwrap(),
            service
        );
        assert!(serde_json::from_str::<ServiceId>("\"llama\"").is_err());
        assert!(serde_json::from_str::<ServiceId>("3").is_err());
    }

    #[test]
    fn serde_works_as_a_map_key() {
        let map = BTreeMap::from([(id("ml", "b"), 2), (id("ml", "a"), 1)]);
        let text = serde_json::to_string(&map).unwrap();
        assert_eq!(text, r#"{"ml/a":1,"ml/b":2}"#);
        let back: BTreeMap<ServiceId, i32> = serde_json::from_str(&text).unwrap();
        assert_eq!(back, map);
    }

    proptest! {
        #[test]
        fn valid_ids_round_trip(
            namespace in "[^/\\s\\p{Cc}]{1,40}",
            name in "[^/\\s\\p{Cc}]{1,40}",
        ) {
            let service = ServiceId::new(namespace.clone(), name.clone()).unwrap();
            let back: ServiceId = service.to_string().parse().unwrap();
            prop_assert_eq!(back.namespace(), namespace.as_str());
            prop_assert_eq!(back.name(), name.as_str());
            prop_assert_eq!(back, service);
        }
    }
}
