"""polyrelay.fastapi's pieces on their own: the lifespan and client
dependency, require_user with a stateless verifier, and the error table
(the example app test drives them over real HTTP)."""

from __future__ import annotations

import json
from typing import Any, Dict, List, Optional, Tuple

import jwt
import pytest
from fastapi import FastAPI, HTTPException
from starlette.requests import Request

import polyrelay
from polyrelay import _native
from polyrelay.auth import Key, Keyset, TokenIssuer, Verifier
from polyrelay.exceptions import AuthUnavailableError, TokenExpiredError
from polyrelay.fastapi import (
    error_response,
    lifespan,
    polyrelay_client,
    require_user,
    stream_response,
)
from polyrelay.testing import Emulator, Fault

SECRET = b"an HMAC secret that is 32 bytes+"


def request_with(app: FastAPI, headers: List[Tuple[bytes, bytes]]) -> Request:
    return Request({"type": "http", "method": "GET", "path": "/", "headers": headers, "app": app})


def bearer(token: str) -> List[Tuple[bytes, bytes]]:
    return [(b"authorization", f"Bearer {token}".encode())]


def body_of(response: Any) -> Dict[str, Any]:
    decoded = json.loads(response.body)
    assert isinstance(decoded, dict)
    return decoded


async def test_lifespan_opens_yields_and_closes_one_client(emu: Emulator) -> None:
    issuer = TokenIssuer(Keyset([Key.hmac("k", SECRET)], signing_kid="k"), issuer="i", audience="a")
    app = FastAPI()
    async with lifespan(auth=issuer)(app):
        client = app.state.polyrelay
        assert isinstance(client, polyrelay.AsyncClient) and not client.closed
        assert app.state.polyrelay_auth is issuer
        dependency = polyrelay_client(request_with(app, []))
        assert await dependency.__anext__() is client
        assert (await client.weather.current(lat=52.5, lon=13.4)).provider
    assert client.closed


async def test_require_user_with_a_stateless_verifier() -> None:
    verifier = Verifier(Keyset([Key.hmac("k", SECRET)]), issuer="i", audience="a")
    check = require_user(["read", "write"], auth=verifier)
    app = FastAPI()

    def token(**claims: Any) -> str:
        base = {"iss": "i", "aud": "a", "sub": "u", "exp": 2_000_000_000}
        base.update(claims)
        return jwt.encode(base, SECRET, "HS256")

    claims = await check(request_with(app, bearer(token(scope="read write admin"))))
    assert claims.subject == "u"
    # A bare string is one scope.
    single = require_user("write", auth=verifier)
    assert (await single(request_with(app, bearer(token(scope="write"))))).scopes == ["write"]

    with pytest.raises(HTTPException) as refused:
        await check(request_with(app, bearer(token(scope="read"))))
    assert refused.value.status_code == 403
    assert refused.value.headers == {
        "WWW-Authenticate": 'Bearer realm="api", error="insufficient_scope", scope="read write"'
    }

    with pytest.raises(HTTPException) as refused:
        await check(request_with(app, bearer(token(exp=1_000_000_000))))
    assert refused.value.status_code == 401
    assert refused.value.headers == {
        "WWW-Authenticate": 'Bearer realm="api", error="invalid_token", error_description="token expired"'
    }

    for headers in ([], [(b"authorization", b"Basic dTpw")], [(b"authorization", b"Bearer ")]):
        with pytest.raises(HTTPException) as refused:
            await check(request_with(app, headers))
        assert refused.value.status_code == 401
        assert refused.value.headers == {"WWW-Authenticate": 'Bearer realm="api"'}


@pytest.mark.parametrize(
    ("error", "status", "retry_after"),
    [
        (
            polyrelay.InvalidRequestError(
                "x", kind="invalid_request", field="lat", expected="in range"
            ),
            422,
            None,
        ),
        (
            polyrelay.ContentFilteredError(
                "llm.chat: openai refused the content: details",
                kind="content_filtered",
                provider="openai",
                reason="details",
            ),
            422,
            None,
        ),
        (polyrelay.RateLimitedError("x", kind="rate_limited", retry_after=2.2), 429, "3"),
        (polyrelay.QuotaExhaustedError("x", kind="quota_exhausted"), 429, "60"),
        (polyrelay.TimeoutError("x", kind="timeout", deadline=5.0), 504, None),
        (polyrelay.ProviderError("x", kind="provider_error", status=500), 503, None),
        (
            polyrelay.ProviderError(
                "x",
                kind="provider_error",
                attempts=[
                    polyrelay.Attempt("a", "transient", 503, 1, 0.1, "HTTP 503", None),
                    polyrelay.Attempt("b", "malformed_response", 200, 1, 0.1, "bad JSON", None),
                ],
            ),
            502,
            None,
        ),
        (polyrelay.CircuitOpenError("x", kind="circuit_open", retry_after=4.2), 503, "5"),
        (polyrelay.AllProvidersFailedError("x", kind="all_providers_failed"), 503, None),
        (polyrelay.NotFoundError("x", kind="not_found"), 404, None),
        (TokenExpiredError("token expired", kind="expired"), 401, None),
        (AuthUnavailableError("auth unavailable", kind="unavailable"), 503, "1"),
        (polyrelay.Error("internal error: secret-ish details", kind="internal"), 500, None),
        (polyrelay.ConfigError("configuration error in `x`", kind="config"), 500, None),
    ],
)
def test_error_table(error: polyrelay.Error, status: int, retry_after: str) -> None:
    response = error_response(error)
    assert response.status_code == status
    assert response.headers.get("retry-after") == retry_after
    body = body_of(response)
    assert "x" != body["message"] and "details" not in body["message"]
    if status == 401:
        assert response.headers["www-authenticate"].startswith(
            'Bearer realm="api", error="invalid_token"'
        )
    if isinstance(error, polyrelay.InvalidRequestError):
        assert body["field"] == "lat" and body["expected"] == "in range"
    if isinstance(error, polyrelay.ContentFilteredError):
        assert body == {
            "error": "content_filtered",
            "message": "the request was refused by a content policy",
        }


