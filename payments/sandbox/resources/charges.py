"""Charges: created by PaymentIntents, retrieved and listed (``customer``, ``payment_intent``)."""

from __future__ import annotations

from typing import Any

from payments.sandbox.cards import Decline
from payments.sandbox.resources.common import (
    Ctx,
    Params,
    base_object,
    filtered_list,
    new_id,
    route,
)
from payments.sandbox.resources.payment_methods import test_card


def create(
    ctx: Ctx,
    intent: dict[str, Any],
    payment_method: dict[str, Any],
    *,
    decline: Decline | None = None,
    authenticated: bool = False,
) -> dict[str, Any]:
    """The charge a confirmation attempt makes: failed with ``decline`` or succeeded."""
    card = test_card(payment_method)
    captured = decline is None and intent["capture_method"] != "manual"
    amount = intent["amount"]
    charge = base_object(
        "ch",
        "charge",
        amount=amount,
        amount_captured=amount if captured else 0,
        amount_refunded=0,
        application=None,
        application_fee=None,
        application_fee_amount=None,
        balance_transaction=new_id("txn") if captured else None,
        billing_details=payment_method["billing_details"],
        calculated_statement_descriptor="SANDBOX",
        captured=captured,
        currency=intent["currency"],
        customer=intent["customer"],
        description=intent["description"],
        disputed=False,
        failure_balance_transaction=None,
        failure_code=decline.code if decline else None,
        failure_message=decline.message if decline else None,
        fraud_details={},
        metadata=dict(intent["metadata"]),
        on_behalf_of=None,
        outcome=_outcome(decline),
        paid=decline is None,
        payment_intent=intent["id"],
        payment_method=payment_method["id"],
        payment_method_details={"card": _card_details(payment_method, card, authenticated),
                                "type": "card"},
        radar_options={},
        receipt_email=intent["receipt_email"],
        receipt_number=None,
        receipt_url=f"{ctx.base_url}/_sandbox/receipts/{{id}}",
        refunded=False,
        review=None,
        shipping=intent["shipping"],
        source=None,
        source_transfer=None,
        statement_descriptor=intent["statement_descriptor"],
        statement_descriptor_suffix=intent["statement_descriptor_suffix"],
        status="failed" if decline else "succeeded",
        transfer_data=None,
        transfer_group=intent["transfer_group"],
        _released=0,
    )
    charge["receipt_url"] = charge["receipt_url"].replace("{id}", charge["id"])
    return ctx.store.add("charges", charge)


def _outcome(decline: Decline | None) -> dict[str, Any]:
    if decline is None:
        return {
            "advice_code": None,
            "network_advice_code": None,
            "network_decline_code": None,
            "network_status": "approved_by_network",
            "reason": None,
            "risk_level": "normal",
            "risk_score": 32,
            "seller_message": "Payment complete.",
            "type": "authorized",
        }
    return {
        "advice_code": None,
        "network_advice_code": None,
        "network_decline_code": None,
        "network_status": "declined_by_network",
        "reason": decline.decline_code,
        "risk_level": "normal",
        "risk_score": 32,
        "seller_message": f"The bank returned the decline code `{decline.decline_code}`.",
        "type": "issuer_declined",
    }


def _card_details(payment_method, card, authenticated: bool) -> dict[str, Any]:
    details = payment_method["card"]
    return {
        "amount_authorized": None,
        "authorization_code": None,
        "brand": card.brand,
        "checks": details["checks"],
        "country": card.country,
        "exp_month": details["exp_month"],
        "exp_year": details["exp_year"],
        "extended_authorization": {"status": "disabled"},
        "fingerprint": card.fingerprint,
        "funding": card.funding,
        "incremental_authorization": {"status": "unavailable"},
        "installments": None,
        "last4": card.last4,
        "mandate": None,
        "multicapture": {"status": "unavailable"},
        "network": card.brand,
        "network_token": {"used": False},
        "network_transaction_id": None,
        "overcapture": {"maximum_amount_capturable": 0, "status": "unavailable"},
        "regulated_status": "unregulated",
        "three_d_secure": (
            {
                "authentication_flow": "challenge",
                "electronic_commerce_indicator": "05",
                "exemption_indicator": None,
                "result": "authenticated",
                "result_reason": None,
                "transaction_id": new_id("3ds"),
                "version": "2.2.0",
            }
            if authenticated
            else None
        ),
        "wallet": None,
    }


def render_refunds(ctx_store, charge: dict[str, Any], render) -> dict[str, Any]:
    """``charge.refunds``: the charge's refunds as an embedded list."""
    refunds = [r for r in ctx_store.all("refunds") if r["charge"] == charge["id"]]
    refunds.sort(key=lambda r: (r["created"], r["_order"]), reverse=True)
    return {
        "object": "list",
        "data": [render(r) for r in refunds],
        "has_more": False,
        "total_count": len(refunds),
        "url": f"/v1/charges/{charge['id']}/refunds",
    }


@route("GET", "/v1/charges/{charge_id}")
def retrieve(ctx: Ctx, raw, charge_id):
    return ctx.respond(ctx.get("charges", charge_id, "charge"), Params(raw))


@route("GET", "/v1/charges")
def list_charges(ctx: Ctx, raw):
    return filtered_list(ctx, raw, "charges", ("customer", "payment_intent"))
