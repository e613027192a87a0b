"""Refunds through the API: staff with the refund permission only, with the admin's rules."""

import pytest
from django.contrib.auth.models import Permission

from payments import gateway
from payments.models import Payment, Refund
from payments.services import payment_refresh, payment_start
from tests.api.conftest import RETURN_URL, token_client
from tests.factories import make_order

pytestmark = pytest.mark.django_db


@pytest.fixture
def paid(customer, sandbox) -> Payment:
    payment = payment_start(order=make_order(customer=customer, unit_amount=3000))
    gateway.payment_intent_confirm(payment.stripe_id, payment_method="pm_card_visa",
                                   return_url=RETURN_URL, idempotency_key="test-confirm")
    return payment_refresh(payment=payment, source="test")


@pytest.fixture
def refunder(make_user):
    user = make_user("support", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="refund_payment"))
    return user


def refund(client, payment, **body):
    return client.post(f"/api/v1/payments/{payment.pk}/refunds/",
                       {"amount": 1000, "reason": "requested_by_customer", **body})


def test_staff_with_the_permission_refunds_any_customers_payment(refunder, paid, sandbox):
    response = refund(token_client(refunder), paid, note="asked by phone")

    assert response.status_code == 201
    body = response.json()
    assert (body["amount"], body["status"], body["payment"]) == (1000, "succeeded", paid.pk)
    refund_row = Refund.objects.get(pk=body["id"])
    assert refund_row.created_by == refunder
    assert sandbox.app.store.get("refunds", refund_row.stripe_id)["amount"] == 1000
    assert paid.events.filter(kind="refund_requested", source="api").exists()


def test_the_same_idempotency_key_refunds_once(refunder, paid, sandbox):
    client = token_client(refunder)

    first = client.post(f"/api/v1/payments/{paid.pk}/refunds/", {"amount": 1000},
                        headers={"Idempotency-Key": "r1"})
    again = client.post(f"/api/v1/payments/{paid.pk}/refunds/", {"amount": 1000},
                        headers={"Idempotency-Key": "r1"})

    assert again.json() == first.json()
    assert len(sandbox.app.store.all("refunds")) == 1


def test_more_than_is_left_is_refused_with_the_services_words(refunder, paid):
    response = refund(token_client(refunder), paid, amount=3001)

    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["code"], error["param"]) == ("refund_not_allowed", "amount")
    assert error["message"].startswith("At most $30.00 can be refunded")
    assert not Refund.objects.exists()


def test_the_customer_gets_404(api, paid):
    response = refund(api, paid)

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "resource_missing"
    assert not Refund.objects.exists()


def test_staff_without_the_permission_gets_404(make_user, paid):
    clerk = make_user("clerk", is_staff=True)

    assert refund(token_client(clerk), paid).status_code == 404


def test_an_unknown_payment_is_404_for_staff_too(refunder):
    assert token_client(refunder).post("/api/v1/payments/999999/refunds/",
                                       {"amount": 1}).status_code == 404
