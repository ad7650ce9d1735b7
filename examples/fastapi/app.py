"""The original backend's shape on polyrelay: login and refresh, then AI
chat, weather, finance, medical, entertainment and search routes, each a
few lines over one resilient client, behind the kit's protections.

Run it with ``uvicorn app:app`` from this folder (see README.md); create
users first with ``python app.py add-user NAME --scopes "chat weather"``
(the password is read from the terminal, or from standard input when it is
not one). Settings come from the environment:

* ``JWT_SECRET``: the HMAC secret tokens are signed with (at least 32
  bytes). Unset, a random one is made at start-up, so tokens die with the
  process.
* ``USERS_DB``: the SQLite file of users (default ``users.db`` here);
  passwords are stored as Argon2id hashes (argon2-cffi).
* ``CORS_ORIGINS``: comma-separated origins whose pages may call the API
  (none by default).
* ``RATE_PER_ADDRESS`` (``120/min``), ``RATE_PER_USER`` (``60/min``),
  ``LOGIN_ATTEMPTS_PER_USER`` (``20/min``): inbound limits;
  ``TRUSTED_PROXIES`` (``0``): reverse proxies in front that append to
  ``X-Forwarded-For``; ``LIMITS_REDIS_URL``: share the limits between
  processes.
* ``HSTS=1`` when every client comes over HTTPS; ``MAX_BODY_BYTES``
  (``65536``); ``CRITICAL_CAPABILITIES`` (``llm.chat,weather.current``):
  what ``/readyz`` requires.
* ``DASHBOARD=1``: serve polyrelay's dashboard page at ``/dashboard`` (off
  by default). It has no login (a browser opening a page sends no bearer
  token), so it is served to this machine only: requests from another
  address, or carrying ``Forwarded`` / ``X-Forwarded-For`` (through a
  proxy, where every request seems to come from loopback), get 403. Reach
  it from elsewhere through an SSH tunnel, not by exposing it.
  ``GET /analytics`` (scope ``admin``) gives the same hourly figures as
  JSON to any authorised client.
* Provider keys (``GROQ_API_KEY``, …) and ``POLYRELAY_*`` settings, read by
  ``polyrelay.AsyncClient()``.
"""

from __future__ import annotations

import argparse
import getpass
import logging
import os
import secrets
import sqlite3
import sys
from contextlib import closing
from pathlib import Path
from typing import Any, Dict, List, Literal, Optional

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from pydantic import BaseModel, Field

from polyrelay.auth import Claims, Key, Keyset, TokenIssuer
from polyrelay.fastapi import (
    ClientDep,
    LoginGuard,
    assistant_response,
    RequestIdFilter,
    dashboard_router,
    harden,
    lifespan,
    loopback_only,
    require_user,
    stream_response,
)

# polyrelay.fastapi logs each failed call's details (attempt trail, kind)
# with the request id, for operators; HTTP answers carry only fixed texts.
logging.basicConfig(
    level=logging.INFO, format="%(levelname)s %(name)s [%(request_id)s]: %(message)s"
)
for handler in logging.getLogger().handlers:
    handler.addFilter(RequestIdFilter())
log = logging.getLogger("example")

#: Every scope a user can be granted.
SCOPES = (
    "chat", "weather", "finance", "medical", "entertainment", "search", "news", "reference",
    "admin",
)


class UserStore:
    """Users in SQLite, passwords as Argon2id hashes (argon2-cffi's
    defaults, the RFC 9106 low-memory profile)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.hasher = PasswordHasher()
        # Checked against when the username is unknown, so that both cases
        # take the same time and say the same thing.
        self._absent = self.hasher.hash(secrets.token_urlsafe(16))
        with closing(self._connect()) as db, db:
            db.execute(
                "CREATE TABLE IF NOT EXISTS users ("
                " username TEXT PRIMARY KEY, password_hash TEXT NOT NULL, scopes TEXT NOT NULL)"
            )

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path)

    def add(self, username: str, password: str, scopes: str) -> None:
        """Creates or replaces a user."""
        unknown = set(scopes.split()) - set(SCOPES)
        if unknown:
            raise ValueError(f"unknown scopes: {' '.join(sorted(unknown))}")
        if len(password) < 12:
            raise ValueError("the password must have at least 12 characters")
        with closing(self._connect()) as db, db:
            db.execute(
                "INSERT OR REPLACE INTO users (username, password_hash, scopes) VALUES (?, ?, ?)",
                (username, self.hasher.hash(password), scopes),
            )

    def verify(self, username: str, password: str) -> Optional[str]:
        """The user's scopes if the password is theirs, else ``None``."""
        with closing(self._connect()) as db:
            row = db.execute(
                "SELECT password_hash, scopes FROM users WHERE username = ?", (username,)
            ).fetchone()
        stored, scopes = row if row is not None else (self._absent, None)
        try:
            self.hasher.verify(stored, password)
        except (VerificationError, InvalidHashError):
            return None
        if scopes is None:
            return None
        if self.hasher.check_needs_rehash(stored):
            with closing(self._connect()) as db, db:
                db.execute(
                    "UPDATE users SET password_hash = ? WHERE username = ?",
                    (self.hasher.hash(password), username),
                )
        return str(scopes)


