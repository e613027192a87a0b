"""Pay: what PaymentSheet needs, the same live intent every time, a paid order refused."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.conf import settings

from api.models import IdempotencyKey
from payments.models import Payment
from payments.services import ORDER_NOT_PAYABLE
from tests.api.conftest import pay
from tests.factories import make_order

pytestmark = pytest.mark.django_db
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def test_pay_returns_what_payment_sheet_needs(api, customer, sandbox):
    order = make_order(customer=customer, unit_amount=4200)

    response = pay(api, order.number)

    assert response.status_code == 200
    body = response.json()
    payment = Payment.objects.get(order=order)
    intent = sandbox.app.store.get("payment_intents", body["payment_intent"])
    assert body["payment"] == {"id": payment.pk, "status": "requires_payment_method",
                               "amount": 4200, "currency": "USD"}
    assert body["payment_intent"] == payment.stripe_id
    assert body["payment_intent_client_secret"] == intent["client_secret"]
    assert body["customer"] == customer.stripe_customer.stripe_id == intent["customer"]
    assert body["ephemeral_key"].startswith("ek_test_")
    assert body["publishable_key"] == settings.STRIPE_PUBLISHABLE_KEY
    (key,) = sandbox.app.store.all("ephemeral_keys")
    assert key["secret"] == body["ephemeral_key"]
    assert key["associated_objects"] == [{"id": body["customer"], "type": "customer"}]


def test_the_ephemeral_key_is_made_with_the_sdks_stripe_version(api, customer, sandbox,
                                                                 monkeypatch):
    from payments import gateway

    versions = []
    real = gateway.ephemeral_key_create

    def spy(**kwargs):
        versions.append(kwargs["stripe_version"])
        return real(**kwargs)

    monkeypatch.setattr(gateway, "ephemeral_key_create", spy)
    order = make_order(customer=customer)

    pay(api, order.number, **{"Stripe-Version": "2024-06-20"})

    assert versions == ["2024-06-20"]


def test_paying_again_returns_the_same_live_intent(api, customer, sandbox):
    order = make_order(customer=customer)

    first = pay(api, order.number).json()
    second = pay(api, order.number).json()

    assert second["payment_intent"] == first["payment_intent"]
    assert second["payment"]["id"] == first["payment"]["id"]
    assert len(sandbox.app.store.all("payment_intents")) == 1


def test_a_paid_order_answers_409(api, customer, sandbox):
    order = make_order(customer=customer)
    order.status = "paid"
    order.save()

    response = pay(api, order.number)

    assert response.status_code == 409
    error = response.json()["error"]
    assert error["code"] == "order_not_payable"
    assert error["message"] == ORDER_NOT_PAYABLE
    assert sandbox.app.store.all("customers") == []  # Stripe was asked for nothing


def test_without_stripe_version_nothing_is_done_and_the_key_can_be_reused(api, customer, sandbox):
    order = make_order(customer=customer)

    response = api.post(f"/api/v1/orders/{order.number}/pay/", headers={"Idempotency-Key": "k1"})

    assert response.status_code == 400
    assert response.json()["error"]["param"] == "Stripe-Version"
    assert response.json()["error"]["code"] == "parameter_missing"
    assert not Payment.objects.exists()
    assert not IdempotencyKey.objects.exists()
    retried = pay(api, order.number, **{"Idempotency-Key": "k1"})
    assert retried.status_code == 200
    assert "Idempotent-Replayed" not in retried.headers


def test_a_malformed_stripe_version_is_refused(api, customer):
    order = make_order(customer=customer)

    response = pay(api, order.number, **{"Stripe-Version": "latest"})

    assert response.status_code == 400
    assert response.json()["error"]["param"] == "Stripe-Version"


def test_stripe_unreachable_is_a_503_with_a_customer_safe_message(api, customer, sandbox):
    order = make_order(customer=customer)
    sandbox.inject_fault("500", count=1 + settings.STRIPE_MAX_NETWORK_RETRIES,
                         path="/v1/payment_intents")

    response = pay(api, order.number)

    assert response.status_code == 503
    error = response.json()["error"]
    assert (error["type"], error["code"]) == ("api_error", "payment_service_unavailable")
    assert "Stripe" not in error["message"] and "500" not in error["message"]


def test_pay_is_rate_limited_per_user(api, customer, sandbox, settings):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {
        **settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "pay": "2/min"}}
    order = make_order(customer=customer)

    with time_machine.travel(T0, tick=False):
        statuses = [pay(api, order.number).status_code for _ in range(3)]
        limited = pay(api, order.number)
    with time_machine.travel(T0 + timedelta(seconds=61), tick=False):
        later = pay(api, order.number)

    assert statuses == [200, 200, 429]
    assert limited.json()["error"]["type"] == "rate_limit_error"
    assert limited.headers["Retry-After"] == "60"
    assert later.status_code == 200


def test_server_timing_tells_paydesks_time_from_stripes(api, customer, sandbox):
    order = make_order(customer=customer)

    timing = pay(api, order.number).headers["Server-Timing"]

    app, cpu, stripe = timing.split(", ")
    assert app.startswith("app;dur=")
    # The request's CPU time in this process, Stripe calls included.
    assert cpu.startswith("cpu;dur=") and float(cpu.removeprefix("cpu;dur=")) > 0
    # An intent, a customer and an ephemeral key.
    assert stripe.startswith("stripe;dur=") and stripe.endswith('desc="3 calls"')
