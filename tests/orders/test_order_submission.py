"""One Buy form submission makes at most one order (issue 8, finding 7): the shop form carries a
one-time submission token, stored on the order under a unique (customer, token) constraint."""

import threading
import uuid

import pytest
from django.db import IntegrityError, connection, connections, transaction
from django.test import Client
from django.urls import reverse

from orders.models import Order
from orders.services import SUBMISSION_REUSED, OrderError, order_create
from tests.conftest import wait_for
from tests.factories import PriceFactory, UserFactory


@pytest.mark.django_db
def test_the_same_submission_token_returns_the_first_order():
    customer, price = UserFactory(), PriceFactory(unit_amount=1450)
    token = uuid.uuid4()

    first = order_create(customer=customer, items=[(price, 2)], submission_token=token)
    second = order_create(customer=customer, items=[(price, 2)], submission_token=token)

    assert second.pk == first.pk
    assert Order.objects.count() == 1
    assert first.submission_token == token


@pytest.mark.django_db
def test_a_token_reused_for_other_items_is_refused_and_creates_nothing():
    customer, price = UserFactory(), PriceFactory()
    token = uuid.uuid4()
    order_create(customer=customer, items=[(price, 1)], submission_token=token)

    with pytest.raises(OrderError) as caught:
        order_create(customer=customer, items=[(price, 3)], submission_token=token)

    assert str(caught.value) == SUBMISSION_REUSED
    assert Order.objects.count() == 1


@pytest.mark.django_db
def test_tokens_belong_to_their_customer_and_orders_without_one_do_not_collide():
    price = PriceFactory()
    token = uuid.uuid4()
    mine = order_create(customer=UserFactory(), items=[(price, 1)], submission_token=token)
    theirs = order_create(customer=UserFactory(), items=[(price, 1)], submission_token=token)
    customer = UserFactory()
    order_create(customer=customer, items=[(price, 1)])
    order_create(customer=customer, items=[(price, 1)])

    assert mine.pk != theirs.pk
    assert Order.objects.count() == 4


@pytest.mark.django_db
def test_the_database_refuses_a_second_order_with_the_same_token():
    customer, price = UserFactory(), PriceFactory()
    token = uuid.uuid4()
    first = order_create(customer=customer, items=[(price, 1)], submission_token=token)
    second = order_create(customer=customer, items=[(price, 1)])

    with pytest.raises(IntegrityError), transaction.atomic():
        Order.objects.filter(pk=second.pk).update(submission_token=first.submission_token)


def _waiting_on_a_lock(pid: int) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", [pid])
        row = cursor.fetchone()
    return row is not None and row[0] == "Lock"


@pytest.mark.django_db(transaction=True)
def test_a_double_click_racing_the_first_request_makes_one_order():
    """The second POST arrives while the first one's order is inserted but not yet committed:
    it waits on the unique index, then answers with the first order's checkout."""
    customer, price = UserFactory(), PriceFactory(unit_amount=1450)
    token = uuid.uuid4()
    first_inserted, first_may_commit = threading.Event(), threading.Event()
    outcome: dict = {}

    def first_click():
        try:
            with transaction.atomic():
                outcome["first"] = order_create(
                    customer=customer, items=[(price, 1)], submission_token=token
                )
                first_inserted.set()
                first_may_commit.wait(30)
        finally:
            first_inserted.set()
            connections.close_all()

    def second_click():
        client = Client()
        client.force_login(customer)
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_backend_pid()")
                outcome["second_pid"] = cursor.fetchone()[0]
            outcome["response"] = client.post(
                reverse("orders:shop"),
                {"price": price.pk, "quantity": "1", "submission_token": str(token)},
            )
        finally:
            connections.close_all()

    first = threading.Thread(target=first_click)
    first.start()
    assert first_inserted.wait(30) and "first" in outcome
    second = threading.Thread(target=second_click)
    second.start()
    try:
        wait_for(lambda: "second_pid" in outcome and _waiting_on_a_lock(outcome["second_pid"]),
                 what="the second request to wait on the first one's uncommitted order")
    finally:
        first_may_commit.set()
        first.join(30)
        second.join(30)

    assert Order.objects.count() == 1
    order = Order.objects.get()
    assert order.pk == outcome["first"].pk
    assert outcome["response"].status_code == 302
    assert outcome["response"]["Location"] == order.get_checkout_url()
