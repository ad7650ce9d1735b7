//! `polyrelay::auth` for Python: keys, keysets, the stateless verifier and
//! the token issuer. Conversions only; every check is the core's.
//!
//! Secrets and tokens never appear in a `repr` or an exception: reprs show
//! `kid`s, algorithms and lifetimes, and errors are the core's fixed
//! messages (see `errors::auth_to_py`).

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::RwLock;
use polyrelay::auth::{self, Algorithm, AuthError, IssuerConfig, RevocationFailMode};
use polyrelay::clock::{SharedClock, SystemClock};
use polyrelay::config::RedisConfig;
use polyrelay::internal::state::redis::RedisBackend;
use polyrelay::Error;
use polyrelay::RedisTokenStore;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyString};
use pyo3::IntoPyObjectExt;
use serde_json::{Map, Value};

use crate::clock::FakeClock;
use crate::errors::{self, ToPyErr};
use crate::{bridge, convert};

/// `ConfigError` naming `field`.
fn config_error(py: Python<'_>, field: &str, message: &str) -> PyErr {
    errors::to_py(py, Error::config(field, message))
}

/// A `bytes` or `str` argument (`str` as UTF-8), borrowed when possible.
fn bytes_or_text<'a>(
    py: Python<'_>,
    value: &'a Bound<'_, PyAny>,
    field: &str,
) -> PyResult<Cow<'a, [u8]>> {
    if let Ok(bytes) = value.cast::<PyBytes>() {
        return Ok(Cow::Borrowed(bytes.as_bytes()));
    }
    if let Ok(text) = value.cast::<PyString>() {
        return Ok(Cow::Owned(text.extract::<String>()?.into_bytes()));
    }
    Err(config_error(py, field, "must be bytes or str"))
}

/// A JSON document given as text or as a dict.
fn json_text(py: Python<'_>, value: &Bound<'_, PyAny>, field: &str) -> PyResult<String> {
    if let Ok(text) = value.cast::<PyString>() {
        return text.extract();
    }
    if value.cast::<PyDict>().is_ok() {
        let json = convert::from_py(py, value, field)?;
        return Ok(json.to_string());
    }
    Err(config_error(py, field, "must be JSON text or a dict"))
}

fn algorithm(py: Python<'_>, name: &str) -> PyResult<Algorithm> {
    Algorithm::from_name(name).ok_or_else(|| {
        config_error(
            py,
            "alg",
            "must be one of HS256, HS384, HS512, RS256, ES256, EdDSA",
        )
    })
}

fn seconds(py: Python<'_>, value: f64, field: &str) -> PyResult<Duration> {
    Duration::try_from_secs_f64(value)
        .map_err(|_| config_error(py, field, "must be a non-negative number of seconds"))
}

/// A `str` or a sequence of `str`, as a list.
fn one_or_many(py: Python<'_>, value: &Bound<'_, PyAny>, field: &str) -> PyResult<Vec<String>> {
    match value.cast::<PyString>() {
        Ok(one) => Ok(vec![one.extract()?]),
        Err(_) => value
            .extract()
            .map_err(|_| config_error(py, field, "must be a str or a sequence of str")),
    }
}

/// The fake clock a test passed, else the system clock.
fn clock_or_system(clock: Option<PyRef<'_, FakeClock>>) -> SharedClock {
    clock.map_or_else(SystemClock::shared, |fake| fake.shared())
}

fn auth_result<T>(py: Python<'_>, result: Result<T, AuthError>) -> PyResult<T> {
    result.map_err(|error| error.to_py_err(py))
}

/// One key, pinned to one algorithm and named by a `kid`.
#[pyclass(module = "polyrelay._native", name = "Key", frozen)]
pub(crate) struct Key {
    inner: auth::Key,
}

