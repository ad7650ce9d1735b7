//! Strict, stateless token verification on the injected clock.

use std::sync::Arc;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::errors::ErrorKind;
use parking_lot::RwLock;
use serde_json::{Map, Value};

use super::{Algorithm, AuthError, Claims, Keyset};
use crate::clock::SharedClock;

/// Tokens longer than this are refused before any decoding, so a huge header
/// cannot cost memory or time.
const MAX_TOKEN_LEN: usize = 16 * 1024;

/// What a [`Verifier`] requires of a token beyond a good signature.
///
/// Defaults: no issuer or audience configured, 60 s leeway (jsonwebtoken's
/// default; note that PyJWT's is 0), no `typ` check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyOptions {
    /// The exact `iss` required; `None` skips the check (and then `iss` may
    /// be absent).
    pub issuer: Option<String>,
    /// The audiences we answer to. When non-empty, `aud` is required and one
    /// of its values must equal one of these exactly. When empty, a token
    /// that carries an `aud` at all is refused (RFC 7519 §4.1.3).
    pub audience: Vec<String>,
    /// Clock skew tolerated on `exp`, `nbf` and `iat`.
    pub leeway: Duration,
    /// The header `typ` required (RFC 8725 §3.11 explicit typing, e.g.
    /// `"at+jwt"`), compared case-insensitively with an optional
    /// `application/` prefix; `None` skips the check.
    pub typ: Option<String>,
}

impl Default for VerifyOptions {
    fn default() -> Self {
        Self {
            issuer: None,
            audience: Vec::new(),
            leeway: Duration::from_secs(60),
            typ: None,
        }
    }
}

/// Verifies tokens against a [`Keyset`], strictly.
///
/// In order: the compact form (three base64url segments, at most 16 KiB);
/// the header (`alg` must name a supported algorithm, so every spelling of
/// `none` fails; any `crit` is refused since no extension is understood;
/// `typ` when configured); the key (`kid` looks up the in-memory keyset,
/// nothing else; `jku`, `x5u`, `x5c` and an embedded `jwk` are never read);
/// the algorithm (must equal the key's pinned one); the signature; then the
/// claims: `exp` required, `iss`/`aud` exact, `exp`/`nbf`/`iat` JSON numbers
/// and `iss`/`sub`/`jti` strings, and the times against the injected clock:
/// expired once `now >= exp + leeway`, not yet valid while
/// `now + leeway < nbf` or `now + leeway < iat`. Numbers may have a fraction
/// (RFC 7519 NumericDate allows it).
///
/// Verification is synchronous and needs no store; revocation is checked by
/// [`super::TokenIssuer::verify_access`].
#[derive(Debug)]
pub struct Verifier {
    keyset: RwLock<Arc<Keyset>>,
    options: VerifyOptions,
    /// jsonwebtoken's settings per [`Algorithm`], built once.
    validations: Vec<jsonwebtoken::Validation>,
    clock: SharedClock,
}

impl Verifier {
    /// A verifier of tokens signed by `keyset`'s keys.
    pub fn new(keyset: Keyset, options: VerifyOptions, clock: SharedClock) -> Self {
        let validations = Algorithm::ALL
            .iter()
            .map(|&alg| validation(alg, &options))
            .collect();
        Self {
            keyset: RwLock::new(Arc::new(keyset)),
            options,
            validations,
            clock,
        }
    }

    /// Verifies `token` and returns its claims.
    pub fn verify(&self, token: &str) -> Result<Claims, AuthError> {
        self.verify_typed(token, self.options.typ.as_deref())
    }

    /// The keys in use.
    pub fn keyset(&self) -> Arc<Keyset> {
        Arc::clone(&self.keyset.read())
    }

    /// Swaps in a new keyset (key rotation); verifications already running
    /// finish with the old one.
    pub fn replace_keyset(&self, keyset: Keyset) {
        *self.keyset.write() = Arc::new(keyset);
    }

    /// The options this verifier enforces.
    pub fn options(&self) -> &VerifyOptions {
        &self.options
    }

    pub(super) fn clock(&self) -> &SharedClock {
        &self.clock
    }

