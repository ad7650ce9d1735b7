//! JWT access and refresh tokens over the core's `polyrelay::auth`: a keyset
//! built key by key, an issuer (issue, refresh with reuse detection, verify
//! against the denylist, revoke) and a stateless verifier. Every rule lives
//! in the core; this file only moves arguments and answers across the ABI.

use std::ffi::c_char;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use polyrelay::auth::{
    Algorithm, AuthError, Claims, InMemoryTokenStore, IssuerConfig, Key, Keyset, TokenIssuer,
    TokenPair, Verifier, VerifyOptions,
};
use polyrelay::clock::SystemClock;
use serde_json::{Map, Value};

use crate::boundary::{free_handle, give_string, json, live, out_param, report, text, Outcome};
use crate::error::pr_error;
use crate::status::pr_status;

/// A set of keys, each pinned to one algorithm and named by a `kid`, with at
/// most one signing key. Build it with `pr_auth_keyset_new` (or
/// `pr_auth_keyset_new_from_jwks`) and the `pr_auth_keyset_add_*` functions;
/// issuers and verifiers take a copy, so it may be freed (with
/// `pr_auth_keyset_free`) right after creating them.
///
/// Thread safety: the `pr_auth_keyset_add_*` and `pr_auth_keyset_sign_with`
/// functions change it and must not run concurrently with any other use of
/// the same keyset; the other functions may run concurrently with each other.
pub struct pr_auth_keyset {
    keyset: Keyset,
}

/// Issues access/refresh token pairs, rotates refresh tokens (a refresh
/// token presented twice revokes its whole login) and keeps a `jti`
/// denylist, in memory. Free it with `pr_auth_issuer_free`.
///
/// Thread safety: every function taking a `pr_auth_issuer *` may be called
/// from any number of threads at once, except `pr_auth_issuer_free`, which
/// must be the last use.
pub struct pr_auth_issuer {
    issuer: Arc<TokenIssuer>,
}

/// Verifies tokens signed with a keyset's keys, statelessly (no denylist),
/// e.g. on a resource server. Free it with `pr_auth_verifier_free`.
///
/// Thread safety: `pr_auth_verifier_verify` may be called from any number
/// of threads at once; `pr_auth_verifier_free` must be the last use.
pub struct pr_auth_verifier {
    verifier: Verifier,
}

/// The algorithm named `name` (`"HS256"`, `"EdDSA"`, ...).
///
/// # Safety
/// As for [`text`].
unsafe fn algorithm(name: *const c_char, argument: &str) -> Outcome<Algorithm> {
    // SAFETY: forwarded from the caller.
    Ok(unsafe { text(name, argument) }?.parse::<Algorithm>()?)
}

/// A JSON argument that must be an object; NULL stands for `{}` when
/// `optional`.
///
/// # Safety
/// As for [`text`].
unsafe fn json_object(
    object: *const c_char,
    argument: &str,
    optional: bool,
) -> Outcome<Map<String, Value>> {
    if optional && object.is_null() {
        return Ok(Map::new());
    }
    // SAFETY: forwarded from the caller.
    match unsafe { json(object, argument) }? {
        Value::Object(object) => Ok(object),
        _ => Err(pr_error::new(
            pr_status::PR_ERR_INVALID_JSON,
            format!("`{argument}` must be a JSON object"),
        )),
    }
}

/// A token pair as the JSON object handed to C. It holds only strings and
/// numbers, so this cannot fail; `null` would only show a bug.
fn pair_value(pair: TokenPair) -> Value {
    serde_json::to_value(pair).unwrap_or_default()
}

/// Claims as the JSON object handed to C.
fn claims_value(claims: Claims) -> Value {
    Value::Object(claims.into_map())
}

/// Creates an empty keyset; `*keyset` is freed with `pr_auth_keyset_free`.
///
/// Thread safety: safe from any thread.
///
/// # Safety
/// `keyset` is valid for one pointer write; `error` is NULL or valid for one
/// pointer write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pr_auth_keyset_new(
    keyset: *mut *mut pr_auth_keyset,
    error: *mut *mut pr_error,
) -> pr_status {
    // SAFETY: the pointers are valid as the caller promised.
    unsafe {
        report(error, || {
            let out = out_param(keyset, "keyset")?;
            *out = Box::into_raw(Box::new(pr_auth_keyset {
                keyset: Keyset::new(),
            }));
            Ok(())
        })
    }
}

