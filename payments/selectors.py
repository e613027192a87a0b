"""Reads of payments: QuerySets and single rows, with their joins, for views and services."""

from django.db.models import BigIntegerField, Case, OuterRef, QuerySet, Subquery, When
from django.db.models.functions import Substr

from orders.models import Order
from payments.models import Dispute, Payment, Refund, WebhookEvent


def payment_live_for(*, order: Order) -> Payment | None:
    """The order's one PaymentIntent that is not canceled (a database constraint keeps it one)."""
    return order.payments.exclude(status=Payment.Status.CANCELED).first()


def payment_id_for_intent(*, intent_id: str) -> int | None:
    """The id of the payment that mirrors a PaymentIntent, None if no payment does."""
    return Payment.objects.filter(stripe_id=intent_id).values_list("pk", flat=True).first()


# --- Webhook events and the payments they concern ------------------------------------------------

# A webhook event's subject (payments.webhooks.ingest.subject_of) names the Stripe object it is
# about: "payment_intent:pi_...", "charge:ch_...", "refund:re_..." or "dispute:du_...". Each
# leads to one payment by a unique or indexed column.
_SUBJECT_PAYMENT = {
    "payment_intent": (Payment, "stripe_id", "pk"),
    "charge": (Payment, "stripe_charge_id", "pk"),
    "refund": (Refund, "stripe_id", "payment_id"),
    "dispute": (Dispute, "stripe_id", "payment_id"),
}


def payment_id_for_subject(*, subject: str) -> int | None:
    """The id of the payment a webhook event's subject concerns, None if none does (yet)."""
    kind, _, object_id = subject.partition(":")
    if kind not in _SUBJECT_PAYMENT or not object_id:
        return None
    model, field, payment_field = _SUBJECT_PAYMENT[kind]
    return (
        model.objects.filter(**{field: object_id})
        .values_list(payment_field, flat=True)
        .first()
    )


def webhook_events_with_payment(queryset: QuerySet[WebhookEvent]) -> QuerySet[WebhookEvent]:
    """`queryset` with each event's `payment_pk` (as payment_id_for_subject) in the same query:
    one indexed lookup per listed row, only for the kind of its subject."""
    whens = []
    for kind, (model, field, payment_field) in _SUBJECT_PAYMENT.items():
        prefix = f"{kind}:"
        object_id = Substr(OuterRef("subject"), len(prefix) + 1)
        found = model.objects.filter(**{field: object_id}).values(payment_field)[:1]
        whens.append(When(subject__startswith=prefix, then=Subquery(found)))
    return queryset.annotate(payment_pk=Case(*whens, default=None, output_field=BigIntegerField()))


# Stripe's dispute statuses before a decision: an inquiry or a chargeback waiting for evidence
# or under review (Dispute.CLOSED are the others).
DISPUTE_OPEN_STATUSES = (
    "warning_needs_response", "warning_under_review", "needs_response", "under_review",
)
