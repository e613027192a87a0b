"""The mobile flow end to end, over real HTTP as an app makes it: log in, pick a price, order,
pay, confirm at Stripe with the client secret and the publishable key (as PaymentSheet does),
then Stripe's webhook reaches Paydesk, a real worker applies it, and the app sees the order paid
and the payment in its history."""

import pytest
import requests

from tests.api.conftest import RETURN_URL, SDK_STRIPE_VERSION, mobile_sdk
from tests.conftest import wait_for
from tests.factories import PriceFactory

WEBHOOK_PATH = "/webhooks/stripe/"


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_mobile_customer_pays_an_order_with_payment_sheet(
    sandbox, live_server, celery_worker, customer, password
):
    sandbox.configure_webhooks([live_server.url + WEBHOOK_PATH])
    PriceFactory(currency="EUR", unit_amount=1999)
    api = requests.Session()
    base = live_server.url + "/api/v1"

    token = api.post(f"{base}/auth/token/",
                     json={"username": customer.username, "password": password})
    assert token.status_code == 200
    api.headers["Authorization"] = f"Token {token.json()['token']}"

    (product,) = api.get(f"{base}/products/").json()
    price = product["prices"][0]
    order = api.post(f"{base}/orders/", json={"lines": [{"price": price["id"], "quantity": 2}]},
                     headers={"Idempotency-Key": "app-order-1"}).json()
    assert (order["total_amount"], order["currency"]) == (3998, "EUR")

    sheet = api.post(f"{base}/orders/{order['number']}/pay/",
                     headers={"Idempotency-Key": "app-pay-1",
                              "Stripe-Version": SDK_STRIPE_VERSION})
    assert sheet.status_code == 200
    sheet = sheet.json()

    # PaymentSheet on the device: Stripe with the publishable key and the client secret only.
    sdk = mobile_sdk(sandbox, sheet["publishable_key"])
    confirmed = sdk.v1.payment_intents.confirm(sheet["payment_intent"], params={
        "client_secret": sheet["payment_intent_client_secret"],
        "payment_method": "pm_card_visa", "return_url": RETURN_URL,
    })
    assert confirmed.status == "succeeded"

    def order_paid():
        return api.get(f"{base}/orders/{order['number']}/").json()["status"] == "paid"

    wait_for(order_paid, timeout=30, what="the webhook to mark the order paid")
    sandbox.wait_for_deliveries(event_type="payment_intent.succeeded")
    (payment,) = api.get(f"{base}/payments/").json()["results"]
    assert payment["id"] == sheet["payment"]["id"]
    assert (payment["status"], payment["status_display"]) == ("succeeded", "Paid")
    assert (payment["amount_received"], payment["card_last4"]) == (3998, "4242")
    detail = api.get(f"{base}/payments/{payment['id']}/").json()
    assert [e["kind"] for e in detail["timeline"]] == ["requested", "succeeded"]

    paid_again = api.post(f"{base}/orders/{order['number']}/pay/",
                          headers={"Stripe-Version": SDK_STRIPE_VERSION})
    assert paid_again.status_code == 409
