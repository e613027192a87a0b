"""Fixtures of the API's tests: clients holding a user's token, the Stripe-Version a mobile
SDK sends, and a Stripe client that acts as the mobile SDK does (publishable key only)."""

import pytest
import stripe
from django.core.cache import cache
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from tests.factories import PriceFactory

# What Stripe's mobile SDKs send as Stripe-Version (their pinned API version).
SDK_STRIPE_VERSION = "2026-10-28.endive"
RETURN_URL = "paydesk://stripe-redirect"


@pytest.fixture(autouse=True)
def _rate_limits_counted_from_zero(db):
    """API rate limits count in the cache (a database table), which outlives a transactional
    test's flush: every test starts from no requests counted."""
    cache.clear()


def token_client(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.get_or_create(user=user)[0]}")
    return client


@pytest.fixture
def api(customer) -> APIClient:
    """An API client holding `customer`'s token."""
    return token_client(customer)


@pytest.fixture
def other_api(other_customer) -> APIClient:
    return token_client(other_customer)


@pytest.fixture
def anonymous() -> APIClient:
    return APIClient()


@pytest.fixture
def price(db):
    return PriceFactory(currency="USD", unit_amount=2500)


def mobile_sdk(sandbox, publishable_key: str) -> stripe.StripeClient:
    """Stripe as the app sees it: the publishable key, client secrets, nothing else."""
    return stripe.StripeClient(
        publishable_key,
        base_addresses={"api": sandbox.url},
        stripe_version=SDK_STRIPE_VERSION,
        max_network_retries=0,
    )


def order_of(api, price, quantity: int = 1, **headers) -> dict:
    response = api.post("/api/v1/orders/", {"lines": [{"price": price.pk, "quantity": quantity}]},
                        headers=headers)
    assert response.status_code == 201, response.json()
    return response.json()


def pay(api, number: str, **headers):
    headers.setdefault("Stripe-Version", SDK_STRIPE_VERSION)
    return api.post(f"/api/v1/orders/{number}/pay/", headers=headers)
