"""polyrelay.fastapi's protections over real HTTP: small apps served by a
real uvicorn on loopback (in a thread), driven with httpx; time-dependent
limits on a fake clock."""

from __future__ import annotations

import asyncio
import logging
import subprocess
import time
from typing import Any, Callable, ContextManager, Dict, Iterator, List, Optional

import httpx
import pytest
from fastapi import Depends, FastAPI, HTTPException, Request
from pydantic import BaseModel

import polyrelay
from polyrelay import InboundLimiter
from polyrelay.auth import Claims, Key, Keyset, TokenIssuer
from polyrelay.exceptions import AuthUnavailableError, ConfigError
from polyrelay.fastapi import (
    ClientDep,
    LoginGuard,
    RequestIdFilter,
    add_cors,
    harden,
    lifespan,
    readiness,
    request_id,
    require_user,
)
from polyrelay.testing import Emulator, FakeClock, Fault

SECRET = b"an HMAC secret that is 32 bytes+"
ORIGIN = "https://app.example"

#: The conftest fixture running an app on a real uvicorn.
Serve = Callable[[FastAPI], ContextManager[httpx.Client]]


def issuer() -> TokenIssuer:
    keys = Keyset([Key.hmac("k", SECRET)], signing_kid="k")
    return TokenIssuer(keys, issuer="i", audience="a")


def kit_app(
    clock: Optional[FakeClock] = None,
    client_factory: Any = None,
    auth: Optional[TokenIssuer] = None,
    **options: Any,
) -> FastAPI:
    factory = client_factory or (lambda: polyrelay.AsyncClient({}))
    app = FastAPI(lifespan=lifespan(factory, auth=auth or issuer()))
    harden(app, clock=clock, **options)

    @app.get("/ping")
    async def ping() -> Dict[str, Any]:
        return {"pong": True, "request_id": request_id()}

    @app.get("/me")
    async def me(user: Claims = Depends(require_user())) -> Dict[str, Any]:
        return {"user": user.subject}

    @app.post("/echo")
    async def echo(request: Request) -> Dict[str, int]:
        return {"received": len(await request.body())}

    @app.post("/auth/token")
    async def token() -> Dict[str, str]:
        return {"token": "x"}

    return app


def test_cors_preflight_accepts_named_origins_and_refuses_others(serve: Serve) -> None:
    with serve(kit_app(cors_origins=[ORIGIN], cors_credentials=True)) as http:
        preflight = {"Access-Control-Request-Method": "POST"}
        allowed = http.options("/echo", headers={"Origin": ORIGIN, **preflight})
        assert allowed.status_code == 200
        assert allowed.headers["access-control-allow-origin"] == ORIGIN
        assert allowed.headers["access-control-allow-credentials"] == "true"
        refused = http.options("/echo", headers={"Origin": "https://evil.example", **preflight})
        assert refused.status_code == 400
        assert "access-control-allow-origin" not in refused.headers
        simple = http.get("/ping", headers={"Origin": ORIGIN})
        assert simple.headers["access-control-allow-origin"] == ORIGIN
        assert "X-Request-ID" in simple.headers["access-control-expose-headers"]
        assert "access-control-allow-origin" not in http.get(
            "/ping", headers={"Origin": "https://evil.example"}
        ).headers


@pytest.mark.parametrize(
    ("origins", "credentials"),
    [(["*"], True), ([], False), (["https://app.example/"], False), (["app.example"], False)],
)
def test_cors_refuses_unsafe_settings_at_setup(origins: List[str], credentials: bool) -> None:
    with pytest.raises(ConfigError):
        add_cors(FastAPI(), origins, allow_credentials=credentials)


def test_per_address_limit_answers_429_with_ratelimit_fields(serve: Serve) -> None:
    clock = FakeClock(1_700_000_000.0)
    with serve(kit_app(clock=clock, per_address="3/min")) as http:
        for left in (2, 1, 0):
            answer = http.get("/ping")
            assert answer.status_code == 200
            assert answer.headers["RateLimit-Policy"] == '"address";q=3;w=60'
            assert answer.headers["RateLimit"].startswith(f'"address";r={left};t=')
        refused = http.get("/ping", headers={"X-Request-ID": "rl-1"})
        assert refused.status_code == 429
        assert refused.headers["Retry-After"] == "20"
        assert refused.headers["RateLimit"] == '"address";r=0;t=60'
        assert refused.headers["X-Request-ID"] == "rl-1"
        assert refused.json() == {
            "error": "rate_limited",
            "message": "too many requests; retry later",
            "retry_after": 20,
            "request_id": "rl-1",
        }
        # Probes are never limited.
        assert http.get("/healthz").status_code == 200
        clock.advance(20)
        assert http.get("/ping").status_code == 200
        assert http.get("/ping").status_code == 429


