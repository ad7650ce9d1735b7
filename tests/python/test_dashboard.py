"""The dashboard: ``polyrelay.fastapi.dashboard_router`` on a real uvicorn,
opened in a real headless browser (Debian's Chromium, installed by
tests/setup.sh, driven by Playwright; never a browser Playwright
downloads), and the ``polyrelay dashboard`` command as a process.

``POLYRELAY_UPDATE_DOCS=1`` makes the browser test write the README's
screenshot, docs/dashboard.png."""

from __future__ import annotations

import asyncio
import json
import os
import select
import signal
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, ContextManager, Dict, Iterator, List

import httpx
import pytest
from fastapi import Depends, FastAPI
from playwright.sync_api import Browser, Page, sync_playwright

import polyrelay
from polyrelay.cli import main
from polyrelay.exceptions import ConfigError
from polyrelay.fastapi import (
    ClientDep,
    add_exception_handlers,
    dashboard_router,
    lifespan,
    loopback_only,
)
from polyrelay.testing import Emulator, Fault

#: The conftest fixture running an app on a real uvicorn.
Serve = Callable[[FastAPI], ContextManager[httpx.Client]]

CHROMIUM = "/usr/bin/chromium"
#: No network, no background services, nothing kept between runs.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
KEY = "sk-dashboard-secret-7f3a9c"
REFRESH = 0.3
SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "dashboard.png"
#: Read at import: the tests' environment drops every POLYRELAY_* variable.
UPDATE_DOCS = os.environ.get("POLYRELAY_UPDATE_DOCS") == "1"

CONFIG: Dict[str, Any] = {
    "defaults": {"retry": {"max_attempts": 1}},
    "capabilities": {
        "weather.current": {"chain": ["open-meteo", "met-norway", "wttr-in"]},
        "finance.fx_rates": {"chain": ["frankfurter", "currency-api"]},
        "crypto.price": {"chain": ["coingecko"]},
        "llm.chat": {"chain": ["openai", "groq"]},
    },
    "providers": {
        # Two failures in a window of two open open-meteo's breaker, for
        # longer than any test runs.
        "open-meteo": {
            "breaker": {
                "sliding_window_size": 2,
                "minimum_number_of_calls": 2,
                "wait_duration_in_open_state": "600s",
            }
        },
        "met-norway": {"daily_quota": 500},
        "openai": {"daily_quota": 200},
    },
}


def dashboard_app(**options: Any) -> FastAPI:
    """An app with the dashboard and routes making calls."""
    app = FastAPI(lifespan=lifespan(lambda: polyrelay.AsyncClient(CONFIG)))
    add_exception_handlers(app)
    app.include_router(dashboard_router(refresh_seconds=REFRESH, **options))

    @app.get("/weather")
    async def weather(client: ClientDep, lat: float) -> Any:
        return (await client.weather.current(lat=lat, lon=13.4)).data

    @app.get("/fx")
    async def fx(client: ClientDep) -> Any:
        return (await client.finance.fx_rates(base="EUR", symbols=["USD"])).data

    @app.get("/crypto")
    async def crypto(client: ClientDep) -> Any:
        return (await client.crypto.price(assets="BTC")).data

    @app.get("/chat")
    async def chat(client: ClientDep, text: str) -> Any:
        return (await client.llm.chat(messages=[{"role": "user", "content": text}])).data

    return app


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    assert os.path.exists(CHROMIUM), "Chromium is missing: run tests/setup.sh"
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield launched
        finally:
            launched.close()


class Problems:
    """Console errors, uncaught page errors and failed requests of a page."""

    def __init__(self, page: Page) -> None:
        self.seen: List[str] = []
        page.on(
            "console",
            lambda message: self.seen.append(f"console: {message.text}")
            if message.type == "error"
            else None,
        )
        page.on("pageerror", lambda error: self.seen.append(f"page error: {error}"))
        page.on("requestfailed", lambda request: self.seen.append(f"failed: {request.url}"))


