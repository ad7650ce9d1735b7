//! Keys pinned to one algorithm, and the keyset that names them by `kid`.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::jwk::{AlgorithmParameters, CommonParameters, EllipticCurve, Jwk, PublicKeyUse};
use jsonwebtoken::{DecodingKey, EncodingKey};
use serde_json::Value;

use super::{Algorithm, AuthError};

/// RSA moduli outside this range are refused: below 2048 bits is weak
/// (RFC 7518 §3.3), above 4096 the RSA backend cannot verify.
const RSA_BITS: std::ops::RangeInclusive<usize> = 2048..=4096;

/// One key, pinned to one [`Algorithm`] and named by a `kid`.
///
/// The algorithm is part of the key, never read from a token, which is what
/// makes algorithm-confusion attacks impossible: a token claiming `HS256`
/// under an RSA key's `kid` is refused before any signature check. A key
/// built from a private key or an HMAC secret can sign; one built from a
/// public key or public JWK only verifies.
///
/// `Debug` never shows key material:
///
/// ```
/// use polyrelay::auth::{Algorithm, Key};
/// let key = Key::hmac("k1", Algorithm::HS256, b"an HMAC secret of 32 bytes or more").unwrap();
/// assert_eq!(format!("{key:?}"), r#"Key { kid: "k1", alg: HS256, can_sign: true, material: "[redacted]" }"#);
/// ```
///
/// Cloning copies the key (bindings hand one key to several keysets).
#[derive(Clone)]
pub struct Key {
    kid: String,
    alg: Algorithm,
    pub(super) decoding: DecodingKey,
    pub(super) encoding: Option<EncodingKey>,
    /// The public JWK of an asymmetric key, for [`Keyset::public_jwks`].
    public_jwk: Option<Jwk>,
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Key")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .field("can_sign", &self.can_sign())
            .field("material", &"[redacted]")
            .finish()
    }
}

impl Key {
    /// An HMAC key from a raw secret. Secrets shorter than the digest
    /// (HS256 32 bytes, HS384 48, HS512 64) are refused, as RFC 7518 §3.2
    /// requires.
    pub fn hmac(kid: impl Into<String>, alg: Algorithm, secret: &[u8]) -> Result<Self, AuthError> {
        let kid = checked_kid(kid.into())?;
        let Some(min) = alg.min_secret_len() else {
            return Err(AuthError::Config(
                "a raw secret needs HS256, HS384 or HS512",
            ));
        };
        if secret.len() < min {
            return Err(AuthError::Config("HMAC secret shorter than the digest"));
        }
        Ok(Self {
            kid,
            alg,
            decoding: DecodingKey::from_secret(secret),
            encoding: Some(EncodingKey::from_secret(secret)),
            public_jwk: None,
        })
    }

    /// A signing key from a PKCS#8 private key PEM (`BEGIN PRIVATE KEY`; RSA
    /// also as PKCS#1 `BEGIN RSA PRIVATE KEY`). Its public half verifies.
    pub fn from_private_pem(
        kid: impl Into<String>,
        alg: Algorithm,
        pem: &[u8],
    ) -> Result<Self, AuthError> {
        const NOT_PRIVATE: AuthError = AuthError::Config("not a private key for this algorithm");
        let kid = checked_kid(kid.into())?;
        let encoding = match alg {
            Algorithm::RS256 => EncodingKey::from_rsa_pem(pem),
            Algorithm::ES256 => EncodingKey::from_ec_pem(pem),
            Algorithm::EdDSA => EncodingKey::from_ed_pem(pem),
            _ => return Err(PEM_NEEDS_ASYMMETRIC),
        }
        .map_err(|_| NOT_PRIVATE)?;
        let jwk = Jwk::from_encoding_key(&encoding, alg.jwt()).map_err(|_| NOT_PRIVATE)?;
        Self::asymmetric(kid, alg, jwk.algorithm, Some(encoding))
    }

