"""Reconciliation: re-reads Stripe for local rows that are not final and repairs what Stripe
settled, so nothing stays pending here because a webhook was lost.

Repairs go through the services (payment_refresh, refund_refresh, dispute_refresh): each reads
Stripe under the payment's row lock and moves state forward only, so reconciling concurrently
with webhook processing, or twice at once, is safe.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import F, Model, Q, QuerySet
from django.utils import timezone

from payments import gateway, services
from payments.models import Dispute, Payment, Refund

logger = logging.getLogger(__name__)

SOURCE = "reconcile"
# A refund sent to Stripe without an answer is sent again once it is this old: long past any
# call still under way (the time budget is seconds).
UNANSWERED_REFUND_AGE = timedelta(minutes=1)


@dataclass(frozen=True)
class Drift:
    """A row whose status differed from Stripe's, now repaired."""

    kind: str
    stripe_id: str
    local_status: str
    stripe_status: str

    def __str__(self) -> str:
        return f"{self.kind} {self.stripe_id}: {self.local_status} -> {self.stripe_status}"


@dataclass(frozen=True)
class ReconcileError:
    """A row that could not be compared (Stripe unreachable, unknown object...)."""

    kind: str
    stripe_id: str
    message: str

    def __str__(self) -> str:
        return f"{self.kind} {self.stripe_id}: {self.message}"


@dataclass
class ReconcileReport:
    checked_by_kind: dict[str, int] = field(default_factory=dict)
    drift: list[Drift] = field(default_factory=list)
    errors: list[ReconcileError] = field(default_factory=list)
    # Refunds Stripe never answered, sent again (or found at Stripe) with their own key.
    refunds_resent: int = 0

    @property
    def checked(self) -> int:
        return sum(self.checked_by_kind.values())

    @property
    def repaired(self) -> int:
        return len(self.drift)

    def summary(self) -> str:
        kinds = ", ".join(f"{kind}s {count}" for kind, count in self.checked_by_kind.items())
        return (
            f"checked {self.checked} ({kinds}), repaired {self.repaired}, "
            f"errors {len(self.errors)}"
        ) + (f", unanswered refunds resent {self.refunds_resent}" if self.refunds_resent else "")


@dataclass(frozen=True)
class _Kind:
    name: str
    open_rows: Callable[[], QuerySet]
    refresh: Callable[[Model], Model | None]


_KINDS = (
    _Kind(
        "payment",
        lambda: Payment.objects.exclude(status__in=Payment.TERMINAL),
        lambda row: services.payment_refresh(payment=row, source=SOURCE),
    ),
    _Kind(
        "refund",
        lambda: Refund.objects.filter(status__in=Refund.OPEN),
        lambda row: services.refund_refresh(stripe_id=row.stripe_id, source=SOURCE),
    ),
    _Kind(
        "dispute",
        lambda: Dispute.objects.exclude(status__in=Dispute.CLOSED),
        lambda row: services.dispute_refresh(stripe_id=row.stripe_id, source=SOURCE),
    ),
)


def reconcile(
    *,
    since: datetime | None = None,
    stale_before: datetime | None = None,
    limit: int | None = None,
    now: datetime | None = None,
) -> ReconcileReport:
    """Compares every non-final Payment, Refund and Dispute that exists at Stripe with Stripe
    and repairs what Stripe settled; returns the drift found.

    `since`: only rows created from then on. `stale_before`: only rows never read from Stripe or
    last read before then. `limit`: at most this many rows of each kind, those read longest ago
    first. `now`: rows created after it are left to the next run. A Stripe error on one row is
    reported and the others are still compared."""
    now = now or timezone.now()
    report = ReconcileReport()
    for kind in _KINDS:
        rows = kind.open_rows().filter(stripe_id__isnull=False, created_at__lte=now)
        if since is not None:
            rows = rows.filter(created_at__gte=since)
        if stale_before is not None:
            rows = rows.filter(
                Q(stripe_checked_at__isnull=True) | Q(stripe_checked_at__lt=stale_before)
            )
        rows = rows.order_by(F("stripe_checked_at").asc(nulls_first=True), "created_at", "pk")
        report.checked_by_kind[kind.name] = 0
        for row in rows[:limit].only("pk", "stripe_id", "status"):
            report.checked_by_kind[kind.name] += 1
            try:
                repaired = kind.refresh(row)
            except (gateway.GatewayError, services.PaymentError) as exc:
                logger.warning("reconcile: could not compare %s %s: %s", kind.name,
                               row.stripe_id, exc)
                report.errors.append(ReconcileError(kind.name, row.stripe_id, str(exc)))
                continue
            if repaired is not None and repaired.status != row.status:
                drift = Drift(kind.name, row.stripe_id, row.status, repaired.status)
                logger.info("reconcile: repaired %s", drift)
                report.drift.append(drift)
    return report


def reconcile_stale(*, now: datetime | None = None) -> ReconcileReport:
    """What beat runs: the rows not read from Stripe for PAYDESK_RECONCILE_STALE_MINUTES, at
    most PAYDESK_RECONCILE_BATCH of each kind; then the refunds Stripe never answered."""
    now = now or timezone.now()
    report = reconcile(
        stale_before=now - timedelta(minutes=settings.PAYDESK_RECONCILE_STALE_MINUTES),
        limit=settings.PAYDESK_RECONCILE_BATCH,
        now=now,
    )
    report.refunds_resent = services.refunds_submit_unanswered(
        older_than=UNANSWERED_REFUND_AGE, now=now, limit=settings.PAYDESK_RECONCILE_BATCH
    )
    return report
