"""Issuing receipts and credit notes, rendering their PDFs and e-mailing them.

Issuing runs inside the transaction that applies the payment or refund (payments.signals), so a
document exists exactly when its fact does; numbers come from the series row, locked in that
transaction. Rendering and e-mail run afterwards on the pdf queue (document_deliver), and beat
retries what failed (documents_deliver_due).
"""

from __future__ import annotations

import logging
import time
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.mail import EmailMultiAlternatives
from django.db import IntegrityError, connection, transaction
from django.db.models import Q
from django.template.loader import render_to_string
from django.utils import timezone

from payments.models import Payment, Refund
from receipts.models import CreditNote, DocumentSequence, Receipt

logger = logging.getLogger(__name__)

# E-mail retries: after each failure, wait the next delay; after the last, give up (staff can
# still resend from the admin).
EMAIL_BACKOFF = (timedelta(minutes=1), timedelta(minutes=5), timedelta(minutes=30),
                 timedelta(hours=2), timedelta(hours=6))
DELIVER_BATCH = 50
# How long a worker may take to render and send one document before another may try.
DELIVERY_LEASE = timedelta(minutes=5)
DELIVERABLE = ("pending", "failed")

Document = Receipt | CreditNote


# --- Numbers --------------------------------------------------------------------------------------


def number_allocate(*, series: str, year: int) -> tuple[int, str]:
    """The next number of a series for a year, e.g. (1, "R-2026-000001"). Must run inside the
    transaction that stores the document: the series row stays locked until it commits, so
    concurrent issues wait their turn, and a rollback gives the number back (no gap).

    One statement takes the row's lock and the number (UPDATE ... RETURNING); the series' row
    is made the first time only."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("number_allocate must run inside the issuing transaction")
    number = _sequence_next(series=series, year=year)
    if number is None:
        DocumentSequence.objects.bulk_create(
            [DocumentSequence(series=series, year=year)], ignore_conflicts=True
        )
        number = _sequence_next(series=series, year=year)
    return number, f"{series}-{year}-{number:06d}"


def _sequence_next(*, series: str, year: int) -> int | None:
    table = connection.ops.quote_name(DocumentSequence._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET last_number = last_number + 1"  # noqa: S608 (the model's table)
            " WHERE series = %s AND year = %s RETURNING last_number",
            [series, year],
        )
        row = cursor.fetchone()
    return row[0] if row else None


# --- What a document says ------------------------------------------------------------------------


def tax_lines_of(lines: list[dict], currency: str) -> list[dict]:
    """Per tax rate: the gross (tax included), the tax it includes and the net, in minor units.
    Tax is computed on each rate's total, rounded half up to the minor unit, exactly."""
    totals: dict[str, int] = {}
    for line in lines:
        rate = Decimal(line["tax_rate"])
        if rate:
            totals[str(rate)] = totals.get(str(rate), 0) + line["amount"]
    result = []
    for rate, gross in sorted(totals.items(), key=lambda item: Decimal(item[0])):
        tax = int((Decimal(gross) * Decimal(rate) / (100 + Decimal(rate))).quantize(
            Decimal(1), rounding=ROUND_HALF_UP))
        result.append({"rate": rate, "gross": gross, "tax": tax, "net": gross - tax})
    return result


def _seller() -> dict:
    return dict(settings.PAYDESK_SELLER)


def _buyer(payment: Payment) -> dict:
    customer = payment.order.customer
    return {
        "name": customer.get_full_name() or customer.get_username(),
        "email": customer.email,
        "card_brand": payment.card_brand,
        "card_last4": payment.card_last4,
        "stripe_payment_id": payment.stripe_id or "",
        "order_number": payment.order.number,
    }


def _lines(payment: Payment) -> list[dict]:
    return [
        {"description": line.description, "quantity": line.quantity,
         "unit_amount": line.unit_amount, "amount": line.amount, "tax_rate": str(line.tax_rate)}
        for line in payment.order.lines.all()
    ]


# --- Issuing ----------------------------------------------------------------------------------


