"""JWT access and refresh tokens, verified strictly by polyrelay's Rust core.

* :class:`Key` — one key pinned to one algorithm (HS256/384/512, RS256,
  ES256, EdDSA) and named by a ``kid``: from an HMAC secret (at least the
  digest size), a PEM or a JWK.
* :class:`Keyset` — several verification keys and at most one signing key,
  for rotation: insert the new key, :meth:`Keyset.sign_with` it, hand the
  set to :meth:`TokenIssuer.replace_keyset`, and remove the old key once
  its last token expired.
* :class:`Verifier` — stateless verification (a resource server that only
  holds public keys): the algorithm comes from the key, never the token;
  ``exp`` is required; ``iss`` and ``aud`` match exactly; ``exp``, ``nbf``
  and ``iat`` are checked with a 60 s leeway (PyJWT's default is 0); any
  ``crit`` is refused; ``jku``, ``x5u`` and embedded ``jwk`` are ignored.
* :class:`TokenIssuer` — logins (:meth:`~TokenIssuer.issue`) start a family
  of tokens; :meth:`~TokenIssuer.refresh` spends a refresh token for a new
  pair, and presenting a spent one again revokes the whole family
  (:class:`~polyrelay.exceptions.TokenReusedError`), except within the
  optional ``reuse_grace`` where the same new pair comes back. Access tokens
  carry ``typ: at+jwt`` and refresh tokens ``typ: refresh+jwt``, so neither
  passes for the other. Token state lives in this process's memory, or in
  Redis with ``redis_url=`` so every process of a service shares rotations
  and revocations; while Redis is unreachable, refreshes and access checks
  fail closed (:class:`~polyrelay.exceptions.AuthUnavailableError`) unless
  ``revocation_fail_mode="open"``. :meth:`~TokenIssuer.close` (or
  ``await aclose()``; ``polyrelay.fastapi.lifespan`` does it at shutdown)
  releases the store and its Redis connection; it is idempotent, and every
  later operation raises :class:`~polyrelay.exceptions.AuthUnavailableError`.

Times are checked on the system clock, or on a
:class:`polyrelay.testing.FakeClock` passed as ``clock=`` in tests.

Every refusal is a :class:`~polyrelay.exceptions.TokenError` subclass; bad
keys or settings raise :class:`~polyrelay.exceptions.ConfigError`. No
``repr`` or error message ever contains a secret or a token.

>>> from polyrelay.auth import Key, Keyset, TokenIssuer
>>> key = Key.hmac("2025-01", b"an HMAC secret of 32 bytes or more")
>>> keys = Keyset([key], signing_kid="2025-01")
>>> issuer = TokenIssuer(keys, issuer="https://auth.example", audience="my-api")
>>> pair = issuer.issue("user-42", {"scope": "read"})
>>> issuer.verify_access(pair.access_token).subject
'user-42'
"""

from __future__ import annotations

from ._native import Claims, Key, Keyset, TokenIssuer, TokenPair, Verifier
from .exceptions import (
    AuthUnavailableError,
    BadAlgorithmError,
    BadClaimError,
    BadSignatureError,
    MalformedTokenError,
    TokenError,
    TokenExpiredError,
    TokenNotYetValidError,
    TokenReusedError,
    TokenRevokedError,
    UnknownKeyError,
)

__all__ = [
    "AuthUnavailableError",
    "BadAlgorithmError",
    "BadClaimError",
    "BadSignatureError",
    "Claims",
    "Key",
    "Keyset",
    "MalformedTokenError",
    "TokenError",
    "TokenExpiredError",
    "TokenIssuer",
    "TokenNotYetValidError",
    "TokenPair",
    "TokenReusedError",
    "TokenRevokedError",
    "UnknownKeyError",
    "Verifier",
]
