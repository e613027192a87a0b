from django.contrib import admin

from money import Money
from orders.admin_lists import (
    SEARCH_FALLBACK_WINDOW,
    BoundedCountPaginator,
    CurrencyFilter,
    DateFilter,
    RoutedSearchMixin,
    email_route,
    order_number_route,
)
from orders.models import Order, OrderLine, Price, Product


def money(amount: int | None, currency: str) -> str:
    return "—" if amount is None else Money(amount, currency).format()


class ReadOnlyInline(admin.TabularInline):
    """Rows shown as a plain table, each once: Django's tabular template would print each row's
    name again above it (the caption it keeps for editable rows)."""

    template = "admin/edit_inline/tabular_readonly.html"
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class PriceInline(admin.TabularInline):
    model = Price
    extra = 1
    fields = ("currency", "unit_amount", "active")


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin):
    list_display = ("name", "slug", "active", "created_at")
    list_filter = ("active",)
    search_fields = ("name", "slug")
    prepopulated_fields = {"slug": ("name",)}
    inlines = [PriceInline]


class OrderLineInline(ReadOnlyInline):
    model = OrderLine
    fields = ("description", "quantity", "unit_amount_display", "amount_display")
    readonly_fields = fields
    show_change_link = False

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("order")

    @admin.display(description="Unit price")
    def unit_amount_display(self, obj):
        return money(obj.unit_amount, obj.order.currency)

    @admin.display(description="Amount")
    def amount_display(self, obj):
        return money(obj.amount, obj.order.currency)


@admin.register(Order)
class OrderAdmin(RoutedSearchMixin, admin.ModelAdmin):
    list_display = ("number", "customer", "total_display", "status", "created_at", "paid_at")
    list_filter = ("status", CurrencyFilter, ("created_at", DateFilter))
    search_fields = ("number", "customer__username", "customer__email")
    search_help_text = (
        "An order number (PD-…) or a customer's e-mail finds exactly that; any other text is "
        f"looked for in the {SEARCH_FALLBACK_WINDOW:,} newest orders."
    )
    list_select_related = ("customer",)
    ordering = ("-created_at", "-id")
    paginator = BoundedCountPaginator
    show_full_result_count = False
    # payments/admin.py registers this admin again with the order's payments inline: orders
    # imports nothing of payments.
    inlines = [OrderLineInline]
    fields = ("number", "customer", "currency", "total_display", "status", "created_at",
              "paid_at")
    readonly_fields = fields

    def search_route(self, term):
        return order_number_route(term, "number") or email_route(term, "customer__email")

    def has_add_permission(self, request):
        # Orders are created by customers through order_create (totals computed server-side).
        return False

    def has_change_permission(self, request, obj=None):
        # Every field is written by services (status follows the payments): a Save would write
        # the row back as the form loaded it, over a payment that completed meanwhile.
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description="Total", ordering="total_amount")
    def total_display(self, obj):
        return money(obj.total_amount, obj.currency)