def test_per_user_limit_charges_each_token_subject(serve: Serve) -> None:
    clock = FakeClock(1_700_000_000.0)
    tokens = issuer()
    alice = tokens.issue("alice").access_token
    bob = tokens.issue("bob").access_token
    app = kit_app(clock=clock, auth=tokens, per_user="2/min", per_address="100/min")
    with serve(app) as http:
        for left in (1, 0):
            answer = http.get("/me", headers={"Authorization": f"Bearer {alice}"})
            assert answer.status_code == 200
            assert f'"user";r={left};' in answer.headers["RateLimit"]
            assert '"address";' in answer.headers["RateLimit"]
        refused = http.get("/me", headers={"Authorization": f"Bearer {alice}"})
        assert refused.status_code == 429
        assert refused.headers["Retry-After"] == "30"
        assert refused.headers["RateLimit-Policy"].count('"user";q=2;w=60') == 1
        assert refused.json()["error"] == "rate_limited"
        assert http.get("/me", headers={"Authorization": f"Bearer {bob}"}).status_code == 200


class Login(BaseModel):
    username: str
    password: str


def login_app(guard: LoginGuard) -> FastAPI:
    app = kit_app()

    @app.post("/auth/login")
    async def login(body: Login, request: Request) -> Dict[str, str]:
        await guard.check(request, body.username)
        if body.username != "alice" or body.password != "right":
            guard.failed(request, body.username)
            raise HTTPException(401, "wrong username or password")
        guard.succeeded(request, body.username)
        return {"ok": "yes"}

    return app


def test_login_lockout_grows_and_a_success_resets_it(serve: Serve) -> None:
    clock = FakeClock(1_700_000_000.0)
    guard = LoginGuard(failures_before_lockout=3, lockout=10, clock=clock)

    def attempt(http: httpx.Client, password: str, user: str = "alice") -> httpx.Response:
        return http.post("/auth/login", json={"username": user, "password": password})

    with serve(login_app(guard)) as http:
        assert [attempt(http, "wrong").status_code for _ in range(3)] == [401, 401, 401]
        locked = attempt(http, "right")  # even the right password waits
        assert locked.status_code == 429
        assert locked.headers["Retry-After"] == "10"
        assert locked.json()["error"] == "locked_out"
        clock.advance(10)
        assert attempt(http, "wrong").status_code == 401
        assert attempt(http, "right").headers["Retry-After"] == "20"  # doubled
        clock.advance(20)
        assert attempt(http, "wrong").status_code == 401
        assert attempt(http, "right").headers["Retry-After"] == "40"
        clock.advance(40)
        assert attempt(http, "right").status_code == 200
        # Reset: one failure locks nothing.
        assert attempt(http, "wrong").status_code == 401
        assert attempt(http, "right").status_code == 200

        # An unknown username is answered and locked exactly alike.
        answers = [attempt(http, "x", user="nobody") for _ in range(4)]
        assert [a.status_code for a in answers] == [401, 401, 401, 429]
        assert answers[3].headers["Retry-After"] == "10"


def test_the_21st_login_attempt_in_a_minute_is_refused(serve: Serve) -> None:
    clock = FakeClock(1_700_000_000.0)
    guard = LoginGuard(failures_before_lockout=100, address_failures_before_lockout=100, clock=clock)
    with serve(login_app(guard)) as http:
        codes = [
            http.post("/auth/login", json={"username": "alice", "password": "wrong"}).status_code
            for _ in range(21)
        ]
        assert codes == [401] * 20 + [429]
        refused = http.post("/auth/login", json={"username": "alice", "password": "right"})
        assert refused.status_code == 429
        assert refused.headers["Retry-After"] == "3"
        assert refused.headers["RateLimit-Policy"] == '"login";q=20;w=60'
        # Another username from the same address is not refused.
        other = http.post("/auth/login", json={"username": "bob", "password": "wrong"})
        assert other.status_code == 401
        clock.advance(3)
        ok = http.post("/auth/login", json={"username": "alice", "password": "right"})
        assert ok.status_code == 200


def test_bodies_over_the_limit_get_413_declared_or_streamed(serve: Serve) -> None:
    with serve(kit_app(max_body_bytes=1000)) as http:
        assert http.post("/echo", content=b"x" * 1000).json() == {"received": 1000}
        declared = http.post("/echo", content=b"x" * 1001)
        assert declared.status_code == 413
        assert declared.json()["error"] == "body_too_large"
        def chunks() -> Iterator[bytes]:
            for _ in range(100):
                yield b"y" * 600

        streamed = http.post("/echo", content=chunks())  # chunked: no length
        assert streamed.status_code == 413
        assert streamed.json()["error"] == "body_too_large"
        assert "request_id" in streamed.json()


