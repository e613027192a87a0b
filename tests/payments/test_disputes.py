"""Disputes from the back office (issue 9): the list and its due dates, the evidence form
(pre-filled, draft, submit once, files at Stripe), accepting, the respond_dispute permission,
and outcomes arriving by webhook, against real PostgreSQL and the sandbox over real HTTP."""

import re
from datetime import UTC, datetime, timedelta
from io import BytesIO

import pytest
import time_machine
from django.contrib.auth.models import Permission
from django.test import Client

from payments import gateway
from payments.admin.disputes import (
    DISPUTE_ACCEPTED,
    EVIDENCE_NOT_SENT,
    EVIDENCE_SAVED,
    EVIDENCE_SUBMITTED,
    evidence_due_state,
)
from payments.evidence import (
    FILE_TOO_LARGE,
    FILE_WRONG_TYPE,
    EvidenceFile,
    dispute_evidence_prefill,
)
from payments.models import Dispute, Payment, PaymentEvent, WebhookEvent
from payments.services import (
    DISPUTE_CLOSED,
    DISPUTE_EVIDENCE_SUBMITTED,
    DISPUTE_NO_RESPONSE,
    DISPUTE_PAST_DUE,
    PaymentError,
    dispute_accept,
    dispute_evidence_save,
    dispute_sync,
    payment_confirm,
    payment_start,
)
from payments.webhooks.processing import webhook_event_process
from tests.conftest import wait_for
from tests.factories import make_order

RETURN_URL = "http://testserver/checkout/return/"
WEBHOOK_PATH = "/webhooks/stripe/"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
PDF = b"%PDF-1.7\n%fake receipt\n"
Kind = PaymentEvent.Kind
VIEW = ("view_dispute", "view_payment", "view_paymentevent")


# --- Helpers --------------------------------------------------------------------------------------


def staff_with(make_user, username: str, *codenames: str):
    """A member of staff (not a superuser) with exactly these payments permissions."""
    user = make_user(username)
    user.is_staff = True
    user.save(update_fields=["is_staff"])
    user.user_permissions.add(
        *Permission.objects.filter(content_type__app_label="payments", codename__in=codenames)
    )
    return user


@pytest.fixture
def finance(make_user):
    """Like the Finance group: sees disputes and payments, and answers disputes."""
    return staff_with(make_user, "fiona", *VIEW, "respond_dispute")


@pytest.fixture
def support(make_user):
    """Like the Support group: sees disputes, cannot answer them."""
    return staff_with(make_user, "sam", *VIEW)


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def disputed_payment(*, quantity: int = 1, unit_amount: int = 2100) -> Payment:
    """A payment paid with Stripe's dispute card (the dispute opens at the sandbox's next
    advance())."""
    payment = payment_start(order=make_order(unit_amount=unit_amount, quantity=quantity))
    return payment_confirm(payment=payment, payment_method="pm_card_createDispute",
                           return_url=RETURN_URL)


def apply_stripe_events(prefix: str = "charge.dispute.") -> list[WebhookEvent]:
    """Applies the sandbox's events as the webhook endpoint and a worker would: each stored
    once (a duplicate is a no-op) and processed in-process."""
    events = gateway.client().v1.events.list(params={"type": f"{prefix}*", "limit": 100}).data
    applied = []
    for event in reversed(events):
        payload = event.to_dict(recursive=True)
        stored, _ = WebhookEvent.objects.get_or_create(
            stripe_id=event.id, defaults={"type": event.type, "payload": payload}
        )
        applied.append(webhook_event_process(event_id=stored.pk))
    return applied


def open_dispute(sandbox, **order) -> Dispute:
    payment = disputed_payment(**order)
    sandbox.advance()
    apply_stripe_events()
    return Dispute.objects.get(payment=payment)


def evidence_url(dispute: Dispute) -> str:
    return f"/admin/payments/dispute/{dispute.pk}/actions/evidence/"


