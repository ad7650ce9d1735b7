"""The original backend's shape on polyrelay: login and refresh, then AI
chat, weather, finance, medical, entertainment and search routes, each a
few lines over one resilient client.

Run it with ``uvicorn app:app`` from this folder (see README.md). Settings
come from the environment:

* ``JWT_SECRET``: the HMAC secret tokens are signed with (at least 32
  bytes). Unset, a random one is made at start-up, so tokens die with the
  process.
* ``DEMO_PASSWORD``: the password of the demo users ``alice`` (every
  scope) and ``bob`` (``weather`` only). Unset, logins are refused.
* Provider keys (``GROQ_API_KEY``, …) and ``POLYRELAY_*`` settings, read by
  ``polyrelay.AsyncClient()``.
"""

from __future__ import annotations

import hmac
import logging
import os
import secrets
from typing import Any, Dict, List, Optional

from fastapi import Depends, FastAPI, HTTPException
from fastapi.responses import Response
from pydantic import BaseModel

from polyrelay.auth import Claims, Key, Keyset, TokenIssuer
from polyrelay.fastapi import (
    ClientDep,
    add_exception_handlers,
    lifespan,
    require_user,
    stream_response,
)

# polyrelay.fastapi logs each failed call's details (attempt trail, kind)
# for operators; HTTP answers carry only fixed texts.
logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
log = logging.getLogger("example")

#: The scopes each demo user is granted at login.
USERS: Dict[str, str] = {
    "alice": "chat weather finance medical entertainment search",
    "bob": "weather",
}


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


issuer = token_issuer()
app = FastAPI(title="polyrelay example backend", lifespan=lifespan(auth=issuer))
add_exception_handlers(app)


class Login(BaseModel):
    username: str
    password: str


class Refresh(BaseModel):
    refresh_token: str


class Message(BaseModel):
    role: str
    content: str


class Chat(BaseModel):
    messages: List[Message]
    model: Optional[str] = None
    max_tokens: Optional[int] = None


@app.post("/auth/login")
async def login(body: Login) -> Dict[str, Any]:
    expected = os.environ.get("DEMO_PASSWORD", "")
    scopes = USERS.get(body.username)
    # compare_digest: the time taken does not reveal how much matched.
    if not expected or scopes is None or not hmac.compare_digest(body.password, expected):
        raise HTTPException(status_code=401, detail="wrong username or password")
    return issuer.issue(body.username, {"scope": scopes}).to_dict()


@app.post("/auth/refresh")
async def refresh(body: Refresh) -> Dict[str, Any]:
    # A reused token raises TokenReusedError (its whole login is revoked),
    # which add_exception_handlers turns into a 401.
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


@app.get("/health")
async def health(client: ClientDep) -> Dict[str, Any]:
    return {"status": "ok", "providers": len(client.providers())}
