"""Payments, their ledger timeline, customers and saved cards; the order page's payments.

Money state is read-only here: it changes only through services (refunds and disputes get their
own confirmed actions, in refunds.py and disputes.py)."""

from django.contrib import admin
from django.db.models import F

from orders.admin import OrderAdmin, ReadOnlyInline, money
from orders.models import Order
from payments.admin.base import AmountDisplayMixin, ReadOnlyAdmin
from payments.admin.disputes import DisputeInline
from payments.admin.refunds import RefundInline
from payments.models import Customer, Payment, PaymentEvent, PaymentMethod


class PaymentEventInline(ReadOnlyInline):
    model = PaymentEvent
    verbose_name_plural = "Timeline (ledger)"
    fields = ("created_at", "kind", "amount_display", "message", "source", "actor", "reference")
    readonly_fields = fields
    show_change_link = False

    def get_queryset(self, request):
        # The currency for the amounts, without loading the payment again for every entry.
        return (
            super().get_queryset(request)
            .select_related("actor")
            .annotate(currency=F("payment__currency"))
        )

    @admin.display(description="Amount")
    def amount_display(self, obj):
        return money(obj.amount, obj.currency)


@admin.register(Payment)
class PaymentAdmin(AmountDisplayMixin, ReadOnlyAdmin):
    list_display = ("__str__", "order", "amount_display", "status", "card", "refunded_display",
                    "created_at")
    list_filter = ("status", "currency", "created_at")
    search_fields = ("stripe_id", "order__number", "order__customer__username",
                     "order__customer__email", "card_last4")
    list_select_related = ("order",)
    date_hierarchy = "created_at"
    inlines = [PaymentEventInline, RefundInline, DisputeInline]
    fieldsets = [
        (None, {"fields": ("order", "stripe_id", "status", "amount_display",
                           "received_display", "refunded_display")}),
        ("Card", {"fields": ("card_brand", "card_last4", "card_exp_month", "card_exp_year")}),
        ("Last failure", {"fields": ("failure_code", "decline_code", "failure_message")}),
        ("Stripe", {"classes": ["collapse"],
                    "fields": ("idempotency_key", "stripe_charge_id", "confirm_attempts",
                               "stripe_object", "created_at", "updated_at",
                               "succeeded_at")}),
    ]

    @admin.display(description="Received")
    def received_display(self, obj):
        return money(obj.amount_received, obj.currency)

    @admin.display(description="Refunded")
    def refunded_display(self, obj):
        return money(obj.amount_refunded, obj.currency)

    @admin.display(description="Card")
    def card(self, obj):
        return f"{obj.card_brand} •••• {obj.card_last4}" if obj.card_last4 else "—"


@admin.register(PaymentEvent)
class PaymentEventAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "payment", "kind", "amount_display", "source", "actor")
    list_filter = ("kind", "source")
    search_fields = ("payment__stripe_id", "payment__order__number", "reference")
    list_select_related = ("payment", "actor")

    @admin.display(description="Amount")
    def amount_display(self, obj):
        return money(obj.amount, obj.payment.currency)


@admin.register(Customer)
class CustomerAdmin(ReadOnlyAdmin):
    list_display = ("user", "stripe_id", "created_at")
    search_fields = ("user__username", "user__email", "stripe_id")
    list_select_related = ("user",)


@admin.register(PaymentMethod)
class PaymentMethodAdmin(ReadOnlyAdmin):
    list_display = ("__str__", "customer", "exp_month", "exp_year", "detached_at")
    search_fields = ("stripe_id", "last4", "customer__user__username")
    list_select_related = ("customer__user",)


class PaymentInline(AmountDisplayMixin, ReadOnlyInline):
    model = Payment
    fields = ("stripe_id", "status", "amount_display", "received_display", "refunded_display",
              "card_brand", "card_last4", "created_at")
    readonly_fields = fields

    @admin.display(description="Received")
    def received_display(self, obj):
        return money(obj.amount_received, obj.currency)

    @admin.display(description="Refunded")
    def refunded_display(self, obj):
        return money(obj.amount_refunded, obj.currency)


class OrderWithPaymentsAdmin(OrderAdmin):
    """The order page with its payments: payments extends the orders app's admin, so orders
    need not import payments."""

    inlines = [*OrderAdmin.inlines, PaymentInline]


admin.site.unregister(Order)
admin.site.register(Order, OrderWithPaymentsAdmin)
