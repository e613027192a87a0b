"""The OpenAPI schema at /api/schema/ is valid, and the API keeps to it: schemathesis generates
requests from it (valid and not) against the WSGI app in-process, as the customer with a token,
with the sandbox as Stripe. No answer may be a 5xx, have an undocumented status or content
type, or break its documented shape."""

from datetime import timedelta

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from django.utils import timezone
from hypothesis import HealthCheck, settings
from rest_framework.authtoken.models import Token
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from config.wsgi import application
from recovery.models import Plan, Subscription
from tests.factories import PriceFactory, make_order

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance]


# Loaded at collection (the schema needs no database). schemathesis.pytest.from_fixture would
# load it lazily, but schemathesis 4.32 reads a private attribute that pytest 9 no longer has.
schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", application)


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
def test_the_home_page_links_the_api_docs_which_work_offline(client):
    home = client.get("/").content.decode()
    docs = client.get("/api/docs/")

    assert 'href="/api/docs/"' in home
    assert docs.status_code == 200
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/" in docs.content.decode()
