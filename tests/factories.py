"""factory-boy factories for the suite's models."""

import factory
from django.contrib.auth import get_user_model

from orders.models import Price, Product
from orders.services import order_create

# Every user the factory makes can log in with this password (tests' `password` fixture).
PASSWORD = "correct-horse-battery-staple"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"customer{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    password = factory.django.Password(PASSWORD)


class ProductFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Product

    name = factory.Sequence(lambda n: f"Product {n}")
    slug = factory.Sequence(lambda n: f"product-{n}")


class PriceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Price

    product = factory.SubFactory(ProductFactory)
    currency = "USD"
    unit_amount = 2500


def make_order(*, customer=None, currency: str = "USD", unit_amount: int = 2500, quantity=1):
    """A pending order for one product at `unit_amount` (minor units) x `quantity`."""
    price = PriceFactory(currency=currency, unit_amount=unit_amount)
    return order_create(customer=customer or UserFactory(), items=[(price, quantity)])
