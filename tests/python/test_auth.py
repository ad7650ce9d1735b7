"""polyrelay.auth from Python: interop with PyJWT both ways, the known attacks
on JWT verification, refresh rotation with reuse detection, key rotation,
and that no secret reaches a repr or an error."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import socket
import time
from datetime import datetime, timezone
from typing import Any, Dict, Tuple

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

import polyrelay
from polyrelay import exceptions
from polyrelay.testing import FakeClock
from polyrelay.auth import (
    AuthUnavailableError,
    BadAlgorithmError,
    BadClaimError,
    BadSignatureError,
    Key,
    Keyset,
    MalformedTokenError,
    TokenError,
    TokenExpiredError,
    TokenIssuer,
    TokenNotYetValidError,
    TokenReusedError,
    TokenRevokedError,
    UnknownKeyError,
    Verifier,
)

ISS = "https://issuer"
AUD = "our-api"
SECRET = b"an HMAC secret that is 32 bytes+"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def pems(private: Any) -> Tuple[bytes, bytes]:
    private_pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    public_pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private_pem, public_pem


@pytest.fixture(scope="module")
def asymmetric() -> Dict[str, Tuple[bytes, bytes]]:
    """PEM pairs (private, public) per asymmetric algorithm."""
    return {
        "RS256": pems(rsa.generate_private_key(public_exponent=65537, key_size=2048)),
        "ES256": pems(ec.generate_private_key(ec.SECP256R1())),
        "EdDSA": pems(ed25519.Ed25519PrivateKey.generate()),
    }


def claims(**overrides: Any) -> Dict[str, Any]:
    now = int(time.time())
    base: Dict[str, Any] = {"iss": ISS, "aud": AUD, "sub": "user-1", "iat": now, "exp": now + 300}
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def hs_verifier() -> Verifier:
    return Verifier(Keyset([Key.hmac("k1", SECRET)]), issuer=ISS, audience=AUD)


def forge(header: Dict[str, Any], payload: Dict[str, Any], secret: bytes = SECRET) -> str:
    """An HS256-signed token with any header, bypassing PyJWT's own checks."""
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(payload).encode())}"
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(mac)}"


# --- interop -----------------------------------------------------------------


@pytest.mark.parametrize("alg", ["HS256", "RS256", "ES256", "EdDSA"])
def test_tokens_minted_by_pyjwt_verify(
    alg: str, asymmetric: Dict[str, Tuple[bytes, bytes]]
) -> None:
    if alg == "HS256":
        signing_key: Any = SECRET
        key = Key.hmac("k1", SECRET, alg)
    else:
        private_pem, public_pem = asymmetric[alg]
        signing_key = private_pem
        key = Key.from_public_pem("k1", public_pem, alg)
    token = jwt.encode(claims(scope="read"), signing_key, algorithm=alg, headers={"kid": "k1"})
    verified = Verifier(Keyset([key]), issuer=ISS, audience=AUD).verify(token)
    assert verified.subject == "user-1"
    assert verified.scopes == ["read"]
    assert verified["iss"] == ISS
    # A different key of the same algorithm does not verify it.
    if alg == "HS256":
        other = Key.hmac("k1", b"another secret of 32 bytes or mo", alg)
        with pytest.raises(BadSignatureError):
            Verifier(Keyset([other]), issuer=ISS, audience=AUD).verify(token)


