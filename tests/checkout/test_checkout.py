"""The checkout and return pages against the sandbox: real HTTP, the real Stripe SDK."""

from urllib.error import HTTPError
from urllib.parse import parse_qs, urlsplit
from urllib.request import HTTPRedirectHandler, Request, build_opener

import pytest
from django.urls import reverse

from orders.models import Order
from payments import gateway
from payments.checkout import (
    AUTHENTICATION_FAILED,
    CARD_DECLINED,
    CARD_EXPIRED,
    INCORRECT_CVC,
    INSUFFICIENT_FUNDS,
    UNKNOWN_TEST_CARD,
)
from payments.models import Payment
from payments.services import ORDER_NOT_PAYABLE
from tests.factories import make_order

pytestmark = pytest.mark.django_db


@pytest.fixture
def order(customer):
    return make_order(customer=customer, unit_amount=1999)


def checkout_url(order) -> str:
    return reverse("payments:checkout", kwargs={"token": order.checkout_token})


def return_url(order) -> str:
    return reverse("payments:checkout-return", kwargs={"token": order.checkout_token})


def pay(client, order, payment_method: str):
    return client.post(checkout_url(order), {"payment_method": payment_method})


class _NoRedirect(HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def press_3ds_button(next_action_url: str, button: str) -> str:
    """Presses Complete or Fail on the sandbox's 3-D Secure page, as a browser would; returns
    where the sandbox redirects (our return URL with Stripe's query string)."""
    parts = urlsplit(next_action_url)
    opener = build_opener(_NoRedirect)
    request = Request(f"{parts.scheme}://{parts.netloc}{parts.path}/{button}", data=b"")
    try:
        opener.open(request)
    except HTTPError as exc:  # urllib's answer to the 303 it was told not to follow
        assert exc.code == 303
        return exc.headers["Location"]
    raise AssertionError("the 3-D Secure page did not redirect")


def test_checkout_page_starts_one_intent_and_offers_the_test_cards(sandbox, customer_client, order):
    response = customer_client.get(checkout_url(order))
    customer_client.get(checkout_url(order))

    assert response.status_code == 200
    payment = Payment.objects.get(order=order)
    assert payment.stripe_id.startswith("pi_") and payment.status == "requires_payment_method"
    html = response.content.decode()
    assert "$19.99" in html and order.number in html
    assert 'value="pm_card_visa" ' in html and "Visa — succeeds" in html
    assert "declined: insufficient funds" in html and "3-D Secure authentication" in html
    assert 'name="csrfmiddlewaretoken"' in html
    assert "js.stripe.com" not in html
    assert "script-src 'self' https://js.stripe.com" in response["Content-Security-Policy"]


def test_paying_with_visa_goes_to_the_success_page(sandbox, customer_client, order):
    response = pay(customer_client, order, "pm_card_visa")

    assert response.status_code == 303
    assert response["Location"] == f"http://testserver{return_url(order)}"
    order.refresh_from_db()
    assert order.status == Order.Status.PAID

    page = customer_client.get(response["Location"])
    html = page.content.decode()
    assert page.status_code == 200
    assert "Payment received" in html and "$19.99" in html and "Visa •••• 4242" in html
    assert f'href="{order.get_absolute_url()}"' in html


def test_a_decline_shows_the_reason_and_the_form_again(sandbox, customer_client, order):
    response = pay(customer_client, order, "pm_card_visa_chargeDeclinedInsufficientFunds")

    assert response.status_code == 402
    html = response.content.decode()
    assert 'role="alert"' in html and INSUFFICIENT_FUNDS in html
    assert 'name="payment_method"' in html
    order.refresh_from_db()
    assert order.status == Order.Status.FAILED
    order_page = customer_client.get(order.get_absolute_url()).content.decode()
    assert 'class="status status-failed">Payment failed<' in order_page
    assert 'class="status status-failed">Failed<' in order_page
    assert "Pay now" in order_page

    response = pay(customer_client, order, "pm_card_visa")
    assert response.status_code == 303
    order.refresh_from_db()
    assert order.status == Order.Status.PAID
    assert order.payments.count() == 1
    order_page = customer_client.get(order.get_absolute_url()).content.decode()
    assert "Visa •••• 4242" in order_page and 'class="status status-paid">Paid<' in order_page


@pytest.mark.parametrize(
    ("card", "message"),
    [
        ("pm_card_visa_chargeDeclined", CARD_DECLINED),
        ("pm_card_visa_chargeDeclinedLostCard", CARD_DECLINED),
        ("pm_card_chargeDeclinedExpiredCard", CARD_EXPIRED),
        ("pm_card_chargeDeclinedIncorrectCvc", INCORRECT_CVC),
    ],
)
def test_other_declines_show_their_messages(sandbox, customer_client, order, card, message):
    response = pay(customer_client, order, card)
    assert response.status_code == 402
    assert message in response.content.decode().replace("&#x27;", "'")


@pytest.mark.parametrize("choice", ["pm_card_bogus", "", "tok_visa"])
def test_an_unknown_test_card_is_a_field_error_and_nothing_is_confirmed(
    sandbox, customer_client, order, choice
):
    response = pay(customer_client, order, choice)

    assert response.status_code == 400
    assert UNKNOWN_TEST_CARD in response.content.decode()
    assert Payment.objects.get(order=order).confirm_attempts == 0


def test_3ds_redirects_to_the_authentication_page_and_completing_it_succeeds(
    sandbox, customer_client, order, settings
):
    # A customer spends longer than the interval on the 3-D Secure page; this test does not.
    settings.PAYDESK_RETURN_PAGE_STRIPE_INTERVAL = 0
    response = pay(customer_client, order, "pm_card_authenticationRequired")

    assert response.status_code == 303
    next_action_url = response["Location"]
    payment = Payment.objects.get(order=order)
    assert payment.status == "requires_action"
    assert next_action_url.startswith(f"{sandbox.url}/_sandbox/3ds/{payment.stripe_id}")

    waiting = customer_client.get(return_url(order))
    assert b'<meta http-equiv="refresh" content="2">' in waiting.content
    assert b"Continue authentication" in waiting.content

    back = press_3ds_button(next_action_url, "complete")
    parts = urlsplit(back)
    assert parts.path == return_url(order)
    assert parse_qs(parts.query)["payment_intent"] == [payment.stripe_id]

    page = customer_client.get(f"{parts.path}?{parts.query}")
    assert b"Payment received" in page.content
    order.refresh_from_db()
    assert order.status == Order.Status.PAID


def test_failed_3ds_says_so_clearly_and_links_back_to_checkout(
    sandbox, customer_client, order, settings
):
    # A customer spends longer than the interval on the 3-D Secure page; this test does not.
    settings.PAYDESK_RETURN_PAGE_STRIPE_INTERVAL = 0
    next_action_url = pay(customer_client, order, "pm_card_authenticationRequired")["Location"]
    back = urlsplit(press_3ds_button(next_action_url, "fail"))

    page = customer_client.get(f"{back.path}?{back.query}")

    html = page.content.decode()
    assert page.status_code == 200
    assert AUTHENTICATION_FAILED in html
    assert f'href="{checkout_url(order)}"' in html
    assert customer_client.get(checkout_url(order)).status_code == 200
    assert pay(customer_client, order, "pm_card_visa").status_code == 303


def test_return_page_refuses_another_intent_id(sandbox, customer_client, order):
    customer_client.get(checkout_url(order))
    other = make_order(customer=order.customer)
    customer_client.get(checkout_url(other))
    other_intent = Payment.objects.get(order=other).stripe_id

    response = customer_client.get(return_url(order), {"payment_intent": other_intent})

    assert response.status_code == 404


def test_return_page_before_any_attempt_goes_back_to_checkout(sandbox, customer_client, order):
    customer_client.get(checkout_url(order))
    response = customer_client.get(return_url(order))
    assert response.status_code == 302 and response["Location"] == checkout_url(order)


def test_a_paid_orders_checkout_redirects_to_the_order_with_a_message(
    sandbox, customer_client, order
):
    pay(customer_client, order, "pm_card_visa")

    response = customer_client.get(checkout_url(order), follow=True)

    assert response.redirect_chain == [(order.get_absolute_url(), 302)]
    assert ORDER_NOT_PAYABLE in response.content.decode()
    assert pay(customer_client, order, "pm_card_visa").status_code == 302


def test_payment_service_down_is_a_503_with_a_safe_message(sandbox, customer_client, order):
    sandbox.inject_fault("500", count=10, path="/v1/")

    response = customer_client.get(checkout_url(order))

    assert response.status_code == 503
    assert b"The payment service is unreachable right now." in response.content


def test_payment_element_mode_renders_stripe_js_with_the_client_secret(
    sandbox, customer_client, order, settings
):
    settings.PAYDESK_CHECKOUT_MODE = "payment_element"
    settings.STRIPE_PUBLISHABLE_KEY = "pk_test_checkout123"

    response = customer_client.get(checkout_url(order))

    assert response.status_code == 200
    payment = Payment.objects.get(order=order)
    client_secret = payment.stripe_object["client_secret"]
    assert client_secret.startswith(f"{payment.stripe_id}_secret_")
    html = response.content.decode()
    assert '<script src="https://js.stripe.com/v3/"></script>' in html
    assert client_secret in html and "pk_test_checkout123" in html
    assert f"http://testserver{return_url(order)}" in html
    assert 'id="payment-element"' in html and 'name="payment_method"' not in html
    assert "<script>" not in html  # no inline script: the CSP allows none

    csp = dict(
        directive.strip().split(" ", 1)
        for directive in response["Content-Security-Policy"].split(";")
    )
    assert csp["script-src"] == "'self' https://js.stripe.com https://*.js.stripe.com"
    assert csp["frame-src"].split() == [
        "https://js.stripe.com", "https://*.js.stripe.com", "https://hooks.stripe.com",
        "https://m.stripe.network",
    ]  # fmt: skip
    assert csp["connect-src"] == "'self' https://api.stripe.com"
    assert csp["frame-ancestors"] == "'none'" and csp["object-src"] == "'none'"
    assert pay(customer_client, order, "pm_card_visa").status_code == 405


def test_a_second_submit_after_stripe_already_confirmed_shows_the_outcome(
    sandbox, customer_client, order
):
    """A double click: the first confirm went through at Stripe before the second arrived."""
    customer_client.get(checkout_url(order))
    payment = Payment.objects.get(order=order)
    gateway.payment_intent_confirm(
        payment.stripe_id, payment_method="pm_card_visa", return_url="http://testserver/r",
        idempotency_key="first-click",
    )

    response = pay(customer_client, order, "pm_card_visa")

    assert response.status_code == 303
    assert response["Location"].endswith(return_url(order))
    assert customer_client.get(return_url(order)).status_code == 200
    assert Payment.objects.get(pk=payment.pk).status == "succeeded"
    assert Order.objects.get(pk=order.pk).status == Order.Status.PAID
