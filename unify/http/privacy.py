"""`/v1/customers/{id}` erasure and export: the right to be forgotten and the right of access (scope `admin`).

Plain route handlers, not a Controller: Litestar 2 cannot register two Controllers (or Routers) on one path, and
`DELETE /v1/customers/{id}` shares its path with `CustomerController`'s GET (each would bring its own automatic
OPTIONS handler, and registration fails). List `PRIVACY_HANDLERS` after `CustomerController` in the app."""

from __future__ import annotations

from uuid import UUID

from litestar import Request, delete, get
from litestar.params import FromPath, JSONBody

from schemas import CustomerExport, ErasureReceipt, ErasureRequest
from unify.errors import NotFound
from unify.privacy.erasure import erase_customer, export_customer


@delete(
    "/v1/customers/{customer_id:uuid}",
    opt={"scope": "admin"},
    status_code=200,
    tags=["privacy"],
    summary="Erase a customer and everything held about them",
    description=(
        "In one transaction: every interaction linked to one of the customer's identifiers, with its identifier "
        "links and the raw delivery it came from; pending split-message parts naming an identifier; the "
        "identifiers and the customer. Writes an erasure log entry (who, why, how many; no personal data) and "
        "returns it. The reason is kept, so it must not name the customer. An identifier that comes back later "
        "starts a new customer."
    ),
)
async def erase_customer_route(
    request: Request, customer_id: FromPath[UUID], data: JSONBody[ErasureRequest]
) -> ErasureReceipt:
    return await erase_customer(
        request.app.state.pool,
        customer_id,
        actor=request.state.api_key_id,
        reason=data.reason,
        keyring=request.app.state.ingest_options.sealer,
    )


@get(
    "/v1/customers/{customer_id:uuid}/export",
    opt={"scope": "admin"},
    tags=["privacy"],
    summary="Export everything held about a customer",
    description=(
        "One JSON document: the customer, their identifiers with the evidence that linked them, and every "
        "interaction linked to one of those identifiers with its full stored event."
    ),
)
async def export_customer_route(request: Request, customer_id: FromPath[UUID]) -> CustomerExport:
    async with request.app.state.pool.acquire() as conn:
        document = await export_customer(conn, customer_id)
    if document is None:
        raise NotFound(f"no customer with id {customer_id}")
    return document


PRIVACY_HANDLERS = (erase_customer_route, export_customer_route)
"""The privacy routes, to be listed after `CustomerController` (see the module docstring)."""
