"""Storing a verified Stripe event, and handing it to a worker.

Ingest is one autocommit INSERT: no BEGIN/COMMIT round trips, no exception for a duplicate, and
the body stored as Stripe sent it. It records the Stripe object the event is about (its
subject), so a worker can apply every waiting event of one object with one read from Stripe.
Events Paydesk has no use for are stored as ignored and never reach a worker.

The hand-off publishes one processing task per stored event once the INSERT has committed. It
keeps no state in the process: no timer, no batching window, no task that polls. If the broker
is unreachable the event stays pending and the sweeper (processing.webhook_events_retry_due)
enqueues it after STALE_PENDING.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from celery import current_app
from django.db import connection
from django.utils import timezone

from payments.models import WebhookEvent

logger = logging.getLogger(__name__)

PROCESS_TASK = "payments.tasks.webhook_event_process"
# A pending event nobody applied within this long is enqueued again by the sweeper.
STALE_PENDING = timedelta(minutes=2)
NOT_HANDLED = "Paydesk does not act on this event type"
SUBJECT_MAX_LENGTH = WebhookEvent._meta.get_field("subject").max_length


def subject_of(event_type: str, obj: Any) -> str:
    """The Stripe object that processing re-reads for this event, as "kind:id"; "" when Paydesk
    does not act on the event. Charge events are about their PaymentIntent, so a payment's
    payment_intent.* and charge.* events are applied together."""
    if not isinstance(obj, dict) or not isinstance(obj.get("id"), str) or not obj["id"]:
        return ""
    object_id = obj["id"]
    if event_type.startswith("payment_intent."):
        subject = f"payment_intent:{object_id}"
    elif event_type.startswith("charge.dispute."):
        subject = f"dispute:{object_id}"
    elif event_type.startswith(("charge.refund.", "refund.")):
        subject = f"refund:{object_id}"
    elif event_type.startswith("charge."):
        intent = obj.get("payment_intent")
        intent = intent.get("id") if isinstance(intent, dict) else intent
        if isinstance(intent, str) and intent:
            subject = f"payment_intent:{intent}"
        else:
            subject = f"charge:{object_id}"
    elif event_type.startswith("setup_intent."):
        subject = f"setup_intent:{object_id}"
    else:
        return ""
    return subject if len(subject) <= SUBJECT_MAX_LENGTH else ""


@dataclass(frozen=True)
class Stored:
    id: int
    needs_processing: bool


_INSERT = {
    "postgresql": "INSERT INTO payments_webhookevent"
    " (stripe_id, type, subject, payload, status, attempts, last_error, received_at,"
    " processed_at, next_attempt_at)"
    " VALUES (%s, %s, %s, %s::jsonb, %s, 0, %s, %s, %s, %s)"
    " ON CONFLICT (stripe_id) DO NOTHING RETURNING id",
    "sqlite": "INSERT INTO payments_webhookevent"
    " (stripe_id, type, subject, payload, status, attempts, last_error, received_at,"
    " processed_at, next_attempt_at)"
    " VALUES (%s, %s, %s, %s, %s, 0, %s, %s, %s, %s)"
    " ON CONFLICT (stripe_id) DO NOTHING RETURNING id",
}


def webhook_event_store(
    *, event_id: str, event_type: str, subject: str, body: bytes, now: datetime | None = None
) -> Stored | None:
    """Stores a verified event's raw body once; None for a duplicate. An event without a
    subject is stored as ignored; any other is pending, due for the sweeper after
    STALE_PENDING unless a worker applies it first."""
    now = now or timezone.now()
    adapt = connection.ops.adapt_datetimefield_value
    if subject:
        status, error, processed_at, sweep_at = (
            WebhookEvent.Status.PENDING, "", None, adapt(now + STALE_PENDING)
        )
    else:
        status, error, processed_at, sweep_at = (
            WebhookEvent.Status.IGNORED, NOT_HANDLED, adapt(now), None
        )
    with connection.cursor() as cursor:
        cursor.execute(
            _INSERT[connection.vendor],
            [event_id, event_type, subject, body.decode(), status, error, adapt(now),
             processed_at, sweep_at],
        )
        row = cursor.fetchone()
    if row is None:
        return None
    return Stored(id=row[0], needs_processing=bool(subject))


def enqueue_processing(event_id: int) -> None:
    """Publishes the processing task for one stored event (routed to the webhooks queue). A
    broker failure is logged, not raised: the event is stored, and the sweeper enqueues it."""
    try:
        current_app.send_task(PROCESS_TASK, args=(event_id,))
    except Exception:
        logger.exception("could not enqueue webhook event %s; the sweeper will", event_id)
