"""Sandbox-only behaviour: signed webhook delivery, the 3-D Secure page, fault injection and
the command line."""

import json
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import stripe

from tests.conftest import HOLD, wait_for
from tests.sandbox.conftest import raw_request, sandbox_client
from tests.sandbox.test_cards import pay

REPO = Path(__file__).resolve().parents[2]


# -- webhooks ------------------------------------------------------------------------------
def test_events_are_signed_like_stripe_and_verify_with_the_sdk(sandbox, stripe_client,
                                                               webhook_receiver):
    sandbox.configure_webhooks([webhook_receiver.url], secret="whsec_test_secret")
    intent = pay(stripe_client, "pm_card_visa")
    sandbox.wait_for_deliveries(1, event_type="payment_intent.succeeded")
    sandbox.wait_for_webhooks_idle()
    verified = [
        stripe.Webhook.construct_event(r["body"], r["signature"], "whsec_test_secret")
        for r in webhook_receiver.received
    ]
    assert [e.type for e in verified] == [
        "payment_intent.created", "charge.succeeded", "payment_intent.succeeded"]
    assert verified[-1].data.object.id == intent.id
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(webhook_receiver.received[0]["body"],
                                       webhook_receiver.received[0]["signature"], "whsec_other")
    event = stripe_client.v1.events.retrieve(verified[-1].id)
    assert event.request.id.startswith("req_")
    assert event.pending_webhooks == 0


def test_failing_endpoint_is_retried_with_backoff(sandbox, stripe_client, webhook_receiver):
    sandbox.configure_webhooks([webhook_receiver.url])
    webhook_receiver.fail_next = 2
    stripe_client.v1.customers.create()
    attempts = sandbox.wait_for_deliveries(1, event_type="customer.created", ok=True)
    log = sandbox.deliveries()
    assert [(r["attempt"], r["status"]) for r in log] == [(1, 500), (2, 500), (3, 200)]
    assert attempts[0]["attempt"] == 3
    assert log[1]["at"] - log[0]["at"] >= 0.05


def test_delivery_gives_up_after_max_attempts(sandbox, stripe_client, webhook_receiver):
    sandbox.configure_webhooks([webhook_receiver.url])
    webhook_receiver.fail_next = 100
    stripe_client.v1.customers.create()
    log = sandbox.wait_for_webhooks_idle()
    assert [r["attempt"] for r in log] == [1, 2, 3, 4]
    assert not any(r["ok"] for r in log)


def test_api_calls_never_wait_on_delivery(sandbox, stripe_client, webhook_receiver):
    sandbox.configure_webhooks([webhook_receiver.url])
    webhook_receiver.holding = True  # the endpoint answers nothing until released
    for _ in range(3):
        stripe_client.v1.customers.create()
    wait_for(lambda: webhook_receiver.held >= 1, what="a delivery to reach the endpoint")
    assert webhook_receiver.received == []  # every call returned with its delivery unanswered
    webhook_receiver.release()
    sandbox.wait_for_deliveries(3, timeout=5)


def test_duplicate_mode_delivers_each_event_twice(sandbox, stripe_client, webhook_receiver):
    sandbox.configure_webhooks([webhook_receiver.url], mode="duplicate")
    stripe_client.v1.customers.create()
    sandbox.wait_for_deliveries(2)
    ids = [e["id"] for e in webhook_receiver.events()]
    assert len(ids) == 2 and ids[0] == ids[1]


def test_reverse_mode_delivers_newest_first(sandbox, stripe_client, webhook_receiver):
    sandbox.configure_webhooks([webhook_receiver.url], mode="reverse")
    pay(stripe_client, "pm_card_visa")
    sandbox.wait_for_deliveries(3)
    assert [e["type"] for e in webhook_receiver.events()] == [
        "payment_intent.succeeded", "charge.succeeded", "payment_intent.created"]


