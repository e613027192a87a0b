"""Payments, their ledger timeline, customers and saved cards; the order page's payments.

Money state is read-only here: it changes only through services (refunds and disputes get their
own confirmed actions, in refunds.py and disputes.py). The payments list is built for a million
rows: every filter and search has an index behind it, and nothing counts the whole table
(orders.admin_lists)."""

import logging
from urllib.parse import urlencode

from django.contrib import admin
from django.contrib.admin.options import IncorrectLookupParameters
from django.core.exceptions import PermissionDenied
from django.db.models import F, Q
from django.http import HttpResponseRedirect, StreamingHttpResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html

from orders.admin import OrderAdmin, ReadOnlyInline, money
from orders.admin_lists import (
    CARD_LAST4,
    SEARCH_FALLBACK_WINDOW,
    CurrencyFilter,
    DateFilter,
    IndexedValuesFilter,
    RoutedSearchMixin,
    email_route,
    order_number_route,
    stripe_prefix,
)
from orders.models import Order
from payments.admin.badges import DisputedFilter, RefundedFilter, status_with_badges
from payments.admin.base import AmountDisplayMixin, ReadOnlyAdmin
from payments.admin.disputes import DisputeInline
from payments.admin.exports import payments_csv
from payments.admin.refunds import RefundActionsMixin, RefundInline
from payments.models import Customer, Payment, PaymentEvent, PaymentMethod

logger = logging.getLogger(__name__)

SEARCH_HELP = (
    "4 digits: the card's last 4 · pi_… or ch_…: the Stripe id · an e-mail: the customer's · "
    f"PD-…: the order number. Any other text is looked for in the {SEARCH_FALLBACK_WINDOW:,} "
    "newest payments."
)
EVENTS_SEARCH_HELP = (
    "Finds the entries of the payments the payments list's search finds (card's last 4, pi_…, "
    f"ch_…, e-mail, PD-…). Any other text is looked for in the {SEARCH_FALLBACK_WINDOW:,} "
    "newest entries."
)


def payment_search_route(term: str, to_payment: str = "") -> Q | None:
    """The indexed lookup for a search term, by its shape; `to_payment` is the path from the
    listed model to its payment ("payment__" for the ledger)."""
    prefix = stripe_prefix(term)
    if prefix == "pi":
        return Q(**{f"{to_payment}stripe_id": term})
    if prefix == "ch":
        return Q(**{f"{to_payment}stripe_charge_id": term})
    if CARD_LAST4.fullmatch(term):
        return Q(**{f"{to_payment}card_last4": term})
    return order_number_route(term, f"{to_payment}order__number") or email_route(
        term, f"{to_payment}order__customer__email"
    )


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


class SucceededDateFilter(DateFilter):
    title = "succeeded"


class PaymentAmountsMixin:
    """What a payment received and has refunded, in its currency (the page and the order's
    payments inline)."""

    @admin.display(description="Received")
    def received_display(self, obj):
        return money(obj.amount_received, obj.currency)

    @admin.display(description="Refunded")
    def refunded_display(self, obj):
        return money(obj.amount_refunded, obj.currency)


