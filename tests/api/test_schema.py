"""The OpenAPI schema at /api/schema/ is valid, and the API keeps to it: schemathesis generates
requests from it (valid and not) against the WSGI app in-process, as the customer with a token,
with the sandbox as Stripe. No answer may be a 5xx, have an undocumented status or content
type, or break its documented shape.

Requests one at a time mostly meet unknown ids (404). The stateful test follows the schema's
OpenAPI links instead (api/v1/schema.py LINKS): it creates an order, then reads, pays and
cancels that order, lists payments and reads one, sets up a card and lists the cards, in
sequences schemathesis chooses (bounded and derandomized, so CI runs the same steps each time)."""

import uuid
from datetime import timedelta

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from django.utils import timezone
from hypothesis import HealthCheck, Phase, settings
from rest_framework.authtoken.models import Token
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from config.wsgi import application
from recovery.models import Plan, Subscription
from recovery.services import card_setup
from tests.api.conftest import SDK_STRIPE_VERSION
from tests.factories import PriceFactory, make_order

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance]


# Loaded at collection (the schema needs no database). schemathesis.pytest.from_fixture would
# load it lazily, but schemathesis 4.32 reads a private attribute that pytest 9 no longer has.
schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", application)
# For the stateful test: only the schema's own links, none that schemathesis would infer, so
# the sequences it tries are the ones the API documents.
linked_schema = schemathesis.openapi.from_wsgi(
    "/api/schema/?format=json", application,
    config=schemathesis.Config.from_dict(
        {"phases": {"stateful": {"inference": {"algorithms": []}}}}),
)
UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}


@pytest.fixture(autouse=True)
def _requests_keep_the_test_connection():
    """As Django's test client does: a request's end must not close the database connection,
    whose transaction is the test's database."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def token(customer, other_customer, sandbox):
    """The customer's token, with something to find: prices, orders of theirs and another's,
    a plan and a subscription to it."""
    price = PriceFactory(currency="USD", unit_amount=1000)
    make_order(customer=customer)
    make_order(customer=other_customer)
    plan = Plan.objects.create(name="Coffee club", slug="coffee-club", price=price)
    now = timezone.now()
    Subscription.objects.create(customer=customer, plan=plan, period=1,
                                current_period_start=now,
                                current_period_end=now + timedelta(days=30))
    return Token.objects.get_or_create(user=customer)[0].key


@pytest.mark.django_db
@schema.parametrize()
@settings(max_examples=15, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
def test_the_api_keeps_to_its_schema(case, token):
    case.call_and_validate(headers={"Authorization": f"Token {token}"}, checks=CHECKS)


@pytest.mark.django_db
def test_the_schema_documents_the_headers_and_errors(client):
    document = client.get("/api/schema/?format=json").json()
    pay = document["paths"]["/api/v1/orders/{number}/pay/"]["post"]

    headers = {p["name"] for p in pay["parameters"] if p["in"] == "header"}
    assert headers == {"Idempotency-Key", "Stripe-Version"}
    assert {"400", "401", "404", "409", "429", "503"} <= set(pay["responses"])
    assert "tokenAuth" in document["components"]["securitySchemes"]


@pytest.mark.django_db
def test_the_schema_documents_pays_customer_access_and_both_answers(client):
    document = client.get("/api/schema/?format=json").json()
    pay = document["paths"]["/api/v1/orders/{number}/pay/"]["post"]
    schemas = document["components"]["schemas"]

    body = pay["requestBody"]
    assert not body.get("required")  # an empty body is today's request
    request = schemas[body["content"]["application/json"]["schema"]["$ref"].split("/")[-1]]
    assert request["properties"]["customer_access"]["default"] == "ephemeral_key"
    answer = pay["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    answers = [schemas[one["$ref"].split("/")[-1]]
               for one in schemas[answer.split("/")[-1]]["oneOf"]]
    assert [{"ephemeral_key", "customer_session_client_secret"} & set(a["required"])
            for a in answers] == [{"ephemeral_key"}, {"customer_session_client_secret"}]


@pytest.mark.django_db
def test_the_home_page_links_the_api_docs_which_work_offline(client):
    home = client.get("/").content.decode()
    docs = client.get("/api/docs/")

    assert 'href="/api/docs/"' in home
    assert docs.status_code == 200
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/" in docs.content.decode()


class LinkedCalls(linked_schema.as_state_machine()):
    """Chains of calls along the schema's links, as the customer: every call carries the token,
    every unsafe one a new Idempotency-Key (a retry is not what this explores) and the mobile
    SDK's Stripe-Version; every answer must keep to the schema (CHECKS)."""

    token = ""
    price_id = 0

    def before_call(self, case):
        if (case.method.upper(), case.path) == ("POST", "/api/v1/orders/"):
            # An order of a price that exists (generated ids never do), so the chains that
            # start from a new order reach paying and canceling it; the stateless test sends
            # the invalid bodies.
            case.body = {"lines": [{"price": self.price_id, "quantity": 1}]}
        headers = dict(case.headers or {})
        if case.method.upper() in UNSAFE:
            headers["Idempotency-Key"] = str(uuid.uuid4())
        if "Stripe-Version" in headers:
            headers["Stripe-Version"] = SDK_STRIPE_VERSION
        case.headers = headers

    def get_call_kwargs(self, case):
        return {"headers": {"Authorization": f"Token {self.token}"}}

    def validate_response(self, response, case, additional_checks=None, **kwargs):
        case.validate_response(response, checks=CHECKS, transport_kwargs=kwargs or None)


def test_the_schema_links_orders_payments_and_cards():
    links = {
        (operation["operationId"], name): link["operationId"]
        for path in linked_schema.raw_schema["paths"].values() for operation in path.values()
        for response in operation["responses"].values()
        for name, link in response.get("links", {}).items()
    }
    assert links[("orders_create", "PayOrder")] == "orders_pay_create"
    assert links[("orders_pay_create", "CancelOrder")] == "orders_cancel_create"
    assert links[("payments_list", "GetPayment")] == "payments_retrieve"
    assert links[("payment_methods_setup_create", "ListPaymentMethods")] == "payment_methods_list"


@pytest.fixture
def linked_calls(token, customer):
    """LinkedCalls as the customer of `token`, with a price to order and a saved card."""
    card_setup(user=customer, test_payment_method="pm_card_visa",
               return_url="https://example.com/return", idempotency_key="setup:schema")
    LinkedCalls.token = token
    LinkedCalls.price_id = Plan.objects.get(slug="coffee-club").price_id
    return LinkedCalls


@pytest.mark.django_db
def test_linked_calls_keep_to_the_schema(linked_calls):
    linked_calls.run(settings=settings(
        max_examples=8, stateful_step_count=6, derandomize=True, deadline=None,
        phases=[Phase.generate], suppress_health_check=list(HealthCheck), database=None,
    ))
