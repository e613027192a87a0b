"""Disputes: opened by ``pm_card_createDispute`` payments; retrieve, update, close, list.

A dispute opens shortly after the payment (``needs_response``, reason ``fraudulent``). Evidence
is saved with ``POST /v1/disputes/{id}``: ``submit=false`` stages it (still editable),
``submit=true`` (Stripe's default) sends it to the bank (``under_review``); after that the
dispute takes no more evidence. Stripe's limits hold: text fields of at most 20,000 characters
(the long ones) or 5,000, 150,000 for all of them together, and file fields naming files
uploaded for ``dispute_evidence``. Evidence submitted after ``due_by`` is taken, with
``past_due`` set, as Stripe does. As in Stripe test mode, ``uncategorized_text`` of
``winning_evidence`` wins the dispute and ``losing_evidence`` loses it, shortly after
submission (an async transition). ``close`` accepts the dispute (lost).
"""

from __future__ import annotations

from typing import Any

from payments.sandbox import errors
from payments.sandbox.resources.common import (
    Ctx,
    Params,
    base_object,
    changed,
    filtered_list,
    now,
    route,
)
from payments.sandbox.resources.misc import DISPUTE_EVIDENCE as PURPOSE
from payments.sandbox.resources.payment_methods import test_card

EVIDENCE_FIELDS = (
    "access_activity_log",
    "billing_address",
    "cancellation_policy",
    "cancellation_policy_disclosure",
    "cancellation_rebuttal",
    "customer_communication",
    "customer_email_address",
    "customer_name",
    "customer_purchase_ip",
    "customer_signature",
    "duplicate_charge_documentation",
    "duplicate_charge_explanation",
    "duplicate_charge_id",
    "product_description",
    "receipt",
    "refund_policy",
    "refund_policy_disclosure",
    "refund_refusal_explanation",
    "service_date",
    "service_documentation",
    "shipping_address",
    "shipping_carrier",
    "shipping_date",
    "shipping_documentation",
    "shipping_tracking_number",
    "uncategorized_file",
    "uncategorized_text",
)
FILE_FIELDS = {
    "cancellation_policy",
    "customer_communication",
    "customer_signature",
    "duplicate_charge_documentation",
    "receipt",
    "refund_policy",
    "service_documentation",
    "shipping_documentation",
    "uncategorized_file",
}
# Stripe's per-field limits (docs.stripe.com/api/disputes/update): these explanations hold up to
# 20,000 characters; any other text field is a plain Stripe string (5,000).
LONG_TEXT_FIELDS = {
    "access_activity_log",
    "cancellation_policy_disclosure",
    "cancellation_rebuttal",
    "duplicate_charge_explanation",
    "product_description",
    "refund_policy_disclosure",
    "refund_refusal_explanation",
    "uncategorized_text",
}
LONG_TEXT = 20_000
SHORT_TEXT = 5_000
ALL_TEXT = 150_000
OPEN = ("warning_needs_response", "needs_response")
EVIDENCE_WINDOW = 7 * 24 * 3600
OUTCOMES = {"winning_evidence": "won", "losing_evidence": "lost"}


def open_dispute(ctx: Ctx, charge_id: str) -> None:
    """Open Stripe's ``fraudulent`` dispute on a ``pm_card_createDispute`` charge."""
    charge = ctx.store.get("charges", charge_id)
    if charge is None or charge["disputed"]:
        return
    payment_method = ctx.store.get("payment_methods", charge["payment_method"])
    card = test_card(payment_method)
    dispute = base_object(
        "dp",
        "dispute",
        amount=charge["amount"],
        balance_transactions=[],
        charge=charge_id,
        currency=charge["currency"],
        enhanced_eligibility_types=[],
        evidence={**dict.fromkeys(EVIDENCE_FIELDS), "enhanced_evidence": {}},
        evidence_details={
            "due_by": now() + EVIDENCE_WINDOW,
            "enhanced_eligibility": {},
            "has_evidence": False,
            "past_due": False,
            "submission_count": 0,
        },
        is_charge_refundable=False,
        metadata={},
        payment_intent=charge["payment_intent"],
        payment_method_details={
            "card": {"brand": card.brand, "case_type": "chargeback", "network": card.brand,
                     "network_reason_code": "10.4"},
            "type": "card",
        },
        reason="fraudulent",
        status="needs_response",
    )
    ctx.store.add("disputes", dispute)
    charge["disputed"] = True
    ctx.emit("charge.dispute.created", dispute)
    ctx.emit("charge.dispute.funds_withdrawn", dispute)