def token_issuer() -> TokenIssuer:
    """The issuer of this app's tokens, keyed from ``JWT_SECRET``."""
    secret = os.environ.get("JWT_SECRET")
    if not secret:
        log.warning("JWT_SECRET is not set: using a random secret for this process")
        secret = secrets.token_urlsafe(48)
    keys = Keyset([Key.hmac("app-1", secret, "HS256")], signing_kid="app-1")
    return TokenIssuer(
        keys,
        issuer="polyrelay-example",
        audience="polyrelay-example-api",
        access_ttl=15 * 60,
        refresh_ttl=7 * 24 * 3600,
    )


def _setting(name: str, default: str) -> str:
    return os.environ.get(name) or default


users = UserStore(_setting("USERS_DB", str(Path(__file__).with_name("users.db"))))
issuer = token_issuer()
limits_redis = os.environ.get("LIMITS_REDIS_URL") or None
proxies = int(_setting("TRUSTED_PROXIES", "0"))
app = FastAPI(title="polyrelay example backend", lifespan=lifespan(auth=issuer))
harden(
    app,
    cors_origins=[o.strip() for o in _setting("CORS_ORIGINS", "").split(",") if o.strip()],
    max_body_bytes=int(_setting("MAX_BODY_BYTES", "65536")),
    per_address=_setting("RATE_PER_ADDRESS", "120/min"),
    per_user=_setting("RATE_PER_USER", "60/min"),
    redis_url=limits_redis,
    trusted_proxies=proxies,
    hsts=_setting("HSTS", "0") == "1",
    critical=_setting("CRITICAL_CAPABILITIES", "llm.chat,weather.current").split(","),
)
if _setting("DASHBOARD", "0") == "1":
    # No login on a page a browser opens: this machine only (see above).
    app.include_router(
        dashboard_router(prefix="/dashboard", dependencies=[Depends(loopback_only)])
    )
guard = LoginGuard(
    attempts_per_username=_setting("LOGIN_ATTEMPTS_PER_USER", "20/min"),
    trusted_proxies=proxies,
    redis_url=limits_redis,
)


class Login(BaseModel):
    username: str = Field(min_length=1, max_length=128)
    password: str = Field(min_length=1, max_length=1024)


class Refresh(BaseModel):
    refresh_token: str


class Message(BaseModel):
    role: str
    content: str


class Chat(BaseModel):
    messages: List[Message]
    model: Optional[str] = None
    max_tokens: Optional[int] = None


class AssistantAsk(BaseModel):
    question: str
    # The `conversation` of the previous answer's `done` event, to continue.
    conversation: Optional[Dict[str, Any]] = None
    # Capability names (default: every one the assistant offers).
    tools: Optional[List[str]] = None


@app.post("/auth/login")
async def login(body: Login, request: Request) -> Dict[str, Any]:
    # 429 while this username or address is locked out or over its limit.
    await guard.check(request, body.username)
    # Argon2 takes tens of milliseconds of CPU: off the event loop.
    scopes = await run_in_threadpool(users.verify, body.username, body.password)
    if scopes is None:
        guard.failed(request, body.username)
        # One answer for an unknown user and a wrong password.
        raise HTTPException(status_code=401, detail="wrong username or password")
    guard.succeeded(request, body.username)
    return issuer.issue(body.username, {"scope": scopes}).to_dict()


@app.post("/auth/refresh")
async def refresh(body: Refresh) -> Dict[str, Any]:
    # A reused token raises TokenReusedError (its whole login is revoked),
    # which the kit's error handlers turn into a 401.
    return (await issuer.arefresh(body.refresh_token)).to_dict()


@app.post("/auth/logout", status_code=204)
async def logout(body: Refresh) -> None:
    await issuer.arevoke_session(body.refresh_token)


@app.get("/me")
async def me(user: Claims = Depends(require_user())) -> Dict[str, Any]:
    return {"user": user.subject, "scopes": user.scopes}


@app.post("/ai/chat", dependencies=[Depends(require_user(["chat"]))])
async def chat(body: Chat, client: ClientDep) -> Dict[str, Any]:
    result = await client.llm.chat(
        messages=[m.model_dump() for m in body.messages],
        model=body.model,
        max_tokens=body.max_tokens,
    )
    return {"reply": result.data, "provider": result.provider}


