"""Stripe's idempotency semantics, error shapes and authentication."""

import threading
import time

import pytest
import stripe

from tests.sandbox.conftest import raw_request, sandbox_client


def test_same_key_same_params_replays_the_first_response(stripe_env):
    client = stripe_env.client
    options = {"idempotency_key": f"order-{id(stripe_env)}-{stripe_env.live}"}
    params = {"amount": 1200, "currency": "usd", "payment_method_types": ["card"]}
    first = client.v1.payment_intents.create(params=params, options=options)
    again = client.v1.payment_intents.create(params=params, options=options)
    assert again.id == first.id
    with pytest.raises(stripe.IdempotencyError):
        client.v1.payment_intents.create(params={**params, "amount": 1300}, options=options)


def test_replay_is_marked_and_a_decline_replays_as_the_same_402(sandbox):
    params = {"amount": "1000", "currency": "usd", "confirm": "true",
              "payment_method": "pm_card_visa_chargeDeclined",
              "payment_method_types[0]": "card"}
    headers = {"Idempotency-Key": "decline-1"}
    first = raw_request(sandbox, "POST", "/v1/payment_intents", params, headers=headers)
    again = raw_request(sandbox, "POST", "/v1/payment_intents", params, headers=headers)
    assert first.status == again.status == 402
    assert again.body == first.body
    assert again.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert again.headers["Idempotency-Key"] == "decline-1"
    assert first.headers["Request-Id"].startswith("req_")
    intents = raw_request(sandbox, "GET", "/v1/payment_intents").body["data"]
    assert len(intents) == 1


def test_validation_errors_are_not_saved(sandbox):
    headers = {"Idempotency-Key": "k-validation"}
    bad = raw_request(sandbox, "POST", "/v1/customers", {"bogus": "1"}, headers=headers)
    assert bad.status == 400
    good = raw_request(sandbox, "POST", "/v1/customers", {"email": "a@example.com"},
                       headers=headers)
    assert good.status == 200


def test_a_key_in_flight_is_a_409(sandbox):
    sandbox.inject_fault("slow", count=1, path="/v1/customers", delay=0.5)
    headers = {"Idempotency-Key": "k-in-flight"}
    results = {}

    def first():
        results["first"] = raw_request(sandbox, "POST", "/v1/customers", {"name": "A"},
                                       headers=headers)

    thread = threading.Thread(target=first)
    thread.start()
    deadline = time.monotonic() + 2
    while not sandbox.app.idempotency and time.monotonic() < deadline:
        time.sleep(0.01)
    client = sandbox_client(sandbox)
    with pytest.raises(stripe.StripeError) as raised:
        client.v1.customers.create(params={"name": "A"},
                                   options={"idempotency_key": "k-in-flight"})
    assert raised.value.http_status == 409
    assert raised.value.error.type == "idempotency_error"
    thread.join()
    assert results["first"].status == 200


def test_keys_expire_after_24_hours(sandbox, stripe_client):
    options = {"idempotency_key": "k-expiring"}
    first = stripe_client.v1.customers.create(params={"name": "A"}, options=options)
    sandbox.advance(seconds=23 * 3600)
    assert stripe_client.v1.customers.create(params={"name": "A"}, options=options).id == first.id
    sandbox.advance(seconds=2 * 3600)
    again = stripe_client.v1.customers.create(params={"name": "B"}, options=options)
    assert again.id != first.id


def test_unknown_and_missing_parameters(stripe_env):
    client = stripe_env.client
    with pytest.raises(stripe.InvalidRequestError) as raised:
        client.v1.payment_intents.create(params={"amount": 1000, "currency": "usd",
                                                 "colour": "red"})
    assert (raised.value.code, raised.value.param) == ("parameter_unknown", "colour")
    assert raised.value.user_message == "Received unknown parameter: colour"
    with pytest.raises(stripe.InvalidRequestError) as raised:
        client.v1.payment_intents.create(params={"currency": "usd"})
    assert (raised.value.code, raised.value.param) == ("parameter_missing", "amount")
    assert raised.value.user_message == "Missing required param: amount."


def test_unknown_id_is_resource_missing_404(stripe_env):
    with pytest.raises(stripe.InvalidRequestError) as raised:
        stripe_env.client.v1.customers.retrieve("cus_doesnotexist")
    error = raised.value
    assert (error.http_status, error.code, error.param) == (404, "resource_missing", "id")
    assert error.user_message == "No such customer: 'cus_doesnotexist'"


@pytest.mark.parametrize("key", ["sk_live_abcdefghijklmnop1234", "nonsense"])
def test_bad_api_key_is_a_401(sandbox, key):
    client = stripe.StripeClient(key, base_addresses={"api": sandbox.url},
                                 max_network_retries=0)
    with pytest.raises(stripe.AuthenticationError) as raised:
        client.v1.customers.list()
    assert raised.value.http_status == 401
    assert raised.value.user_message.startswith("Invalid API Key provided: ")
    assert "abcdefgh" not in raised.value.user_message


def test_missing_key_and_error_shape(sandbox):
    response = raw_request(sandbox, "GET", "/v1/customers", key=None)
    assert response.status == 401
    assert response.body["error"]["type"] == "invalid_request_error"
    assert "did not provide an API key" in response.body["error"]["message"]
    missing = raw_request(sandbox, "GET", "/v1/charges/ch_nope")
    assert set(missing.body["error"]) >= {"type", "code", "param", "message", "doc_url",
                                          "request_log_url"}


def test_publishable_key_only_reaches_client_side_endpoints(sandbox, stripe_client):
    intent = stripe_client.v1.payment_intents.create(params={"amount": 1000, "currency": "usd"})
    public = raw_request(sandbox, "GET", f"/v1/payment_intents/{intent.id}",
                         {"client_secret": intent.client_secret}, key="pk_test_abc")
    assert public.status == 200
    wrong = raw_request(sandbox, "GET", f"/v1/payment_intents/{intent.id}",
                        {"client_secret": "nope"}, key="pk_test_abc")
    assert wrong.status == 404
    assert raw_request(sandbox, "GET", "/v1/customers", key="pk_test_abc").status == 401


def test_unrecognized_url(sandbox):
    response = raw_request(sandbox, "GET", "/v1/nothing_here")
    assert response.status == 404
    assert response.body["error"]["message"].startswith("Unrecognized request URL (GET:")


def test_list_pagination(stripe_client):
    ids = [stripe_client.v1.customers.create(params={"name": str(n)}).id for n in range(5)]
    page = stripe_client.v1.customers.list(params={"limit": 2})
    assert [c.id for c in page.data] == ids[::-1][:2]
    assert page.has_more is True
    assert page.url == "/v1/customers"
    rest = stripe_client.v1.customers.list(params={"limit": 10, "starting_after": ids[3]})
    assert [c.id for c in rest.data] == ids[::-1][2:]
    assert rest.has_more is False
    everything = [c.id for c in stripe_client.v1.customers.list(params={"limit": 2})
                  .auto_paging_iter()]
    assert everything == ids[::-1]