/// Creates a keyset from a JWKS document (`{"keys": [...]}`), each key with
/// its own `kid` and `alg`. `oct` keys can sign (choose one with
/// `pr_auth_keyset_sign_with`); RSA, EC and OKP keys only verify. Any key
/// that is not acceptable fails the whole set (`PR_ERR_CONFIG`).
///
/// Thread safety: safe from any thread.
///
/// # Safety
/// `jwks` is NULL or a NUL-terminated string; `keyset` is valid for one
/// pointer write; `error` is NULL or valid for one pointer write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pr_auth_keyset_new_from_jwks(
    jwks: *const c_char,
    keyset: *mut *mut pr_auth_keyset,
    error: *mut *mut pr_error,
) -> pr_status {
    // SAFETY: the pointers are valid as the caller promised.
    unsafe {
        report(error, || {
            let out = out_param(keyset, "keyset")?;
            let keyset = Keyset::from_jwks(text(jwks, "jwks")?)?;
            *out = Box::into_raw(Box::new(pr_auth_keyset { keyset }));
            Ok(())
        })
    }
}

/// Adds `key` to `keyset`; a `kid` already present is refused.
///
/// # Safety
/// `keyset` is NULL or a live keyset used by no other thread.
unsafe fn add(keyset: *mut pr_auth_keyset, key: impl FnOnce() -> Outcome<Key>) -> Outcome {
    // SAFETY: NULL or live and unshared, as the caller promised.
    let keyset = unsafe { keyset.as_mut() }.ok_or_else(|| pr_error::null_argument("keyset"))?;
    Ok(keyset.keyset.insert(key()?)?)
}

/// Adds an HMAC key (`alg` `"HS256"`, `"HS384"` or `"HS512"`) from the raw
/// secret `secret[0..secret_len]`, which must be at least as long as the
/// digest (32, 48 or 64 bytes; `PR_ERR_CONFIG` otherwise). The secret is
/// copied.
///
/// Thread safety: not concurrently with any other use of `keyset`.
///
/// # Safety
/// `keyset` is NULL or a live keyset; `kid` and `alg` are NULL or
/// NUL-terminated strings; `secret` is NULL or valid for `secret_len` bytes;
/// `error` is NULL or valid for one pointer write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pr_auth_keyset_add_hmac(
    keyset: *mut pr_auth_keyset,
    kid: *const c_char,
    alg: *const c_char,
    secret: *const u8,
    secret_len: usize,
    error: *mut *mut pr_error,
) -> pr_status {
    // SAFETY: the pointers are valid as the caller promised.
    unsafe {
        report(error, || {
            add(keyset, || {
                let kid = text(kid, "kid")?;
                let alg = algorithm(alg, "alg")?;
                if secret.is_null() {
                    return Err(pr_error::null_argument("secret"));
                }
                // SAFETY: non-NULL and valid for `secret_len` bytes, as promised.
                let secret = std::slice::from_raw_parts(secret, secret_len);
                Ok(Key::hmac(kid, alg, secret)?)
            })
        })
    }
}

/// Adds a signing key (`alg` `"RS256"`, `"ES256"` or `"EdDSA"`) from a
/// PKCS#8 private key PEM (RSA also PKCS#1); its public half verifies.
///
/// Thread safety: not concurrently with any other use of `keyset`.
///
/// # Safety
/// `keyset` is NULL or a live keyset; `kid`, `alg` and `pem` are NULL or
/// NUL-terminated strings; `error` is NULL or valid for one pointer write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pr_auth_keyset_add_private_pem(
    keyset: *mut pr_auth_keyset,
    kid: *const c_char,
    alg: *const c_char,
    pem: *const c_char,
    error: *mut *mut pr_error,
) -> pr_status {
    // SAFETY: the pointers are valid as the caller promised.
    unsafe {
        report(error, || {
            add(keyset, || {
                let (kid, alg) = (text(kid, "kid")?, algorithm(alg, "alg")?);
                Ok(Key::from_private_pem(
                    kid,
                    alg,
                    text(pem, "pem")?.as_bytes(),
                )?)
            })
        })
    }
}

