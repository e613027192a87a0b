"""Dispute evidence as Stripe takes it: the fields Paydesk sends, Stripe's limits on them, the
staff form that checks those limits, and the draft pre-filled from Paydesk's own records.

Stripe's limits (docs.stripe.com/api/disputes/update and /file-upload):
- product_description, refund_policy_disclosure and uncategorized_text hold at most 20,000
  characters each; customer_name and customer_email_address 5,000 (Stripe's limit for a string).
  All text fields together may hold 150,000, which these five cannot reach.
- Files (purpose `dispute_evidence`) are PDF, JPEG or PNG of at most 5 MB; they are uploaded
  first and the evidence names them by id.
- Stripe also refuses evidence that would compile to more pages than the card network accepts
  (`dispute_evidence_page_limit_exceeded`, API 2026-09-30 on): only Stripe can count those
  pages, so the service turns that answer into a message.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from django import forms

from money import Money
from payments.models import Dispute

FILE_PURPOSE = "dispute_evidence"
FILE_MAX_BYTES = 5 * 1024 * 1024
LONG_TEXT = 20_000
SHORT_TEXT = 5_000

# The fields Paydesk fills, in the order the form shows them.
TEXT_FIELDS = {
    "product_description": LONG_TEXT,
    "customer_name": SHORT_TEXT,
    "customer_email_address": SHORT_TEXT,
    "refund_policy_disclosure": LONG_TEXT,
    "uncategorized_text": LONG_TEXT,
}
FILE_FIELDS = (
    "receipt",
    "customer_communication",
    "service_documentation",
    "shipping_documentation",
    "refund_policy",
    "uncategorized_file",
)

# What Stripe reads a file as: by its first bytes, not its name (the SDK sends every file as
# application/octet-stream).
_SIGNATURES = {b"%PDF-": "pdf", b"\xff\xd8\xff": "jpg", b"\x89PNG\r\n\x1a\n": "png"}

TEXT_TOO_LONG = "Stripe takes at most %(limit_value)d characters here (this has %(show_value)d)."
FILE_TOO_LARGE = "{name} is larger than 5 MB, the most Stripe takes for dispute evidence."
FILE_WRONG_TYPE = "{name} is not a PDF, JPEG or PNG file: Stripe takes only those as evidence."


@dataclass(frozen=True)
class EvidenceFile:
    """A file to send as evidence, as bytes: uploaded by staff today; a document Paydesk makes
    itself (the order's receipt, once receipts exist) goes the same way."""

    name: str
    content: bytes


def file_kind(content: bytes) -> str | None:
    """"pdf", "jpg" or "png" as Stripe would read the file; None for anything else."""
    return next((kind for head, kind in _SIGNATURES.items() if content.startswith(head)), None)


def _check_file(upload) -> None:
    if upload.size > FILE_MAX_BYTES:
        raise forms.ValidationError(FILE_TOO_LARGE.format(name=upload.name), code="too_large")
    upload.seek(0)
    head = upload.read(16)
    upload.seek(0)
    if file_kind(head) is None:
        raise forms.ValidationError(FILE_WRONG_TYPE.format(name=upload.name), code="file_type")


FIELD_LABELS = {  # (label, help text) of each field the form shows
    "product_description": ("Product description", "What was sold: the order's lines."),
    "customer_name": ("Customer name", ""),
    "customer_email_address": ("Customer e-mail address", ""),
    "refund_policy_disclosure": (
        "Refund policy disclosure",
        "How and when the customer was shown the refund policy before paying.",
    ),
    "uncategorized_text": (
        "Other evidence (text)",
        "The payment, the card and the payment's timeline from Paydesk's ledger.",
    ),
    "receipt": ("Receipt", "What the customer was sent for the charge."),
    "customer_communication": ("Customer communication", "E-mails or chats with the customer."),
    "service_documentation": ("Service documentation", "Proof the service was provided."),
    "shipping_documentation": ("Shipping documentation", "Proof of shipment to the customer."),
    "refund_policy": ("Refund policy", "The refund policy as the customer saw it."),
    "uncategorized_file": ("Other evidence (file)", ""),
}


class EvidenceForm(forms.Form):
    """Stripe's evidence fields that matter to Paydesk, checked against Stripe's limits, so bad
    input is an error on its field and nothing reaches Stripe. A file left empty keeps the one
    sent before (the dispute's saved evidence names it)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name, limit in TEXT_FIELDS.items():
            label, help_text = FIELD_LABELS[name]
            if name == "customer_email_address":
                field_class, widget = forms.EmailField, forms.EmailInput(attrs={"size": 60})
            elif limit == LONG_TEXT:
                field_class, widget = forms.CharField, forms.Textarea(attrs={"rows": 8})
            else:
                field_class, widget = forms.CharField, forms.TextInput(attrs={"size": 60})
            self.fields[name] = field_class(
                label=label,
                help_text=help_text,
                required=False,
                max_length=limit,
                widget=widget,
                error_messages={"max_length": TEXT_TOO_LONG},
            )
        for name in FILE_FIELDS:
            label, help_text = FIELD_LABELS[name]
            self.fields[name] = forms.FileField(
                label=label,
                help_text=" ".join(filter(None, [help_text, "PDF, JPEG or PNG, up to 5 MB."])),
                required=False,
                validators=[_check_file],
            )

    def evidence(self) -> dict[str, str]:
        """The text fields as entered (call after is_valid)."""
        return {name: self.cleaned_data[name] for name in TEXT_FIELDS}

    def evidence_files(self) -> dict[str, EvidenceFile]:
        """The files uploaded with this submission (call after is_valid)."""
        return {
            name: EvidenceFile(name=upload.name, content=b"".join(upload.chunks()))
            for name in FILE_FIELDS
            if (upload := self.cleaned_data.get(name))
        }


# --- The draft from Paydesk's own records ------------------------------------------------------


def _money(amount: int, currency: str) -> str:
    return Money(amount, currency).format()


def _utc(moment: datetime | None) -> str:
    return f"{moment.astimezone(UTC):%Y-%m-%d %H:%M} UTC" if moment else "—"


def dispute_evidence_documents(*, dispute: Dispute) -> dict[str, EvidenceFile]:
    """Paydesk's own documents for the evidence's file fields (the order's receipt, from the
    receipts app), asked for with payments.signals.dispute_evidence_documents."""
    from payments.signals import dispute_evidence_documents as asked

    documents: dict[str, EvidenceFile] = {}
    for _receiver, answer in asked.send(sender=Dispute, dispute=dispute):
        documents.update(answer or {})
    return {name: document for name, document in documents.items() if name in FILE_FIELDS}


def dispute_evidence_prefill(*, dispute: Dispute) -> dict[str, str]:
    """The evidence text a new response starts from, so staff review rather than type: the
    order's lines, the customer's name and e-mail, the payment and its card, and the payment's
    timeline from the ledger (dispute entries left out: the bank knows those).

    Files come from dispute_evidence_documents (the receipt), sent with the evidence unless
    staff upload one of their own in the same field or one was sent already."""
    payment = dispute.payment
    order = payment.order
    customer = order.customer
    lines = list(order.lines.all())
    events = payment.events.exclude(kind__startswith="dispute")

    description = [
        f"Order {order.number}, placed {_utc(order.created_at)}, paid {_utc(order.paid_at)}:",
        *(
            f"- {line.quantity} x {line.description} at "
            f"{_money(line.unit_amount, order.currency)} = {_money(line.amount, order.currency)}"
            for line in lines
        ),
        f"Total: {_money(order.total_amount, order.currency)}",
    ]
    card = (
        f"{payment.card_brand.title() or 'card'} ending {payment.card_last4}"
        + (
            f", expiring {payment.card_exp_month:02d}/{payment.card_exp_year}"
            if payment.card_exp_month and payment.card_exp_year
            else ""
        )
        if payment.card_last4
        else "card"
    )
    timeline = [
        "  ".join(
            filter(None, [
                _utc(event.created_at),
                event.get_kind_display(),
                _money(event.amount, payment.currency) if event.amount is not None else "",
                f"({event.message})" if event.message else "",
            ])
        )
        for event in events
    ]
    summary = [
        f"Payment {payment.stripe_id} (charge {payment.stripe_charge_id or '—'}) for order "
        f"{order.number}: {_money(payment.amount_received, payment.currency)} paid with the "
        f"customer's {card} on {_utc(payment.succeeded_at)}.",
        "",
        "Timeline of the payment (Paydesk's ledger):",
        *timeline,
    ]
    return {
        "product_description": "\n".join(description),
        "customer_name": customer.get_full_name() or customer.get_username(),
        "customer_email_address": customer.email,
        "refund_policy_disclosure": "",
        "uncategorized_text": "\n".join(summary),
    }

