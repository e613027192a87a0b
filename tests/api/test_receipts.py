"""Receipts in the API: a customer's own, newest first with their credit notes, and the PDF."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from payments.services import payment_confirm, payment_start, refund_create
from receipts.models import Receipt
from tests.factories import make_order

pytestmark = pytest.mark.django_db
RETURN_URL = "http://testserver/checkout/return/"


def paid(customer, amount=2500):
    payment = payment_start(order=make_order(customer=customer, unit_amount=amount))
    return payment_confirm(payment=payment, payment_method="pm_card_visa", return_url=RETURN_URL)


def test_receipts_list_the_customers_own_with_credit_notes_and_pdf_links(
    sandbox, api, customer, other_customer, staff
):
    first, second = paid(customer, 2500), paid(customer, 4000)
    paid(other_customer)
    refund_create(payment=first, amount=500, idempotency_key="api-cn", by=staff)

    listed = api.get("/api/v1/receipts/").json()

    assert [r["payment"] for r in listed["results"]] == [second.pk, first.pk]
    receipt = listed["results"][1]
    assert (receipt["total"], receipt["currency"], receipt["order"]) == (
        2500, "USD", first.order.number)
    [note] = receipt["credit_notes"]
    assert (note["kind"], note["total"]) == ("credit", 500)
    assert note["pdf_url"].endswith(f"/api/v1/credit-notes/{note['id']}/pdf/")
    pdf = api.get(f"/api/v1/credit-notes/{note['id']}/pdf/")
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    assert receipt["pdf_url"].endswith(f"/api/v1/receipts/{receipt['id']}/pdf/")


def test_the_receipts_pdf(sandbox, api, customer):
    receipt = Receipt.objects.get(payment=paid(customer))

    response = api.get(f"/api/v1/receipts/{receipt.pk}/pdf/")

    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert response.content.startswith(b"%PDF")


def test_receipt_history_makes_the_same_number_of_queries_for_1_and_20(sandbox, api, customer):
    paid(customer)
    with CaptureQueriesContext(connection) as one:
        assert len(api.get("/api/v1/receipts/").json()["results"]) == 1
    for _ in range(19):
        paid(customer)
    with CaptureQueriesContext(connection) as twenty:
        assert len(api.get("/api/v1/receipts/").json()["results"]) == 20
    assert len(twenty.captured_queries) == len(one.captured_queries)
