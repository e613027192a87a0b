"""Stripe's idempotency on the API: replays, mismatches, requests in flight, stored 5xx,
expiry, and a process killed after the Stripe call that finishes with one charge on retry."""

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.conf import settings
from django.db import connection

from api import idempotency
from api.models import IdempotencyKey
from api.tasks import api_idempotency_keys_expire
from payments import services
from payments.models import Payment
from tests.api.conftest import order_of, pay, token_client
from tests.factories import make_order

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@pytest.mark.django_db
def test_the_same_key_replays_the_first_response(api, customer, price, sandbox):
    first = api.post("/api/v1/orders/", {"lines": [{"price": price.pk, "quantity": 2}]},
                     headers={"Idempotency-Key": "order-1"})
    again = api.post("/api/v1/orders/", {"lines": [{"price": price.pk, "quantity": 2}]},
                     headers={"Idempotency-Key": "order-1"})

    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json() == first.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert customer.orders.count() == 1


@pytest.mark.django_db
def test_keys_are_scoped_per_user(api, other_api, price):
    mine = order_of(api, price, **{"Idempotency-Key": "same"})
    theirs = order_of(other_api, price, **{"Idempotency-Key": "same"})

    assert mine["number"] != theirs["number"]


@pytest.mark.django_db
@pytest.mark.parametrize("change", ["body", "endpoint"])
def test_the_same_key_with_another_request_is_an_idempotency_error(api, customer, price,
                                                                    sandbox, change):
    order_of(api, price, 1, **{"Idempotency-Key": "k"})
    if change == "body":
        response = api.post("/api/v1/orders/", {"lines": [{"price": price.pk, "quantity": 5}]},
                            headers={"Idempotency-Key": "k"})
    else:
        response = pay(api, make_order(customer=customer).number, **{"Idempotency-Key": "k"})

    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["type"], error["code"]) == ("idempotency_error", "idempotency_key_mismatch")
    assert "'k'" in error["message"]
    assert customer.orders.count() == 1 + (change == "endpoint")
    assert not Payment.objects.exists()


@pytest.mark.django_db
def test_a_key_longer_than_255_characters_is_refused(api, price):
    response = api.post("/api/v1/orders/", {"lines": [{"price": price.pk, "quantity": 1}]},
                        headers={"Idempotency-Key": "k" * 256})

    assert response.status_code == 400
    assert response.json()["error"]["param"] == "Idempotency-Key"
    ok = api.post("/api/v1/orders/", {"lines": [{"price": price.pk, "quantity": 1}]},
                  headers={"Idempotency-Key": "k" * 255})
    assert ok.status_code == 201


@pytest.mark.django_db
def test_a_stored_500_replays_as_500(api, customer, sandbox, monkeypatch):
    order = make_order(customer=customer)

    def broken(**kwargs):
        raise RuntimeError("a bug after the intent was made")

    monkeypatch.setattr("api.v1.views.customer_ephemeral_key_create", broken)
    first = pay(api, order.number, **{"Idempotency-Key": "pay-1"})
    monkeypatch.undo()
    again = pay(api, order.number, **{"Idempotency-Key": "pay-1"})

    assert first.status_code == again.status_code == 500
    assert again.json() == first.json() == {"error": {
        "type": "api_error", "code": "internal_error",
        "message": "Something went wrong on our side. Please try again in a moment.",
        "param": None}}
    assert again.headers["Idempotent-Replayed"] == "true"
    # A new key is a new request: it finds the payment already started.
    fresh = pay(api, order.number, **{"Idempotency-Key": "pay-2"})
    assert fresh.status_code == 200
    assert len(sandbox.app.store.all("payment_intents")) == 1


@pytest.mark.django_db
def test_a_request_in_flight_gets_409(api, customer, price):
    fingerprint = idempotency.request_fingerprint(
        method="POST", path="/api/v1/orders/", data={"lines": [{"price": price.pk,
                                                                 "quantity": 1}]})
    idempotency.idempotency_key_begin(user=customer, key="busy", method="POST",
                                      path="/api/v1/orders/", fingerprint=fingerprint)

    response = api.post("/api/v1/orders/", {"lines": [{"price": price.pk, "quantity": 1}]},
                        headers={"Idempotency-Key": "busy"})

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "idempotency_key_in_use"
    assert not customer.orders.exists()


class Killed(BaseException):
    """The process dying: no handler of the request sees it (not an Exception)."""


