"""Inbound limits on polyrelay's own GCRA (:class:`polyrelay.InboundLimiter`,
in memory or shared through Redis): per client address (middleware), per
user (charged by :func:`require_user`), and login protection
(:class:`LoginGuard`).

Refusals answer 429 with ``Retry-After`` and the IETF httpapi draft's
fields, e.g. ``RateLimit-Policy: "address";q=120;w=60`` and
``RateLimit: "address";r=0;t=31``; admitted requests carry the same two
fields, so a client can slow down before it is refused.
"""

from __future__ import annotations

import hashlib
import math
import time
from typing import Dict, List, Optional, Sequence, Tuple, Union

from fastapi import FastAPI, HTTPException, Request, Response

from .._native import FakeClock, InboundLimiter
from ..exceptions import ConfigError
from ._asgi import ASGIApp, Message, Receive, Scope, Send
from ._responses import json_error

#: A limit given as a rate (``"60/min"``) or as a ready limiter (to set its
#: burst, share it through Redis, or drive it by a fake clock).
RateSpec = Union[str, InboundLimiter]

#: ``(allowed, retry_after_s, remaining, reset_s)``, as the limiter answers.
Decision = Tuple[bool, float, int, float]

_TOO_MANY = "too many requests; retry later"


def _limiter(
    spec: RateSpec, name: str, redis_url: Optional[str], clock: Optional[FakeClock]
) -> InboundLimiter:
    if isinstance(spec, InboundLimiter):
        return spec
    return InboundLimiter(spec, name=name, redis_url=redis_url, clock=clock)


def _seconds(value: float) -> int:
    return max(0, math.ceil(value))


def rate_limit_headers(policy: str, limiter: InboundLimiter, decision: Decision) -> Dict[str, str]:
    """The ``RateLimit-Policy`` and ``RateLimit`` fields of a decision
    (``q`` the burst, ``w`` the rate's window; ``r`` requests left, ``t``
    seconds until the budget is full), plus ``Retry-After`` on a refusal."""
    allowed, retry_after, remaining, reset = decision
    headers = {
        "RateLimit-Policy": f'"{policy}";q={limiter.limit};w={_seconds(limiter.window)}',
        "RateLimit": f'"{policy}";r={remaining};t={_seconds(reset)}',
    }
    if not allowed:
        headers["Retry-After"] = str(max(1, _seconds(retry_after)))
    return headers


class _Refused(HTTPException):
    """A 429 raised from a dependency; :func:`add_exception_handlers`
    answers it with the kit's JSON error body."""

    def __init__(self, headers: Dict[str, str], kind: str = "rate_limited") -> None:
        super().__init__(status_code=429, detail=_TOO_MANY, headers=headers)
        self.kind = kind


def client_address(scope: Scope, trusted_proxies: int = 0) -> str:
    """The client's address: the peer's, or with ``trusted_proxies`` > 0
    the address that many hops back in ``X-Forwarded-For`` (the entries
    further left can be forged by the client)."""
    if trusted_proxies > 0:
        forwarded: List[str] = [
            part.strip()
            for name, value in scope.get("headers", [])
            if name == b"x-forwarded-for"
            for part in bytes(value).decode("latin-1").split(",")
            if part.strip()
        ]
        if forwarded:
            return forwarded[-min(trusted_proxies, len(forwarded))]
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