def accept_url(dispute: Dispute) -> str:
    return f"/admin/payments/dispute/{dispute.pk}/actions/accept/"


def upload(content: bytes, name: str) -> BytesIO:
    file = BytesIO(content)
    file.name = name
    return file


def form_data(**fields) -> dict:
    data = {"product_description": "1 x Widget", "customer_name": "Ada Lovelace",
            "customer_email_address": "ada@example.com", "refund_policy_disclosure": "",
            "uncategorized_text": "Paid and delivered."}
    return {**data, **fields}


def ledger(payment: Payment) -> list[str]:
    return list(payment.events.filter(kind__startswith="dispute").values_list("kind", flat=True))


def messages_of(response) -> list[str]:
    return [str(m) for m in response.context["messages"]] if response.context else []


# --- The whole flow, with real webhook delivery and a real worker ---------------------------------


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_dispute_answered_through_the_admin_and_won_by_webhook(
    sandbox, live_server, celery_worker, finance
):
    sandbox.configure_webhooks([live_server.url + WEBHOOK_PATH])
    payment = disputed_payment(unit_amount=4200)
    sandbox.advance()  # Stripe opens the dispute; charge.dispute.created is delivered
    dispute = wait_for(lambda: Dispute.objects.filter(payment=payment).first(),
                       timeout=30, what="the dispute to arrive by webhook")
    assert (dispute.status, dispute.amount, dispute.reason) == ("needs_response", 4200,
                                                               "fraudulent")
    client = client_for(finance)

    form = client.get(evidence_url(dispute))
    assert form.status_code == 200
    assert payment.stripe_id in form.context["form"].initial["uncategorized_text"]

    draft = client.post(evidence_url(dispute), {
        **form_data(receipt=upload(PDF, "receipt.pdf")), "_save_draft": "Save draft"},
        follow=True)
    assert EVIDENCE_SAVED in messages_of(draft)
    dispute.refresh_from_db()
    receipt = dispute.evidence["receipt"]
    at_stripe = gateway.client().v1.disputes.retrieve(dispute.stripe_id)
    assert (at_stripe.status, at_stripe.evidence.receipt) == ("needs_response", receipt)
    assert at_stripe.evidence.customer_name == "Ada Lovelace"

    winning = form_data(uncategorized_text="winning_evidence")
    submitted = client.post(evidence_url(dispute), {**winning, "_submit": "Submit"}, follow=True)
    again = client.post(evidence_url(dispute), {**winning, "_submit": "Submit"}, follow=True)

    assert EVIDENCE_SUBMITTED in messages_of(submitted)
    assert submitted.context["form"] is None  # read only from now on
    assert again.status_code == 200 and again.context["form"] is None
    at_stripe = gateway.client().v1.disputes.retrieve(dispute.stripe_id)
    assert (at_stripe.status, at_stripe.evidence_details.submission_count) == ("under_review", 1)
    assert at_stripe.evidence.receipt == receipt  # the draft's file went with the submission

    sandbox.advance()  # the bank decides; charge.dispute.closed is delivered
    wait_for(lambda: Dispute.objects.get(pk=dispute.pk).status == "won", timeout=30,
             what="the outcome to arrive by webhook")
    wait_for(lambda: not WebhookEvent.objects.filter(status="pending").exists(), timeout=30,
             what="the worker to apply every event")

    payment.refresh_from_db()
    assert payment.dispute_status == "won"
    assert ledger(payment) == [Kind.DISPUTE_OPENED, Kind.DISPUTE_EVIDENCE_SAVED,
                               Kind.DISPUTE_EVIDENCE_SUBMITTED, Kind.DISPUTE_WON]
    answers = payment.events.filter(kind__in=[Kind.DISPUTE_EVIDENCE_SAVED,
                                              Kind.DISPUTE_EVIDENCE_SUBMITTED])
    assert {(e.actor, e.source) for e in answers} == {(finance, "admin")}
    assert receipt in answers.get(kind=Kind.DISPUTE_EVIDENCE_SAVED).message
    assert not WebhookEvent.objects.exclude(status__in=["processed", "ignored"]).exists()
    page = client.get(f"/admin/payments/payment/{payment.pk}/change/")
    assert "Dispute won" in page.content.decode()


