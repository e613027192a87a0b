"""Off-session confirmation behaves as Stripe's, so renewals and their retries can be tested
offline (https://docs.stripe.com/testing, "Declined payments" and "Authentication")."""

import pytest
import stripe


def saved_card(client, test_card):
    customer = client.v1.customers.create()
    setup = client.v1.setup_intents.create(params={
        "customer": customer.id, "payment_method": test_card, "confirm": True,
        "payment_method_types": ["card"]})
    return customer, setup


def charge(client, customer, payment_method, off_session=True):
    return client.v1.payment_intents.create(params={
        "amount": 1500, "currency": "usd", "customer": customer.id,
        "payment_method": payment_method, "payment_method_types": ["card"], "confirm": True,
        "off_session": off_session})


@pytest.mark.parametrize("off_session", [True, "recurring", "one_off"])
def test_a_saved_card_is_charged_off_session(stripe_env, off_session):
    client = stripe_env.client
    customer, setup = saved_card(client, "pm_card_visa")
    intent = charge(client, customer, setup.payment_method, off_session=off_session)
    assert (intent.status, intent.amount_received) == ("succeeded", 1500)


def test_charge_customer_fail_is_saved_by_a_setup_intent_then_every_charge_fails(stripe_env):
    client = stripe_env.client
    customer, setup = saved_card(client, "pm_card_chargeCustomerFail")
    assert setup.status == "succeeded"
    for _ in range(2):
        with pytest.raises(stripe.CardError) as raised:
            charge(client, customer, setup.payment_method)
        error = raised.value.error
        assert (error.code, error.decline_code) == ("card_declined", "generic_decline")
        assert error.payment_intent.status == "requires_payment_method"
        assert error.charge


def test_a_failed_off_session_intent_can_be_confirmed_again_with_another_card(stripe_env):
    client = stripe_env.client
    customer, failing = saved_card(client, "pm_card_chargeCustomerFail")
    with pytest.raises(stripe.CardError) as raised:
        charge(client, customer, failing.payment_method)
    intent_id = raised.value.error.payment_intent.id
    good = client.v1.setup_intents.create(params={
        "customer": customer.id, "payment_method": "pm_card_visa", "confirm": True,
        "payment_method_types": ["card"]})
    retried = client.v1.payment_intents.confirm(
        intent_id, params={"payment_method": good.payment_method, "off_session": True})
    assert retried.status == "succeeded"


def test_authentication_required_declines_off_session_even_after_3ds_at_setup(stripe_env):
    client = stripe_env.client
    customer, setup = saved_card(client, "pm_card_authenticationRequired")
    assert setup.status == "requires_action"  # the bank asks for 3-D Secure at setup too
    pm = client.v1.payment_methods.attach("pm_card_authenticationRequired",
                                          params={"customer": customer.id})
    with pytest.raises(stripe.CardError) as raised:
        charge(client, customer, pm.id)
    error = raised.value.error
    assert (error.code, error.decline_code) == ("authentication_required",
                                                "authentication_required")
    assert error.payment_intent.status == "requires_payment_method"
    assert error.payment_intent.next_action is None


@pytest.mark.parametrize(("card", "decline_code"), [
    ("pm_card_chargeDeclinedFraudulent", "fraudulent"),
    ("pm_card_visa_chargeDeclinedVelocityLimitExceeded", "card_velocity_exceeded"),
])
def test_more_of_stripes_declines(stripe_env, card, decline_code):
    with pytest.raises(stripe.CardError) as raised:
        stripe_env.client.v1.payment_intents.create(params={
            "amount": 1500, "currency": "usd", "payment_method": card, "confirm": True,
            "payment_method_types": ["card"]})
    assert raised.value.error.decline_code == decline_code


def test_setup_future_usage_saves_the_card_a_failed_renewal_is_paid_with(stripe_env):
    """A failed off-session intent, set to save its card (an update, as Paydesk's checkout
    does) and paid on-session with a new card: the card is attached to the customer on
    success, and then pays off-session."""
    client = stripe_env.client
    customer, failing = saved_card(client, "pm_card_chargeCustomerFail")
    with pytest.raises(stripe.CardError) as raised:
        charge(client, customer, failing.payment_method)
    intent_id = raised.value.error.payment_intent.id
    updated = client.v1.payment_intents.update(
        intent_id, params={"setup_future_usage": "off_session"})
    assert (updated.setup_future_usage, updated.status) == ("off_session",
                                                            "requires_payment_method")
    paid = client.v1.payment_intents.confirm(
        intent_id, params={"payment_method": "pm_card_visa", "expand": ["payment_method"]})
    assert paid.status == "succeeded"
    assert paid.payment_method.customer == customer.id
    again = charge(client, customer, paid.payment_method.id)
    assert again.status == "succeeded"


def test_without_setup_future_usage_a_paid_card_is_not_attached(stripe_env):
    client = stripe_env.client
    customer = client.v1.customers.create()
    paid = client.v1.payment_intents.create(params={
        "amount": 1500, "currency": "usd", "customer": customer.id,
        "payment_method": "pm_card_visa", "payment_method_types": ["card"], "confirm": True,
        "expand": ["payment_method"]})
    assert (paid.status, paid.payment_method.customer) == ("succeeded", None)


def test_setup_future_usage_takes_stripes_values_only(stripe_env):
    client = stripe_env.client
    intent = client.v1.payment_intents.create(params={
        "amount": 1500, "currency": "usd", "payment_method_types": ["card"]})
    with pytest.raises(stripe.InvalidRequestError) as raised:
        client.v1.payment_intents.update(intent.id, params={"setup_future_usage": "later"})
    assert raised.value.param == "setup_future_usage"
