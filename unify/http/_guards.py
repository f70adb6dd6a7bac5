"""The API-key check: every route but health and the OpenAPI schema names the scope it needs in `opt["scope"]`.

It is an ASGI middleware rather than a Litestar guard: it runs after routing (the route handler is in the scope),
inside the exception handler (a refusal is a problem+json answer like any other), and costs no copy of the route
handler per request, which Litestar makes for every guard call."""

from __future__ import annotations

from litestar.types import ASGIApp, Receive, Scope, Send

from unify.auth import KeyChecker, require_scope


def _presented_key(headers: list[tuple[bytes, bytes]]) -> str | None:
    api_key = None
    for name, value in headers:
        if name == b"authorization":
            header = value.decode("latin-1")
            if header[:7].lower() == "bearer ":
                return header[7:].strip()
        elif name == b"x-api-key":
            api_key = value.decode("latin-1")
    return api_key


def key_scope_middleware(app: ASGIApp) -> ASGIApp:
    """Authenticate the presented key and require the route's scope; the key id is kept as
    `request.state.api_key_id` for handlers that record who acted."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        handler = scope.get("route_handler")
        needed = handler.opt.get("scope") if handler is not None else None
        if needed is not None:
            checker: KeyChecker = scope["litestar_app"].state.key_checker
            key_id, scopes = await checker.authenticate(_presented_key(scope["headers"]))
            scope.setdefault("state", {})["api_key_id"] = key_id  # type: ignore[typeddict-unknown-key]
            require_scope(scopes, needed)
        await app(scope, receive, send)

    return middleware