    /// [`Verifier::verify`] with an explicit `typ` requirement.
    pub(super) fn verify_typed(&self, token: &str, typ: Option<&str>) -> Result<Claims, AuthError> {
        let header = Header::parse(token)?;
        if header.crit {
            return Err(AuthError::BadClaim("crit"));
        }
        if let Some(expected) = typ {
            if !header
                .typ
                .as_deref()
                .is_some_and(|got| typ_matches(got, expected))
            {
                return Err(AuthError::BadClaim("typ"));
            }
        }
        let keyset = self.keyset();
        let key = keyset.select(header.kid.as_deref())?;
        if header.alg != key.alg() {
            return Err(AuthError::BadAlgorithm);
        }
        let decoded = jsonwebtoken::decode::<Map<String, Value>>(
            token,
            &key.decoding,
            &self.validations[key.alg().index()],
        )
        .map_err(map_jwt_error)?;
        let claims = decoded.claims;
        check_claim_types(&claims)?;
        check_times(&claims, now_secs(&self.clock), self.options.leeway)?;
        Ok(Claims::from_map(claims))
    }
}

/// jsonwebtoken's part: signature, `exp` presence, `iss` and `aud`. Its own
/// time checks are off because it reads the system clock.
fn validation(alg: Algorithm, options: &VerifyOptions) -> jsonwebtoken::Validation {
    let mut validation = jsonwebtoken::Validation::new(alg.jwt());
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.leeway = 0;
    let mut required = vec!["exp"];
    if let Some(issuer) = &options.issuer {
        validation.set_issuer(&[issuer]);
        required.push("iss");
    }
    if !options.audience.is_empty() {
        validation.set_audience(&options.audience);
        required.push("aud");
    }
    validation.set_required_spec_claims(&required);
    validation
}

/// The header fields verification looks at, parsed by polyrelay before the
/// key is chosen.
struct Header {
    alg: Algorithm,
    kid: Option<String>,
    typ: Option<String>,
    crit: bool,
}

impl Header {
    fn parse(token: &str) -> Result<Self, AuthError> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(AuthError::Malformed);
        }
        let mut segments = token.split('.');
        let (Some(header), Some(_payload), Some(_signature), None) = (
            segments.next(),
            segments.next(),
            segments.next(),
            segments.next(),
        ) else {
            return Err(AuthError::Malformed);
        };
        let json = URL_SAFE_NO_PAD
            .decode(header)
            .map_err(|_| AuthError::Malformed)?;
        let header: Map<String, Value> =
            serde_json::from_slice(&json).map_err(|_| AuthError::Malformed)?;
        let alg = header
            .get("alg")
            .and_then(Value::as_str)
            .and_then(Algorithm::from_name)
            .ok_or(AuthError::BadAlgorithm)?;
        Ok(Self {
            alg,
            kid: optional_string(&header, "kid").map_err(|_| AuthError::Malformed)?,
            typ: optional_string(&header, "typ").map_err(|_| AuthError::BadClaim("typ"))?,
            crit: header.contains_key("crit"),
        })
    }
}

fn optional_string(map: &Map<String, Value>, name: &str) -> Result<Option<String>, ()> {
    match map.get(name) {
        None => Ok(None),
        Some(Value::String(value)) => Ok(Some(value.clone())),
        Some(_) => Err(()),
    }
}

/// Media types compare case-insensitively, and `application/` may be
/// omitted (RFC 7515 §4.1.9).
fn typ_matches(got: &str, expected: &str) -> bool {
    fn bare(typ: &str) -> &str {
        match typ.get(..12) {
            Some(prefix) if prefix.eq_ignore_ascii_case("application/") => &typ[12..],
            _ => typ,
        }
    }
    bare(got).eq_ignore_ascii_case(bare(expected))
}

fn map_jwt_error(error: jsonwebtoken::errors::Error) -> AuthError {
    match error.kind() {
        // Keys are checked at configuration, so a key error here comes from
        // the token's signature bytes: the signature does not verify.
        ErrorKind::InvalidSignature
        | ErrorKind::InvalidEcdsaKey
        | ErrorKind::InvalidEddsaKey
        | ErrorKind::InvalidRsaKey(_)
        | ErrorKind::InvalidKeyFormat => AuthError::BadSignature,
        ErrorKind::InvalidAlgorithm
        | ErrorKind::MissingAlgorithm
        | ErrorKind::UnsupportedAlgorithm
        | ErrorKind::InvalidAlgorithmName => AuthError::BadAlgorithm,
        ErrorKind::MissingRequiredClaim(name) | ErrorKind::InvalidClaimFormat(name) => {
            AuthError::BadClaim(claim_name(name))
        }
        ErrorKind::InvalidIssuer => AuthError::BadClaim("iss"),
        ErrorKind::InvalidAudience => AuthError::BadClaim("aud"),
        ErrorKind::InvalidSubject => AuthError::BadClaim("sub"),
        ErrorKind::ExpiredSignature => AuthError::Expired,
        ErrorKind::ImmatureSignature => AuthError::NotYetValid,
        _ => AuthError::Malformed,
    }
}

