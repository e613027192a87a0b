"""Storing a verified Stripe event, and handing it to a worker.

Ingest is one autocommit INSERT: no BEGIN/COMMIT round trips, no exception for a duplicate, and
the body stored as Stripe sent it. It records the Stripe object the event is about (its
subject), so a worker can apply every waiting event of one object with one read from Stripe,
and the lane of that subject. Events Paydesk has no use for are stored as ignored and never
reach a worker.

The hand-off is a doorbell per lane (WebhookLane), in the database: once the event's INSERT has
committed, ingest rings its lane, and only the request that rings a silent lane publishes a
drain task for it. A drain silences its lane before it looks for events, so an event is always
either seen by a drain that looks after it was stored, or rings the lane again. A burst costs
one task per lane instead of one per event, and the drain applies the burst's events of one
payment with one Stripe read. Nothing lives in the process: no timer, no batching window, no
task that polls. If the broker is unreachable the lane stays rung with no drain on its way; the
sweeper (processing.webhook_events_retry_due) drains lanes whose events are older than
STALE_PENDING.
"""

from __future__ import annotations

import logging
import zlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from celery import current_app
from django.conf import settings
from django.db import connection
from django.utils import timezone

from payments.models import WebhookEvent, WebhookLane

logger = logging.getLogger(__name__)

DRAIN_TASK = "payments.tasks.webhook_lane_drain"
# A pending event nobody applied within this long makes the sweeper drain its lane.
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


def lane_of(subject: str) -> int:
    """The lane a subject's events are drained in. A CRC, not Python's hash (salted per
    process), so every web process puts one subject's events in the same lane."""
    return zlib.crc32(subject.encode()) % settings.PAYDESK_WEBHOOK_LANES


@dataclass(frozen=True)
class Stored:
    id: int
    lane: int | None  # None: stored as ignored, nothing to drain


_INSERT = {
    "postgresql": "INSERT INTO payments_webhookevent"
    " (stripe_id, type, subject, lane, payload, status, attempts, last_error, received_at,"
    " processed_at, next_attempt_at)"
    " VALUES (%s, %s, %s, %s, %s::jsonb, %s, 0, %s, %s, %s, %s)"
    " ON CONFLICT (stripe_id) DO NOTHING RETURNING id",
    "sqlite": "INSERT INTO payments_webhookevent"
    " (stripe_id, type, subject, lane, payload, status, attempts, last_error, received_at,"
    " processed_at, next_attempt_at)"
    " VALUES (%s, %s, %s, %s, %s, %s, 0, %s, %s, %s, %s)"
    " ON CONFLICT (stripe_id) DO NOTHING RETURNING id",
}


def webhook_event_store(
    *, event_id: str, event_type: str, subject: str, body: bytes, now: datetime | None = None
) -> Stored | None:
    """Stores a verified event's raw body once; None for a duplicate. An event without a
    subject is stored as ignored; any other is pending in its subject's lane, due for the
    sweeper after STALE_PENDING unless a drain applies it first."""
    now = now or timezone.now()
    adapt = connection.ops.adapt_datetimefield_value
    lane = lane_of(subject) if subject else None
    if lane is not None:
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
            [event_id, event_type, subject, lane or 0, body.decode(), status, error, adapt(now),
             processed_at, sweep_at],
        )
        row = cursor.fetchone()
    if row is None:
        return None
    return Stored(id=row[0], lane=lane)


def lane_ring(lane: int) -> None:
    """Rings a lane after an event in it has committed, and asks a worker to drain it if the
    lane was silent. The common case (already rung: a drain is on its way and has not started
    looking) is one read that takes no lock and writes nothing."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT drain_requested FROM payments_webhooklane WHERE number = %s", [lane]
        )
        row = cursor.fetchone()
        if row is not None and row[0]:
            return
        if row is None:
            cursor.execute(
                "INSERT INTO payments_webhooklane (number, drain_requested) VALUES (%s, %s)"
                " ON CONFLICT (number) DO NOTHING RETURNING number",
                [lane, True],
            )
        else:
            cursor.execute(
                "UPDATE payments_webhooklane SET drain_requested = %s"
                " WHERE number = %s AND drain_requested = %s RETURNING number",
                [True, lane, False],
            )
        rang_it = cursor.fetchone() is not None
    if rang_it:
        drain_publish(lane)


def lane_silence(lane: int) -> None:
    """A drain is starting: events stored from now on ring the lane again."""
    WebhookLane.objects.filter(number=lane, drain_requested=True).update(drain_requested=False)


def drain_publish(lane: int) -> None:
    """Publishes the drain task for a lane (routed to the webhooks queue). A broker failure is
    logged, not raised: the events are stored, and the sweeper drains the lane."""
    try:
        current_app.send_task(DRAIN_TASK, args=(lane,))
    except Exception:
        logger.exception("could not enqueue the drain of webhook lane %s; the sweeper will", lane)
