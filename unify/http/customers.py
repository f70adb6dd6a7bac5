"""`/v1/customers`: a customer and the identifiers linked to them."""

from __future__ import annotations

from uuid import UUID

from litestar import Controller, Request, get
from litestar.params import FromPath

from schemas import Customer
from unify.errors import NotFound
from unify.interactions import get_customer


class CustomerController(Controller):
    path = "/v1/customers"
    tags = ["customers"]

    @get("/{customer_id:uuid}", opt={"scope": "context:read"}, summary="Read one customer with their identifiers")
    async def read(self, request: Request, customer_id: FromPath[UUID]) -> Customer:
        async with request.app.state.pool.acquire() as conn:
            customer = await get_customer(conn, customer_id)
        if customer is None:
            raise NotFound(f"no customer with id {customer_id}")
        return customer
