"""The back office's view of payments. Money state is read-only here: it changes only through
services (refunds and disputes get their own confirmed actions)."""

import json

from django.contrib import admin
from django.utils.html import format_html

from orders.admin import OrderAdmin, ReadOnlyInline, money
from orders.models import Order
from payments.models import (
    Customer,
    Dispute,
    Payment,
    PaymentEvent,
    PaymentMethod,
    Refund,
    WebhookEvent,
)
from payments.webhooks.processing import webhook_event_reprocess


class ReadOnlyAdmin(admin.ModelAdmin):
    """Mirrors of Stripe's objects: viewable, never added, edited or deleted by hand."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class AmountDisplayMixin:
    @admin.display(description="Amount", ordering="amount")
    def amount_display(self, obj):
        return money(obj.amount, obj.currency)


class PaymentEventInline(ReadOnlyInline):
    model = PaymentEvent
    verbose_name_plural = "Timeline (ledger)"
    fields = ("created_at", "kind", "amount_display", "message", "source", "actor", "reference")
    readonly_fields = fields
    show_change_link = False

    @admin.display(description="Amount")
    def amount_display(self, obj):
        return money(obj.amount, obj.payment.currency)


class RefundInline(ReadOnlyInline):
    model = Refund
    fields = ("stripe_id", "amount", "status", "reason", "failure_reason", "created_by",
              "created_at")
    readonly_fields = fields


class DisputeInline(ReadOnlyInline):
    model = Dispute
    fields = ("stripe_id", "amount", "status", "reason", "evidence_due_by")
    readonly_fields = fields


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
    list_display = ("created_at", "payment", "kind", "amount", "source", "actor")
    list_filter = ("kind", "source")
    search_fields = ("payment__stripe_id", "payment__order__number", "reference")
    list_select_related = ("payment", "actor")


@admin.register(Refund)
class RefundAdmin(AmountDisplayMixin, ReadOnlyAdmin):
    list_display = ("__str__", "payment", "amount_display", "status", "reason", "created_at")
    list_filter = ("status", "reason")
    search_fields = ("stripe_id", "payment__stripe_id", "payment__order__number")
    list_select_related = ("payment",)


@admin.register(Dispute)
class DisputeAdmin(AmountDisplayMixin, ReadOnlyAdmin):
    list_display = ("stripe_id", "payment", "amount_display", "status", "reason",
                    "evidence_due_by")
    list_filter = ("status", "reason")
    search_fields = ("stripe_id", "payment__stripe_id", "payment__order__number")
    list_select_related = ("payment",)


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


@admin.register(WebhookEvent)
class WebhookEventAdmin(ReadOnlyAdmin):
    list_display = ("stripe_id", "type", "status", "attempts", "received_at", "processed_at",
                    "next_attempt_at")
    list_filter = ("status", "type")
    search_fields = ("stripe_id", "type")
    date_hierarchy = "received_at"
    actions = ["reprocess"]
    fields = ("stripe_id", "type", "subject", "status", "attempts", "last_error", "received_at",
              "processed_at", "next_attempt_at", "payload_pretty")
    readonly_fields = fields

    def has_change_permission(self, request, obj=None):
        # The reprocess action needs "change"; the detail page never has a Save button, which
        # would write the whole row back over what a worker wrote meanwhile.
        return obj is None and request.user.has_perm("payments.change_webhookevent")

    @admin.display(description="Payload")
    def payload_pretty(self, obj):
        text = json.dumps(obj.payload, indent=2, sort_keys=True)
        return format_html("<pre style='white-space:pre-wrap'>{}</pre>", text)

    @admin.action(description="Reprocess selected events", permissions=["change"])
    def reprocess(self, request, queryset):
        count = 0
        for event in queryset:
            webhook_event_reprocess(event=event)
            count += 1
        self.message_user(request, f"{count} event(s) queued for processing.")


class PaymentInline(ReadOnlyInline):
    model = Payment
    fields = ("stripe_id", "status", "amount", "amount_received", "amount_refunded",
              "card_brand", "card_last4", "created_at")
    readonly_fields = fields


class OrderWithPaymentsAdmin(OrderAdmin):
    """The order page with its payments: payments extends the orders app's admin, so orders
    need not import payments."""

    inlines = [*OrderAdmin.inlines, PaymentInline]


admin.site.unregister(Order)
admin.site.register(Order, OrderWithPaymentsAdmin)