    /// A verification-only key from a public key PEM (`BEGIN PUBLIC KEY`;
    /// RSA also as `BEGIN RSA PUBLIC KEY`).
    pub fn from_public_pem(
        kid: impl Into<String>,
        alg: Algorithm,
        pem: &[u8],
    ) -> Result<Self, AuthError> {
        const NOT_PUBLIC: AuthError = AuthError::Config("not a public key for this algorithm");
        let kid = checked_kid(kid.into())?;
        let decoding = match alg {
            Algorithm::RS256 => DecodingKey::from_rsa_pem(pem),
            Algorithm::ES256 => DecodingKey::from_ec_pem(pem),
            Algorithm::EdDSA => DecodingKey::from_ed_pem(pem),
            _ => return Err(PEM_NEEDS_ASYMMETRIC),
        }
        .map_err(|_| NOT_PUBLIC)?;
        let jwk = Jwk::from_decoding_key(&decoding, Some(alg.jwt())).map_err(|_| NOT_PUBLIC)?;
        Self::asymmetric(kid, alg, jwk.algorithm, None)
    }

    /// A key from one JWK (RFC 7517) as JSON. The `kid` comes from the JWK.
    /// The algorithm is the JWK's `alg` or `alg` given here; when both are
    /// present they must agree. An `oct` JWK signs and verifies; RSA, EC and
    /// OKP JWKs only verify (private members are ignored). A JWK whose `use`
    /// is not `sig` is refused.
    pub fn from_jwk(jwk: &str, alg: Option<Algorithm>) -> Result<Self, AuthError> {
        let jwk: Jwk = serde_json::from_str(jwk).map_err(|_| AuthError::Config("not a JWK"))?;
        Self::from_parsed_jwk(jwk, alg)
    }

    fn from_parsed_jwk(jwk: Jwk, alg: Option<Algorithm>) -> Result<Self, AuthError> {
        let Jwk { common, algorithm } = jwk;
        let kid = checked_kid(common.key_id.ok_or(AuthError::Config("JWK has no kid"))?)?;
        let declared = match common.key_algorithm {
            Some(declared) => Some(
                Algorithm::from_name(&declared.to_string())
                    .ok_or(AuthError::Config("unsupported algorithm"))?,
            ),
            None => None,
        };
        let alg = match (declared, alg) {
            (Some(declared), Some(given)) if declared != given => {
                return Err(AuthError::Config("JWK alg differs from the configured one"))
            }
            (Some(alg), _) | (None, Some(alg)) => alg,
            (None, None) => return Err(AuthError::Config("JWK has no alg and none was given")),
        };
        if common
            .public_key_use
            .is_some_and(|usage| usage != PublicKeyUse::Signature)
        {
            return Err(AuthError::Config("JWK is not for signatures"));
        }
        match algorithm {
            AlgorithmParameters::OctetKey(params) => {
                let secret = URL_SAFE_NO_PAD
                    .decode(params.value.as_bytes())
                    .map_err(|_| AuthError::Config("JWK k is not base64url"))?;
                Self::hmac(kid, alg, &secret)
            }
            params => Self::asymmetric(kid, alg, params, None),
        }
    }

    /// Checks public parameters against `alg`, builds the decoding key from
    /// them (one path for PEM and JWK) and probes that the backend accepts it.
    fn asymmetric(
        kid: String,
        alg: Algorithm,
        params: AlgorithmParameters,
        encoding: Option<EncodingKey>,
    ) -> Result<Self, AuthError> {
        match (&params, alg) {
            (AlgorithmParameters::RSA(rsa), Algorithm::RS256) => {
                let modulus = URL_SAFE_NO_PAD
                    .decode(rsa.n.as_bytes())
                    .map_err(|_| AuthError::Config("RSA modulus is not base64url"))?;
                if !RSA_BITS.contains(&bit_length(&modulus)) {
                    return Err(AuthError::Config("RSA modulus must be 2048 to 4096 bits"));
                }
            }
            (AlgorithmParameters::EllipticCurve(ec), Algorithm::ES256) => {
                if ec.curve != EllipticCurve::P256 {
                    return Err(AuthError::Config("ES256 needs a P-256 key"));
                }
            }
            (AlgorithmParameters::OctetKeyPair(okp), Algorithm::EdDSA) => {
                let x = URL_SAFE_NO_PAD.decode(okp.x.as_bytes()).unwrap_or_default();
                if okp.curve != EllipticCurve::Ed25519 || x.len() != 32 {
                    return Err(AuthError::Config("EdDSA needs an Ed25519 key"));
                }
            }
            _ => return Err(AuthError::Config("key type does not match the algorithm")),
        }
        let public_jwk = Jwk {
            common: CommonParameters {
                public_key_use: Some(PublicKeyUse::Signature),
                key_algorithm: Some(alg.jwt().into()),
                key_id: Some(kid.clone()),
                ..CommonParameters::default()
            },
            algorithm: params,
        };
        let decoding = DecodingKey::from_jwk(&public_jwk)
            .map_err(|_| AuthError::Config("key unusable for this algorithm"))?;
        // Builds the backend's verifier once (it parses EC and Ed points) and
        // checks a dummy signature: an error here means the key is unusable.
        if jsonwebtoken::crypto::verify("AA", b"probe", &decoding, alg.jwt()).is_err() {
            return Err(AuthError::Config("key unusable for this algorithm"));
        }
        Ok(Self {
            kid,
            alg,
            decoding,
            encoding,
            public_jwk: Some(public_jwk),
        })
    }

