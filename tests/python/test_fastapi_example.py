"""examples/fastapi driven over HTTP: a real uvicorn process on loopback,
its providers pointed at the polyrelay emulator running in this process."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from email.message import Message
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple

import httpx
import pytest

from polyrelay.testing import Emulator, Fault, emulator

APP_DIR = Path(__file__).resolve().parents[2] / "examples" / "fastapi"
PASSWORD = "correct horse battery staple"
#: A provider key the app holds; no answer or log line may ever show it.
PROVIDER_KEY = "weatherapi-key-MUST-NOT-LEAK-7f3a9c"
#: The chat provider's key, under the same rule.
CHAT_KEY = "sk-or-v1-chat-key-MUST-NOT-LEAK-2b8d"
JWT_SECRET = "the example app's JWT secret, 32 bytes or more"

CONFIG = """
[defaults.retry]
max_attempts = 1

[capabilities."weather.current"]
chain = ["open-meteo", "weatherapi"]

[capabilities."finance.fx_rates"]
chain = ["frankfurter"]

[providers.frankfurter]
rate_limit = "1/min"

[capabilities."llm.chat"]
chain = ["openrouter", "ollama"]

# One provider, which a Retry-After above 1 s benches (for seconds, not the
# default minute, so later tests find it back); no waiting it out.
[capabilities."web.search"]
chain = ["wikipedia"]
max_wait = "0s"

[providers.wikipedia]
retry = { max_retry_after = "1s" }
"""

Response = Tuple[int, Message, Any]


class App:
    """The running example app."""

    def __init__(self, base_url: str, emu: Emulator, log: Path, users_db: Path) -> None:
        self.users_db = users_db
        self.base_url = base_url
        self.emu = emu
        self.log = log
        # No proxy from the environment may intercept loopback traffic.
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def request(
        self,
        method: str,
        path: str,
        body: Optional[Dict[str, Any]] = None,
        token: Optional[str] = None,
    ) -> Response:
        headers = {"content-type": "application/json"}
        if token is not None:
            headers["authorization"] = f"Bearer {token}"
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            self.base_url + path, data=data, method=method, headers=headers
        )
        try:
            with self._opener.open(request, timeout=15) as response:
                answer = response.status, response.headers, json.loads(response.read() or b"null")
        except urllib.error.HTTPError as error:
            answer = error.code, error.headers, json.loads(error.read() or b"null")
        return without_request_id(answer)

    def login(self, username: str) -> Dict[str, Any]:
        status, _, body = self.request(
            "POST", "/auth/login", {"username": username, "password": PASSWORD}
        )
        assert status == 200, body
        assert isinstance(body, dict)
        return body


def without_request_id(answer: Response) -> Response:
    """Every answer names its request id in ``X-Request-ID``, and every
    error body repeats it; the body is returned without it."""
    status, headers, body = answer
    assert len(headers["X-Request-ID"]) == 32
    if isinstance(body, dict) and "error" in body:
        assert body.pop("request_id") == headers["X-Request-ID"], body
    return status, headers, body


def add_user(env: Dict[str, str], username: str, scopes: str) -> None:
    """Through the app's own command, the password on standard input."""
    done = subprocess.run(
        [sys.executable, str(APP_DIR / "app.py"), "add-user", username, "--scopes", scopes],
        input=PASSWORD + "\n",
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr


def free_socket() -> socket.socket:
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    listener.set_inheritable(True)
    return listener


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[App]:
    workdir = tmp_path_factory.mktemp("fastapi-example")
    config = workdir / "polyrelay.toml"
    config.write_text(CONFIG)
    log = workdir / "uvicorn.log"
    with emulator() as emu:
        env = {
            name: value
            for name, value in os.environ.items()
            if not name.startswith("POLYRELAY_") and not name.endswith("_API_KEY")
        }
        env.update(
            POLYRELAY_EMULATOR_URL=emu.url,
            POLYRELAY_CONFIG=str(config),
            POLYRELAY_CACHE="false",
            WEATHERAPI_API_KEY=PROVIDER_KEY,
            OPENROUTER_API_KEY=CHAT_KEY,
            JWT_SECRET=JWT_SECRET,
            USERS_DB=str(workdir / "users.db"),
            # Every test logs in from 127.0.0.1: limits above what the module
            # uses (the kit's own tests check the limits themselves).
            RATE_PER_ADDRESS="6000/min",
            RATE_PER_USER="6000/min",
            LOGIN_ATTEMPTS_PER_USER="600/min",
            DASHBOARD="1",
        )
        add_user(env, "alice", "chat weather finance medical entertainment search news reference")
        add_user(env, "bob", "weather")
        add_user(env, "carol", "admin")
        # Handing uvicorn an already-bound socket leaves no race for the port.
        listener = free_socket()
        port = listener.getsockname()[1]
        command = [
            sys.executable,
            "-m",
            "uvicorn",
            "app:app",
            "--app-dir",
            str(APP_DIR),
            "--fd",
            str(listener.fileno()),
            "--log-level",
            "info",
        ]
        with log.open("wb") as output:
            server = subprocess.Popen(
                command,
                env=env,
                stdout=output,
                stderr=subprocess.STDOUT,
                pass_fds=(listener.fileno(),),
            )
        listener.close()
        running = App(f"http://127.0.0.1:{port}", emu, log, workdir / "users.db")
        try:
            deadline = time.monotonic() + 30
            while True:
                assert server.poll() is None, log.read_text()
                try:
                    if running.request("GET", "/healthz")[0] == 200:
                        break
                except OSError:
                    pass
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.05)
            yield running
        finally:
            server.terminate()
            server.wait(timeout=15)
    # uvicorn closed the client through the lifespan on shutdown.
    assert "Application shutdown complete" in log.read_text()