def receipt_issue(*, payment: Payment, now: datetime | None = None) -> Receipt:
    """The payment's receipt, issued once: called for a payment that has just succeeded (its
    row locked by the caller), it returns the existing receipt when there is one. Its PDF and
    e-mail follow on commit."""
    existing = Receipt.objects.filter(payment=payment).first()
    if existing is not None:
        return existing
    now = now or timezone.now()
    # No savepoint: inside the payment's transaction, a failure here fails the payment's too.
    with transaction.atomic(savepoint=False):
        sequence, number = number_allocate(series=Receipt.SERIES, year=now.year)
        lines = _lines(payment)
        receipt = Receipt.objects.create(
            payment=payment, number=number, year=now.year, sequence=sequence, issued_at=now,
            currency=payment.currency, total=payment.amount_received, lines=lines,
            tax_lines=tax_lines_of(lines, payment.currency), seller=_seller(),
            buyer=_buyer(payment),
        )
    _deliver_on_commit(receipt)
    return receipt


def credit_note_issue(*, refund: Refund, now: datetime | None = None) -> CreditNote | None:
    """The credit note of a refund that has just succeeded, issued once. None when the payment
    has no receipt (a refund of a payment made before receipts existed)."""
    return _note_issue(refund=refund, kind=CreditNote.Kind.CREDIT, now=now)


def credit_note_reverse(*, refund: Refund, now: datetime | None = None) -> CreditNote | None:
    """A refund that had succeeded failed afterwards: the money did not go back, so its credit
    note is reversed by a note of its own (never silently voided). None if it had no note."""
    return _note_issue(refund=refund, kind=CreditNote.Kind.REVERSAL, now=now)


def _note_issue(*, refund: Refund, kind: str, now: datetime | None) -> CreditNote | None:
    existing = CreditNote.objects.filter(refund=refund, kind=kind).first()
    if existing is not None:
        return existing
    receipt = Receipt.objects.filter(payment_id=refund.payment_id).first()
    if receipt is None:
        logger.warning("refund %s: payment %s has no receipt, so no credit note", refund.pk,
                       refund.payment_id)
        return None
    reverses = None
    if kind == CreditNote.Kind.REVERSAL:
        reverses = CreditNote.objects.filter(refund=refund, kind=CreditNote.Kind.CREDIT).first()
        if reverses is None:
            return None
    now = now or timezone.now()
    reason = refund.reason_display
    if reverses is not None:
        reason = f"Refund failed ({refund.failure_reason or 'failed'}): {reverses.number} reversed"
    try:
        with transaction.atomic():
            sequence, number = number_allocate(series=CreditNote.SERIES, year=now.year)
            note = CreditNote.objects.create(
                receipt=receipt, refund=refund, kind=kind, reverses=reverses, number=number,
                year=now.year, sequence=sequence, issued_at=now, currency=refund.currency,
                total=refund.amount, reason=reason[:200],
                lines=[{"description": f"Refund of receipt {receipt.number}", "quantity": 1,
                        "unit_amount": refund.amount, "amount": refund.amount}],
                tax_lines=_refund_tax_lines(receipt, refund.amount), seller=_seller(),
                buyer=receipt.buyer,
            )
    except IntegrityError:
        # Issued meanwhile by a caller that did not hold the payment's lock.
        return CreditNote.objects.get(refund=refund, kind=kind)
    _deliver_on_commit(note)
    return note


