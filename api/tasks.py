"""Celery tasks of the API: thin, safe to run twice."""

from celery import shared_task

from api.idempotency import idempotency_keys_expire
from config.celery import IDEMPOTENT_TASK


@shared_task(**IDEMPOTENT_TASK)
def api_idempotency_keys_expire() -> int:
    """Deletes Idempotency-Keys older than 24 h (PAYDESK_API_IDEMPOTENCY_TTL_HOURS)."""
    return idempotency_keys_expire()
