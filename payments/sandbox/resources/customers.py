"""Customers: create, retrieve, update, delete, list (``email`` filter)."""

from __future__ import annotations

import secrets

from payments.sandbox.resources.common import (
    LIST_PARAMS,
    Ctx,
    Params,
    base_object,
    changed,
    list_response,
    route,
)

FIELDS = (
    "address",
    "description",
    "email",
    "invoice_settings",
    "metadata",
    "name",
    "payment_method",
    "phone",
    "preferred_locales",
    "shipping",
    "tax_exempt",
)
EMPTY_ADDRESS = {
    "city": None,
    "country": None,
    "line1": None,
    "line2": None,
    "postal_code": None,
    "state": None,
}


@route("POST", "/v1/customers")
def create(ctx: Ctx, raw):
    params = Params(raw, allowed=FIELDS)
    customer = base_object(
        "cus",
        "customer",
        address=None,
        balance=0,
        currency=None,
        default_source=None,
        delinquent=False,
        description=None,
        discount=None,
        email=None,
        invoice_prefix=secrets.token_hex(4).upper(),
        invoice_settings={
            "custom_fields": None,
            "default_payment_method": None,
            "footer": None,
            "rendering_options": None,
        },
        metadata={},
        name=None,
        next_invoice_sequence=1,
        phone=None,
        preferred_locales=[],
        shipping=None,
        tax_exempt="none",
        test_clock=None,
    )
    _apply(ctx, customer, params)
    ctx.store.add("customers", customer)
    ctx.emit("customer.created", customer)
    if params.str("payment_method"):
        from payments.sandbox.resources.payment_methods import attach_to

        attach_to(ctx, params.str("payment_method"), customer, "payment_method")
    return ctx.respond(customer, params)


def _apply(ctx: Ctx, customer, params: Params) -> None:
    for name in ("description", "email", "name", "phone"):
        if name in params:
            customer[name] = params.str(name)
    if "address" in params:
        customer["address"] = {**EMPTY_ADDRESS, **(params.dict("address") or {})} or None
    if "shipping" in params:
        customer["shipping"] = params.dict("shipping")
    if "preferred_locales" in params:
        customer["preferred_locales"] = params.list("preferred_locales")
    if "tax_exempt" in params:
        customer["tax_exempt"] = params.str("tax_exempt", "none", ("none", "exempt", "reverse"))
    settings = params.dict("invoice_settings")
    if settings and "default_payment_method" in settings:
        pm_id = settings["default_payment_method"] or None
        if pm_id:
            ctx.get("payment_methods", pm_id, "invoice_settings[default_payment_method]")
        customer["invoice_settings"]["default_payment_method"] = pm_id
    customer["metadata"] = params.metadata(customer["metadata"])


@route("GET", "/v1/customers/{customer_id}")
def retrieve(ctx: Ctx, raw, customer_id):
    params = Params(raw)
    stub = ctx.store.get("deleted_customers", customer_id)
    if stub is not None:  # Stripe answers a deleted customer with its stub, not a 404
        return 200, ctx.render(stub)
    return ctx.respond(ctx.get("customers", customer_id), params)


@route("POST", "/v1/customers/{customer_id}")
def update(ctx: Ctx, raw, customer_id):
    customer = ctx.get("customers", customer_id)
    params = Params(raw, allowed=tuple(f for f in FIELDS if f != "payment_method"))
    before = ctx.render(customer)
    _apply(ctx, customer, params)
    ctx.emit("customer.updated", customer, changed(before, ctx.render(customer)))
    return ctx.respond(customer, params)


@route("DELETE", "/v1/customers/{customer_id}")
def delete(ctx: Ctx, raw, customer_id):
    customer = ctx.get("customers", customer_id)
    ctx.store.remove("customers", customer_id)
    ctx.emit("customer.deleted", customer)
    stub = ctx.store.add("deleted_customers", deleted_stub(customer_id))
    return 200, ctx.render(stub)


def deleted_stub(customer_id: str) -> dict[str, object]:
    return {"id": customer_id, "object": "customer", "deleted": True}


@route("GET", "/v1/customers")
def list_customers(ctx: Ctx, raw):
    params = Params(raw, allowed=(*LIST_PARAMS, "email"))
    items = ctx.store.all("customers")
    if params.str("email"):
        items = [c for c in items if c["email"] == params.str("email")]
    return list_response(ctx, params, items, "/v1/customers")