def _refund_tax_lines(receipt: Receipt, amount: int) -> list[dict]:
    """The tax a refund gives back: the receipt's tax in proportion to the amount refunded."""
    if not receipt.tax_lines or not receipt.total:
        return []
    share = [{**line, "amount": line["gross"] * amount // receipt.total}
             for line in receipt.tax_lines]
    share[-1]["amount"] += amount - sum(line["amount"] for line in share)
    return tax_lines_of(
        [{"amount": line["amount"], "tax_rate": line["rate"]} for line in share],
        receipt.currency,
    )


# --- Delivery: PDF and e-mail --------------------------------------------------------------------


def _deliver_on_commit(document: Document) -> None:
    from receipts.tasks import document_deliver

    kind = "receipt" if isinstance(document, Receipt) else "credit_note"
    transaction.on_commit(lambda: document_deliver.delay(kind, document.pk))


def document_pdf(document: Document, *, force: bool = False) -> bytes:
    """The document's PDF: rendered once and stored (Django's storage), re-rendered only when
    `force` (staff's "render again")."""
    if document.pdf and not force:
        with document.pdf.open("rb") as stored:
            return stored.read()
    from receipts.pdf import render_pdf

    started = time.perf_counter()
    content = render_pdf(document)
    logger.info("rendered %s in %.1f ms", document.number, (time.perf_counter() - started) * 1e3)
    document.pdf.save(document.filename, ContentFile(content), save=False)
    document.pdf_rendered_at = timezone.now()
    type(document).objects.filter(pk=document.pk).update(
        pdf=document.pdf.name, pdf_rendered_at=document.pdf_rendered_at
    )
    return content


def document_send(document: Document, *, now: datetime | None = None) -> bool:
    """E-mails the document (HTML and text, the PDF attached) to the buyer and records the
    outcome: sent, or failed with the next attempt scheduled by EMAIL_BACKOFF. True if sent."""
    now = now or timezone.now()
    address = document.buyer.get("email", "")
    model = type(document)
    if not address:
        model.objects.filter(pk=document.pk).update(
            email_status=Receipt.EmailStatus.NO_ADDRESS, email_next_attempt_at=None)
        return False
    context = {"document": document, "is_receipt": isinstance(document, Receipt)}
    subject = (f"Your receipt {document.number}" if isinstance(document, Receipt)
               else f"Your credit note {document.number}")
    message = EmailMultiAlternatives(
        subject=subject,
        body=render_to_string("receipts/email.txt", context),
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[address],
    )
    message.attach_alternative(render_to_string("receipts/email.html", context), "text/html")
    message.attach(document.filename, document_pdf(document), "application/pdf")
    attempts = document.email_attempts + 1
    try:
        message.send(fail_silently=False)
    except Exception as exc:  # any backend's failure: SMTP, a provider's API, DNS...
        delay = EMAIL_BACKOFF[attempts - 1] if attempts <= len(EMAIL_BACKOFF) else None
        logger.warning("%s: e-mail attempt %s failed: %s", document.number, attempts, exc)
        model.objects.filter(pk=document.pk).update(
            email_attempts=attempts,
            email_status=Receipt.EmailStatus.FAILED if delay else Receipt.EmailStatus.GAVE_UP,
            email_last_error=f"{type(exc).__name__}: {exc}"[:500],
            email_next_attempt_at=now + delay if delay else None,
        )
        return False
    model.objects.filter(pk=document.pk).update(
        email_attempts=attempts, email_status=Receipt.EmailStatus.SENT, email_sent_at=now,
        email_last_error="", email_next_attempt_at=None,
    )
    return True


def document_deliver(*, kind: str, document_id: int, now: datetime | None = None) -> bool:
    """Renders (if not yet) and e-mails one document unless it was sent already; what the pdf
    queue's task runs. Safe to run twice at once: a worker first takes a short lease on the
    document (DELIVERY_LEASE, in one quick transaction) and renders and sends without holding
    any lock; a second worker finds the lease taken and leaves it."""
    now = now or timezone.now()
    model = Receipt if kind == "receipt" else CreditNote
    with transaction.atomic():
        document = (
            model.objects.select_for_update(skip_locked=True)
            .filter(pk=document_id, email_status__in=DELIVERABLE)
            .filter(Q(email_next_attempt_at__isnull=True) | Q(email_next_attempt_at__lte=now))
            .first()
        )
        if document is None:
            return False
        model.objects.filter(pk=document.pk).update(email_next_attempt_at=now + DELIVERY_LEASE)
    return document_send(document, now=now)


def document_resend(*, document: Document, now: datetime | None = None) -> bool:
    """Staff's Resend: sends the document again now, whatever its delivery state."""
    return document_send(type(document).objects.get(pk=document.pk), now=now)


def documents_deliver_due(*, now: datetime | None = None, limit: int = DELIVER_BATCH) -> int:
    """Beat's job: documents whose e-mail is pending or failed and due, at most `limit` of each
    kind; returns how many were sent. Rows another worker holds are skipped."""
    now = now or timezone.now()
    sent = 0
    for model, kind in ((Receipt, "receipt"), (CreditNote, "credit_note")):
        # Pending ones a minute old: their on-commit task was lost (or is slow); failed ones
        # once their backoff has passed.
        due = model.objects.filter(
            Q(email_status=Receipt.EmailStatus.PENDING, issued_at__lte=now - timedelta(minutes=1))
            | Q(email_status=Receipt.EmailStatus.FAILED),
            Q(email_next_attempt_at__isnull=True) | Q(email_next_attempt_at__lte=now),
        ).order_by("issued_at").values_list("pk", flat=True)[:limit]
        for document_id in due:
            sent += document_deliver(kind=kind, document_id=document_id, now=now)
    return sent
