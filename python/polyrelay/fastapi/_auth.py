"""Bearer-token auth for routes: :func:`require_user`, with the app's
per-user rate limit (see :func:`polyrelay.fastapi.add_rate_limits`)."""

from __future__ import annotations

from typing import Awaitable, Callable, Dict, Optional, Sequence, Tuple, Union, cast

from fastapi import HTTPException, Request, Response

from ..auth import Claims, TokenIssuer, Verifier
from ..exceptions import AuthUnavailableError, TokenError
from ._limits import check_user_limit

#: What checks bearer tokens: an issuer (revocations included) or a
#: stateless verifier (a resource server holding only public keys).
TokenAuthority = Union[TokenIssuer, Verifier]


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


def token_refused(error: TokenError) -> Tuple[int, Dict[str, str]]:
    """Status and headers for a refused token; the store being down is not
    the token's fault."""
    if isinstance(error, AuthUnavailableError):
        return 503, {"Retry-After": "1"}
    return 401, {"WWW-Authenticate": _challenge("invalid_token", str(error))}


def require_user(
    scopes: Sequence[str] = (), *, auth: Optional[TokenAuthority] = None
) -> Callable[..., Awaitable[Claims]]:
    """Dependency checking the request's bearer token and returning its
    :class:`~polyrelay.auth.Claims`.

    No or a non-bearer ``Authorization`` header: 401. A refused token: 401
    with ``error="invalid_token"`` and the reason (``token expired``, …).
    A token without every scope in ``scopes``: 403 with
    ``error="insufficient_scope"``. ``auth`` defaults to the one given to
    :func:`lifespan`. When the app has a per-user rate limit
    (:func:`add_rate_limits`), the token's subject is charged one request:
    over the limit, 429 with ``Retry-After``; under it, ``RateLimit``
    headers on the answer. The claims are also kept on
    ``request.state.polyrelay_claims``.
    """
    # One scope given as a bare string is one scope, not its letters.
    wanted = (scopes,) if isinstance(scopes, str) else tuple(scopes)

    # `response` is FastAPI's per-request response (for headers); a direct
    # call (tests) may leave it out.
    async def dependency(request: Request, response: Response = cast(Response, None)) -> Claims:
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
            status, headers = token_refused(refused)
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
        request.state.polyrelay_claims = claims
        await check_user_limit(request, response, claims.subject or "")
        return claims

    return dependency
