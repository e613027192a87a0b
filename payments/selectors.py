"""Reads of payments: QuerySets and single rows, with their joins, for views and services."""

from orders.models import Order
from payments.models import Payment


def payment_live_for(*, order: Order) -> Payment | None:
    """The order's one PaymentIntent that is not canceled (a database constraint keeps it one)."""
    return order.payments.exclude(status=Payment.Status.CANCELED).first()


def payment_id_for_intent(*, intent_id: str) -> int | None:
    """The id of the payment that mirrors a PaymentIntent, None if no payment does."""
    return Payment.objects.filter(stripe_id=intent_id).values_list("pk", flat=True).first()


# Stripe's dispute statuses before a decision: an inquiry or a chargeback waiting for evidence
# or under review (Dispute.CLOSED are the others).
DISPUTE_OPEN_STATUSES = (
    "warning_needs_response", "warning_under_review", "needs_response", "under_review",
)
