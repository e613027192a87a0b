"""Every Stripe call is bounded in time: explicit connect and read timeouts per attempt, and a
total budget that cuts attempts short, stops retries and raises GatewayTimeout (finding 3 of
issue 7). Real SDK, real HTTP, the sandbox's `slow` and `timeout` faults. Stripe's side is held
unanswered until the test ends, so "the call gave up before Stripe answered" is a fact the test
reads from the sandbox, never a duration it measures."""

import socket

import pytest
from django.core.checks import Error

from config.checks import stripe_budget_below_web_timeout
from payments import gateway
from payments.models import Payment
from payments.services import payment_refresh, payment_start
from tests.conftest import HOLD
from tests.factories import make_order

pytestmark = pytest.mark.django_db


@pytest.fixture
def intent(sandbox):
    return gateway.payment_intent_create(
        amount=1000, currency="USD", customer=None, metadata={}, description="budget",
        idempotency_key="budget-test",
    )


def retrieve_path(intent) -> str:
    return f"/v1/payment_intents/{intent.id}"


def test_a_slow_call_ends_in_gateway_timeout_within_a_time_budget(sandbox, intent):
    sandbox.inject_fault("slow", path=retrieve_path(intent), delay=HOLD)

    with gateway.time_budget(1.0), pytest.raises(gateway.GatewayTimeout) as raised:
        gateway.payment_intent_retrieve(intent.id)

    assert sandbox.held_requests() == 1  # Stripe has not answered yet
    assert raised.value.message == gateway.GatewayTimeout.message
    assert isinstance(raised.value, gateway.GatewayUnavailable)
    assert sandbox.requests()[retrieve_path(intent)] == 1  # no retry once the budget is spent


def test_outside_any_budget_one_call_is_bounded_by_the_request_budget_setting(
    sandbox, intent, settings
):
    settings.STRIPE_REQUEST_BUDGET = 1.0
    sandbox.inject_fault("slow", path=retrieve_path(intent), delay=HOLD)

    with pytest.raises(gateway.GatewayTimeout):
        gateway.payment_intent_retrieve(intent.id)

    assert sandbox.held_requests() == 1


def test_retries_stop_at_the_deadline(sandbox, intent, settings):
    """Each attempt's connection drops at once (retryable). With 10 retries allowed, the SDK
    would try 11 times, sleeping at least 0.5 s (up to 5 s) between; the budget ends the
    retries and the call raises GatewayTimeout instead of the last attempt's error."""
    settings.STRIPE_MAX_NETWORK_RETRIES = 10
    sandbox.inject_fault("timeout", count=11, path=retrieve_path(intent), delay=0)

    with gateway.time_budget(1.5), pytest.raises(gateway.GatewayTimeout):
        gateway.payment_intent_retrieve(intent.id)

    assert 1 <= sandbox.requests()[retrieve_path(intent)] < 11


def test_each_attempt_gets_the_read_timeout_and_is_retried(sandbox, intent, settings):
    settings.STRIPE_READ_TIMEOUT = 0.3
    settings.STRIPE_MAX_NETWORK_RETRIES = 1
    sandbox.inject_fault("timeout", count=2, path=retrieve_path(intent), delay=HOLD)

    with pytest.raises(gateway.GatewayUnavailable) as raised:
        gateway.payment_intent_retrieve(intent.id)

    assert sandbox.held_requests() == 2  # both attempts gave up, unanswered
    assert not isinstance(raised.value, gateway.GatewayTimeout)  # the budget was not spent
    assert sandbox.requests()[retrieve_path(intent)] == 2


@pytest.fixture
def unanswered_port():
    """A port whose accept queue is full, so a new connection is never established (Linux
    drops the SYN): only a connect timeout ends the wait."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(0)
    port = server.getsockname()[1]
    fillers = []
    for _ in range(3):
        filler = socket.socket()
        filler.setblocking(False)
        filler.connect_ex(("127.0.0.1", port))
        fillers.append(filler)
    yield port
    for filler in fillers:
        filler.close()
    server.close()


def test_each_attempt_gets_the_connect_timeout(settings, unanswered_port):
    settings.STRIPE_API_BASE = f"http://127.0.0.1:{unanswered_port}"
    settings.STRIPE_CONNECT_TIMEOUT = 0.3
    settings.STRIPE_READ_TIMEOUT = 10.0
    settings.STRIPE_MAX_NETWORK_RETRIES = 0

    with pytest.raises(gateway.GatewayUnavailable) as raised:
        gateway.payment_intent_retrieve("pi_unreachable")

    assert "connect timeout=0.3" in str(raised.value)


def test_a_spent_budget_makes_no_call_at_all(sandbox, intent):
    with gateway.time_budget(0), pytest.raises(gateway.GatewayTimeout):
        gateway.payment_intent_retrieve(intent.id)

    assert retrieve_path(intent) not in sandbox.requests()


def test_nested_budgets_keep_the_earlier_deadline():
    assert gateway.budget_remaining() is None
    with gateway.time_budget(1.0):
        with gateway.time_budget(100.0):
            assert gateway.budget_remaining() <= 1.0
        with gateway.time_budget(0.5):
            assert gateway.budget_remaining() <= 0.5
        assert 0.5 < gateway.budget_remaining() <= 1.0
    assert gateway.budget_remaining() is None


@pytest.fixture
def customer_order():
    return make_order()


def test_a_refresh_holds_the_row_locks_no_longer_than_the_budget(sandbox, customer_order):
    """payment_refresh reads Stripe under the order and payment locks (on purpose): a slow
    Stripe now ends the read, and the transaction, within the budget."""
    payment = payment_start(order=customer_order)
    sandbox.inject_fault("slow", path=f"/v1/payment_intents/{payment.stripe_id}", delay=HOLD)

    with gateway.time_budget(1.0), pytest.raises(gateway.GatewayTimeout):
        payment_refresh(payment=payment, source="test")

    assert sandbox.held_requests() == 1  # the locks were let go while Stripe still held the read
    assert Payment.objects.get(pk=payment.pk).status == "requires_payment_method"


def test_a_budget_not_below_the_web_timeout_is_a_system_check_error(settings):
    settings.WEB_TIMEOUT = 30
    settings.STRIPE_REQUEST_BUDGET = 20.0
    assert stripe_budget_below_web_timeout(None) == []

    settings.STRIPE_REQUEST_BUDGET = 30.0
    errors = stripe_budget_below_web_timeout(None)

    assert [(type(e), e.id) for e in errors] == [(Error, "paydesk.E001")]
    assert "STRIPE_REQUEST_BUDGET (30 s) is not below WEB_TIMEOUT (30 s)" in errors[0].msg