def test_webhook_endpoints_api_delivers_subscribed_events_with_its_secret(
    sandbox, stripe_client, webhook_receiver
):
    endpoint = stripe_client.v1.webhook_endpoints.create(params={
        "url": webhook_receiver.url, "enabled_events": ["charge.succeeded"]})
    assert endpoint.secret.startswith("whsec_")
    pay(stripe_client, "pm_card_visa")
    sandbox.wait_for_deliveries(1)
    sandbox.wait_for_webhooks_idle()
    [received] = webhook_receiver.received
    event = stripe.Webhook.construct_event(received["body"], received["signature"],
                                           endpoint.secret)
    assert event.type == "charge.succeeded"
    assert stripe_client.v1.webhook_endpoints.delete(endpoint.id).deleted is True


def test_control_endpoint_configures_webhooks(sandbox, webhook_receiver):
    response = raw_request(sandbox, "POST", "/_sandbox/webhooks", key=None, json_body={
        "url": [webhook_receiver.url], "mode": "duplicate", "backoff": [0.01]})
    assert response.body["mode"] == "duplicate"
    raw_request(sandbox, "POST", "/v1/customers")
    sandbox.wait_for_deliveries(2)
    log = raw_request(sandbox, "GET", "/_sandbox/deliveries", key=None).body["deliveries"]
    assert len(log) == 2


def test_events_list_filters_by_type(stripe_client):
    pay(stripe_client, "pm_card_visa")
    with pytest.raises(stripe.CardError):
        pay(stripe_client, "pm_card_visa_chargeDeclined")
    failed = stripe_client.v1.events.list(params={"type": "payment_intent.payment_failed"})
    assert [e.type for e in failed.data] == ["payment_intent.payment_failed"]
    charges = stripe_client.v1.events.list(params={"type": "charge.*"})
    assert [e.type for e in charges.data] == ["charge.failed", "charge.succeeded"]


# -- 3-D Secure ----------------------------------------------------------------------------
def _press(sandbox, url, button):
    page = urllib.request.urlopen(url, timeout=5).read().decode()
    assert 'id="complete"' in page and 'id="fail"' in page
    response = raw_request(sandbox, "POST", urlsplit(url).path + f"/{button}", key=None)
    assert response.status == 303
    return response.headers["Location"]


@pytest.mark.parametrize(("button", "status", "redirect_status"), [
    ("complete", "succeeded", "succeeded"), ("fail", "requires_payment_method", "failed")])
def test_3ds_round_trip_through_the_page(sandbox, stripe_client, button, status,
                                         redirect_status):
    intent = pay(stripe_client, "pm_card_authenticationRequired",
                 return_url="https://shop.example/return?order=7")
    redirect = intent.next_action.redirect_to_url
    assert redirect.url == f"{sandbox.url}/_sandbox/3ds/{intent.id}"
    location = _press(sandbox, redirect.url, button)
    assert location.startswith("https://shop.example/return?order=7&")
    query = parse_qs(urlsplit(location).query)
    assert query["payment_intent"] == [intent.id]
    assert query["payment_intent_client_secret"] == [intent.client_secret]
    assert query["redirect_status"] == [redirect_status]
    after = stripe_client.v1.payment_intents.retrieve(intent.id)
    assert after.status == status
    if button == "fail":
        assert after.last_payment_error.code == "payment_intent_authentication_failure"
    else:
        charge = stripe_client.v1.charges.retrieve(after.latest_charge)
        assert charge.payment_method_details.card.three_d_secure.result == "authenticated"


def test_setup_with_3ds_then_off_session_payments_succeed(sandbox, stripe_client):
    customer = stripe_client.v1.customers.create()
    setup = stripe_client.v1.setup_intents.create(params={
        "customer": customer.id, "payment_method": "pm_card_authenticationRequiredOnSetup",
        "confirm": True, "return_url": "https://shop.example/saved",
        "payment_method_types": ["card"]})
    assert setup.status == "requires_action"
    location = _press(sandbox, setup.next_action.redirect_to_url.url, "complete")
    assert parse_qs(urlsplit(location).query)["setup_intent"] == [setup.id]
    done = stripe_client.v1.setup_intents.retrieve(setup.id)
    assert done.status == "succeeded"
    intent = pay(stripe_client, done.payment_method, customer=customer.id, off_session=True)
    assert intent.status == "succeeded"


