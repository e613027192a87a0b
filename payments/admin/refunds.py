"""Refunds: the list, and the payment page's refund rows."""

from django.contrib import admin

from orders.admin import ReadOnlyInline
from payments.admin.base import AmountDisplayMixin, ReadOnlyAdmin
from payments.models import Refund


class RefundInline(AmountDisplayMixin, ReadOnlyInline):
    model = Refund
    fields = ("stripe_id", "amount_display", "status", "reason", "failure_reason", "created_by",
              "created_at")
    readonly_fields = fields


@admin.register(Refund)
class RefundAdmin(AmountDisplayMixin, ReadOnlyAdmin):
    list_display = ("__str__", "payment", "amount_display", "status", "reason", "created_at")
    list_filter = ("status", "reason")
    search_fields = ("stripe_id", "payment__stripe_id", "payment__order__number")
    list_select_related = ("payment",)
