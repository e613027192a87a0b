"""Receipts and credit notes: what a customer and an accountant keep.

A receipt is issued once per succeeded payment and a credit note once per succeeded refund (a
refund that fails afterwards gets a reversing note, never silence), each numbered in its own
gapless series per year ("R-2026-000001", "CN-2026-000001"). The number is allocated in the
transaction that issues the document, under the series row's lock, so concurrent issues never
share or skip a number and a rolled-back issue leaves no gap. What a document says is frozen when
it is issued (database triggers refuse to change it on PostgreSQL); only its PDF and e-mail
delivery state change afterwards.
"""

import pgtrigger
from django.db import models
from django.db.models import Q

from money import Money
from payments.models import Payment, Refund


class DocumentSequence(models.Model):
    """The last number used in one series and year; locked while a number is taken."""

    series = models.CharField(max_length=4)
    year = models.PositiveSmallIntegerField()
    last_number = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["series", "year"], name="one_sequence_per_year"),
        ]

    def __str__(self) -> str:
        return f"{self.series}-{self.year}: {self.last_number}"


class Delivery(models.Model):
    """A document's PDF and the e-mail that carries it (delivery state, retried by beat)."""

    class EmailStatus(models.TextChoices):
        PENDING = "pending", "Pending"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed (will retry)"
        GAVE_UP = "gave_up", "Failed (not retried)"
        NO_ADDRESS = "no_address", "No e-mail address"

    pdf = models.FileField(upload_to="documents/%Y/", blank=True)
    pdf_rendered_at = models.DateTimeField(null=True, blank=True)
    email_status = models.CharField(
        max_length=12, choices=EmailStatus.choices, default=EmailStatus.PENDING
    )
    email_attempts = models.PositiveSmallIntegerField(default=0)
    email_sent_at = models.DateTimeField(null=True, blank=True)
    email_last_error = models.CharField(max_length=500, blank=True)
    email_next_attempt_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        abstract = True


# The columns a document is issued with; triggers refuse to change them afterwards.
FROZEN_FIELDS = ["number", "series", "year", "sequence", "issued_at", "currency", "total",
                 "lines", "tax_lines", "seller", "buyer"]


class Receipt(Delivery):
    """The receipt of one succeeded payment."""

    SERIES = "R"

    payment = models.OneToOneField(Payment, on_delete=models.PROTECT, related_name="receipt")
    number = models.CharField(max_length=20, unique=True)
    series = models.CharField(max_length=4, default=SERIES)
    year = models.PositiveSmallIntegerField()
    sequence = models.PositiveIntegerField()
    issued_at = models.DateTimeField()
    currency = models.CharField(max_length=3)
    total = models.PositiveBigIntegerField(help_text="Minor units, tax included")
    lines = models.JSONField(help_text="description, quantity, unit_amount, amount, tax_rate")
    tax_lines = models.JSONField(default=list, help_text="rate, net, tax, gross per tax rate")
    seller = models.JSONField(help_text="Name, address, tax id and e-mail when issued")
    buyer = models.JSONField(help_text="Name and e-mail when issued; the card paid with")

    class Meta:
        ordering = ["-issued_at", "-pk"]
        constraints = [
            models.UniqueConstraint(fields=["series", "year", "sequence"],
                                    name="receipt_number_once"),
        ]
        indexes = [
            models.Index(fields=["email_status", "email_next_attempt_at"],
                         condition=Q(email_status__in=["pending", "failed"]),
                         name="receipt_email_due"),
        ]
        triggers = [
            pgtrigger.ReadOnly(name="issued_receipt_frozen", fields=FROZEN_FIELDS),
            pgtrigger.Protect(name="issued_receipt_kept", operation=pgtrigger.Delete),
        ]

    def __str__(self) -> str:
        return self.number

    @property
    def money(self) -> Money:
        return Money(self.total, self.currency)

    @property
    def filename(self) -> str:
        return f"{self.number}.pdf"


class CreditNote(Delivery):
    """A succeeded refund's credit note, or the note that reverses one whose refund failed
    afterwards (`reverses`: the money did not go back after all)."""

    SERIES = "CN"

    class Kind(models.TextChoices):
        CREDIT = "credit", "Credit note"
        REVERSAL = "reversal", "Reversal of a credit note"

    receipt = models.ForeignKey(Receipt, on_delete=models.PROTECT, related_name="credit_notes")
    refund = models.ForeignKey(Refund, on_delete=models.PROTECT, related_name="credit_notes")
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.CREDIT)
    reverses = models.OneToOneField(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="reversed_by"
    )
    number = models.CharField(max_length=20, unique=True)
    series = models.CharField(max_length=4, default=SERIES)
    year = models.PositiveSmallIntegerField()
    sequence = models.PositiveIntegerField()
    issued_at = models.DateTimeField()
    currency = models.CharField(max_length=3)
    total = models.PositiveBigIntegerField(help_text="Minor units given back (or taken back)")
    reason = models.CharField(max_length=200, blank=True)
    lines = models.JSONField(default=list)
    tax_lines = models.JSONField(default=list)
    seller = models.JSONField()
    buyer = models.JSONField()

    class Meta:
        ordering = ["-issued_at", "-pk"]
        constraints = [
            models.UniqueConstraint(fields=["series", "year", "sequence"],
                                    name="credit_note_number_once"),
            # One note per refund and kind: a refund is credited once and reversed at most once.
            models.UniqueConstraint(fields=["refund", "kind"], name="credit_note_once_per_kind"),
        ]
        indexes = [
            models.Index(fields=["email_status", "email_next_attempt_at"],
                         condition=Q(email_status__in=["pending", "failed"]),
                         name="credit_note_email_due"),
        ]
        triggers = [
            pgtrigger.ReadOnly(name="issued_note_frozen",
                               fields=[*FROZEN_FIELDS, "kind", "reason", "refund", "receipt"]),
            pgtrigger.Protect(name="issued_note_kept", operation=pgtrigger.Delete),
        ]

    def __str__(self) -> str:
        return self.number

    @property
    def money(self) -> Money:
        return Money(self.total, self.currency)

    @property
    def filename(self) -> str:
        return f"{self.number}.pdf"
