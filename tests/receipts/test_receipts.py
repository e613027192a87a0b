"""Receipts and credit notes (issue 11): issued with the payment or refund, exactly once, gapless
numbers under concurrency, frozen once issued, PDFs whose text is right per currency, e-mail with
the PDF attached and retried by beat. Real PostgreSQL, the sandbox, WeasyPrint."""

import io
import threading
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.core import mail
from django.db import connection, transaction
from django.urls import reverse
from django.utils import timezone
from pypdf import PdfReader

from orders.services import order_create
from payments import gateway
from payments.models import Payment
from payments.services import (
    payment_confirm,
    payment_start,
    payment_sync,
    refund_create,
    refund_sync,
)
from receipts.models import CreditNote, Receipt
from receipts.pdf import render_pdf
from receipts.services import (
    EMAIL_BACKOFF,
    document_deliver,
    documents_deliver_due,
    number_allocate,
    receipt_issue,
    tax_lines_of,
)
from tests.factories import PriceFactory, UserFactory, make_order

RETURN_URL = "http://testserver/checkout/return/"


def pay(order, card: str = "pm_card_visa") -> Payment:
    return payment_confirm(payment=payment_start(order=order), payment_method=card,
                           return_url=RETURN_URL)


def pdf_text(document) -> str:
    reader = PdfReader(io.BytesIO(render_pdf(document)))
    return "\n".join(page.extract_text() for page in reader.pages)


@pytest.fixture
def order_with_tax(customer):
    mug = PriceFactory(product__name="Ceramic mug", product__tax_rate=Decimal("20.00"),
                       unit_amount=1450)
    sticker = PriceFactory(product__name="Sticker pack", unit_amount=499)
    return order_create(customer=customer, items=[(mug, 2), (sticker, 1)])


# --- Issued with the payment, once ----------------------------------------------------------


@pytest.mark.django_db
def test_a_succeeded_payment_gets_one_receipt_with_what_was_bought(sandbox, order_with_tax):
    payment = pay(order_with_tax)

    receipt = Receipt.objects.get(payment=payment)
    year = receipt.issued_at.year
    assert receipt.number == f"R-{year}-000001"
    assert (receipt.total, receipt.currency) == (3399, "USD")
    assert [(line["description"], line["quantity"], line["amount"]) for line in receipt.lines] \
        == [("Ceramic mug", 2, 2900), ("Sticker pack", 1, 499)]
    # 20% included in 29.00: 4.83 tax, 24.17 net; the sticker carries no tax.
    assert receipt.tax_lines == [{"rate": "20.00", "gross": 2900, "tax": 483, "net": 2417}]
    assert receipt.buyer["card_last4"] == "4242" and receipt.buyer["email"] == "ada@example.com"
    assert receipt.buyer["stripe_payment_id"] == payment.stripe_id
    assert receipt.seller["name"] == "Paydesk Demo Shop"


@pytest.mark.django_db
def test_the_same_success_applied_twice_issues_one_receipt(sandbox, customer):
    payment = pay(make_order(customer=customer))
    intent = gateway.payment_intent_retrieve(payment.stripe_id)

    payment_sync(payment=payment, intent=intent, source="webhook")
    payment_sync(payment=payment, intent=intent, source="webhook")

    assert Receipt.objects.filter(payment=payment).count() == 1
    assert receipt_issue(payment=payment).pk == Receipt.objects.get().pk


@pytest.mark.django_db
def test_a_declined_payment_gets_no_receipt(sandbox, customer):
    order = make_order(customer=customer)
    with pytest.raises(gateway.CardDeclined):
        pay(order, card="pm_card_chargeDeclined")
    assert not Receipt.objects.exists()


@pytest.mark.parametrize(("gross", "rate", "tax"), [
    (2900, "20.00", 483), (100, "7.70", 7), (1, "20.00", 0), (6, "20.00", 1), (1000, "0", None),
])
def test_tax_included_is_rounded_half_up_per_rate(gross, rate, tax):
    lines = tax_lines_of([{"amount": gross, "tax_rate": rate}], "USD")
    if tax is None:
        assert lines == []
    else:
        assert lines == [{"rate": rate, "gross": gross, "tax": tax, "net": gross - tax}]


# --- Gapless numbers ---------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_fifty_concurrent_payments_get_fifty_consecutive_numbers(sandbox):
    orders = [make_order(customer=UserFactory(), unit_amount=1000 + n) for n in range(50)]
    barrier = threading.Barrier(10)
    errors = []

    def pay_some(chunk):
        try:
            barrier.wait()
            for order in chunk:
                pay(order)
        except Exception as exc:  # reported below, with the thread's own error
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=pay_some, args=(orders[n::10],)) for n in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    sequences = sorted(Receipt.objects.values_list("sequence", flat=True))
    assert sequences == list(range(1, 51))
    assert len(set(Receipt.objects.values_list("number", flat=True))) == 50


