//! Issuing access/refresh pairs, refresh rotation with reuse detection, and
//! revocation.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::verifier::now_secs;
use super::{
    AuthError, Claims, Key, Keyset, RefreshOutcome, RefreshUse, Successor, TokenStore, Verifier,
    VerifyOptions,
};

/// Header `typ` of access tokens (RFC 9068).
const ACCESS_TYP: &str = "at+jwt";
/// Header `typ` of refresh tokens, so neither kind passes for the other.
const REFRESH_TYP: &str = "refresh+jwt";
/// Claims the issuer sets itself; extra claims may not override them.
const REGISTERED: [&str; 8] = ["iss", "sub", "aud", "exp", "nbf", "iat", "jti", "sid"];

/// What to do when the [`TokenStore`] cannot answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RevocationFailMode {
    /// Refuse with [`AuthError::Unavailable`]: no refresh and no access
    /// token accepted while revocations cannot be checked. The default.
    #[default]
    Closed,
    /// Carry on as if nothing were revoked: refreshes rotate without reuse
    /// detection and access tokens pass on signature and claims alone.
    /// Trades security for availability during a store outage.
    Open,
}

/// How an issuer mints tokens.
///
/// Deserializes from a map where only `issuer` and `audience` are required;
/// durations accept `"15m"` or seconds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IssuerConfig {
    /// `iss` of every token, and the only issuer accepted back.
    pub issuer: String,
    /// `aud` of every token (a string when there is one, else a list); a
    /// token is accepted back when its `aud` names one of them.
    pub audience: Vec<String>,
    /// Life of an access token. Default 15 min.
    #[serde(default = "default_access_ttl", with = "crate::duration::serde_secs")]
    pub access_ttl: Duration,
    /// Life of a refresh token; each refresh starts a new one. Default 14 days.
    #[serde(default = "default_refresh_ttl", with = "crate::duration::serde_secs")]
    pub refresh_ttl: Duration,
    /// Clock skew tolerated on `exp`, `nbf` and `iat`. Default 60 s.
    #[serde(default = "default_leeway", with = "crate::duration::serde_secs")]
    pub leeway: Duration,
    /// A refresh token presented again within this long of its first use
    /// returns the same new refresh token instead of revoking the family, so
    /// a client retrying after a lost response is not logged out. Default 0
    /// (off); at most 60 s. Anyone holding a stolen token gets the same grace.
    #[serde(default, with = "crate::duration::serde_secs")]
    pub reuse_grace: Duration,
    /// What to do when the token store is unreachable. Default `closed`.
    #[serde(default)]
    pub revocation_fail_mode: RevocationFailMode,
}

fn default_access_ttl() -> Duration {
    Duration::from_secs(15 * 60)
}

fn default_refresh_ttl() -> Duration {
    Duration::from_secs(14 * 24 * 3600)
}

fn default_leeway() -> Duration {
    Duration::from_secs(60)
}

impl IssuerConfig {
    /// Defaults for `issuer` and `audience`.
    pub fn new(
        issuer: impl Into<String>,
        audience: impl IntoIterator<Item = impl Into<String>>,
    ) -> Self {
        Self {
            issuer: issuer.into(),
            audience: audience.into_iter().map(Into::into).collect(),
            access_ttl: default_access_ttl(),
            refresh_ttl: default_refresh_ttl(),
            leeway: default_leeway(),
            reuse_grace: Duration::ZERO,
            revocation_fail_mode: RevocationFailMode::Closed,
        }
    }

    fn validate(&self) -> Result<(), AuthError> {
        if self.issuer.is_empty() {
            return Err(AuthError::Config("issuer must not be empty"));
        }
        if self.audience.is_empty() || self.audience.iter().any(String::is_empty) {
            return Err(AuthError::Config(
                "audience must name at least one audience",
            ));
        }
        if self.access_ttl < Duration::from_secs(1) {
            return Err(AuthError::Config("access_ttl must be at least 1 s"));
        }
        if self.refresh_ttl < self.access_ttl {
            return Err(AuthError::Config("refresh_ttl must be at least access_ttl"));
        }
        if self.reuse_grace > Duration::from_secs(60) {
            return Err(AuthError::Config("reuse_grace must be at most 60 s"));
        }
        Ok(())
    }
}