/// Adds a verification-only key (`alg` `"RS256"`, `"ES256"` or `"EdDSA"`)
/// from a public key PEM.
///
/// Thread safety: not concurrently with any other use of `keyset`.
///
/// # Safety
/// `keyset` is NULL or a live keyset; `kid`, `alg` and `pem` are NULL or
/// NUL-terminated strings; `error` is NULL or valid for one pointer write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pr_auth_keyset_add_public_pem(
    keyset: *mut pr_auth_keyset,
    kid: *const c_char,
    alg: *const c_char,
    pem: *const c_char,
    error: *mut *mut pr_error,
) -> pr_status {
    // SAFETY: the pointers are valid as the caller promised.
    unsafe {
        report(error, || {
            add(keyset, || {
                let (kid, alg) = (text(kid, "kid")?, algorithm(alg, "alg")?);
                Ok(Key::from_public_pem(
                    kid,
                    alg,
                    text(pem, "pem")?.as_bytes(),
                )?)
            })
        })
    }
}

/// Adds a key from one JWK (JSON); its `kid` comes from the JWK. The
/// algorithm is the JWK's `alg` or `alg` here (NULL: take the JWK's); when
/// both are given they must agree. An `oct` JWK signs and verifies; RSA, EC
/// and OKP JWKs only verify.
///
/// Thread safety: not concurrently with any other use of `keyset`.
///
/// # Safety
/// `keyset` is NULL or a live keyset; `jwk` and `alg` are NULL or
/// NUL-terminated strings; `error` is NULL or valid for one pointer write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pr_auth_keyset_add_jwk(
    keyset: *mut pr_auth_keyset,
    jwk: *const c_char,
    alg: *const c_char,
    error: *mut *mut pr_error,
) -> pr_status {
    // SAFETY: the pointers are valid as the caller promised.
    unsafe {
        report(error, || {
            add(keyset, || {
                let jwk = text(jwk, "jwk")?;
                let alg = if alg.is_null() {
                    None
                } else {
                    Some(algorithm(alg, "alg")?)
                };
                Ok(Key::from_jwk(jwk, alg)?)
            })
        })
    }
}

/// Makes the key `kid` (already added, able to sign) the one new tokens are
/// signed with.
///
/// Thread safety: not concurrently with any other use of `keyset`.
///
/// # Safety
/// `keyset` is NULL or a live keyset; `kid` is NULL or a NUL-terminated
/// string; `error` is NULL or valid for one pointer write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pr_auth_keyset_sign_with(
    keyset: *mut pr_auth_keyset,
    kid: *const c_char,
    error: *mut *mut pr_error,
) -> pr_status {
    // SAFETY: the pointers are valid as the caller promised.
    unsafe {
        report(error, || {
            let keyset = keyset
                .as_mut()
                .ok_or_else(|| pr_error::null_argument("keyset"))?;
            Ok(keyset.keyset.sign_with(text(kid, "kid")?)?)
        })
    }
}

/// The public JWKS (`{"keys": [...]}`) of the keyset's asymmetric keys, to
/// publish so others can verify your tokens; HMAC secrets are never
/// included. `*jwks` is freed with `pr_string_free`.
///
/// Thread safety: safe from any thread, concurrently with other reads.
///
/// # Safety
/// `keyset` is NULL or a live keyset; `jwks` is valid for one pointer write;
/// `error` is NULL or valid for one pointer write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pr_auth_keyset_public_jwks(
    keyset: *const pr_auth_keyset,
    jwks: *mut *mut c_char,
    error: *mut *mut pr_error,
) -> pr_status {
    // SAFETY: the pointers are valid as the caller promised.
    unsafe {
        report(error, || {
            let out = out_param(jwks, "jwks")?;
            *out = give_string(live(keyset, "keyset")?.keyset.public_jwks().to_string());
            Ok(())
        })
    }
}

/// Frees `keyset`. NULL is ignored. Issuers and verifiers made from it keep
/// their own copy.
///
/// Thread safety: any thread, but it must be the last use of the keyset.
///
/// # Safety
/// `keyset` is NULL or a keyset from polyrelay not yet freed.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pr_auth_keyset_free(keyset: *mut pr_auth_keyset) {
    // SAFETY: as the caller promised.
    unsafe { free_handle(keyset) }
}

