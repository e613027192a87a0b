"""Saved cards: a SetupIntent for PaymentSheet, the card saved when Stripe says so, removal."""

import pytest

from payments import gateway
from payments.models import Customer, PaymentMethod
from payments.services import payment_method_save
from tests.api.conftest import RETURN_URL, SDK_STRIPE_VERSION, mobile_sdk

pytestmark = pytest.mark.django_db


def setup(api, **headers):
    headers.setdefault("Stripe-Version", SDK_STRIPE_VERSION)
    return api.post("/api/v1/payment-methods/setup/", headers=headers)


def saved_card(api, sandbox, card="pm_card_visa") -> PaymentMethod:
    """Adds a card as the app would: setup, confirm at Stripe, then Stripe's word (the webhook
    handler's service)."""
    body = setup(api).json()
    sdk = mobile_sdk(sandbox, body["publishable_key"])
    sdk.v1.setup_intents.confirm(body["setup_intent"], params={
        "client_secret": body["setup_intent_client_secret"], "payment_method": card,
        "return_url": RETURN_URL})
    return payment_method_save(setup_intent=gateway.setup_intent_retrieve(body["setup_intent"]))


def test_setup_returns_what_payment_sheet_needs(api, customer, sandbox):
    response = setup(api)

    assert response.status_code == 201
    body = response.json()
    setup_intent = sandbox.app.store.get("setup_intents", body["setup_intent"])
    assert body["setup_intent_client_secret"] == setup_intent["client_secret"]
    assert body["customer"] == Customer.objects.get(user=customer).stripe_id
    assert setup_intent["customer"] == body["customer"]
    assert setup_intent["usage"] == "off_session"
    assert body["ephemeral_key"].startswith("ek_test_")


def test_a_card_that_asks_for_3ds_at_setup_needs_action_on_the_device(api, sandbox):
    body = setup(api).json()
    sdk = mobile_sdk(sandbox, body["publishable_key"])

    confirmed = sdk.v1.setup_intents.confirm(body["setup_intent"], params={
        "client_secret": body["setup_intent_client_secret"],
        "payment_method": "pm_card_authenticationRequiredOnSetup", "return_url": RETURN_URL})

    assert confirmed.status == "requires_action"
    assert api.get("/api/v1/payment-methods/").json() == []


def test_saved_cards_are_listed_and_removed_at_stripe(api, customer, sandbox):
    card = saved_card(api, sandbox)

    listed = api.get("/api/v1/payment-methods/").json()
    removed = api.delete(f"/api/v1/payment-methods/{card.pk}/")

    assert [(c["id"], c["brand"], c["last4"]) for c in listed] == [(card.pk, "visa", "4242")]
    assert listed[0]["stripe_payment_method"] == card.stripe_id
    assert removed.status_code == 204
    assert sandbox.app.store.get("payment_methods", card.stripe_id)["customer"] is None
    assert api.get("/api/v1/payment-methods/").json() == []
    assert api.delete(f"/api/v1/payment-methods/{card.pk}/").status_code == 404


def test_a_card_already_detached_at_stripe_is_removed_here_too(api, sandbox):
    card = saved_card(api, sandbox)
    gateway.payment_method_detach(card.stripe_id, idempotency_key="elsewhere")

    assert api.delete(f"/api/v1/payment-methods/{card.pk}/").status_code == 204
    card.refresh_from_db()
    assert card.detached_at is not None


def test_another_customers_card_is_404_and_stays(api, other_api, sandbox):
    card = saved_card(other_api, sandbox)

    assert api.delete(f"/api/v1/payment-methods/{card.pk}/").status_code == 404
    assert api.get("/api/v1/payment-methods/").json() == []
    card.refresh_from_db()
    assert card.detached_at is None
