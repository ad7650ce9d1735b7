"""FastAPI integration: one client per app, bearer-token auth, and polyrelay
errors as clean HTTP answers. Needs the ``fastapi`` extra
(``pip install 'polyrelay[fastapi]'``).

::

    from fastapi import Depends, FastAPI
    from polyrelay.fastapi import ClientDep, add_exception_handlers, lifespan, require_user

    app = FastAPI(lifespan=lifespan(auth=issuer))
    add_exception_handlers(app)

    @app.get("/weather")
    async def weather(city: str, client: ClientDep, user=Depends(require_user(["weather"]))):
        return (await client.weather.current(city=city)).data

Status codes: a refused token 401 (``WWW-Authenticate: Bearer`` with
``error="invalid_token"``, RFC 6750 §3), a missing scope 403
(``error="insufficient_scope"``), invalid parameters 422, a prompt a
provider refused on content grounds 422 (a fixed text: the prompt and the
provider's reason are not echoed), rate limited or
quota used up 429 with ``Retry-After``, providers answering with something
unusable (a malformed body, a refused request) 502, no provider able to answer
otherwise (down, 5xx, timeouts, circuits open) 503 (with ``Retry-After`` when
known),
the call's deadline 504. Bodies are ``{"error": kind, "message": text}``
with fixed texts: provider names, attempt trails, key variables and
tracebacks stay in the server log.

Streaming: :func:`stream_response` answers with a streamed chat reply as
server-sent events, OpenAI's ``chat.completion.chunk`` format by default::

    @app.post("/chat/stream")
    async def chat_stream(body: Chat, client: ClientDep):
        return await stream_response(client.llm.stream(messages=body.messages))
"""

from __future__ import annotations

import json
import logging
import math
import secrets
import time
from contextlib import asynccontextmanager
from typing import (
    Annotated,
    AsyncContextManager,
    AsyncIterator,
    Awaitable,
    Callable,
    Dict,
    Literal,
    Mapping,
    Optional,
    Sequence,
    Tuple,
    Type,
    Union,
)

try:
    from fastapi import Depends, FastAPI, HTTPException, Request
    from fastapi.responses import JSONResponse, Response, StreamingResponse
except ImportError as missing:  # pragma: no cover - depends on the environment
    raise ImportError(
        "polyrelay.fastapi needs FastAPI: pip install 'polyrelay[fastapi]'"
    ) from missing

from ._client import AsyncClient
from ._native import AsyncChatStream, ChatChunk, Result
from .auth import Claims, TokenIssuer, Verifier
from .exceptions import (
    AllProvidersFailedError,
    AuthUnavailableError,
    ContentFilteredError,
    ContextLengthExceededError,
    Error,
    InvalidRequestError,
    NotFoundError,
    ProviderError,
    QuotaExhaustedError,
    RateLimitedError,
    StreamInterruptedError,
    TimeoutError,
    TokenError,
)

__all__ = [
    "ClientDep",
    "TokenAuthority",
    "add_exception_handlers",
    "error_response",
    "lifespan",
    "polyrelay_client",
    "require_user",
    "stream_response",
]

_log = logging.getLogger("polyrelay.fastapi")

#: What checks bearer tokens: an issuer (revocations included) or a
#: stateless verifier (a resource server holding only public keys).
TokenAuthority = Union[TokenIssuer, Verifier]

#: ``Retry-After`` when a 429 has no better estimate.
_DEFAULT_RETRY_AFTER = 60


def lifespan(
    client_factory: Callable[[], AsyncClient] = AsyncClient,
    *,
    auth: Optional[TokenAuthority] = None,
) -> Callable[[FastAPI], AsyncContextManager[None]]:
    """A FastAPI ``lifespan`` that opens one client at start-up (from
    ``client_factory``, default ``AsyncClient()`` configured from the
    environment), keeps it on ``app.state.polyrelay`` and closes it at
    shut-down. ``auth`` becomes the default token authority of
    :func:`require_user` (``app.state.polyrelay_auth``)."""

    @asynccontextmanager
    async def run(app: FastAPI) -> AsyncIterator[None]:
        client = client_factory()
        app.state.polyrelay = client
        if auth is not None:
            app.state.polyrelay_auth = auth
        try:
            yield
        finally:
            await client.aclose()

    return run


