"""The abandoned-checkout job re-reads Stripe before it cancels (issue 7, finding 2): a charge
that succeeded at Stripe while its webhooks were lost is applied, never canceled or stranded."""

from datetime import timedelta

import pytest
from django.utils import timezone

from orders.models import Order
from payments import gateway
from payments.models import Payment, PaymentEvent
from payments.services import (
    payment_cancel,
    payment_confirm,
    payment_start,
    payments_cancel_abandoned,
)
from tests.checkout.test_checkout import press_3ds_button
from tests.factories import make_order

pytestmark = pytest.mark.django_db
RETURN_URL = "http://testserver/checkout/return/"
DEAD_WEBHOOK_URL = "http://127.0.0.1:9/webhooks/stripe/"  # nothing listens: every event is lost


def awaiting_3ds(sandbox) -> Payment:
    """A payment confirmed with a 3-D Secure card, its webhooks going nowhere."""
    sandbox.configure_webhooks([DEAD_WEBHOOK_URL], max_attempts=1)
    payment = payment_confirm(
        payment=payment_start(order=make_order(unit_amount=3100)),
        payment_method="pm_card_authenticationRequired",
        return_url=RETURN_URL,
    )
    assert payment.status == Payment.Status.REQUIRES_ACTION
    return payment


def authenticate_at_stripe(payment: Payment) -> None:
    """The customer completes 3-D Secure but never comes back to our return page."""
    press_3ds_button(gateway.payment_intent_from(payment.stripe_object).next_action_url,
                     "complete")
    assert gateway.payment_intent_retrieve(payment.stripe_id).status == "succeeded"


def assert_paid_once(payment: Payment) -> None:
    payment.refresh_from_db()
    assert payment.status == Payment.Status.SUCCEEDED and payment.amount_received == 3100
    assert Order.objects.get(pk=payment.order_id).status == Order.Status.PAID
    assert payment.events.filter(kind=PaymentEvent.Kind.SUCCEEDED).count() == 1
    assert not payment.events.filter(kind=PaymentEvent.Kind.CANCELED).exists()


def test_a_lost_webhook_does_not_strand_a_charge_the_customer_authenticated(sandbox):
    payment = awaiting_3ds(sandbox)
    authenticate_at_stripe(payment)

    canceled = payments_cancel_abandoned(older_than=timedelta(0))

    assert canceled == 0
    assert_paid_once(payment)
    assert gateway.payment_intent_retrieve(payment.stripe_id).status == "succeeded"


def test_cancel_applies_what_stripe_says_when_the_intent_already_succeeded(sandbox):
    payment = awaiting_3ds(sandbox)
    authenticate_at_stripe(payment)

    result = payment_cancel(payment=payment)

    assert result.status == Payment.Status.SUCCEEDED
    assert_paid_once(payment)


def test_a_checkout_nobody_finished_is_canceled_once_old_enough(sandbox):
    payment = awaiting_3ds(sandbox)
    later = timezone.now() + timedelta(hours=25)

    assert payments_cancel_abandoned(older_than=timedelta(hours=24)) == 0
    assert Payment.objects.get(pk=payment.pk).status == Payment.Status.REQUIRES_ACTION

    assert payments_cancel_abandoned(older_than=timedelta(hours=24), now=later) == 1
    payment.refresh_from_db()
    assert payment.status == Payment.Status.CANCELED
    assert gateway.payment_intent_retrieve(payment.stripe_id).status == "canceled"
    assert payment.events.filter(kind=PaymentEvent.Kind.CANCELED).count() == 1
