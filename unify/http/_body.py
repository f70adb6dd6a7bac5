"""Reading a request body without holding more than the configured limit in memory."""

from __future__ import annotations

from litestar import Request
from litestar.exceptions import InternalServerException

from unify.ingest import RawDelivery

# Headers never kept with a raw delivery: credentials.
_SECRET_HEADERS = frozenset({b"authorization", b"x-api-key", b"cookie"})


async def read_delivery(request: Request, route: str, limit: int) -> RawDelivery:
    """Read at most `limit` bytes of the body; past that, keep reading (and counting) only to drain the stream,
    and mark the delivery truncated. Reads the ASGI messages itself (the hot path of every ingest)."""
    chunks: list[bytes] = []
    kept = 0
    total = 0
    receive = request.receive
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise InternalServerException("client disconnected prematurely")
        chunk = message.get("body", b"")
        if chunk:
            total += len(chunk)
            if kept < limit:
                piece = chunk[: limit - kept]
                chunks.append(piece)
                kept += len(piece)
            if total > limit and total > 4 * limit:
                break  # enough counted; the remainder is not worth reading
        if not message.get("more_body", False):
            break
    headers: list[tuple[str, str]] = []
    content_type = None
    for name, value in request.scope["headers"]:
        lowered = name.lower()
        if lowered in _SECRET_HEADERS:
            continue
        text = value.decode("latin-1")
        if lowered == b"content-type" and content_type is None:
            content_type = text
        headers.append((name.decode("latin-1"), text))
    return RawDelivery(
        route=route,
        content_type=content_type,
        headers=headers,
        body=chunks[0] if len(chunks) == 1 else b"".join(chunks),
        body_size=total,
        truncated=total > limit,
    )
