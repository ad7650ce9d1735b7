//! JWT access and refresh tokens through the public `polyrelay::auth` API:
//! the RFC 7515 A.1 vector, tokens minted by PyJWT, the known attacks on JWT
//! verification (`alg: none`, key confusion, injected `kid`, embedded keys,
//! `crit`, weak keys, …), and refresh rotation with reuse detection.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, Utc};
use polyrelay::auth::{
    Algorithm, AuthError, InMemoryTokenStore, IssuerConfig, Key, Keyset, RefreshOutcome,
    RefreshUse, RevocationFailMode, StoreUnavailable, TokenIssuer, TokenStore, Verifier,
    VerifyOptions,
};
use polyrelay::clock::{FakeClock, SharedClock, SystemClock};
use polyrelay::internal::state::{ready, StateFuture};
use serde_json::{json, Map, Value};

const ISSUER: &str = "https://issuer.example";
const AUDIENCE: &str = "polyrelay-api";
const HS256_SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";
/// 2025-01-01T00:00:00Z, the `iat` of the PyJWT fixtures.
const EPOCH: i64 = 1_735_689_600;

fn clock() -> FakeClock {
    FakeClock::new(DateTime::<Utc>::from_timestamp(EPOCH, 0).unwrap())
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A compact JWS over any header and payload JSON, signed by `key` with
/// `alg`: how an attacker (or another implementation) builds tokens.
fn forge(
    header: &Value,
    claims: &Value,
    key: &jsonwebtoken::EncodingKey,
    alg: jsonwebtoken::Algorithm,
) -> String {
    let message = format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
    );
    let signature = jsonwebtoken::crypto::sign(message.as_bytes(), key, alg).unwrap();
    format!("{message}.{signature}")
}

fn hs256(header: &Value, claims: &Value, secret: &[u8]) -> String {
    forge(
        header,
        claims,
        &jsonwebtoken::EncodingKey::from_secret(secret),
        jsonwebtoken::Algorithm::HS256,
    )
}

/// Good claims at the fake clock's epoch, valid for an hour.
fn good_claims() -> Value {
    json!({"iss": ISSUER, "aud": AUDIENCE, "sub": "user-42", "iat": EPOCH, "exp": EPOCH + 3600})
}

fn good_header() -> Value {
    json!({"alg": "HS256", "typ": "JWT", "kid": "hs256"})
}

fn with(mut value: Value, field: &str, new: Value) -> Value {
    value[field] = new;
    value
}

fn without(mut value: Value, field: &str) -> Value {
    value.as_object_mut().unwrap().remove(field);
    value
}

fn strict_options() -> VerifyOptions {
    VerifyOptions {
        issuer: Some(ISSUER.into()),
        audience: vec![AUDIENCE.into()],
        ..VerifyOptions::default()
    }
}

/// Every algorithm's key as PyJWT's fixtures used them, verify-only for the
/// asymmetric ones.
fn pyjwt_keyset() -> Keyset {
    let mut keys = Keyset::new();
    keys.insert(Key::hmac("hs256", Algorithm::HS256, HS256_SECRET).unwrap())
        .unwrap();
    keys.insert(Key::hmac("hs384", Algorithm::HS384, &HS256_SECRET.repeat(2)[..48]).unwrap())
        .unwrap();
    keys.insert(Key::hmac("hs512", Algorithm::HS512, &HS256_SECRET.repeat(2)).unwrap())
        .unwrap();
    keys.insert(Key::from_public_pem("rsa", Algorithm::RS256, RSA_PUBLIC_PEM.as_bytes()).unwrap())
        .unwrap();
    keys.insert(Key::from_public_pem("ec", Algorithm::ES256, EC_PUBLIC_PEM.as_bytes()).unwrap())
        .unwrap();
    keys.insert(Key::from_public_pem("ed", Algorithm::EdDSA, ED_PUBLIC_PEM.as_bytes()).unwrap())
        .unwrap();
    keys
}

fn strict_verifier(clock: &FakeClock) -> Verifier {
    Verifier::new(pyjwt_keyset(), strict_options(), clock.shared())
}

// ---------------------------------------------------------------------------
// 41. RFC 7515 Appendix A.1

const RFC7515_A1: &str = "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9.eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ.dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const RFC7515_A1_JWK: &str = r#"{"kty":"oct","kid":"rfc7515-a1","alg":"HS256","k":"AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow"}"#;

fn rfc_keyset() -> Keyset {
    let mut keys = Keyset::new();
    keys.insert(Key::from_jwk(RFC7515_A1_JWK, None).unwrap())
        .unwrap();
    keys
}

#[test]
fn rfc7515_a1_verifies_on_a_clock_frozen_before_exp() {
    let frozen = FakeClock::new("2011-03-22T18:00:00Z".parse().unwrap());
    let verifier = Verifier::new(rfc_keyset(), VerifyOptions::default(), frozen.shared());
    let claims = verifier.verify(RFC7515_A1).unwrap();
    assert_eq!(claims.get("iss"), Some(&json!("joe")));
    assert_eq!(claims.expires_at(), Some(1_300_819_380.0));
    assert_eq!(claims.get("http://example.com/is_root"), Some(&json!(true)));

    // One flipped signature bit is a bad signature, not anything else.
    let tampered = RFC7515_A1.replace(".dBjf", ".eBjf");
    assert_eq!(verifier.verify(&tampered), Err(AuthError::BadSignature));
}

#[test]
fn rfc7515_a1_is_expired_at_real_time() {
    let verifier = Verifier::new(
        rfc_keyset(),
        VerifyOptions::default(),
        SystemClock::shared(),
    );
    assert_eq!(verifier.verify(RFC7515_A1), Err(AuthError::Expired));
}

#[test]
fn rfc7515_a1_fails_the_configured_issuer_and_audience() {
    let frozen = FakeClock::new("2011-03-22T18:00:00Z".parse().unwrap());
    let verifier = Verifier::new(rfc_keyset(), strict_options(), frozen.shared());
    assert_eq!(verifier.verify(RFC7515_A1), Err(AuthError::BadClaim("aud")));
}

// ---------------------------------------------------------------------------
// Tokens minted by another implementation (PyJWT)

#[test]
fn pyjwt_tokens_verify_for_every_algorithm() {
    let clock = clock();
    let verifier = strict_verifier(&clock);
    for (alg, token) in [
        ("HS256", PYJWT_HS256),
        ("HS384", PYJWT_HS384),
        ("HS512", PYJWT_HS512),
        ("RS256", PYJWT_RS256),
        ("ES256", PYJWT_ES256),
        ("EdDSA", PYJWT_EDDSA),
    ] {
        let claims = verifier
            .verify(token)
            .unwrap_or_else(|e| panic!("{alg}: {e}"));
        assert_eq!(claims.subject(), Some("user-42"), "{alg}");
        assert_eq!(claims.jti(), Some("pyjwt-1"), "{alg}");
        assert!(claims.has_scope("write"), "{alg}");
    }
}

