//! Server-side defaulting (not implemented yet: objects are left as they are).

/// Server-side defaulting by apiVersion/kind found in the object.
pub fn apply_defaults(_obj: &mut serde_json::Value) {}
