"""What every back-office page of payments shares."""

from django.contrib import admin

from orders.admin import money


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