@pytest.mark.parametrize("alg", ["HS256", "RS256", "ES256", "EdDSA"])
def test_polyrelay_tokens_verify_with_pyjwt(
    alg: str, asymmetric: Dict[str, Tuple[bytes, bytes]]
) -> None:
    if alg == "HS256":
        key = Key.hmac("k1", SECRET, alg)
        verifying_key: Any = SECRET
    else:
        private_pem, public_pem = asymmetric[alg]
        key = Key.from_private_pem("k1", private_pem, alg)
        verifying_key = public_pem
    issuer = TokenIssuer(Keyset([key], signing_kid="k1"), issuer=ISS, audience=AUD)
    pair = issuer.issue("user-7", {"scope": "chat"})
    decoded = jwt.decode(
        pair.access_token, verifying_key, algorithms=[alg], audience=AUD, issuer=ISS
    )
    assert decoded["sub"] == "user-7"
    assert decoded["scope"] == "chat"
    header = jwt.get_unverified_header(pair.access_token)
    assert header == {"alg": alg, "kid": "k1", "typ": "at+jwt"}
    # PyJWT, too, refuses a tampered polyrelay token.
    tampered = pair.access_token[:-4] + (
        "AAAA" if not pair.access_token.endswith("AAAA") else "BBBB"
    )
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(tampered, verifying_key, algorithms=[alg], audience=AUD, issuer=ISS)


def test_a_resource_server_verifies_with_the_published_jwks(
    asymmetric: Dict[str, Tuple[bytes, bytes]],
) -> None:
    private_pem, _ = asymmetric["ES256"]
    keys = Keyset([Key.from_private_pem("es-1", private_pem, "ES256"), Key.hmac("hs-1", SECRET)])
    keys.sign_with("es-1")
    issuer = TokenIssuer(keys, issuer=ISS, audience=AUD)
    jwks = issuer.public_jwks()
    # HMAC secrets are never published.
    assert [k["kid"] for k in jwks["keys"]] == ["es-1"]
    assert "d" not in jwks["keys"][0] and "k" not in jwks["keys"][0]
    resource = Verifier(Keyset.from_jwks(jwks), issuer=ISS, audience=AUD)
    assert resource.verify(issuer.issue("u").access_token).subject == "u"
    # PyJWT reads the same JWKS.
    pyjwt_key = jwt.PyJWK(jwks["keys"][0])
    token = issuer.issue("v").access_token
    assert jwt.decode(token, pyjwt_key, algorithms=["ES256"], audience=AUD)["sub"] == "v"


def test_rfc7515_a1_signature_verifies_and_the_token_is_expired() -> None:
    token = (
        "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9"
        ".eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ"
        ".dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
    )
    jwk = {
        "kty": "oct",
        "kid": "a1",
        "k": "AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow",
    }
    verifier = Verifier(Keyset([Key.from_jwk(jwk, "HS256")]))
    # The signature is checked before the times: expired means it verified.
    with pytest.raises(TokenExpiredError):
        verifier.verify(token)
    with pytest.raises(BadSignatureError):
        verifier.verify(token[:-2] + ("Xk" if not token.endswith("Xk") else "Yk"))


# --- attacks on verification ---------------------------------------------------


@pytest.mark.parametrize("alg", ["none", "None", "NONE", "nOnE"])
def test_alg_none_is_rejected(alg: str) -> None:
    header = b64(json.dumps({"alg": alg, "typ": "JWT"}).encode())
    body = b64(json.dumps(claims()).encode())
    for token in (f"{header}.{body}.", f"{header}.{body}.{b64(b'sig')}"):
        with pytest.raises(BadAlgorithmError):
            hs_verifier().verify(token)


@pytest.mark.parametrize("alg", ["RS256", "ES256", "EdDSA"])
def test_key_confusion_public_key_as_hmac_secret_is_rejected(
    alg: str, asymmetric: Dict[str, Tuple[bytes, bytes]]
) -> None:
    _, public_pem = asymmetric[alg]
    verifier = Verifier(
        Keyset([Key.from_public_pem("k1", public_pem, alg)]), issuer=ISS, audience=AUD
    )
    # PyJWT refuses to do this, so sign by hand: HS256 keyed with the PEM.
    token = forge({"alg": "HS256", "kid": "k1"}, claims(), secret=public_pem)
    with pytest.raises(BadAlgorithmError):
        verifier.verify(token)