def challenge(headers: Message) -> str:
    return headers.get("WWW-Authenticate") or ""


def test_protected_routes_answer_401_403_and_200(app: App) -> None:
    status, headers, body = app.request("GET", "/me")
    assert status == 401
    assert challenge(headers) == 'Bearer realm="api"'

    status, headers, _ = app.request("GET", "/me", token="not.a.token")
    assert status == 401
    assert 'error="invalid_token"' in challenge(headers)

    status, _, _ = app.request("POST", "/auth/login", {"username": "alice", "password": "wrong"})
    assert status == 401

    alice = app.login("alice")
    assert alice["token_type"] == "Bearer" and alice["expires_in"] == 900
    status, _, body = app.request("GET", "/me", token=alice["access_token"])
    assert status == 200
    assert body["user"] == "alice" and "chat" in body["scopes"]

    bob = app.login("bob")
    chat = {"messages": [{"role": "user", "content": "hi"}]}
    status, headers, body = app.request("POST", "/ai/chat", chat, token=bob["access_token"])
    assert status == 403
    assert 'error="insufficient_scope"' in challenge(headers) and 'scope="chat"' in challenge(
        headers
    )
    # A refresh token is not accepted as an access token.
    status, headers, _ = app.request("GET", "/me", token=alice["refresh_token"])
    assert status == 401 and 'error_description="bad claim: typ"' in challenge(headers)


def test_users_live_in_sqlite_with_argon2id_hashes_and_logins_reveal_nothing(app: App) -> None:
    with contextlib.closing(sqlite3.connect(app.users_db)) as db:
        rows = dict(db.execute("SELECT username, password_hash FROM users").fetchall())
    assert set(rows) == {"alice", "bob", "carol"}
    assert all(h.startswith("$argon2id$") and PASSWORD not in h for h in rows.values())
    assert app.login("alice")["token_type"] == "Bearer"
    # A wrong password and an unknown user get the same answer.
    wrong = app.request("POST", "/auth/login", {"username": "bob", "password": "nope"})
    unknown = app.request("POST", "/auth/login", {"username": "nobody", "password": "nope"})
    assert wrong[0] == unknown[0] == 401
    assert wrong[2] == unknown[2] == {"detail": "wrong username or password"}
    status, headers, body = app.request("GET", "/readyz")
    assert status == 200 and body["status"] == "ready", body
    assert headers["X-Content-Type-Options"] == "nosniff"
    login_headers = app.request("POST", "/auth/login", {"username": "x", "password": "y"})[1]
    assert login_headers["Cache-Control"] == "no-store"


