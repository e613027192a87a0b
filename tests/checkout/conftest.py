"""A small catalogue for the checkout pages' tests (users come from tests/conftest.py)."""

import pytest

from tests.factories import PriceFactory


@pytest.fixture
def usd_price(db):
    return PriceFactory(product__name="Ceramic mug", currency="USD", unit_amount=1450)
