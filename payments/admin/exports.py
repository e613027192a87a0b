"""The payments list as CSV for accounting: one row per payment, amounts in decimal major units
beside their currency, written as the rows are read (no file is built in memory)."""

import csv
from collections.abc import Iterable, Iterator

from django.db.models import QuerySet

from money import Money
from payments.admin.badges import refund_state

HEADER = (
    "payment", "charge", "order", "customer_email", "created_at", "succeeded_at", "status",
    "currency", "amount", "amount_received", "amount_refunded", "refunded", "dispute_status",
    "card_brand", "card_last4",
)
_FIELDS = (
    "stripe_id", "stripe_charge_id", "order__number", "order__customer__email", "created_at",
    "succeeded_at", "status", "currency", "amount", "amount_received", "amount_refunded",
    "dispute_status", "card_brand", "card_last4",
)
# Rows fetched per round trip (a server-side cursor on PostgreSQL).
CHUNK = 2000
# A cell a spreadsheet would run as a formula (OWASP "CSV injection").
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


class _Line:
    """A file-like object whose write() returns the line, for csv.writer to stream through."""

    def write(self, value: str) -> str:
        return value


def _text(value: str) -> str:
    return "'" + value if value.startswith(_FORMULA_STARTS) else value


def _decimal(amount: int, currency: str) -> str:
    return str(Money(amount, currency).to_decimal())


def _row(values: tuple) -> list[str]:
    (stripe_id, charge, order, email, created, succeeded, status, currency, amount, received,
     refunded, dispute, brand, last4) = values
    return [
        stripe_id or "", charge, order, _text(email or ""), created.isoformat(),
        succeeded.isoformat() if succeeded else "", status, currency,
        _decimal(amount, currency), _decimal(received, currency), _decimal(refunded, currency),
        refund_state(received, refunded), dispute, brand, last4,
    ]


def payments_csv(queryset: QuerySet) -> Iterator[str]:
    """CSV lines (header first) for the payments of `queryset`, in its order."""
    writer = csv.writer(_Line())
    yield writer.writerow(HEADER)
    rows: Iterable[tuple] = queryset.values_list(*_FIELDS).iterator(chunk_size=CHUNK)
    for values in rows:
        yield writer.writerow(_row(values))
