"""PaymentMethods: create from Stripe's test ids, retrieve, update, attach, detach, list.

``pm_card_visa`` and friends are accepted wherever a PaymentMethod id is; each use creates a
new ``pm_...`` object, as Stripe does. Attaching one of the declining test cards fails with
its card error (Stripe checks the card on attach); ``pm_card_chargeCustomerFail`` attaches
fine and fails only when charged.
"""

from __future__ import annotations

import time
from typing import Any

from payments.sandbox import errors
from payments.sandbox.cards import TestCard, card_by_name, card_for_number, card_for_test_id
from payments.sandbox.resources.common import (
    LIST_PARAMS,
    Ctx,
    Params,
    base_object,
    changed,
    list_response,
    route,
)

EMPTY_ADDRESS = {
    "city": None,
    "country": None,
    "line1": None,
    "line2": None,
    "postal_code": None,
    "state": None,
}


def build(card: TestCard, billing_details: dict[str, Any] | None = None) -> dict[str, Any]:
    """A card PaymentMethod for ``card``, shaped like Stripe's."""
    details = billing_details or {}
    return base_object(
        "pm",
        "payment_method",
        allow_redisplay="unspecified",
        billing_details={
            "address": {**EMPTY_ADDRESS, **(details.get("address") or {})},
            "email": details.get("email"),
            "name": details.get("name"),
            "phone": details.get("phone"),
            "tax_id": None,
        },
        card=card_details(card),
        customer=None,
        customer_account=None,
        metadata={},
        type="card",
        _card=card.name,
    )


def card_details(card: TestCard) -> dict[str, Any]:
    return {
        "brand": card.brand,
        "checks": {
            "address_line1_check": None,
            "address_postal_code_check": None,
            "cvc_check": "unchecked",
        },
        "country": card.country,
        "display_brand": card.brand,
        "exp_month": 12,
        "exp_year": time.gmtime().tm_year + 3,
        "fingerprint": card.fingerprint,
        "funding": card.funding,
        "generated_from": None,
        "last4": card.last4,
        "networks": {"available": [card.brand], "preferred": None},
        "regulated_status": "unregulated",
        "three_d_secure_usage": {"supported": True},
        "wallet": None,
    }


def test_card(payment_method: dict[str, Any]) -> TestCard:
    return card_by_name(payment_method["_card"])


def resolve(ctx: Ctx, pm_id: Any, param: str = "payment_method") -> dict[str, Any]:
    """The PaymentMethod ``pm_id``, cloning a fresh one for a Stripe test id."""
    existing = ctx.store.get("payment_methods", pm_id) if isinstance(pm_id, str) else None
    if existing is not None:
        return existing
    card = card_for_test_id(pm_id) if isinstance(pm_id, str) else None
    if card is None:
        raise errors.resource_missing("payment_method", str(pm_id), param)
    return ctx.store.add("payment_methods", build(card))


def decline_error(card_error, **extra: Any) -> errors.StripeError:
    return errors.StripeError(
        402,
        card_error.message,
        type="card_error",
        code=card_error.code,
        decline_code=card_error.decline_code,
        param=card_error.param,
        **extra,
    )


def attach_to(
    ctx: Ctx, pm_id: str, customer: dict[str, Any], param: str = "payment_method"
) -> dict[str, Any]:
    """Attach ``pm_id`` to ``customer``, with Stripe's checks and event."""
    payment_method = resolve(ctx, pm_id, param)
    if payment_method["customer"] == customer["id"]:
        return payment_method
    if payment_method["customer"] is not None:
        raise errors.StripeError(
            400,
            "The payment method you provided has already been attached to a customer.",
            code="payment_method_unexpected_state",
            param=param,
        )
    if payment_method.get("_consumed"):
        raise _consumed_error(payment_method["id"], param)
    card = test_card(payment_method)
    if card.decline is not None:
        raise decline_error(card.decline)
    payment_method["customer"] = customer["id"]
    ctx.emit("payment_method.attached", payment_method)
    return payment_method


def _consumed_error(pm_id: str, param: str) -> errors.StripeError:
    return errors.StripeError(
        400,
        f"The provided PaymentMethod ({pm_id}) was previously used without being attached to "
        "a Customer or was detached from a Customer, and may not be used again.",
        code="payment_method_unexpected_state",
        param=param,
    )


def ensure_usable(payment_method: dict[str, Any], param: str = "payment_method") -> None:
    if payment_method.get("_consumed"):
        raise _consumed_error(payment_method["id"], param)