#[test]
fn pyjwt_tokens_verify_against_pyjwt_published_jwks() {
    let clock = clock();
    let keys = Keyset::from_jwks(PYJWT_JWKS).unwrap();
    assert_eq!(keys.len(), 3);
    let verifier = Verifier::new(keys, strict_options(), clock.shared());
    for token in [PYJWT_RS256, PYJWT_ES256, PYJWT_EDDSA] {
        assert_eq!(verifier.verify(token).unwrap().subject(), Some("user-42"));
    }
    // Keys from PEM publish the same public JWKs that PyJWT derived.
    let published = pyjwt_keyset().public_jwks();
    let from_pem: Vec<(&str, &str)> = published["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|jwk| (jwk["kid"].as_str().unwrap(), jwk["alg"].as_str().unwrap()))
        .collect();
    assert_eq!(
        from_pem,
        [("ec", "ES256"), ("ed", "EdDSA"), ("rsa", "RS256")]
    );
    let pyjwt: Value = serde_json::from_str(PYJWT_JWKS).unwrap();
    for ours in published["keys"].as_array().unwrap() {
        let theirs = pyjwt["keys"]
            .as_array()
            .unwrap()
            .iter()
            .find(|jwk| jwk["kid"] == ours["kid"])
            .unwrap();
        for member in ["n", "e", "x", "y", "crv", "kty"] {
            assert_eq!(ours.get(member), theirs.get(member), "{member}");
        }
        assert!(ours.get("k").is_none() && ours.get("d").is_none());
    }
}

// ---------------------------------------------------------------------------
// 36. alg = none, in every spelling

#[test]
fn alg_none_in_any_case_is_rejected() {
    let clock = clock();
    let verifier = strict_verifier(&clock);
    let claims = good_claims();
    let payload = b64(claims.to_string().as_bytes());
    for alg in ["none", "None", "NONE", "nOnE"] {
        let header = json!({"alg": alg, "typ": "JWT", "kid": "hs256"});
        let unsigned = format!("{}.{payload}.", b64(header.to_string().as_bytes()));
        assert_eq!(
            verifier.verify(&unsigned),
            Err(AuthError::BadAlgorithm),
            "{alg}"
        );
        // ... and with a signature that is valid HMAC over the same bytes.
        let signed = hs256(&header, &claims, HS256_SECRET);
        assert_eq!(
            verifier.verify(&signed),
            Err(AuthError::BadAlgorithm),
            "{alg}"
        );
    }
    for header in [
        json!({"typ": "JWT", "kid": "hs256"}),
        json!({"alg": null, "kid": "hs256"}),
        json!({"alg": "hs256", "kid": "hs256"}),
        json!({"alg": ["HS256"], "kid": "hs256"}),
    ] {
        let token = hs256(&header, &claims, HS256_SECRET);
        assert_eq!(
            verifier.verify(&token),
            Err(AuthError::BadAlgorithm),
            "{header}"
        );
    }
    // RFC 7515 A.5, the unsecured JWS, even against a single-key set.
    let a5 = "eyJhbGciOiJub25lIn0.eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ.";
    let frozen = FakeClock::new("2011-03-22T18:00:00Z".parse().unwrap());
    let rfc = Verifier::new(rfc_keyset(), VerifyOptions::default(), frozen.shared());
    assert_eq!(rfc.verify(a5), Err(AuthError::BadAlgorithm));
}

// ---------------------------------------------------------------------------
// 37. HS/RS (and HS/EC, HS/Ed) key confusion

#[test]
fn hmac_signed_with_a_public_key_is_rejected() {
    let clock = clock();
    let verifier = strict_verifier(&clock);
    for (name, token) in [
        ("RSA PEM", CONFUSED_RSA_PEM),
        ("RSA SSH", CONFUSED_RSA_SSH),
        ("EC PEM", CONFUSED_EC_PEM),
        ("EC SSH", CONFUSED_EC_SSH),
        ("Ed PEM", CONFUSED_ED_PEM),
        ("Ed SSH", CONFUSED_ED_SSH),
    ] {
        assert_eq!(
            verifier.verify(token),
            Err(AuthError::BadAlgorithm),
            "{name}"
        );
    }
    // The attack tokens are genuine: HMAC over the public PEM does verify
    // when (wrongly) configured as a secret, which pinning makes impossible.
    let mut misconfigured = Keyset::new();
    let pem_as_secret = format!("{RSA_PUBLIC_PEM}\n");
    misconfigured
        .insert(Key::hmac("rsa", Algorithm::HS256, pem_as_secret.as_bytes()).unwrap())
        .unwrap();
    let naive = Verifier::new(misconfigured, strict_options(), clock.shared());
    assert!(naive.verify(CONFUSED_RSA_PEM).is_ok());
    // The same attack with no kid against a set holding only the RSA key.
    let mut only_rsa = Keyset::new();
    only_rsa
        .insert(Key::from_public_pem("rsa", Algorithm::RS256, RSA_PUBLIC_PEM.as_bytes()).unwrap())
        .unwrap();
    let verifier = Verifier::new(only_rsa, strict_options(), clock.shared());
    let token = hs256(
        &json!({"alg": "HS256", "typ": "JWT"}),
        &good_claims(),
        RSA_PUBLIC_PEM.as_bytes(),
    );
    assert_eq!(verifier.verify(&token), Err(AuthError::BadAlgorithm));
    // A public key can never become an HMAC key.
    assert!(Key::from_public_pem("rsa", Algorithm::HS256, RSA_PUBLIC_PEM.as_bytes()).is_err());
}

#[test]
fn psychic_ecdsa_signatures_are_rejected() {
    let clock = clock();
    let verifier = strict_verifier(&clock);
    let header = b64(json!({"alg": "ES256", "typ": "JWT", "kid": "ec"})
        .to_string()
        .as_bytes());
    let payload = b64(good_claims().to_string().as_bytes());
    for signature in [b64(&[0u8; 64]), "MAYCAQACAQA".to_owned()] {
        let token = format!("{header}.{payload}.{signature}");
        assert_eq!(
            verifier.verify(&token),
            Err(AuthError::BadSignature),
            "{signature}"
        );
    }
}

// ---------------------------------------------------------------------------
// 38. Embedded jwk, jku and x5u are never used

#[test]
fn header_keys_and_key_urls_are_ignored_and_never_fetched() {
    let clock = clock();
    let verifier = strict_verifier(&clock);
    let attacker =
        jsonwebtoken::EncodingKey::from_ec_pem(ATTACKER_EC_PRIVATE_PEM.as_bytes()).unwrap();
    let attacker_jwk: Value = serde_json::from_str(ATTACKER_EC_JWK).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let url = format!("http://{}/jwks.json", listener.local_addr().unwrap());

    let es256 = |header: Value| {
        forge(
            &header,
            &good_claims(),
            &attacker,
            jsonwebtoken::Algorithm::ES256,
        )
    };
    // Naming our key but carrying (and signed by) the attacker's key.
    let embedded = es256(json!({"alg": "ES256", "kid": "ec", "jwk": attacker_jwk}));
    assert_eq!(verifier.verify(&embedded), Err(AuthError::BadSignature));
    let embedded_no_kid = es256(json!({"alg": "ES256", "jwk": attacker_jwk}));
    assert_eq!(
        verifier.verify(&embedded_no_kid),
        Err(AuthError::UnknownKey)
    );
    for member in ["jku", "x5u"] {
        let ours = es256(json!({"alg": "ES256", "kid": "ec", member: url}));
        assert_eq!(
            verifier.verify(&ours),
            Err(AuthError::BadSignature),
            "{member}"
        );
        let theirs = es256(json!({"alg": "ES256", "kid": "attacker", member: url}));
        assert_eq!(
            verifier.verify(&theirs),
            Err(AuthError::UnknownKey),
            "{member}"
        );
    }
    // An embedded symmetric key is ignored just the same.
    let oct = json!({"kty": "oct", "k": b64(b"attacker secret of thirty-two b!")});
    let hs = hs256(
        &json!({"alg": "HS256", "kid": "hs256", "jwk": oct}),
        &good_claims(),
        b"attacker secret of thirty-two b!",
    );
    assert_eq!(verifier.verify(&hs), Err(AuthError::BadSignature));
    // Nothing ever connected to the URL the tokens pointed at.
    let accepted = listener.accept();
    assert_eq!(
        accepted.map(|_| ()).unwrap_err().kind(),
        std::io::ErrorKind::WouldBlock
    );
}

// ---------------------------------------------------------------------------
// 39. kid injection

#[test]
fn injected_or_unknown_kids_are_unknown_keys() {
    let clock = clock();
    let verifier = strict_verifier(&clock);
    for kid in [
        "../../../../dev/null",
        "/dev/null",
        "' OR '1'='1",
        "*)(uid=*))(|(uid=*",
        "https://attacker.example/key",
        "HS256",
        "",
    ] {
        // Signed with what /dev/null or an SQL injection would yield.
        for secret in [&b""[..], b"1"] {
            let token = hs256(&json!({"alg": "HS256", "kid": kid}), &good_claims(), secret);
            assert_eq!(verifier.verify(&token), Err(AuthError::UnknownKey), "{kid}");
        }
    }
    // No kid while several keys exist: no guessing.
    let token = hs256(&json!({"alg": "HS256"}), &good_claims(), HS256_SECRET);
    assert_eq!(verifier.verify(&token), Err(AuthError::UnknownKey));
    // A kid that is not a string is not a key name either.
    let token = hs256(
        &json!({"alg": "HS256", "kid": 1}),
        &good_claims(),
        HS256_SECRET,
    );
    assert_eq!(verifier.verify(&token), Err(AuthError::Malformed));
}

// ---------------------------------------------------------------------------
// 40. Claims

fn verify_claims(verifier: &Verifier, claims: Value) -> Result<(), AuthError> {
    verifier
        .verify(&hs256(&good_header(), &claims, HS256_SECRET))
        .map(|_| ())
}

#[test]
fn exp_is_required_and_must_be_a_number() {
    let clock = clock();
    let verifier = strict_verifier(&clock);
    assert_eq!(verify_claims(&verifier, good_claims()), Ok(()));
    assert_eq!(
        verify_claims(&verifier, without(good_claims(), "exp")),
        Err(AuthError::BadClaim("exp"))
    );
    for bad in [json!("99999999999"), json!(true), json!(null), json!({})] {
        assert_eq!(
            verify_claims(&verifier, with(good_claims(), "exp", bad.clone())),
            Err(AuthError::BadClaim("exp")),
            "{bad}"
        );
    }
    for name in ["nbf", "iat"] {
        for bad in [json!("1735689600"), json!(false), json!(null)] {
            assert_eq!(
                verify_claims(&verifier, with(good_claims(), name, bad)),
                Err(AuthError::BadClaim(name)),
                "{name}"
            );
        }
    }
    // RFC 7519 NumericDate may carry a fraction.
    assert_eq!(
        verify_claims(
            &verifier,
            with(good_claims(), "exp", json!(EPOCH as f64 + 0.5))
        ),
        Ok(())
    );
}

#[test]
fn times_are_checked_on_the_injected_clock_with_60s_leeway() {
    let clock = clock();
    clock.advance(Duration::from_secs(10_000));
    let now = EPOCH + 10_000;
    let verifier = strict_verifier(&clock);
    let at = |field: &str, value: i64| {
        let claims = with(good_claims(), "exp", json!(now + 3600));
        let claims = with(claims, "iat", json!(now));
        verify_claims(&verifier, with(claims, field, json!(value)))
    };
    assert_eq!(at("exp", now - 61), Err(AuthError::Expired));
    assert_eq!(at("exp", now - 59), Ok(()));
    assert_eq!(at("nbf", now + 61), Err(AuthError::NotYetValid));
    assert_eq!(at("nbf", now + 59), Ok(()));
    assert_eq!(at("iat", now + 120), Err(AuthError::NotYetValid));
    assert_eq!(at("iat", now + 59), Ok(()));
    // The PyJWT fixtures (exp = EPOCH + 3600) are past by now.
    assert_eq!(verifier.verify(PYJWT_ES256), Err(AuthError::Expired));
}

#[test]
fn audience_is_checked_exactly() {
    let clock = clock();
    let verifier = strict_verifier(&clock);
    let aud = |value: Value| verify_claims(&verifier, with(good_claims(), "aud", value));
    assert_eq!(aud(json!(["x", AUDIENCE])), Ok(()));
    assert_eq!(aud(json!(["x", "y"])), Err(AuthError::BadClaim("aud")));
    assert_eq!(aud(json!("polyrelay")), Err(AuthError::BadClaim("aud")));
    assert_eq!(
        aud(json!("polyrelay-api-evil")),
        Err(AuthError::BadClaim("aud"))
    );
    assert_eq!(aud(json!(5)), Err(AuthError::BadClaim("aud")));
    assert_eq!(
        verify_claims(&verifier, without(good_claims(), "aud")),
        Err(AuthError::BadClaim("aud"))
    );
    // A token with an aud, to a verifier that has none configured.
    let no_audience = Verifier::new(
        pyjwt_keyset(),
        VerifyOptions {
            issuer: Some(ISSUER.into()),
            ..VerifyOptions::default()
        },
        clock.shared(),
    );
    assert_eq!(
        verify_claims(&no_audience, good_claims()),
        Err(AuthError::BadClaim("aud"))
    );
    assert_eq!(
        verify_claims(&no_audience, without(good_claims(), "aud")),
        Ok(())
    );
}

#[test]
fn issuer_is_checked_exactly() {
    let clock = clock();
    let verifier = strict_verifier(&clock);
    for bad in [
        json!("https://issuer.example.evil"),
        json!("https://issuer"),
        json!("HTTPS://ISSUER.EXAMPLE"),
        json!([ISSUER]),
        json!(null),
    ] {
        assert_eq!(
            verify_claims(&verifier, with(good_claims(), "iss", bad.clone())),
            Err(AuthError::BadClaim("iss")),
            "{bad}"
        );
    }
    assert_eq!(
        verify_claims(&verifier, without(good_claims(), "iss")),
        Err(AuthError::BadClaim("iss"))
    );
}

#[test]
fn crit_is_rejected_and_typ_checked_when_configured() {
    let clock = clock();
    let verifier = strict_verifier(&clock);
    for crit in [
        json!(["exp"]),
        json!(["x-unknown"]),
        json!([]),
        json!("exp"),
    ] {
        let header = with(good_header(), "crit", crit.clone());
        let token = hs256(&header, &good_claims(), HS256_SECRET);
        assert_eq!(
            verifier.verify(&token),
            Err(AuthError::BadClaim("crit")),
            "{crit}"
        );
    }
    let typed = Verifier::new(
        pyjwt_keyset(),
        VerifyOptions {
            typ: Some("at+jwt".into()),
            ..strict_options()
        },
        clock.shared(),
    );
    let token = |typ: Value| {
        hs256(
            &with(good_header(), "typ", typ),
            &good_claims(),
            HS256_SECRET,
        )
    };
    assert_eq!(
        typed.verify(&token(json!("JWT"))),
        Err(AuthError::BadClaim("typ"))
    );
    assert_eq!(
        typed.verify(&token(json!(1))),
        Err(AuthError::BadClaim("typ"))
    );
    assert!(typed.verify(&token(json!("application/at+jwt"))).is_ok());
    let untyped = hs256(&without(good_header(), "typ"), &good_claims(), HS256_SECRET);
    assert_eq!(typed.verify(&untyped), Err(AuthError::BadClaim("typ")));
}

#[test]
fn malformed_compact_serialisations_are_rejected() {
    let clock = clock();
    let verifier = strict_verifier(&clock);
    let good = hs256(&good_header(), &good_claims(), HS256_SECRET);
    assert!(verifier.verify(&good).is_ok());
    let parts: Vec<&str> = good.split('.').collect();
    let (h, p, s) = (parts[0], parts[1], parts[2]);
    let json_serialisation = json!({"payload": p, "protected": h, "signature": s}).to_string();
    let too_long = format!("{h}.{}.{s}", "A".repeat(20_000));
    let cases = [
        String::new(),
        "..".to_owned(),
        format!("{h}.{p}"),
        format!("{h}.{p}.{s}.{s}"),
        format!("{h}.{p}.{s}."),
        format!("{h}=.{p}.{s}"),
        format!("{h}.{p}.{s}="),
        format!("{h}.{p}=.{s}"),
        format!("{h}.{p}.{s}%"),
        format!("{}.{p}.{s}", h.replace('e', "+")),
        format!("{}.{p}.{s}", b64(b"[\"HS256\"]")),
        format!("{}.{p}.{s}", b64(b"not json")),
        json_serialisation,
        too_long,
    ];
    for token in &cases {
        let result = verifier.verify(token);
        assert!(
            matches!(result, Err(AuthError::Malformed | AuthError::BadSignature)),
            "{token}: {result:?}"
        );
    }
    assert_eq!(
        verifier.verify(&format!("{h}.{p}")),
        Err(AuthError::Malformed)
    );
    assert_eq!(
        verifier.verify(&format!("{h}=.{p}.{s}")),
        Err(AuthError::Malformed)
    );
}

#[test]
fn errors_never_echo_the_token() {
    let clock = clock();
    let verifier = strict_verifier(&clock);
    let expired = hs256(
        &good_header(),
        &with(good_claims(), "exp", json!(EPOCH - 1000)),
        HS256_SECRET,
    );
    for token in [expired.as_str(), CONFUSED_RSA_PEM, "a.b.c", PYJWT_HS256] {
        let error = verifier.verify(&format!("{token}x")).unwrap_err();
        let shown = format!("{error} {error:?}");
        for part in token.split('.').filter(|part| part.len() > 3) {
            assert!(!shown.contains(part), "{shown}");
        }
    }
}

// ---------------------------------------------------------------------------
// Issuing, every algorithm, and key rotation

fn signing_keyset(alg: Algorithm) -> Keyset {
    let key = match alg {
        Algorithm::HS256 => Key::hmac("k", alg, HS256_SECRET),
        Algorithm::HS384 => Key::hmac("k", alg, &[9; 48]),
        Algorithm::HS512 => Key::hmac("k", alg, &[9; 64]),
        Algorithm::RS256 => Key::from_private_pem("k", alg, RSA_PRIVATE_PEM.as_bytes()),
        Algorithm::ES256 => Key::from_private_pem("k", alg, EC_PRIVATE_PEM.as_bytes()),
        Algorithm::EdDSA => Key::from_private_pem("k", alg, ED_PRIVATE_PEM.as_bytes()),
    }
    .unwrap();
    let mut keys = Keyset::new();
    keys.insert(key).unwrap();
    keys.sign_with("k").unwrap();
    keys
}

fn issuer_with(keys: Keyset, config: IssuerConfig, clock: &FakeClock) -> TokenIssuer {
    let store = Arc::new(InMemoryTokenStore::new(clock.shared()));
    TokenIssuer::new(config, keys, store, clock.shared()).unwrap()
}

fn config() -> IssuerConfig {
    IssuerConfig::new(ISSUER, [AUDIENCE])
}

fn header_of(token: &str) -> Value {
    let header = token.split('.').next().unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).unwrap()).unwrap()
}

