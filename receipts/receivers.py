"""Receipts' answers to payments' signals: each issues a document inside the transaction that
applied the fact (payments/signals.py), so the document exists exactly when the fact does."""

from receipts import services


def issue_receipt(sender, payment, **kwargs) -> None:
    services.receipt_issue(payment=payment)


def issue_credit_note(sender, refund, **kwargs) -> None:
    services.credit_note_issue(refund=refund)


def reverse_credit_note(sender, refund, **kwargs) -> None:
    services.credit_note_reverse(refund=refund)