@pytest.mark.django_db
@pytest.mark.parametrize("where", ["before the local commit", "after the local commit"])
def test_a_request_killed_after_the_stripe_call_finishes_with_one_intent_on_retry(
    api, customer, sandbox, monkeypatch, where
):
    """Killed right after Stripe created the PaymentIntent: either before the payment's row
    learned its id (the transaction is lost) or after, before the response was stored."""
    order = make_order(customer=customer)
    if where == "before the local commit":
        real = services._apply_intent

        def dies(*args, **kwargs):
            monkeypatch.setattr(services, "_apply_intent", real)
            raise Killed

        monkeypatch.setattr(services, "_apply_intent", dies)
    else:
        monkeypatch.setattr("api.v1.views.customer_ephemeral_key_create",
                            lambda **kwargs: (_ for _ in ()).throw(Killed()))

    with time_machine.travel(T0, tick=False):
        with pytest.raises(Killed):
            pay(api, order.number, **{"Idempotency-Key": "pay-1"})
        assert len(sandbox.app.store.all("payment_intents")) == 1
        monkeypatch.undo()
        still_locked = pay(api, order.number, **{"Idempotency-Key": "pay-1"})
    lease = timedelta(seconds=settings.PAYDESK_API_IDEMPOTENCY_LOCK_SECONDS + 1)
    with time_machine.travel(T0 + lease, tick=False):
        resumed = pay(api, order.number, **{"Idempotency-Key": "pay-1"})

    assert still_locked.status_code == 409
    assert resumed.status_code == 200
    (intent,) = sandbox.app.store.all("payment_intents")
    assert resumed.json()["payment_intent"] == intent["id"]
    assert Payment.objects.get(order=order).stripe_id == intent["id"]
    assert IdempotencyKey.objects.get(key="pay-1").is_finished()


@pytest.mark.django_db(transaction=True)
def test_twenty_concurrent_identical_pays_make_one_intent_and_one_stored_response(
    customer, sandbox
):
    order = make_order(customer=customer)
    clients = [token_client(customer) for _ in range(20)]
    barrier = threading.Barrier(20)

    def send(client):
        try:
            barrier.wait()
            response = pay(client, order.number, **{"Idempotency-Key": "pay-once"})
            return response.status_code, response.json(), response.headers
        finally:
            connection.close()

    with ThreadPoolExecutor(20) as pool:
        answers = list(pool.map(send, clients))

    assert len(sandbox.app.store.all("payment_intents")) == 1
    assert Payment.objects.filter(order=order).count() == 1
    row = IdempotencyKey.objects.get(user=customer, key="pay-once")
    assert row.is_finished() and row.response_status == 200
    assert IdempotencyKey.objects.filter(user=customer).count() == 1
    ran = [body for status, body, headers in answers
           if status == 200 and "Idempotent-Replayed" not in headers]
    replayed = [body for status, body, headers in answers
                if status == 200 and headers.get("Idempotent-Replayed") == "true"]
    in_flight = [body for status, body, _ in answers if status == 409]
    assert len(ran) == 1
    assert len(ran) + len(replayed) + len(in_flight) == 20
    assert all(body == ran[0] for body in replayed)
    assert all(body["error"]["code"] == "idempotency_key_in_use" for body in in_flight)


@pytest.mark.django_db
def test_keys_expire_after_24_hours(api, customer, price):
    with time_machine.travel(T0, tick=False):
        first = order_of(api, price, **{"Idempotency-Key": "daily"})
    with time_machine.travel(T0 + timedelta(hours=23, minutes=59), tick=False):
        assert api_idempotency_keys_expire() == 0
        replay = order_of(api, price, **{"Idempotency-Key": "daily"})
    with time_machine.travel(T0 + timedelta(hours=24), tick=False):
        assert api_idempotency_keys_expire() == 1
        later = order_of(api, price, **{"Idempotency-Key": "daily"})

    assert replay["number"] == first["number"]
    assert later["number"] != first["number"]


@pytest.mark.django_db
def test_an_expired_key_not_yet_deleted_is_a_new_key(api, price):
    with time_machine.travel(T0, tick=False):
        first = order_of(api, price, **{"Idempotency-Key": "daily"})
    with time_machine.travel(T0 + timedelta(hours=25), tick=False):
        later = order_of(api, price, 2, **{"Idempotency-Key": "daily"})

    assert later["number"] != first["number"]


def test_the_expiry_runs_on_beat_like_the_other_jobs():
    entry = settings.CELERY_BEAT_SCHEDULE["api-idempotency-keys-expire"]

    assert entry["task"] == api_idempotency_keys_expire.name
