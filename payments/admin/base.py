"""What every back-office page of payments shares."""

from django.contrib import admin

from orders.admin import money
from orders.admin_lists import BoundedCountPaginator


class ReadOnlyAdmin(admin.ModelAdmin):
    """Mirrors of Stripe's objects: viewable, never added, edited or deleted by hand. Their lists
    grow to millions of rows, so they never count a whole table (orders.admin_lists)."""

    paginator = BoundedCountPaginator
    show_full_result_count = False

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