# --- Accepting ------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_accept_confirms_first_then_closes_the_dispute_as_lost(sandbox, finance):
    dispute = open_dispute(sandbox)
    client = client_for(finance)

    confirmation = client.get(accept_url(dispute))
    unconfirmed = client.post(accept_url(dispute))
    assert confirmation.status_code == unconfirmed.status_code == 200
    assert "This is final." in confirmation.content.decode()
    assert Dispute.objects.get(pk=dispute.pk).status == "needs_response"

    accepted = client.post(accept_url(dispute), {"post": "yes"}, follow=True)
    apply_stripe_events()  # charge.dispute.closed arrives after the fact: nothing new

    assert DISPUTE_ACCEPTED in messages_of(accepted)
    dispute.refresh_from_db()
    payment = dispute.payment
    assert dispute.status == "lost" == payment.dispute_status
    assert gateway.dispute_retrieve(dispute.stripe_id).status == "lost"
    assert ledger(payment) == [Kind.DISPUTE_OPENED, Kind.DISPUTE_ACCEPTED, Kind.DISPUTE_LOST]
    assert payment.events.get(kind=Kind.DISPUTE_ACCEPTED).actor == finance
    assert payment.events.get(kind=Kind.DISPUTE_LOST).amount == dispute.amount
    assert client.get(evidence_url(dispute)).context["form"] is None
    with pytest.raises(PaymentError, match="closed"):
        dispute_accept(dispute=dispute, by=finance)


@pytest.mark.django_db
def test_evidence_submitted_cannot_be_accepted_any_more(sandbox, finance):
    dispute = open_dispute(sandbox)
    dispute_evidence_save(dispute=dispute, evidence={"uncategorized_text": "Delivered."},
                          files={}, submit=True, by=finance)

    with pytest.raises(PaymentError) as refused:
        dispute_accept(dispute=dispute, by=finance)

    assert str(refused.value) == DISPUTE_EVIDENCE_SUBMITTED
    assert gateway.dispute_retrieve(dispute.stripe_id).status == "under_review"


# --- Permissions and CSRF -------------------------------------------------------------------------


@pytest.mark.django_db
def test_without_respond_dispute_the_form_and_the_actions_are_forbidden(sandbox, support):
    dispute = open_dispute(sandbox)
    client = client_for(support)

    page = client.get(f"/admin/payments/dispute/{dispute.pk}/change/")
    answers = [
        client.get(evidence_url(dispute)),
        client.post(evidence_url(dispute), {**form_data(), "_submit": "Submit"}),
        client.get(accept_url(dispute)),
        client.post(accept_url(dispute), {"post": "yes"}),
    ]

    assert page.status_code == 200
    assert "Respond with evidence" not in page.content.decode()
    assert [a.status_code for a in answers] == [403] * 4
    at_stripe = gateway.dispute_retrieve(dispute.stripe_id)
    assert (at_stripe.status, at_stripe.submission_count) == ("needs_response", 0)
    assert ledger(dispute.payment) == [Kind.DISPUTE_OPENED]


@pytest.mark.django_db
def test_the_dispute_page_offers_the_answers_to_finance(sandbox, finance):
    dispute = open_dispute(sandbox)

    page = client_for(finance).get(f"/admin/payments/dispute/{dispute.pk}/change/").content

    assert evidence_url(dispute).encode() in page and accept_url(dispute).encode() in page


