"""What the lists flag on a payment (refunded, partially refunded, disputed): the badge, the
filter that finds the flagged payments and the CSV column, from one definition each."""

from django.contrib import admin
from django.db.models import F, Q
from django.utils.html import format_html, format_html_join

from payments.selectors import DISPUTE_OPEN_STATUSES

PARTIALLY_REFUNDED = "partially refunded"
REFUNDED = "refunded"
DISPUTED = "disputed"

# Each partial index behind these (payments/migrations/0007_admin_lists.py) has the same
# condition as its filter, so PostgreSQL can use it.
_REFUNDS = {
    "none": Q(amount_refunded=0),
    "partially": Q(amount_refunded__gt=0, amount_refunded__lt=F("amount_received")),
    "fully": Q(amount_refunded__gt=0, amount_refunded__gte=F("amount_received")),
}
_DISPUTES = {
    "any": ~Q(dispute_status=""),
    "open": Q(dispute_status__in=DISPUTE_OPEN_STATUSES),
    "won": Q(dispute_status="won"),
    "lost": Q(dispute_status="lost"),
    "none": Q(dispute_status=""),
}


def refund_state(received: int, refunded: int) -> str:
    """"refunded", "partially refunded" or "" (nothing refunded)."""
    if refunded <= 0:
        return ""
    return REFUNDED if refunded >= received else PARTIALLY_REFUNDED


def payment_badges(payment) -> str:
    """The payment's badges as HTML ("" when it has none)."""
    badges = []
    refunded = refund_state(payment.amount_received, payment.amount_refunded)
    if refunded:
        badges.append((refunded.replace(" ", "-"), "", refunded))
    if payment.dispute_status:
        status = payment.dispute_status.replace("_", " ")
        badges.append(("disputed", f"Dispute: {status}", DISPUTED))
    return format_html_join(
        " ", '<span class="badge badge-{}" title="{}">{}</span>', badges
    )


class RefundedFilter(admin.SimpleListFilter):
    title = "refunded"
    parameter_name = "refunded"

    def lookups(self, request, model_admin):
        return [("none", "Not refunded"), ("partially", "Partially refunded"),
                ("fully", "Fully refunded")]

    def queryset(self, request, queryset):
        if self.value() in _REFUNDS:
            return queryset.filter(_REFUNDS[self.value()])
        return queryset


class DisputedFilter(admin.SimpleListFilter):
    title = "disputed"
    parameter_name = "disputed"

    def lookups(self, request, model_admin):
        return [("any", "Disputed"), ("open", "Dispute open"), ("won", "Dispute won"),
                ("lost", "Dispute lost"), ("none", "Never disputed")]

    def queryset(self, request, queryset):
        if self.value() in _DISPUTES:
            return queryset.filter(_DISPUTES[self.value()])
        return queryset


def status_with_badges(payment) -> str:
    """The payment's status, then its badges."""
    badges = payment_badges(payment)
    if not badges:
        return payment.get_status_display()
    return format_html("{} {}", payment.get_status_display(), badges)
