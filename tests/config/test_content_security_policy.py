"""Every page carries a Content-Security-Policy (django-csp): `default-src 'self'` everywhere,
Stripe's origins only on the checkout pages, where Stripe.js runs."""

import pytest
from django.urls import reverse

from payments.views import (
    STRIPE_CONNECT_SRC,
    STRIPE_FRAME_SRC,
    STRIPE_REDIRECT_ORIGINS,
    STRIPE_SCRIPT_SRC,
)
from tests.factories import UserFactory, make_order

pytestmark = pytest.mark.django_db

STRIPE_ORIGINS = {*STRIPE_SCRIPT_SRC, *STRIPE_FRAME_SRC, *STRIPE_CONNECT_SRC,
                  *STRIPE_REDIRECT_ORIGINS}  # fmt: skip


def policy(response) -> dict[str, list[str]]:
    header = response.headers.get("Content-Security-Policy")
    assert header, f"no Content-Security-Policy on {response.request['PATH_INFO']}"
    directives = {}
    for directive in header.split(";"):
        name, *values = directive.split()
        directives[name] = values
    return directives


def assert_site_policy(csp: dict[str, list[str]]) -> None:
    assert csp["default-src"] == ["'self'"]
    assert csp["object-src"] == ["'none'"]
    assert csp["base-uri"] == ["'self'"]
    assert csp["frame-ancestors"] == ["'none'"]
    assert csp["form-action"][0] == "'self'"
    assert "'unsafe-inline'" not in csp.get("script-src", [])


@pytest.mark.parametrize(
    ("url", "who"),
    [
        ("/", "anonymous"),
        ("/accounts/login/", "anonymous"),
        ("/healthz", "anonymous"),
        ("/admin/login/", "anonymous"),
        ("/", "customer"),
        ("/shop/", "customer"),
        ("/orders/", "customer"),
        ("/admin/", "staff"),
        ("/admin/payments/payment/", "staff"),
        ("/api/docs/", "customer"),
    ],
)
def test_every_page_has_the_site_policy_without_stripes_origins(client, url, who):
    if who != "anonymous":
        client.force_login(UserFactory(username=who, is_staff=who == "staff",
                                       is_superuser=who == "staff"))  # fmt: skip
    response = client.get(url)

    assert response.status_code in (200, 503), url  # /healthz may be 503 without a broker
    csp = policy(response)
    assert_site_policy(csp)
    assert csp["form-action"] == ["'self'"]
    header = response.headers["Content-Security-Policy"]
    assert not [origin for origin in STRIPE_ORIGINS if origin in header], header


def test_an_order_page_has_the_site_policy(customer, customer_client):
    order = make_order(customer=customer)

    csp = policy(customer_client.get(order.get_absolute_url()))

    assert_site_policy(csp)
    assert "https://js.stripe.com" not in csp.get("script-src", [])


def test_a_redirect_and_a_404_have_it_too(client):
    assert_site_policy(policy(client.get("/orders/")))  # to the login page
    assert_site_policy(policy(client.get("/no-such-page/")))


@pytest.mark.parametrize("mode", ["test_cards", "payment_element"])
def test_checkout_pages_add_stripes_origins_and_nothing_else(
    sandbox, customer, customer_client, settings, mode
):
    client = customer_client
    settings.PAYDESK_CHECKOUT_MODE = mode
    order = make_order(customer=customer)

    checkout = client.get(reverse("payments:checkout", kwargs={"token": order.checkout_token}))
    back = client.get(reverse("payments:checkout-return", kwargs={"token": order.checkout_token}))

    assert checkout.status_code == 200 and back.status_code == 302
    for response in (checkout, back):
        csp = policy(response)
        assert_site_policy(csp)
        assert csp["script-src"] == ["'self'", *STRIPE_SCRIPT_SRC]
        assert csp["frame-src"] == list(STRIPE_FRAME_SRC)
        assert csp["connect-src"] == ["'self'", *STRIPE_CONNECT_SRC]
        # 3-D Secure redirects follow the form's POST: Stripe's hooks, or the sandbox's page.
        assert csp["form-action"] == ["'self'", *STRIPE_REDIRECT_ORIGINS, sandbox.url]


def test_without_the_sandbox_checkout_allows_only_stripes_redirects(sandbox, client, settings):
    settings.STRIPE_API_BASE = None
    order = make_order(customer=UserFactory(username="ada"))
    client.force_login(order.customer)

    url = reverse("payments:checkout-return", kwargs={"token": order.checkout_token})
    response = client.get(url)

    assert policy(response)["form-action"] == ["'self'", *STRIPE_REDIRECT_ORIGINS]
