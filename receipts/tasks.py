"""Celery tasks of receipts, on the pdf queue (config/settings CELERY_TASK_ROUTES): thin, take
ids, safe to run twice, delegate to services."""

from celery import shared_task

from config.celery import IDEMPOTENT_TASK
from receipts import services


@shared_task(**IDEMPOTENT_TASK)
def document_deliver(kind: str, document_id: int) -> bool:
    """Renders a receipt or credit note and e-mails it (kind: "receipt" or "credit_note")."""
    return services.document_deliver(kind=kind, document_id=document_id)


@shared_task(**IDEMPOTENT_TASK)
def documents_deliver_due() -> int:
    """Beat: e-mails pending and failed documents that are due (bounded batch)."""
    return services.documents_deliver_due()
