//! JWT access and refresh tokens that survive a security review.
//!
//! Three layers, each usable on its own:
//!
//! * [`Key`] and [`Keyset`]: keys from a raw secret, PEM or JWK, each pinned
//!   to one [`Algorithm`] and named by a `kid`. A keyset holds several
//!   verification keys and at most one signing key, so keys rotate without
//!   invalidating tokens already out.
//! * [`Verifier`]: strict, stateless verification. The
//!   algorithm comes from the key, never from the token; `kid` only selects a
//!   key already in memory; `exp` is required; `iss` and `aud` match exactly;
//!   `exp`, `nbf` and `iat` are checked on polyrelay's injected clock with a
//!   60 s leeway; claim types are strict; any `crit` is refused; `jku`, `x5u`
//!   and an embedded `jwk` are never used.
//! * [`TokenIssuer`]: issues access/refresh pairs and rotates refresh tokens
//!   with reuse detection per login family, plus a `jti` denylist, on a
//!   [`TokenStore`]: [`InMemoryTokenStore`] by default, or
//!   `state::redis::RedisTokenStore` to share token state across processes
//!   (it fails closed, `Unavailable`, while Redis is unreachable).
//!
//! Every failure is an [`AuthError`]: a plain enum with a stable
//! [`AuthError::as_str`] that the Python and C bindings map one to one. No
//! error, and no `Debug` output of a key or a token pair, ever contains a
//! token or key material.
//!
//! ```
//! use polyrelay::auth::{Algorithm, IssuerConfig, InMemoryTokenStore, Key, Keyset, TokenIssuer};
//! use polyrelay::clock::SystemClock;
//! use std::sync::Arc;
//!
//! # fn main() -> Result<(), polyrelay::auth::AuthError> {
//! let clock = SystemClock::shared();
//! let mut keys = Keyset::new();
//! keys.insert(Key::hmac("2025-01", Algorithm::HS256, &[7u8; 32])?)?;
//! keys.sign_with("2025-01")?;
//! let config = IssuerConfig::new("https://auth.example", ["my-api"]);
//! let store = Arc::new(InMemoryTokenStore::new(clock.clone()));
//! let issuer = TokenIssuer::new(config, keys, store, clock)?;
//!
//! let pair = issuer.issue("user-42", serde_json::Map::new())?;
//! let claims = issuer.verifier().verify(&pair.access_token)?;
//! assert_eq!(claims.subject(), Some("user-42"));
//! # Ok(()) }
//! ```

mod claims;
mod issuer;
mod keys;
mod store;
mod verifier;

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

pub use claims::Claims;
pub use issuer::{IssuerConfig, RevocationFailMode, TokenIssuer, TokenPair};
pub use keys::{Key, Keyset};
pub use store::{
    InMemoryTokenStore, RefreshOutcome, RefreshUse, StoreUnavailable, Successor, TokenStore,
};
pub use verifier::{Verifier, VerifyOptions};

/// Why a token was refused, or why auth configuration was rejected.
///
/// A plain value so bindings can map it: `as_str()` is stable and is what
/// Python exception classes and C status codes are derived from. Nothing in a
/// variant comes from the token: [`AuthError::BadClaim`] names a claim from a
/// fixed list, and [`AuthError::Config`] carries a fixed reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum AuthError {
    /// Not a compact JWS: wrong number of segments, bad base64url, a header
    /// that is not a JSON object, or too long.
    #[error("malformed token")]
    Malformed,
    /// `exp` is past (beyond the leeway).
    #[error("token expired")]
    Expired,
    /// `nbf` or `iat` is in the future (beyond the leeway).
    #[error("token not yet valid")]
    NotYetValid,
    /// The signature does not verify with the selected key.
    #[error("bad signature")]
    BadSignature,
    /// The header's `alg` is missing, unknown (`none` included) or not the
    /// algorithm pinned to the selected key.
    #[error("algorithm not accepted")]
    BadAlgorithm,
    /// A claim (or the `typ`/`crit` header parameter) is missing, has the
    /// wrong JSON type or the wrong value. Carries its name.
    #[error("bad claim: {0}")]
    BadClaim(&'static str),
    /// No key with the token's `kid` (or no `kid` while several keys exist).
    #[error("unknown key")]
    UnknownKey,
    /// The token or its login family is on the denylist.
    #[error("token revoked")]
    Revoked,
    /// A refresh token was presented a second time; its whole family is now
    /// revoked.
    #[error("refresh token reused; session revoked")]
    Reused,
    /// The token store could not answer and the fail mode is `closed`.
    #[error("auth unavailable")]
    Unavailable,
    /// A key or setting was refused when configuring auth.
    #[error("auth configuration rejected: {0}")]
    Config(&'static str),
}

impl AuthError {
    /// The stable snake_case name used by bindings, logs and HTTP bodies.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Malformed => "malformed",
            Self::Expired => "expired",
            Self::NotYetValid => "not_yet_valid",
            Self::BadSignature => "bad_signature",
            Self::BadAlgorithm => "bad_algorithm",
            Self::BadClaim(_) => "bad_claim",
            Self::UnknownKey => "unknown_key",
            Self::Revoked => "revoked",
            Self::Reused => "reused",
            Self::Unavailable => "unavailable",
            Self::Config(_) => "config",
        }
    }

    /// The claim named by [`AuthError::BadClaim`].
    pub fn claim(self) -> Option<&'static str> {
        match self {
            Self::BadClaim(name) => Some(name),
            _ => None,
        }
    }
}