#[pymethods]
impl Key {
    /// An HMAC key (HS256/384/512) from a secret at least as long as the
    /// digest (32, 48 or 64 bytes).
    #[staticmethod]
    #[pyo3(signature = (kid, secret, alg = "HS256"))]
    fn hmac(py: Python<'_>, kid: String, secret: &Bound<'_, PyAny>, alg: &str) -> PyResult<Self> {
        let alg = algorithm(py, alg)?;
        let secret = bytes_or_text(py, secret, "secret")?;
        let inner = auth_result(py, auth::Key::hmac(kid, alg, &secret))?;
        Ok(Self { inner })
    }

    /// A signing key from a private key PEM (PKCS#8; RSA also PKCS#1).
    #[staticmethod]
    fn from_private_pem(
        py: Python<'_>,
        kid: String,
        pem: &Bound<'_, PyAny>,
        alg: &str,
    ) -> PyResult<Self> {
        let alg = algorithm(py, alg)?;
        let pem = bytes_or_text(py, pem, "pem")?;
        let inner = auth_result(py, auth::Key::from_private_pem(kid, alg, &pem))?;
        Ok(Self { inner })
    }

    /// A verification-only key from a public key PEM.
    #[staticmethod]
    fn from_public_pem(
        py: Python<'_>,
        kid: String,
        pem: &Bound<'_, PyAny>,
        alg: &str,
    ) -> PyResult<Self> {
        let alg = algorithm(py, alg)?;
        let pem = bytes_or_text(py, pem, "pem")?;
        let inner = auth_result(py, auth::Key::from_public_pem(kid, alg, &pem))?;
        Ok(Self { inner })
    }

    /// A key from one JWK (text or dict); its `kid` comes from the JWK.
    #[staticmethod]
    #[pyo3(signature = (jwk, alg = None))]
    fn from_jwk(py: Python<'_>, jwk: &Bound<'_, PyAny>, alg: Option<&str>) -> PyResult<Self> {
        let alg = alg.map(|name| algorithm(py, name)).transpose()?;
        let jwk = json_text(py, jwk, "jwk")?;
        let inner = auth_result(py, auth::Key::from_jwk(&jwk, alg))?;
        Ok(Self { inner })
    }

    /// The key id tokens name this key by.
    #[getter]
    fn kid(&self) -> &str {
        self.inner.kid()
    }

    /// The one algorithm this key signs and verifies with.
    #[getter]
    fn alg(&self) -> &'static str {
        self.inner.alg().as_str()
    }

    /// Whether this key can sign (a private key or an HMAC secret).
    #[getter]
    fn can_sign(&self) -> bool {
        self.inner.can_sign()
    }

    fn __repr__(&self) -> String {
        format!(
            "<polyrelay.auth.Key kid={:?} alg={} {}>",
            self.inner.kid(),
            self.inner.alg(),
            if self.inner.can_sign() {
                "signs"
            } else {
                "verifies"
            }
        )
    }
}

/// Keys by `kid`: several verify, at most one signs.
#[pyclass(module = "polyrelay._native", name = "Keyset", frozen)]
pub(crate) struct Keyset {
    inner: RwLock<auth::Keyset>,
}

impl Keyset {
    fn snapshot(&self) -> auth::Keyset {
        self.inner.read().clone()
    }
}

#[pymethods]
impl Keyset {
    /// A keyset holding `keys`, signing with `signing_kid` if given.
    #[new]
    #[pyo3(signature = (keys = Vec::new(), signing_kid = None))]
    fn new(py: Python<'_>, keys: Vec<PyRef<'_, Key>>, signing_kid: Option<&str>) -> PyResult<Self> {
        let mut set = auth::Keyset::new();
        for key in keys {
            auth_result(py, set.insert(key.inner.clone()))?;
        }
        if let Some(kid) = signing_kid {
            auth_result(py, set.sign_with(kid))?;
        }
        Ok(Self {
            inner: RwLock::new(set),
        })
    }

    /// Verification keys from a JWKS document (text or dict).
    #[staticmethod]
    fn from_jwks(py: Python<'_>, jwks: &Bound<'_, PyAny>) -> PyResult<Self> {
        let jwks = json_text(py, jwks, "jwks")?;
        let set = auth_result(py, auth::Keyset::from_jwks(&jwks))?;
        Ok(Self {
            inner: RwLock::new(set),
        })
    }

