"""The shop, the order list and the order page: who may see what, and the shop's validation."""

import pytest
from django.urls import reverse

from orders.forms import UNKNOWN_PRICE
from orders.models import Order
from orders.services import BAD_QUANTITY
from tests.factories import PriceFactory, UserFactory, make_order

pytestmark = pytest.mark.django_db


def customer_pages(order):
    return [
        reverse("orders:shop"),
        reverse("orders:list"),
        reverse("orders:detail", kwargs={"number": order.number}),
        reverse("payments:checkout", kwargs={"token": order.checkout_token}),
        reverse("payments:checkout-return", kwargs={"token": order.checkout_token}),
    ]


def test_every_customer_page_needs_a_login(client, customer):
    order = make_order(customer=customer)
    for url in customer_pages(order):
        response = client.get(url)
        assert response.status_code == 302, url
        assert response["Location"] == f"{reverse('login')}?next={url}"
    assert client.post(reverse("orders:shop")).status_code == 302


@pytest.mark.parametrize("who", ["other_customer", "staff"])
def test_another_customers_order_is_not_found_even_for_staff(client, customer, who, request):
    order = make_order(customer=customer)
    client.force_login(request.getfixturevalue(who))
    for url in customer_pages(order)[2:]:
        assert client.get(url).status_code == 404, url
    checkout = customer_pages(order)[3]
    assert client.post(checkout, {"payment_method": "pm_card_visa"}).status_code == 404
    assert order.payments.count() == 0
    assert order.number.encode() not in client.get(reverse("orders:list")).content


def test_shop_lists_active_prices_formatted(customer_client, usd_price):
    PriceFactory(product__name="Matcha tin", currency="JPY", unit_amount=1800)
    PriceFactory(product__name="Retired thing", currency="USD", unit_amount=100, active=False)
    PriceFactory(product__name="Hidden product", product__active=False)

    response = customer_client.get(reverse("orders:shop"))

    assert response.status_code == 200
    html = response.content.decode()
    assert "Ceramic mug" in html and "$14.50" in html
    assert "Matcha tin" in html and "¥1,800" in html
    assert "Retired thing" not in html and "Hidden product" not in html
    assert 'name="csrfmiddlewaretoken"' in html


def test_buy_creates_an_order_from_catalogue_prices_and_goes_to_its_checkout(
    customer_client, customer, usd_price
):
    response = customer_client.post(
        reverse("orders:shop"), {"price": usd_price.pk, "quantity": "3", "amount": "1"}
    )

    order = Order.objects.get(customer=customer)
    assert response.status_code == 302
    assert response["Location"] == order.get_checkout_url()
    assert (order.total_amount, order.currency, order.status) == (4350, "USD", "pending")
    assert [(line.description, line.quantity) for line in order.lines.all()] == [("Ceramic mug", 3)]


@pytest.mark.parametrize("quantity", ["0", "101", "abc", "", "1.5", "-1"])
def test_buy_refuses_a_bad_quantity_next_to_the_field(customer_client, usd_price, quantity):
    response = customer_client.post(
        reverse("orders:shop"), {"price": usd_price.pk, "quantity": quantity}
    )

    assert response.status_code == 400
    html = response.content.decode()
    assert f'id="quantity-{usd_price.pk}-error">{BAD_QUANTITY}<' in html
    assert 'aria-invalid="true"' in html
    assert Order.objects.count() == 0


@pytest.mark.parametrize("case", ["unknown", "inactive price", "inactive product", "missing"])
def test_buy_refuses_a_price_that_is_not_for_sale(customer_client, usd_price, case):
    data = {"price": usd_price.pk, "quantity": "1"}
    if case == "unknown":
        data["price"] = "999999"
    elif case == "inactive price":
        usd_price.active = False
        usd_price.save()
    elif case == "inactive product":
        usd_price.product.active = False
        usd_price.product.save()
    else:
        del data["price"]

    response = customer_client.post(reverse("orders:shop"), data)

    assert response.status_code == 400
    assert UNKNOWN_PRICE in response.content.decode()
    assert Order.objects.count() == 0


def test_orders_list_shows_only_mine_with_totals_and_status_without_n_plus_1(
    customer_client, customer, django_assert_max_num_queries
):
    orders = [make_order(customer=customer, unit_amount=1000 + i) for i in range(10)]
    orders[0].status = Order.Status.PAID
    orders[0].save()
    make_order(customer=UserFactory(username="someone-else"))

    with django_assert_max_num_queries(5):
        response = customer_client.get(reverse("orders:list"))

    html = response.content.decode()
    assert response.status_code == 200
    assert html.count('class="card order-row"') == 10
    assert "$10.09" in html and "Pending payment" in html
    assert 'class="status status-paid">Paid<' in html


def test_order_page_shows_lines_total_and_pay_now_while_payable(customer_client, customer):
    order = make_order(customer=customer, currency="EUR", unit_amount=4900, quantity=2)

    html = customer_client.get(order.get_absolute_url()).content.decode()

    assert order.number in html and "€49.00" in html and "€98.00" in html
    assert f'href="{order.get_checkout_url()}">Pay now<' in html

    order.status = Order.Status.PAID
    order.save()
    html = customer_client.get(order.get_absolute_url()).content.decode()
    assert "Pay now" not in html and ">Paid<" in html


def test_seed_demo_adds_the_demo_catalogue_once(db):
    from django.core.management import call_command

    from orders.models import Price

    call_command("seed_demo")
    call_command("seed_demo")

    currencies = sorted(Price.objects.values_list("currency", flat=True))
    assert currencies.count("EUR") == 1 and currencies.count("JPY") == 1
    assert currencies.count("USD") >= 3
    assert len(currencies) == len(set(Price.objects.values_list("product_id", "currency")))
