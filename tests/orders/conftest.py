"""Helpers for the orders tests: a way to get a price past the database's checks."""

import pytest
from django.db import connection

from orders.models import Price

# The price checks added for issue 8 (finding 10); dropped inside one test's transaction only.
PRICE_RULE_CONSTRAINTS = ("price_currency_known", "price_three_decimal_ends_in_0")


@pytest.fixture
def insert_bad_price(db):
    """Returns insert(product, currency, unit_amount) -> Price: a row the rules forbid, as one
    written before the rules existed (or by SQL) would be. The checks are dropped for this test's
    transaction only, which the test's rollback restores."""

    def insert(*, product, currency: str, unit_amount: int) -> Price:
        with connection.cursor() as cursor:
            # Run the deferred foreign-key checks now: PostgreSQL alters no table with some pending.
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            for name in PRICE_RULE_CONSTRAINTS:
                cursor.execute(f'ALTER TABLE orders_price DROP CONSTRAINT IF EXISTS "{name}"')
        (price,) = Price.objects.bulk_create(
            [Price(product=product, currency=currency, unit_amount=unit_amount)]
        )
        return price

    return insert
