"""After a failed payment every customer page says why in the customer's words (one mapping,
payments.checkout.customer_failure_message), never Stripe's developer message, and the checkout
no longer preselects the card that failed. Staff still see Stripe's message in the admin."""

import re
from urllib.parse import urlsplit

import pytest
from django.test import Client
from django.urls import reverse

from payments.checkout import (
    AUTHENTICATION_FAILED,
    AUTHENTICATION_REQUIRED,
    CARD_DECLINED,
    CARD_EXPIRED,
    INCORRECT_CVC,
    INSUFFICIENT_FUNDS,
    PAYMENT_FAILED,
    PROCESSING_ERROR,
    customer_failure_message,
)
from payments.models import Payment
from tests.checkout.test_checkout import checkout_url, pay, press_3ds_button, return_url
from tests.factories import make_order

pytestmark = pytest.mark.django_db

CHECKED_CARD = re.compile(r'<input type="radio" name="payment_method" value="([^"]+)"[^>]*checked')


@pytest.fixture
def order(customer):
    return make_order(customer=customer, unit_amount=1999)


def html_of(response) -> str:
    return response.content.decode().replace("&#x27;", "'")


def checked_cards(html: str) -> list[str]:
    return CHECKED_CARD.findall(html)


@pytest.mark.parametrize(
    ("failure_code", "decline_code", "words"),
    [
        ("card_declined", "insufficient_funds", INSUFFICIENT_FUNDS),
        ("card_declined", "generic_decline", CARD_DECLINED),
        ("card_declined", "lost_card", CARD_DECLINED),
        ("card_declined", "stolen_card", CARD_DECLINED),
        ("card_declined", "fraudulent", CARD_DECLINED),
        ("expired_card", "expired_card", CARD_EXPIRED),
        ("incorrect_cvc", "incorrect_cvc", INCORRECT_CVC),
        ("processing_error", "processing_error", PROCESSING_ERROR),
        ("payment_intent_authentication_failure", "", AUTHENTICATION_FAILED),
        ("authentication_required", "authentication_required", AUTHENTICATION_REQUIRED),
        # A decline code this table does not know: the error code still says "declined".
        ("card_declined", "some_new_code", CARD_DECLINED),
        # Nothing known at all: the safe default.
        ("some_new_error", "", PAYMENT_FAILED),
        ("", "", PAYMENT_FAILED),
    ],
)
def test_one_mapping_from_stripes_codes_to_customer_words(failure_code, decline_code, words):
    assert customer_failure_message(failure_code=failure_code, decline_code=decline_code) == words


def test_after_insufficient_funds_every_page_shows_the_customer_words(
    sandbox, customer_client, order, staff
):
    declined = pay(customer_client, order, "pm_card_visa_chargeDeclinedInsufficientFunds")

    payment = Payment.objects.get(order=order)
    stripe_text = payment.failure_message
    assert stripe_text == "Your card has insufficient funds."  # what Stripe says to developers
    assert (payment.failure_code, payment.decline_code) == ("card_declined", "insufficient_funds")
    pages = {
        "checkout after the decline": declined,
        "return page": customer_client.get(return_url(order)),
        "order page": customer_client.get(order.get_absolute_url()),
    }
    assert declined.status_code == 402
    for name, response in pages.items():
        html = html_of(response)
        assert INSUFFICIENT_FUNDS in html, name
        assert stripe_text not in html, name
    assert stripe_text not in html_of(customer_client.get(reverse("orders:list")))
    # The declined card is not chosen for the customer, neither right after the decline nor later.
    assert checked_cards(html_of(declined)) == []
    assert checked_cards(html_of(customer_client.get(checkout_url(order)))) == []
    # Staff see what Stripe said.
    staff_client = Client()
    staff_client.force_login(staff)
    admin_page = staff_client.get(reverse("admin:payments_payment_change", args=[payment.pk]))
    assert stripe_text in html_of(admin_page)


def test_after_a_failed_3ds_every_page_shows_the_customer_words(
    sandbox, customer_client, order, settings
):
    # A customer spends longer than the interval on the 3-D Secure page; this test does not.
    settings.PAYDESK_RETURN_PAGE_STRIPE_INTERVAL = 0
    next_action_url = pay(customer_client, order, "pm_card_authenticationRequired")["Location"]
    back = urlsplit(press_3ds_button(next_action_url, "fail"))

    failed = customer_client.get(f"{back.path}?{back.query}")

    payment = Payment.objects.get(order=order)
    assert payment.failure_code == "payment_intent_authentication_failure"
    assert payment.failure_message.startswith("The provided PaymentMethod has failed")
    for name, response in {
        "return page": failed,
        "order page": customer_client.get(order.get_absolute_url()),
        "checkout": customer_client.get(checkout_url(order)),
        "orders list": customer_client.get(reverse("orders:list")),
    }.items():
        html = html_of(response)
        assert "PaymentMethod" not in html and "payment_method_data" not in html, name
        assert "failed authentication" not in html, name
    assert AUTHENTICATION_FAILED in html_of(failed)
    assert AUTHENTICATION_FAILED in html_of(customer_client.get(order.get_absolute_url()))
    assert checked_cards(html_of(customer_client.get(checkout_url(order)))) == []


def test_before_any_failure_the_checkout_preselects_the_default_card(
    sandbox, customer_client, order
):
    assert checked_cards(html_of(customer_client.get(checkout_url(order)))) == ["pm_card_visa"]
