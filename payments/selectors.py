"""Reads of payments: QuerySets and single rows, with their joins, for views and services."""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import (
    BigIntegerField,
    Case,
    Count,
    OuterRef,
    Prefetch,
    Q,
    QuerySet,
    Subquery,
    Sum,
    When,
)
from django.db.models.functions import Coalesce, Substr
from django.utils import timezone

from orders.models import Order
from payments.models import Dispute, Payment, PaymentEvent, PaymentMethod, Refund, WebhookEvent


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
        Payment.objects.filter(customer=user)
        .select_related("order")
        .order_by("-created_at", "-id")
    )


# What a customer's payment history shows of each payment: not the raw Stripe object (kilobytes
# of JSON a row) nor staff's columns.
PAYMENT_HISTORY_FIELDS = (
    "id", "order__number", "amount", "currency", "status", "failure_code", "decline_code",
    "amount_received", "amount_refunded", "card_brand", "card_last4", "created_at",
    "succeeded_at",
)


def payment_history_for(*, user: AbstractBaseUser) -> QuerySet[Payment]:
    """The user's payments as their history lists them: newest first, each with its order's
    number, reading only the columns shown (PAYMENT_HISTORY_FIELDS)."""
    return payment_list_for(user=user).only(*PAYMENT_HISTORY_FIELDS)


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
        # `<> ''` lets PostgreSQL use the partial index on charge ids (and costs nothing on the
        # unique ones); without it the plan's estimate reads the table for every row, which is
        # also what makes PostgreSQL JIT-compile the query (hundreds of milliseconds).
        found = (
            model.objects.filter(**{field: object_id}).exclude(**{field: ""})
            .order_by().values(payment_field)[:1]
        )
        whens.append(When(subject__startswith=prefix, then=Subquery(found)))
    return queryset.annotate(payment_pk=Case(*whens, default=None, output_field=BigIntegerField()))


# --- The back office's dashboard ------------------------------------------------------------------

# Stripe's dispute statuses before a decision: an inquiry or a chargeback waiting for evidence
# or under review (Dispute.CLOSED are the others).
DISPUTE_OPEN_STATUSES = (
    "warning_needs_response", "warning_under_review", "needs_response", "under_review",
)
WEBHOOK_FAILED_STATUSES = (WebhookEvent.Status.FAILED, WebhookEvent.Status.FAILED_PERMANENTLY)


@dataclass(frozen=True)
class CalendarPeriods:
    """Today and this month in the site's time zone, as [start, end) datetimes: the same
    boundaries as the admin's date filters (orders.admin_lists.DateFilter)."""

    today: datetime
    tomorrow: datetime
    month: datetime
    next_month: datetime


def calendar_periods(*, now: datetime) -> CalendarPeriods:
    today = timezone.localtime(now).replace(hour=0, minute=0, second=0, microsecond=0)
    month = today.replace(day=1)
    next_month = (month + timedelta(days=31)).replace(day=1)
    return CalendarPeriods(today, today + timedelta(days=1), month, next_month)


@dataclass(frozen=True)
class CurrencyTotals:
    """Minor units and counts in one currency, today and this month (today included)."""

    currency: str
    today: int
    today_count: int
    month: int
    month_count: int


def _totals_by_currency(
    queryset: QuerySet, *, amount: str, when: str, periods: CalendarPeriods
) -> list[CurrencyTotals]:
    today = Q(**{f"{when}__gte": periods.today, f"{when}__lt": periods.tomorrow})
    rows = (
        queryset.filter(**{f"{when}__gte": periods.month, f"{when}__lt": periods.next_month})
        .values("currency")
        .annotate(
            month_sum=Sum(amount),
            month_count=Count("pk"),
            today_sum=Coalesce(Sum(amount, filter=today), 0),
            today_count=Count("pk", filter=today),
        )
        .order_by("currency")
    )
    return [
        CurrencyTotals(r["currency"], r["today_sum"], r["today_count"], r["month_sum"],
                       r["month_count"])
        for r in rows
    ]


def payment_volume_by_currency(*, now: datetime) -> list[CurrencyTotals]:
    """What succeeded payments received, per currency, today and this month, by when they
    succeeded. One query."""
    return _totals_by_currency(
        Payment.objects.filter(status=Payment.Status.SUCCEEDED),
        amount="amount_received", when="succeeded_at", periods=calendar_periods(now=now),
    )


def refund_volume_by_currency(*, now: datetime) -> list[CurrencyTotals]:
    """Succeeded refunds per currency, today and this month, by when they were asked for (a
    refund keeps no time of its success). One query."""
    return _totals_by_currency(
        Refund.objects.filter(status=Refund.Status.SUCCEEDED),
        amount="amount", when="created_at", periods=calendar_periods(now=now),
    )


@dataclass(frozen=True)
class OpenDisputes:
    count: int
    overdue: int
    nearest_id: int | None
    nearest_due: datetime | None


def disputes_open(*, now: datetime) -> OpenDisputes:
    """How many disputes wait for evidence or a decision, how many of those are past their
    evidence due date, and the one due first (an overdue one if any). Two queries."""
    waiting = Dispute.objects.filter(status__in=DISPUTE_OPEN_STATUSES)
    counts = waiting.aggregate(
        count=Count("pk"), overdue=Count("pk", filter=Q(evidence_due_by__lt=now))
    )
    nearest = (
        waiting.filter(evidence_due_by__isnull=False)
        .order_by("evidence_due_by", "pk")
        .values_list("pk", "evidence_due_by")
        .first()
    )
    return OpenDisputes(counts["count"], counts["overdue"], *(nearest or (None, None)))


@dataclass(frozen=True)
class CurrencyCount:
    currency: str
    count: int
    amount: int


def refunds_awaiting_approval() -> list[CurrencyCount]:
    """Refunds waiting for a second member of staff, per currency. One query."""
    rows = (
        Refund.objects.filter(status=Refund.Status.AWAITING_APPROVAL)
        .values("currency")
        .annotate(count=Count("pk"), amount=Sum("amount"))
        .order_by("currency")
    )
    return [CurrencyCount(r["currency"], r["count"], r["amount"]) for r in rows]


def webhook_events_failed() -> dict[str, int]:
    """Failed webhook events by status (failed: will retry; failed_permanently: will not),
    both always present. One query."""
    counts = dict(
        WebhookEvent.objects.filter(status__in=WEBHOOK_FAILED_STATUSES)
        .values_list("status")
        .annotate(Count("pk"))
        .order_by()
    )
    return {status: counts.get(status, 0) for status in WEBHOOK_FAILED_STATUSES}
