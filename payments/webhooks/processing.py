"""Applying stored webhook events in workers: by lane, grouped by subject, once, with backoff.

A drain task takes one lane. It silences the lane's doorbell, then applies the lane's waiting
events subject by subject, oldest first, and rings the lane again if it stopped before the end
(it is bounded in subjects and in time). Each subject is one transaction: it claims every
waiting event about that Stripe object (row locks with SKIP LOCKED: a worker never waits for
another's events), applies them with one read from Stripe, and marks them in the same
transaction as the state they changed, so a worker killed half-way leaves the events pending
and the mirror untouched; the redelivered task (acks_late) or the sweeper drains them again.
Lanes let several workers drain at once while one subject stays in one lane.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime, timedelta
from functools import partial

from django.conf import settings
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from payments.models import PaymentEvent, WebhookEvent
from payments.selectors import payment_id_for_subject
from payments.webhooks.handlers import EventNotApplicable, PermanentEventError, apply_subject
from payments.webhooks.ingest import (
    STALE_PENDING,
    drain_publish,
    lane_of,
    lane_ring,
    lane_silence,
    subject_of,
)

logger = logging.getLogger(__name__)

# After the last of these the event is failed permanently (staff can still reprocess it).
RETRY_BACKOFF = [timedelta(minutes=1), timedelta(minutes=5), timedelta(minutes=30),
                 timedelta(hours=2), timedelta(hours=6), timedelta(hours=24)]
MAX_ATTEMPTS = len(RETRY_BACKOFF) + 1
# Waiting events of one subject applied in one transaction; more wait for the next pass.
MAX_GROUP = 100
# One drain applies at most this many subjects, for at most this long, then rings its lane
# again, so a long backlog is worked through by many short tasks, not one that never ends.
DRAIN_SUBJECTS = 100
DRAIN_SECONDS = 10.0
SWEEP_LIMIT = 500
GAVE_UP = "gave up after {attempts} attempts: "
REPROCESSED = "Reprocessed webhook event {stripe_id} ({type}), which was {status}"


def _subject(event: WebhookEvent) -> str:
    """Stored at ingest; computed for events stored before subjects existed."""
    if event.subject:
        return event.subject
    payload = event.payload if isinstance(event.payload, dict) else {}
    return subject_of(event.type, (payload.get("data") or {}).get("object"))


def webhook_lane_drain(*, lane: int, now: datetime | None = None) -> int:
    """Applies the waiting events of one lane, subject by subject, oldest first; returns how
    many events it applied (processed, ignored or failed). Bounded by DRAIN_SUBJECTS and
    DRAIN_SECONDS; rings the lane again when it stopped with events left."""
    lane_silence(lane)
    started = time.monotonic()
    waiting = list(
        WebhookEvent.objects.filter(lane=lane, status=WebhookEvent.Status.PENDING)
        .order_by("received_at", "id")
        .values_list("pk", "subject")[: DRAIN_SUBJECTS * 4]
    )
    subjects = list(dict.fromkeys((subject or f"event:{pk}") for pk, subject in waiting))
    applied = 0
    for done, subject in enumerate(subjects):
        if done == DRAIN_SUBJECTS or time.monotonic() - started > DRAIN_SECONDS:
            lane_ring(lane)
            break
        if subject.startswith("event:"):  # stored before subjects existed
            applied += _apply_event(int(subject.removeprefix("event:")), now=now)
        else:
            applied += _apply_subject(subject, now=now)
    else:
        if len(waiting) == DRAIN_SUBJECTS * 4:
            lane_ring(lane)
    return applied


def _apply_subject(subject: str, *, now: datetime | None) -> int:
    with transaction.atomic():
        group = list(
            WebhookEvent.objects.select_for_update(skip_locked=True)
            .filter(subject=subject, status__in=WebhookEvent.RETRYABLE)
            .order_by("received_at", "id")[:MAX_GROUP]
        )
        if group:
            _apply_and_mark(subject, group, now=now or timezone.now())
    return len(group)


def _apply_event(event_id: int, *, now: datetime | None) -> int:
    before = WebhookEvent.objects.filter(pk=event_id).values_list("status", flat=True).first()
    return int(webhook_event_process(event_id=event_id, now=now).status != before)


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
    """Makes due events pending again and drains their lanes: failed events whose backoff has
    passed, and pending events nobody applied by their sweep time (a lost drain: broker down,
    worker killed). Claims them with SKIP LOCKED, so concurrent sweeps never take the same one
    twice, pushes their sweep time on by STALE_PENDING, and publishes a drain for each of their
    lanes whether or not the lane is rung (its drain may be the one that was lost). Bounded by
    `limit` per run. Returns how many events it made due."""
    now = now or timezone.now()
    lanes = settings.PAYDESK_WEBHOOK_LANES
    with transaction.atomic():
        claimed = list(
            WebhookEvent.objects.select_for_update(skip_locked=True)
            .filter(status__in=WebhookEvent.RETRYABLE, next_attempt_at__lte=now)
            .order_by("next_attempt_at")
            .values_list("pk", "subject", "lane")[:limit]
        )
        WebhookEvent.objects.filter(pk__in=[pk for pk, _, _ in claimed]).update(
            status=WebhookEvent.Status.PENDING, next_attempt_at=now + STALE_PENDING
        )
        for pk, subject, lane in claimed:
            if lane >= lanes:  # from before PAYDESK_WEBHOOK_LANES was lowered
                WebhookEvent.objects.filter(pk=pk).update(lane=lane_of(subject))
        for lane in sorted({lane_of(s) if lane >= lanes else lane for _, s, lane in claimed}):
            transaction.on_commit(partial(drain_publish, lane))
    return len(claimed)


def webhook_event_reprocess(
    *, event: WebhookEvent, by: AbstractBaseUser, now: datetime | None = None
) -> None:
    """Staff asked to apply an event again (from the admin), whatever its status. Audited in
    the same transaction: a WEBHOOK_REPROCESSED entry in the ledger of the payment the event
    concerns (if any), and the admin's history of the event (LogEntry) in every case."""
    now = now or timezone.now()
    subject = _subject(event)
    lane = lane_of(subject)
    message = REPROCESSED.format(stripe_id=event.stripe_id, type=event.type, status=event.status)
    with transaction.atomic():
        WebhookEvent.objects.filter(pk=event.pk).update(
            status=WebhookEvent.Status.PENDING, lane=lane, next_attempt_at=now + STALE_PENDING
        )
        payment_id = payment_id_for_subject(subject=subject)
        if payment_id is not None:
            PaymentEvent.objects.create(
                payment_id=payment_id, kind=PaymentEvent.Kind.WEBHOOK_REPROCESSED,
                message=message, actor=by, source="admin", stripe_event_id=event.stripe_id,
            )
        LogEntry.objects.log_actions(
            user_id=by.pk, queryset=[event], action_flag=CHANGE, change_message=message,
            single_object=True,
        )
        transaction.on_commit(partial(drain_publish, lane))
