"""POST /webhooks/stripe/: verify, reject what can never be stored, store once, answer 200.

Every refusal is a 400 (413 for size) with a short reason: Stripe retries non-2xx answers for
days, so nothing that could never succeed may answer 500, and nothing is stored until it passes.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from payments import gateway
from payments.models import WebhookEvent
from payments.webhooks.ingest import lane_ring, subject_of, webhook_event_store

MAX_PAYLOAD_BYTES = 512 * 1024
# Stripe's events nest a handful of levels (event > data > object > charges > card > checks);
# anything deeper is not an event, and unbounded nesting costs memory and stack to store.
MAX_NESTING = 32

BAD_SIGNATURE = "invalid signature"
BAD_PAYLOAD = "payload is not a Stripe event"
TOO_LARGE = "payload too large"
TOO_DEEP = "payload nests deeper than a Stripe event"
NUL_CHARACTER = "payload contains a NUL character"
ID_MAX_LENGTH = WebhookEvent._meta.get_field("stripe_id").max_length
TYPE_MAX_LENGTH = WebhookEvent._meta.get_field("type").max_length


def _reject(reason: str, status: int = 400) -> JsonResponse:
    return JsonResponse({"error": reason}, status=status)


def payload_problem(event: Any) -> str | None:
    """Why a verified, parsed payload can never be stored as an event, or None."""
    if not isinstance(event, dict) or not isinstance(event.get("id"), str) or not (
        isinstance(event.get("type"), str) and isinstance(event.get("data"), dict)
    ):
        return BAD_PAYLOAD
    if not event["id"] or len(event["id"]) > ID_MAX_LENGTH or len(event["type"]) > TYPE_MAX_LENGTH:
        return BAD_PAYLOAD
    # One walk, without recursion, for depth and for NUL (PostgreSQL's jsonb refuses \u0000).
    stack: list[tuple[Any, int]] = [(event, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict):
            if depth > MAX_NESTING:
                return TOO_DEEP
            for key, item in value.items():
                if "\x00" in key:
                    return NUL_CHARACTER
                stack.append((item, depth + 1))
        elif isinstance(value, list):
            if depth > MAX_NESTING:
                return TOO_DEEP
            stack.extend((item, depth + 1) for item in value)
        elif isinstance(value, str) and "\x00" in value:
            return NUL_CHARACTER
    return None


@csrf_exempt
@require_POST
def stripe_webhook(request: HttpRequest) -> HttpResponse:
    payload = request.body
    if len(payload) > MAX_PAYLOAD_BYTES:
        return _reject(TOO_LARGE, status=413)
    try:
        event = gateway.webhook_verify(payload, request.headers.get("Stripe-Signature"))
    except gateway.SignatureInvalid:
        return _reject(BAD_SIGNATURE)
    except gateway.PayloadTooDeep:
        return _reject(TOO_DEEP)
    except ValueError:
        return _reject(BAD_PAYLOAD)
    problem = payload_problem(event)
    if problem:
        return _reject(problem)

    stored = webhook_event_store(
        event_id=event["id"],
        event_type=event["type"],
        subject=subject_of(event["type"], event["data"].get("object")),
        body=payload,
    )
    if stored is None:
        return JsonResponse({"received": True, "duplicate": True})
    if stored.lane is not None:
        # Outside a transaction (the view runs in autocommit) this rings at once: after the
        # INSERT committed, which the doorbell's correctness depends on.
        transaction.on_commit(lambda: lane_ring(stored.lane))
    return JsonResponse({"received": True})