/// A claim name from jsonwebtoken, as one of our fixed names.
fn claim_name(name: &str) -> &'static str {
    ["exp", "nbf", "iss", "aud", "sub"]
        .into_iter()
        .find(|&known| known == name)
        .unwrap_or("claims")
}

/// Strict JSON types for registered claims: jsonwebtoken only types `exp`
/// and `nbf` when its own time checks run, and ours replace them.
fn check_claim_types(claims: &Map<String, Value>) -> Result<(), AuthError> {
    for name in ["exp", "nbf", "iat"] {
        if claims.get(name).is_some_and(|value| !value.is_number()) {
            return Err(AuthError::BadClaim(name));
        }
    }
    for name in ["iss", "sub", "jti"] {
        if claims.get(name).is_some_and(|value| !value.is_string()) {
            return Err(AuthError::BadClaim(name));
        }
    }
    match claims.get("aud") {
        None | Some(Value::String(_)) => Ok(()),
        Some(Value::Array(values)) if values.iter().all(Value::is_string) => Ok(()),
        Some(_) => Err(AuthError::BadClaim("aud")),
    }
}

fn check_times(claims: &Map<String, Value>, now: f64, leeway: Duration) -> Result<(), AuthError> {
    let leeway = leeway.as_secs_f64();
    let time = |name| claims.get(name).and_then(Value::as_f64);
    let exp = time("exp").ok_or(AuthError::BadClaim("exp"))?;
    if now >= exp + leeway {
        return Err(AuthError::Expired);
    }
    if time("nbf").is_some_and(|nbf| now + leeway < nbf) {
        return Err(AuthError::NotYetValid);
    }
    if time("iat").is_some_and(|iat| now + leeway < iat) {
        return Err(AuthError::NotYetValid);
    }
    Ok(())
}

/// Wall-clock seconds since the epoch, from the injected clock.
pub(super) fn now_secs(clock: &SharedClock) -> f64 {
    let wall = clock.wall();
    wall.timestamp() as f64 + f64::from(wall.timestamp_subsec_nanos()) * 1e-9
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typ_compares_media_types_loosely() {
        assert!(typ_matches("at+jwt", "at+jwt"));
        assert!(typ_matches("application/AT+JWT", "at+jwt"));
        assert!(typ_matches("at+jwt", "Application/at+jwt"));
        assert!(!typ_matches("JWT", "at+jwt"));
        assert!(!typ_matches("application/", "at+jwt"));
    }

    #[test]
    fn time_checks_use_leeway_at_the_boundaries() {
        let leeway = Duration::from_secs(60);
        let claims = |json: Value| json.as_object().cloned().unwrap();
        let now = 1_000_000.0;
        let at = |exp: f64| check_times(&claims(serde_json::json!({ "exp": exp })), now, leeway);
        assert_eq!(at(now - 61.0), Err(AuthError::Expired));
        assert_eq!(at(now - 60.0), Err(AuthError::Expired));
        assert_eq!(at(now - 59.5), Ok(()));
        let nbf = |nbf: f64| {
            check_times(
                &claims(serde_json::json!({ "exp": now + 100.0, "nbf": nbf })),
                now,
                leeway,
            )
        };
        assert_eq!(nbf(now + 60.0), Ok(()));
        assert_eq!(nbf(now + 60.5), Err(AuthError::NotYetValid));
    }

    #[test]
    fn claim_types_are_strict() {
        let check = |json: Value| check_claim_types(json.as_object().unwrap());
        assert_eq!(
            check(serde_json::json!({"exp": 1.5, "nbf": 1, "iat": 2})),
            Ok(())
        );
        for bad in [
            serde_json::json!("99999999999"),
            serde_json::json!(true),
            serde_json::json!(null),
            serde_json::json!([1]),
        ] {
            assert_eq!(
                check(serde_json::json!({ "iat": bad })),
                Err(AuthError::BadClaim("iat"))
            );
        }
        assert_eq!(
            check(serde_json::json!({"iss": ["a"]})),
            Err(AuthError::BadClaim("iss"))
        );
        assert_eq!(
            check(serde_json::json!({"aud": ["a", 1]})),
            Err(AuthError::BadClaim("aud"))
        );
        assert_eq!(check(serde_json::json!({"aud": ["a", "b"]})), Ok(()));
    }
}
