"""Reads of subscriptions and recovery: the customer's pages, the API, and the admin dashboard."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Count, QuerySet, Sum

from recovery.models import Plan, RecoveryAttempt, RecoveryCase, Subscription


def plans_for_sale() -> QuerySet[Plan]:
    return Plan.objects.filter(active=True, price__active=True).select_related("price__product")


def subscriptions_for(*, user: AbstractBaseUser) -> QuerySet[Subscription]:
    return Subscription.objects.filter(customer=user).select_related(
        "plan__price", "payment_method")


def subscription_detail_for(*, user: AbstractBaseUser) -> QuerySet[Subscription]:
    """The user's subscriptions with what their page shows: plan, card, every period's order
    and payments (newest first)."""
    return subscriptions_for(user=user).select_related("plan__price__product").prefetch_related(
        "renewals__order__payments")


def subscription_history(*, subscription: Subscription):
    """The subscription's renewals, newest first, with their orders and payments."""
    return subscription.renewals.select_related("order").prefetch_related("order__payments")


def case_open_for(*, subscription: Subscription) -> RecoveryCase | None:
    return (RecoveryCase.objects.filter(subscription=subscription,
                                        status__in=RecoveryCase.OPEN_STATUSES)
            .select_related("order").prefetch_related("attempts").order_by("-opened_at").first())


@dataclass(frozen=True)
class RecoveryStats:
    """The admin dashboard's recovery numbers over the window before `now`."""

    cases_closed: int
    cases_recovered: int
    recovery_rate: float | None  # recovered / (recovered + lost), None when nothing closed
    recovered_amounts: dict[str, int]  # currency -> minor units
    attempts_per_recovery: float | None
    cases_open: int


def recovery_dashboard_stats(*, now: datetime, days: int = 30) -> RecoveryStats:
    """Recovery rate, recovered amount (per currency, minor units) and attempts per recovery of
    the cases closed in the `days` before `now`, and how many cases are open now."""
    since = now - timedelta(days=days)
    closed = RecoveryCase.objects.filter(closed_at__gt=since, closed_at__lte=now)
    recovered = closed.filter(status=RecoveryCase.Status.RECOVERED)
    lost = closed.filter(status=RecoveryCase.Status.LOST).count()
    n_recovered = recovered.count()
    amounts = {row["currency"]: row["total"] for row in
               recovered.values("currency").annotate(total=Sum("amount")).order_by("currency")}
    attempts = RecoveryAttempt.objects.filter(case__in=recovered).aggregate(n=Count("id"))["n"]
    decided = n_recovered + lost
    return RecoveryStats(
        cases_closed=closed.count(),
        cases_recovered=n_recovered,
        recovery_rate=n_recovered / decided if decided else None,
        recovered_amounts=amounts,
        attempts_per_recovery=attempts / n_recovered if n_recovered else None,
        cases_open=RecoveryCase.objects.filter(status__in=RecoveryCase.OPEN_STATUSES).count(),
    )
