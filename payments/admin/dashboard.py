"""The admin index's dashboard: today's and this month's money per currency, and what waits for
staff. Every figure links to the list of exactly the rows it counts; each part shows only to
staff who may view that list. The numbers come from payments.selectors (a handful of aggregate
queries, whatever the number of rows)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlencode

from django.contrib.auth.models import AbstractBaseUser
from django.urls import reverse

from orders.admin import money
from payments import selectors
from payments.models import Refund, WebhookEvent


@dataclass(frozen=True)
class Figure:
    text: str
    url: str
    count: int | None = None


@dataclass(frozen=True)
class CurrencyRow:
    currency: str
    today: Figure
    month: Figure


@dataclass(frozen=True)
class Attention:
    """What waits for staff: open disputes, refunds awaiting approval, failed webhook events."""

    disputes: Figure | None = None
    overdue_disputes: Figure | None = None
    nearest_dispute: Figure | None = None
    awaiting_approval: list[Figure] | None = None
    webhooks_failed: Figure | None = None
    webhooks_failed_permanently: Figure | None = None


@dataclass(frozen=True)
class Dashboard:
    volume: list[CurrencyRow] | None
    refunds: list[CurrencyRow] | None
    attention: Attention


def changelist_url(model_name: str, **params: str) -> str:
    url = reverse(f"admin:payments_{model_name}_changelist")
    return f"{url}?{urlencode(params)}" if params else url


def _period(field: str, since: datetime, until: datetime) -> dict[str, str]:
    # As the list's date filter writes them (str of the datetime), so the filter shows selected.
    return {f"{field}__gte": str(since), f"{field}__lt": str(until)}


def _currency_rows(totals, *, model_name: str, when: str, filters: dict[str, str],
                   periods: selectors.CalendarPeriods) -> list[CurrencyRow]:
    rows = []
    for t in totals:
        base = {**filters, "currency": t.currency}
        today = _period(when, periods.today, periods.tomorrow)
        month = _period(when, periods.month, periods.next_month)
        rows.append(CurrencyRow(
            t.currency,
            Figure(money(t.today, t.currency), changelist_url(model_name, **base, **today),
                   t.today_count),
            Figure(money(t.month, t.currency), changelist_url(model_name, **base, **month),
                   t.month_count),
        ))
    return rows


def _attention(user: AbstractBaseUser, now: datetime) -> Attention:
    found: dict = {}
    if user.has_perm("payments.view_dispute"):
        disputes = selectors.disputes_open(now=now)
        waiting = {"status__in": ",".join(selectors.DISPUTE_OPEN_STATUSES)}
        found["disputes"] = Figure(str(disputes.count), changelist_url("dispute", **waiting),
                                   disputes.count)
        found["overdue_disputes"] = Figure(
            str(disputes.overdue),
            changelist_url("dispute", **waiting, evidence_due_by__lt=str(now)),
            disputes.overdue,
        )
        if disputes.nearest_id is not None:
            found["nearest_dispute"] = Figure(
                f"{disputes.nearest_due:%Y-%m-%d %H:%M}",
                reverse("admin:payments_dispute_change", args=[disputes.nearest_id]),
            )
    if user.has_perm("payments.view_refund"):
        awaiting = {"status__exact": Refund.Status.AWAITING_APPROVAL}
        found["awaiting_approval"] = [
            Figure(money(row.amount, row.currency),
                   changelist_url("refund", **awaiting, currency=row.currency), row.count)
            for row in selectors.refunds_awaiting_approval()
        ]
    if user.has_perm("payments.view_webhookevent"):
        failed = selectors.webhook_events_failed()
        for status, key in ((WebhookEvent.Status.FAILED, "webhooks_failed"),
                            (WebhookEvent.Status.FAILED_PERMANENTLY,
                             "webhooks_failed_permanently")):
            found[key] = Figure(str(failed[status]),
                                changelist_url("webhookevent", status__exact=status),
                                failed[status])
    return Attention(**found)


def dashboard_for(*, user: AbstractBaseUser, now: datetime) -> Dashboard:
    """The dashboard as `user` may see it at `now`."""
    periods = selectors.calendar_periods(now=now)
    volume = refunds = None
    if user.has_perm("payments.view_payment"):
        volume = _currency_rows(
            selectors.payment_volume_by_currency(now=now), model_name="payment",
            when="succeeded_at", filters={"status__exact": "succeeded"}, periods=periods,
        )
    if user.has_perm("payments.view_refund"):
        refunds = _currency_rows(
            selectors.refund_volume_by_currency(now=now), model_name="refund",
            when="created_at", filters={"status__exact": "succeeded"}, periods=periods,
        )
    return Dashboard(volume, refunds, _attention(user, now))
