"""Applying stored webhook events in workers: grouped by subject, once, retried with backoff.

A processing task takes one event id. It claims that event and every other waiting event about
the same Stripe object (row locks with SKIP LOCKED: a worker never waits for another's events),
applies them with one read from Stripe, and marks them all in the same transaction as the state
they changed: a worker killed half-way leaves the events pending and the mirror untouched, and
the redelivered task (acks_late) or the sweeper applies them again. A task whose event was
already applied with its siblings has nothing to do.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from functools import partial

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from payments.models import WebhookEvent
from payments.webhooks.handlers import EventNotApplicable, PermanentEventError, apply_subject
from payments.webhooks.ingest import STALE_PENDING, enqueue_processing, subject_of

logger = logging.getLogger(__name__)

# After the last of these the event is failed permanently (staff can still reprocess it).
RETRY_BACKOFF = [timedelta(minutes=1), timedelta(minutes=5), timedelta(minutes=30),
                 timedelta(hours=2), timedelta(hours=6), timedelta(hours=24)]
MAX_ATTEMPTS = len(RETRY_BACKOFF) + 1
# Waiting events of one subject applied by one task; more wait for their own tasks.
MAX_GROUP = 100
SWEEP_LIMIT = 500
GAVE_UP = "gave up after {attempts} attempts: "


def _subject(event: WebhookEvent) -> str:
    """Stored at ingest; computed for events stored before subjects existed."""
    if event.subject:
        return event.subject
    payload = event.payload if isinstance(event.payload, dict) else {}
    return subject_of(event.type, (payload.get("data") or {}).get("object"))


def webhook_event_process(*, event_id: int, now: datetime | None = None) -> WebhookEvent:
    """Applies one stored event together with the other waiting events of its subject; returns
    the event. Safe to run twice and concurrently: an event being applied by another worker, or
    already applied, is left alone."""
    with transaction.atomic():
        event = (
            WebhookEvent.objects.select_for_update(skip_locked=True)
            .filter(pk=event_id, status__in=WebhookEvent.RETRYABLE)
            .first()
        )
        if event is None:
            return WebhookEvent.objects.get(pk=event_id)
        subject = _subject(event)
        group = [event]
        if subject:
            group += list(
                WebhookEvent.objects.select_for_update(skip_locked=True)
                .filter(subject=subject, status__in=WebhookEvent.RETRYABLE)
                .exclude(pk=event.pk)
                .order_by("received_at", "id")[: MAX_GROUP - 1]
            )
            group.sort(key=lambda e: (e.received_at, e.pk))
        _apply_and_mark(subject, group, now=now or timezone.now())
    event.refresh_from_db()
    return event


def _apply_and_mark(subject: str, group: list[WebhookEvent], *, now: datetime) -> None:
    status, error = WebhookEvent.Status.PROCESSED, ""
    try:
        with transaction.atomic():
            apply_subject(subject, group)
    except EventNotApplicable as exc:
        status, error = WebhookEvent.Status.IGNORED, str(exc)
    except PermanentEventError as exc:
        status, error = WebhookEvent.Status.FAILED_PERMANENTLY, str(exc)
    except Exception as exc:
        logger.exception("webhook events %s (%s) failed", [e.stripe_id for e in group], subject)
        status, error = WebhookEvent.Status.FAILED, f"{type(exc).__name__}: {exc}"

    pks = [e.pk for e in group]
    if status != WebhookEvent.Status.FAILED:
        WebhookEvent.objects.filter(pk__in=pks).update(
            status=status, attempts=F("attempts") + 1, last_error=error[:5000],
            processed_at=now, next_attempt_at=None, subject=subject,
        )
        return
    for event in group:  # rare: each event backs off by its own number of attempts
        attempts = event.attempts + 1
        gave_up = attempts >= MAX_ATTEMPTS
        WebhookEvent.objects.filter(pk=event.pk).update(
            status=WebhookEvent.Status.FAILED_PERMANENTLY if gave_up else status,
            attempts=attempts,
            last_error=((GAVE_UP.format(attempts=attempts) if gave_up else "") + error)[:5000],
            processed_at=None,
            next_attempt_at=None if gave_up else now + RETRY_BACKOFF[attempts - 1],
            subject=subject,
        )


def webhook_events_retry_due(*, limit: int = SWEEP_LIMIT, now: datetime | None = None) -> int:
    """Enqueues failed events whose backoff has passed, and pending events nobody applied by
    their sweep time (a lost hand-off: broker down, worker killed). Claims them with SKIP LOCKED,
    so concurrent sweeps never take the same one twice, and pushes their sweep time on by
    STALE_PENDING. Bounded by `limit` per run. Returns how many it enqueued."""
    now = now or timezone.now()
    with transaction.atomic():
        claimed = list(
            WebhookEvent.objects.select_for_update(skip_locked=True)
            .filter(status__in=WebhookEvent.RETRYABLE, next_attempt_at__lte=now)
            .order_by("next_attempt_at")
            .values_list("pk", flat=True)[:limit]
        )
        WebhookEvent.objects.filter(pk__in=claimed).update(next_attempt_at=now + STALE_PENDING)
        for pk in claimed:
            transaction.on_commit(partial(enqueue_processing, pk))
    return len(claimed)


def webhook_event_reprocess(*, event: WebhookEvent, now: datetime | None = None) -> None:
    """Staff asked to apply an event again (from the admin), whatever its status."""
    now = now or timezone.now()
    with transaction.atomic():
        WebhookEvent.objects.filter(pk=event.pk).update(
            status=WebhookEvent.Status.PENDING, next_attempt_at=now + STALE_PENDING
        )
        transaction.on_commit(partial(enqueue_processing, event.pk))