@pytest.mark.django_db
def test_answers_need_the_csrf_token(sandbox, finance):
    dispute = open_dispute(sandbox)
    client = Client(enforce_csrf_checks=True)
    client.force_login(finance)

    posts = [client.post(evidence_url(dispute), {**form_data(), "_submit": "Submit"}),
             client.post(accept_url(dispute), {"post": "yes"})]

    assert [p.status_code for p in posts] == [403, 403]
    assert Dispute.objects.get(pk=dispute.pk).status == "needs_response"


# --- The evidence form ----------------------------------------------------------------------------


@pytest.mark.django_db
def test_prefill_is_paydesks_own_record_of_the_order_customer_payment_and_ledger(sandbox):
    dispute = open_dispute(sandbox, quantity=3, unit_amount=1250)
    payment = dispute.payment
    order = payment.order
    customer = order.customer
    customer.first_name, customer.last_name = "Ada", "Lovelace"
    customer.save()

    draft = dispute_evidence_prefill(dispute=dispute)

    line = order.lines.get()
    assert draft["product_description"].splitlines()[1:] == [
        f"- 3 x {line.description} at $12.50 = $37.50", "Total: $37.50"]
    assert draft["product_description"].startswith(f"Order {order.number}, placed ")
    assert (draft["customer_name"], draft["customer_email_address"]) == (
        "Ada Lovelace", customer.email)
    text = draft["uncategorized_text"]
    paid_on = f"{payment.succeeded_at.astimezone(UTC):%Y-%m-%d %H:%M} UTC"
    assert text.splitlines()[0] == (
        f"Payment {payment.stripe_id} (charge {payment.stripe_charge_id}) for order "
        f"{order.number}: $37.50 paid with the customer's Visa ending 0259, expiring "
        f"{payment.card_exp_month:02d}/{payment.card_exp_year} on {paid_on}."
    )
    timeline = text.split("Timeline of the payment (Paydesk's ledger):\n")[1].splitlines()
    assert [row.split("  ")[1] for row in timeline] == ["Payment requested", "Payment succeeded"]
    assert "$37.50" in timeline[1]
    assert "Dispute" not in text
    assert draft["refund_policy_disclosure"] == ""


@pytest.mark.django_db
def test_the_form_starts_from_the_prefill_then_from_the_draft_sent(sandbox, finance):
    dispute = open_dispute(sandbox)
    client = client_for(finance)
    prefill = dispute_evidence_prefill(dispute=dispute)

    first = client.get(evidence_url(dispute))
    client.post(evidence_url(dispute),
                form_data(customer_name="A. Lovelace", receipt=upload(PNG, "receipt.png")))
    second = client.get(evidence_url(dispute))

    assert first.context["form"].initial == prefill
    assert first.context["prefilled"] is True
    assert second.context["prefilled"] is False
    assert second.context["form"].initial["customer_name"] == "A. Lovelace"
    dispute.refresh_from_db()
    assert second.context["files_sent"] == [("Receipt", dispute.evidence["receipt"])]


@pytest.mark.django_db
def test_files_go_to_stripe_and_the_evidence_names_them_by_id(sandbox, finance):
    dispute = open_dispute(sandbox)
    first = dispute_evidence_save(
        dispute=dispute, evidence={"customer_name": "Ada"}, submit=False, by=finance,
        files={"receipt": EvidenceFile("receipt.pdf", PDF),
               "customer_communication": EvidenceFile("mail.png", PNG)},
    )
    second = dispute_evidence_save(dispute=dispute, evidence={"customer_name": ""},
                                   files={}, submit=False, by=finance)

    receipt = gateway.client().v1.files.retrieve(first.evidence["receipt"])
    assert (receipt.purpose, receipt.type, receipt.size) == ("dispute_evidence", "pdf", len(PDF))
    assert second.evidence == {"receipt": first.evidence["receipt"],
                               "customer_communication": first.evidence["customer_communication"]}
    at_stripe = gateway.client().v1.disputes.retrieve(dispute.stripe_id).evidence
    assert (at_stripe.receipt, at_stripe.customer_name) == (receipt.id, None)  # "" cleared it
    saves = dispute.payment.events.filter(kind=Kind.DISPUTE_EVIDENCE_SAVED)
    assert [e.reference for e in saves] == [f"{dispute.stripe_id}:draft-1",
                                           f"{dispute.stripe_id}:draft-2"]


