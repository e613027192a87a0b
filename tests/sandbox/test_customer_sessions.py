"""Customer Sessions (`POST /v1/customer_sessions`): a client secret for one customer that the
mobile Payment Element uses, as strict about its parameters as Stripe, secret keys only,
idempotent like every POST."""

import pytest
import stripe

from payments.sandbox.resources.customer_sessions import (
    CUSTOMER_SESSION_LIFETIME,
    NO_COMPONENT_ENABLED,
)
from tests.sandbox.conftest import raw_request

MOBILE = {"mobile_payment_element": {"enabled": True}}


def _create(client, customer, components=None, **options):
    return client.v1.customer_sessions.create(
        params={"customer": customer, "components": components or MOBILE}, options=options)


def test_a_session_for_the_mobile_payment_element(stripe_env):
    client = stripe_env.client
    customer = client.v1.customers.create()

    session = _create(client, customer.id, {"mobile_payment_element": {
        "enabled": True,
        "features": {"payment_method_save": "enabled", "payment_method_redisplay": "enabled",
                     "payment_method_remove": "disabled",
                     "payment_method_allow_redisplay_filters": ["always", "unspecified"]},
    }})

    assert session.object == "customer_session"
    assert session.client_secret.startswith("cuss_secret_")
    assert session.customer == customer.id
    assert session.livemode is False
    assert session.expires_at > session.created
    mobile = session.components.mobile_payment_element
    assert mobile.enabled is True
    assert (mobile.features.payment_method_save, mobile.features.payment_method_redisplay,
            mobile.features.payment_method_remove) == ("enabled", "enabled", "disabled")
    assert mobile.features.payment_method_allow_redisplay_filters == ["always", "unspecified"]
    assert session.components.payment_element.enabled is False


def test_the_sandbox_keeps_the_session_by_its_secret(sandbox, stripe_client):
    customer = stripe_client.v1.customers.create()

    session = _create(stripe_client, customer.id)

    kept = sandbox.app.store.get("customer_sessions", session.client_secret)
    assert kept["customer"] == customer.id
    assert kept["expires_at"] == kept["created"] + CUSTOMER_SESSION_LIFETIME
    assert "id" not in session  # Stripe gives a session no id
    features = session.components.mobile_payment_element.features
    assert features.payment_method_save is None  # not asked for: null, as Stripe answers


@pytest.mark.parametrize(("components", "param"), [
    ({**MOBILE, "nope": {"enabled": True}}, "components[nope]"),
    ({"mobile_payment_element": {"enabled": True, "nope": "1"}},
     "components[mobile_payment_element][nope]"),
    ({"mobile_payment_element": {"enabled": True, "features": {"nope": "enabled"}}},
     "components[mobile_payment_element][features][nope]"),
    ({"buy_button": {"enabled": True, "features": {"payment_method_save": "enabled"}}},
     "components[buy_button][features]"),
])
def test_unknown_parameters_are_refused(stripe_client, sandbox, components, param):
    customer = stripe_client.v1.customers.create()

    with pytest.raises(stripe.InvalidRequestError) as refused:
        _create(stripe_client, customer.id, components)

    assert (refused.value.code, refused.value.param) == ("parameter_unknown", param)
    assert sandbox.app.store.all("customer_sessions") == []


def test_an_unknown_top_level_parameter_is_refused(stripe_client):
    customer = stripe_client.v1.customers.create()

    with pytest.raises(stripe.InvalidRequestError) as refused:
        stripe_client.v1.customer_sessions.create(params={
            "customer": customer.id, "components": MOBILE, "customer_account": "acct_1"})

    assert (refused.value.code, refused.value.param) == ("parameter_unknown", "customer_account")


