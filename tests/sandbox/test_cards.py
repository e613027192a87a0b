"""Stripe's test cards give Stripe's outcomes, through the real SDK (sandbox and test mode)."""

import pytest
import stripe

DECLINES = [
    ("pm_card_visa_chargeDeclined", "card_declined", "generic_decline",
     "Your card was declined."),
    ("pm_card_visa_chargeDeclinedInsufficientFunds", "card_declined", "insufficient_funds",
     "Your card has insufficient funds."),
    ("pm_card_visa_chargeDeclinedLostCard", "card_declined", "lost_card",
     "Your card was declined."),
    ("pm_card_visa_chargeDeclinedStolenCard", "card_declined", "stolen_card",
     "Your card was declined."),
    ("pm_card_chargeDeclinedExpiredCard", "expired_card", "expired_card",
     "Your card has expired."),
    ("pm_card_chargeDeclinedIncorrectCvc", "incorrect_cvc", "incorrect_cvc",
     "Your card's security code is incorrect."),
    ("pm_card_chargeDeclinedProcessingError", "processing_error", "processing_error",
     "An error occurred while processing your card. Try again in a little bit."),
]


def pay(client, payment_method, **extra):
    params = {"amount": 2500, "currency": "usd", "payment_method": payment_method,
              "confirm": True, "payment_method_types": ["card"], **extra}
    return client.v1.payment_intents.create(params=params)


@pytest.mark.parametrize("card", ["pm_card_visa", "pm_card_mastercard", "pm_card_refundFail",
                                  "pm_card_createDispute"])
def test_cards_that_succeed(stripe_env, card):
    intent = pay(stripe_env.client, card)
    assert intent.status == "succeeded"
    assert intent.amount_received == 2500
    charge = stripe_env.client.v1.charges.retrieve(intent.latest_charge)
    assert (charge.status, charge.paid, charge.captured) == ("succeeded", True, True)
    assert charge.payment_intent == intent.id


@pytest.mark.parametrize(("card", "code", "decline_code", "message"), DECLINES)
def test_declined_cards_raise_card_error_like_stripe(stripe_env, card, code, decline_code,
                                                     message):
    with pytest.raises(stripe.CardError) as raised:
        pay(stripe_env.client, card)
    error = raised.value
    assert error.http_status == 402
    assert (error.code, error.error.decline_code, error.user_message) == (
        code, decline_code, message)
    assert error.error.type == "card_error"
    intent = error.error.payment_intent
    assert intent.status == "requires_payment_method"
    assert intent.last_payment_error.decline_code == decline_code
    charge = stripe_env.client.v1.charges.retrieve(intent.last_payment_error.charge)
    assert (charge.status, charge.failure_code) == ("failed", code)


def test_charge_customer_fail_attaches_but_charges_fail(stripe_env):
    client = stripe_env.client
    customer = client.v1.customers.create()
    pm = client.v1.payment_methods.attach("pm_card_chargeCustomerFail",
                                          params={"customer": customer.id})
    assert pm.customer == customer.id
    with pytest.raises(stripe.CardError) as raised:
        pay(client, pm.id, customer=customer.id, off_session=True)
    assert (raised.value.code, raised.value.error.decline_code) == (
        "card_declined", "generic_decline")


def test_declining_card_cannot_be_attached(stripe_env):
    client = stripe_env.client
    customer = client.v1.customers.create()
    with pytest.raises(stripe.CardError) as raised:
        client.v1.payment_methods.attach("pm_card_visa_chargeDeclined",
                                         params={"customer": customer.id})
    assert raised.value.code == "card_declined"


def test_authentication_required_asks_for_3ds_on_session(stripe_env):
    intent = pay(stripe_env.client, "pm_card_authenticationRequired",
                 return_url="https://example.com/return")
    assert intent.status == "requires_action"
    assert intent.next_action.type == "redirect_to_url"
    assert intent.next_action.redirect_to_url.return_url == "https://example.com/return"


def test_authentication_required_off_session_is_a_402(stripe_env):
    client = stripe_env.client
    customer = client.v1.customers.create()
    pm = client.v1.payment_methods.attach("pm_card_authenticationRequired",
                                          params={"customer": customer.id})
    with pytest.raises(stripe.CardError) as raised:
        pay(client, pm.id, customer=customer.id, off_session=True)
    error = raised.value
    assert (error.code, error.error.decline_code) == (
        "authentication_required", "authentication_required")
    assert error.error.payment_intent.status == "requires_payment_method"