@app.post("/ai/chat/stream", dependencies=[Depends(require_user(["chat"]))])
async def chat_stream(body: Chat, client: ClientDep) -> Response:
    # Server-sent events in OpenAI's chunk format, so OpenAI-compatible
    # clients can read it; a provider failing mid-answer ends it with an
    # `event: error`, and a client leaving cancels the provider's request.
    stream = client.llm.stream(
        messages=[m.model_dump() for m in body.messages],
        model=body.model,
        max_tokens=body.max_tokens,
    )
    return await stream_response(stream, model=body.model)


@app.post("/assistant", dependencies=[Depends(require_user(["chat"]))])
async def assistant(body: AssistantAsk, client: ClientDep) -> Response:
    # An LLM answering with polyrelay's capabilities as tools, streamed as
    # server-sent events: `event: tool` per finished tool call, the answer
    # as `{"text": ...}` pieces, then `event: done` with the conversation
    # to send back next time. At most 6 LLM turns and 5 cents a question.
    events = client.assistant_stream(
        body.question,
        conversation=body.conversation,
        tools=body.tools,
        max_steps=6,
        max_cost_usd=0.05,
    )
    return await assistant_response(events)


@app.get("/weather/current", dependencies=[Depends(require_user(["weather"]))])
async def weather(
    client: ClientDep,
    city: Optional[str] = None,
    lat: Optional[float] = None,
    lon: Optional[float] = None,
) -> Dict[str, Any]:
    result = await client.weather.current(city=city, lat=lat, lon=lon)
    return {"weather": result.data, "provider": result.provider, "cached": result.cached}


@app.get("/finance/fx", dependencies=[Depends(require_user(["finance"]))])
async def fx_rates(client: ClientDep, base: str = "EUR") -> Dict[str, Any]:
    result = await client.finance.fx_rates(base=base)
    return {"rates": result.data, "provider": result.provider}


@app.get("/medical/drugs", dependencies=[Depends(require_user(["medical"]))])
async def drug_label(client: ClientDep, name: str, limit: int = 3) -> Dict[str, Any]:
    result = await client.medical.drug_label(name=name, limit=limit)
    return {"labels": result.data, "provider": result.provider}


@app.get("/entertainment/movies", dependencies=[Depends(require_user(["entertainment"]))])
async def movies(client: ClientDep, query: str, limit: int = 5) -> Dict[str, Any]:
    result = await client.entertainment.movie_search(query=query, limit=limit)
    return {"movies": result.data, "provider": result.provider}


@app.get("/search", dependencies=[Depends(require_user(["search"]))])
async def search(client: ClientDep, query: str, limit: int = 5) -> Dict[str, Any]:
    result = await client.web.search(query=query, limit=limit)
    return {"results": result.data, "provider": result.provider}


@app.get("/search/meta", dependencies=[Depends(require_user(["search"]))])
async def meta_search(
    client: ClientDep, query: str, limit: int = 10, engines: Optional[str] = None
) -> Dict[str, Any]:
    # Every web engine at once, merged: each result lists its engines; the
    # engines that failed are in `missing`.
    result = await client.search.meta(query=query, limit=limit, engines=engines)
    return {"results": result.data, "provider": result.provider}


@app.get("/news", dependencies=[Depends(require_user(["news"]))])
async def news(client: ClientDep, query: str, limit: int = 10) -> Dict[str, Any]:
    result = await client.news.search(query=query, limit=limit)
    return {"news": result.data, "provider": result.provider}


@app.get("/news/meta", dependencies=[Depends(require_user(["news"]))])
async def news_meta(client: ClientDep, query: str, limit: int = 10) -> Dict[str, Any]:
    result = await client.news.meta(query=query, limit=limit)
    return {"news": result.data, "provider": result.provider}


@app.get("/finance/crypto", dependencies=[Depends(require_user(["finance"]))])
async def crypto(client: ClientDep, assets: str, vs: str = "usd") -> Dict[str, Any]:
    result = await client.crypto.price(assets=assets, vs_currencies=vs)
    return {"prices": result.data, "provider": result.provider}


@app.get("/finance/quote", dependencies=[Depends(require_user(["finance"]))])
async def quote(client: ClientDep, symbol: str) -> Dict[str, Any]:
    result = await client.finance.quote(symbol=symbol)
    return {"quote": result.data, "provider": result.provider}


@app.get("/entertainment/tv", dependencies=[Depends(require_user(["entertainment"]))])
async def tv(client: ClientDep, query: str, limit: int = 5) -> Dict[str, Any]:
    result = await client.tv.show_search(query=query, limit=limit)
    return {"shows": result.data, "provider": result.provider}


@app.get("/entertainment/books", dependencies=[Depends(require_user(["entertainment"]))])
async def books(client: ClientDep, query: str, limit: int = 5) -> Dict[str, Any]:
    result = await client.books.search(query=query, limit=limit)
    return {"books": result.data, "provider": result.provider}