@pytest.mark.django_db
def test_a_rolled_back_issue_leaves_no_gap(sandbox):
    year = timezone.now().year
    with pytest.raises(RuntimeError), transaction.atomic():
        assert number_allocate(series="R", year=year) == (1, f"R-{year}-000001")
        raise RuntimeError("the payment's transaction failed after the number was taken")

    assert number_allocate_committed(year) == (1, f"R-{year}-000001")


def number_allocate_committed(year):
    with transaction.atomic():
        return number_allocate(series="R", year=year)


@pytest.mark.django_db
def test_numbers_start_again_each_year_and_each_series_counts_alone(sandbox):
    with transaction.atomic():
        assert number_allocate(series="R", year=2026)[1] == "R-2026-000001"
        assert number_allocate(series="R", year=2026)[1] == "R-2026-000002"
        assert number_allocate(series="CN", year=2026)[1] == "CN-2026-000001"
        assert number_allocate(series="R", year=2027)[1] == "R-2027-000001"


def test_a_number_outside_a_transaction_is_refused():
    with pytest.raises(RuntimeError, match="inside the issuing transaction"):
        number_allocate(series="R", year=2026)


@pytest.mark.django_db
def test_an_issued_receipt_cannot_be_changed_or_deleted_in_the_database(sandbox, customer):
    pay(make_order(customer=customer))
    for sql in ("UPDATE receipts_receipt SET total = 1",
                "UPDATE receipts_receipt SET number = 'R-0000-000009'",
                "DELETE FROM receipts_receipt"):
        with pytest.raises(Exception, match="issued_receipt"), transaction.atomic(), \
                connection.cursor() as cursor:
            cursor.execute(sql)
    # Its delivery state is not frozen.
    Receipt.objects.update(email_status="sent")


# --- Credit notes -------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_partial_refund_issues_one_credit_note(sandbox, customer, staff):
    payment = pay(make_order(customer=customer, unit_amount=5000))

    refund = refund_create(payment=payment, amount=1200, idempotency_key="cn", by=staff,
                           reason="requested_by_customer")
    refund_sync(refund=gateway.refund_retrieve(refund.stripe_id), source="webhook")

    note = CreditNote.objects.get()
    receipt = Receipt.objects.get(payment=payment)
    assert note.number == f"CN-{note.issued_at.year}-000001"
    assert (note.receipt, note.refund, note.total, note.kind) == (receipt, refund, 1200, "credit")
    assert note.reason == "Requested by the customer"


@pytest.mark.django_db
def test_a_refund_that_fails_afterwards_is_reversed_by_a_note_of_its_own(sandbox, customer,
                                                                        staff):
    payment = pay(make_order(customer=customer, unit_amount=5000), card="pm_card_refundFail")
    refund = refund_create(payment=payment, amount=5000, idempotency_key="rf", by=staff)
    sandbox.advance()  # Stripe fails the refund
    refund_sync(refund=gateway.refund_retrieve(refund.stripe_id), source="webhook")
    refund_sync(refund=gateway.refund_retrieve(refund.stripe_id), source="webhook")

    credit, reversal = CreditNote.objects.order_by("sequence")
    assert (credit.kind, reversal.kind, reversal.reverses) == ("credit", "reversal", credit)
    assert reversal.total == 5000 and "expired_or_canceled_card" in reversal.reason
    assert "Credit note reversal" in pdf_text(reversal)


# --- The PDF -----------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(("currency", "unit_amount", "quantity", "unit_text", "total_text"), [
    ("USD", 1450, 2, "$14.50", "$29.00"),
    ("JPY", 1800, 3, "¥1,800", "¥5,400"),
    ("KWD", 1230, 2, "KWD1.230", "KWD2.460"),
])
def test_the_pdf_shows_number_lines_and_totals_in_the_currency(
    sandbox, customer, currency, unit_amount, quantity, unit_text, total_text
):
    order = make_order(customer=customer, currency=currency, unit_amount=unit_amount,
                       quantity=quantity)
    receipt = Receipt.objects.get(payment=pay(order))

    text = pdf_text(receipt)

    assert "Receipt" in text and receipt.number in text
    assert order.lines.get().description in text
    assert unit_text in text.replace("\xa0", "")
    assert f"Total paid ({currency})" in text and total_text in text.replace("\xa0", "")
    assert "Visa •••• 4242" in text and order.number in text


# --- E-mail ------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_delivery_emails_the_receipt_with_its_pdf_attached(sandbox, customer, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    receipt = Receipt.objects.get(payment=pay(make_order(customer=customer)))

    assert document_deliver(kind="receipt", document_id=receipt.pk) is True
    assert document_deliver(kind="receipt", document_id=receipt.pk) is False  # sent already

    [message] = mail.outbox
    assert message.to == ["ada@example.com"]
    assert message.subject == f"Your receipt {receipt.number}"
    assert receipt.number in message.body
    assert message.alternatives[0].mimetype == "text/html"
    [(filename, content, mimetype)] = message.attachments
    assert (filename, mimetype) == (f"{receipt.number}.pdf", "application/pdf")
    assert content.startswith(b"%PDF")
    receipt.refresh_from_db()
    assert (receipt.email_status, receipt.email_attempts) == ("sent", 1)
    assert receipt.pdf.name.endswith(".pdf") and receipt.pdf_rendered_at