/// Creates an issuer signing with `keyset`'s signing key (copied), its
/// token state in memory. `config_json` is an object with `issuer` and
/// `audience` (a list) required, and optionally `access_ttl` (default
/// `"15m"`), `refresh_ttl` (`"14d"`), `leeway` (60 s), `reuse_grace` (0,
/// at most 60 s) and `revocation_fail_mode` (`"closed"` or `"open"`);
/// durations are seconds or strings such as `"15m"`.
///
/// Fails with `PR_ERR_CONFIG` (naming the field) for a bad setting or a
/// keyset without a signing key, `PR_ERR_INVALID_JSON` for text that is not
/// a JSON object.
///
/// Thread safety: safe from any thread.
///
/// # Safety
/// `config_json` is NULL or a NUL-terminated string; `keyset` is NULL or a
/// live keyset; `issuer` is valid for one pointer write; `error` is NULL or
/// valid for one pointer write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pr_auth_issuer_new(
    config_json: *const c_char,
    keyset: *const pr_auth_keyset,
    issuer: *mut *mut pr_auth_issuer,
    error: *mut *mut pr_error,
) -> pr_status {
    // SAFETY: the pointers are valid as the caller promised.
    unsafe {
        report(error, || {
            let out = out_param(issuer, "issuer")?;
            let config = json_object(config_json, "config_json", false)?;
            let keyset = live(keyset, "keyset")?.keyset.clone();
            let config: IssuerConfig =
                serde_json::from_value(Value::Object(config)).map_err(|e| {
                    pr_error::new(
                        pr_status::PR_ERR_CONFIG,
                        format!("`config_json` is not an issuer configuration: {e}"),
                    )
                })?;
            let clock = SystemClock::shared();
            let store = Arc::new(InMemoryTokenStore::new(clock.clone()));
            let made = TokenIssuer::new(config, keyset, store, clock)?;
            *out = Box::into_raw(Box::new(pr_auth_issuer {
                issuer: Arc::new(made),
            }));
            Ok(())
        })
    }
}

/// Runs one of the issuer's token operations on the polyrelay runtime and
/// hands its JSON answer to `*out` for `pr_string_free`.
///
/// # Safety
/// As for the exported functions below.
unsafe fn issuer_json<F>(
    issuer: *const pr_auth_issuer,
    token: *const c_char,
    out: *mut *mut c_char,
    out_name: &str,
    error: *mut *mut pr_error,
    operation: impl FnOnce(Arc<TokenIssuer>, String) -> F,
) -> pr_status
where
    F: Future<Output = Result<Value, AuthError>> + Send + 'static,
{
    // SAFETY: the pointers are valid as the caller promised.
    unsafe {
        report(error, || {
            let out = out_param(out, out_name)?;
            let issuer = Arc::clone(&live(issuer, "issuer")?.issuer);
            let token = text(token, "token")?.to_string();
            let answer = polyrelay::internal::block_on(operation(issuer, token))??;
            *out = give_string(answer.to_string());
            Ok(())
        })
    }
}

/// Starts a login for `subject`: a new token family and its first pair.
/// `extra_claims_json` (NULL for none) is a JSON object of claims copied
/// into both tokens and every pair refreshed from them (e.g. `{"scope":
/// "read write"}`); it may not set registered claims (`PR_ERR_CONFIG`).
///
/// `*pair_json` receives `{"access_token", "refresh_token", "token_type":
/// "Bearer", "expires_in", "refresh_expires_in"}`, freed with
/// `pr_string_free`. It holds secrets: do not log it.
///
/// Thread safety: safe from any thread, concurrently with other uses.
///
/// # Safety
/// `issuer` is NULL or a live issuer; `subject` and `extra_claims_json` are
/// NULL or NUL-terminated strings; `pair_json` is valid for one pointer
/// write; `error` is NULL or valid for one pointer write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pr_auth_issuer_issue(
    issuer: *const pr_auth_issuer,
    subject: *const c_char,
    extra_claims_json: *const c_char,
    pair_json: *mut *mut c_char,
    error: *mut *mut pr_error,
) -> pr_status {
    // SAFETY: the pointers are valid as the caller promised.
    unsafe {
        report(error, || {
            let out = out_param(pair_json, "pair_json")?;
            let issuer = live(issuer, "issuer")?;
            let subject = text(subject, "subject")?;
            let extra = json_object(extra_claims_json, "extra_claims_json", true)?;
            let pair = issuer.issuer.issue(subject, extra)?;
            *out = give_string(pair_value(pair).to_string());
            Ok(())
        })
    }
}

