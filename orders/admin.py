from django.contrib import admin

from money import Money
from orders.models import Order, OrderLine, Price, Product


def money(amount: int | None, currency: str) -> str:
    return "—" if amount is None else Money(amount, currency).format()


class ReadOnlyInline(admin.TabularInline):
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
    fields = ("description", "quantity", "unit_amount", "amount")
    readonly_fields = fields
    show_change_link = False


@admin.register(Order)
class OrderAdmin(admin.ModelAdmin):
    list_display = ("number", "customer", "total_display", "status", "created_at", "paid_at")
    list_filter = ("status", "currency", "created_at")
    search_fields = ("number", "customer__username", "customer__email")
    list_select_related = ("customer",)
    date_hierarchy = "created_at"
    # payments/admin.py registers this admin again with the order's payments inline: orders
    # imports nothing of payments.
    inlines = [OrderLineInline]
    fields = ("number", "customer", "currency", "total_display", "status", "created_at",
              "paid_at")
    readonly_fields = fields

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
