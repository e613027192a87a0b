"""Reads for the customer's order pages and the shop. Every order read is scoped to its customer
in the query itself, so another customer's order is simply not found (404), staff included."""

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Prefetch, QuerySet

from orders.models import PRICE_FOLLOWS_MONEY_RULES, Order, Price, Product


def order_list_for(*, user: AbstractBaseUser) -> QuerySet[Order]:
    """The user's orders, newest first (a stable order to paginate), with their lines (for the
    item summary)."""
    return (
        Order.objects.filter(customer=user)
        .prefetch_related("lines")
        .order_by("-created_at", "-id")
    )


def orders_of(*, user: AbstractBaseUser) -> QuerySet[Order]:
    """The user's orders alone (no lines, no payments): to find the one a service acts on."""
    return Order.objects.filter(customer=user)


def order_detail_for(*, user: AbstractBaseUser) -> QuerySet[Order]:
    """The user's orders with lines and payments, to `get(number=...)` from."""
    return Order.objects.filter(customer=user).prefetch_related("lines", "payments")


def order_for_checkout(*, user: AbstractBaseUser) -> QuerySet[Order]:
    """The user's orders with their lines, to `get(checkout_token=...)` from."""
    return Order.objects.filter(customer=user).prefetch_related("lines")


def _sellable_prices() -> QuerySet[Price]:
    # The database refuses prices that break the money rules; one written before the rules
    # existed is skipped here rather than break the shop for every customer.
    return Price.objects.filter(PRICE_FOLLOWS_MONEY_RULES, active=True)


def prices_for_sale() -> QuerySet[Price]:
    """Prices a customer may buy: active, following the money rules, of an active product."""
    return _sellable_prices().filter(product__active=True).select_related("product")


def products_for_sale() -> QuerySet[Product]:
    """Active products that have at least one price for sale, with those prices."""
    return (
        Product.objects.filter(active=True, pk__in=_sellable_prices().values("product_id"))
        .prefetch_related(
            Prefetch("prices", queryset=_sellable_prices(), to_attr="prices_for_sale")
        )
        .order_by("name")
    )
