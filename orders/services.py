"""Writes to orders. Totals are computed here from catalogue prices, never taken from a client."""

import uuid
from collections.abc import Iterable

from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction

from money import Money, sum_money
from orders.models import Order, OrderLine, Price

EMPTY_ORDER = "An order needs at least one item."
MIXED_CURRENCIES = "All items of one order must be priced in the same currency."
INACTIVE_PRICE = "This item is no longer for sale."
BAD_QUANTITY = "Quantity must be a whole number from 1 to 100."
PRICE_UNAVAILABLE = "This item cannot be bought right now: its price is being corrected."
SUBMISSION_REUSED = "This form was already used for another order: please buy again from the shop."
MAX_QUANTITY = 100


class OrderError(ValueError):
    """An order cannot be created as asked; the message is safe to show."""


def order_create(
    *,
    customer: AbstractBaseUser,
    items: Iterable[tuple[Price, int]],
    submission_token: uuid.UUID | None = None,
) -> Order:
    """Creates a pending order for `customer` with one line per (price, quantity).

    With a `submission_token` (one per rendered shop form), the same submission made again
    (a double click, a resent POST, a concurrent request) returns the order it created first;
    the same token with other items raises OrderError(SUBMISSION_REUSED). A unique
    (customer, submission_token) constraint makes this hold across processes."""
    items = list(items)
    if not items:
        raise OrderError(EMPTY_ORDER)
    currencies = {price.currency for price, _ in items}
    if len(currencies) != 1:
        raise OrderError(MIXED_CURRENCIES)
    currency = currencies.pop()
    lines = []
    for price, quantity in items:
        if not price.active or not price.product.active:
            raise OrderError(INACTIVE_PRICE)
        if isinstance(quantity, bool) or not isinstance(quantity, int):
            raise OrderError(BAD_QUANTITY)
        if not 1 <= quantity <= MAX_QUANTITY:
            raise OrderError(BAD_QUANTITY)
        try:
            amount = Money(price.unit_amount, currency) * quantity
        except (TypeError, ValueError) as exc:
            # A catalogue row that breaks the money rules (written before they were checked).
            raise OrderError(PRICE_UNAVAILABLE) from exc
        lines.append((price, quantity, amount))
    total = sum_money((amount for _, _, amount in lines), currency)
    # No look for the submission's order first: a submission is nearly always new, and one
    # made again fails the insert on the unique constraint, answered below.
    try:
        with transaction.atomic():
            order = Order.objects.create(
                customer=customer,
                currency=currency,
                total_amount=total.amount,
                submission_token=submission_token,
            )
            OrderLine.objects.bulk_create(
                OrderLine(
                    order=order,
                    price=price,
                    description=price.product.name,
                    quantity=quantity,
                    unit_amount=price.unit_amount,
                    amount=amount.amount,
                    tax_rate=price.product.tax_rate,
                )
                for price, quantity, amount in lines
            )
    except IntegrityError:
        # The same submission made before (or concurrently: the insert waited for it on the
        # unique constraint), whose order is now visible.
        existing = (
            _order_for_submission(customer=customer, submission_token=submission_token)
            if submission_token is not None
            else None
        )
        if existing is None:
            raise
        return _same_submission(existing, lines)
    return order


def _order_for_submission(
    *, customer: AbstractBaseUser, submission_token: uuid.UUID
) -> Order | None:
    return (
        Order.objects.filter(customer=customer, submission_token=submission_token)
        .prefetch_related("lines")
        .first()
    )


def _same_submission(order: Order, lines: list[tuple[Price, int, Money]]) -> Order:
    """`order` if it was made from exactly these (price, quantity) lines, else OrderError."""
    asked = sorted((price.pk, quantity) for price, quantity, _ in lines)
    made = sorted((line.price_id, line.quantity) for line in order.lines.all())
    if asked != made:
        raise OrderError(SUBMISSION_REUSED)
    return order

