"""A receipt's or credit note's PDF: a Django template rendered to HTML, then to PDF by
WeasyPrint, with amounts and dates formatted for the currency and PAYDESK_DOCUMENT_LOCALE by
Babel. Fonts: DejaVu (Debian's fonts-dejavu-core, in the Docker image), which covers Latin,
Greek, Cyrillic, Arabic and Hebrew scripts."""

from __future__ import annotations

from decimal import Decimal

from babel.dates import format_date
from django.conf import settings
from django.template.loader import render_to_string
from weasyprint import HTML

from money import Money
from receipts.models import CreditNote, Receipt


def document_context(document: Receipt | CreditNote, *, locale: str | None = None) -> dict:
    """What the templates show, every amount already formatted (minor units never reach them)."""
    locale = locale or settings.PAYDESK_DOCUMENT_LOCALE
    currency = document.currency

    def shown(amount: int) -> str:
        return Money(amount, currency).format(locale)

    is_receipt = isinstance(document, Receipt)
    return {
        "document": document,
        "title": "Receipt" if is_receipt else (
            "Credit note" if document.kind == CreditNote.Kind.CREDIT
            else "Credit note reversal"),
        "is_receipt": is_receipt,
        "issued_on": format_date(document.issued_at, format="long", locale=locale),
        "seller": document.seller,
        "buyer": document.buyer,
        "lines": [
            {**line, "unit_amount_display": shown(line["unit_amount"]),
             "amount_display": shown(line["amount"]),
             "tax_rate_display": _rate(line.get("tax_rate", "0"))}
            for line in document.lines
        ],
        "tax_lines": [
            {**line, "net_display": shown(line["net"]), "tax_display": shown(line["tax"]),
             "gross_display": shown(line["gross"]), "rate_display": _rate(line["rate"])}
            for line in document.tax_lines
        ],
        "total_display": shown(document.total),
        "currency": currency,
        "refers_to": "" if is_receipt else document.receipt.number,
        "reverses": "" if is_receipt or not document.reverses_id else document.reverses.number,
        "reason": "" if is_receipt else document.reason,
    }


def _rate(rate: str) -> str:
    """ "20.00" -> "20", "5.50" -> "5.5", "0" -> "" (no tax)."""
    value = Decimal(rate)
    return "" if not value else f"{value.normalize():f}"


def render_html(document: Receipt | CreditNote) -> str:
    return render_to_string("receipts/document.html", document_context(document))


def render_pdf(document: Receipt | CreditNote) -> bytes:
    return HTML(string=render_html(document)).write_pdf()
