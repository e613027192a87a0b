"""Celery tasks of payments: thin, take ids, safe to run twice, delegate to services.

Webhook lane drains are routed to their own queue (CELERY_WEBHOOKS_QUEUE), so a burst of events
never delays other work, and other work never delays events."""

from datetime import timedelta

from celery import shared_task
from django.conf import settings

from config.celery import IDEMPOTENT_TASK
from payments import services
from payments.reconcile import reconcile_stale
from payments.webhooks import processing


@shared_task(**IDEMPOTENT_TASK)
def webhook_lane_drain(lane: int) -> int:
    return processing.webhook_lane_drain(lane=lane)


@shared_task(**IDEMPOTENT_TASK)
def webhook_events_retry_due() -> int:
    return processing.webhook_events_retry_due()


@shared_task(**IDEMPOTENT_TASK)
def payments_cancel_abandoned() -> int:
    return services.payments_cancel_abandoned(
        older_than=timedelta(hours=settings.PAYDESK_ABANDONED_PAYMENT_HOURS)
    )


@shared_task(**IDEMPOTENT_TASK)
def payments_reconcile_stale() -> int:
    """Repairs rows not read from Stripe for a while (a lost webhook); returns how many."""
    return reconcile_stale().repaired