def _close(ctx: Ctx, dispute_id: str, status: str) -> None:
    dispute = ctx.store.get("disputes", dispute_id)
    if dispute is None or dispute["status"] in ("won", "lost"):
        return
    before = ctx.render(dispute)
    dispute["status"] = status
    ctx.emit("charge.dispute.closed", dispute, changed(before, ctx.render(dispute)))
    if status == "won":
        ctx.emit("charge.dispute.funds_reinstated", dispute)


def _dispute(ctx: Ctx, dispute_id: str) -> dict[str, Any]:
    return ctx.get("disputes", dispute_id, "dispute")


@route("GET", "/v1/disputes/{dispute_id}")
def retrieve(ctx: Ctx, raw, dispute_id):
    return ctx.respond(_dispute(ctx, dispute_id), Params(raw))


def _check_evidence(ctx: Ctx, dispute: dict[str, Any], evidence: dict[str, Any]) -> None:
    """Stripe's checks on an evidence hash, before anything changes."""
    for key, value in evidence.items():
        if key not in EVIDENCE_FIELDS:
            raise errors.unknown_parameter(f"evidence[{key}]")
        if not isinstance(value, str):
            raise errors.invalid_parameter(f"evidence[{key}]", f"Invalid string: {key}")
        if key in FILE_FIELDS:
            if value and ctx.get("files", value, f"evidence[{key}]")["purpose"] != PURPOSE:
                raise errors.invalid_parameter(
                    f"evidence[{key}]",
                    f"The file {value} was not uploaded with purpose {PURPOSE}.",
                )
            continue
        limit = LONG_TEXT if key in LONG_TEXT_FIELDS else SHORT_TEXT
        if len(value) > limit:
            raise errors.invalid_parameter(
                f"evidence[{key}]",
                f"Invalid string: {value[:20]}...; must be at most {limit} characters",
            )
    staged = {**dispute["evidence"], **evidence}
    total = sum(len(v) for k, v in staged.items() if k not in FILE_FIELDS and isinstance(v, str))
    if total > ALL_TEXT:
        raise errors.invalid_parameter(
            "evidence",
            f"The combined character count of all evidence fields is {total}; it must be at "
            f"most {ALL_TEXT}.",
        )


@route("POST", "/v1/disputes/{dispute_id}")
def update(ctx: Ctx, raw, dispute_id):
    params = Params(raw, allowed=("evidence", "metadata", "submit"))
    dispute = _dispute(ctx, dispute_id)
    evidence = params.dict("evidence") or {}
    # Stripe submits unless told not to; a request with neither evidence nor `submit` (only
    # metadata) submits nothing.
    submit = params.bool("submit", True) and (bool(evidence) or "submit" in params)
    if (evidence or submit) and dispute["status"] not in OPEN:
        raise errors.StripeError(
            400,
            f"This dispute is in status {dispute['status']}; evidence can only be updated "
            "before it is submitted.",
            code="dispute_not_updatable",
        )
    _check_evidence(ctx, dispute, evidence)
    before = ctx.render(dispute)
    for key, value in evidence.items():
        dispute["evidence"][key] = value or None
    if evidence:
        dispute["evidence_details"]["has_evidence"] = True
    dispute["metadata"] = params.metadata(dispute["metadata"])
    if submit:
        details = dispute["evidence_details"]
        dispute["status"] = "under_review"
        details["submission_count"] += 1
        details["past_due"] = now() > details["due_by"]
        outcome = OUTCOMES.get(dispute["evidence"]["uncategorized_text"] or "")
        if outcome:
            ctx.schedule(lambda job_ctx: _close(job_ctx, dispute_id, outcome))
    previous = changed(before, ctx.render(dispute))
    if previous:
        ctx.emit("charge.dispute.updated", dispute, previous)
    return ctx.respond(dispute, params)


@route("POST", "/v1/disputes/{dispute_id}/close")
def close(ctx: Ctx, raw, dispute_id):
    params = Params(raw)
    dispute = _dispute(ctx, dispute_id)
    if dispute["status"] not in OPEN:
        raise errors.StripeError(
            400,
            f"This dispute is in status {dispute['status']} and can no longer be closed.",
            code="dispute_not_closable",
        )
    _close(ctx, dispute_id, "lost")
    return ctx.respond(dispute, params)


@route("GET", "/v1/disputes")
def list_disputes(ctx: Ctx, raw):
    return filtered_list(ctx, raw, "disputes", ("charge", "payment_intent"))