async def polyrelay_client(request: Request) -> AsyncIterator[AsyncClient]:
    """Dependency yielding the app's client (opened by :func:`lifespan`)."""
    client = getattr(request.app.state, "polyrelay", None)
    if not isinstance(client, AsyncClient):
        raise RuntimeError(
            "no polyrelay client: create the app with lifespan=polyrelay.fastapi.lifespan()"
        )
    yield client


#: ``client: ClientDep`` in a route's parameters injects the app's client.
ClientDep = Annotated[AsyncClient, Depends(polyrelay_client)]


def _challenge(
    error: Optional[str] = None, description: Optional[str] = None, scope: Optional[str] = None
) -> str:
    """A ``WWW-Authenticate: Bearer`` challenge (RFC 6750 §3). Values are
    fixed texts, so no quoting is needed."""
    params = ['realm="api"']
    if error is not None:
        params.append(f'error="{error}"')
    if description is not None:
        params.append(f'error_description="{description}"')
    if scope is not None:
        params.append(f'scope="{scope}"')
    return "Bearer " + ", ".join(params)


def _bearer_token(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        # RFC 6750 §3.1: no credentials, no error code.
        raise HTTPException(
            status_code=401,
            detail="authentication required",
            headers={"WWW-Authenticate": _challenge()},
        )
    return token


def _token_refused(error: TokenError) -> Tuple[int, Dict[str, str]]:
    """Status and headers for a refused token; the store being down is not
    the token's fault."""
    if isinstance(error, AuthUnavailableError):
        return 503, {"Retry-After": "1"}
    return 401, {"WWW-Authenticate": _challenge("invalid_token", str(error))}


def require_user(
    scopes: Sequence[str] = (), *, auth: Optional[TokenAuthority] = None
) -> Callable[[Request], Awaitable[Claims]]:
    """Dependency checking the request's bearer token and returning its
    :class:`~polyrelay.auth.Claims`.

    No or a non-bearer ``Authorization`` header: 401. A refused token: 401
    with ``error="invalid_token"`` and the reason (``token expired``, …).
    A token without every scope in ``scopes``: 403 with
    ``error="insufficient_scope"``. ``auth`` defaults to the one given to
    :func:`lifespan`.
    """
    # One scope given as a bare string is one scope, not its letters.
    wanted = (scopes,) if isinstance(scopes, str) else tuple(scopes)

    async def dependency(request: Request) -> Claims:
        authority = auth if auth is not None else getattr(request.app.state, "polyrelay_auth", None)
        if authority is None:
            raise RuntimeError("no token authority: pass auth= to require_user() or lifespan()")
        token = _bearer_token(request)
        try:
            if isinstance(authority, TokenIssuer):
                claims = await authority.averify_access(token)
            else:
                claims = authority.verify(token)
        except TokenError as refused:
            status, headers = _token_refused(refused)
            raise HTTPException(status_code=status, detail=str(refused), headers=headers) from None
        missing = [scope for scope in wanted if not claims.has_scope(scope)]
        if missing:
            raise HTTPException(
                status_code=403,
                detail="insufficient scope",
                headers={
                    "WWW-Authenticate": _challenge("insufficient_scope", scope=" ".join(wanted))
                },
            )
        return claims

    return dependency


def _retry_after(error: Error, default: Optional[int]) -> Optional[str]:
    if error.retry_after is not None:
        return str(max(1, math.ceil(error.retry_after)))
    return None if default is None else str(default)


#: Error class → status, public message and default ``Retry-After``; the
#: first matching row wins, so subclasses come before their bases.
_TABLE: Tuple[Tuple[Type[Error], int, str, Optional[int]], ...] = (
    (InvalidRequestError, 422, "the request's parameters are invalid", None),
    (ContentFilteredError, 422, "the request was refused by a content policy", None),
    (ContextLengthExceededError, 422, "the prompt is too long for every model", None),
    (StreamInterruptedError, 502, "the upstream stream was interrupted", None),
    (RateLimitedError, 429, "too many requests; retry later", _DEFAULT_RETRY_AFTER),
    (QuotaExhaustedError, 429, "quota used up; retry later", _DEFAULT_RETRY_AFTER),
    (TimeoutError, 504, "the upstream service did not answer in time", None),
    (ProviderError, 502, "the upstream service failed", None),
    (AllProvidersFailedError, 503, "the upstream service is unavailable", None),
    (NotFoundError, 404, "not found", None),
)


def _outage(error: Error) -> bool:
    """Whether every provider tried was simply down (connection refused,
    timed out, 5xx): the service is unavailable (503), not answered badly
    (502)."""
    tried = [a for a in error.attempts if a.tries > 0]
    return all(a.outcome == "transient" for a in tried)


def _public(error: Error) -> Tuple[int, str, Optional[int]]:
    """Status, fixed public message and default ``Retry-After`` of a
    provider-side error (not a token error)."""
    for cls, status, message, default_wait in _TABLE:
        if isinstance(error, cls):
            if isinstance(error, ProviderError) and _outage(error):
                return 503, "the upstream service is unavailable", default_wait
            return status, message, default_wait
    return 500, "internal error", None


def error_response(error: Error) -> JSONResponse:
    """The HTTP answer for a polyrelay error: a status from the table above
    and a body of fixed texts (plus ``field``/``expected`` for 422, which
    describe the caller's own input). Anything else is a 500."""
    if isinstance(error, TokenError):
        status, headers = _token_refused(error)
        body: Dict[str, object] = {"error": error.kind, "message": str(error)}
        return JSONResponse(body, status_code=status, headers=headers)
    status, message, default_wait = _public(error)
    if status == 500:
        return JSONResponse({"error": "internal", "message": message}, status_code=500)
    body = {"error": error.kind, "message": message}
    headers = {}
    wait = _retry_after(error, default_wait) if status in (429, 503) else None
    if wait is not None:
        headers["Retry-After"] = wait
        body["retry_after"] = int(wait)
    if isinstance(error, InvalidRequestError):
        body["field"] = error.field
        body["expected"] = error.expected
    return JSONResponse(body, status_code=status, headers=headers)


async def _handle(request: Request, error: Exception) -> JSONResponse:
    if not isinstance(error, Error):  # pragma: no cover - registered for Error only
        raise error
    # The details (attempt trail, provider statuses) are for operators.
    _log.warning("%s %s failed: %s (%s)", request.method, request.url.path, error.kind, error)
    return error_response(error)


def add_exception_handlers(app: FastAPI) -> None:
    """Answers every polyrelay error raised by a route with
    :func:`error_response`."""
    app.add_exception_handler(Error, _handle)


#: What :func:`stream_response` sends per chunk: OpenAI's
#: ``chat.completion.chunk`` objects, or ``{"text": ...}`` objects.
StreamFormat = Literal["openai", "text"]


def _event(payload: Mapping[str, object], event: Optional[str] = None) -> bytes:
    data = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
    head = "" if event is None else f"event: {event}\n"
    return f"{head}data: {data}\n\n".encode()


class _Events:
    """The server-sent events of one streamed reply, in one format."""

    def __init__(self, format: StreamFormat, model: Optional[str], reasoning: bool) -> None:
        self.format = format
        self.model = model or "polyrelay"
        self.reasoning = reasoning
        self.id = f"chatcmpl-{secrets.token_hex(12)}"
        self.created = int(time.time())
        self.sent_role = False

    def _openai(self, delta: Dict[str, object], **extra: object) -> bytes:
        choice: Dict[str, object] = {"index": 0, "delta": delta, "finish_reason": None}
        if not self.sent_role:
            delta["role"] = "assistant"
            self.sent_role = True
        payload: Dict[str, object] = {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [choice],
        }
        if "finish_reason" in extra:
            choice["finish_reason"] = extra.pop("finish_reason")
        payload.update(extra)
        return _event(payload)

    def chunk(self, chunk: ChatChunk) -> Optional[bytes]:
        """The event of a chunk, or ``None`` for reasoning left out."""
        if chunk.kind == "reasoning":
            if not self.reasoning:
                return None
            if self.format == "openai":
                return self._openai({"reasoning_content": chunk.reasoning})
            return _event({"reasoning": chunk.reasoning})
        if self.format == "openai":
            return self._openai({"content": chunk.text})
        return _event({"text": chunk.text})

    def end(self, result: Result) -> bytes:
        """The events closing a completed reply: finish reason and usage."""
        data = result.data
        usage = data.get("usage") or {}
        finish_reason = data.get("finish_reason") or "stop"
        if self.format == "text":
            return _event(
                {"finish_reason": finish_reason, "model": data.get("model"), "usage": usage},
                "done",
            )
        self.model = data.get("model") or self.model
        final = self._openai(
            {},
            finish_reason=finish_reason,
            usage={
                "prompt_tokens": usage.get("input_tokens"),
                "completion_tokens": usage.get("output_tokens"),
                "total_tokens": usage.get("total_tokens"),
            },
        )
        return final + b"data: [DONE]\n\n"

    @staticmethod
    def error(error: BaseException, partial_chars: int) -> bytes:
        """The final event of a reply that failed: fixed texts only."""
        if isinstance(error, Error):
            kind, message = error.kind, _public(error)[1]
        else:
            kind, message = "internal", "internal error"
        return _event(
            {"error": {"type": kind, "message": message, "partial_chars": partial_chars}},
            "error",
        )


async def stream_response(
    stream: AsyncChatStream,
    *,
    format: StreamFormat = "openai",
    model: Optional[str] = None,
    include_reasoning: bool = False,
    headers: Optional[Mapping[str, str]] = None,
) -> Response:
    """Answers with ``stream`` as server-sent events (``text/event-stream``).

    The stream is opened first: one that cannot open (every provider down,
    refused, …) answers with the same HTTP error as a plain call
    (:func:`error_response`), before any event. Then, with
    ``format="openai"``, one OpenAI ``chat.completion.chunk`` per chunk
    (``model`` names the model in them until the final chunk, which has
    the model that answered, the ``finish_reason`` and the ``usage``),
    then ``data: [DONE]``; with ``format="text"``, ``{"text": ...}`` per
    chunk, then an ``event: done`` with ``finish_reason``, ``model`` and
    ``usage``. Hidden reasoning is left out unless ``include_reasoning``
    (as ``reasoning_content`` deltas, or ``{"reasoning": ...}``).

    A failure after the first chunk ends the reply with an ``event: error``
    whose data is ``{"error": {"type": kind, "message": fixed text,
    "partial_chars": characters sent}}``; the details go to the server log.
    A client that disconnects closes the upstream request.
    """
    events = _Events(format, model, include_reasoning)
    try:
        first: Optional[ChatChunk] = await stream.__anext__()
    except StopAsyncIteration:
        first = None
    except Error as error:
        stream.close()
        _log.warning("a stream failed to open: %s (%s)", error.kind, error)
        return error_response(error)

    async def body() -> AsyncIterator[bytes]:
        chunk = first
        try:
            while chunk is not None:
                event = events.chunk(chunk)
                if event is not None:
                    yield event
                try:
                    chunk = await stream.__anext__()
                except StopAsyncIteration:
                    chunk = None
            yield events.end(stream.result)
        except Exception as error:
            if isinstance(error, Error):
                _log.warning("a stream failed: %s (%s)", error.kind, error)
            else:
                _log.exception("a stream failed")
            yield events.error(error, len(stream.text))
        finally:
            # Also when the client disconnected (the task is cancelled).
            stream.close()

    return StreamingResponse(
        body(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no", **(headers or {})},
    )