@pytest.mark.django_db
def test_saving_an_earlier_draft_again_is_sent_again(sandbox, finance):
    dispute = open_dispute(sandbox)

    for text in ("first", "second", "first"):
        dispute_evidence_save(dispute=dispute, evidence={"uncategorized_text": text}, files={},
                              submit=False, by=finance)

    assert gateway.client().v1.disputes.retrieve(
        dispute.stripe_id).evidence.uncategorized_text == "first"


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("fields", "field", "error"),
    [
        ({"uncategorized_text": "x" * 20_001}, "uncategorized_text",
         "Stripe takes at most 20000 characters here (this has 20001)."),
        ({"product_description": "x" * 20_001}, "product_description",
         "Stripe takes at most 20000 characters here (this has 20001)."),
        ({"customer_name": "x" * 5_001}, "customer_name",
         "Stripe takes at most 5000 characters here (this has 5001)."),
        ({"customer_email_address": "not an e-mail"}, "customer_email_address",
         "Enter a valid email address."),
        ({"receipt": "big.png"}, "receipt", FILE_TOO_LARGE.format(name="big.png")),
        ({"receipt": "notes.pdf"}, "receipt", FILE_WRONG_TYPE.format(name="notes.pdf")),
    ],
)
def test_bad_input_is_a_form_error_and_nothing_is_sent(sandbox, finance, fields, field, error):
    dispute = open_dispute(sandbox)
    files = {"big.png": PNG + b"\x00" * (5 * 1024 * 1024), "notes.pdf": b"just some text"}
    fields = {k: upload(files[v], v) if v in files else v for k, v in fields.items()}

    response = client_for(finance).post(
        evidence_url(dispute), {**form_data(**fields), "_submit": "Submit"})

    assert response.status_code == 200
    assert response.context["form"].errors[field] == [error]
    dispute.refresh_from_db()
    assert (dispute.evidence, dispute.evidence_saved_at) == ({}, None)
    assert ledger(dispute.payment) == [Kind.DISPUTE_OPENED]
    at_stripe = gateway.client().v1.disputes.retrieve(dispute.stripe_id)
    assert (at_stripe.status, at_stripe.evidence_details.has_evidence) == ("needs_response",
                                                                           False)
    assert not gateway.client().v1.files.list().data


@pytest.mark.django_db
def test_evidence_after_the_due_date_is_refused_before_anything_is_sent(sandbox, finance):
    dispute = open_dispute(sandbox)

    with pytest.raises(PaymentError) as refused:
        dispute_evidence_save(
            dispute=dispute, evidence={"uncategorized_text": "late"}, submit=True, by=finance,
            files={"receipt": EvidenceFile("r.pdf", PDF)},
            now=dispute.evidence_due_by + timedelta(minutes=1),
        )

    assert str(refused.value) == DISPUTE_PAST_DUE.format(
        due=f"{dispute.evidence_due_by.astimezone(UTC):%Y-%m-%d %H:%M}")
    assert not gateway.client().v1.files.list().data
    assert gateway.dispute_retrieve(dispute.stripe_id).submission_count == 0


@pytest.mark.django_db
def test_a_dispute_the_bank_takes_no_answer_to_is_refused(sandbox, finance):
    dispute = open_dispute(sandbox)
    Dispute.objects.filter(pk=dispute.pk).update(evidence_due_by=None)  # Stripe's due_by: 0

    with pytest.raises(PaymentError, match=re.escape(DISPUTE_NO_RESPONSE)):
        dispute_evidence_save(dispute=dispute, evidence={"uncategorized_text": "x"}, files={},
                              submit=False, by=finance)