/// Exchanges `refresh_token` for a new pair (same JSON as
/// `pr_auth_issuer_issue`), spending it. Presenting a spent refresh token
/// again fails with `PR_ERR_AUTH_REUSED` and revokes its whole login, so
/// later refreshes of that login fail with `PR_ERR_AUTH_REVOKED`.
///
/// Thread safety: safe from any thread, concurrently with other uses. A
/// blocking call: from inside a polyrelay callback it returns `PR_ERR_USAGE`.
///
/// # Safety
/// `issuer` is NULL or a live issuer; `refresh_token` is NULL or a
/// NUL-terminated string; `pair_json` is valid for one pointer write;
/// `error` is NULL or valid for one pointer write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pr_auth_issuer_refresh(
    issuer: *const pr_auth_issuer,
    refresh_token: *const c_char,
    pair_json: *mut *mut c_char,
    error: *mut *mut pr_error,
) -> pr_status {
    // SAFETY: forwarded from the caller.
    unsafe {
        issuer_json(
            issuer,
            refresh_token,
            pair_json,
            "pair_json",
            error,
            |issuer, token| async move { issuer.refresh(&token).await.map(pair_value) },
        )
    }
}

/// Verifies an access token of this issuer (signature, `typ`, claims, times
/// with the configured leeway) and checks that neither it nor its login was
/// revoked. `*claims_json` receives the token's claims as a JSON object,
/// freed with `pr_string_free`.
///
/// Fails with `PR_ERR_AUTH_EXPIRED`, `PR_ERR_AUTH_NOT_YET_VALID`,
/// `PR_ERR_AUTH_BAD_SIGNATURE`, `PR_ERR_AUTH_BAD_ALGORITHM`,
/// `PR_ERR_AUTH_BAD_CLAIM` (see `pr_error_claim`), `PR_ERR_AUTH_UNKNOWN_KEY`,
/// `PR_ERR_AUTH_MALFORMED` or `PR_ERR_AUTH_REVOKED`.
///
/// Thread safety: safe from any thread, concurrently with other uses. A
/// blocking call: from inside a polyrelay callback it returns `PR_ERR_USAGE`.
///
/// # Safety
/// `issuer` is NULL or a live issuer; `access_token` is NULL or a
/// NUL-terminated string; `claims_json` is valid for one pointer write;
/// `error` is NULL or valid for one pointer write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pr_auth_issuer_verify(
    issuer: *const pr_auth_issuer,
    access_token: *const c_char,
    claims_json: *mut *mut c_char,
    error: *mut *mut pr_error,
) -> pr_status {
    // SAFETY: forwarded from the caller.
    unsafe {
        issuer_json(
            issuer,
            access_token,
            claims_json,
            "claims_json",
            error,
            |issuer, token| async move { issuer.verify_access(&token).await.map(claims_value) },
        )
    }
}

/// Runs one of the issuer's revocations on the polyrelay runtime.
///
/// # Safety
/// As for the exported functions below.
unsafe fn issuer_revoke<F>(
    issuer: *const pr_auth_issuer,
    token: *const c_char,
    error: *mut *mut pr_error,
    operation: impl FnOnce(Arc<TokenIssuer>, String) -> F,
) -> pr_status
where
    F: Future<Output = Result<(), AuthError>> + Send + 'static,
{
    // SAFETY: the pointers are valid as the caller promised.
    unsafe {
        report(error, || {
            let issuer = Arc::clone(&live(issuer, "issuer")?.issuer);
            let token = text(token, "token")?.to_string();
            Ok(polyrelay::internal::block_on(operation(issuer, token))??)
        })
    }
}

/// Denies one of this issuer's tokens (access or refresh) until it expires.
///
/// Thread safety: safe from any thread, concurrently with other uses. A
/// blocking call: from inside a polyrelay callback it returns `PR_ERR_USAGE`.
///
/// # Safety
/// `issuer` is NULL or a live issuer; `token` is NULL or a NUL-terminated
/// string; `error` is NULL or valid for one pointer write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pr_auth_issuer_revoke(
    issuer: *const pr_auth_issuer,
    token: *const c_char,
    error: *mut *mut pr_error,
) -> pr_status {
    // SAFETY: forwarded from the caller.
    unsafe {
        issuer_revoke(issuer, token, error, |issuer, token| async move {
            issuer.revoke(&token).await
        })
    }
}

/// Denies every token of the login `token` belongs to (logout everywhere).
///
/// Thread safety: safe from any thread, concurrently with other uses. A
/// blocking call: from inside a polyrelay callback it returns `PR_ERR_USAGE`.
///
/// # Safety
/// `issuer` is NULL or a live issuer; `token` is NULL or a NUL-terminated
/// string; `error` is NULL or valid for one pointer write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pr_auth_issuer_revoke_session(
    issuer: *const pr_auth_issuer,
    token: *const c_char,
    error: *mut *mut pr_error,
) -> pr_status {
    // SAFETY: forwarded from the caller.
    unsafe {
        issuer_revoke(issuer, token, error, |issuer, token| async move {
            issuer.revoke_session(&token).await
        })
    }
}