    /// The key id tokens name this key by.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The one algorithm this key signs and verifies with.
    pub fn alg(&self) -> Algorithm {
        self.alg
    }

    /// Whether this key can sign (a private key or an HMAC secret).
    pub fn can_sign(&self) -> bool {
        self.encoding.is_some()
    }
}

const PEM_NEEDS_ASYMMETRIC: AuthError =
    AuthError::Config("PEM keys are for RS256, ES256 and EdDSA");

fn checked_kid(kid: String) -> Result<String, AuthError> {
    if kid.is_empty() {
        return Err(AuthError::Config("kid must not be empty"));
    }
    Ok(kid)
}

fn bit_length(big_endian: &[u8]) -> usize {
    match big_endian.iter().position(|&byte| byte != 0) {
        Some(first) => (big_endian.len() - first) * 8 - big_endian[first].leading_zeros() as usize,
        None => 0,
    }
}

/// Keys by `kid`: several verify, at most one signs.
///
/// Rotation: insert the new key (and publish it, see
/// [`Keyset::public_jwks`]), switch signing to it with
/// [`Keyset::sign_with`], and [`Keyset::remove`] the old key once the last
/// token it signed has expired. Cloning is cheap (keys are shared).
///
/// A token's `kid` is only ever a lookup key into this in-memory map: never a
/// path, URL or query. A token without `kid` is accepted only while the set
/// holds exactly one key.
#[derive(Clone, Default)]
pub struct Keyset {
    keys: HashMap<String, Arc<Key>>,
    signing: Option<Arc<Key>>,
}

impl fmt::Debug for Keyset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keyset")
            .field("kids", &self.kids())
            .field("signing", &self.signing.as_ref().map(|key| key.kid()))
            .finish()
    }
}

impl Keyset {
    /// An empty keyset.
    pub fn new() -> Self {
        Self::default()
    }

    /// Verification keys from a JWKS document (`{"keys": [...]}`), each
    /// with its own `kid` and `alg`. Any key that is not acceptable fails
    /// the whole set, so a misconfiguration is seen at start-up.
    pub fn from_jwks(jwks: &str) -> Result<Self, AuthError> {
        #[derive(serde::Deserialize)]
        struct Document {
            keys: Vec<Value>,
        }
        let document: Document =
            serde_json::from_str(jwks).map_err(|_| AuthError::Config("not a JWKS document"))?;
        let mut set = Self::new();
        for jwk in document.keys {
            let jwk: Jwk =
                serde_json::from_value(jwk).map_err(|_| AuthError::Config("not a JWK"))?;
            set.insert(Key::from_parsed_jwk(jwk, None)?)?;
        }
        Ok(set)
    }

    /// Adds a key for verification. A `kid` already present is refused.
    pub fn insert(&mut self, key: Key) -> Result<(), AuthError> {
        if self.keys.contains_key(key.kid()) {
            return Err(AuthError::Config("duplicate kid"));
        }
        self.keys.insert(key.kid.clone(), Arc::new(key));
        Ok(())
    }