@admin.register(Payment)
class PaymentAdmin(RefundActionsMixin, RoutedSearchMixin, PaymentAmountsMixin, AmountDisplayMixin,
                   ReadOnlyAdmin):
    list_display = ("__str__", "order", "customer_email", "amount_display", "status_display",
                    "card", "created_at")
    list_filter = ("status", CurrencyFilter, ("created_at", DateFilter),
                   ("succeeded_at", SucceededDateFilter), RefundedFilter, DisputedFilter)
    search_fields = ("stripe_id", "order__number", "order__customer__email",
                     "order__customer__username")
    search_help_text = SEARCH_HELP
    list_select_related = ("order__customer",)
    ordering = ("-created_at", "-id")
    # Only orders an index serves: any other column would sort every matching row.
    sortable_by = ("created_at",)
    # Extends django-object-actions' list, so per-object tools added to this admin show beside
    # the export button.
    change_list_template = "admin/payments/payment/change_list.html"
    inlines = [PaymentEventInline, RefundInline, DisputeInline]
    fieldsets = [
        (None, {"fields": ("order", "stripe_id", "status_display", "amount_display",
                           "received_display", "refunded_display", "reserved_display",
                           "dispute_status")}),
        ("Card", {"fields": ("card_brand", "card_last4", "card_exp_month", "card_exp_year")}),
        ("Last failure", {"fields": ("failure_code", "decline_code", "failure_message")}),
        ("Stripe", {"classes": ["collapse"],
                    "fields": ("webhook_events", "idempotency_key", "stripe_charge_id",
                               "confirm_attempts", "stripe_object", "created_at", "updated_at",
                               "succeeded_at", "stripe_checked_at")}),
    ]

    def get_queryset(self, request):
        # The raw PaymentIntent is kilobytes a row; only the payment's own page shows it.
        return super().get_queryset(request).defer("stripe_object")

    def search_route(self, term):
        return payment_search_route(term)

    def get_urls(self):
        export = path("export.csv", self.admin_site.admin_view(self.export_csv_view),
                      name="payments_payment_export")
        return [export, *super().get_urls()]

    def export_csv_view(self, request):
        """The list's current filters, search and order as CSV (the export button's link carries
        the list's query string)."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        try:
            changelist = self.get_changelist_instance(request)
        except IncorrectLookupParameters:
            return HttpResponseRedirect(reverse("admin:payments_payment_changelist") + "?e=1")
        logger.info("payments exported as CSV by %s: %s", request.user.pk,
                    request.GET.urlencode() or "all")
        stamp = timezone.localtime().strftime("%Y%m%d-%H%M")
        return StreamingHttpResponse(
            payments_csv(changelist.queryset),
            content_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="payments-{stamp}.csv"'},
        )

    @admin.display(description="Customer")
    def customer_email(self, obj):
        return obj.order.customer.email or obj.order.customer.get_username()

    @admin.display(description="Status")
    def status_display(self, obj):
        return status_with_badges(obj)


    @admin.display(description="Refunds under way")
    def reserved_display(self, obj):
        return money(obj.amount_refund_reserved, obj.currency)

    @admin.display(description="Card")
    def card(self, obj):
        return f"{obj.card_brand} •••• {obj.card_last4}" if obj.card_last4 else "—"

    @admin.display(description="Webhook events")
    def webhook_events(self, obj):
        if not obj.stripe_id:
            return "—"
        # The webhook log's search finds every event about a PaymentIntent by its id.
        url = reverse("admin:payments_webhookevent_changelist") + "?" + urlencode(
            {"q": obj.stripe_id}
        )
        return format_html('<a href="{}">The events Stripe sent about {}</a>', url,
                           obj.stripe_id)


class SourceFilter(IndexedValuesFilter):
    title = "source"
    parameter_name = column = "source"


@admin.register(PaymentEvent)
class PaymentEventAdmin(RoutedSearchMixin, ReadOnlyAdmin):
    list_display = ("created_at", "payment", "kind", "amount_display", "source", "actor")
    list_filter = ("kind", SourceFilter, ("created_at", DateFilter))
    search_fields = ("payment__stripe_id", "payment__order__number", "reference")
    search_help_text = EVENTS_SEARCH_HELP
    list_select_related = ("payment", "actor")
    ordering = ("-created_at", "-id")
    sortable_by = ("created_at",)

    def get_queryset(self, request):
        return super().get_queryset(request).defer("payment__stripe_object")

    def search_route(self, term):
        return payment_search_route(term, "payment__")

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


class PaymentInline(PaymentAmountsMixin, AmountDisplayMixin, ReadOnlyInline):
    model = Payment
    fields = ("stripe_id", "status", "amount_display", "received_display", "refunded_display",
              "card_brand", "card_last4", "created_at")
    readonly_fields = fields


class OrderWithPaymentsAdmin(OrderAdmin):
    """The order page with its payments: payments extends the orders app's admin, so orders
    need not import payments."""

    inlines = [*OrderAdmin.inlines, PaymentInline]


admin.site.unregister(Order)
admin.site.register(Order, OrderWithPaymentsAdmin)