def test_time_claims_use_a_60_second_leeway() -> None:
    now = int(time.time())
    verifier = hs_verifier()
    assert verifier.verify(jwt.encode(claims(exp=now - 50), SECRET, "HS256")).subject == "user-1"
    with pytest.raises(TokenExpiredError):
        verifier.verify(jwt.encode(claims(exp=now - 70), SECRET, "HS256"))
    with pytest.raises(TokenNotYetValidError):
        verifier.verify(jwt.encode(claims(nbf=now + 70), SECRET, "HS256"))
    with pytest.raises(TokenNotYetValidError):
        verifier.verify(jwt.encode(claims(iat=now + 120), SECRET, "HS256"))
    strict = Verifier(Keyset([Key.hmac("k1", SECRET)]), issuer=ISS, audience=AUD, leeway=0)
    with pytest.raises(TokenExpiredError):
        strict.verify(jwt.encode(claims(exp=now - 2), SECRET, "HS256"))


@pytest.mark.parametrize(
    ("payload", "claim"),
    [
        (claims(exp=None), "exp"),
        (claims(exp="99999999999"), "exp"),
        (claims(aud="someone-else"), "aud"),
        (claims(aud=["x", "y"]), "aud"),
        (claims(aud=None), "aud"),
        (claims(iss="https://issuer.evil"), "iss"),
        (claims(iss=None), "iss"),
    ],
)
def test_wrong_or_missing_claims_are_rejected_naming_the_claim(
    payload: Dict[str, Any], claim: str
) -> None:
    with pytest.raises(BadClaimError) as refused:
        hs_verifier().verify(jwt.encode(payload, SECRET, "HS256"))
    assert refused.value.claim == claim
    assert refused.value.kind == "bad_claim"
    assert isinstance(refused.value, TokenError) and isinstance(refused.value, polyrelay.Error)


def test_audience_lists_and_verifiers_without_audience() -> None:
    assert (
        hs_verifier().verify(jwt.encode(claims(aud=["x", AUD]), SECRET, "HS256")).subject
        == "user-1"
    )
    no_audience = Verifier(Keyset([Key.hmac("k1", SECRET)]), issuer=ISS)
    with pytest.raises(BadClaimError) as refused:
        no_audience.verify(jwt.encode(claims(), SECRET, "HS256"))
    assert refused.value.claim == "aud"


@pytest.mark.parametrize("crit", [["exp"], ["b64"], ["urn:example:unknown"]])
def test_any_crit_header_is_rejected(crit: Any) -> None:
    token = forge({"alg": "HS256", "crit": crit, "urn:example:unknown": 1}, claims())
    with pytest.raises(BadClaimError) as refused:
        hs_verifier().verify(token)
    assert refused.value.claim == "crit"


@pytest.mark.parametrize("kid", ["../../../../dev/null", "' OR '1'='1", "nope"])
def test_unknown_or_injected_kid_is_rejected(kid: str) -> None:
    with pytest.raises(UnknownKeyError):
        hs_verifier().verify(jwt.encode(claims(), SECRET, "HS256", headers={"kid": kid}))


def test_embedded_jwk_jku_and_x5u_are_never_used() -> None:
    attacker = b"the attacker's own secret 32 b.."
    header = {
        "alg": "HS256",
        "jwk": {"kty": "oct", "k": b64(attacker)},
        "jku": "http://127.0.0.1:9/jwks.json",
        "x5u": "http://127.0.0.1:9/cert.pem",
    }
    with pytest.raises(BadSignatureError):
        hs_verifier().verify(forge(header, claims(), secret=attacker))


@pytest.mark.parametrize(
    "token",
    [
        "",
        "a.b",
        "a.b.c.d",
        "!!!.???.***",
        "eyJhbGciOiJIUzI1NiJ9.e30",
        '{"payload":"e30","signatures":[]}',
    ],
)
def test_malformed_tokens_are_rejected(token: str) -> None:
    with pytest.raises(MalformedTokenError):
        hs_verifier().verify(token)


