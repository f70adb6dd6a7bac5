"""Scope guards: every route but health and the OpenAPI schema names the scope it needs in `opt["scope"]`."""

from __future__ import annotations

from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler

from unify.auth import KeyChecker, require_scope


def _presented_key(connection: ASGIConnection) -> str | None:
    header = connection.headers.get("authorization")
    if header and header[:7].lower() == "bearer ":
        return header[7:].strip()
    return connection.headers.get("x-api-key")


async def scope_guard(connection: ASGIConnection, handler: BaseRouteHandler) -> None:
    needed = handler.opt.get("scope")
    if needed is None:
        return
    checker: KeyChecker = connection.app.state.key_checker
    key_id, scopes = await checker.authenticate(_presented_key(connection))
    connection.state.api_key_id = key_id
    require_scope(scopes, needed)