@pytest.mark.parametrize(("components", "param"), [
    ({"mobile_payment_element": {"enabled": "yes"}},
     "components[mobile_payment_element][enabled]"),
    ({"mobile_payment_element": {"enabled": True,
                                 "features": {"payment_method_save": "always"}}},
     "components[mobile_payment_element][features][payment_method_save]"),
    ({"mobile_payment_element": {
        "enabled": True, "features": {"payment_method_allow_redisplay_filters": ["sometimes"]}}},
     "components[mobile_payment_element][features][payment_method_allow_redisplay_filters]"),
    ({"payment_element": {"enabled": True,
                          "features": {"payment_method_redisplay_limit": 11}}},
     "components[payment_element][features][payment_method_redisplay_limit]"),
])
def test_invalid_values_are_refused(stripe_client, components, param):
    customer = stripe_client.v1.customers.create()

    with pytest.raises(stripe.InvalidRequestError) as refused:
        _create(stripe_client, customer.id, components)

    assert refused.value.http_status == 400
    assert refused.value.param == param


def test_a_component_needs_enabled(stripe_client):
    customer = stripe_client.v1.customers.create()

    with pytest.raises(stripe.InvalidRequestError) as refused:
        _create(stripe_client, customer.id, {"mobile_payment_element": {
            "features": {"payment_method_save": "enabled"}}})

    assert (refused.value.code, refused.value.param) == (
        "parameter_missing", "components[mobile_payment_element][enabled]")


def test_at_least_one_component_must_be_enabled(stripe_client, sandbox):
    customer = stripe_client.v1.customers.create()

    with pytest.raises(stripe.InvalidRequestError) as refused:
        _create(stripe_client, customer.id, {"mobile_payment_element": {"enabled": False},
                                             "buy_button": {"enabled": False}})

    assert refused.value.param == "components"
    assert refused.value.user_message == NO_COMPONENT_ENABLED
    assert sandbox.app.store.all("customer_sessions") == []


def test_components_and_the_customer_are_required(stripe_client):
    customer = stripe_client.v1.customers.create()

    with pytest.raises(stripe.InvalidRequestError) as no_components:
        stripe_client.v1.customer_sessions.create(params={"customer": customer.id})
    with pytest.raises(stripe.InvalidRequestError) as no_customer:
        stripe_client.v1.customer_sessions.create(params={"components": MOBILE})

    assert (no_components.value.code, no_components.value.param) == (
        "parameter_missing", "components")
    assert (no_customer.value.code, no_customer.value.param) == ("parameter_missing", "customer")


def test_the_customer_must_exist(stripe_client):
    deleted = stripe_client.v1.customers.create()
    stripe_client.v1.customers.delete(deleted.id)

    for customer in ("cus_nope", deleted.id):
        with pytest.raises(stripe.InvalidRequestError) as refused:
            _create(stripe_client, customer)

        assert refused.value.http_status == 404
        assert (refused.value.code, refused.value.param) == ("resource_missing", "customer")


def test_the_customer_cannot_be_expanded(stripe_client):
    customer = stripe_client.v1.customers.create()

    with pytest.raises(stripe.InvalidRequestError, match="cannot be expanded"):
        stripe_client.v1.customer_sessions.create(params={
            "customer": customer.id, "components": MOBILE, "expand": ["customer"]})


def test_a_publishable_key_is_refused(sandbox, stripe_client):
    customer = stripe_client.v1.customers.create()

    response = raw_request(sandbox, "POST", "/v1/customer_sessions", {
        "customer": customer.id, "components[mobile_payment_element][enabled]": "true",
    }, key="pk_test_abc")

    assert response.status == 401
    assert sandbox.app.store.all("customer_sessions") == []


def test_the_same_key_replays_the_same_session_and_other_params_are_refused(stripe_client,
                                                                            sandbox):
    customer = stripe_client.v1.customers.create()

    first = _create(stripe_client, customer.id, idempotency_key="cuss-1")
    again = _create(stripe_client, customer.id, idempotency_key="cuss-1")
    with pytest.raises(stripe.IdempotencyError):
        _create(stripe_client, customer.id, {"customer_sheet": {"enabled": True}},
                idempotency_key="cuss-1")

    assert again.client_secret == first.client_secret
    assert again.last_response.headers["Idempotent-Replayed"] == "true"
    assert len(sandbox.app.store.all("customer_sessions")) == 1