def test_weak_keys_are_refused_at_configuration() -> None:
    for alg, size in (("HS256", 32), ("HS384", 48), ("HS512", 64)):
        with pytest.raises(polyrelay.ConfigError):
            Key.hmac("k", b"x" * (size - 1), alg)
        assert Key.hmac("k", b"x" * size, alg).alg == alg
    with pytest.raises(polyrelay.ConfigError):
        Key.hmac("k", SECRET, "none")
    weak_rsa = pems(rsa.generate_private_key(public_exponent=65537, key_size=1024))
    with pytest.raises(polyrelay.ConfigError):
        Key.from_public_pem("k", weak_rsa[1], "RS256")


def test_a_refresh_token_is_not_an_access_token() -> None:
    issuer = TokenIssuer(
        Keyset([Key.hmac("k1", SECRET)], signing_kid="k1"), issuer=ISS, audience=AUD
    )
    pair = issuer.issue("u")
    with pytest.raises(BadClaimError) as refused:
        issuer.verify_access(pair.refresh_token)
    assert refused.value.claim == "typ"
    with pytest.raises(BadClaimError):
        issuer.refresh(pair.access_token)


# --- refresh rotation ----------------------------------------------------------


def hs_issuer(**options: Any) -> TokenIssuer:
    return TokenIssuer(
        Keyset([Key.hmac("k1", SECRET)], signing_kid="k1"), issuer=ISS, audience=AUD, **options
    )


def test_refresh_reuse_revokes_the_whole_family() -> None:
    issuer = hs_issuer()
    first = issuer.issue("user-1", {"scope": "read"})
    second = issuer.refresh(first.refresh_token)
    assert second.refresh_token != first.refresh_token
    claims_after = issuer.verify_access(second.access_token)
    assert claims_after.subject == "user-1" and claims_after.scopes == ["read"]
    assert claims_after.session_id == issuer.verify_access(first.access_token).session_id

    with pytest.raises(TokenReusedError):
        issuer.refresh(first.refresh_token)
    # The thief's and the victim's tokens of that login are all dead now.
    with pytest.raises(TokenRevokedError):
        issuer.refresh(second.refresh_token)
    with pytest.raises(TokenRevokedError):
        issuer.verify_access(second.access_token)
    # Another login of the same user is untouched.
    other = issuer.issue("user-1")
    assert issuer.verify_access(other.access_token).subject == "user-1"


def test_within_the_grace_window_a_retry_gets_the_same_refresh_token() -> None:
    issuer = hs_issuer(reuse_grace=10)
    first = issuer.issue("user-1")
    second = issuer.refresh(first.refresh_token)
    again = issuer.refresh(first.refresh_token)
    assert again.refresh_token == second.refresh_token
    assert issuer.verify_access(again.access_token).subject == "user-1"
    assert issuer.refresh(second.refresh_token).refresh_token != second.refresh_token
    with pytest.raises(polyrelay.ConfigError):
        hs_issuer(reuse_grace=61)


async def test_async_refresh_revoke_and_logout() -> None:
    issuer = hs_issuer()
    pair = issuer.issue("user-1")
    renewed = await issuer.arefresh(pair.refresh_token)
    assert (await issuer.averify_access(renewed.access_token)).subject == "user-1"
    await issuer.arevoke(renewed.access_token)
    with pytest.raises(TokenRevokedError):
        await issuer.averify_access(renewed.access_token)
    # Revoking one token leaves the login's refresh token usable...
    newer = await issuer.arefresh(renewed.refresh_token)
    # ...logging out revokes all of it.
    await issuer.arevoke_session(newer.access_token)
    with pytest.raises(TokenRevokedError):
        await issuer.arefresh(newer.refresh_token)


