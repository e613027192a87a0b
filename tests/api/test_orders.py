"""Orders through the API: amounts come from the catalogue, field-level errors, the customer's
own orders only, newest first, cancel."""

import pytest

from orders.models import Order
from orders.services import BAD_QUANTITY
from payments.services import ORDER_NOT_CANCELABLE
from tests.api.conftest import order_of, pay
from tests.factories import PriceFactory, make_order

pytestmark = pytest.mark.django_db


def test_an_order_is_priced_by_the_server(api, customer, price):
    response = api.post("/api/v1/orders/", {
        "lines": [{"price": price.pk, "quantity": 3}], "total_amount": 1,
    })

    assert response.status_code == 201
    body = response.json()
    assert body["total_amount"] == 7500 and body["currency"] == "USD"
    assert body["status"] == "pending"
    assert body["lines"] == [{"price": price.pk, "description": price.product.name,
                              "quantity": 3, "unit_amount": 2500, "amount": 7500}]
    assert Order.objects.get(number=body["number"]).customer == customer


def test_an_unknown_price_is_a_field_error(api, price):
    response = api.post("/api/v1/orders/", {
        "lines": [{"price": price.pk, "quantity": 1}, {"price": 999_999, "quantity": 1}],
    })

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert error["param"] == "lines.1.price"
    assert error["code"] == "parameter_invalid"
    assert not Order.objects.exists()


def test_every_field_at_fault_is_named(api):
    response = api.post("/api/v1/orders/", {"lines": [{"price": "x", "quantity": 0}]})

    assert response.status_code == 400
    errors = response.json()["error"]["errors"]
    assert {e["param"] for e in errors} == {"lines.0.price", "lines.0.quantity"}


def test_missing_lines_is_parameter_missing(api):
    error = api.post("/api/v1/orders/", {}).json()["error"]

    assert (error["code"], error["param"]) == ("parameter_missing", "lines")


def test_mixed_currencies_are_refused_with_the_services_words(api, price):
    euro = PriceFactory(currency="EUR")

    response = api.post("/api/v1/orders/", {
        "lines": [{"price": price.pk, "quantity": 1}, {"price": euro.pk, "quantity": 1}]
    })

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "order_invalid"


def test_quantity_above_the_limit_is_refused(api, price):
    response = api.post("/api/v1/orders/", {"lines": [{"price": price.pk, "quantity": 101}]})

    assert response.status_code == 400
    assert response.json()["error"]["param"] == "lines.0.quantity"
    assert BAD_QUANTITY  # the service's own check stays as a second line


def test_orders_are_the_customers_own_newest_first_with_a_cursor(api, customer, other_customer):
    mine = [make_order(customer=customer).number for _ in range(3)]
    make_order(customer=other_customer)

    first = api.get("/api/v1/orders/?limit=2").json()
    second = api.get(first["next"]).json()

    assert [o["number"] for o in first["results"] + second["results"]] == mine[::-1]
    assert second["next"] is None


def test_an_order_detail_shows_its_payments(api, customer, sandbox):
    order = make_order(customer=customer)
    assert pay(api, order.number).status_code == 200

    body = api.get(f"/api/v1/orders/{order.number}/").json()

    assert body["number"] == order.number
    assert [p["status"] for p in body["payments"]] == ["requires_payment_method"]


def test_cancel_cancels_the_order_and_its_intent_at_stripe(api, customer, sandbox):
    order = make_order(customer=customer)
    intent = pay(api, order.number).json()["payment_intent"]

    response = api.post(f"/api/v1/orders/{order.number}/cancel/")

    assert response.status_code == 200
    assert response.json()["status"] == "canceled"
    assert response.json()["payments"][0]["status"] == "canceled"
    assert sandbox.app.store.get("payment_intents", intent)["status"] == "canceled"


def test_a_canceled_order_cannot_be_canceled_or_paid(api, customer, price, sandbox):
    number = order_of(api, price)["number"]
    api.post(f"/api/v1/orders/{number}/cancel/")

    again = api.post(f"/api/v1/orders/{number}/cancel/")
    paying = pay(api, number)

    assert again.status_code == 409
    assert again.json()["error"] == {"type": "invalid_request_error",
                                     "code": "order_not_cancelable",
                                     "message": ORDER_NOT_CANCELABLE, "param": None}
    assert paying.status_code == 409
    assert paying.json()["error"]["code"] == "order_not_payable"