/// A JWS signature algorithm polyrelay signs and verifies with.
///
/// Each [`Key`] is pinned to one. There is deliberately no `none`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Algorithm {
    /// HMAC with SHA-256; secret of at least 32 bytes.
    HS256,
    /// HMAC with SHA-384; secret of at least 48 bytes.
    HS384,
    /// HMAC with SHA-512; secret of at least 64 bytes.
    HS512,
    /// RSASSA-PKCS1-v1_5 with SHA-256; modulus of 2048 to 4096 bits. For
    /// signing prefer EdDSA or ES256: the pure-Rust RSA backend's private-key
    /// operation is not constant-time (RUSTSEC-2023-0071); verifying is fine.
    RS256,
    /// ECDSA on P-256 with SHA-256.
    ES256,
    /// Ed25519.
    EdDSA,
}

impl Algorithm {
    /// Every supported algorithm.
    pub const ALL: [Algorithm; 6] = [
        Self::HS256,
        Self::HS384,
        Self::HS512,
        Self::RS256,
        Self::ES256,
        Self::EdDSA,
    ];

    /// The JOSE name, as in a token header (`"HS256"`, `"EdDSA"`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::HS256 => "HS256",
            Self::HS384 => "HS384",
            Self::HS512 => "HS512",
            Self::RS256 => "RS256",
            Self::ES256 => "ES256",
            Self::EdDSA => "EdDSA",
        }
    }

    /// The algorithm with exactly this JOSE name (case-sensitive, as RFC
    /// 7515 requires): `"none"`, `"NONE"` or `"hs256"` are not algorithms.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|alg| alg.as_str() == name)
    }

    /// Whether this is a shared-secret (HMAC) algorithm.
    pub fn is_hmac(self) -> bool {
        matches!(self, Self::HS256 | Self::HS384 | Self::HS512)
    }

    /// The shortest secret accepted for an HMAC algorithm: the digest size.
    pub fn min_secret_len(self) -> Option<usize> {
        match self {
            Self::HS256 => Some(32),
            Self::HS384 => Some(48),
            Self::HS512 => Some(64),
            _ => None,
        }
    }

    fn index(self) -> usize {
        self as usize
    }

    fn jwt(self) -> jsonwebtoken::Algorithm {
        match self {
            Self::HS256 => jsonwebtoken::Algorithm::HS256,
            Self::HS384 => jsonwebtoken::Algorithm::HS384,
            Self::HS512 => jsonwebtoken::Algorithm::HS512,
            Self::RS256 => jsonwebtoken::Algorithm::RS256,
            Self::ES256 => jsonwebtoken::Algorithm::ES256,
            Self::EdDSA => jsonwebtoken::Algorithm::EdDSA,
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Algorithm {
    type Err = AuthError;

    fn from_str(name: &str) -> Result<Self, AuthError> {
        Self::from_name(name).ok_or(AuthError::Config("unsupported algorithm"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn algorithm_names_round_trip_and_none_is_not_one() {
        for alg in Algorithm::ALL {
            assert_eq!(Algorithm::from_name(alg.as_str()), Some(alg));
            assert_eq!(Algorithm::ALL[alg.index()], alg);
        }
        for name in ["none", "None", "NONE", "nOnE", "", "hs256", "RS512"] {
            assert_eq!(Algorithm::from_name(name), None, "{name}");
        }
    }

    #[test]
    fn error_names_are_stable() {
        let all = [
            (AuthError::Malformed, "malformed"),
            (AuthError::Expired, "expired"),
            (AuthError::NotYetValid, "not_yet_valid"),
            (AuthError::BadSignature, "bad_signature"),
            (AuthError::BadAlgorithm, "bad_algorithm"),
            (AuthError::BadClaim("exp"), "bad_claim"),
            (AuthError::UnknownKey, "unknown_key"),
            (AuthError::Revoked, "revoked"),
            (AuthError::Reused, "reused"),
            (AuthError::Unavailable, "unavailable"),
            (AuthError::Config("x"), "config"),
        ];
        for (error, name) in all {
            assert_eq!(error.as_str(), name);
        }
        assert_eq!(AuthError::BadClaim("aud").claim(), Some("aud"));
        assert_eq!(AuthError::BadClaim("aud").to_string(), "bad claim: aud");
    }
}
