//! The verified payload of a token.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The claims of a token that passed verification, as the JSON object it
/// carried. Serializes to exactly that object, so bindings hand it on as a
/// dict; the accessors read the registered claims polyrelay relies on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Claims(Map<String, Value>);

impl Claims {
    /// Any claim by name.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.0.get(name)
    }

    /// `sub`: whom the token is about.
    pub fn subject(&self) -> Option<&str> {
        self.str("sub")
    }

    /// `jti`: the token's unique id.
    pub fn jti(&self) -> Option<&str> {
        self.str("jti")
    }

    /// `sid`: the login (refresh-token family) the token belongs to.
    pub fn session_id(&self) -> Option<&str> {
        self.str("sid")
    }

    /// `exp` in seconds since the epoch (always present after verification).
    pub fn expires_at(&self) -> Option<f64> {
        self.0.get("exp").and_then(Value::as_f64)
    }

    /// The space-separated `scope` claim (RFC 9068), one scope at a time.
    pub fn scopes(&self) -> impl Iterator<Item = &str> {
        self.str("scope")
            .unwrap_or_default()
            .split_ascii_whitespace()
    }

    /// Whether `scope` lists `wanted`.
    pub fn has_scope(&self, wanted: &str) -> bool {
        self.scopes().any(|scope| scope == wanted)
    }

    /// All claims.
    pub fn as_map(&self) -> &Map<String, Value> {
        &self.0
    }

    /// All claims, owned.
    pub fn into_map(self) -> Map<String, Value> {
        self.0
    }

    pub(crate) fn from_map(map: Map<String, Value>) -> Self {
        Self(map)
    }

    fn str(&self, name: &str) -> Option<&str> {
        self.0.get(name).and_then(Value::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accessors_read_registered_claims() {
        let claims: Claims = serde_json::from_str(
            r#"{"sub":"u","jti":"j","sid":"s","exp":12.5,"scope":"read  write"}"#,
        )
        .unwrap();
        assert_eq!(claims.subject(), Some("u"));
        assert_eq!(claims.jti(), Some("j"));
        assert_eq!(claims.session_id(), Some("s"));
        assert_eq!(claims.expires_at(), Some(12.5));
        assert_eq!(claims.scopes().collect::<Vec<_>>(), ["read", "write"]);
        assert!(claims.has_scope("write"));
        assert!(!claims.has_scope("admin"));
        assert_eq!(
            serde_json::to_value(&claims).unwrap(),
            serde_json::json!({"sub":"u","jti":"j","sid":"s","exp":12.5,"scope":"read  write"})
        );
    }
}