/// An access token and the refresh token to renew it, shaped like an OAuth
/// token response when serialized. `Debug` never shows the tokens.
#[derive(Clone, PartialEq, Eq, Serialize)]
pub struct TokenPair {
    /// Short-lived bearer token for API calls.
    pub access_token: String,
    /// Single-use token for [`TokenIssuer::refresh`].
    pub refresh_token: String,
    /// Always `"Bearer"`.
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    pub expires_in: u64,
    /// Seconds until the refresh token expires.
    pub refresh_expires_in: u64,
}

impl fmt::Debug for TokenPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenPair")
            .field("access_token", &"[redacted]")
            .field("refresh_token", &"[redacted]")
            .field("expires_in", &self.expires_in)
            .field("refresh_expires_in", &self.refresh_expires_in)
            .finish()
    }
}

/// Issues and renews tokens, and checks them against the denylist.
///
/// Each login ([`TokenIssuer::issue`]) starts a family, named by the `sid`
/// claim of all its tokens. [`TokenIssuer::refresh`] spends the presented
/// refresh token and returns a new pair; presenting a spent one again
/// (outside `reuse_grace`) revokes the family, so a thief and the victim are
/// both logged out (RFC 9700 §4.14). Access tokens carry `typ: at+jwt` and
/// refresh tokens `typ: refresh+jwt`, so neither is accepted as the other.
#[derive(Debug)]
pub struct TokenIssuer {
    config: IssuerConfig,
    verifier: Verifier,
    store: Arc<dyn TokenStore>,
}

impl TokenIssuer {
    /// An issuer signing with `keyset`'s signing key.
    pub fn new(
        config: IssuerConfig,
        keyset: Keyset,
        store: Arc<dyn TokenStore>,
        clock: crate::clock::SharedClock,
    ) -> Result<Self, AuthError> {
        config.validate()?;
        require_signing_key(&keyset)?;
        let options = VerifyOptions {
            issuer: Some(config.issuer.clone()),
            audience: config.audience.clone(),
            leeway: config.leeway,
            typ: None,
        };
        Ok(Self {
            verifier: Verifier::new(keyset, options, clock),
            config,
            store,
        })
    }

    /// Starts a login for `subject`: a new family and its first pair.
    /// `extra` claims (e.g. `scope`) are copied into both tokens and into
    /// every pair refreshed from them; they may not set registered claims.
    pub fn issue(&self, subject: &str, extra: Map<String, Value>) -> Result<TokenPair, AuthError> {
        if subject.is_empty() {
            return Err(AuthError::Config("subject must not be empty"));
        }
        if extra.keys().any(|name| REGISTERED.contains(&name.as_str())) {
            return Err(AuthError::Config(
                "extra claims must not set registered claims",
            ));
        }
        let mut base = extra;
        base.insert("iss".into(), self.config.issuer.clone().into());
        base.insert("sub".into(), subject.into());
        base.insert("aud".into(), self.audience_claim());
        base.insert("sid".into(), new_id().into());
        let now = self.now();
        let first = Successor {
            jti: new_id(),
            issued_at: now.floor() as i64,
        };
        self.mint_pair(&base, &first, now)
    }

    /// Exchanges a refresh token for a new pair, spending it.
    ///
    /// Errors: the token's own faults as in [`Verifier::verify`];
    /// [`AuthError::Reused`] when it was already spent (the family is now
    /// revoked); [`AuthError::Revoked`] when it or its family was revoked;
    /// [`AuthError::Unavailable`] when the store cannot answer and the fail
    /// mode is `closed`.
    pub async fn refresh(&self, refresh_token: &str) -> Result<TokenPair, AuthError> {
        let claims = self
            .verifier
            .verify_typed(refresh_token, Some(REFRESH_TYP))?;
        let now = self.now();
        let successor = Successor {
            jti: new_id(),
            issued_at: now.floor() as i64,
        };
        let presented = RefreshUse {
            jti: claims.jti().ok_or(AuthError::BadClaim("jti"))?,
            family: claims.session_id().ok_or(AuthError::BadClaim("sid"))?,
            successor: successor.clone(),
            remember_for: self.remaining_life(&claims, now),
            grace: self.config.reuse_grace,
            family_ttl: self.config.refresh_ttl + self.config.leeway,
        };
        let successor = match self.store.use_refresh(presented).await {
            Ok(RefreshOutcome::Rotated) => successor,
            Ok(RefreshOutcome::Replayed(recorded)) => recorded,
            Ok(RefreshOutcome::Reused) => return Err(AuthError::Reused),
            Ok(RefreshOutcome::Revoked) => return Err(AuthError::Revoked),
            Err(_) => {
                self.store_unavailable()?;
                successor
            }
        };
        let mut base = claims.into_map();
        for name in ["jti", "iat", "exp", "nbf"] {
            base.remove(name);
        }
        self.mint_pair(&base, &successor, now)
    }