/// Frees `issuer` and the token state it holds. NULL is ignored.
///
/// Thread safety: any thread, but it must be the last use of the issuer.
///
/// # Safety
/// `issuer` is NULL or an issuer from polyrelay not yet freed.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pr_auth_issuer_free(issuer: *mut pr_auth_issuer) {
    // SAFETY: as the caller promised.
    unsafe { free_handle(issuer) }
}

/// Creates a stateless verifier of tokens signed with `keyset`'s keys
/// (copied). `issuer_name` (NULL: not checked) is the exact `iss` required;
/// `audience_json` (NULL: none) is a JSON array of the audiences accepted,
/// and with none a token carrying `aud` is refused; `leeway_seconds` is the
/// clock skew tolerated on `exp`, `nbf` and `iat` (60 is usual); `typ`
/// (NULL: not checked) is the header `typ` required, e.g. `"at+jwt"` for
/// this library's access tokens.
///
/// Thread safety: safe from any thread.
///
/// # Safety
/// `keyset` is NULL or a live keyset; `issuer_name`, `audience_json` and
/// `typ` are NULL or NUL-terminated strings; `verifier` is valid for one
/// pointer write; `error` is NULL or valid for one pointer write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pr_auth_verifier_new(
    keyset: *const pr_auth_keyset,
    issuer_name: *const c_char,
    audience_json: *const c_char,
    leeway_seconds: u32,
    typ: *const c_char,
    verifier: *mut *mut pr_auth_verifier,
    error: *mut *mut pr_error,
) -> pr_status {
    // SAFETY: the pointers are valid as the caller promised.
    unsafe {
        report(error, || {
            let out = out_param(verifier, "verifier")?;
            let keyset = live(keyset, "keyset")?.keyset.clone();
            let optional = |value: *const c_char, name: &str| -> Outcome<Option<String>> {
                if value.is_null() {
                    Ok(None)
                } else {
                    Ok(Some(text(value, name)?.to_string()))
                }
            };
            let audience = if audience_json.is_null() {
                Vec::new()
            } else {
                serde_json::from_value(json(audience_json, "audience_json")?).map_err(|_| {
                    pr_error::new(
                        pr_status::PR_ERR_INVALID_JSON,
                        "`audience_json` must be a JSON array of strings",
                    )
                })?
            };
            let options = VerifyOptions {
                issuer: optional(issuer_name, "issuer_name")?,
                audience,
                leeway: Duration::from_secs(leeway_seconds.into()),
                typ: optional(typ, "typ")?,
            };
            *out = Box::into_raw(Box::new(pr_auth_verifier {
                verifier: Verifier::new(keyset, options, SystemClock::shared()),
            }));
            Ok(())
        })
    }
}

/// Verifies `token` (signature, claims, times; no denylist) and hands its
/// claims to `*claims_json` as a JSON object, freed with `pr_string_free`.
/// Fails with the `PR_ERR_AUTH_*` statuses listed at `pr_auth_issuer_verify`
/// except `PR_ERR_AUTH_REVOKED`.
///
/// Thread safety: safe from any thread, concurrently with other uses.
///
/// # Safety
/// `verifier` is NULL or a live verifier; `token` is NULL or a
/// NUL-terminated string; `claims_json` is valid for one pointer write;
/// `error` is NULL or valid for one pointer write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pr_auth_verifier_verify(
    verifier: *const pr_auth_verifier,
    token: *const c_char,
    claims_json: *mut *mut c_char,
    error: *mut *mut pr_error,
) -> pr_status {
    // SAFETY: the pointers are valid as the caller promised.
    unsafe {
        report(error, || {
            let out = out_param(claims_json, "claims_json")?;
            let verifier = live(verifier, "verifier")?;
            let claims = verifier.verifier.verify(text(token, "token")?)?;
            *out = give_string(claims_value(claims).to_string());
            Ok(())
        })
    }
}

/// Frees `verifier`. NULL is ignored.
///
/// Thread safety: any thread, but it must be the last use of the verifier.
///
/// # Safety
/// `verifier` is NULL or a verifier from polyrelay not yet freed.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pr_auth_verifier_free(verifier: *mut pr_auth_verifier) {
    // SAFETY: as the caller promised.
    unsafe { free_handle(verifier) }
}