# -- faults --------------------------------------------------------------------------------
def test_500_fault_then_the_sdk_retry_succeeds(sandbox):
    sandbox.inject_fault("500", count=1, path="/v1/customers")
    client = sandbox_client(sandbox, max_network_retries=2)
    assert client.v1.customers.create(params={"name": "retried"}).name == "retried"
    assert len(client.v1.customers.list().data) == 1


def test_500_and_429_faults_raise_the_sdks_errors(sandbox, stripe_client):
    sandbox.inject_fault("500", count=1)
    with pytest.raises(stripe.APIError) as raised:
        stripe_client.v1.customers.list()
    assert raised.value.http_status == 500
    sandbox.inject_fault("429", count=1)
    with pytest.raises(stripe.RateLimitError):
        stripe_client.v1.customers.list()
    assert stripe_client.v1.customers.list().data == []


def test_timeout_fault_holds_the_request_until_released(sandbox):
    sandbox.inject_fault("timeout", count=1, delay=HOLD)
    client = sandbox_client(sandbox, http_client=stripe.RequestsClient(timeout=0.2))
    with pytest.raises(stripe.APIConnectionError):
        client.v1.customers.list()
    assert sandbox.held_requests() == 1
    sandbox.release_held()
    wait_for(lambda: sandbox.held_requests() == 0, what="the held request to be let go")
    faults = raw_request(sandbox, "POST", "/_sandbox/faults", {"mode": "429", "count": "2"},
                         key=None).body["faults"]
    assert faults[-1]["remaining"] == 2


def test_requests_are_counted_per_path_faulted_ones_too_until_reset(sandbox, stripe_client):
    customer = stripe_client.v1.customers.create(params={"name": "counted"})
    stripe_client.v1.customers.retrieve(customer.id)
    sandbox.inject_fault("500", count=1, path="/v1/customers/")
    with pytest.raises(stripe.APIError):
        stripe_client.v1.customers.retrieve(customer.id)

    counts = raw_request(sandbox, "GET", "/_sandbox/requests", key=None).body["requests"]

    assert counts == {"/v1/customers": 1, f"/v1/customers/{customer.id}": 2}
    assert sandbox.requests() == counts
    sandbox.reset()
    assert sandbox.requests() == {}


# -- command line --------------------------------------------------------------------------
def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run(port, *args):
    process = subprocess.Popen(
        [sys.executable, "-m", "payments.sandbox", "--port", str(port), *args],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 5
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/_sandbox/health", timeout=1)
            return process
        except OSError:
            assert time.monotonic() < deadline, process.stderr
            time.sleep(0.05)


def _cli_client(port):
    return stripe.StripeClient(
        "sk_test_cli", base_addresses={"api": f"http://127.0.0.1:{port}"}, max_network_retries=0
    )


def test_cli_serves_and_keeps_state_in_a_file(tmp_path):
    state = tmp_path / "sandbox.json"
    port = _free_port()
    process = _run(port, "--state", str(state))
    try:
        client = _cli_client(port)
        customer = client.v1.customers.create(params={"email": "kept@example.com"})
    finally:
        process.terminate()
        process.wait(5)
    assert json.loads(state.read_text())["customers"][customer.id]["email"] == "kept@example.com"
    port = _free_port()
    process = _run(port, "--state", str(state))
    try:
        client = _cli_client(port)
        assert client.v1.customers.retrieve(customer.id).email == "kept@example.com"
    finally:
        process.terminate()
        process.wait(5)


@pytest.mark.parametrize(("amount", "currency", "shown"), [
    (1800, "jpy", "Amount: 1800 JPY"), (1999, "usd", "Amount: 19.99 USD"),
    (1230, "kwd", "Amount: 1.230 KWD")])
def test_3ds_page_shows_the_amount_in_the_currencys_own_decimals(
        sandbox, stripe_client, amount, currency, shown):
    intent = stripe_client.v1.payment_intents.create(params={
        "amount": amount, "currency": currency, "payment_method": "pm_card_authenticationRequired",
        "confirm": True, "return_url": "https://shop.example/return"})
    page = urllib.request.urlopen(intent.next_action.redirect_to_url.url, timeout=5).read()
    assert shown in page.decode()