    /// Verifies an access token and checks that neither it nor its family
    /// was revoked.
    pub async fn verify_access(&self, access_token: &str) -> Result<Claims, AuthError> {
        let claims = self.verifier.verify_typed(access_token, Some(ACCESS_TYP))?;
        let jti = claims.jti().ok_or(AuthError::BadClaim("jti"))?;
        match self.store.is_revoked(jti, claims.session_id()).await {
            Ok(false) => Ok(claims),
            Ok(true) => Err(AuthError::Revoked),
            Err(_) => self.store_unavailable().map(|()| claims),
        }
    }

    /// Denies one of our tokens (access or refresh) until it expires. Fails
    /// with [`AuthError::Unavailable`] when the store cannot record it,
    /// whatever the fail mode.
    pub async fn revoke(&self, token: &str) -> Result<(), AuthError> {
        let claims = self.verifier.verify_typed(token, None)?;
        let jti = claims.jti().ok_or(AuthError::BadClaim("jti"))?;
        let ttl = self.remaining_life(&claims, self.now());
        self.store
            .revoke_token(jti, ttl)
            .await
            .map_err(|_| AuthError::Unavailable)
    }

    /// Denies every token of the login `token` belongs to (logout).
    pub async fn revoke_session(&self, token: &str) -> Result<(), AuthError> {
        let claims = self.verifier.verify_typed(token, None)?;
        let family = claims.session_id().ok_or(AuthError::BadClaim("sid"))?;
        self.store
            .revoke_family(family, self.config.refresh_ttl + self.config.leeway)
            .await
            .map_err(|_| AuthError::Unavailable)
    }

    /// The stateless verifier of this issuer's tokens (signature and
    /// claims, no denylist), e.g. for a resource server sharing the keys.
    pub fn verifier(&self) -> &Verifier {
        &self.verifier
    }

    /// Rotates keys: new tokens are signed with `keyset`'s signing key, and
    /// tokens verify against its keys.
    pub fn replace_keyset(&self, keyset: Keyset) -> Result<(), AuthError> {
        require_signing_key(&keyset)?;
        self.verifier.replace_keyset(keyset);
        Ok(())
    }

    /// The configuration in force.
    pub fn config(&self) -> &IssuerConfig {
        &self.config
    }

    fn now(&self) -> f64 {
        now_secs(self.verifier.clock())
    }

    fn store_unavailable(&self) -> Result<(), AuthError> {
        match self.config.revocation_fail_mode {
            RevocationFailMode::Closed => Err(AuthError::Unavailable),
            RevocationFailMode::Open => {
                tracing::warn!(
                    backend = self.store.backend(),
                    "token store unavailable; revocation not checked (revocation_fail_mode = open)"
                );
                Ok(())
            }
        }
    }

    /// How long state about a token must outlive now: until `exp` plus
    /// leeway, after which the token is refused as expired anyway.
    fn remaining_life(&self, claims: &Claims, now: f64) -> Duration {
        let left = claims.expires_at().unwrap_or(now) - now;
        Duration::from_secs_f64(left.clamp(0.0, u32::MAX as f64)) + self.config.leeway
    }

    fn audience_claim(&self) -> Value {
        match self.config.audience.as_slice() {
            [one] => one.clone().into(),
            many => many.to_vec().into(),
        }
    }

