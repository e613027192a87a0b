"""Stripe webhooks: receive fast, process in a worker.

The view verifies the signature, stores the raw event once (unique Stripe id; a duplicate is a
200 no-op), asks a worker to dispatch it on commit and answers. Nothing else happens in the
request: the dispatch task hands each stored event to its own processing task.

Processing treats the event as a trigger: it re-reads the object from Stripe under the row lock
(so order of delivery does not matter), moves state forward only, and marks the event processed,
ignored or failed; failed events are retried by beat with backoff and can be reprocessed from
the admin.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from datetime import timedelta

from django.db import connection, transaction
from django.db.models import Q
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from payments import gateway, services
from payments.models import Payment, WebhookEvent

logger = logging.getLogger(__name__)

MAX_PAYLOAD_BYTES = 512 * 1024
RETRY_BACKOFF = [timedelta(minutes=1), timedelta(minutes=5), timedelta(minutes=30),
                 timedelta(hours=2), timedelta(hours=6), timedelta(hours=24)]

STALE_PENDING = timedelta(minutes=5)

BAD_SIGNATURE = "invalid signature"
BAD_PAYLOAD = "payload is not a Stripe event"
TOO_LARGE = "payload too large"
ID_MAX_LENGTH = WebhookEvent._meta.get_field("stripe_id").max_length
TYPE_MAX_LENGTH = WebhookEvent._meta.get_field("type").max_length


def _reject(reason: str, status: int = 400) -> JsonResponse:
    return JsonResponse({"error": reason}, status=status)


@csrf_exempt
@require_POST
def stripe_webhook(request: HttpRequest) -> HttpResponse:
    """POST /webhooks/stripe/: verify, store once, enqueue on commit, 200."""
    payload = request.body
    if len(payload) > MAX_PAYLOAD_BYTES:
        return _reject(TOO_LARGE, status=413)
    try:
        event = gateway.webhook_verify(payload, request.headers.get("Stripe-Signature"))
    except gateway.SignatureInvalid:
        return _reject(BAD_SIGNATURE)
    except ValueError:
        return _reject(BAD_PAYLOAD)
    if not isinstance(event, dict) or not isinstance(event.get("id"), str) or not (
        isinstance(event.get("type"), str) and isinstance(event.get("data"), dict)
    ):
        return _reject(BAD_PAYLOAD)

    if len(event["id"]) > ID_MAX_LENGTH or len(event["type"]) > TYPE_MAX_LENGTH:
        return _reject(BAD_PAYLOAD)

    if webhook_event_store(event_id=event["id"], event_type=event["type"], body=payload) is None:
        return JsonResponse({"received": True, "duplicate": True})
    transaction.on_commit(dispatch_soon)
    return JsonResponse({"received": True})


_INSERT = {
    "postgresql": "INSERT INTO payments_webhookevent"
    " (stripe_id, type, payload, status, attempts, last_error, received_at)"
    " VALUES (%s, %s, %s::jsonb, 'pending', 0, '', %s)"
    " ON CONFLICT (stripe_id) DO NOTHING RETURNING id",
    "sqlite": "INSERT INTO payments_webhookevent"
    " (stripe_id, type, payload, status, attempts, last_error, received_at)"
    " VALUES (%s, %s, %s, 'pending', 0, '', %s)"
    " ON CONFLICT (stripe_id) DO NOTHING RETURNING id",
}


def webhook_event_store(*, event_id: str, event_type: str, body: bytes) -> int | None:
    """Stores a verified event's raw body once; returns its row id, or None for a duplicate.

    One statement in autocommit mode: no BEGIN/COMMIT round trips, no exception for a duplicate,
    and the body is stored as Stripe sent it rather than parsed and serialised again. This is
    the hot path of ingestion (bench/webhook_ingest)."""
    with connection.cursor() as cursor:
        cursor.execute(
            _INSERT[connection.vendor],
            [event_id, event_type, body.decode(),
             connection.ops.adapt_datetimefield_value(timezone.now())],
        )
        row = cursor.fetchone()
    return row[0] if row else None


# Enqueues from one web process are coalesced: at most one dispatch task per window. A dispatch
# keeps claiming undispatched events until none has appeared for DISPATCH_GRACE (longer than the
# window), so an event whose own enqueue was coalesced away is still claimed by the dispatch that
# was enqueued before it. The sweeper (webhook_events_retry_due) is the backstop if a dispatch is
# lost. This is only about latency: each event is applied once because processing claims it in
# PostgreSQL, not because of anything held in this process.
DISPATCH_WINDOW = 0.1
DISPATCH_GRACE = 0.3
DISPATCH_POLL = 0.05
_last_dispatch = -DISPATCH_WINDOW


def dispatch_soon() -> None:
    """Asks a worker to dispatch stored events, unless this process asked within the window."""
    global _last_dispatch
    from payments.tasks import webhook_events_dispatch

    now = time.monotonic()
    if now - _last_dispatch < DISPATCH_WINDOW:
        return
    try:
        webhook_events_dispatch.delay()
    except Exception:
        # The event is stored and Stripe gets its 200; the next request tries again, and the
        # sweeper enqueues whatever is still undispatched.
        logger.exception("could not enqueue the webhook dispatch; the sweeper will")
    else:
        _last_dispatch = now


def webhook_events_dispatch(*, batch: int = 100) -> int:
    """Claims stored events no worker was given yet and enqueues one processing task each,
    until none has appeared for DISPATCH_GRACE. Returns how many it dispatched."""
    from payments.tasks import webhook_event_process as process_task

    dispatched = 0
    idle_since = time.monotonic()
    while True:
        now = timezone.now()
        with transaction.atomic():
            claimed = list(
                WebhookEvent.objects.select_for_update(skip_locked=True)
                .filter(status=WebhookEvent.Status.PENDING, next_attempt_at__isnull=True)
                .order_by("received_at", "id")
                .values_list("pk", flat=True)[:batch]
            )
            # Marked as handed over; swept again only if still pending after STALE_PENDING.
            WebhookEvent.objects.filter(pk__in=claimed).update(
                next_attempt_at=now + STALE_PENDING
            )
            for pk in claimed:
                transaction.on_commit(lambda pk=pk: process_task.delay(pk))
        dispatched += len(claimed)
        if claimed:
            idle_since = time.monotonic()
        elif time.monotonic() - idle_since >= DISPATCH_GRACE:
            return dispatched
        else:
            time.sleep(DISPATCH_POLL)


# --- Processing -------------------------------------------------------------------------------


class EventNotApplicable(Exception):
    """The event is about something Paydesk does not track (e.g. another system's payment)."""


def _payment_for_intent(intent_id: str) -> Payment:
    payment = Payment.objects.filter(stripe_id=intent_id).first()
    if payment is None:
        raise EventNotApplicable(f"no payment mirrors {intent_id}")
    return payment


def _on_payment_intent(event: dict) -> None:
    intent_id = event["data"]["object"]["id"]
    services.payment_refresh(
        payment=_payment_for_intent(intent_id), source="webhook", stripe_event_id=event["id"]
    )


def _on_charge(event: dict) -> None:
    charge = event["data"]["object"]
    intent_id = charge.get("payment_intent") or gateway.charge_payment_intent_id(charge["id"])
    if not intent_id:
        raise EventNotApplicable(f"charge {charge['id']} has no payment intent")
    services.payment_refresh(
        payment=_payment_for_intent(intent_id), source="webhook", stripe_event_id=event["id"]
    )
    if event["type"] == "charge.refunded":
        # Charges no longer embed their refunds: list them, and mirror each (idempotent).
        for refund in gateway.refund_list_for_intent(intent_id):
            services.refund_sync(refund=refund, source="webhook", stripe_event_id=event["id"])


def _on_refund(event: dict) -> None:
    refund = gateway.refund_retrieve(event["data"]["object"]["id"])
    if services.refund_sync(refund=refund, source="webhook", stripe_event_id=event["id"]) is None:
        raise EventNotApplicable(f"refund {refund.id} is for a payment Paydesk does not track")


def _on_dispute(event: dict) -> None:
    dispute = gateway.dispute_retrieve(event["data"]["object"]["id"])
    synced = services.dispute_sync(dispute=dispute, source="webhook", stripe_event_id=event["id"])
    if synced is None:
        raise EventNotApplicable(f"dispute {dispute.id} is for a payment Paydesk does not track")


def _on_setup_intent(event: dict) -> None:
    setup_intent = gateway.setup_intent_retrieve(event["data"]["object"]["id"])
    if setup_intent.status == "succeeded":
        if services.payment_method_save(setup_intent=setup_intent) is None:
            raise EventNotApplicable(f"{setup_intent.id} is for a customer Paydesk does not know")
    else:
        logger.info("setup intent %s is %s", setup_intent.id, setup_intent.status)


HANDLERS: dict[str, Callable[[dict], None]] = {
    "payment_intent.": _on_payment_intent,
    "charge.dispute.": _on_dispute,
    "charge.": _on_charge,
    "refund.": _on_refund,
    "charge.refund.": _on_refund,
    "setup_intent.": _on_setup_intent,
}


def _handler_for(event_type: str) -> Callable[[dict], None] | None:
    # Longest prefix wins: "charge.dispute.created" goes to disputes, not charges.
    matches = [prefix for prefix in HANDLERS if event_type.startswith(prefix)]
    return HANDLERS[max(matches, key=len)] if matches else None


def webhook_event_process(*, event_id: int) -> WebhookEvent:
    """Processes one stored event. Safe to run twice and concurrently: the event row is locked
    while it is claimed, and a processed event is never processed again."""
    with transaction.atomic():
        event = WebhookEvent.objects.select_for_update().get(pk=event_id)
        if event.status in (WebhookEvent.Status.PROCESSED, WebhookEvent.Status.IGNORED):
            return event
        event.attempts += 1
        event.save(update_fields=["attempts"])

    handler = _handler_for(event.type)
    status, error = WebhookEvent.Status.PROCESSED, ""
    if handler is None:
        status = WebhookEvent.Status.IGNORED
    else:
        try:
            handler(event.payload)
        except EventNotApplicable as exc:
            status, error = WebhookEvent.Status.IGNORED, str(exc)
        except Exception as exc:
            logger.exception("webhook event %s (%s) failed", event.stripe_id, event.type)
            status, error = WebhookEvent.Status.FAILED, f"{type(exc).__name__}: {exc}"

    now = timezone.now()
    WebhookEvent.objects.filter(pk=event.pk).update(
        status=status,
        last_error=error[:5000],
        processed_at=now if status != WebhookEvent.Status.FAILED else None,
        next_attempt_at=now + RETRY_BACKOFF[min(event.attempts, len(RETRY_BACKOFF)) - 1]
        if status == WebhookEvent.Status.FAILED
        else None,
    )
    event.refresh_from_db()
    return event


def webhook_events_retry_due(*, limit: int = 100) -> int:
    """Enqueues failed events whose backoff has passed, and pending events nobody processed
    within STALE_PENDING (a lost enqueue: broker down, worker killed). Claims them with
    skip_locked so concurrent sweeps never take the same one twice. Returns how many."""
    from payments.tasks import webhook_event_process as process_task

    now = timezone.now()
    due = (
        Q(status=WebhookEvent.Status.FAILED, next_attempt_at__lte=now)
        | Q(status=WebhookEvent.Status.PENDING, next_attempt_at__lte=now)
        | Q(status=WebhookEvent.Status.PENDING, next_attempt_at__isnull=True,
            received_at__lte=now - STALE_PENDING)
    )
    with transaction.atomic():
        claimed = list(
            WebhookEvent.objects.select_for_update(skip_locked=True)
            .filter(due)
            .order_by("received_at")
            .values_list("pk", flat=True)[:limit]
        )
        # Pending again, and swept again only if still pending after another STALE_PENDING.
        WebhookEvent.objects.filter(pk__in=claimed).update(
            status=WebhookEvent.Status.PENDING, next_attempt_at=now + STALE_PENDING
        )
        for pk in claimed:
            transaction.on_commit(lambda pk=pk: process_task.delay(pk))
    return len(claimed)


def webhook_event_reprocess(*, event: WebhookEvent) -> None:
    """Staff asked to run an event again (from the admin), whatever its status."""
    from payments.tasks import webhook_event_process as process_task

    with transaction.atomic():
        WebhookEvent.objects.filter(pk=event.pk).update(
            status=WebhookEvent.Status.PENDING, next_attempt_at=timezone.now() + STALE_PENDING
        )
        transaction.on_commit(lambda: process_task.delay(event.pk))


def event_payload_text(event: WebhookEvent) -> str:
    return json.dumps(event.payload, indent=2, sort_keys=True)
