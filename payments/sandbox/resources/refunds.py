"""Refunds: create (full or partial), retrieve, update metadata, list.

The total refunded can never exceed what was captured: Stripe's ``amount_too_large`` /
``charge_already_refunded`` errors. Refunds of ``pm_card_refundFail`` payments start
``succeeded`` and later become ``failed`` (``failure_reason=expired_or_canceled_card``),
giving the money back to the charge, with ``refund.updated``, ``charge.refund.updated`` and
``refund.failed``.
"""

from __future__ import annotations

from typing import Any

from payments.sandbox import errors
from payments.sandbox.currencies import format_amount
from payments.sandbox.resources.common import (
    Ctx,
    Params,
    base_object,
    changed,
    filtered_list,
    new_id,
    route,
)
from payments.sandbox.resources.payment_methods import test_card

OPEN_DISPUTE = ("warning_needs_response", "needs_response", "under_review",
                "warning_under_review")


def _money(amount: int, currency: str) -> str:
    """As Stripe writes amounts in its error messages: "$12.34", else "1500 JPY"."""
    text = format_amount(amount, currency)
    return "$" + text.split()[0] if currency == "usd" else text


@route("POST", "/v1/refunds")
def create(ctx: Ctx, raw):
    params = Params(
        raw, allowed=("amount", "charge", "payment_intent", "reason", "metadata",
                      "instructions_email")
    )
    charge = _charge_to_refund(ctx, params)
    remaining = charge["amount"] - charge["amount_refunded"]
    if any(d["charge"] == charge["id"] and d["status"] in OPEN_DISPUTE
           for d in ctx.store.all("disputes")):
        raise errors.StripeError(
            400, f"Charge {charge['id']} has been charged back; cannot issue a refund.",
            code="charge_disputed",
        )
    if remaining <= 0:
        raise errors.StripeError(
            400, f"Charge {charge['id']} has already been refunded.",
            code="charge_already_refunded",
        )
    amount = params.int("amount", remaining, minimum=1)
    if amount > remaining:
        raise errors.StripeError(
            400,
            f"Refund amount ({_money(amount, charge['currency'])}) is greater than unrefunded "
            f"amount on charge ({_money(remaining, charge['currency'])})",
            code="amount_too_large",
            param="amount",
        )
    refund = base_object(
        "re",
        "refund",
        amount=amount,
        balance_transaction=new_id("txn"),
        charge=charge["id"],
        currency=charge["currency"],
        customer=charge["customer"],
        customer_account=None,
        destination_details={
            "card": {"reference": None, "reference_status": "pending",
                     "reference_type": "acquirer_reference_number", "type": "refund"},
            "type": "card",
        },
        metadata=params.metadata(),
        payment_intent=charge["payment_intent"],
        payment_method=charge["payment_method"],
        reason=params.str("reason", None, ("duplicate", "fraudulent", "requested_by_customer")),
        receipt_number=None,
        source_transfer_reversal=None,
        status="succeeded",
        transfer_reversal=None,
    )
    ctx.store.add("refunds", refund)
    before = {"amount_refunded": charge["amount_refunded"], "refunded": charge["refunded"]}
    charge["amount_refunded"] += amount
    charge["refunded"] = charge["amount_refunded"] >= charge["amount"]
    ctx.emit("refund.created", refund)
    ctx.emit("charge.refunded", charge, before)
    payment_method = ctx.store.get("payment_methods", charge["payment_method"])
    if payment_method and test_card(payment_method).refund_fails:
        refund_id = refund["id"]
        ctx.schedule(lambda job_ctx: fail_refund(job_ctx, refund_id))
    return ctx.respond(refund, params)


def _charge_to_refund(ctx: Ctx, params: Params) -> dict[str, Any]:
    if params.str("charge"):
        charge = ctx.get("charges", params.str("charge"), "charge")
    elif params.str("payment_intent"):
        intent = ctx.get("payment_intents", params.str("payment_intent"), "payment_intent")
        charge = ctx.store.get("charges", intent["latest_charge"] or "")
        if charge is None or intent["status"] not in ("succeeded", "requires_capture"):
            raise errors.StripeError(
                400,
                f"This PaymentIntent ({intent['id']}) does not have a successful charge to "
                "refund.",
                code="charge_not_refundable",
                param="payment_intent",
            )
    else:
        raise errors.StripeError(
            400,
            "One of the following params should be provided for this request: "
            "payment_intent or charge.",
            code="parameter_missing",
            saved=False,
        )
    if charge["status"] != "succeeded" or not charge["captured"]:
        raise errors.StripeError(
            400,
            f"Charge {charge['id']} has not been captured; cancel its PaymentIntent to release "
            "the authorization instead.",
            code="charge_not_refundable",
            param="charge",
        )
    return charge


def fail_refund(ctx: Ctx, refund_id: str) -> None:
    """The asynchronous failure of a ``pm_card_refundFail`` refund."""
    refund = ctx.store.get("refunds", refund_id)
    if refund is None or refund["status"] == "failed":
        return
    before = ctx.render(refund)
    refund["status"] = "failed"
    refund["failure_reason"] = "expired_or_canceled_card"
    refund["failure_balance_transaction"] = new_id("txn")
    charge = ctx.store.get("charges", refund["charge"])
    charge["amount_refunded"] -= refund["amount"]
    charge["refunded"] = False
    previous = changed(before, ctx.render(refund))
    ctx.emit("refund.updated", refund, previous)
    ctx.emit("charge.refund.updated", refund, previous)
    ctx.emit("refund.failed", refund, previous)


@route("GET", "/v1/refunds/{refund_id}")
def retrieve(ctx: Ctx, raw, refund_id):
    return ctx.respond(ctx.get("refunds", refund_id, "refund"), Params(raw))


@route("POST", "/v1/refunds/{refund_id}")
def update(ctx: Ctx, raw, refund_id):
    params = Params(raw, allowed=("metadata",))
    refund = ctx.get("refunds", refund_id, "refund")
    before = ctx.render(refund)
    refund["metadata"] = params.metadata(refund["metadata"])
    ctx.emit("refund.updated", refund, changed(before, ctx.render(refund)))
    return ctx.respond(refund, params)


@route("GET", "/v1/refunds")
def list_refunds(ctx: Ctx, raw):
    return filtered_list(ctx, raw, "refunds", ("charge", "payment_intent"))