#[tokio::test]
async fn every_algorithm_issues_tokens_its_public_key_verifies() {
    let clock = clock();
    for alg in Algorithm::ALL {
        let issuer = issuer_with(signing_keyset(alg), config(), &clock);
        let pair = issuer.issue("user-42", Map::new()).unwrap();
        assert_eq!(
            header_of(&pair.access_token),
            json!({"alg": alg.as_str(), "kid": "k", "typ": "at+jwt"})
        );
        let claims = issuer.verify_access(&pair.access_token).await.unwrap();
        assert_eq!(claims.subject(), Some("user-42"));
        assert_eq!(claims.get("aud"), Some(&json!(AUDIENCE)));
        assert_eq!(claims.get("iat"), Some(&json!(EPOCH)));
        assert_eq!(claims.get("exp"), Some(&json!(EPOCH + 900)));
        // A resource server holding only the public half verifies it.
        let public = match alg {
            Algorithm::RS256 => Some(RSA_PUBLIC_PEM),
            Algorithm::ES256 => Some(EC_PUBLIC_PEM),
            Algorithm::EdDSA => Some(ED_PUBLIC_PEM),
            _ => None,
        };
        if let Some(pem) = public {
            let mut keys = Keyset::new();
            keys.insert(Key::from_public_pem("k", alg, pem.as_bytes()).unwrap())
                .unwrap();
            let verifier = Verifier::new(keys, strict_options(), clock.shared());
            assert_eq!(
                verifier.verify(&pair.access_token).unwrap().subject(),
                Some("user-42")
            );
        }
    }
}

