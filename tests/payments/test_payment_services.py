"""payment_start / payment_confirm / payment_sync against the sandbox over real HTTP."""

import pytest

from orders.models import Order
from payments import gateway
from payments.models import Payment, PaymentEvent
from payments.services import ORDER_NOT_PAYABLE, PaymentError, payment_confirm, payment_start
from tests.factories import make_order

pytestmark = pytest.mark.django_db
RETURN_URL = "http://testserver/checkout/return/"


def ledger(payment: Payment) -> list[str]:
    return list(payment.events.values_list("kind", flat=True))


def test_payment_start_creates_one_intent_and_reuses_it(sandbox):
    order = make_order(unit_amount=1999)

    first = payment_start(order=order)
    again = payment_start(order=order)

    assert first.pk == again.pk
    assert first.stripe_id.startswith("pi_")
    assert (first.amount, first.currency, first.status) == (1999, "USD", "requires_payment_method")
    assert first.idempotency_key == f"payment:{order.pk}:1"
    assert gateway.payment_intent_retrieve(first.stripe_id).metadata["order_number"] == order.number
    assert ledger(first) == [PaymentEvent.Kind.REQUESTED]


def test_successful_confirm_marks_payment_and_order_paid(sandbox):
    order = make_order(currency="JPY", unit_amount=1500, quantity=2)
    payment = payment_start(order=order)

    payment = payment_confirm(payment=payment, payment_method="pm_card_visa", return_url=RETURN_URL)

    assert payment.status == "succeeded"
    assert payment.amount_received == 3000
    assert (payment.card_brand, payment.card_last4) == ("visa", "4242")
    assert payment.stripe_charge_id.startswith("ch_")
    order.refresh_from_db()
    assert order.status == Order.Status.PAID and order.paid_at is not None
    assert ledger(payment) == [PaymentEvent.Kind.REQUESTED, PaymentEvent.Kind.SUCCEEDED]
    assert payment.events.get(kind=PaymentEvent.Kind.SUCCEEDED).amount == 3000


def test_decline_is_recorded_and_the_same_intent_can_then_succeed(sandbox):
    order = make_order()
    payment = payment_start(order=order)

    with pytest.raises(gateway.CardDeclined) as declined:
        payment_confirm(
            payment=payment,
            payment_method="pm_card_visa_chargeDeclinedInsufficientFunds",
            return_url=RETURN_URL,
        )

    assert declined.value.message == "Your card has insufficient funds."
    assert (declined.value.code, declined.value.decline_code) == (
        "card_declined", "insufficient_funds"
    )
    payment.refresh_from_db()
    order.refresh_from_db()
    assert payment.status == "requires_payment_method"
    assert payment.decline_code == "insufficient_funds"
    assert order.status == Order.Status.FAILED

    payment = payment_confirm(payment=payment, payment_method="pm_card_visa", return_url=RETURN_URL)

    order.refresh_from_db()
    assert payment.status == "succeeded" and order.status == Order.Status.PAID
    assert payment.failure_code == ""
    assert ledger(payment) == [
        PaymentEvent.Kind.REQUESTED, PaymentEvent.Kind.FAILED, PaymentEvent.Kind.SUCCEEDED
    ]
    assert Payment.objects.filter(order=order).count() == 1


def test_three_d_secure_card_requires_action_with_a_redirect(sandbox):
    payment = payment_start(order=make_order())

    payment = payment_confirm(
        payment=payment, payment_method="pm_card_authenticationRequired", return_url=RETURN_URL
    )

    assert payment.status == "requires_action"
    url = gateway.payment_intent_from(payment.stripe_object).next_action_url
    assert url.startswith(sandbox.url)
    assert ledger(payment)[-1] == PaymentEvent.Kind.ACTION_REQUIRED


def test_paid_order_cannot_be_paid_again(sandbox):
    order = make_order()
    payment_confirm(
        payment=payment_start(order=order), payment_method="pm_card_visa", return_url=RETURN_URL
    )

    with pytest.raises(PaymentError, match=ORDER_NOT_PAYABLE):
        payment_start(order=order)


def test_stripe_outage_leaves_a_retryable_payment_with_its_key_stored(sandbox):
    order = make_order()
    sandbox.inject_fault("500", count=5, path="/v1/payment_intents")

    with pytest.raises(gateway.GatewayUnavailable):
        payment_start(order=order)

    stored = Payment.objects.get(order=order)
    assert stored.stripe_id is None and stored.idempotency_key == f"payment:{order.pk}:1"

    payment = payment_start(order=order)
    assert payment.pk == stored.pk and payment.stripe_id.startswith("pi_")


def test_an_intent_asked_to_save_its_card_is_created_set_up_in_one_stripe_call(sandbox):
    """An app asks (payments.signals.payment_card_saving; recovery does for a renewal): the
    intent payment_start makes carries setup_future_usage and the metadata from its creation,
    with no update call after it; asking again changes nothing at Stripe."""
    from payments import signals

    order = make_order()

    def saving(sender, order, **kwargs):
        return {"paydesk_subscription_id": "7"}

    signals.payment_card_saving.connect(saving, dispatch_uid="test-saving")
    try:
        payment = payment_start(order=order)
        again = payment_start(order=order)
    finally:
        signals.payment_card_saving.disconnect(dispatch_uid="test-saving")

    assert again.stripe_id == payment.stripe_id
    assert payment.stripe_object["setup_future_usage"] == "off_session"
    assert payment.stripe_object["metadata"]["paydesk_subscription_id"] == "7"
    requests = sandbox.requests()
    assert requests["/v1/payment_intents"] == 1
    assert f"/v1/payment_intents/{payment.stripe_id}" not in requests  # no update