    /// An access token minted now and the refresh token `refresh`, both
    /// carrying `base` (the family's claims).
    fn mint_pair(
        &self,
        base: &Map<String, Value>,
        refresh: &Successor,
        now: f64,
    ) -> Result<TokenPair, AuthError> {
        let keyset = self.verifier.keyset();
        let key = require_signing_key(&keyset)?;
        let issued_at = now.floor() as i64;
        let access_ttl = self.config.access_ttl.as_secs();
        let refresh_ttl = self.config.refresh_ttl.as_secs();
        let access_token = sign(
            key,
            ACCESS_TYP,
            base,
            &new_id(),
            issued_at,
            issued_at.saturating_add_unsigned(access_ttl),
        )?;
        let refresh_exp = refresh.issued_at.saturating_add_unsigned(refresh_ttl);
        let refresh_token = sign(
            key,
            REFRESH_TYP,
            base,
            &refresh.jti,
            refresh.issued_at,
            refresh_exp,
        )?;
        Ok(TokenPair {
            access_token,
            refresh_token,
            token_type: "Bearer",
            expires_in: access_ttl,
            refresh_expires_in: u64::try_from(refresh_exp.saturating_sub(issued_at)).unwrap_or(0),
        })
    }
}

fn require_signing_key(keyset: &Keyset) -> Result<&Key, AuthError> {
    keyset
        .signing_key()
        .ok_or(AuthError::Config("keyset has no signing key"))
}

fn sign(
    key: &Key,
    typ: &str,
    base: &Map<String, Value>,
    jti: &str,
    issued_at: i64,
    expires_at: i64,
) -> Result<String, AuthError> {
    let mut claims = base.clone();
    claims.insert("jti".into(), jti.into());
    claims.insert("iat".into(), issued_at.into());
    claims.insert("exp".into(), expires_at.into());
    let mut header = jsonwebtoken::Header::new(key.alg().jwt());
    header.typ = Some(typ.into());
    header.kid = Some(key.kid().into());
    let encoding = key
        .encoding
        .as_ref()
        .ok_or(AuthError::Config("signing key has no private part"))?;
    jsonwebtoken::encode(&header, &claims, encoding)
        .map_err(|_| AuthError::Config("signing failed"))
}

/// A random, unguessable token or family id.
fn new_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_is_validated() {
        let ok = IssuerConfig::new("https://issuer", ["api"]);
        assert_eq!(ok.validate(), Ok(()));
        let cases = [
            IssuerConfig {
                issuer: String::new(),
                ..ok.clone()
            },
            IssuerConfig {
                audience: Vec::new(),
                ..ok.clone()
            },
            IssuerConfig {
                access_ttl: Duration::ZERO,
                ..ok.clone()
            },
            IssuerConfig {
                refresh_ttl: Duration::from_secs(1),
                ..ok.clone()
            },
            IssuerConfig {
                reuse_grace: Duration::from_secs(61),
                ..ok.clone()
            },
        ];
        for config in cases {
            assert_eq!(config.validate().unwrap_err().as_str(), "config");
        }
    }

    #[test]
    fn config_reads_from_a_map_with_defaults() {
        let config: IssuerConfig = serde_json::from_str(
            r#"{"issuer":"https://i","audience":["a"],"reuse_grace":"10s","revocation_fail_mode":"open"}"#,
        )
        .unwrap();
        assert_eq!(config.reuse_grace, Duration::from_secs(10));
        assert_eq!(config.revocation_fail_mode, RevocationFailMode::Open);
        assert_eq!(config.access_ttl, Duration::from_secs(900));
        assert_eq!(config.leeway, Duration::from_secs(60));
        assert!(serde_json::from_str::<IssuerConfig>(
            r#"{"issuer":"https://i","audience":["a"],"grace":"10s"}"#
        )
        .is_err());
    }

    #[test]
    fn token_pair_debug_hides_tokens() {
        let pair = TokenPair {
            access_token: "eyJhbGciOiJIUzI1NiJ9.access.sig".into(),
            refresh_token: "eyJhbGciOiJIUzI1NiJ9.refresh.sig".into(),
            token_type: "Bearer",
            expires_in: 900,
            refresh_expires_in: 1000,
        };
        let shown = format!("{pair:?}");
        assert!(!shown.contains("eyJ"), "{shown}");
        assert!(shown.contains("[redacted]"));
    }
}