    /// Adds a key for verification; a `kid` already present is refused.
    fn insert(&self, py: Python<'_>, key: PyRef<'_, Key>) -> PyResult<()> {
        auth_result(py, self.inner.write().insert(key.inner.clone()))
    }

    /// Makes the key `kid` (already inserted, able to sign) the signing key.
    fn sign_with(&self, py: Python<'_>, kid: &str) -> PyResult<()> {
        auth_result(py, self.inner.write().sign_with(kid))
    }

    /// Retires a key; returns whether it was present.
    fn remove(&self, kid: &str) -> bool {
        self.inner.write().remove(kid)
    }

    /// The public JWKS of the asymmetric keys (HMAC secrets never appear).
    fn public_jwks(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let jwks = self.inner.read().public_jwks();
        convert::serialize(py, &jwks)
    }

    /// The key ids, sorted.
    #[getter]
    fn kids(&self) -> Vec<String> {
        self.inner
            .read()
            .kids()
            .into_iter()
            .map(str::to_owned)
            .collect()
    }

    /// The `kid` new tokens are signed with, if any.
    #[getter]
    fn signing_kid(&self) -> Option<String> {
        self.inner
            .read()
            .signing_key()
            .map(|key| key.kid().to_owned())
    }

    fn __len__(&self) -> usize {
        self.inner.read().len()
    }

    fn __contains__(&self, kid: &str) -> bool {
        self.inner.read().get(kid).is_some()
    }

    fn __repr__(&self) -> String {
        let quoted = |kid: &str| format!("'{kid}'");
        let kids: Vec<String> = self.kids().iter().map(|kid| quoted(kid)).collect();
        let signing = self
            .signing_kid()
            .map_or("None".to_owned(), |kid| quoted(&kid));
        format!(
            "<polyrelay.auth.Keyset kids=[{}] signing={signing}>",
            kids.join(", ")
        )
    }
}

/// The verified claims of a token.
#[pyclass(module = "polyrelay._native", name = "Claims", frozen)]
pub(crate) struct Claims {
    inner: auth::Claims,
}

#[pymethods]
impl Claims {
    /// `sub`: whom the token is about.
    #[getter]
    fn subject(&self) -> Option<&str> {
        self.inner.subject()
    }

    /// `jti`: the token's unique id.
    #[getter]
    fn jti(&self) -> Option<&str> {
        self.inner.jti()
    }

    /// `sid`: the login (refresh-token family) the token belongs to.
    #[getter]
    fn session_id(&self) -> Option<&str> {
        self.inner.session_id()
    }

    /// `exp`, in seconds since the epoch.
    #[getter]
    fn expires_at(&self) -> Option<f64> {
        self.inner.expires_at()
    }

    /// The scopes of the space-separated `scope` claim.
    #[getter]
    fn scopes(&self) -> Vec<&str> {
        self.inner.scopes().collect()
    }

    /// Whether `scope` lists `scope`.
    fn has_scope(&self, scope: &str) -> bool {
        self.inner.has_scope(scope)
    }

    /// Any claim by name, or `default`.
    #[pyo3(signature = (name, default = None))]
    fn get(&self, py: Python<'_>, name: &str, default: Option<Py<PyAny>>) -> PyResult<Py<PyAny>> {
        match self.inner.get(name) {
            Some(value) => Ok(convert::to_py(py, value)?.unbind()),
            None => Ok(default.unwrap_or_else(|| py.None())),
        }
    }

    fn __getitem__(&self, py: Python<'_>, name: &str) -> PyResult<Py<PyAny>> {
        match self.inner.get(name) {
            Some(value) => Ok(convert::to_py(py, value)?.unbind()),
            None => Err(pyo3::exceptions::PyKeyError::new_err(name.to_owned())),
        }
    }

    fn __contains__(&self, name: &str) -> bool {
        self.inner.get(name).is_some()
    }

    /// Every claim, as a dict.
    fn to_dict(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        convert::serialize(py, self.inner.as_map())
    }