#[tokio::test]
async fn keys_rotate_without_invalidating_tokens_in_flight() {
    let clock = clock();
    let issuer = issuer_with(signing_keyset(Algorithm::HS256), config(), &clock);
    let old = issuer.issue("user-42", Map::new()).unwrap();

    let mut keys = (*issuer.verifier().keyset()).clone();
    keys.insert(Key::from_private_pem("k2", Algorithm::EdDSA, ED_PRIVATE_PEM.as_bytes()).unwrap())
        .unwrap();
    keys.sign_with("k2").unwrap();
    issuer.replace_keyset(keys.clone()).unwrap();
    let new = issuer.issue("user-42", Map::new()).unwrap();
    assert_eq!(header_of(&new.access_token)["kid"], "k2");
    assert!(issuer.verify_access(&old.access_token).await.is_ok());
    assert!(issuer.verify_access(&new.access_token).await.is_ok());
    assert_eq!(keys.public_jwks()["keys"][0]["kid"], "k2");

    // Retiring the old key retires its tokens.
    keys.remove("k");
    issuer.replace_keyset(keys.clone()).unwrap();
    assert_eq!(
        issuer.verify_access(&old.access_token).await,
        Err(AuthError::UnknownKey)
    );
    assert!(issuer.verify_access(&new.access_token).await.is_ok());
    // A keyset that cannot sign is refused.
    keys.remove("k2");
    assert_eq!(
        issuer.replace_keyset(keys).unwrap_err(),
        AuthError::Config("keyset has no signing key")
    );
}

