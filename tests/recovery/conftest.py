import pytest

from recovery import services
from recovery.models import Plan
from tests.factories import PriceFactory

RETURN_URL = "https://example.com/return"


@pytest.fixture
def plan(db):
    price = PriceFactory(currency="USD", unit_amount=1500)
    return Plan.objects.create(name="Coffee club", slug="coffee-club", price=price)


def save_card(user, test_card: str):
    """A card saved by a SetupIntent (confirmed on the server), as the sign-up page does."""
    _, card = services.card_setup(user=user, test_payment_method=test_card,
                                  return_url=RETURN_URL, idempotency_key=f"setup:{test_card}")
    return card