class AddressRateLimitMiddleware:
    """ASGI middleware limiting requests per client address."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        limiter: InboundLimiter,
        trusted_proxies: int = 0,
        exempt: Sequence[str] = (),
    ) -> None:
        self.app = app
        self.limiter = limiter
        self.trusted_proxies = trusted_proxies
        self.exempt = frozenset(exempt)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.exempt:
            await self.app(scope, receive, send)
            return
        address = client_address(scope, self.trusted_proxies)
        decision: Decision = await self.limiter.acheck(address)
        headers = rate_limit_headers("address", self.limiter, decision)
        if not decision[0]:
            refusal = json_error(
                429, "rate_limited", _TOO_MANY, headers, retry_after=int(headers["Retry-After"])
            )
            await refusal(scope, receive, send)
            return
        extra = [(k.lower().encode(), v.encode()) for k, v in headers.items()]

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def add_rate_limits(
    app: FastAPI,
    *,
    per_address: Optional[RateSpec] = None,
    per_user: Optional[RateSpec] = None,
    redis_url: Optional[str] = None,
    trusted_proxies: int = 0,
    exempt: Sequence[str] = ("/healthz", "/readyz"),
    clock: Optional[FakeClock] = None,
) -> None:
    """Limits inbound requests per client address (every HTTP request but
    the ``exempt`` paths) and per user (the subject of each token
    :func:`require_user` accepts), e.g. ``per_address="120/min",
    per_user="60/min"``. A rate given as text makes a limiter with a burst
    of the rate's requests, shared through ``redis_url`` when given (keys
    hashed; while Redis is unreachable each process limits on its own).
    ``trusted_proxies``: how many reverse proxies in front of the app append
    to ``X-Forwarded-For`` (0: the peer address is the client)."""
    if per_user is not None:
        app.state.polyrelay_user_limit = _limiter(per_user, "user", redis_url, clock)
    if per_address is not None:
        app.add_middleware(
            AddressRateLimitMiddleware,
            limiter=_limiter(per_address, "address", redis_url, clock),
            trusted_proxies=trusted_proxies,
            exempt=tuple(exempt),
        )


async def check_user_limit(request: Request, response: Optional[Response], subject: str) -> None:
    """Charges ``subject`` one request of the app's per-user limit, if any:
    raises a 429 over it, else sets the ``RateLimit`` fields on
    ``response``."""
    limiter = getattr(request.app.state, "polyrelay_user_limit", None)
    if not isinstance(limiter, InboundLimiter):
        return
    decision: Decision = await limiter.acheck(subject)
    headers = rate_limit_headers("user", limiter, decision)
    if not decision[0]:
        raise _Refused(headers)
    if response is not None:
        for name, value in headers.items():
            response.headers.append(name, value)


class _Failures:
    """Failed logins of one key and the lockout they earned."""

    __slots__ = ("count", "last", "locked_until")

    def __init__(self) -> None:
        self.count = 0
        self.last = 0.0
        self.locked_until = 0.0


class LoginGuard:
    """Brute-force protection for a login route, per username and per
    client address:

    * every attempt is charged to both GCRA limits (``attempts_per_username``,
      ``attempts_per_address``): over either, 429;
    * failed attempts count per username and per address; from the
      ``failures_before_lockout``-th on, each failure locks the key for
      ``lockout`` seconds, doubling with each further failure up to
      ``max_lockout``; while locked, attempts get 429 with ``Retry-After``
      without the password being checked;
    * a success clears the username's failures (not the address's, so one
      account of one's own cannot reset guesses at others); failures are
      forgotten after ``forget_after`` seconds without one.

    Unknown usernames are counted exactly like known ones, so the answers
    never tell whether a username exists. Usernames are kept only as
    digests. The failure counts live in this process; the attempt limits
    are shared through ``redis_url`` when given. ``clock`` (a
    :class:`polyrelay.testing.FakeClock`) drives both in tests.

    ::

        guard = LoginGuard()

        @app.post("/auth/login")
        async def login(body: Login, request: Request):
            await guard.check(request, body.username)
            if not valid(body.username, body.password):
                guard.failed(request, body.username)
                raise HTTPException(401, "wrong username or password")
            guard.succeeded(request, body.username)
            ...
    """

    def __init__(
        self,
        *,
        attempts_per_username: RateSpec = "20/min",
        attempts_per_address: RateSpec = "100/min",
        failures_before_lockout: int = 5,
        address_failures_before_lockout: int = 20,
        lockout: float = 30.0,
        max_lockout: float = 3600.0,
        forget_after: float = 3600.0,
        trusted_proxies: int = 0,
        redis_url: Optional[str] = None,
        clock: Optional[FakeClock] = None,
    ) -> None:
        if failures_before_lockout < 1 or address_failures_before_lockout < 1:
            raise ConfigError("failures before lockout must be at least 1", field="failures")
        if not 0 < lockout <= max_lockout:
            raise ConfigError("lockout must be positive and at most max_lockout", field="lockout")
        self._usernames = _limiter(attempts_per_username, "login-user", redis_url, clock)
        self._addresses = _limiter(attempts_per_address, "login-address", redis_url, clock)
        self._thresholds = {"user": failures_before_lockout, "address": address_failures_before_lockout}
        self._lockout = lockout
        self._max_lockout = max_lockout
        self._forget_after = forget_after
        self._trusted_proxies = trusted_proxies
        self._clock = clock
        self._failures: Dict[Tuple[str, str], _Failures] = {}

    def _now(self) -> float:
        return self._clock.wall if self._clock is not None else time.monotonic()

    def _keys(self, request: Request, username: str) -> List[Tuple[str, str]]:
        digest = hashlib.sha256(username.casefold().encode()).hexdigest()
        return [("user", digest), ("address", client_address(request.scope, self._trusted_proxies))]

    def _current(self, key: Tuple[str, str], now: float) -> Optional[_Failures]:
        entry = self._failures.get(key)
        if entry is not None and entry.locked_until <= now and now - entry.last > self._forget_after:
            del self._failures[key]
            return None
        return entry

    async def check(self, request: Request, username: str) -> None:
        """Raises a 429 (``Retry-After``) while the username or the address
        is locked out or over its attempt limit; else charges the attempt."""
        wait = self.lockout_of(request, username)
        if wait > 0:
            raise _Refused({"Retry-After": str(max(1, _seconds(wait)))}, kind="locked_out")
        address = client_address(request.scope, self._trusted_proxies)
        for limiter, key in ((self._usernames, username.casefold()), (self._addresses, address)):
            decision: Decision = await limiter.acheck(key)
            if not decision[0]:
                raise _Refused(rate_limit_headers("login", limiter, decision))

    def failed(self, request: Request, username: str) -> None:
        """Counts a failed attempt (wrong password or unknown username)."""
        now = self._now()
        if len(self._failures) > 10_000:
            for key in list(self._failures):
                self._current(key, now)
        for key in self._keys(request, username):
            entry = self._current(key, now) or self._failures.setdefault(key, _Failures())
            entry.count += 1
            entry.last = now
            beyond = entry.count - self._thresholds[key[0]]
            if beyond >= 0:
                lock = min(self._lockout * 2 ** min(beyond, 32), self._max_lockout)
                entry.locked_until = now + lock

    def succeeded(self, request: Request, username: str) -> None:
        """Clears the username's failures after a successful login."""
        self._failures.pop(self._keys(request, username)[0], None)

    def lockout_of(self, request: Request, username: str) -> float:
        """Seconds the username or the address is still locked out (0 when
        not), for logs and tests."""
        now = self._now()
        locks = [
            entry.locked_until - now
            for key in self._keys(request, username)
            if (entry := self._current(key, now)) is not None
        ]
        return max([0.0, *locks])