@pytest.mark.django_db
def test_a_dispute_closed_at_stripe_unbeknown_is_mirrored_when_stripe_refuses(sandbox, finance):
    dispute = open_dispute(sandbox)
    gateway.client().v1.disputes.close(dispute.stripe_id)  # in Stripe's dashboard, say

    response = client_for(finance).post(
        evidence_url(dispute), {**form_data(), "_submit": "Submit"}, follow=True)

    assert DISPUTE_CLOSED.format(status="lost") in messages_of(response)
    assert response.context["form"] is None
    dispute.refresh_from_db()
    assert (dispute.status, dispute.evidence_submitted_at) == ("lost", None)
    assert ledger(dispute.payment) == [Kind.DISPUTE_OPENED, Kind.DISPUTE_LOST]


@pytest.mark.django_db
def test_stripe_unreachable_keeps_the_form_and_saves_nothing(sandbox, finance, settings):
    dispute = open_dispute(sandbox)
    sandbox.inject_fault("500", count=1 + settings.STRIPE_MAX_NETWORK_RETRIES,
                         path=f"/v1/disputes/{dispute.stripe_id}")

    response = client_for(finance).post(
        evidence_url(dispute), {**form_data(customer_name="Ada L."), "_submit": "Submit"})

    assert messages_of(response) == [
        EVIDENCE_NOT_SENT.format(detail=gateway.GatewayUnavailable.message)]
    assert response.context["form"]["customer_name"].value() == "Ada L."
    dispute.refresh_from_db()
    assert (dispute.evidence_saved_at, dispute.evidence_submitted_at) == (None, None)
    assert ledger(dispute.payment) == [Kind.DISPUTE_OPENED]
    assert gateway.dispute_retrieve(dispute.stripe_id).submission_count == 0


@pytest.mark.django_db
def test_a_second_submit_is_refused_and_reaches_stripe_once(sandbox, finance):
    dispute = open_dispute(sandbox)
    client = client_for(finance)
    data = {**form_data(), "_submit": "Submit"}

    client.post(evidence_url(dispute), data)
    repeated = client.post(evidence_url(dispute), data, follow=True)
    with pytest.raises(PaymentError, match=re.escape(DISPUTE_EVIDENCE_SUBMITTED)):
        dispute_evidence_save(dispute=dispute, evidence={}, files={}, submit=True, by=finance)

    assert DISPUTE_EVIDENCE_SUBMITTED in messages_of(repeated)
    assert gateway.dispute_retrieve(dispute.stripe_id).submission_count == 1
    assert ledger(dispute.payment) == [Kind.DISPUTE_OPENED, Kind.DISPUTE_EVIDENCE_SUBMITTED]


# --- Outcomes by webhook --------------------------------------------------------------------------


@pytest.mark.django_db
def test_lost_outcome_arrives_by_webhook_and_shows_on_the_payment(sandbox, finance):
    dispute = open_dispute(sandbox)
    dispute_evidence_save(dispute=dispute, evidence={"uncategorized_text": "losing_evidence"},
                          files={}, submit=True, by=finance)
    sandbox.advance()

    apply_stripe_events()

    payment = Payment.objects.get(pk=dispute.payment_id)
    assert payment.dispute_status == "lost"
    assert ledger(payment) == [Kind.DISPUTE_OPENED, Kind.DISPUTE_EVIDENCE_SUBMITTED,
                               Kind.DISPUTE_LOST]