    /// Makes the key `kid` (already inserted, able to sign) the signing key.
    pub fn sign_with(&mut self, kid: &str) -> Result<(), AuthError> {
        let key = self
            .keys
            .get(kid)
            .ok_or(AuthError::Config("signing kid is not in the keyset"))?;
        if !key.can_sign() {
            return Err(AuthError::Config("signing key has no private part"));
        }
        self.signing = Some(Arc::clone(key));
        Ok(())
    }

    /// Retires a key; tokens naming it stop verifying. Removing the signing
    /// key leaves the set without one. Returns whether the key was present.
    pub fn remove(&mut self, kid: &str) -> bool {
        if self.signing.as_ref().is_some_and(|key| key.kid() == kid) {
            self.signing = None;
        }
        self.keys.remove(kid).is_some()
    }

    /// The key named `kid`.
    pub fn get(&self, kid: &str) -> Option<&Key> {
        self.keys.get(kid).map(|key| key.as_ref())
    }

    /// The key new tokens are signed with.
    pub fn signing_key(&self) -> Option<&Key> {
        self.signing.as_deref()
    }

    /// The key ids, sorted.
    pub fn kids(&self) -> Vec<&str> {
        let mut kids: Vec<&str> = self.keys.keys().map(String::as_str).collect();
        kids.sort_unstable();
        kids
    }

    /// How many keys the set holds.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether the set holds no key.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The public JWKS (`{"keys": [...]}`) of the asymmetric keys, sorted by
    /// `kid`, to serve at a `jwks_uri` so others can verify our tokens. HMAC
    /// secrets are never included.
    pub fn public_jwks(&self) -> Value {
        let mut keys: Vec<&Key> = self.keys.values().map(|key| key.as_ref()).collect();
        keys.sort_unstable_by(|a, b| a.kid.cmp(&b.kid));
        let keys: Vec<Value> = keys
            .into_iter()
            .filter_map(|key| key.public_jwk.as_ref())
            .filter_map(|jwk| serde_json::to_value(jwk).ok())
            .collect();
        serde_json::json!({ "keys": keys })
    }