    fn __repr__(&self) -> String {
        format!(
            "<polyrelay.auth.Claims sub={:?} scopes={:?}>",
            self.inner.subject().unwrap_or_default(),
            self.inner.scopes().collect::<Vec<_>>()
        )
    }
}

/// An access token and the refresh token to renew it.
#[pyclass(module = "polyrelay._native", name = "TokenPair", frozen)]
pub(crate) struct TokenPair {
    inner: auth::TokenPair,
}

#[pymethods]
impl TokenPair {
    /// Short-lived bearer token for API calls.
    #[getter]
    fn access_token(&self) -> &str {
        &self.inner.access_token
    }

    /// Single-use token to get the next pair.
    #[getter]
    fn refresh_token(&self) -> &str {
        &self.inner.refresh_token
    }

    /// Always `"Bearer"`.
    #[getter]
    fn token_type(&self) -> &'static str {
        self.inner.token_type
    }

    /// Seconds until the access token expires.
    #[getter]
    fn expires_in(&self) -> u64 {
        self.inner.expires_in
    }

    /// Seconds until the refresh token expires.
    #[getter]
    fn refresh_expires_in(&self) -> u64 {
        self.inner.refresh_expires_in
    }

    /// The OAuth 2.0 token response (RFC 6749 §5.1), as a dict.
    fn to_dict(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        convert::serialize(py, &self.inner)
    }

    fn __repr__(&self) -> String {
        format!(
            "<polyrelay.auth.TokenPair expires_in={} refresh_expires_in={} (tokens hidden)>",
            self.inner.expires_in, self.inner.refresh_expires_in
        )
    }
}

/// Strict, stateless verification against a keyset.
#[pyclass(module = "polyrelay._native", name = "Verifier", frozen)]
pub(crate) struct Verifier {
    inner: auth::Verifier,
}

#[pymethods]
impl Verifier {
    /// A verifier of tokens signed by `keyset`'s keys; see
    /// `polyrelay.auth.Verifier`.
    #[new]
    #[pyo3(signature = (keyset, *, issuer = None, audience = None, leeway = 60.0, typ = None, clock = None))]
    fn new(
        py: Python<'_>,
        keyset: PyRef<'_, Keyset>,
        issuer: Option<String>,
        audience: Option<&Bound<'_, PyAny>>,
        leeway: f64,
        typ: Option<String>,
        clock: Option<PyRef<'_, FakeClock>>,
    ) -> PyResult<Self> {
        let options = auth::VerifyOptions {
            issuer,
            audience: audience
                .map(|value| one_or_many(py, value, "audience"))
                .transpose()?
                .unwrap_or_default(),
            leeway: seconds(py, leeway, "leeway")?,
            typ,
        };
        Ok(Self {
            inner: auth::Verifier::new(keyset.snapshot(), options, clock_or_system(clock)),
        })
    }

    /// Verifies `token` and returns its claims.
    fn verify(&self, py: Python<'_>, token: &str) -> PyResult<Claims> {
        let inner = auth_result(py, self.inner.verify(token))?;
        Ok(Claims { inner })
    }

    /// Swaps in the keys of `keyset` (key rotation).
    fn replace_keyset(&self, keyset: PyRef<'_, Keyset>) {
        self.inner.replace_keyset(keyset.snapshot());
    }

    fn __repr__(&self) -> String {
        let options = self.inner.options();
        format!(
            "<polyrelay.auth.Verifier issuer={:?} audience={:?}>",
            options.issuer, options.audience
        )
    }
}

/// Issues, renews, verifies and revokes tokens.
#[pyclass(module = "polyrelay._native", name = "TokenIssuer", frozen)]
pub(crate) struct TokenIssuer {
    /// `None` once closed: dropping the issuer drops its store, and with it
    /// the Redis connection.
    inner: RwLock<Option<Arc<auth::TokenIssuer>>>,
    /// `issuer` and `audience`, for `repr` (also once closed).
    described: String,
    /// `memory` or `redis`; the Redis URL (it may hold a password) is never
    /// shown.
    store_backend: &'static str,
}