@pytest.mark.django_db
def test_an_inquiry_closed_without_chargeback_is_recorded_as_closed(sandbox):
    chargeback = gateway.dispute_retrieve(open_dispute(sandbox).stripe_id)
    payment = Payment.objects.get(stripe_id=chargeback.payment_intent)
    # The sandbox opens chargebacks only: an inquiry as Stripe would send it, on the same payment.
    inquiry = gateway.dispute_from(
        {**chargeback.raw, "id": "dp_inquiry", "status": "warning_needs_response"})

    dispute_sync(dispute=inquiry, source="webhook")
    dispute_sync(dispute=gateway.dispute_from({**inquiry.raw, "status": "warning_closed"}),
                 source="webhook")

    payment.refresh_from_db()
    assert payment.dispute_status == "warning_closed"  # the latest dispute's
    closed = payment.events.get(kind=Kind.DISPUTE_CLOSED)
    assert (closed.reference, closed.amount) == ("dp_inquiry", None)  # no money moved


# --- The list: due dates, the needs-response filter -----------------------------------------------


NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def dispute_row(status: str, due: datetime | None, *, submitted: bool = False) -> Dispute:
    """A mirror row as the webhook would leave it (the list reads only rows)."""
    order = make_order(unit_amount=1500)
    payment = Payment.objects.create(order=order, customer=order.customer, amount=1500,
                                     currency="USD", idempotency_key=f"payment:{order.pk}:1",
                                     stripe_id=f"pi_{order.number}", status="succeeded",
                                     amount_received=1500)
    return Dispute.objects.create(
        payment=payment, stripe_id=f"dp_{order.number}", amount=1500, currency="USD",
        status=status, reason="fraudulent", evidence_due_by=due,
        evidence_submitted_at=NOW - timedelta(days=1) if submitted else None,
    )


@pytest.mark.django_db
def test_due_state_with_a_fixed_clock():
    rows = {
        "overdue": dispute_row("needs_response", NOW - timedelta(minutes=1)),
        "due_soon": dispute_row("warning_needs_response", NOW + timedelta(days=3)),
        "later": dispute_row("needs_response", NOW + timedelta(days=3, seconds=1)),
        "submitted": dispute_row("needs_response", NOW - timedelta(days=1), submitted=True),
        "under_review": dispute_row("under_review", NOW - timedelta(days=1)),
        "no_due_date": dispute_row("needs_response", None),
    }

    states = {name: evidence_due_state(row, now=NOW) for name, row in rows.items()}

    assert states == {"overdue": "overdue", "due_soon": "due_soon", "later": "",
                      "submitted": "", "under_review": "", "no_due_date": ""}


@pytest.mark.django_db
def test_list_highlights_overdue_and_due_soon_and_pins_its_queries(
    finance, django_assert_max_num_queries
):
    overdue = dispute_row("needs_response", NOW - timedelta(hours=1))
    soon = dispute_row("needs_response", NOW + timedelta(days=2))
    later = dispute_row("needs_response", NOW + timedelta(days=10))
    client = client_for(finance)

    with time_machine.travel(NOW, tick=False), django_assert_max_num_queries(9):
        html = client.get("/admin/payments/dispute/").content.decode()

    assert html.count("dispute-due--overdue") == 1 and html.count("dispute-due--due_soon") == 1
    row_of = {d: html[html.index(d.stripe_id):].split("</tr>")[0]
              for d in (overdue, soon, later)}
    assert "Overdue:" in row_of[overdue] and "Due within 3 days:" in row_of[soon]
    assert "dispute-due" not in row_of[later]
    assert "$15.00" in row_of[later]
    assert f'href="/admin/payments/payment/{later.payment_id}/change/"' in row_of[later]


@pytest.mark.django_db
def test_needs_response_filter_lists_disputes_awaiting_an_answer(finance):
    due = NOW + timedelta(days=5)
    expected = {dispute_row("needs_response", due), dispute_row("warning_needs_response", due)}
    for status in ("under_review", "warning_under_review", "won", "lost", "warning_closed"):
        dispute_row(status, due)
    dispute_row("needs_response", due, submitted=True)

    listing = client_for(finance).get("/admin/payments/dispute/?response=needed")

    assert set(listing.context["cl"].result_list) == expected
