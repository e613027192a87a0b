"""Catalogue prices follow the money rules (issue 8, finding 10): the admin shows a field error,
the database refuses a bad row however it is written, and a bad row that exists anyway cannot
be bought (a clear OrderError, never a bare ValueError)."""

import uuid

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.urls import reverse

from money import (
    CURRENCY_FORMAT_MESSAGE,
    THREE_DECIMAL_LAST_DIGIT_MESSAGE,
    UNKNOWN_CURRENCY_MESSAGE,
)
from orders.forms import UNKNOWN_PRICE
from orders.models import PRICE_NOT_POSITIVE, Order, Price, Product
from orders.services import PRICE_UNAVAILABLE, OrderError, order_create
from tests.factories import PriceFactory, ProductFactory, UserFactory

pytestmark = pytest.mark.django_db

BAD_PRICES = [
    ("KWD", 1235, "unit_amount",
     THREE_DECIMAL_LAST_DIGIT_MESSAGE.format(currency="KWD", amount=1235)),
    ("TND", 5, "unit_amount", THREE_DECIMAL_LAST_DIGIT_MESSAGE.format(currency="TND", amount=5)),
    ("ABC", 1000, "currency", UNKNOWN_CURRENCY_MESSAGE.format(currency="ABC")),
    ("usd", 1000, "currency", CURRENCY_FORMAT_MESSAGE.format(currency="usd")),
    ("USD", 0, "unit_amount", PRICE_NOT_POSITIVE),
]


@pytest.mark.parametrize(("currency", "amount", "field", "message"), BAD_PRICES)
def test_full_clean_puts_the_money_rule_on_the_field(currency, amount, field, message):
    price = Price(product=ProductFactory(), currency=currency, unit_amount=amount)

    with pytest.raises(ValidationError) as caught:
        price.full_clean()

    assert caught.value.message_dict == {field: [message]}


@pytest.mark.parametrize(
    ("currency", "amount"), [("KWD", 1230), ("JPY", 1), ("USD", 1), ("ISK", 500)]
)
def test_full_clean_accepts_prices_stripe_accepts(currency, amount):
    Price(product=ProductFactory(), currency=currency, unit_amount=amount).full_clean()


def test_admin_shows_a_bad_inline_price_next_to_its_field_and_saves_nothing(staff_client):
    client = staff_client
    form = {
        "name": "Dates box", "slug": "dates-box", "description": "", "active": "on",
        "prices-TOTAL_FORMS": "2", "prices-INITIAL_FORMS": "0",
        "prices-MIN_NUM_FORMS": "0", "prices-MAX_NUM_FORMS": "1000",
        "prices-0-currency": "KWD", "prices-0-unit_amount": "1235", "prices-0-active": "on",
        "prices-1-currency": "ABC", "prices-1-unit_amount": "1000", "prices-1-active": "on",
    }

    response = client.post(reverse("admin:orders_product_add"), form)

    assert response.status_code == 200
    formset = response.context["inline_admin_formsets"][0].formset
    assert formset.errors == [
        {"unit_amount": [THREE_DECIMAL_LAST_DIGIT_MESSAGE.format(currency="KWD", amount=1235)]},
        {"currency": [UNKNOWN_CURRENCY_MESSAGE.format(currency="ABC")]},
    ]
    assert not Product.objects.exists() and not Price.objects.exists()


@pytest.mark.parametrize(
    ("currency", "amount"), [("KWD", 1235), ("ABC", 1000), ("usd", 1000), ("USD", 0)]
)
def test_the_database_refuses_a_bad_price_from_bulk_create(currency, amount):
    product = ProductFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        Price.objects.bulk_create([Price(product=product, currency=currency, unit_amount=amount)])
    assert not Price.objects.exists()


@pytest.mark.parametrize(
    "change", [{"unit_amount": 1235}, {"currency": "ABC"}, {"unit_amount": 0}]
)
def test_the_database_refuses_an_update_that_breaks_a_price(change):
    price = PriceFactory(currency="KWD", unit_amount=1230)
    with pytest.raises(IntegrityError), transaction.atomic():
        Price.objects.filter(pk=price.pk).update(**change)
    price.refresh_from_db()
    assert (price.currency, price.unit_amount) == ("KWD", 1230)


@pytest.mark.parametrize(("currency", "amount"), [("KWD", 1235), ("ABC", 1000)])
def test_order_create_refuses_a_bad_price_with_an_order_error(insert_bad_price, currency, amount):
    price = insert_bad_price(product=ProductFactory(), currency=currency, unit_amount=amount)

    with pytest.raises(OrderError) as caught:
        order_create(customer=UserFactory(), items=[(price, 1)])

    assert str(caught.value) == PRICE_UNAVAILABLE
    assert str(price)  # the admin can still show (and fix) it


def test_the_shop_skips_a_bad_price_and_still_sells_the_good_ones(client, insert_bad_price):
    good = PriceFactory(product__name="Ceramic mug", currency="KWD", unit_amount=1230)
    insert_bad_price(product=good.product, currency="KWD", unit_amount=1235)
    insert_bad_price(product=ProductFactory(name="Mystery box"), currency="ABC", unit_amount=900)
    client.force_login(UserFactory())

    response = client.get(reverse("orders:shop"))

    assert response.status_code == 200
    html = response.content.decode()
    assert "Ceramic mug" in html and "KWD1.230" in html
    assert "1.235" not in html and "Mystery box" not in html


def test_buying_a_bad_price_from_the_shop_form_is_refused_in_words(client, insert_bad_price):
    price = insert_bad_price(product=ProductFactory(), currency="KWD", unit_amount=1235)
    client.force_login(UserFactory())

    response = client.post(
        reverse("orders:shop"),
        {"price": price.pk, "quantity": "1", "submission_token": uuid.uuid4()},
    )

    assert response.status_code == 400
    assert UNKNOWN_PRICE in response.content.decode()
    assert not Order.objects.exists()
