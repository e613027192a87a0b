"""The shop, the order list and the order page: who may see what, and the shop's validation."""

import re
import uuid

import pytest
from django.urls import reverse

from orders.forms import FORM_EXPIRED, UNKNOWN_PRICE
from orders.models import Order
from orders.services import BAD_QUANTITY, SUBMISSION_REUSED
from orders.views import ORDERS_PER_PAGE
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
        reverse("orders:shop"),
        {"price": usd_price.pk, "quantity": "3", "amount": "1", "submission_token": uuid.uuid4()},
    )

    order = Order.objects.get(customer=customer)
    assert response.status_code == 302
    assert response["Location"] == order.get_checkout_url()
    assert (order.total_amount, order.currency, order.status) == (4350, "USD", "pending")
    assert [(line.description, line.quantity) for line in order.lines.all()] == [("Ceramic mug", 3)]


@pytest.mark.parametrize("quantity", ["0", "101", "abc", "", "1.5", "-1"])
def test_buy_refuses_a_bad_quantity_next_to_the_field(customer_client, usd_price, quantity):
    response = customer_client.post(
        reverse("orders:shop"),
        {"price": usd_price.pk, "quantity": quantity, "submission_token": uuid.uuid4()},
    )

    assert response.status_code == 400
    html = response.content.decode()
    assert f'id="quantity-{usd_price.pk}-error">{BAD_QUANTITY}<' in html
    assert 'aria-invalid="true"' in html
    assert Order.objects.count() == 0


@pytest.mark.parametrize("case", ["unknown", "inactive price", "inactive product", "missing"])
def test_buy_refuses_a_price_that_is_not_for_sale(customer_client, usd_price, case):
    data = {"price": usd_price.pk, "quantity": "1", "submission_token": uuid.uuid4()}
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


def shop_form_token(html: str, price) -> str:
    """The submission token rendered into `price`'s Buy form on the shop page."""
    form = re.search(
        rf'<input type="hidden" name="price" value="{price.pk}">.*?</form>', html, re.S
    )
    assert form, f"no Buy form for price {price.pk}"
    token = re.search(r'name="submission_token" value="([0-9a-f-]{36})"', form.group(0))
    assert token, "the Buy form carries no submission token"
    return token.group(1)


def test_each_buy_form_carries_its_own_fresh_submission_token(customer_client, usd_price):
    other = PriceFactory(product=usd_price.product, currency="EUR", unit_amount=1300)

    first_page = customer_client.get(reverse("orders:shop"))
    html = first_page.content.decode()
    again = customer_client.get(reverse("orders:shop")).content.decode()

    tokens = {shop_form_token(html, usd_price), shop_form_token(html, other)}
    assert len(tokens) == 2
    assert shop_form_token(again, usd_price) not in tokens
    assert "no-store" in first_page["Cache-Control"]


def test_a_double_click_on_buy_makes_one_order_and_both_clicks_land_on_its_checkout(
    customer_client, customer, usd_price
):
    html = customer_client.get(reverse("orders:shop")).content.decode()
    data = {"price": usd_price.pk, "quantity": "2",
            "submission_token": shop_form_token(html, usd_price)}

    first = customer_client.post(reverse("orders:shop"), data)
    second = customer_client.post(reverse("orders:shop"), data)

    order = Order.objects.get(customer=customer)
    assert first.status_code == second.status_code == 302
    assert first["Location"] == second["Location"] == order.get_checkout_url()
    assert order.total_amount == 2900


@pytest.mark.parametrize("token", [None, "", "not-a-uuid"])
def test_buy_without_a_valid_submission_token_is_refused(customer_client, usd_price, token):
    data = {"price": usd_price.pk, "quantity": "1"}
    if token is not None:
        data["submission_token"] = token

    response = customer_client.post(reverse("orders:shop"), data)

    assert response.status_code == 400
    assert FORM_EXPIRED in response.content.decode()
    assert Order.objects.count() == 0


def test_orders_list_is_paginated_with_a_bounded_number_of_queries(
    customer_client, customer, django_assert_max_num_queries
):
    orders = [make_order(customer=customer, unit_amount=1000 + i) for i in range(60)]
    newest_first = [order.number for order in reversed(orders)]
    url = reverse("orders:list")

    pages = []
    for number in (1, 2, 3):
        with django_assert_max_num_queries(5):
            response = customer_client.get(url, {"page": number})
        assert response.status_code == 200
        html = response.content.decode()
        pages.append(re.findall(r'class="order-number" href="[^"]+">(PD-[0-9A-F]+)<', html))
        assert f"Page {number} of 3" in html

    assert [len(page) for page in pages] == [ORDERS_PER_PAGE, ORDERS_PER_PAGE, 10]
    assert [number for page in pages for number in page] == newest_first
    first = customer_client.get(url).content.decode()
    assert 'href="?page=2"' in first and "?page=0" not in first
    last = customer_client.get(url, {"page": 3}).content.decode()
    assert 'href="?page=2"' in last and "?page=4" not in last


@pytest.mark.parametrize("page", ["4", "0", "-1", "abc"])
def test_orders_list_answers_404_for_a_page_that_does_not_exist(customer_client, customer, page):
    for i in range(ORDERS_PER_PAGE * 2 + 1):
        make_order(customer=customer, unit_amount=1000 + i)

    assert customer_client.get(reverse("orders:list"), {"page": page}).status_code == 404


def test_orders_list_without_orders_invites_to_the_shop(customer_client):
    response = customer_client.get(reverse("orders:list"))

    assert response.status_code == 200
    assert "You have no orders yet." in response.content.decode()
    assert "Page 1 of" not in response.content.decode()


def test_a_used_form_sent_again_with_another_quantity_is_refused_in_words(
    customer_client, customer, usd_price
):
    token = shop_form_token(customer_client.get(reverse("orders:shop")).content.decode(), usd_price)
    data = {"price": usd_price.pk, "quantity": "1", "submission_token": token}
    assert customer_client.post(reverse("orders:shop"), data).status_code == 302

    response = customer_client.post(reverse("orders:shop"), {**data, "quantity": "3"})

    assert response.status_code == 400
    assert SUBMISSION_REUSED in response.content.decode()
    assert Order.objects.get(customer=customer).total_amount == 1450
