"""Every object the sandbox serves has every top-level key of Stripe's published fixture for
that resource (``vendor/stripe/fixtures3.json``), with a compatible JSON type."""

import io
import json
from pathlib import Path

import pytest

from tests.sandbox.conftest import raw_request

FIXTURES = Path(__file__).resolve().parents[2] / "vendor" / "stripe" / "fixtures3.json"

# Keys Stripe's API reference documents as nullable although the fixture shows a value;
# the sandbox returns null for them in the situations listed.
NULLABLE = {
    "customer": {"address", "discount", "shipping", "currency"},
    "payment_intent": {"automatic_payment_methods", "canceled_at", "last_payment_error",
                       "next_action", "payment_method_configuration_details", "processing",
                       "shipping", "transfer_data"},
    "setup_intent": {"automatic_payment_methods", "last_setup_error", "next_action",
                     "payment_method_configuration_details"},
    "charge": {"description", "shipping", "source", "transfer_data"},
    "price": {"custom_unit_amount", "recurring", "transform_quantity"},
    "product": {"default_price", "description", "package_dimensions", "shippable"},
    "webhook_endpoint": {"description"},
}


def _fixtures():
    return json.loads(FIXTURES.read_text())["resources"]


def _type(value):
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    return {str: "string", dict: "object", list: "array"}[type(value)]


def _post(sandbox, path, params):
    response = raw_request(sandbox, "POST", path, params)
    assert response.status == 200, response.body
    return response.body


def _get(sandbox, path, params=None):
    response = raw_request(sandbox, "GET", path, params)
    assert response.status == 200, response.body
    return response.body


def _paid_intent(sandbox, card="pm_card_visa"):
    return _post(sandbox, "/v1/payment_intents", {
        "amount": 2000, "currency": "usd", "payment_method": card, "confirm": "true",
        "payment_method_types[0]": "card",
    })


def _objects(sandbox):
    """One live object per resource, fetched as raw JSON."""
    customer = _post(sandbox, "/v1/customers", {"email": "jenny@example.com"})
    pm = _post(sandbox, "/v1/payment_methods/pm_card_visa/attach", {"customer": customer["id"]})
    setup = _post(sandbox, "/v1/setup_intents", {"customer": customer["id"]})
    intent = _paid_intent(sandbox)
    charge = _get(sandbox, f"/v1/charges/{intent['latest_charge']}")
    refund = _post(sandbox, "/v1/refunds", {"payment_intent": intent["id"], "amount": "500"})
    disputed = _paid_intent(sandbox, "pm_card_createDispute")
    sandbox.advance()
    dispute = _get(sandbox, "/v1/disputes", {"charge": disputed["latest_charge"]})["data"][0]
    event = _get(sandbox, "/v1/events", {"limit": "1"})["data"][0]
    key = raw_request(sandbox, "POST", "/v1/ephemeral_keys", {"customer": customer["id"]},
                      headers={"Stripe-Version": "2024-06-20"}).body
    session = _post(sandbox, "/v1/customer_sessions", {
        "customer": customer["id"], "components[mobile_payment_element][enabled]": "true"})
    product = _post(sandbox, "/v1/products", {"name": "T-shirt"})
    price = _post(sandbox, "/v1/prices", {"product": product["id"], "currency": "usd",
                                          "unit_amount": "2000", "recurring[interval]": "month"})
    endpoint = _post(sandbox, "/v1/webhook_endpoints", {
        "url": "http://127.0.0.1:9/hook", "enabled_events[0]": "charge.succeeded"})
    return {
        "customer": customer, "payment_method": pm, "setup_intent": setup,
        "payment_intent": intent, "charge": charge, "refund": refund, "dispute": dispute,
        "event": event, "ephemeral_key": key, "customer_session": session, "product": product,
        "price": price, "webhook_endpoint": endpoint,
    }


RESOURCES = ["customer", "payment_method", "setup_intent", "payment_intent", "charge",
             "refund", "dispute", "event", "ephemeral_key", "customer_session", "product",
             "price", "webhook_endpoint", "file"]


@pytest.mark.parametrize("resource", RESOURCES)
def test_sandbox_object_has_every_key_of_stripes_fixture(sandbox, stripe_client, resource):
    if resource == "file":
        receipt = io.BytesIO(b"%PDF-1.7\n%receipt\n")  # Stripe takes only PDF, JPEG, PNG
        receipt.name = "receipt.pdf"
        upload = stripe_client.v1.files.create(
            params={"purpose": "dispute_evidence", "file": receipt}
        )
        obj = _get(sandbox, f"/v1/files/{upload.id}")
    else:
        obj = _objects(sandbox)[resource]
    fixture = _fixtures()[resource]
    missing = sorted(set(fixture) - set(obj))
    assert missing == [], f"{resource} lacks {missing}"
    mismatched = {
        key: (_type(obj[key]), _type(expected))
        for key, expected in fixture.items()
        if expected is not None
        and _type(obj[key]) != _type(expected)
        and not (obj[key] is None and key in NULLABLE.get(resource, set()))
    }
    assert mismatched == {}
    assert obj["object"] == fixture["object"]
    assert obj["livemode"] is False
    if "id" in fixture:
        assert obj["id"].split("_")[0] == fixture["id"].split("_")[0]
    else:  # a Customer Session: known by its client secret only
        assert "id" not in obj
