"""Reading a request body without holding more than the configured limit in memory."""

from __future__ import annotations

from litestar import Request

from unify.ingest import RawDelivery

# Headers never kept with a raw delivery: credentials.
_SECRET_HEADERS = frozenset({"authorization", "x-api-key", "cookie"})


async def read_delivery(request: Request, route: str, limit: int) -> RawDelivery:
    """Read at most `limit` bytes of the body; past that, keep reading (and counting) only to drain the stream,
    and mark the delivery truncated."""
    chunks: list[bytes] = []
    kept = 0
    total = 0
    async for chunk in request.stream():
        total += len(chunk)
        if kept < limit:
            piece = chunk[: limit - kept]
            chunks.append(piece)
            kept += len(piece)
        if total > limit and total > 4 * limit:
            break  # enough counted; the remainder is not worth reading
    headers = [
        (name.decode("latin-1"), value.decode("latin-1"))
        for name, value in request.scope["headers"]
        if name.decode("latin-1").lower() not in _SECRET_HEADERS
    ]
    return RawDelivery(
        route=route,
        content_type=request.headers.get("content-type"),
        headers=headers,
        body=b"".join(chunks),
        body_size=total,
        truncated=total > limit,
    )
