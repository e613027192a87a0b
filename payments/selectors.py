"""Reads of payments: QuerySets and single rows, with their joins, for views and services."""

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Prefetch, QuerySet

from orders.models import Order
from payments.models import Payment, PaymentEvent, PaymentMethod, Refund


def payment_live_for(*, order: Order) -> Payment | None:
    """The order's one PaymentIntent that is not canceled (a database constraint keeps it one)."""
    return order.payments.exclude(status=Payment.Status.CANCELED).first()


def payment_id_for_intent(*, intent_id: str) -> int | None:
    """The id of the payment that mirrors a PaymentIntent, None if no payment does."""
    return Payment.objects.filter(stripe_id=intent_id).values_list("pk", flat=True).first()


# --- The mobile API's reads: a customer's own payments and saved cards ----------------------------

# What a customer sees of a payment's ledger: its own story, not staff's decisions about it.
CUSTOMER_TIMELINE_KINDS = (
    PaymentEvent.Kind.REQUESTED,
    PaymentEvent.Kind.ACTION_REQUIRED,
    PaymentEvent.Kind.SUCCEEDED,
    PaymentEvent.Kind.FAILED,
    PaymentEvent.Kind.CANCELED,
    PaymentEvent.Kind.REFUND_REQUESTED,
    PaymentEvent.Kind.REFUND_SUCCEEDED,
    PaymentEvent.Kind.REFUND_FAILED,
)


def payment_list_for(*, user: AbstractBaseUser) -> QuerySet[Payment]:
    """The user's payments, newest first (a stable order to paginate), with their orders."""
    return (
        Payment.objects.filter(order__customer=user)
        .select_related("order")
        .order_by("-created_at", "-id")
    )


def payment_detail_for(*, user: AbstractBaseUser) -> QuerySet[Payment]:
    """The user's payments with what the customer may see of their refunds (those sent to
    Stripe, not requests staff have yet to decide) and of their timeline."""
    return payment_list_for(user=user).prefetch_related(
        Prefetch("refunds", to_attr="customer_refunds",
                 queryset=Refund.objects.exclude(status__in=Refund.BEFORE_STRIPE)
                 .order_by("created_at", "id")),
        Prefetch("events", to_attr="customer_timeline",
                 queryset=PaymentEvent.objects.filter(kind__in=CUSTOMER_TIMELINE_KINDS)),
    )


def payment_methods_saved_for(*, user: AbstractBaseUser) -> QuerySet[PaymentMethod]:
    """The user's saved cards that are still attached, newest first."""
    return PaymentMethod.objects.filter(customer__user=user, detached_at__isnull=True).order_by(
        "-created_at", "-id"
    )