def test_add_user_refuses_short_passwords_and_unknown_scopes(tmp_path: Path) -> None:
    env = dict(os.environ, USERS_DB=str(tmp_path / "users.db"), JWT_SECRET=JWT_SECRET)
    for scopes, password in (("weather", "short"), ("root", PASSWORD)):
        done = subprocess.run(
            [sys.executable, str(APP_DIR / "app.py"), "add-user", "dave", "--scopes", scopes],
            input=password + "\n",
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 2 and "not added" in done.stderr


def test_refresh_rotates_and_reuse_revokes_the_login(app: App) -> None:
    first = app.login("alice")
    status, _, second = app.request(
        "POST", "/auth/refresh", {"refresh_token": first["refresh_token"]}
    )
    assert status == 200
    assert second["refresh_token"] != first["refresh_token"]
    assert app.request("GET", "/me", token=second["access_token"])[0] == 200

    # The spent refresh token comes back (stolen, say): the login dies.
    status, headers, body = app.request(
        "POST", "/auth/refresh", {"refresh_token": first["refresh_token"]}
    )
    assert status == 401
    assert body == {"error": "reused", "message": "refresh token reused; session revoked"}
    assert 'error="invalid_token"' in challenge(headers)
    status, _, body = app.request(
        "POST", "/auth/refresh", {"refresh_token": second["refresh_token"]}
    )
    assert (status, body["error"]) == (401, "revoked")
    assert app.request("GET", "/me", token=second["access_token"])[0] == 401
    # Other logins are unaffected.
    assert app.request("GET", "/me", token=app.login("alice")["access_token"])[0] == 200


def test_provider_routes_answer_through_the_emulator(app: App) -> None:
    token = app.login("alice")["access_token"]
    before = app.emu.hits("/open-meteo/*")
    status, _, body = app.request("GET", "/weather/current?lat=52.52&lon=13.41", token=token)
    assert status == 200, body
    assert body["provider"] == "open-meteo"
    assert isinstance(body["weather"]["temperature_c"], (int, float))
    assert app.emu.hits("/open-meteo/*") == before + 1

    chat = {"messages": [{"role": "user", "content": "hello"}]}
    routes = [
        ("POST", "/ai/chat", chat),
        ("GET", "/medical/drugs?name=ibuprofen", None),
        ("GET", "/entertainment/movies?query=alien", None),
        ("GET", "/search?query=rust", None),
        ("GET", "/search/meta?query=rust", None),
        ("GET", "/news?query=climate", None),
        ("GET", "/news/meta?query=climate", None),
        ("GET", "/finance/crypto?assets=BTC,ETH&vs=usd,eur", None),
        ("GET", "/entertainment/tv?query=girls", None),
        ("GET", "/entertainment/books?query=dune", None),
        ("GET", "/entertainment/music?query=daft%20punk&type=artist", None),
        ("GET", "/entertainment/videos?query=rust", None),
        ("GET", "/entertainment/videos/x7tgad0", None),
        ("GET", "/entertainment/videos/x7tgad0/transcript?language=en", None),
        ("GET", "/medical/literature?query=ibuprofen", None),
        ("GET", "/medical/trials?condition=asthma", None),
        ("GET", "/geo/geocode?query=Berlin", None),
        ("POST", "/translate", {"text": ["Hello"], "target_lang": "de"}),
        ("GET", "/dictionary/define?word=hello", None),
    ]
    for method, path, payload in routes:
        status, _, body = app.request(method, path, payload, token=token)
        assert status == 200, (path, body)
        assert body["provider"], path
    # Stock quotes have no keyless provider: without a key, a clean 503.
    status, _, body = app.request("GET", "/finance/quote?symbol=AAPL", token=token)
    assert (status, body["error"]) == (503, "missing_key"), body
    assert app.emu.served > before


def test_invalid_parameters_answer_422_naming_the_field(app: App) -> None:
    token = app.login("alice")["access_token"]
    served = app.emu.served
    status, _, body = app.request("GET", "/weather/current?lat=999&lon=0", token=token)
    assert status == 422
    assert body["error"] == "invalid_request" and body["field"] == "lat"
    assert app.emu.served == served  # nothing was sent
    status, _, body = app.request("GET", "/entertainment/videos/not%20an%20id", token=token)
    assert (status, body["error"], body["field"]) == (422, "invalid_request", "id"), body
    assert app.emu.served == served


def test_a_video_without_a_transcript_anywhere_answers_404(app: App) -> None:
    token = app.login("alice")["access_token"]
    for provider in ["internet-archive", "dailymotion"]:
        app.emu.fault_always(f"/{provider}/*", Fault.status(404))
    try:
        status, _, body = app.request(
            "GET", "/entertainment/videos/x7tgad0/transcript", token=token
        )
    finally:
        app.emu.clear_faults()
    assert (status, body["error"]) == (404, "not_found"), body


def test_rate_limited_answers_429_with_retry_after(app: App) -> None:
    token = app.login("alice")["access_token"]
    status, _, body = app.request("GET", "/finance/fx?base=EUR", token=token)
    assert status == 200, body
    # frankfurter allows 1 request a minute and is the only provider.
    status, headers, body = app.request("GET", "/finance/fx?base=EUR", token=token)
    assert status == 429
    retry_after = int(headers["Retry-After"])
    assert 1 <= retry_after <= 60
    assert body == {
        "error": "rate_limited",
        "message": "too many requests; retry later",
        "retry_after": retry_after,
    }


def test_a_benched_lone_provider_answers_429_with_the_wait_left(app: App) -> None:
    token = app.login("alice")["access_token"]
    # wikipedia asks for 3 s, above its max_retry_after of 1 s: benched.
    app.emu.fault_next("/wikipedia/*", Fault.respond(429, retry_after=3))
    hits = app.emu.hits("/wikipedia/*")
    status, headers, body = app.request("GET", "/search?query=rust", token=token)
    assert status == 429, body
    assert headers["Retry-After"] == "3"
    # The next request does not reach wikipedia and says how long is left.
    status, headers, body = app.request("GET", "/search?query=rust", token=token)
    assert status == 429, body
    assert 1 <= int(headers["Retry-After"]) <= 3
    assert body == {
        "error": "rate_limited",
        "message": "too many requests; retry later",
        "retry_after": int(headers["Retry-After"]),
    }
    assert app.emu.hits("/wikipedia/*") == hits + 1
    # Once the bench is over, wikipedia answers again.
    time.sleep(3.2)
    status, _, body = app.request("GET", "/search?query=rust", token=token)
    assert status == 200, body
    assert body["provider"] == "wikipedia"


def test_a_refused_chat_answers_422_without_echoing_the_prompt(app: App) -> None:
    token = app.login("alice")["access_token"]
    prompt = "a prompt the moderation flags 9c41e7"
    # OpenRouter's moderation: 403 with the reasons and the flagged input.
    refusal = {
        "error": {
            "code": 403,
            "message": "meta-llama/llama-guard flagged your input",
            "metadata": {"reasons": ["violence"], "flagged_input": prompt},
        }
    }
    app.emu.fault_next("/openrouter/*", Fault.respond(403, body=json.dumps(refusal).encode()))
    ollama = app.emu.hits("/ollama/*")
    chat = {"messages": [{"role": "user", "content": prompt}]}
    status, _, body = app.request("POST", "/ai/chat", chat, token=token)
    assert status == 422, body
    assert body == {
        "error": "content_filtered",
        "message": "the request was refused by a content policy",
    }
    assert app.emu.hits("/ollama/*") == ollama, "a refused prompt is not sent on"
    for leak in (prompt, "openrouter", "llama-guard", CHAT_KEY):
        assert leak not in json.dumps(body), leak
    log = app.log.read_text()
    assert "content_filtered" in log
    assert prompt not in log and CHAT_KEY not in log


def assert_clean(app: App, body: Any) -> None:
    text = json.dumps(body)
    for leak in (
        PROVIDER_KEY,
        CHAT_KEY,
        "open-meteo",
        "weatherapi",
        "Traceback",
        "HTTP 5",
        "attempt",
    ):
        assert leak not in text, leak
    assert set(body) <= {"error", "message", "retry_after"}


def test_upstream_answering_garbage_answers_502(app: App) -> None:
    token = app.login("alice")["access_token"]
    # Every request, not just the next: since issue #12 a provider that
    # failed gets a second chance within the call (providers flap).
    app.emu.fault_always("/open-meteo/*", Fault.malformed())
    app.emu.fault_always("/weatherapi/*", Fault.malformed())
    try:
        status, _, body = app.request("GET", "/weather/current?lat=52.52&lon=13.41", token=token)
    finally:
        app.emu.clear_faults()
    assert status == 502
    assert body == {"error": "provider_error", "message": "the upstream service failed"}
    assert_clean(app, body)


def test_every_provider_down_answers_503(app: App) -> None:
    token = app.login("alice")["access_token"]
    # Every request: a provider that failed gets a second chance (issue #12).
    app.emu.fault_always("/open-meteo/*", Fault.status(500))
    app.emu.fault_always("/weatherapi/*", Fault.status(503))
    try:
        status, _, body = app.request("GET", "/weather/current?lat=52.52&lon=13.41", token=token)
    finally:
        app.emu.clear_faults()
    assert status == 503
    assert body == {"error": "provider_error", "message": "the upstream service is unavailable"}
    assert_clean(app, body)


def test_provider_outage_answers_503_with_a_clean_body(app: App) -> None:
    token = app.login("alice")["access_token"]
    # The main provider is down and the fallback throttles us for 2 min.
    app.emu.fault_always("/open-meteo/*", Fault.status(503))
    app.emu.fault_always("/weatherapi/*", Fault.respond(429, retry_after=120))
    try:
        status, headers, body = app.request(
            "GET", "/weather/current?lat=52.52&lon=13.41", token=token
        )
    finally:
        app.emu.clear_faults()
    assert status == 503
    assert headers["Retry-After"] == "120"
    assert body == {
        "error": "all_providers_failed",
        "message": "the upstream service is unavailable",
        "retry_after": 120,
    }
    assert_clean(app, body)
    # The key reached the provider (in its query) but never the logs.
    assert any(PROVIDER_KEY in (r.query or "") for r in app.emu.requests("/weatherapi/*"))
    log = app.log.read_text()
    assert "all_providers_failed" in log
    assert PROVIDER_KEY not in log


#: OpenRouter's recorded stream: events 0 and 1 are comments (keep-alives),
#: events 2-8 carry these texts.
STREAM_TEXTS = ["The", " capital", " of", " France", " is", " Paris", "."]
CHAT = {"messages": [{"role": "user", "content": "What is the capital of France?"}]}


def sse_events(lines: Iterator[str]) -> Iterator[Tuple[Optional[str], str]]:
    """Server-sent events as ``(event name or None, data)``, as they arrive."""
    event: Optional[str] = None
    data: List[str] = []
    for line in lines:
        if line == "":
            if data:
                yield event, "\n".join(data)
            event, data = None, []
        elif line.startswith("event: "):
            event = line[len("event: ") :]
        elif line.startswith("data: "):
            data.append(line[len("data: ") :])


def open_stream(
    app: App, http: httpx.Client, body: Dict[str, Any] = CHAT
) -> "contextlib.AbstractContextManager[httpx.Response]":
    token = app.login("alice")["access_token"]
    return http.stream(
        "POST",
        app.base_url + "/ai/chat/stream",
        json=body,
        headers={"authorization": f"Bearer {token}"},
        timeout=15,
    )


def test_chat_stream_answers_openai_chunks_as_server_sent_events(app: App) -> None:
    path = app.emu.stream("openrouter", delay=0.01)
    with httpx.Client(trust_env=False) as http, open_stream(app, http) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["cache-control"] == "no-cache"
        events = list(sse_events(response.iter_lines()))
    assert events[-1] == (None, "[DONE]")
    chunks = [json.loads(data) for name, data in events[:-1]]
    assert all(name is None for name, _ in events)
    assert {c["object"] for c in chunks} == {"chat.completion.chunk"}
    assert len({c["id"] for c in chunks}) == 1 and chunks[0]["id"].startswith("chatcmpl-")
    deltas = [c["choices"][0]["delta"] for c in chunks]
    assert deltas[0]["role"] == "assistant"
    assert [d.get("content") for d in deltas[:-1]] == STREAM_TEXTS
    final = chunks[-1]
    assert final["choices"][0]["finish_reason"] == "stop" and deltas[-1] == {}
    assert all(c["choices"][0]["finish_reason"] is None for c in chunks[:-1])
    assert set(final["usage"]) == {"prompt_tokens", "completion_tokens", "total_tokens"}
    assert isinstance(final["usage"]["completion_tokens"], int)
    assert final["model"], "the final chunk names the model that answered"
    [sent] = app.emu.requests(path)[-1:]
    assert json.loads(sent.body)["stream"] is True and not sent.closed_early


def test_chat_stream_that_cannot_open_answers_an_http_error(app: App) -> None:
    app.emu.stream("openrouter")
    app.emu.fault_always("/openrouter/*", Fault.status(503))
    app.emu.fault_always("/ollama/*", Fault.status(503))
    try:
        with httpx.Client(trust_env=False) as http, open_stream(app, http) as response:
            response.read()
    finally:
        app.emu.clear_faults()
    assert response.status_code == 503
    assert response.json() == {
        "error": "provider_error",
        "message": "the upstream service is unavailable",
        "request_id": response.headers["X-Request-ID"],
    }
    with httpx.Client(trust_env=False) as http, open_stream(app, http, {"messages": []}) as invalid:
        invalid.read()
    assert invalid.status_code == 422 and invalid.json()["field"] == "messages"


def test_chat_stream_failing_midway_ends_with_an_error_event(app: App) -> None:
    path = app.emu.stream("openrouter")
    app.emu.fault_next(path, Fault.at_chunk(5, "cut"))
    ollama = app.emu.hits("/ollama/*")
    with httpx.Client(trust_env=False) as http, open_stream(app, http) as response:
        assert response.status_code == 200
        events = list(sse_events(response.iter_lines()))
    *chunks, (name, data) = events
    assert [json.loads(d)["choices"][0]["delta"]["content"] for _, d in chunks] == STREAM_TEXTS[:3]
    assert name == "error"
    assert json.loads(data) == {
        "error": {
            "type": "stream_interrupted",
            "message": "the upstream stream was interrupted",
            "partial_chars": len("The capital of"),
        }
    }
    for leak in ("openrouter", CHAT_KEY, "Traceback", "attempt"):
        assert leak not in data, leak
    assert app.emu.hits("/ollama/*") == ollama, "mid_stream = error: nobody continues"
    log = app.log.read_text()
    assert "stream_interrupted" in log and CHAT_KEY not in log


def test_a_client_leaving_a_chat_stream_closes_the_upstream_request(app: App) -> None:
    path = app.emu.stream("openrouter")
    # The provider stalls after two texts: only the client leaving ends it.
    app.emu.fault_next(path, Fault.at_chunk(4, "stall"))
    before = len(app.emu.requests(path))
    with httpx.Client(trust_env=False) as http, open_stream(app, http) as response:
        events = sse_events(response.iter_lines())
        texts = [json.loads(next(events)[1])["choices"][0]["delta"]["content"] for _ in range(2)]
        assert texts == STREAM_TEXTS[:2]
    # The connection is closed here, with the provider still stalled.
    [abandoned] = app.emu.wait_for_closed_early(path, 1, 5.0)[-1:]
    assert abandoned.closed_early
    assert len(app.emu.requests(path)) == before + 1


def test_assistant_streams_tool_progress_then_the_answer_and_resumes(app: App) -> None:
    # Runs last: it replaces openrouter's chat route with a scripted model.
    app.emu.script_chat(
        "openrouter",
        [
            {
                "tool_calls": [
                    {"name": "weather_current", "arguments": {"lat": 59.91, "lon": 10.75}},
                    {
                        "name": "crypto_price",
                        "arguments": {"assets": ["BTC"], "vs_currencies": ["EUR"]},
                    },
                ]
            },
            {"text": "Oslo is cloudy; a bitcoin costs a lot."},
            {"text": "Still cloudy tomorrow."},
        ],
    )
    token = app.login("alice")["access_token"]
    auth = {"authorization": f"Bearer {token}"}

    def ask(body: Dict[str, Any]) -> List[Tuple[Optional[str], Any]]:
        with httpx.Client(trust_env=False) as http, http.stream(
            "POST", app.base_url + "/assistant", json=body, headers=auth, timeout=15
        ) as response:
            assert response.status_code == 200, response.read()
            assert response.headers["content-type"].startswith("text/event-stream")
            return [(name, json.loads(data)) for name, data in sse_events(response.iter_lines())]

    events = ask({"question": "Weather in Oslo and the bitcoin price?"})
    tools = [data for name, data in events if name == "tool"]
    assert tools == [
        {"name": "weather_current", "capability": "weather.current", "ok": True},
        {"name": "crypto_price", "capability": "crypto.price", "ok": True},
    ]
    text = "".join(data["text"] for name, data in events if name is None)
    assert text == "Oslo is cloudy; a bitcoin costs a lot."
    name, done = events[-1]
    assert name == "done" and done["text"] == text and done["steps"] == 2
    for leak in (CHAT_KEY, PROVIDER_KEY):
        assert leak not in json.dumps(events)

    again = ask({"question": "And tomorrow?", "conversation": done["conversation"]})
    assert again[-1][0] == "done" and again[-1][1]["text"] == "Still cloudy tomorrow."

    status, _, body = app.request(
        "POST", "/assistant", {"question": "Hi", "tools": ["llm.chat"]}, token=token
    )
    assert status == 422 and body["field"] == "tools[0]"

    # A model that keeps calling tools meets the route's step limit.
    app.emu.script_chat(
        "openrouter",
        [{"tool_calls": [{"name": "geo_geocode", "arguments": {"query": "Oslo"}}]}],
    )
    looped = ask({"question": "Where is Oslo, exactly?"})
    assert [name for name, _ in looped[:-1]] == ["tool"] * 6
    name, error = looped[-1]
    assert name == "error"
    assert error["error"]["type"] == "limit_reached"
    assert "openrouter" not in json.dumps(error)


def test_analytics_answers_admins_only_with_the_calls_made(app: App) -> None:
    alice = app.login("alice")["access_token"]
    status, headers, _ = app.request("GET", "/analytics", token=alice)
    assert status == 403 and 'scope="admin"' in challenge(headers)
    assert app.request("GET", "/analytics")[0] == 401
    carol = app.login("carol")["access_token"]
    path = "/analytics?group_by=capability,provider&capability=weather.current"
    before = app.request("GET", path, token=carol)
    assert before[0] == 200, before
    assert app.request("GET", "/weather/current?lat=1.5&lon=2.5", token=alice)[0] == 200
    status, _, body = app.request("GET", path, token=carol)
    assert status == 200, body

    def answered(rows: List[Dict[str, Any]]) -> int:
        return sum(r["successes"] for r in rows if r["provider"] == "open-meteo")

    assert answered(body["rows"]) == answered(before[2]["rows"]) + 1
    row = body["rows"][0]
    assert row["capability"] == "weather.current" and "latency_ms_p95" in row
    status, _, body = app.request("GET", "/analytics?by=week", token=carol)
    assert status == 422
    status, _, body = app.request("GET", "/analytics?group_by=model", token=carol)
    assert status == 422, body


def test_the_dashboard_is_served_to_this_machine_only(app: App) -> None:
    with httpx.Client(base_url=app.base_url, trust_env=False, timeout=15) as http:
        page = http.get("/dashboard")
        snapshot = http.get("/dashboard/snapshot")
        proxied = http.get("/dashboard", headers={"X-Forwarded-For": "203.0.113.9"})
        posted = http.post("/dashboard/snapshot")
    assert page.status_code == 200 and "default-src 'none'" in page.headers[
        "content-security-policy"
    ]
    assert snapshot.status_code == 200 and "weather.current" in snapshot.json()["capabilities"]
    for answer in (page, snapshot):
        assert PROVIDER_KEY not in answer.text and CHAT_KEY not in answer.text
    assert proxied.status_code == 403
    assert posted.status_code == 405


def test_the_dashboard_is_off_unless_enabled(tmp_path: Path) -> None:
    def routes(**env: str) -> List[str]:
        """The paths of the analytics route and the dashboard's snapshot,
        when the app has them."""
        script = (
            "import app\n"
            "from starlette.routing import NoMatchFound\n"
            "for name in ('analytics', 'polyrelay_dashboard_snapshot'):\n"
            "    try:\n"
            "        print(app.app.url_path_for(name))\n"
            "    except NoMatchFound:\n"
            "        pass\n"
        )
        done = subprocess.run(
            [sys.executable, "-c", script],
            cwd=APP_DIR,
            env={**os.environ, "USERS_DB": str(tmp_path / "users.db"), **env},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout.split()

    assert routes() == ["/analytics"]
    assert routes(DASHBOARD="1") == ["/analytics", "/dashboard/snapshot"]