def test_manual_capture_then_capture_and_cancel(stripe_env):
    client = stripe_env.client
    intent = pay(client, "pm_card_visa", capture_method="manual")
    assert (intent.status, intent.amount_capturable) == ("requires_capture", 2500)
    captured = client.v1.payment_intents.capture(intent.id, params={"amount_to_capture": 2000})
    assert (captured.status, captured.amount_received) == ("succeeded", 2000)
    charge = client.v1.charges.retrieve(captured.latest_charge)
    assert (charge.captured, charge.amount_captured) == (True, 2000)

    other = pay(client, "pm_card_visa", capture_method="manual")
    canceled = client.v1.payment_intents.cancel(
        other.id, params={"cancellation_reason": "requested_by_customer"})
    assert (canceled.status, canceled.cancellation_reason) == ("canceled",
                                                               "requested_by_customer")
    with pytest.raises(stripe.InvalidRequestError) as raised:
        client.v1.payment_intents.cancel(intent.id)
    assert raised.value.code == "payment_intent_unexpected_state"


def test_latest_charge_is_an_id_unless_expanded(stripe_env):
    client = stripe_env.client
    intent = pay(client, "pm_card_visa", metadata={"order": "42"})
    assert isinstance(intent.latest_charge, str)
    assert intent.metadata["order"] == "42"
    expanded = client.v1.payment_intents.retrieve(
        intent.id, params={"expand": ["latest_charge", "payment_method"]})
    assert expanded.latest_charge.id == intent.latest_charge
    assert expanded.payment_method.card.last4 == "4242"
    listed = client.v1.payment_intents.list(params={"limit": 1, "expand": ["data.latest_charge"]})
    assert listed.data[0].latest_charge.object == "charge"


def test_automatic_payment_methods_needs_a_return_url_to_confirm(stripe_env):
    client = stripe_env.client
    with pytest.raises(stripe.InvalidRequestError) as raised:
        client.v1.payment_intents.create(params={
            "amount": 1000, "currency": "usd", "payment_method": "pm_card_visa",
            "confirm": True, "automatic_payment_methods": {"enabled": True}})
    assert "return_url" in raised.value.user_message
    intent = client.v1.payment_intents.create(params={
        "amount": 1000, "currency": "usd", "payment_method": "pm_card_visa", "confirm": True,
        "automatic_payment_methods": {"enabled": True}, "return_url": "https://example.com/r"})
    assert intent.status == "succeeded"


def test_setup_then_off_session_payment_with_saved_card(stripe_env):
    client = stripe_env.client
    customer = client.v1.customers.create()
    setup = client.v1.setup_intents.create(params={
        "customer": customer.id, "payment_method": "pm_card_visa", "confirm": True,
        "payment_method_types": ["card"]})
    assert setup.status == "succeeded"
    saved = client.v1.customers.payment_methods.list(customer.id)
    assert [pm.id for pm in saved.data] == [setup.payment_method]
    intent = pay(client, setup.payment_method, customer=customer.id, off_session=True)
    assert intent.status == "succeeded"
    detached = client.v1.payment_methods.detach(setup.payment_method)
    assert detached.customer is None


def test_ephemeral_key_for_the_mobile_payment_sheet(stripe_env):
    client = stripe_env.client
    customer = client.v1.customers.create()
    key = client.v1.ephemeral_keys.create(
        params={"customer": customer.id}, options={"stripe_version": "2024-06-20"})
    assert key.secret.startswith("ek_test_")
    assert key.associated_objects[0].id == customer.id
    assert key.expires > key.created


def test_products_and_prices(stripe_env):
    client = stripe_env.client
    product = client.v1.products.create(params={"name": "Gift card"})
    price = client.v1.prices.create(params={"product": product.id, "currency": "usd",
                                            "unit_amount": 2000,
                                            "recurring": {"interval": "month"}})
    assert (price.type, price.recurring.interval, price.unit_amount) == ("recurring", "month",
                                                                         2000)
    listed = client.v1.prices.list(params={"product": product.id})
    assert [p.id for p in listed.data] == [price.id]