def test_security_headers_on_every_answer(serve: Serve) -> None:
    with serve(kit_app()) as http:
        answer = http.get("/ping")
        assert answer.headers["X-Content-Type-Options"] == "nosniff"
        assert answer.headers["X-Frame-Options"] == "DENY"
        assert answer.headers["Referrer-Policy"] == "no-referrer"
        assert "frame-ancestors 'none'" in answer.headers["Content-Security-Policy"]
        assert "Strict-Transport-Security" not in answer.headers
        assert "Cache-Control" not in answer.headers
        assert http.post("/auth/token").headers["Cache-Control"] == "no-store"
        # Refusals made before the app (404 here) carry them too.
        assert http.get("/missing").headers["X-Frame-Options"] == "DENY"
    with serve(kit_app(hsts=True)) as http:
        assert http.get("/ping").headers["Strict-Transport-Security"].startswith("max-age=")


WEATHER_ONLY_OPEN_METEO = {
    "defaults": {"retry": {"max_attempts": 1}},
    "capabilities": {"weather.current": {"chain": ["open-meteo"], "max_wait": "0s"}},
    "providers": {
        "open-meteo": {
            "breaker": {
                "sliding_window_size": 2,
                "minimum_number_of_calls": 2,
                "wait_duration_in_open_state": "1s",
            }
        }
    },
}


def weather_app() -> FastAPI:
    app = kit_app(
        client_factory=lambda: polyrelay.AsyncClient(WEATHER_ONLY_OPEN_METEO),
        critical=["weather.current"],
    )

    @app.get("/weather")
    async def weather(client: ClientDep) -> Any:
        return (await client.weather.current(lat=52.5, lon=13.4)).data

    return app


def test_readyz_turns_503_while_a_critical_capability_is_down_and_back(
    emu: Emulator, caplog: pytest.LogCaptureFixture, serve: Serve
) -> None:
    caplog.set_level(logging.WARNING, logger="polyrelay.fastapi")
    with serve(weather_app()) as http:
        live = http.get("/healthz")
        assert (live.status_code, live.json()) == (200, {"status": "ok"})
        ready = http.get("/readyz")
        assert ready.status_code == 200
        assert ready.json() == {
            "status": "ready",
            "capabilities": {"weather.current": "ready"},
            "redis": "unused",
        }
        emu.fault_always("/open-meteo/*", Fault.status(503))
        for n in range(2):
            failed = http.get("/weather", headers={"X-Request-ID": f"call-{n}"})
            assert failed.status_code == 503
            assert failed.json()["request_id"] == f"call-{n}"
        down = http.get("/readyz")
        assert down.status_code == 503
        assert down.json()["capabilities"] == {"weather.current": "unavailable"}
        assert down.headers["Cache-Control"] == "no-store"
        emu.clear_faults()
        time.sleep(1.1)  # the breaker's open period, configured to 1 s
        # health() reports a breaker as it stands: the next call is its
        # half-open trial, and its success makes the app ready again.
        assert http.get("/weather").status_code == 200
        assert http.get("/readyz").status_code == 200
    # The failed call's log line names its request id and its trail.
    lines = [r.getMessage() for r in caplog.records if r.name == "polyrelay.fastapi"]
    assert any("[request call-1]" in line and "open-meteo" in line for line in lines), lines


def test_readiness_requires_redis_when_used() -> None:
    health = {
        "state_backend": "redis",
        "redis_degraded": True,
        "capabilities": {"llm.chat": {"ready": ["groq"]}},
    }
    assert readiness(health, ["llm.chat"])["status"] == "unavailable"
    health["redis_degraded"] = False
    assert readiness(health, ["llm.chat"]) == {
        "status": "ready",
        "capabilities": {"llm.chat": "ready"},
        "redis": "ok",
    }
    with pytest.raises(ConfigError):
        harden(FastAPI(), critical=["weather.nowcast"])


def test_request_ids_are_echoed_or_made_and_reach_log_records(
    caplog: pytest.LogCaptureFixture, serve: Serve
) -> None:
    app = kit_app()
    seen: List[Optional[str]] = []

    @app.get("/logged")
    async def logged() -> Dict[str, str]:
        logging.getLogger("kit-test").warning("inside the route")
        seen.append(request_id())
        return {}

    caplog.handler.addFilter(RequestIdFilter())
    caplog.set_level(logging.WARNING, logger="kit-test")
    with serve(app) as http:
        given = http.get("/ping", headers={"X-Request-ID": "abc-123.x:y_z"})
        assert given.headers["X-Request-ID"] == "abc-123.x:y_z"
        assert given.json()["request_id"] == "abc-123.x:y_z"
        for unsafe in ("x" * 129, "has space", "new\tline", ""):
            made = http.get("/ping", headers={"X-Request-ID": unsafe})
            assert made.headers["X-Request-ID"] != unsafe
            assert len(made.headers["X-Request-ID"]) == 32
        fresh = http.get("/ping").headers["X-Request-ID"]
        assert fresh != http.get("/ping").headers["X-Request-ID"]
        http.get("/logged", headers={"X-Request-ID": "log-me"})
    assert seen == ["log-me"]
    record = next(r for r in caplog.records if r.name == "kit-test")
    assert getattr(record, "request_id") == "log-me"


