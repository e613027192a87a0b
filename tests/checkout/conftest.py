"""Customers, their logged-in clients and a small catalogue for the checkout pages' tests."""

import pytest

from tests.factories import PriceFactory, UserFactory


@pytest.fixture
def customer(db):
    return UserFactory(username="ada")


@pytest.fixture
def other_customer(db):
    return UserFactory(username="bob")


@pytest.fixture
def staff(db):
    return UserFactory(username="grace", is_staff=True, is_superuser=True)


@pytest.fixture
def customer_client(client, customer):
    client.force_login(customer)
    return client


@pytest.fixture
def usd_price(db):
    return PriceFactory(product__name="Ceramic mug", currency="USD", unit_amount=1450)
