"""The database round trips of the mobile API's hot requests, pinned (issue 10's goals): creating
an order, paying it (the first time, and again), reading the payment history.

Inside a test's transaction every atomic block is a SAVEPOINT and a RELEASE; in production the
same block is a BEGIN and a COMMIT, each one round trip too, so these counts are the round trips
a request makes to PostgreSQL. The rate limits count in the cache, Redis in production (a
database cache would add its own queries): here an in-memory cache stands in for it.
"""

import pytest

from api.models import IdempotencyKey
from payments.models import Payment
from payments.services import customer_ensure
from tests.api.conftest import SDK_STRIPE_VERSION, pay
from tests.factories import make_order

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _rate_limits_in_memory(settings):
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}


def test_creating_an_order_is_ten_round_trips(api, customer, price, django_assert_num_queries):
    # Token and user; the idempotency key (one INSERT ... ON CONFLICT); the asked-for prices;
    # the order and its lines (SAVEPOINT, 2 INSERTs, RELEASE); the answer's lines and payments;
    # the stored answer.
    with django_assert_num_queries(10):
        response = api.post("/api/v1/orders/", {"lines": [{"price": price.pk, "quantity": 2}]},
                            headers={"Idempotency-Key": "order-1"})

    assert response.status_code == 201


def test_paying_is_seventeen_round_trips_then_ten(api, customer, sandbox,
                                                  django_assert_num_queries):
    customer_ensure(user=customer)  # a returning customer: Stripe knows them already
    order = make_order(customer=customer)

    # Token and user; the idempotency key; the order; the Stripe Customer. Then the payment's
    # idempotency key committed before Stripe is called (SAVEPOINT, the order locked, its
    # payments, the payment and its ledger row, RELEASE); the intent created under the locks
    # (SAVEPOINT, the order, its payments, the payment updated, RELEASE); whether the order is a
    # subscription's renewal, whose card the payment saves (recovery); the stored answer.
    with django_assert_num_queries(17):
        first = pay(api, order.number, **{"Idempotency-Key": "pay-1"})
    # The intent exists: the order locked and its payments read, the renewal question, nothing
    # written but the answer.
    with django_assert_num_queries(10):
        again = pay(api, order.number, **{"Idempotency-Key": "pay-2"})

    assert (first.status_code, again.status_code) == (200, 200)
    assert again.json()["payment_intent"] == first.json()["payment_intent"]
    assert Payment.objects.filter(order=order).count() == 1
    assert IdempotencyKey.objects.filter(user=customer).count() == 2


def test_paying_with_a_customer_session_is_as_many_round_trips(api, customer, sandbox,
                                                               django_assert_num_queries):
    customer_ensure(user=customer)
    order = make_order(customer=customer)

    # As the first pay above: only the Stripe call at the end differs.
    with django_assert_num_queries(17):
        response = api.post(f"/api/v1/orders/{order.number}/pay/",
                            {"customer_access": "customer_session"},
                            headers={"Idempotency-Key": "pay-1",
                                     "Stripe-Version": SDK_STRIPE_VERSION})

    assert response.status_code == 200
    assert response.json()["customer_session_client_secret"].startswith("cuss_secret_")
