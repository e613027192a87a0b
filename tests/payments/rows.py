"""Rows for the back office's tests, written straight to the database (no Stripe): payments in
any state, at any time, in bulk when a test needs hundreds; and the staff groups."""

from __future__ import annotations

import importlib
import itertools
from datetime import datetime

from django.contrib.auth.models import Group, Permission
from django.utils import timezone

from orders.models import Order, OrderLine
from payments.models import Payment
from tests.factories import PriceFactory, UserFactory

_numbers = itertools.count(1)


def make_payment(
    *,
    customer=None,
    currency: str = "USD",
    amount: int = 3600,
    status: str = Payment.Status.SUCCEEDED,
    refunded: int = 0,
    dispute_status: str = "",
    last4: str = "4242",
    created_at: datetime | None = None,
    succeeded_at: datetime | None = None,
) -> Payment:
    """One order with one line, and its payment (succeeded: received in full, by default)."""
    return make_payments(
        1, customer=customer, currency=currency, amount=amount, status=status,
        refunded=refunded, dispute_status=dispute_status, last4=last4, created_at=created_at,
        succeeded_at=succeeded_at,
    )[0]


def make_payments(
    count: int,
    *,
    customer=None,
    currency: str = "USD",
    amount: int = 3600,
    status: str = Payment.Status.SUCCEEDED,
    refunded: int = 0,
    dispute_status: str = "",
    last4: str = "4242",
    created_at: datetime | None = None,
    succeeded_at: datetime | None = None,
) -> list[Payment]:
    """`count` orders and payments alike but for their numbers and Stripe ids, in bulk."""
    customer = customer or UserFactory()
    price = PriceFactory(currency=currency, unit_amount=amount)
    created_at = created_at or timezone.now()
    succeeded = status == Payment.Status.SUCCEEDED
    numbers = [next(_numbers) for _ in range(count)]
    orders = Order.objects.bulk_create(
        Order(number=f"PD-{n:010X}", checkout_token=f"token-{n}", customer=customer,
              currency=currency, total_amount=amount,
              status=Order.Status.PAID if succeeded else Order.Status.PENDING)
        for n in numbers
    )
    OrderLine.objects.bulk_create(
        OrderLine(order=order, price=price, description=price.product.name, quantity=1,
                  unit_amount=amount, amount=amount)
        for order in orders
    )
    payments = Payment.objects.bulk_create(
        Payment(
            order=order, customer=customer, idempotency_key=f"payment:{n}",
            stripe_id=f"pi_test{n:08d}",
            stripe_charge_id=f"ch_test{n:08d}" if succeeded else "", amount=amount,
            currency=currency, status=status, amount_received=amount if succeeded else 0,
            amount_refunded=refunded, dispute_status=dispute_status, card_brand="visa",
            card_last4=last4, succeeded_at=(succeeded_at or created_at) if succeeded else None,
        )
        for n, order in zip(numbers, orders, strict=True)
    )
    # auto_now_add ignores a value given at creation.
    pks = [p.pk for p in payments]
    Payment.objects.filter(pk__in=pks).update(created_at=created_at)
    Order.objects.filter(pk__in=[o.pk for o in orders]).update(created_at=created_at)
    return list(Payment.objects.filter(pk__in=pks).order_by("pk"))


def staff_group(name: str) -> Group:
    """The Support or Finance group with its permissions, as payments/0006_staff_groups makes
    it. The migration's rows do not survive a transactional test's flush (browser and worker
    tests), so a test that needs a group asks for it here."""
    groups = importlib.import_module("payments.migrations.0006_staff_groups").GROUPS
    group, _ = Group.objects.get_or_create(name=name)
    for app_label, codename in groups[name]:
        group.permissions.add(
            Permission.objects.get(content_type__app_label=app_label, codename=codename)
        )
    return group
