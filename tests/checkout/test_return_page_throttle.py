"""The return page reads Stripe at most once per PAYDESK_RETURN_PAGE_STRIPE_INTERVAL per payment
(finding 8 of issue 7: 200 reloads in 3 s made 200 Stripe calls). Stripe reads are counted at
the sandbox; the clock is moved by ageing the payment's last Stripe read, not by waiting."""

from datetime import timedelta

import pytest
from django.db.models import F
from django.urls import reverse

from payments.models import Payment
from tests.factories import make_order

pytestmark = pytest.mark.django_db

INTERVAL = 3600.0  # seconds: every reload below falls inside one interval, however slow the run


@pytest.fixture
def order(customer):
    return make_order(customer=customer, unit_amount=1999)


def return_url(order) -> str:
    return reverse("payments:checkout-return", kwargs={"token": order.checkout_token})


def move_clock_past_interval(payment: Payment) -> None:
    """As if INTERVAL and a second had passed since the payment was last read from Stripe."""
    Payment.objects.filter(pk=payment.pk).update(
        stripe_checked_at=F("stripe_checked_at") - timedelta(seconds=INTERVAL + 1)
    )


def test_fifty_reloads_of_a_pending_payment_read_stripe_once_per_interval(
    sandbox, customer_client, order, settings
):
    settings.PAYDESK_RETURN_PAGE_STRIPE_INTERVAL = INTERVAL
    checkout = reverse("payments:checkout", kwargs={"token": order.checkout_token})
    customer_client.post(checkout, {"payment_method": "pm_card_authenticationRequired"})
    payment = Payment.objects.get(order=order)
    assert payment.status == "requires_action"
    reads = f"/v1/payment_intents/{payment.stripe_id}"
    move_clock_past_interval(payment)
    before = sandbox.requests().get(reads, 0)

    pages = [customer_client.get(return_url(order)) for _ in range(50)]

    assert {page.status_code for page in pages} == {200}
    assert all(b"Continue authentication" in page.content for page in pages)
    assert sandbox.requests()[reads] - before == 1

    move_clock_past_interval(payment)
    customer_client.get(return_url(order))

    assert sandbox.requests()[reads] - before == 2

