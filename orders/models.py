"""The catalogue (Product, Price) and what customers buy (Order, OrderLine).

Amounts are integers in the currency's minor unit (money/__init__.py); an order's total is
computed on the server from its lines, never taken from a client.
"""

import secrets

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import F, Q
from django.db.models.functions import Mod
from django.db.models.lookups import Exact
from django.urls import reverse

from money import (
    KNOWN_CURRENCIES,
    THREE_DECIMAL_CURRENCIES,
    Money,
    exponent,
    validate_amount,
)

CURRENCY_CODE = Q(currency__regex=r"^[A-Z]{3}$")

PRICE_NOT_POSITIVE = "A price must be more than zero."

# The money rules (money/__init__.py) as conditions the database checks and the shop filters by.
# The currency list comes from Babel's CLDR data: a Babel upgrade that changes it shows up as a
# missing migration in `make lint`.
PRICE_CURRENCY_KNOWN = Q(currency__in=sorted(KNOWN_CURRENCIES))
PRICE_AMOUNT_POSITIVE = Q(unit_amount__gt=0)
PRICE_THREE_DECIMAL_ENDS_IN_0 = ~Q(currency__in=sorted(THREE_DECIMAL_CURRENCIES)) | Q(
    Exact(Mod("unit_amount", 10), 0)
)
PRICE_FOLLOWS_MONEY_RULES = (
    PRICE_CURRENCY_KNOWN & PRICE_AMOUNT_POSITIVE & PRICE_THREE_DECIMAL_ENDS_IN_0
)


def new_order_number() -> str:
    return "PD-" + secrets.token_hex(5).upper()


def new_checkout_token() -> str:
    return secrets.token_urlsafe(24)


TAX_RATE_IN_RANGE = Q(tax_rate__gte=0, tax_rate__lt=100)


class Product(models.Model):
    name = models.CharField(max_length=200)
    slug = models.SlugField(unique=True)
    description = models.TextField(blank=True)
    tax_rate = models.DecimalField(
        max_digits=5, decimal_places=2, default=0,
        help_text="Tax included in the price, in percent (e.g. 20.00 for 20% VAT); 0 for none. "
        "Receipts show the tax each rate includes.",
    )
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(condition=TAX_RATE_IN_RANGE, name="product_tax_rate_range"),
        ]

    def __str__(self) -> str:
        return self.name


class Price(models.Model):
    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="prices")
    currency = models.CharField(max_length=3, help_text="ISO 4217 code, upper case")
    unit_amount = models.PositiveBigIntegerField(help_text="In the currency's minor unit")
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["product__name", "currency"]
        constraints = [
            models.CheckConstraint(condition=PRICE_CURRENCY_KNOWN, name="price_currency_known"),
            models.CheckConstraint(condition=PRICE_AMOUNT_POSITIVE, name="price_amount_positive"),
            models.CheckConstraint(
                condition=PRICE_THREE_DECIMAL_ENDS_IN_0, name="price_three_decimal_ends_in_0"
            ),
        ]

    def __str__(self) -> str:
        try:
            amount = Money(self.unit_amount, self.currency).format()
        except (TypeError, ValueError):
            # A row from before the money rules: still named, so the admin can show and fix it.
            amount = f"{self.unit_amount} {self.currency}"
        return f"{self.product.name} · {amount}"

    def clean(self) -> None:
        """The money rules, each on its field, so the admin shows the error next to it."""
        try:
            exponent(self.currency)
        except ValueError as exc:
            raise ValidationError({"currency": str(exc)}) from exc
        if type(self.unit_amount) is not int:
            return  # the field's own validation reports it
        if self.unit_amount <= 0:
            raise ValidationError({"unit_amount": PRICE_NOT_POSITIVE})
        try:
            validate_amount(self.unit_amount, self.currency)
        except ValueError as exc:
            raise ValidationError({"unit_amount": str(exc)}) from exc


class Order(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", "Pending payment"
        PAID = "paid", "Paid"
        PARTIALLY_REFUNDED = "partially_refunded", "Partially refunded"
        REFUNDED = "refunded", "Refunded"
        FAILED = "failed", "Payment failed"
        CANCELED = "canceled", "Canceled"

    PAYABLE = (Status.PENDING, Status.FAILED)

    number = models.CharField(max_length=20, unique=True, default=new_order_number)
    checkout_token = models.CharField(max_length=64, unique=True, default=new_checkout_token)
    submission_token = models.UUIDField(
        null=True,
        blank=True,
        editable=False,
        help_text="The shop form submission that created this order: a second submission of "
        "the same form returns this order instead of creating another",
    )
    customer = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="orders"
    )
    currency = models.CharField(max_length=3)
    total_amount = models.PositiveBigIntegerField(help_text="Sum of the lines, minor units")
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    paid_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(condition=CURRENCY_CODE, name="order_currency_iso"),
            models.UniqueConstraint(
                fields=["customer", "submission_token"], name="order_unique_submission"
            ),
        ]
        indexes = [
            models.Index(fields=["customer", "-created_at"]),
            # The back office's list of orders (orders/admin.py), at a million orders.
            models.Index(fields=["-created_at", "-id"], name="order_newest"),
            models.Index(fields=["status", "-created_at"], name="order_status_newest"),
            models.Index(fields=["currency", "-created_at"], name="order_currency_newest"),
        ]

    def __str__(self) -> str:
        return self.number

    def get_absolute_url(self) -> str:
        return reverse("orders:detail", kwargs={"number": self.number})

    def get_checkout_url(self) -> str:
        return reverse("payments:checkout", kwargs={"token": self.checkout_token})

    @property
    def total(self) -> Money:
        return Money(self.total_amount, self.currency)

    def is_payable(self) -> bool:
        return self.status in self.PAYABLE


class OrderLine(models.Model):
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="lines")
    price = models.ForeignKey(Price, on_delete=models.PROTECT, related_name="order_lines")
    description = models.CharField(max_length=200)
    quantity = models.PositiveIntegerField()
    unit_amount = models.PositiveBigIntegerField()
    amount = models.PositiveBigIntegerField()
    tax_rate = models.DecimalField(
        max_digits=5, decimal_places=2, default=0,
        help_text="The product's tax rate (percent, included in the amount) when ordered",
    )

    class Meta:
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(condition=TAX_RATE_IN_RANGE, name="line_tax_rate_range"),
            models.CheckConstraint(condition=Q(quantity__gt=0), name="line_quantity_positive"),
            models.CheckConstraint(
                condition=Q(amount=F("unit_amount") * F("quantity")), name="line_amount_is_product"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.quantity} x {self.description}"