#[test]
fn issuing_refuses_registered_claims_in_extras() {
    let clock = clock();
    let issuer = issuer_with(signing_keyset(Algorithm::HS256), config(), &clock);
    let mut extra = Map::new();
    extra.insert("exp".into(), json!(9_999_999_999_i64));
    assert_eq!(
        issuer.issue("user-42", extra).unwrap_err().as_str(),
        "config"
    );
    assert!(issuer.issue("", Map::new()).is_err());
}

// ---------------------------------------------------------------------------
// 42. Refresh rotation, reuse detection, revocation

#[tokio::test]
async fn refresh_rotates_and_reuse_revokes_the_whole_family() {
    let clock = clock();
    let issuer = issuer_with(signing_keyset(Algorithm::HS256), config(), &clock);
    let mut extra = Map::new();
    extra.insert("scope".into(), json!("read write"));
    let first = issuer.issue("user-42", extra).unwrap();
    clock.advance(Duration::from_secs(30));

    let second = issuer.refresh(&first.refresh_token).await.unwrap();
    assert_ne!(second.refresh_token, first.refresh_token);
    assert_ne!(second.access_token, first.access_token);
    let a2 = issuer.verify_access(&second.access_token).await.unwrap();
    assert!(a2.has_scope("write"));
    assert_eq!(a2.get("iat"), Some(&json!(EPOCH + 30)));
    let a1 = issuer.verifier().verify(&first.access_token).unwrap();
    assert_eq!(a2.session_id(), a1.session_id());

    // R1 again: reuse. The family is revoked, R2 and A2 with it.
    assert_eq!(
        issuer.refresh(&first.refresh_token).await,
        Err(AuthError::Reused)
    );
    assert_eq!(
        issuer.refresh(&second.refresh_token).await,
        Err(AuthError::Revoked)
    );
    assert_eq!(
        issuer.verify_access(&second.access_token).await,
        Err(AuthError::Revoked)
    );
    assert_eq!(
        issuer.verify_access(&first.access_token).await,
        Err(AuthError::Revoked)
    );
    // Another login is unaffected.
    let other = issuer.issue("user-42", Map::new()).unwrap();
    assert!(issuer.refresh(&other.refresh_token).await.is_ok());
}

#[tokio::test]
async fn grace_window_returns_the_same_child_and_revokes_nothing() {
    let clock = clock();
    let config = IssuerConfig {
        reuse_grace: Duration::from_secs(10),
        ..config()
    };
    let issuer = issuer_with(signing_keyset(Algorithm::ES256), config, &clock);
    let first = issuer.issue("user-42", Map::new()).unwrap();
    let second = issuer.refresh(&first.refresh_token).await.unwrap();

    clock.advance(Duration::from_secs(9));
    let retried = issuer.refresh(&first.refresh_token).await.unwrap();
    assert_eq!(retried.refresh_token, second.refresh_token);
    assert!(issuer.verify_access(&second.access_token).await.is_ok());
    assert!(issuer.verify_access(&retried.access_token).await.is_ok());
    let third = issuer.refresh(&second.refresh_token).await.unwrap();

    clock.advance(Duration::from_secs(1));
    assert_eq!(
        issuer.refresh(&first.refresh_token).await,
        Err(AuthError::Reused)
    );
    assert_eq!(
        issuer.refresh(&third.refresh_token).await,
        Err(AuthError::Revoked)
    );
}

#[tokio::test]
async fn a_revoked_jti_stays_rejected_until_it_expires_then_its_entry_goes() {
    let clock = clock();
    let store = Arc::new(InMemoryTokenStore::new(clock.shared()));
    let issuer = TokenIssuer::new(
        config(),
        signing_keyset(Algorithm::HS256),
        store.clone(),
        clock.shared(),
    )
    .unwrap();
    let pair = issuer.issue("user-42", Map::new()).unwrap();
    let claims = issuer.verifier().verify(&pair.access_token).unwrap();
    let jti = claims.jti().unwrap();
    clock.advance(Duration::from_secs(100));

    issuer.revoke(&pair.access_token).await.unwrap();
    // exp − now + leeway = 900 − 100 + 60.
    assert_eq!(store.revoked_token_ttl(jti), Some(Duration::from_secs(860)));
    assert_eq!(
        issuer.verify_access(&pair.access_token).await,
        Err(AuthError::Revoked)
    );
    clock.advance(Duration::from_secs(859));
    assert_eq!(
        issuer.verify_access(&pair.access_token).await,
        Err(AuthError::Revoked)
    );
    clock.advance(Duration::from_secs(1));
    assert_eq!(store.revoked_token_ttl(jti), None);
    assert_eq!(
        issuer.verify_access(&pair.access_token).await,
        Err(AuthError::Expired)
    );
    // The refresh token was not revoked with it.
    assert!(issuer.refresh(&pair.refresh_token).await.is_ok());
}

#[tokio::test]
async fn revoking_a_session_logs_the_whole_family_out() {
    let clock = clock();
    let issuer = issuer_with(signing_keyset(Algorithm::HS256), config(), &clock);
    let pair = issuer.issue("user-42", Map::new()).unwrap();
    issuer.revoke_session(&pair.refresh_token).await.unwrap();
    assert_eq!(
        issuer.verify_access(&pair.access_token).await,
        Err(AuthError::Revoked)
    );
    assert_eq!(
        issuer.refresh(&pair.refresh_token).await,
        Err(AuthError::Revoked)
    );
}

#[tokio::test]
async fn access_and_refresh_tokens_are_not_interchangeable() {
    let clock = clock();
    let issuer = issuer_with(signing_keyset(Algorithm::HS256), config(), &clock);
    let pair = issuer.issue("user-42", Map::new()).unwrap();
    assert_eq!(
        issuer.verify_access(&pair.refresh_token).await,
        Err(AuthError::BadClaim("typ"))
    );
    assert_eq!(
        issuer.refresh(&pair.access_token).await,
        Err(AuthError::BadClaim("typ"))
    );
}

