"""Pay: what PaymentSheet needs (with an ephemeral key, or a CustomerSession), the same live
intent every time, a paid order refused."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.conf import settings

from api.models import IdempotencyKey
from api.v1.serializers import CUSTOMER_ACCESS_INVALID
from payments import gateway
from payments.models import Payment
from payments.services import ORDER_NOT_PAYABLE
from tests.api.conftest import SDK_STRIPE_VERSION, pay
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


# --- customer_access: an ephemeral key (the default) or a CustomerSession ------------------------

DEFAULT_ANSWER = ["payment", "payment_intent", "payment_intent_client_secret", "customer",
                  "ephemeral_key", "publishable_key"]


def pay_with(api, number: str, body: dict, **headers):
    headers.setdefault("Stripe-Version", SDK_STRIPE_VERSION)
    return api.post(f"/api/v1/orders/{number}/pay/", body, headers=headers)


def test_a_customer_session_answers_its_client_secret_instead_of_an_ephemeral_key(
    api, customer, sandbox
):
    order = make_order(customer=customer, unit_amount=4200)

    response = pay_with(api, order.number, {"customer_access": "customer_session"})

    assert response.status_code == 200
    body = response.json()
    assert list(body) == ["payment", "payment_intent", "payment_intent_client_secret",
                          "customer", "customer_session_client_secret", "publishable_key"]
    assert body["customer_session_client_secret"].startswith("cuss_secret_")
    session = sandbox.app.store.get("customer_sessions", body["customer_session_client_secret"])
    assert session["customer"] == body["customer"] == customer.stripe_customer.stripe_id
    mobile = session["components"]["mobile_payment_element"]
    assert mobile["enabled"] is True
    assert mobile["features"] == {
        **gateway.MOBILE_PAYMENT_ELEMENT["features"],
        "payment_method_save_allow_redisplay_override": None,
    }
    assert mobile["features"]["payment_method_remove"] == "disabled"
    intent = sandbox.app.store.get("payment_intents", body["payment_intent"])
    assert body["payment_intent_client_secret"] == intent["client_secret"]
    assert intent["customer"] == body["customer"]
    assert sandbox.app.store.all("ephemeral_keys") == []  # no ephemeral key is made


def test_the_default_answer_is_unchanged_and_makes_no_customer_session(api, customer, sandbox):
    first = make_order(customer=customer)
    second = make_order(customer=customer)

    implicit = pay(api, first.number)
    explicit = pay_with(api, second.number, {"customer_access": "ephemeral_key"})

    assert list(implicit.json()) == list(explicit.json()) == DEFAULT_ANSWER
    assert sandbox.app.store.all("customer_sessions") == []
    assert len(sandbox.app.store.all("ephemeral_keys")) == 2


@pytest.mark.parametrize("value", ["session", "", 5, ["customer_session"]])
def test_another_customer_access_is_a_400_before_any_work(api, customer, sandbox, value):
    order = make_order(customer=customer)

    response = pay_with(api, order.number, {"customer_access": value},
                        **{"Idempotency-Key": "k1"})

    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["type"], error["code"], error["param"]) == (
        "invalid_request_error", "parameter_invalid", "customer_access")
    assert error["message"] == CUSTOMER_ACCESS_INVALID
    assert sandbox.app.store.all("customers") == []  # Stripe was asked for nothing
    assert not Payment.objects.exists()
    retried = pay_with(api, order.number, {"customer_access": "customer_session"},
                       **{"Idempotency-Key": "k1"})
    assert retried.status_code == 200


def test_the_same_key_with_the_other_customer_access_is_an_idempotency_error(api, customer,
                                                                             sandbox):
    order = make_order(customer=customer)
    pay(api, order.number, **{"Idempotency-Key": "k1"})

    response = pay_with(api, order.number, {"customer_access": "customer_session"},
                        **{"Idempotency-Key": "k1"})

    assert response.status_code == 400
    assert response.json()["error"]["type"] == "idempotency_error"
    assert sandbox.app.store.all("customer_sessions") == []


class Killed(BaseException):
    """The process dying: no handler of the request sees it (not an Exception)."""


def test_a_request_killed_after_the_session_was_made_gets_the_same_session_on_retry(
    api, customer, sandbox, monkeypatch
):
    """The session's idempotency key comes from the request's stored key: the retry asks
    Stripe again with it, and Stripe answers the same session."""
    order = make_order(customer=customer)
    real = gateway.customer_session_create

    def made_then_killed(**kwargs):
        real(**kwargs)
        raise Killed

    monkeypatch.setattr(gateway, "customer_session_create", made_then_killed)
    with time_machine.travel(T0, tick=False), pytest.raises(Killed):
        pay_with(api, order.number, {"customer_access": "customer_session"},
                 **{"Idempotency-Key": "pay-1"})
    monkeypatch.undo()
    lease = timedelta(seconds=settings.PAYDESK_API_IDEMPOTENCY_LOCK_SECONDS + 1)
    with time_machine.travel(T0 + lease, tick=False):
        resumed = pay_with(api, order.number, {"customer_access": "customer_session"},
                           **{"Idempotency-Key": "pay-1"})

    assert resumed.status_code == 200
    (session,) = sandbox.app.store.all("customer_sessions")
    assert resumed.json()["customer_session_client_secret"] == session["client_secret"]


def test_the_customer_session_call_keeps_to_the_time_budget(api, customer, sandbox, settings):
    settings.STRIPE_REQUEST_BUDGET = 0.5
    order = make_order(customer=customer)
    sandbox.inject_fault("timeout", path="/v1/customer_sessions", delay=30)

    response = pay_with(api, order.number, {"customer_access": "customer_session"})

    assert response.status_code == 504
    assert response.json()["error"]["code"] == "payment_service_timeout"
    assert sandbox.held_requests() == 1  # given up on, unanswered