def test_key_rotation_keeps_old_tokens_valid_until_the_old_key_is_removed() -> None:
    old = Key.hmac("2025-01", SECRET)
    new = Key.hmac("2025-02", b"the next HMAC secret, 32 bytes+.")
    issuer = TokenIssuer(Keyset([old], signing_kid="2025-01"), issuer=ISS, audience=AUD)
    before = issuer.issue("u")

    rotated = Keyset([old, new], signing_kid="2025-02")
    issuer.replace_keyset(rotated)
    after = issuer.issue("u")
    assert jwt.get_unverified_header(after.access_token)["kid"] == "2025-02"
    assert issuer.verify_access(before.access_token).subject == "u"

    assert rotated.remove("2025-01") and rotated.kids == ["2025-02"]
    issuer.replace_keyset(rotated)
    with pytest.raises(UnknownKeyError):
        issuer.verify_access(before.access_token)
    assert issuer.verify_access(after.access_token).subject == "u"
    # An issuer needs a signing key.
    with pytest.raises(polyrelay.ConfigError):
        issuer.replace_keyset(Keyset([old]))


# --- token state on Redis -----------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_issuers_sharing_redis_see_each_others_rotations(redis_url: str) -> None:
    keys = Keyset([Key.hmac("k1", SECRET)], signing_kid="k1")
    # Two issuers stand for two processes of one service.
    first_process = TokenIssuer(keys, issuer=ISS, audience=AUD, redis_url=redis_url)
    second_process = TokenIssuer(keys, issuer=ISS, audience=AUD, redis_url=redis_url)
    assert "store=redis" in repr(first_process)
    login = first_process.issue("user-1")
    renewed = second_process.refresh(login.refresh_token)
    with pytest.raises(TokenReusedError):
        first_process.refresh(login.refresh_token)
    with pytest.raises(TokenRevokedError):
        second_process.verify_access(renewed.access_token)


def test_unreachable_redis_fails_closed_unless_configured_open() -> None:
    keys = Keyset([Key.hmac("k1", SECRET)], signing_kid="k1")
    nowhere = f"redis://127.0.0.1:{free_port()}"
    closed = TokenIssuer(keys, issuer=ISS, audience=AUD, redis_url=nowhere)
    pair = closed.issue("user-1")  # issuing needs no state
    with pytest.raises(AuthUnavailableError) as refused:
        closed.refresh(pair.refresh_token)
    assert refused.value.kind == "unavailable"
    with pytest.raises(AuthUnavailableError):
        closed.verify_access(pair.access_token)
    opened = TokenIssuer(
        keys, issuer=ISS, audience=AUD, redis_url=nowhere, revocation_fail_mode="open"
    )
    pair = opened.issue("user-1")
    assert opened.verify_access(opened.refresh(pair.refresh_token).access_token).subject == "user-1"
    with pytest.raises(polyrelay.ConfigError) as bad:
        TokenIssuer(keys, issuer=ISS, audience=AUD, redis_url="nope://user:hunter2secret@host")
    assert "hunter2secret" not in str(bad.value)


# --- no secrets ------------------------------------------------------------------


def test_secrets_and_tokens_never_appear_in_reprs_or_errors(
    asymmetric: Dict[str, Tuple[bytes, bytes]]
) -> None:
    secret = "correct horse battery staple, 32+ bytes"
    key = Key.hmac("k1", secret)
    keys = Keyset([key], signing_kid="k1")
    issuer = TokenIssuer(keys, issuer=ISS, audience=AUD)
    pair = issuer.issue("u")
    shown = " ".join(
        repr(x) for x in (key, keys, issuer, pair, issuer.verify_access(pair.access_token))
    )
    assert secret not in shown and "correct" not in shown
    assert pair.access_token not in shown and pair.refresh_token not in shown
    assert "k1" in shown and "hidden" in repr(pair)

    private_pem, _ = asymmetric["ES256"]
    broken = private_pem.replace(b"\n", b"\n#", 3)
    with pytest.raises(polyrelay.ConfigError) as refused:
        Key.from_private_pem("k", broken, "ES256")
    assert private_pem.decode().splitlines()[1] not in str(refused.value)
    with pytest.raises(polyrelay.ConfigError) as short:
        Key.hmac("k", "too short secret")
    assert "too short secret" not in str(short.value)
    with pytest.raises(TokenError) as bad:
        issuer.verify_access(pair.access_token[:-3] + "abc")
    assert pair.access_token.split(".")[1] not in str(bad.value)