/// A store whose backend is down: every operation is unavailable.
#[derive(Debug)]
struct DownStore;

impl TokenStore for DownStore {
    fn use_refresh<'a>(
        &'a self,
        _: RefreshUse<'a>,
    ) -> StateFuture<'a, Result<RefreshOutcome, StoreUnavailable>> {
        ready(Err(StoreUnavailable))
    }

    fn revoke_token<'a>(
        &'a self,
        _: &'a str,
        _: Duration,
    ) -> StateFuture<'a, Result<(), StoreUnavailable>> {
        ready(Err(StoreUnavailable))
    }

    fn revoke_family<'a>(
        &'a self,
        _: &'a str,
        _: Duration,
    ) -> StateFuture<'a, Result<(), StoreUnavailable>> {
        ready(Err(StoreUnavailable))
    }

    fn is_revoked<'a>(
        &'a self,
        _: &'a str,
        _: Option<&'a str>,
    ) -> StateFuture<'a, Result<bool, StoreUnavailable>> {
        ready(Err(StoreUnavailable))
    }

    fn backend(&self) -> &'static str {
        "down"
    }
}

fn down_issuer(mode: RevocationFailMode, clock: &SharedClock) -> TokenIssuer {
    let config = IssuerConfig {
        revocation_fail_mode: mode,
        ..config()
    };
    TokenIssuer::new(
        config,
        signing_keyset(Algorithm::HS256),
        Arc::new(DownStore),
        clock.clone(),
    )
    .unwrap()
}

#[tokio::test]
async fn an_unavailable_store_fails_closed_by_default() {
    let clock = clock().shared();
    let issuer = down_issuer(RevocationFailMode::default(), &clock);
    let pair = issuer.issue("user-42", Map::new()).unwrap();
    assert_eq!(
        issuer.refresh(&pair.refresh_token).await,
        Err(AuthError::Unavailable)
    );
    assert_eq!(
        issuer.verify_access(&pair.access_token).await,
        Err(AuthError::Unavailable)
    );
    assert_eq!(
        issuer.revoke(&pair.access_token).await,
        Err(AuthError::Unavailable)
    );
    // Stateless verification does not need the store.
    assert!(issuer.verifier().verify(&pair.access_token).is_ok());
}

#[tokio::test]
async fn an_unavailable_store_is_skipped_when_configured_open() {
    let clock = clock().shared();
    let issuer = down_issuer(RevocationFailMode::Open, &clock);
    let pair = issuer.issue("user-42", Map::new()).unwrap();
    let next = issuer.refresh(&pair.refresh_token).await.unwrap();
    assert!(issuer.verify_access(&next.access_token).await.is_ok());
    // A revocation that cannot be recorded is never reported as done.
    assert_eq!(
        issuer.revoke_session(&pair.access_token).await,
        Err(AuthError::Unavailable)
    );
}

// ---------------------------------------------------------------------------
// Fixtures