@route("POST", "/v1/payment_methods")
def create(ctx: Ctx, raw):
    params = Params(
        raw,
        allowed=("type", "card", "billing_details", "metadata", "allow_redisplay"),
        required=("type",),
    )
    params.str("type", choices=("card",))
    card_params = params.dict("card") or {}
    card = None
    if card_params.get("token"):
        card = card_for_test_id(card_params["token"])
        if card is None:
            raise errors.resource_missing("token", card_params["token"], "card[token]")
    elif card_params.get("number"):
        card = card_for_number(str(card_params["number"]))
        if card is None:
            raise errors.StripeError(
                402, "Your card number is incorrect.", type="card_error",
                code="incorrect_number", param="card[number]",
            )
    else:
        raise errors.missing_parameter("card")
    payment_method = build(card, params.dict("billing_details"))
    payment_method["metadata"] = params.metadata()
    if "allow_redisplay" in params:
        payment_method["allow_redisplay"] = params.str(
            "allow_redisplay", choices=("always", "limited", "unspecified")
        )
    ctx.store.add("payment_methods", payment_method)
    return ctx.respond(payment_method, params)


@route("GET", "/v1/payment_methods/{pm_id}")
def retrieve(ctx: Ctx, raw, pm_id):
    return ctx.respond(resolve(ctx, pm_id, "payment_method"), Params(raw))


@route("POST", "/v1/payment_methods/{pm_id}")
def update(ctx: Ctx, raw, pm_id):
    params = Params(raw, allowed=("billing_details", "metadata", "allow_redisplay"))
    payment_method = ctx.get("payment_methods", pm_id, "payment_method")
    before = ctx.render(payment_method)
    details = params.dict("billing_details")
    if details:
        current = payment_method["billing_details"]
        for key in ("email", "name", "phone"):
            if key in details:
                current[key] = details[key] or None
        if isinstance(details.get("address"), dict):
            current["address"] = {**current["address"], **details["address"]}
    payment_method["metadata"] = params.metadata(payment_method["metadata"])
    ctx.emit("payment_method.updated", payment_method, changed(before, ctx.render(payment_method)))
    return ctx.respond(payment_method, params)


@route("POST", "/v1/payment_methods/{pm_id}/attach")
def attach(ctx: Ctx, raw, pm_id):
    params = Params(raw, allowed=("customer",), required=("customer",))
    customer = ctx.get("customers", params.str("customer"), "customer")
    return ctx.respond(attach_to(ctx, pm_id, customer, "payment_method"), params)


@route("POST", "/v1/payment_methods/{pm_id}/detach")
def detach(ctx: Ctx, raw, pm_id):
    params = Params(raw)
    payment_method = ctx.get("payment_methods", pm_id, "payment_method")
    if payment_method["customer"] is None:
        raise errors.StripeError(
            400,
            "The payment method you provided is not attached to a customer so detachment "
            "is impossible.",
            code="payment_method_unexpected_state",
            param="payment_method",
        )
    previous = payment_method["customer"]
    customer = ctx.store.get("customers", previous)
    if customer and customer["invoice_settings"]["default_payment_method"] == pm_id:
        customer["invoice_settings"]["default_payment_method"] = None
    payment_method["customer"] = None
    payment_method["_consumed"] = True
    ctx.emit("payment_method.detached", payment_method, {"customer": previous})
    return ctx.respond(payment_method, params)


def _list(ctx: Ctx, params: Params, customer_id: str | None, url: str):
    items = ctx.store.all("payment_methods")
    if customer_id:
        ctx.get("customers", customer_id, "customer")
        items = [pm for pm in items if pm["customer"] == customer_id]
    kind = params.str("type")
    if kind:
        items = [pm for pm in items if pm["type"] == kind]
    return list_response(ctx, params, items, url)


@route("GET", "/v1/payment_methods")
def list_payment_methods(ctx: Ctx, raw):
    params = Params(raw, allowed=(*LIST_PARAMS, "customer", "type"))
    return _list(ctx, params, params.str("customer"), "/v1/payment_methods")


@route("GET", "/v1/customers/{customer_id}/payment_methods")
def list_for_customer(ctx: Ctx, raw, customer_id):
    params = Params(raw, allowed=(*LIST_PARAMS, "type", "allow_redisplay"))
    return _list(ctx, params, customer_id, f"/v1/customers/{customer_id}/payment_methods")


@route("GET", "/v1/customers/{customer_id}/payment_methods/{pm_id}")
def retrieve_for_customer(ctx: Ctx, raw, customer_id, pm_id):
    """A PaymentMethod attached to this customer; any other is a 404, as on Stripe."""
    params = Params(raw)
    ctx.get("customers", customer_id, "customer")
    payment_method = ctx.store.get("payment_methods", pm_id)
    if payment_method is None or payment_method["customer"] != customer_id:
        raise errors.resource_missing("payment_method", pm_id, "payment_method")
    return ctx.respond(payment_method, params)
