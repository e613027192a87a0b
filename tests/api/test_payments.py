"""Payment history: the customer's own payments, filters, cursor pages, the detail with refunds
and the customer-visible timeline, and query counts that do not grow with the page."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from payments.checkout import INSUFFICIENT_FUNDS
from payments.models import Payment, PaymentEvent, Refund
from tests.factories import make_order

pytestmark = pytest.mark.django_db
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def payment_of(user, *, status="succeeded", amount=2500, **fields) -> Payment:
    order = make_order(customer=user, unit_amount=amount)
    payment = Payment.objects.create(
        order=order, customer=user, amount=amount, currency="USD", status=status,
        amount_received=amount if status == "succeeded" else 0,
        idempotency_key=f"payment:{order.pk}:1", stripe_id=f"pi_test_{order.pk}", **fields,
    )
    PaymentEvent.objects.create(payment=payment, kind="requested", amount=amount,
                                reference=payment.idempotency_key, source="api")
    return payment


def test_history_is_the_customers_own_newest_first(api, customer, other_customer):
    with time_machine.travel(T0, tick=False):
        older = payment_of(customer)
    with time_machine.travel(T0 + timedelta(hours=1), tick=False):
        newer = payment_of(customer, status="requires_payment_method")
    payment_of(other_customer)

    body = api.get("/api/v1/payments/").json()

    assert [p["id"] for p in body["results"]] == [newer.pk, older.pk]
    first = body["results"][1]
    assert first["order"] == older.order.number
    assert (first["amount"], first["currency"], first["status"]) == (2500, "USD", "succeeded")
    assert first["status_display"] == "Paid"


def test_history_filters_by_status_and_created_range(api, customer):
    with time_machine.travel(T0, tick=False):
        payment_of(customer)
    with time_machine.travel(T0 + timedelta(days=1), tick=False):
        middle = payment_of(customer)
        payment_of(customer, status="canceled")
    with time_machine.travel(T0 + timedelta(days=2), tick=False):
        payment_of(customer)

    def ids(query):
        response = api.get("/api/v1/payments/", query)
        assert response.status_code == 200, response.json()
        return [p["id"] for p in response.json()["results"]]

    window = {"created_gte": (T0 + timedelta(days=1)).isoformat(),
              "created_lt": (T0 + timedelta(days=2)).isoformat()}
    assert ids({**window, "status": "succeeded"}) == [middle.pk]
    assert len(ids(window)) == 2
    assert len(ids({"status": "canceled"})) == 1


def test_a_bad_filter_is_a_field_error(api):
    response = api.get("/api/v1/payments/", {"status": "paid", "created_gte": "yesterday"})

    assert response.status_code == 400
    assert {e["param"] for e in response.json()["error"]["errors"]} == {"status", "created_gte"}


def test_history_pages_with_a_cursor(api, customer):
    for _ in range(5):
        payment_of(customer)

    first = api.get("/api/v1/payments/", {"limit": 2}).json()
    rest = []
    page = first
    while page["next"]:
        page = api.get(page["next"]).json()
        rest += page["results"]

    ids = [p["id"] for p in first["results"] + rest]
    assert ids == sorted(ids, reverse=True) and len(ids) == 5


def test_a_failed_payment_says_why_in_the_customers_words(api, customer):
    payment = payment_of(customer, status="requires_payment_method", failure_code="card_declined",
                         decline_code="insufficient_funds",
                         failure_message="Your card has insufficient funds.")

    body = api.get(f"/api/v1/payments/{payment.pk}/").json()

    assert body["status_display"] == "Failed"
    assert body["failure_message"] == INSUFFICIENT_FUNDS


def test_the_detail_shows_refunds_at_stripe_and_the_customers_timeline(api, customer, staff):
    payment = payment_of(customer)
    Refund.objects.create(payment=payment, amount=500, currency="USD", status="succeeded",
                          stripe_id="re_1", created_by=staff)
    Refund.objects.create(payment=payment, amount=700, currency="USD",
                          status="awaiting_approval", created_by=staff)
    PaymentEvent.objects.create(payment=payment, kind="succeeded", amount=2500,
                                reference="ch_1", source="webhook")
    PaymentEvent.objects.create(payment=payment, kind="refund_awaiting_approval", amount=700,
                                reference="refund-request:2", source="admin", actor=staff)
    PaymentEvent.objects.create(payment=payment, kind="refund_succeeded", amount=500,
                                reference="re_1", source="webhook")

    body = api.get(f"/api/v1/payments/{payment.pk}/").json()

    assert [(r["amount"], r["status"]) for r in body["refunds"]] == [(500, "succeeded")]
    assert [e["kind"] for e in body["timeline"]] == ["requested", "succeeded",
                                                     "refund_succeeded"]
    assert body["timeline"][1]["label"] == "Payment succeeded"


@pytest.mark.parametrize("count", [1, 50])
def test_payment_history_makes_the_same_queries_for_1_and_50(api, customer, count,
                                                            django_assert_num_queries):
    for _ in range(count):
        payment_of(customer)

    # Token and user, then the page (with each payment's order in the same query).
    with django_assert_num_queries(2):
        response = api.get("/api/v1/payments/", {"limit": 50})

    assert len(response.json()["results"]) == count


@pytest.mark.parametrize("count", [1, 50])
def test_order_history_makes_the_same_queries_for_1_and_50(api, customer, count,
                                                          django_assert_num_queries):
    for _ in range(count):
        make_order(customer=customer)

    # Token and user, the page, its lines.
    with django_assert_num_queries(3):
        response = api.get("/api/v1/orders/", {"limit": 50})

    assert len(response.json()["results"]) == count


def test_a_payment_detail_makes_a_fixed_number_of_queries(api, customer,
                                                          django_assert_num_queries):
    payment = payment_of(customer)
    for n in range(5):
        PaymentEvent.objects.create(payment=payment, kind="failed", source="webhook",
                                    message=str(n))

    # Token and user, the payment and its order, its refunds, its timeline.
    with django_assert_num_queries(4):
        api.get(f"/api/v1/payments/{payment.pk}/")


@pytest.mark.parametrize("fields", [
    {"status": "succeeded", "succeeded_at": T0, "card_brand": "visa", "card_last4": "4242",
     "amount_refunded": 500},
    {"status": "requires_payment_method", "failure_code": "card_declined",
     "decline_code": "insufficient_funds"},
    {"status": "processing"},
])
def test_history_rows_are_built_as_drf_would_build_them_field_by_field(customer, fields):
    from rest_framework import serializers

    from api.v1.serializers import PaymentDetailOutput, PaymentOutput
    from payments.selectors import payment_detail_for, payment_history_for

    status = fields.pop("status")
    payment_of(customer, status=status, **fields)
    listed = payment_history_for(user=customer).get()
    detailed = payment_detail_for(user=customer).get()

    assert PaymentOutput(listed).data == serializers.ModelSerializer.to_representation(
        PaymentOutput(), listed)
    assert PaymentDetailOutput(detailed).data == serializers.ModelSerializer.to_representation(
        PaymentDetailOutput(), detailed)
