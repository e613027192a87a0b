"""Reads of receipts: a customer sees only their own documents."""

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import QuerySet

from receipts.models import CreditNote, Receipt


def receipts_for(*, user: AbstractBaseUser) -> QuerySet[Receipt]:
    return Receipt.objects.filter(payment__customer=user).select_related(
        "payment__order"
    )


def credit_notes_for(*, user: AbstractBaseUser) -> QuerySet[CreditNote]:
    return CreditNote.objects.filter(receipt__payment__customer=user).select_related(
        "receipt__payment__order"
    )


def document_for(*, user: AbstractBaseUser, number: str) -> Receipt | CreditNote | None:
    """The user's receipt or credit note with this number; None if there is none (or it is
    someone else's: the caller answers 404 either way)."""
    model = CreditNote if number.startswith(f"{CreditNote.SERIES}-") else Receipt
    selector = credit_notes_for if model is CreditNote else receipts_for
    return selector(user=user).filter(number=number).first()
