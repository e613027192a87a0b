"""Disputes: the list, and the payment page's dispute rows."""

from django.contrib import admin

from orders.admin import ReadOnlyInline
from payments.admin.base import AmountDisplayMixin, ReadOnlyAdmin
from payments.models import Dispute


class DisputeInline(AmountDisplayMixin, ReadOnlyInline):
    model = Dispute
    fields = ("stripe_id", "amount_display", "status", "reason", "evidence_due_by")
    readonly_fields = fields


@admin.register(Dispute)
class DisputeAdmin(AmountDisplayMixin, ReadOnlyAdmin):
    list_display = ("stripe_id", "payment", "amount_display", "status", "reason",
                    "evidence_due_by")
    list_filter = ("status", "reason")
    search_fields = ("stripe_id", "payment__stripe_id", "payment__order__number")
    list_select_related = ("payment",)