def calls_shown(page: Page, calls: int) -> None:
    """Waits (a few refreshes at most) until the page shows ``calls`` calls."""
    page.wait_for_function(
        "n => document.getElementById('calls-total')?.textContent === String(n)",
        arg=calls,
        timeout=10_000,
    )


def test_the_page_shows_an_open_breaker_and_updates_itself(
    emu: Emulator, serve: Serve, browser: Browser, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    emu.fault_always("/open-meteo/*", Fault.status(503))
    emu.fault_always("/coingecko/*", Fault.status(503))
    with serve(dashboard_app()) as http:
        # open-meteo fails twice (its breaker opens), met-norway answers;
        # the same question again is a cache hit; crypto has no provider left.
        for lat in (52.5, 48.8, 40.4, 52.5):
            assert http.get("/weather", params={"lat": lat}).status_code == 200
        assert http.get("/fx").status_code == 200
        assert http.get("/crypto").status_code == 503
        assert http.get("/chat", params={"text": "Hello"}).status_code == 200
        made = 7

        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        problems = Problems(page)
        page.goto(f"{http.base_url}/dashboard")
        calls_shown(page, made)

        breaker = page.locator('tr[data-provider="open-meteo"] .badge[data-state="open"]')
        assert breaker.count() == 1
        assert breaker.inner_text() == "open · weather.current"
        assert page.locator('tr[data-provider="met-norway"] .badge').first.inner_text() != "open"
        assert page.locator("#open-breakers").inner_text() == "1"
        health = page.locator('tr[data-provider="open-meteo"] .health').inner_text()
        assert "unavailable" in health and "weather.current: circuit open" in health
        assert page.locator('tr[data-provider="met-norway"] .health').inner_text() == "ready"
        weather = page.locator('tr[data-capability="weather.current"]')
        assert "degraded" in weather.inner_text() and "open-meteo: circuit open" in (
            weather.inner_text()
        )
        quota = page.locator('tr[data-provider="met-norway"] .quota').inner_text()
        assert "497 / 500 left today" in quota  # 3 fresh answers; the cache hit asked nobody
        assert page.locator("#chart-calls rect").count() >= 2  # answered and failed parts
        assert page.locator("#chart-latency circle").count() == 2  # p50 and p95 of this hour
        if UPDATE_DOCS:
            page.screenshot(path=str(SCREENSHOT), full_page=False)

        # New calls appear without the page being reloaded.
        page.evaluate("() => { window.__same_page = true; }")
        for lat in (10.0, 11.0, 12.0):
            assert http.get("/weather", params={"lat": lat}).status_code == 200
        calls_shown(page, made + 3)
        assert page.evaluate("() => window.__same_page") is True
        assert "497" not in page.locator('tr[data-provider="met-norway"] .quota').inner_text()

        html = page.content()
        assert KEY not in html and "secret" not in html
        assert problems.seen == []
        page.close()


def test_data_is_shown_as_text_never_as_markup(
    emu: Emulator, serve: Serve, browser: Browser
) -> None:
    hostile = '<img src=x id=injected onerror="window.__pwned=1">'
    with serve(dashboard_app(title=hostile)) as http:
        snapshot = http.get("/dashboard/snapshot").json()
        snapshot["capabilities"]["weather.current"]["unavailable"]["open-meteo"] = hostile
        page = browser.new_page()
        problems = Problems(page)
        page.route(
            "**/dashboard/snapshot",
            lambda route: route.fulfill(
                status=200, content_type="application/json", body=json.dumps(snapshot)
            ),
        )
        page.goto(f"{http.base_url}/dashboard")
        page.wait_for_function("() => document.querySelector('#capabilities tr') !== null")
        assert hostile in page.locator('tr[data-capability="weather.current"]').inner_text()
        assert hostile in page.locator("h1").inner_text()
        assert page.locator("#injected").count() == 0
        assert page.evaluate("() => window.__pwned") is None
        # The Content-Security-Policy runs no script without the page's nonce.
        page.evaluate(
            "() => { const s = document.createElement('script');"
            " s.textContent = 'window.__pwned = 2'; document.body.appendChild(s); }"
        )
        assert page.evaluate("() => window.__pwned") is None
        assert any("Content Security Policy" in seen for seen in problems.seen)
        page.close()


def test_the_routes_are_read_only_and_show_no_key(
    emu: Emulator, serve: Serve, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    with serve(dashboard_app()) as http:
        assert http.get("/chat", params={"text": "Hi"}).status_code == 200
        page = http.get("/dashboard")
        again = http.get("/dashboard")
        snapshot = http.get("/dashboard/snapshot")
        for path in ("/dashboard", "/dashboard/snapshot"):
            for method in ("POST", "PUT", "PATCH", "DELETE"):
                assert http.request(method, path).status_code == 405, (method, path)
    assert page.status_code == 200 and snapshot.status_code == 200
    for answer in (page, snapshot):
        assert KEY not in answer.text and "dashboard-secret" not in answer.text
        assert answer.headers["cache-control"] == "no-store"
        assert answer.headers["x-content-type-options"] == "nosniff"
    policy = page.headers["content-security-policy"]
    assert "default-src 'none'" in policy and "connect-src 'self'" in policy
    nonce = policy.split("'nonce-")[1].split("'")[0]
    assert f'<script nonce="{nonce}">' in page.text
    assert nonce not in again.headers["content-security-policy"]  # fresh per answer
    # One inline script, and nothing loaded from elsewhere.
    assert page.text.count("<script") == 1 and "src=" not in page.text
    assert 'href="http' not in page.text and "@import" not in page.text
    body = snapshot.json()
    assert body["providers"]["openai"]["key_set"] is True
    assert body["providers"]["openai"]["requests"] == 1
    assert sum(row["calls"] for row in body["hours"]) == 1
    assert body["refresh_seconds"] == REFRESH and body["window_hours"] == 24


def test_loopback_only_refuses_other_machines_and_proxies(emu: Emulator) -> None:
    app = FastAPI(lifespan=lifespan(lambda: polyrelay.AsyncClient(CONFIG)))
    app.include_router(dashboard_router(dependencies=[Depends(loopback_only)]))

    async def statuses() -> List[int]:
        """The app asked as if from other addresses (the ASGI scope's
        client), through proxies."""
        found = []
        async with app.router.lifespan_context(app):
            for address, headers in [
                ("127.0.0.1", {}),
                ("::1", {}),
                ("::ffff:127.0.0.1", {}),
                ("203.0.113.7", {}),
                ("::ffff:203.0.113.7", {}),
                ("not-an-address", {}),
                ("127.0.0.1", {"X-Forwarded-For": "203.0.113.7"}),
                ("127.0.0.1", {"Forwarded": "for=203.0.113.7"}),
            ]:
                transport = httpx.ASGITransport(app=app, client=(address, 5000))
                async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
                    answer = await http.get("/dashboard/snapshot", headers=headers)
                    found.append(answer.status_code)
        return found

    # On a thread of its own: the browser fixture's loop holds this one.
    with ThreadPoolExecutor(1) as thread:
        assert thread.submit(asyncio.run, statuses()).result() == [200, 200, 200, 403, 403, 403, 403, 403]


@pytest.mark.parametrize(
    "options",
    [{"refresh_seconds": 0.0}, {"refresh_seconds": float("nan")}, {"window_hours": 0},
     {"prefix": "dashboard"}, {"prefix": "/dashboard/"}],
)
def test_bad_router_options_are_config_errors(options: Dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        dashboard_router(**options)


def test_the_router_can_serve_at_the_root(emu: Emulator, serve: Serve) -> None:
    app = FastAPI(lifespan=lifespan(lambda: polyrelay.AsyncClient(CONFIG)))
    app.include_router(dashboard_router(prefix=""))
    with serve(app) as http:
        page = http.get("/")
        assert page.status_code == 200 and 'data-snapshot="/snapshot"' in page.text
        assert http.get("/snapshot").json()["state_backend"] == "memory"


def read_line(stream: Any, timeout: float) -> str:
    ready, _, _ = select.select([stream], [], [], timeout)
    assert ready, "no line in time"
    line: str = stream.readline()
    return line


def test_the_command_serves_the_shared_analytics_store(emu: Emulator, tmp_path: Path) -> None:
    store = tmp_path / "analytics.sqlite"
    config = tmp_path / "polyrelay.toml"
    config.write_text(
        '[capabilities."weather.current"]\nchain = ["open-meteo"]\n'
        f"[analytics]\nsqlite = {json.dumps(str(store))}\n"
    )
    # Calls made by another process, recorded in the shared store.
    with polyrelay.Client(str(config)) as client:
        for lat in (52.5, 48.8):
            client.weather.current(lat=lat, lon=13.4)
    env = {**os.environ, "OPENAI_API_KEY": KEY}
    server = subprocess.Popen(
        [sys.executable, "-m", "polyrelay", "--config", str(config), "dashboard", "--port", "0",
         "--refresh", "0.5"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )
    try:
        assert server.stdout is not None
        line = read_line(server.stdout, 30)
        assert line.startswith("polyrelay dashboard on http://127.0.0.1:"), line
        url = line.split()[3]
        with httpx.Client(base_url=url, trust_env=False, timeout=15) as http:
            page = http.get("/")
            snapshot = http.get("/snapshot")
    finally:
        server.send_signal(signal.SIGINT)  # Ctrl-C
        output, errors = server.communicate(timeout=30)
    assert server.returncode == 0, errors
    assert output == "stopped\n"
    assert "warning" not in errors  # loopback: nothing to warn about
    assert page.status_code == 200 and 'data-refresh="500"' in page.text
    body = snapshot.json()
    assert [(row["calls"], row["successes"]) for row in body["hours"]] == [(2, 2)]
    assert body["analytics"]["store"] == "sqlite"
    assert body["providers"]["openai"]["key_set"] is True
    assert KEY not in page.text and KEY not in snapshot.text


def test_the_printed_address_accepts_connections_before_the_server_starts(
    emu: Emulator, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import socket

    import uvicorn

    # Whoever reads the printed address may connect before uvicorn runs: the socket must
    # already listen, so the connection waits in the backlog instead of being refused.
    def connect_first(self: Any, sockets: List[socket.socket]) -> None:
        with socket.create_connection(sockets[0].getsockname()[:2], timeout=5):
            pass

    monkeypatch.setattr(uvicorn.Server, "run", connect_first)
    assert main(["dashboard", "--port", "0"]) == 0
    assert "polyrelay dashboard on http://127.0.0.1:" in capsys.readouterr().out


def test_the_command_warns_when_reachable_from_elsewhere(
    emu: Emulator, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import uvicorn

    served: List[Any] = []
    # Not served: what matters is the socket it would serve on, and the warning.
    monkeypatch.setattr(
        uvicorn.Server, "run", lambda self, sockets: served.extend(s.getsockname() for s in sockets)
    )
    assert main(["dashboard", "--host", "0.0.0.0", "--port", "0"]) == 0
    out, err = capsys.readouterr()
    assert served[0][0] == "0.0.0.0"
    assert "warning: listening on 0.0.0.0, reachable from other machines" in err
    assert "polyrelay dashboard on http://0.0.0.0:" in out
    assert main(["dashboard", "--host", "::1", "--port", "0"]) == 0
    out, err = capsys.readouterr()
    assert "http://[::1]:" in out and err == ""
    assert main(["dashboard", "--host", "localhost", "--port", "0"]) == 0
    assert capsys.readouterr().err == ""


def test_the_command_reports_a_busy_port_and_missing_packages(
    emu: Emulator, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["dashboard", "--port", str(port)]) == 1
    assert f"cannot listen on 127.0.0.1 port {port}" in capsys.readouterr().err
    assert main(["dashboard", "--refresh", "0"]) == 1
    assert "refresh interval" in capsys.readouterr().err
    monkeypatch.setitem(sys.modules, "uvicorn", None)
    assert main(["dashboard"]) == 1
    err = capsys.readouterr().err
    assert "needs FastAPI and uvicorn (uvicorn is missing)" in err
    assert "pip install 'polyrelay[dashboard]'" in err