def test_token_issuer_close_is_idempotent_and_fails_closed() -> None:
    tokens = issuer()
    pair = tokens.issue("alice")
    assert tokens.verify_access(pair.access_token).subject == "alice"
    tokens.close()
    tokens.close()
    assert tokens.closed and "closed" in repr(tokens)
    for operation in (
        lambda: tokens.verify_access(pair.access_token),
        lambda: tokens.refresh(pair.refresh_token),
        lambda: tokens.issue("bob"),
    ):
        with pytest.raises(AuthUnavailableError, match="token issuer closed"):
            operation()

    async def closes_async() -> None:
        other = issuer()
        await other.aclose()
        await other.aclose()
        assert other.closed
        with pytest.raises(AuthUnavailableError):
            await other.averify_access(pair.access_token)

    asyncio.run(closes_async())


def test_lifespan_closes_the_token_issuer(serve: Serve) -> None:
    tokens = issuer()
    with serve(kit_app(auth=tokens)) as http:
        token = tokens.issue("alice").access_token
        assert http.get("/me", headers={"Authorization": f"Bearer {token}"}).status_code == 200
        assert not tokens.closed
    assert tokens.closed


def redis_clients(url: str) -> int:
    port = url.rsplit(":", 1)[1]
    listing = subprocess.run(
        ["redis-cli", "-p", port, "CLIENT", "LIST"], capture_output=True, text=True, check=True
    ).stdout
    return len([line for line in listing.splitlines() if "cmd=client" not in line])


def test_closing_a_redis_backed_issuer_releases_its_connection(redis_url: str) -> None:
    before = redis_clients(redis_url)
    tokens = TokenIssuer(
        Keyset([Key.hmac("k", SECRET)], signing_kid="k"), issuer="i", audience="a", redis_url=redis_url
    )
    pair = tokens.issue("alice")
    assert tokens.verify_access(pair.access_token).subject == "alice"
    assert redis_clients(redis_url) > before
    tokens.close()
    deadline = time.monotonic() + 5
    while redis_clients(redis_url) > before:
        assert time.monotonic() < deadline, "the issuer's Redis connection stayed open"
        time.sleep(0.05)
    with pytest.raises(AuthUnavailableError, match="token issuer closed"):
        tokens.verify_access(pair.access_token)


def test_inbound_limits_shared_through_redis_hash_their_keys(redis_url: str) -> None:
    first = InboundLimiter("2/min", name="shared", redis_url=redis_url)
    second = InboundLimiter("2/min", name="shared", redis_url=redis_url)
    assert first.shared and "store=redis" in repr(first)
    assert first.check("198.51.100.9")[0]
    allowed, _, remaining, _ = second.check("198.51.100.9")
    assert (allowed, remaining) == (True, 0)
    allowed, retry_after, remaining, reset = asyncio.run(_acheck(first, "198.51.100.9"))
    assert not allowed and 25 < retry_after <= 30 and remaining == 0
    assert not first.degraded
    port = redis_url.rsplit(":", 1)[1]
    keys = subprocess.run(
        ["redis-cli", "-p", port, "--scan", "--pattern", "polyrelay:in:*"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert len(keys) == 1 and keys[0].startswith("polyrelay:in:shared:{"), keys
    assert "198.51.100.9" not in keys[0]


async def _acheck(limiter: InboundLimiter, key: str) -> Any:
    return await limiter.acheck(key)


def test_inbound_limiter_settings_are_checked() -> None:
    for bad in ("ten/s", "0/s", "5/fortnight"):
        with pytest.raises(ConfigError):
            InboundLimiter(bad)
    with pytest.raises(ConfigError):
        InboundLimiter("1/s", name="Bad Name")
    for settings in ({"failures_before_lockout": 0}, {"lockout": 10, "max_lockout": 5}):
        with pytest.raises(ConfigError):
            LoginGuard(**settings)  # type: ignore[arg-type]
    limiter = InboundLimiter("10/s", burst=3)
    assert (limiter.limit, limiter.window, limiter.shared) == (3, 1.0, False)
    assert [limiter.check("k")[0] for _ in range(4)] == [True, True, True, False]
