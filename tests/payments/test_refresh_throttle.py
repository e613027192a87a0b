"""payment_refresh(max_age=...): a payment read from Stripe within max_age is not read again,
and concurrent refreshes of a stale one make one Stripe read between them (the check is
repeated under the row lock). Reads are counted at the sandbox."""

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from django.db import connection
from django.db.models import F

from payments.models import Payment
from payments.services import payment_refresh, payment_start
from tests.factories import make_order

pytestmark = pytest.mark.django_db(transaction=True)

MAX_AGE = timedelta(hours=1)


@pytest.fixture
def stale_payment(sandbox):
    payment = payment_start(order=make_order())
    Payment.objects.filter(pk=payment.pk).update(
        stripe_checked_at=F("stripe_checked_at") - MAX_AGE - timedelta(seconds=1)
    )
    return Payment.objects.get(pk=payment.pk)


def reads_of(sandbox, payment: Payment) -> int:
    return sandbox.requests().get(f"/v1/payment_intents/{payment.stripe_id}", 0)


def test_a_payment_read_within_max_age_is_not_read_again(sandbox, stale_payment):
    payment_refresh(payment=stale_payment, source="test", max_age=MAX_AGE)
    fresh = Payment.objects.get(pk=stale_payment.pk)

    payment_refresh(payment=fresh, source="test", max_age=MAX_AGE)
    payment_refresh(payment=stale_payment, source="test", max_age=MAX_AGE)  # checked under lock

    assert reads_of(sandbox, stale_payment) == 1
    payment_refresh(payment=fresh, source="test")  # no max_age (webhooks): always reads
    assert reads_of(sandbox, stale_payment) == 2


def test_concurrent_refreshes_of_a_stale_payment_make_one_stripe_read(sandbox, stale_payment):
    if connection.vendor != "postgresql":
        pytest.fail("row locks are proven on PostgreSQL: set DATABASE_URL")
    barrier = threading.Barrier(8)

    def refresh(_):
        barrier.wait()
        try:
            return payment_refresh(payment=stale_payment, source="test", max_age=MAX_AGE).status
        finally:
            connection.close()

    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(refresh, range(8)))

    assert statuses == ["requires_payment_method"] * 8
    assert reads_of(sandbox, stale_payment) == 1