def test_every_auth_error_is_a_polyrelay_error_and_not_a_provider_auth_error() -> None:
    for name in (
        "MalformedTokenError",
        "TokenExpiredError",
        "TokenNotYetValidError",
        "BadSignatureError",
        "BadAlgorithmError",
        "BadClaimError",
        "UnknownKeyError",
        "TokenRevokedError",
        "TokenReusedError",
        "AuthUnavailableError",
    ):
        cls = getattr(exceptions, name)
        assert issubclass(cls, exceptions.TokenError) and issubclass(cls, polyrelay.Error)
        assert not issubclass(cls, polyrelay.AllProvidersFailedError)


# --- time, on an injected clock ---------------------------------------------------------

RFC7515_A1 = (
    "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9"
    ".eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ"
    ".dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
)


def test_rfc7515_a1_verifies_on_a_clock_frozen_before_its_expiry() -> None:
    jwk = {
        "kty": "oct",
        "kid": "a1",
        "k": "AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow",
    }
    clock = FakeClock(datetime(2011, 3, 22, 18, 0, tzinfo=timezone.utc).timestamp())
    verifier = Verifier(Keyset([Key.from_jwk(jwk, "HS256")]), clock=clock)
    verified = verifier.verify(RFC7515_A1)
    assert verified["iss"] == "joe" and verified["http://example.com/is_root"] is True
    clock.advance(1300819380 + 60 - clock.wall)  # exp + leeway: expired from here
    with pytest.raises(TokenExpiredError):
        verifier.verify(RFC7515_A1)


def test_lifetimes_grace_window_and_denylist_follow_the_clock() -> None:
    clock = FakeClock(time.time())
    issuer = hs_issuer(reuse_grace=10, access_ttl=300, clock=clock)
    first = issuer.issue("user-1")
    second = issuer.refresh(first.refresh_token)
    clock.advance(9)
    assert issuer.refresh(first.refresh_token).refresh_token == second.refresh_token
    clock.advance(2)  # 11 s after the first use: past the grace window
    with pytest.raises(TokenReusedError):
        issuer.refresh(first.refresh_token)

    login = issuer.issue("user-2")
    issuer.revoke(login.access_token)
    with pytest.raises(TokenRevokedError):
        issuer.verify_access(login.access_token)
    # The denylist entry lives as long as the token; then the token is
    # simply expired.
    clock.advance(300 + 59)
    with pytest.raises(TokenRevokedError):
        issuer.verify_access(login.access_token)
    clock.advance(2)
    with pytest.raises(TokenExpiredError):
        issuer.verify_access(login.access_token)


@pytest.mark.parametrize(
    ("build", "field"),
    [
        (lambda: hs_issuer(access_ttl=-1), "access_ttl"),
        (lambda: hs_issuer(leeway=float("nan")), "leeway"),
        (lambda: hs_issuer(revocation_fail_mode="maybe"), "revocation_fail_mode"),
        (lambda: TokenIssuer(Keyset([Key.hmac("k", SECRET)]), issuer=ISS, audience=5), "audience"),
        (lambda: TokenIssuer(Keyset([Key.hmac("k", SECRET)]), issuer=ISS, audience=AUD), "auth"),
        (lambda: Verifier(Keyset(), audience=[1, 2]), "audience"),
        (lambda: Key.hmac("k", 12345), "secret"),
        (lambda: Key.hmac("k", SECRET, "RS512"), "alg"),
        (lambda: Key.from_jwk(42), "jwk"),
        (lambda: Keyset.from_jwks("not json"), "auth"),
        (lambda: Keyset([Key.hmac("k", SECRET), Key.hmac("k", SECRET)]), "auth"),
    ],
)
def test_bad_settings_raise_config_error_naming_the_field(build: Any, field: str) -> None:
    with pytest.raises(polyrelay.ConfigError) as refused:
        build()
    assert refused.value.field == field