// Generated once with PyJWT 2.15.1 and cryptography 50.0.2 in a throwaway venv: fresh
// RSA-2048, P-256 and Ed25519 keys; PYJWT_* were minted by `jwt.encode` with the claims
// checked in `pyjwt_tokens_verify_for_every_algorithm`; CONFUSED_* are HS256 tokens whose
// HMAC key is the PEM or OpenSSH public key of the RSA, EC or Ed key (PyJWT CVE-2022-29217).
const RSA_PRIVATE_PEM: &str = r#"-----BEGIN PRIVATE KEY-----
MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC6dYKBRJhHeuU0
jCwPns52Ozd/JVswQWA8ngXfGZct4/WvNbyGi4O2NwxMwUavGD+y964zyB1mWONL
UEW/0bHDeBIXrUNm/l0sg+DZA8jv7M2ghhX/DUsWdcal2F6UEes2b3C0SkiMy9cv
MJV0qMrVQ+eqr07tk/znRT0UU3dznXdTHT9KtqljTvxAJdJWD0rxVhPS2fdrqPyM
iajo+8c2lu5+cDhznaDEdGDQsQw3ZKm9XCBcrqD+pXZ6TC4+VyoZbpDlUQNlkhOS
r6rOxXVAfXNV9jCydWyV5zxm2eNWGBjX6j1YNN7eA6qqz2vKTRlpBJq8c2Laph4Y
LkHrJcs1AgMBAAECggEACPhJtq/G1pt4Jsq+fOLiIkhvf0ecByqB93CPrj+kKPJA
ObVPVDamd6/WwOOEY7x6JgEpyXZtSaTpjFA4hsWO9G0Ui7yLU0tVzqQqfy4iLr6Y
1snUiZBJZjN0wroxtJRXGSeLx7SSIGnW+H9xFStglJlfbfPgi2fU4QhQ66cnRjG+
QvLcl+uxv78hWH0VIJaGRPC/JvjHlO5JyOGDxux5BSrnfj/8368r844A7YdztETR
BUX1th6zlwgDU23+EJZ+o33nfojN5yGRJhvV++L4azdFw+4kVZYfZRFaY0FjGSSd
s0CL54pCifWIXYsBFll7bFWjKZAp9J6Le0kQLDWwGQKBgQDnqmb6i8qLJhD3Fw8o
gQYgbX//emSPlNyTalgWgAR53SfqMu2Qmk9w4tf/r7rGUFm48N2klzujA7aM6/gv
DpGgGkTxPq1aHfTc9b3l1NFnw6nDd1G/Qfb8gFwMHZRNQC4TWwu4avhIFY3SOA7J
Zb38gMDqz5+zR8H1384oXTeY3QKBgQDOC3sCm0sRB2WY3z5xBQhI00nCmd6yLg6r
/Ldf/Y9kcGYXlmXMuDFe5bxAXMEmZlIG8EOIxuXFJHAXVic3TxGqO9r2mYWP1EDO
dg0lcWaUTaey8FS5kO+2PrECuYwzXZM7hB3SSC+7m/pQx2m4eHJ32D4030Ku6+fS
u0O0MiqqOQKBgQDLdt7A1/vI4GLwEMGQallOK73KTN17OVvM4Q6CnGbR/QmsaJQ7
dzukQqdAej+JI1LZ2jpf7y9CieVPuYOdGKePvOKmGs03o63GTtI8xAAyqSc1dFtI
pg/dToMJZQU2H9MXztPpYZG0BbIsWm2qNoB4/z/wOu/hDnnsj2bKDqzgxQKBgAMU
wN4lHFZA2hATJofiH2GXZz71thLMBYQk30kcLYy+8Yfgw9zv1C0rGkmMGYdNeGSK
KzhcYQs1pEd1DlkRYZ4+DuQpH4orDl0H/uJUc8g78QoH9fxgYnVDMrprs+EAwTbe
nuOKGMyhZHjYwofzpSKNpUB9Ji4fcPQBwN1s8p5hAoGAFXQrq2uIR3aTgf9EUoYQ
JczBAJvzh9c4zsJlXA0/Igsl2ptdy7CaKbrcSYcxB9N1qJWnyqCdgvIpcrFY4OBk
tHR6LtnCy62sba5evapFSERCU854InDEjSUKAFa16qsTIDNDQ4ZCLpYYxfwQjZup
105NwF7bymGZX0THNZ0efVU=
-----END PRIVATE KEY-----"#;
const RSA_PUBLIC_PEM: &str = r#"-----BEGIN PUBLIC KEY-----
MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAunWCgUSYR3rlNIwsD57O
djs3fyVbMEFgPJ4F3xmXLeP1rzW8houDtjcMTMFGrxg/sveuM8gdZljjS1BFv9Gx
w3gSF61DZv5dLIPg2QPI7+zNoIYV/w1LFnXGpdhelBHrNm9wtEpIjMvXLzCVdKjK
1UPnqq9O7ZP850U9FFN3c513Ux0/SrapY078QCXSVg9K8VYT0tn3a6j8jImo6PvH
NpbufnA4c52gxHRg0LEMN2SpvVwgXK6g/qV2ekwuPlcqGW6Q5VEDZZITkq+qzsV1
QH1zVfYwsnVslec8ZtnjVhgY1+o9WDTe3gOqqs9ryk0ZaQSavHNi2qYeGC5B6yXL
NQIDAQAB
-----END PUBLIC KEY-----"#;
const EC_PRIVATE_PEM: &str = r#"-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgzljj3h72kYWiATkr
MdZnItMxZ5lfxr7DjeAARq0yZQehRANCAAQI1fAn5ZxP6PaLlkgPNwMV0JVuqB/Z
63uEiObL3U7ho1YMO1cUClPzQbZ1PPqtxPWTEGZ3nNbW40kcmycEVew6
-----END PRIVATE KEY-----"#;
const EC_PUBLIC_PEM: &str = r#"-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAECNXwJ+WcT+j2i5ZIDzcDFdCVbqgf
2et7hIjmy91O4aNWDDtXFApT80G2dTz6rcT1kxBmd5zW1uNJHJsnBFXsOg==
-----END PUBLIC KEY-----"#;
const ED_PRIVATE_PEM: &str = r#"-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEIGtaLH+ueTfDDuu0xyggii4xlBH0jMSXh22yV+WQdiiN
-----END PRIVATE KEY-----"#;
const ED_PUBLIC_PEM: &str = r#"-----BEGIN PUBLIC KEY-----
MCowBQYDK2VwAyEAs42kekACfN5Q7AJDXXz+baZvgkOGYW1D1ZZRO7E+o+I=
-----END PUBLIC KEY-----"#;
const ATTACKER_EC_PRIVATE_PEM: &str = r#"-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgRTMep6AdmtHjxKUU
xls2OGEMhLWukiuUH7aXjuYOKuChRANCAAQPN09rgw3CwG6rD1ye/p+egJ9R/iuB
IBOpVL4rYgLfWMNW4Cw/DZfpSSw0ZaCU7mCveHbPycQ03N4595YqufJ4
-----END PRIVATE KEY-----"#;
const ATTACKER_EC_JWK: &str = r#"{"kty": "EC", "crv": "P-256", "x": "DzdPa4MNwsBuqw9cnv6fnoCfUf4rgSATqVS-K2IC31g", "y": "w1bgLD8Nl-lJLDRloJTuYK94ds_JxDTc3jn3liq58ng"}"#;
const PYJWT_JWKS: &str = r#"{"keys": [{"kty": "RSA", "key_ops": ["verify"], "n": "unWCgUSYR3rlNIwsD57Odjs3fyVbMEFgPJ4F3xmXLeP1rzW8houDtjcMTMFGrxg_sveuM8gdZljjS1BFv9Gxw3gSF61DZv5dLIPg2QPI7-zNoIYV_w1LFnXGpdhelBHrNm9wtEpIjMvXLzCVdKjK1UPnqq9O7ZP850U9FFN3c513Ux0_SrapY078QCXSVg9K8VYT0tn3a6j8jImo6PvHNpbufnA4c52gxHRg0LEMN2SpvVwgXK6g_qV2ekwuPlcqGW6Q5VEDZZITkq-qzsV1QH1zVfYwsnVslec8ZtnjVhgY1-o9WDTe3gOqqs9ryk0ZaQSavHNi2qYeGC5B6yXLNQ", "e": "AQAB", "kid": "rsa", "alg": "RS256", "use": "sig"}, {"kty": "EC", "crv": "P-256", "x": "CNXwJ-WcT-j2i5ZIDzcDFdCVbqgf2et7hIjmy91O4aM", "y": "Vgw7VxQKU_NBtnU8-q3E9ZMQZnec1tbjSRybJwRV7Do", "kid": "ec", "alg": "ES256", "use": "sig"}, {"x": "s42kekACfN5Q7AJDXXz-baZvgkOGYW1D1ZZRO7E-o-I", "kty": "OKP", "crv": "Ed25519", "kid": "ed", "alg": "EdDSA", "use": "sig"}]}"#;
const PYJWT_HS256: &str = "eyJhbGciOiJIUzI1NiIsImtpZCI6ImhzMjU2IiwidHlwIjoiSldUIn0.eyJpc3MiOiJodHRwczovL2lzc3Vlci5leGFtcGxlIiwiYXVkIjoicG9seXJlbGF5LWFwaSIsInN1YiI6InVzZXItNDIiLCJpYXQiOjE3MzU2ODk2MDAsImV4cCI6MTczNTY5MzIwMCwic2NvcGUiOiJyZWFkIHdyaXRlIiwianRpIjoicHlqd3QtMSJ9.zNRMH1ANpa9DwaRgpjEY8tXW6tLuvpKyD8Ol_ITmbwY";
const PYJWT_HS384: &str = "eyJhbGciOiJIUzM4NCIsImtpZCI6ImhzMzg0IiwidHlwIjoiSldUIn0.eyJpc3MiOiJodHRwczovL2lzc3Vlci5leGFtcGxlIiwiYXVkIjoicG9seXJlbGF5LWFwaSIsInN1YiI6InVzZXItNDIiLCJpYXQiOjE3MzU2ODk2MDAsImV4cCI6MTczNTY5MzIwMCwic2NvcGUiOiJyZWFkIHdyaXRlIiwianRpIjoicHlqd3QtMSJ9.PWhXnaY68MRlGw-_8gtCLAxZphe_48375G7ANPFQaoxOTHpgtbmNQzxjz2yBu6a4";
const PYJWT_HS512: &str = "eyJhbGciOiJIUzUxMiIsImtpZCI6ImhzNTEyIiwidHlwIjoiSldUIn0.eyJpc3MiOiJodHRwczovL2lzc3Vlci5leGFtcGxlIiwiYXVkIjoicG9seXJlbGF5LWFwaSIsInN1YiI6InVzZXItNDIiLCJpYXQiOjE3MzU2ODk2MDAsImV4cCI6MTczNTY5MzIwMCwic2NvcGUiOiJyZWFkIHdyaXRlIiwianRpIjoicHlqd3QtMSJ9.kEP_hezD62-HMGdhtoXg1v4EUcmdpEn1GFJ4jj_u486ABYFEgdPA8z5PZjaJOHJNGBGQuSVUaoV-8FcsNOPIUA";
const PYJWT_RS256: &str = "eyJhbGciOiJSUzI1NiIsImtpZCI6InJzYSIsInR5cCI6IkpXVCJ9.eyJpc3MiOiJodHRwczovL2lzc3Vlci5leGFtcGxlIiwiYXVkIjoicG9seXJlbGF5LWFwaSIsInN1YiI6InVzZXItNDIiLCJpYXQiOjE3MzU2ODk2MDAsImV4cCI6MTczNTY5MzIwMCwic2NvcGUiOiJyZWFkIHdyaXRlIiwianRpIjoicHlqd3QtMSJ9.Q4HJRPoOl4rGumMobt5KWJ88fWDc2WqNwT1YH0l2MLdIkhr_6cWOfNYK1XPLslMITgwvK6qLHEFQmtcGbCR1cqmuN0QrCdcGpfp7ojVTFF5aynh2ukNM4fpTkp0RlEa4jbr-d19xrYl1QdnEavFHJR9FwgXQv5dIsrZYrzPy--U340zyROcIOpz08KCyUFjbIHOCd7wd_zcXWjfk-aCEUPDhyIVZob98DkkPm6tcKe3FpYLbzB6RC5T72KsYW6z-OrhyRUXrLKH6R2gOLER64lsdSW57l73970Hx1u-BuDf0XvbQaWmm5wTpyRvTAVuIxSKzy9ALp6im7IhdHKiKbQ";
const PYJWT_ES256: &str = "eyJhbGciOiJFUzI1NiIsImtpZCI6ImVjIiwidHlwIjoiSldUIn0.eyJpc3MiOiJodHRwczovL2lzc3Vlci5leGFtcGxlIiwiYXVkIjoicG9seXJlbGF5LWFwaSIsInN1YiI6InVzZXItNDIiLCJpYXQiOjE3MzU2ODk2MDAsImV4cCI6MTczNTY5MzIwMCwic2NvcGUiOiJyZWFkIHdyaXRlIiwianRpIjoicHlqd3QtMSJ9.AprWGAybdAWy-x-BD0eHDds6HEAKCPmfaasxdxSzbn5ZjbJdXWO_-jB85aSy1TAKzhgxPMw4V-8wPZaF2H29jA";
const PYJWT_EDDSA: &str = "eyJhbGciOiJFZERTQSIsImtpZCI6ImVkIiwidHlwIjoiSldUIn0.eyJpc3MiOiJodHRwczovL2lzc3Vlci5leGFtcGxlIiwiYXVkIjoicG9seXJlbGF5LWFwaSIsInN1YiI6InVzZXItNDIiLCJpYXQiOjE3MzU2ODk2MDAsImV4cCI6MTczNTY5MzIwMCwic2NvcGUiOiJyZWFkIHdyaXRlIiwianRpIjoicHlqd3QtMSJ9.q_7jioSPh2WEITx2xTlW3EB3QLpIX6d-ZySh8YmobxwCtB-k4hG0trjyuWez8Xt-Vdijyy6flzMt5lfjDzryAQ";
const CONFUSED_RSA_PEM: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCIsImtpZCI6InJzYSJ9.eyJpc3MiOiJodHRwczovL2lzc3Vlci5leGFtcGxlIiwiYXVkIjoicG9seXJlbGF5LWFwaSIsInN1YiI6InVzZXItNDIiLCJpYXQiOjE3MzU2ODk2MDAsImV4cCI6MTczNTY5MzIwMCwic2NvcGUiOiJyZWFkIHdyaXRlIiwianRpIjoicHlqd3QtMSJ9.2j0Ea8B1bY-2GBEm3aJJRqdjB22ezflcyadEcfXBbJM";
const CONFUSED_RSA_SSH: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCIsImtpZCI6InJzYSJ9.eyJpc3MiOiJodHRwczovL2lzc3Vlci5leGFtcGxlIiwiYXVkIjoicG9seXJlbGF5LWFwaSIsInN1YiI6InVzZXItNDIiLCJpYXQiOjE3MzU2ODk2MDAsImV4cCI6MTczNTY5MzIwMCwic2NvcGUiOiJyZWFkIHdyaXRlIiwianRpIjoicHlqd3QtMSJ9.TNXabJ1TyEj709CQ_ALsZctNAw5wGtPkCQ4XdxVXlpE";
const CONFUSED_EC_PEM: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCIsImtpZCI6ImVjIn0.eyJpc3MiOiJodHRwczovL2lzc3Vlci5leGFtcGxlIiwiYXVkIjoicG9seXJlbGF5LWFwaSIsInN1YiI6InVzZXItNDIiLCJpYXQiOjE3MzU2ODk2MDAsImV4cCI6MTczNTY5MzIwMCwic2NvcGUiOiJyZWFkIHdyaXRlIiwianRpIjoicHlqd3QtMSJ9.t7CWWm0-8XM5V7bmyEVs2vB0UWkf4UM8HR1SxWL0dBA";
const CONFUSED_EC_SSH: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCIsImtpZCI6ImVjIn0.eyJpc3MiOiJodHRwczovL2lzc3Vlci5leGFtcGxlIiwiYXVkIjoicG9seXJlbGF5LWFwaSIsInN1YiI6InVzZXItNDIiLCJpYXQiOjE3MzU2ODk2MDAsImV4cCI6MTczNTY5MzIwMCwic2NvcGUiOiJyZWFkIHdyaXRlIiwianRpIjoicHlqd3QtMSJ9.l_9CSlQwWGhVNnOuFNYA-d4EvUGEmvKOLt72OD4p0-E";
const CONFUSED_ED_PEM: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCIsImtpZCI6ImVkIn0.eyJpc3MiOiJodHRwczovL2lzc3Vlci5leGFtcGxlIiwiYXVkIjoicG9seXJlbGF5LWFwaSIsInN1YiI6InVzZXItNDIiLCJpYXQiOjE3MzU2ODk2MDAsImV4cCI6MTczNTY5MzIwMCwic2NvcGUiOiJyZWFkIHdyaXRlIiwianRpIjoicHlqd3QtMSJ9.7znLCg6w5KeCtI_k9MpItz7ngZfDAILxSXpEgBGx3pE";
const CONFUSED_ED_SSH: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCIsImtpZCI6ImVkIn0.eyJpc3MiOiJodHRwczovL2lzc3Vlci5leGFtcGxlIiwiYXVkIjoicG9seXJlbGF5LWFwaSIsInN1YiI6InVzZXItNDIiLCJpYXQiOjE3MzU2ODk2MDAsImV4cCI6MTczNTY5MzIwMCwic2NvcGUiOiJyZWFkIHdyaXRlIiwianRpIjoicHlqd3QtMSJ9.G1EBLrKMcXEqapwys5dwM3xWq8pKr2xcSNq5gA3_9_Y";
