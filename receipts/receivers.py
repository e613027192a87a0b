"""Receipts' answers to payments' signals: each issues a document inside the transaction that
applied the fact (payments/signals.py), so the document exists exactly when the fact does."""

from payments.evidence import EvidenceFile
from receipts import services
from receipts.models import Receipt


def issue_receipt(sender, payment, **kwargs) -> None:
    services.receipt_issue(payment=payment)


def issue_credit_note(sender, refund, **kwargs) -> None:
    services.credit_note_issue(refund=refund)


def reverse_credit_note(sender, refund, **kwargs) -> None:
    services.credit_note_reverse(refund=refund)


def receipt_as_evidence(sender, dispute, **kwargs) -> dict[str, EvidenceFile]:
    """The disputed payment's receipt, for the evidence's `receipt` field."""
    receipt = Receipt.objects.filter(payment_id=dispute.payment_id).first()
    if receipt is None:
        return {}
    return {"receipt": EvidenceFile(name=receipt.filename,
                                    content=services.document_pdf(receipt))}