@app.get("/entertainment/music", dependencies=[Depends(require_user(["entertainment"]))])
async def music(
    client: ClientDep,
    query: str,
    type: Literal["track", "album", "artist"] = "track",
    limit: int = 5,
) -> Dict[str, Any]:
    result = await client.music.search(query=query, type=type, limit=limit)
    return {"music": result.data, "provider": result.provider}


@app.get("/entertainment/videos", dependencies=[Depends(require_user(["entertainment"]))])
async def videos(client: ClientDep, query: str, limit: int = 5) -> Dict[str, Any]:
    result = await client.video.search(query=query, limit=limit)
    return {"videos": result.data, "provider": result.provider}


@app.get(
    "/entertainment/videos/{video_id}", dependencies=[Depends(require_user(["entertainment"]))]
)
async def video_details(client: ClientDep, video_id: str) -> Dict[str, Any]:
    result = await client.video.details(id=video_id)
    return {"video": result.data, "provider": result.provider}


@app.get(
    "/entertainment/videos/{video_id}/transcript",
    dependencies=[Depends(require_user(["entertainment"]))],
)
async def video_transcript(
    client: ClientDep, video_id: str, language: Optional[str] = None
) -> Dict[str, Any]:
    result = await client.video.transcript(id=video_id, language=language)
    return {"transcript": result.data, "provider": result.provider}


@app.get("/medical/literature", dependencies=[Depends(require_user(["medical"]))])
async def literature(client: ClientDep, query: str, limit: int = 5) -> Dict[str, Any]:
    result = await client.medical.literature_search(query=query, limit=limit)
    return {"papers": result.data, "provider": result.provider}


@app.get("/medical/trials", dependencies=[Depends(require_user(["medical"]))])
async def trials(
    client: ClientDep, query: Optional[str] = None, condition: Optional[str] = None, limit: int = 5
) -> Dict[str, Any]:
    result = await client.medical.clinical_trials(query=query, condition=condition, limit=limit)
    return {"trials": result.data, "provider": result.provider}


@app.get("/geo/geocode", dependencies=[Depends(require_user(["reference"]))])
async def geocode(client: ClientDep, query: str, limit: int = 5) -> Dict[str, Any]:
    result = await client.geo.geocode(query=query, limit=limit)
    return {"places": result.data, "provider": result.provider}


class Translation(BaseModel):
    text: List[str]
    target_lang: str
    source_lang: str = "auto"


@app.post("/translate", dependencies=[Depends(require_user(["reference"]))])
async def translate(body: Translation, client: ClientDep) -> Dict[str, Any]:
    result = await client.translate.text(
        text=body.text, target_lang=body.target_lang, source_lang=body.source_lang
    )
    return {"translations": result.data, "provider": result.provider}


@app.get("/dictionary/define", dependencies=[Depends(require_user(["reference"]))])
async def define(client: ClientDep, word: str, language: str = "en") -> Dict[str, Any]:
    result = await client.dictionary.define(word=word, language=language)
    return {"entry": result.data, "provider": result.provider}


@app.get("/analytics", dependencies=[Depends(require_user(["admin"]))])
async def analytics(
    client: ClientDep,
    by: Literal["hour", "day"] = "hour",
    group_by: str = "",
    capability: Optional[str] = None,
    provider: Optional[str] = None,
    since: Optional[str] = None,
    until: Optional[str] = None,
) -> Dict[str, Any]:
    """Calls, success and cache hit rates, latency, tokens and cost per hour
    or day; ``group_by`` is comma-separated (``capability``, ``provider``,
    ``tag``); ``since`` and ``until`` are RFC 3339 times."""
    rows = await client.analytics(
        by,
        [d.strip() for d in group_by.split(",") if d.strip()],
        capability=capability,
        provider=provider,
        since=since,
        until=until,
    )
    return {"rows": list(rows)}


def main(argv: Optional[List[str]] = None) -> int:
    """``python app.py add-user NAME --scopes "chat weather"``."""
    parser = argparse.ArgumentParser(description="The example backend's user store.")
    commands = parser.add_subparsers(dest="command", required=True)
    add = commands.add_parser("add-user", help="create or replace a user")
    add.add_argument("username")
    add.add_argument("--scopes", default="weather", help=f"space-separated, of: {' '.join(SCOPES)}")
    args = parser.parse_args(argv)
    if sys.stdin.isatty():
        password = getpass.getpass(f"password for {args.username}: ")
    else:
        password = sys.stdin.readline().rstrip("\n")
    try:
        users.add(args.username, password, args.scopes)
    except ValueError as refused:
        print(f"not added: {refused}", file=sys.stderr)
        return 2
    print(f"added {args.username} ({args.scopes}) to {users.path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