impl TokenIssuer {
    /// The issuer, or `AuthUnavailableError` once closed: a closed issuer
    /// fails closed, whatever its fail mode.
    fn open(&self, py: Python<'_>) -> PyResult<Arc<auth::TokenIssuer>> {
        self.inner
            .read()
            .clone()
            .ok_or_else(|| errors::auth_unavailable(py, "token issuer closed"))
    }

    /// Runs an async issuer operation: blocking (GIL released) or as an
    /// awaitable.
    fn run<'py, T, F, Fut>(
        &self,
        py: Python<'py>,
        asynchronous: bool,
        token: &str,
        operation: F,
    ) -> PyResult<Bound<'py, PyAny>>
    where
        F: FnOnce(Arc<auth::TokenIssuer>, String) -> Fut,
        Fut: std::future::Future<Output = Result<T, AuthError>> + Send + 'static,
        T: for<'a> IntoPyObject<'a> + Send + 'static,
    {
        let future = operation(self.open(py)?, token.to_owned());
        if asynchronous {
            bridge::awaitable(py, future)
        } else {
            let value = auth_result(py, bridge::block_on(py, future)?)?;
            value.into_bound_py_any(py)
        }
    }
}

#[pymethods]
impl TokenIssuer {
    /// An issuer signing with `keyset`'s signing key; see
    /// `polyrelay.auth.TokenIssuer`.
    #[new]
    #[pyo3(signature = (
        keyset, *, issuer, audience, access_ttl = 900.0, refresh_ttl = 1_209_600.0,
        leeway = 60.0, reuse_grace = 0.0, revocation_fail_mode = "closed", redis_url = None,
        clock = None
    ))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        keyset: PyRef<'_, Keyset>,
        issuer: String,
        audience: &Bound<'_, PyAny>,
        access_ttl: f64,
        refresh_ttl: f64,
        leeway: f64,
        reuse_grace: f64,
        revocation_fail_mode: &str,
        redis_url: Option<&str>,
        clock: Option<PyRef<'_, FakeClock>>,
    ) -> PyResult<Self> {
        let mut config = IssuerConfig::new(issuer, one_or_many(py, audience, "audience")?);
        config.access_ttl = seconds(py, access_ttl, "access_ttl")?;
        config.refresh_ttl = seconds(py, refresh_ttl, "refresh_ttl")?;
        config.leeway = seconds(py, leeway, "leeway")?;
        config.reuse_grace = seconds(py, reuse_grace, "reuse_grace")?;
        config.revocation_fail_mode = match revocation_fail_mode {
            "closed" => RevocationFailMode::Closed,
            "open" => RevocationFailMode::Open,
            _ => {
                return Err(config_error(
                    py,
                    "revocation_fail_mode",
                    "must be \"closed\" or \"open\"",
                ))
            }
        };
        let clock = clock_or_system(clock);
        let store: Arc<dyn auth::TokenStore> = match redis_url {
            // Connects in the background: an unreachable Redis shows as
            // `AuthUnavailableError` on use, per the fail mode.
            Some(url) => {
                let backend = RedisBackend::new(&RedisConfig::new(url), clock.clone())
                    .map_err(|e| errors::to_py(py, e))?;
                Arc::new(RedisTokenStore::new(backend))
            }
            None => Arc::new(auth::InMemoryTokenStore::new(clock.clone())),
        };
        let store_backend = store.backend();
        let described = format!("issuer={:?} audience={:?}", config.issuer, config.audience);
        let issuer = auth::TokenIssuer::new(config, keyset.snapshot(), store, clock);
        Ok(Self {
            inner: RwLock::new(Some(Arc::new(auth_result(py, issuer)?))),
            described,
            store_backend,
        })
    }

    /// Starts a login for `subject`: a new family and its first pair.
    #[pyo3(signature = (subject, claims = None))]
    fn issue(
        &self,
        py: Python<'_>,
        subject: &str,
        claims: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<TokenPair> {
        let extra = match claims {
            Some(claims) => match convert::params(py, claims)? {
                Value::Object(map) => map,
                _ => Map::new(),
            },
            None => Map::new(),
        };
        let inner = auth_result(py, self.open(py)?.issue(subject, extra))?;
        Ok(TokenPair { inner })
    }

    /// Exchanges a refresh token for a new pair, spending it.
    fn refresh<'py>(&self, py: Python<'py>, refresh_token: &str) -> PyResult<Bound<'py, PyAny>> {
        self.run(py, false, refresh_token, refresh)
    }

    /// `refresh`, as an awaitable.
    fn arefresh<'py>(&self, py: Python<'py>, refresh_token: &str) -> PyResult<Bound<'py, PyAny>> {
        self.run(py, true, refresh_token, refresh)
    }

    /// Verifies an access token, revocations included.
    fn verify_access<'py>(
        &self,
        py: Python<'py>,
        access_token: &str,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.run(py, false, access_token, verify_access)
    }

    /// `verify_access`, as an awaitable.
    fn averify_access<'py>(
        &self,
        py: Python<'py>,
        access_token: &str,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.run(py, true, access_token, verify_access)
    }

    /// Denies one token (access or refresh) until it expires.
    fn revoke<'py>(&self, py: Python<'py>, token: &str) -> PyResult<Bound<'py, PyAny>> {
        self.run(py, false, token, revoke)
    }

    /// `revoke`, as an awaitable.
    fn arevoke<'py>(&self, py: Python<'py>, token: &str) -> PyResult<Bound<'py, PyAny>> {
        self.run(py, true, token, revoke)
    }

    /// Denies every token of the login `token` belongs to (logout).
    fn revoke_session<'py>(&self, py: Python<'py>, token: &str) -> PyResult<Bound<'py, PyAny>> {
        self.run(py, false, token, revoke_session)
    }

    /// `revoke_session`, as an awaitable.
    fn arevoke_session<'py>(&self, py: Python<'py>, token: &str) -> PyResult<Bound<'py, PyAny>> {
        self.run(py, true, token, revoke_session)
    }

    /// Rotates keys: new tokens are signed with `keyset`'s signing key and
    /// verified against its keys.
    fn replace_keyset(&self, py: Python<'_>, keyset: PyRef<'_, Keyset>) -> PyResult<()> {
        auth_result(py, self.open(py)?.replace_keyset(keyset.snapshot()))
    }

    /// The public JWKS of the keys in use, to serve at a `jwks_uri`.
    fn public_jwks(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        convert::serialize(py, &self.open(py)?.verifier().keyset().public_jwks())
    }

    /// Releases the token store (its Redis connection); idempotent. Every
    /// later operation raises `AuthUnavailableError`.
    fn close(&self) {
        // Operations in flight hold their own reference and finish first.
        self.inner.write().take();
    }

    /// `close`, as an awaitable.
    fn aclose<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.close();
        bridge::awaitable(py, async { Ok::<(), AuthError>(()) })
    }

    /// Whether `close` was called.
    #[getter]
    fn closed(&self) -> bool {
        self.inner.read().is_none()
    }

    fn __repr__(&self) -> String {
        format!(
            "<polyrelay.auth.TokenIssuer {} store={}{}>",
            self.described,
            self.store_backend,
            if self.closed() { " closed" } else { "" }
        )
    }
}

async fn refresh(issuer: Arc<auth::TokenIssuer>, token: String) -> Result<TokenPair, AuthError> {
    let inner = issuer.refresh(&token).await?;
    Ok(TokenPair { inner })
}

async fn verify_access(issuer: Arc<auth::TokenIssuer>, token: String) -> Result<Claims, AuthError> {
    let inner = issuer.verify_access(&token).await?;
    Ok(Claims { inner })
}

async fn revoke(issuer: Arc<auth::TokenIssuer>, token: String) -> Result<(), AuthError> {
    issuer.revoke(&token).await
}

async fn revoke_session(issuer: Arc<auth::TokenIssuer>, token: String) -> Result<(), AuthError> {
    issuer.revoke_session(&token).await
}
