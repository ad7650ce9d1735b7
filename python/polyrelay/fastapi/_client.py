"""One client per app: the ``lifespan`` that opens and closes it (and
closes the token issuer), and the dependency that hands it to routes."""

from __future__ import annotations

from contextlib import asynccontextmanager
from typing import Annotated, AsyncContextManager, AsyncIterator, Callable, Optional

from fastapi import Depends, FastAPI, Request

from .._client import AsyncClient
from ..auth import TokenIssuer
from ._auth import TokenAuthority


def lifespan(
    client_factory: Callable[[], AsyncClient] = AsyncClient,
    *,
    auth: Optional[TokenAuthority] = None,
) -> Callable[[FastAPI], AsyncContextManager[None]]:
    """A FastAPI ``lifespan`` that opens one client at start-up (from
    ``client_factory``, default ``AsyncClient()`` configured from the
    environment), keeps it on ``app.state.polyrelay`` and closes it at
    shut-down. ``auth`` becomes the default token authority of
    :func:`require_user` (``app.state.polyrelay_auth``); a
    :class:`~polyrelay.auth.TokenIssuer` is closed at shut-down too (its
    Redis connection released)."""

    @asynccontextmanager
    async def run(app: FastAPI) -> AsyncIterator[None]:
        client = client_factory()
        app.state.polyrelay = client
        if auth is not None:
            app.state.polyrelay_auth = auth
        try:
            yield
        finally:
            try:
                await client.aclose()
            finally:
                if isinstance(auth, TokenIssuer):
                    await auth.aclose()

    return run


def app_client(request: Request) -> AsyncClient:
    """The app's client (opened by :func:`lifespan`)."""
    client = getattr(request.app.state, "polyrelay", None)
    if not isinstance(client, AsyncClient):
        raise RuntimeError(
            "no polyrelay client: create the app with lifespan=polyrelay.fastapi.lifespan()"
        )
    return client


async def polyrelay_client(request: Request) -> AsyncIterator[AsyncClient]:
    """Dependency yielding the app's client (opened by :func:`lifespan`)."""
    yield app_client(request)


#: ``client: ClientDep`` in a route's parameters injects the app's client.
ClientDep = Annotated[AsyncClient, Depends(polyrelay_client)]