@pytest.mark.parametrize("kind", ["missing_key", "auth"])
def test_provider_key_problems_do_not_leak_key_names(kind: str) -> None:
    with pytest.raises(polyrelay.AllProvidersFailedError) as raised:
        _native._sample_error(kind)
    assert "OPENWEATHER" in str(raised.value) or "openweathermap" in str(raised.value)
    response = error_response(raised.value)
    assert response.status_code == 503
    text = bytes(response.body).decode()
    assert "OPENWEATHER" not in text and "openweathermap" not in text


async def events_of(response: Any) -> List[Tuple[Optional[str], Any]]:
    """A streamed response's server-sent events: (event name, decoded data)."""
    body = b"".join([chunk async for chunk in response.body_iterator]).decode()
    events = []
    for block in body.split("\n\n")[:-1]:
        name = None
        for line in block.split("\n"):
            if line.startswith("event: "):
                name = line[len("event: ") :]
            else:
                data = line[len("data: ") :]
        events.append((name, data if data == "[DONE]" else json.loads(data)))
    return events


async def test_stream_response_formats_and_reasoning(emu: Emulator) -> None:
    emu.stream("deepseek")
    config = {"cache": {"enabled": False}, "capabilities": {"llm.chat": {"chain": ["deepseek"]}}}
    hello = [{"role": "user", "content": "hi"}]
    async with polyrelay.AsyncClient(config, api_keys={"deepseek": "k"}) as client:
        plain = await stream_response(client.llm.stream(messages=hello), model="m")
        assert plain.media_type == "text/event-stream"
        openai = await events_of(plain)
        text = await events_of(
            await stream_response(
                client.llm.stream(messages=hello), format="text", include_reasoning=True
            )
        )
    # Reasoning is left out by default: the first delta is the answer's.
    deltas = [data["choices"][0]["delta"] for _, data in openai[:-1]]
    assert deltas[0] == {"role": "assistant", "content": "Paris"}
    assert "".join(d.get("content", "") for d in deltas) == "Paris."
    assert openai[0][1]["model"] == "m" and openai[-2][1]["model"] == "deepseek-reasoner"
    assert openai[-1] == (None, "[DONE]")
    reasoning = [data["reasoning"] for _, data in text if "reasoning" in data]
    assert reasoning and reasoning[0] == "The user"
    assert "".join(data.get("text", "") for _, data in text) == "Paris."
    name, done = text[-1]
    assert name == "done" and done["finish_reason"] == "stop" and done["model"] == "deepseek-reasoner"
    assert done["usage"]["output_tokens"] > 0


async def test_stream_response_reasoning_deltas_a_cut_and_a_stream_that_cannot_open(
    emu: Emulator,
) -> None:
    path = emu.stream("deepseek")
    config = {
        "cache": {"enabled": False},
        # One try, no waiting for the provider to recover: refusals fail at once.
        "capabilities": {"llm.chat": {"chain": ["deepseek"], "max_wait": "0s"}},
        "providers": {"deepseek": {"retry": {"max_attempts": 1}}},
    }
    hello = [{"role": "user", "content": "hi"}]
    key = "sk-deepseek-test-key-never-shown"
    async with polyrelay.AsyncClient(config, api_keys={"deepseek": key}) as client:
        reasoned = await events_of(
            await stream_response(client.llm.stream(messages=hello), include_reasoning=True)
        )
        emu.fault_next(path, Fault.at_chunk(7, "cut"))
        cut = await events_of(await stream_response(client.llm.stream(messages=hello)))
        emu.fault_always(path, Fault.status(503))
        refused = await stream_response(client.llm.stream(messages=hello))
    # OpenAI's own field for hidden reasoning, before the answer's deltas.
    deltas = [data["choices"][0]["delta"] for _, data in reasoned[:-2]]
    assert deltas[0].get("reasoning_content", "").startswith("The user")
    assert "".join(d.get("content", "") for d in deltas) == "Paris."
    assert reasoned[-1] == (None, "[DONE]")
    # Cut after the first texts: what was sent, then one error event of fixed texts.
    *sent, (name, error) = cut
    assert sent and name == "error"
    chars = sum(len(data["choices"][0]["delta"].get("content", "")) for _, data in sent)
    assert error == {
        "error": {
            "type": "stream_interrupted",
            "message": "the upstream stream was interrupted",
            "partial_chars": chars,
        }
    }
    # Nothing sent yet: a plain HTTP error, as for a plain call.
    assert refused.status_code == 503 and body_of(refused)["error"] == "provider_error"
    for _, data in reasoned + cut:
        assert key not in json.dumps(data)
    assert key not in bytes(refused.body).decode()
