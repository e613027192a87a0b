"""What Stripe rejects, the sandbox rejects too (issue 8, finding 11), through the real SDK."""

import json
from pathlib import Path

import pytest
import stripe

from payments.sandbox.resources.common import EXPANDABLE
from payments.sandbox.server import EVENT_TYPES

VENDOR = Path(__file__).resolve().parents[2] / "vendor" / "stripe"
# Added after the vendored spec's API version (2023-08-16): docs.stripe.com/changelog/acacia/
# 2024-10-28/refund-webhook-update.
LATER_EVENT_TYPES = {"refund.failed"}


def create_intent(client, **params):
    return client.v1.payment_intents.create(
        params={"amount": 1000, "currency": "usd", "payment_method_types": ["card"], **params}
    )


@pytest.mark.parametrize("currency", ["xyz", "12"])
def test_an_unsupported_currency_is_rejected(stripe_client, currency):
    with pytest.raises(stripe.InvalidRequestError) as caught:
        create_intent(stripe_client, currency=currency)
    error = caught.value.error
    assert error.param == "currency"
    assert error.message.startswith(
        f"Invalid currency: {currency}. Stripe currently supports these currencies: usd, aed,"
    )
    assert stripe_client.v1.payment_intents.list().data == []


def test_a_supported_currency_in_capitals_is_taken_lowercased(stripe_client):
    assert create_intent(stripe_client, currency="EUR").currency == "eur"


def test_an_update_to_an_unsupported_currency_is_rejected(stripe_client):
    intent = create_intent(stripe_client)
    with pytest.raises(stripe.InvalidRequestError, match="Invalid currency: xyz"):
        stripe_client.v1.payment_intents.update(intent.id, params={"currency": "xyz"})
    assert stripe_client.v1.payment_intents.retrieve(intent.id).currency == "usd"


def test_amounts_have_at_most_eight_digits(stripe_client):
    assert create_intent(stripe_client, amount=99_999_999).amount == 99_999_999
    with pytest.raises(stripe.InvalidRequestError) as caught:
        create_intent(stripe_client, amount=100_000_000)
    error = caught.value.error
    assert (error.code, error.param) == ("amount_too_large", "amount")
    assert error.message == "Amount must be no more than $999,999.99"
    intent = create_intent(stripe_client, currency="jpy")
    with pytest.raises(stripe.InvalidRequestError) as caught:
        stripe_client.v1.payment_intents.update(intent.id, params={"amount": 100_000_000})
    assert caught.value.error.message == "Amount must be no more than 99,999,999 jpy"
    assert stripe_client.v1.payment_intents.retrieve(intent.id).amount == 1000


def test_metadata_keys_and_values_have_stripes_limits(stripe_client):
    fits = {"k" * 40: "v" * 500}
    assert create_intent(stripe_client, metadata=fits).metadata.to_dict() == fits
    with pytest.raises(stripe.InvalidRequestError) as caught:
        create_intent(stripe_client, metadata={"k" * 41: "v"})
    assert caught.value.error.param == "metadata"
    key = "k" * 41
    assert caught.value.error.message == f"Invalid key: {key} must be a string under 40 characters"
    with pytest.raises(stripe.InvalidRequestError, match="must be a string under 500 characters"):
        stripe_client.v1.customers.create(params={"metadata": {"note": "v" * 501}})
    with pytest.raises(stripe.InvalidRequestError) as caught:
        stripe_client.v1.customers.create(
            params={"metadata": {f"key{n}": "v" for n in range(51)}}
        )
    assert caught.value.error.message == "Metadata can have up to 50 keys, but you've set 51."
    assert stripe_client.v1.customers.list().data == []


def test_an_update_with_bad_metadata_changes_nothing(stripe_client):
    intent = create_intent(stripe_client)
    with pytest.raises(stripe.InvalidRequestError):
        stripe_client.v1.payment_intents.update(
            intent.id, params={"amount": 2000, "metadata": {"k" * 41: "v"}}
        )
    assert stripe_client.v1.payment_intents.retrieve(intent.id).amount == 1000


