"""Reads for the customer's order pages and the shop. Every order read is scoped to its customer
in the query itself, so another customer's order is simply not found (404), staff included."""

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Prefetch, QuerySet

from orders.models import Order, Price, Product


def order_list_for(*, user: AbstractBaseUser) -> QuerySet[Order]:
    """The user's orders, newest first, with their lines (for the item summary)."""
    return Order.objects.filter(customer=user).prefetch_related("lines").order_by("-created_at")


def order_detail_for(*, user: AbstractBaseUser) -> QuerySet[Order]:
    """The user's orders with lines and payments, to `get(number=...)` from."""
    return Order.objects.filter(customer=user).prefetch_related("lines", "payments")


def order_for_checkout(*, user: AbstractBaseUser) -> QuerySet[Order]:
    """The user's orders with their lines, to `get(checkout_token=...)` from."""
    return Order.objects.filter(customer=user).prefetch_related("lines")


def prices_for_sale() -> QuerySet[Price]:
    """Prices a customer may buy: active, of an active product."""
    return Price.objects.filter(active=True, product__active=True).select_related("product")


def products_for_sale() -> QuerySet[Product]:
    """Active products that have at least one active price, with those prices."""
    return (
        Product.objects.filter(active=True, prices__active=True)
        .distinct()
        .prefetch_related(
            Prefetch(
                "prices", queryset=Price.objects.filter(active=True), to_attr="prices_for_sale"
            )
        )
        .order_by("name")
    )