    /// The key a token's `kid` selects.
    pub(super) fn select(&self, kid: Option<&str>) -> Result<&Key, AuthError> {
        match kid {
            Some(kid) => self.get(kid).ok_or(AuthError::UnknownKey),
            None if self.keys.len() == 1 => self
                .keys
                .values()
                .next()
                .map(|key| key.as_ref())
                .ok_or(AuthError::UnknownKey),
            None => Err(AuthError::UnknownKey),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_secrets_shorter_than_the_digest_are_refused() {
        for (alg, min) in [
            (Algorithm::HS256, 32),
            (Algorithm::HS384, 48),
            (Algorithm::HS512, 64),
        ] {
            let short = Key::hmac("k", alg, &vec![1u8; min - 1]).unwrap_err();
            assert_eq!(
                short,
                AuthError::Config("HMAC secret shorter than the digest")
            );
            assert!(Key::hmac("k", alg, &vec![1u8; min]).unwrap().can_sign());
        }
        assert_eq!(
            Key::hmac("k", Algorithm::RS256, &[1u8; 64])
                .unwrap_err()
                .as_str(),
            "config"
        );
        assert_eq!(
            Key::hmac("", Algorithm::HS256, &[1u8; 32]).unwrap_err(),
            AuthError::Config("kid must not be empty")
        );
    }

    #[test]
    fn debug_output_never_shows_the_secret() {
        let secret = b"correct horse battery staple!!!!";
        let key = Key::hmac("k1", Algorithm::HS256, secret).unwrap();
        let mut keys = Keyset::new();
        keys.insert(key).unwrap();
        keys.sign_with("k1").unwrap();
        let shown = format!("{:?} {:?} {:#?}", keys.get("k1").unwrap(), keys, keys);
        let encodings = [
            String::from_utf8_lossy(secret).into_owned(),
            URL_SAFE_NO_PAD.encode(secret),
            base64::engine::general_purpose::STANDARD.encode(secret),
            hex::encode(secret),
            format!("{:?}", &secret[..8]),
            "horse".to_owned(),
        ];
        for encoded in encodings {
            assert!(!shown.contains(&encoded), "{shown} leaks {encoded}");
        }
        assert!(shown.contains("[redacted]"));
    }

    #[test]
    fn keyset_selects_by_kid_and_rotates() {
        let mut keys = Keyset::new();
        keys.insert(Key::hmac("a", Algorithm::HS256, &[1; 32]).unwrap())
            .unwrap();
        assert_eq!(keys.select(None).unwrap().kid(), "a");
        keys.insert(Key::hmac("b", Algorithm::HS512, &[2; 64]).unwrap())
            .unwrap();
        assert_eq!(keys.select(None).unwrap_err(), AuthError::UnknownKey);
        assert_eq!(keys.select(Some("b")).unwrap().alg(), Algorithm::HS512);
        assert_eq!(
            keys.select(Some("../../../../dev/null")).unwrap_err(),
            AuthError::UnknownKey
        );
        assert_eq!(
            keys.insert(Key::hmac("a", Algorithm::HS256, &[3; 32]).unwrap())
                .unwrap_err(),
            AuthError::Config("duplicate kid")
        );
        keys.sign_with("a").unwrap();
        keys.sign_with("b").unwrap();
        assert_eq!(keys.signing_key().unwrap().kid(), "b");
        assert_eq!(keys.kids(), ["a", "b"]);
        // A clone is the same key: it verifies in another set.
        let mut copy = Keyset::new();
        copy.insert(keys.get("a").unwrap().clone()).unwrap();
        assert_eq!(copy.select(None).unwrap().kid(), "a");
        assert!(keys.remove("b"));
        assert!(keys.signing_key().is_none());
        assert_eq!(keys.len(), 1);
        assert!(keys.sign_with("missing").is_err());
        // HMAC secrets never appear in the public JWKS.
        assert_eq!(keys.public_jwks(), serde_json::json!({"keys": []}));
    }

    #[test]
    fn jwk_alg_must_agree_and_use_must_be_sig() {
        let oct = r#"{"kty":"oct","kid":"o","alg":"HS256","k":"AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow"}"#;
        assert!(Key::from_jwk(oct, None).unwrap().can_sign());
        assert!(Key::from_jwk(oct, Some(Algorithm::HS256)).is_ok());
        assert_eq!(
            Key::from_jwk(oct, Some(Algorithm::HS512)).unwrap_err(),
            AuthError::Config("JWK alg differs from the configured one")
        );
        let no_alg = r#"{"kty":"oct","kid":"o","k":"AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow"}"#;
        assert_eq!(Key::from_jwk(no_alg, None).unwrap_err().as_str(), "config");
        let enc = r#"{"kty":"oct","kid":"o","alg":"HS256","use":"enc","k":"AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow"}"#;
        assert_eq!(
            Key::from_jwk(enc, None).unwrap_err(),
            AuthError::Config("JWK is not for signatures")
        );
        let short = r#"{"kty":"oct","kid":"o","alg":"HS256","k":"c2hvcnQ"}"#;
        assert_eq!(
            Key::from_jwk(short, None).unwrap_err(),
            AuthError::Config("HMAC secret shorter than the digest")
        );
        let bad_ed = r#"{"kty":"OKP","crv":"Ed25519","kid":"e","alg":"EdDSA","x":"AAAA"}"#;
        assert_eq!(
            Key::from_jwk(bad_ed, None).unwrap_err(),
            AuthError::Config("EdDSA needs an Ed25519 key")
        );
        let rsa_as_ec = r#"{"kty":"RSA","kid":"r","alg":"ES256","n":"AQAB","e":"AQAB"}"#;
        assert_eq!(
            Key::from_jwk(rsa_as_ec, None).unwrap_err(),
            AuthError::Config("key type does not match the algorithm")
        );
        let weak_rsa = r#"{"kty":"RSA","kid":"r","alg":"RS256","n":"AQAB","e":"AQAB"}"#;
        assert_eq!(
            Key::from_jwk(weak_rsa, None).unwrap_err(),
            AuthError::Config("RSA modulus must be 2048 to 4096 bits")
        );
    }

    #[test]
    fn bit_length_ignores_leading_zero_bytes() {
        assert_eq!(bit_length(&[0, 0, 1]), 1);
        assert_eq!(bit_length(&[0x80, 0]), 16);
        assert_eq!(bit_length(&[]), 0);
    }
}