@pytest.mark.parametrize("field", ["amount", "metadata", "id", "client_secret", "status", "nope"])
def test_only_expandable_fields_expand(stripe_client, field):
    intent = create_intent(stripe_client, payment_method="pm_card_visa", confirm=True)
    with pytest.raises(stripe.InvalidRequestError) as caught:
        stripe_client.v1.payment_intents.retrieve(intent.id, params={"expand": [field]})
    assert caught.value.error.message == f"This property cannot be expanded ({field})."
    assert caught.value.http_status == 400


def test_expansion_goes_through_sub_objects_and_lists(stripe_client):
    customer = stripe_client.v1.customers.create()
    stripe_client.v1.payment_methods.attach("pm_card_visa", params={"customer": customer.id})
    pm = stripe_client.v1.customers.payment_methods.list(customer.id).data[0]
    stripe_client.v1.customers.update(
        customer.id, params={"invoice_settings": {"default_payment_method": pm.id}})
    expanded = stripe_client.v1.customers.retrieve(
        customer.id, params={"expand": ["invoice_settings.default_payment_method"]})
    assert expanded.invoice_settings.default_payment_method.id == pm.id
    intent = create_intent(stripe_client, customer=customer.id, payment_method=pm.id,
                           confirm=True)
    charge = stripe_client.v1.payment_intents.retrieve(
        intent.id, params={"expand": ["latest_charge.customer"]}).latest_charge
    assert charge.customer.id == customer.id
    with pytest.raises(stripe.InvalidRequestError) as caught:
        stripe_client.v1.payment_intents.list(params={"expand": ["latest_charge"]})
    assert caught.value.error.message == (
        "This property cannot be expanded (latest_charge). You may want to try expanding "
        "'data.latest_charge' instead."
    )
    with pytest.raises(stripe.InvalidRequestError, match="more than 4 levels"):
        stripe_client.v1.payment_intents.retrieve(
            intent.id, params={"expand": ["latest_charge.payment_intent.customer.test_clock.x"]})


def test_the_sandbox_expands_only_what_stripe_can_expand():
    vendored = json.loads((VENDOR / "expandable_fields.json").read_text())["expandable"]
    for object_name, fields in EXPANDABLE.items():
        for field in fields:
            if "." in field:  # an id inside a sub-object: customer.invoice_settings
                child = field.split(".")[1]
                assert child in vendored[f"invoice_setting_{object_name}_setting"]
            elif (object_name, field) != ("charge", "refunds"):
                assert field in vendored[object_name], (object_name, field)


def test_every_event_the_sandbox_emits_is_one_of_stripes():
    stripe_types = set(json.loads((VENDOR / "event_types.json").read_text())["event_types"])
    assert "payment_intent.updated" not in stripe_types
    assert stripe_types >= EVENT_TYPES - LATER_EVENT_TYPES


def test_updating_a_payment_intent_emits_no_event(stripe_client):
    intent = create_intent(stripe_client)
    stripe_client.v1.payment_intents.update(intent.id, params={"description": "changed"})
    types = [e.type for e in stripe_client.v1.events.list().data]
    assert types == ["payment_intent.created"]


def test_a_deleted_customer_is_retrieved_as_stripes_stub(stripe_client):
    customer = stripe_client.v1.customers.create(params={"email": "gone@example.com"})
    stripe_client.v1.customers.delete(customer.id)
    again = stripe_client.v1.customers.retrieve(customer.id)
    assert again.to_dict() == {"id": customer.id, "object": "customer", "deleted": True}
    with pytest.raises(stripe.InvalidRequestError, match="No such customer"):
        stripe_client.v1.customers.update(customer.id, params={"name": "x"})
    with pytest.raises(stripe.InvalidRequestError, match="No such customer"):
        stripe_client.v1.customers.retrieve("cus_never")


def test_a_customers_payment_method_is_retrieved_through_the_customer(stripe_client):
    customer = stripe_client.v1.customers.create()
    other = stripe_client.v1.customers.create()
    pm = stripe_client.v1.payment_methods.attach("pm_card_visa", params={"customer": customer.id})
    found = stripe_client.v1.customers.payment_methods.retrieve(customer.id, pm.id)
    assert (found.id, found.customer, found.card.last4) == (pm.id, customer.id, "4242")
    with pytest.raises(stripe.InvalidRequestError) as caught:
        stripe_client.v1.customers.payment_methods.retrieve(other.id, pm.id)
    assert caught.value.http_status == 404
    assert caught.value.error.code == "resource_missing"