@pytest.mark.django_db
def test_a_failing_mail_server_leaves_it_for_beat_which_sends_it_later(sandbox, customer,
                                                                      settings):
    # A real SMTP client against a port nobody listens on: connection refused.
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", 9, 2
    receipt = Receipt.objects.get(payment=pay(make_order(customer=customer)))
    issued = receipt.issued_at

    assert document_deliver(kind="receipt", document_id=receipt.pk, now=issued) is False
    receipt.refresh_from_db()
    assert (receipt.email_status, receipt.email_attempts) == ("failed", 1)
    assert "ConnectionRefusedError" in receipt.email_last_error
    assert receipt.email_next_attempt_at == issued + EMAIL_BACKOFF[0]
    assert documents_deliver_due(now=issued + timedelta(seconds=30)) == 0  # not due yet

    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    assert documents_deliver_due(now=issued + EMAIL_BACKOFF[0]) == 1

    receipt.refresh_from_db()
    assert (receipt.email_status, receipt.email_attempts) == ("sent", 2)
    assert len(mail.outbox) == 1


@pytest.mark.django_db
def test_beat_sends_a_pending_receipt_whose_task_was_lost(sandbox, customer, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    receipt = Receipt.objects.get(payment=pay(make_order(customer=customer)))

    assert documents_deliver_due(now=receipt.issued_at) == 0  # its task may still come
    assert documents_deliver_due(now=receipt.issued_at + timedelta(minutes=2)) == 1
    assert len(mail.outbox) == 1


# --- The customer's and staff's copies ---------------------------------------------------------


@pytest.mark.django_db
def test_the_customer_downloads_their_receipt_from_the_order_page(sandbox, customer,
                                                                  customer_client):
    order = make_order(customer=customer)
    receipt = Receipt.objects.get(payment=pay(order))

    page = customer_client.get(order.get_absolute_url()).content.decode()
    url = reverse("receipts:pdf", args=[receipt.number])
    download = customer_client.get(url)

    assert f'href="{url}"' in page and f"Receipt {receipt.number}" in page
    assert download.status_code == 200 and download["Content-Type"] == "application/pdf"
    assert download.content.startswith(b"%PDF")


@pytest.mark.django_db
def test_another_customers_receipt_is_not_found(sandbox, other_customer, client):
    receipt = Receipt.objects.get(payment=pay(make_order()))
    client.force_login(other_customer)
    assert client.get(reverse("receipts:pdf", args=[receipt.number])).status_code == 404


@pytest.mark.django_db
def test_staff_download_and_resend_in_the_admin(sandbox, customer, staff_client, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    receipt = Receipt.objects.get(payment=pay(make_order(customer=customer)))

    download = staff_client.get(reverse("admin:receipts_receipt_pdf", args=[receipt.pk]))
    resent = staff_client.post(reverse("admin:receipts_receipt_changelist"),
                               {"action": "resend", "_selected_action": [receipt.pk]},
                               follow=True)

    assert download.status_code == 200 and download.content.startswith(b"%PDF")
    assert "1 sent again by e-mail." in resent.content.decode()
    assert len(mail.outbox) == 1


def test_issue_dates_use_the_document_locale(settings):
    from receipts.pdf import document_context

    settings.PAYDESK_DOCUMENT_LOCALE = "de_DE"
    receipt = Receipt(number="R-2026-000007", issued_at=datetime(2026, 11, 26, tzinfo=UTC),
                      currency="EUR", total=123456, lines=[], tax_lines=[], seller={},
                      buyer={})
    context = document_context(receipt)
    assert context["issued_on"] == "26. November 2026"
    assert context["total_display"] == "1.234,56\xa0€"


# --- As dispute evidence ------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_disputed_payments_receipt_goes_with_the_evidence(sandbox, make_user):
    from tests.payments.test_disputes import (
        VIEW,
        client_for,
        evidence_url,
        form_data,
        open_dispute,
        staff_with,
    )

    finance = staff_with(make_user, "fiona", *VIEW, "respond_dispute")
    dispute = open_dispute(sandbox)
    receipt = Receipt.objects.get(payment=dispute.payment)
    client = client_for(finance)

    form = client.get(evidence_url(dispute)).content.decode()
    assert f"Receipt: {receipt.number}.pdf" in form

    client.post(evidence_url(dispute), {**form_data(), "_save_draft": "Save draft"})

    dispute.refresh_from_db()
    file_id = dispute.evidence["receipt"]
    at_stripe = gateway.client().v1.disputes.retrieve(dispute.stripe_id)
    assert at_stripe.evidence.receipt == file_id
    uploaded = gateway.client().v1.files.retrieve(file_id)
    assert (uploaded.filename, uploaded.purpose) == (f"{receipt.number}.pdf", "dispute_evidence")
