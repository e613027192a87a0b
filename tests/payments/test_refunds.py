"""Refunds asked for by staff (issue 9): the running total, four eyes, Stripe's refusals and
silences, failures after the fact, and many refunds at once. Real PostgreSQL, the sandbox over
real HTTP with the real SDK."""

import re
import threading
from datetime import timedelta

import pytest
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from orders.models import Order
from payments import gateway
from payments.models import Payment, PaymentEvent, Refund
from payments.services import (
    REFUND_DISPUTED,
    REFUND_NOT_SUCCEEDED,
    REFUND_OWN_REQUEST,
    PaymentError,
    payment_confirm,
    payment_start,
    refund_approve,
    refund_create,
    refund_reject,
    refund_sync,
    refunds_submit_unanswered,
)
from tests.conftest import HOLD, wait_for
from tests.factories import make_order

RETURN_URL = "http://testserver/checkout/return/"


def paid(amount: int = 10000, currency: str = "USD", card: str = "pm_card_visa") -> Payment:
    payment = payment_start(order=make_order(unit_amount=amount, currency=currency))
    return payment_confirm(payment=payment, payment_method=card, return_url=RETURN_URL)


def stripe_refunds(payment: Payment) -> list[gateway.RefundData]:
    return gateway.refund_list_for_intent(payment.stripe_id)


def kinds(payment: Payment) -> list[str]:
    return list(payment.events.values_list("kind", flat=True))


@pytest.fixture
def approvals(settings):
    settings.PAYDESK_REFUND_APPROVAL_THRESHOLDS = {"USD": 5000}


# --- One refund -----------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_partial_refund_reaches_stripe_and_the_payment_shows_it(sandbox, staff):
    payment = paid(10000)

    refund = refund_create(payment=payment, amount=2500, idempotency_key="t1", by=staff,
                           reason="requested_by_customer", note="Mug arrived chipped")

    payment.refresh_from_db()
    assert refund.status == Refund.Status.SUCCEEDED and refund.stripe_id
    assert (payment.amount_refunded, payment.amount_refund_reserved) == (2500, 0)
    assert payment.amount_refundable == 7500
    assert Order.objects.get(pk=payment.order_id).status == Order.Status.PARTIALLY_REFUNDED
    [at_stripe] = stripe_refunds(payment)
    assert (at_stripe.id, at_stripe.amount, at_stripe.reason) == (
        refund.stripe_id, 2500, "requested_by_customer")
    assert at_stripe.metadata["paydesk_refund_id"] == str(refund.pk)
    assert kinds(payment)[-2:] == ["refund_requested", "refund_succeeded"]
    requested = payment.events.get(kind="refund_requested")
    assert (requested.actor, requested.message, requested.amount) == (
        staff, "Mug arrived chipped", 2500)


@pytest.mark.django_db
def test_the_same_idempotency_key_refunds_once(sandbox, staff):
    payment = paid(10000)

    first = refund_create(payment=payment, amount=1000, idempotency_key="page-1", by=staff)
    again = refund_create(payment=payment, amount=1000, idempotency_key="page-1", by=staff)

    assert again.pk == first.pk
    assert len(stripe_refunds(payment)) == 1
    assert Payment.objects.get(pk=payment.pk).amount_refunded == 1000


@pytest.mark.django_db
def test_the_running_total_counts_refunds_already_asked_for(sandbox, staff, approvals):
    payment = paid(10000)
    refund_create(payment=payment, amount=6000, idempotency_key="big", by=staff)  # waits

    with pytest.raises(PaymentError, match=r"At most \$40\.00 can be refunded"):
        refund_create(payment=payment, amount=4001, idempotency_key="over", by=staff)

    refund_create(payment=payment, amount=4000, idempotency_key="rest", by=staff)
    with pytest.raises(PaymentError, match="Nothing is left to refund"):
        refund_create(payment=payment, amount=1, idempotency_key="more", by=staff)
    assert len(stripe_refunds(payment)) == 1  # the one under the threshold


@pytest.mark.django_db
@pytest.mark.parametrize("amount", [0, -5])
def test_an_amount_that_is_not_positive_is_refused(sandbox, staff, amount):
    payment = paid(10000)
    with pytest.raises(PaymentError, match="more than zero"):
        refund_create(payment=payment, amount=amount, idempotency_key="zero", by=staff)
    assert not Refund.objects.exists()


@pytest.mark.django_db
def test_a_payment_that_did_not_succeed_is_not_refunded(sandbox, staff):
    payment = payment_start(order=make_order())
    with pytest.raises(PaymentError, match=REFUND_NOT_SUCCEEDED):
        refund_create(payment=payment, amount=100, idempotency_key="nope", by=staff)


@pytest.mark.django_db
def test_an_unknown_reason_is_refused(sandbox, staff):
    payment = paid(10000)
    with pytest.raises(PaymentError, match="refund reasons"):
        refund_create(payment=payment, amount=100, idempotency_key="r", by=staff, reason="oops")


@pytest.mark.django_db
def test_the_refund_window_is_enforced_with_the_given_clock(sandbox, staff, settings):
    settings.PAYDESK_REFUND_WINDOW_DAYS = 90
    payment = paid(10000)
    later = payment.succeeded_at + timedelta(days=91)

    with pytest.raises(PaymentError, match="90-day refund window"):
        refund_create(payment=payment, amount=100, idempotency_key="late", by=staff, now=later)
    refund = refund_create(payment=payment, amount=100, idempotency_key="in-time", by=staff,
                           now=payment.succeeded_at + timedelta(days=89))
    assert refund.status == Refund.Status.SUCCEEDED


# --- Disputed charges -------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_payment_with_an_open_dispute_is_refused_before_stripe(sandbox, staff):
    payment = paid(10000)
    Payment.objects.filter(pk=payment.pk).update(dispute_status="needs_response")

    with pytest.raises(PaymentError, match=re.escape(REFUND_DISPUTED)):
        refund_create(payment=payment, amount=100, idempotency_key="d", by=staff)
    assert stripe_refunds(payment) == []


@pytest.mark.django_db
def test_stripe_refusing_a_disputed_charge_fails_the_refund_and_frees_its_amount(sandbox, staff):
    """The dispute is at Stripe but its webhook has not arrived: Stripe answers charge_disputed."""
    payment = paid(10000, card="pm_card_createDispute")
    sandbox.advance()  # Stripe opens the dispute

    refund = refund_create(payment=payment, amount=3000, idempotency_key="x", by=staff)

    payment.refresh_from_db()
    assert (refund.status, refund.failure_reason, refund.stripe_id) == (
        Refund.Status.FAILED, "charge_disputed", None)
    assert (payment.amount_refunded, payment.amount_refund_reserved) == (0, 0)
    failed = payment.events.get(kind="refund_failed")
    assert "charged back" in failed.message


# --- Four eyes ----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_above_the_threshold_a_refund_waits_and_another_member_of_staff_approves(
    sandbox, staff, make_user, approvals
):
    finance = make_user("fran", staff=True)
    payment = paid(10000)

    refund = refund_create(payment=payment, amount=6000, idempotency_key="big", by=staff)

    payment.refresh_from_db()
    assert refund.status == Refund.Status.AWAITING_APPROVAL and refund.stripe_id is None
    assert (payment.amount_refunded, payment.amount_refund_reserved) == (0, 6000)
    assert stripe_refunds(payment) == []

    with pytest.raises(PaymentError, match=REFUND_OWN_REQUEST):
        refund_approve(refund=refund, by=staff)
    approved = refund_approve(refund=refund, by=finance, note="Checked with the customer")

    payment.refresh_from_db()
    assert approved.status == Refund.Status.SUCCEEDED
    assert (approved.decided_by, approved.decision_note) == (finance, "Checked with the customer")
    assert (payment.amount_refunded, payment.amount_refund_reserved) == (6000, 0)
    assert len(stripe_refunds(payment)) == 1
    assert kinds(payment)[-3:] == ["refund_awaiting_approval", "refund_approved",
                                   "refund_succeeded"]
    assert payment.events.get(kind="refund_approved").actor == finance


@pytest.mark.django_db
def test_at_the_threshold_no_approval_is_needed(sandbox, staff, approvals):
    refund = refund_create(payment=paid(10000), amount=5000, idempotency_key="edge", by=staff)
    assert refund.status == Refund.Status.SUCCEEDED


@pytest.mark.django_db
def test_a_rejected_refund_never_reaches_stripe_and_frees_its_amount(
    sandbox, staff, make_user, approvals
):
    finance = make_user("fran", staff=True)
    payment = paid(10000)
    refund = refund_create(payment=payment, amount=9000, idempotency_key="big", by=staff)

    rejected = refund_reject(refund=refund, by=finance, note="Not our policy")

    payment.refresh_from_db()
    assert rejected.status == Refund.Status.REJECTED
    assert (payment.amount_refunded, payment.amount_refund_reserved) == (0, 0)
    assert stripe_refunds(payment) == []
    with pytest.raises(PaymentError, match="not awaiting approval: it is rejected"):
        refund_approve(refund=rejected, by=finance)
    assert payment.events.get(kind="refund_rejected").message == "Not our policy"


@pytest.mark.django_db
def test_the_requester_deciding_is_refused_by_the_database_too(sandbox, staff, approvals):
    refund = refund_create(payment=paid(10000), amount=9000, idempotency_key="big", by=staff)

    with pytest.raises(IntegrityError, match="refund_decided_by_another"), transaction.atomic():
        Refund.objects.filter(pk=refund.pk).update(decided_by=staff, decided_at=timezone.now())


@pytest.mark.django_db
def test_a_refund_in_stripes_dashboard_rejects_requests_that_no_longer_fit(
    sandbox, staff, approvals
):
    payment = paid(10000)
    waiting = refund_create(payment=payment, amount=8000, idempotency_key="big", by=staff)
    elsewhere = gateway.client().v1.refunds.create(
        params={"payment_intent": payment.stripe_id, "amount": 5000}
    )

    refund_sync(refund=gateway.refund_retrieve(elsewhere.id), source="webhook")

    payment.refresh_from_db()
    waiting.refresh_from_db()
    assert waiting.status == Refund.Status.REJECTED
    assert "refunded by other means" in waiting.decision_note
    assert (payment.amount_refunded, payment.amount_refund_reserved) == (5000, 0)


@pytest.mark.django_db
def test_asking_for_more_than_received_is_refused_by_the_database_too(sandbox, staff):
    payment = paid(10000)
    with pytest.raises(IntegrityError, match="payment_refunds_asked_within_received"), \
            transaction.atomic():
        Payment.objects.filter(pk=payment.pk).update(amount_refund_reserved=10001)


# --- Stripe's answers after the fact, and no answer ---------------------------------------------


@pytest.mark.django_db
def test_a_refund_that_fails_later_shows_failed_and_restores_the_refundable_amount(
    sandbox, staff
):
    payment = paid(10000, card="pm_card_refundFail")
    refund = refund_create(payment=payment, amount=4000, idempotency_key="rf", by=staff)
    assert Payment.objects.get(pk=payment.pk).amount_refundable == 6000

    sandbox.advance()  # Stripe fails the refund
    refund_sync(refund=gateway.refund_retrieve(refund.stripe_id), source="webhook")

    refund.refresh_from_db()
    payment.refresh_from_db()
    assert (refund.status, refund.failure_reason) == ("failed", "expired_or_canceled_card")
    assert (payment.amount_refunded, payment.amount_refundable) == (0, 10000)
    assert Order.objects.get(pk=payment.order_id).status == Order.Status.PAID
    given_back = payment.events.get(kind="refund_failed")
    assert given_back.amount == -4000


@pytest.fixture
def impatient(settings):
    """One attempt per call, given up after half a second without an answer."""
    settings.STRIPE_MAX_NETWORK_RETRIES = 0
    settings.STRIPE_READ_TIMEOUT = 0.5


@pytest.mark.django_db
def test_no_answer_from_stripe_leaves_it_pending_then_it_is_sent_again_with_its_key(
    sandbox, staff, impatient
):
    payment = paid(10000)
    sandbox.inject_fault("timeout", path="/v1/refunds", delay=HOLD)  # dropped unanswered

    refund = refund_create(payment=payment, amount=1500, idempotency_key="lost", by=staff)

    assert (refund.status, refund.stripe_id) == (Refund.Status.PENDING, None)
    assert Payment.objects.get(pk=payment.pk).amount_refund_reserved == 1500
    assert refunds_submit_unanswered(older_than=timedelta(minutes=1)) == 0  # not old yet

    later = timezone.now() + timedelta(minutes=2)
    assert refunds_submit_unanswered(older_than=timedelta(minutes=1), now=later) == 1

    refund.refresh_from_db()
    assert refund.status == Refund.Status.SUCCEEDED and refund.stripe_id
    assert len(stripe_refunds(payment)) == 1


@pytest.mark.django_db
def test_an_answer_lost_after_stripe_refunded_is_found_not_refunded_again(
    sandbox, staff, impatient
):
    """Stripe made the refund but the answer never came back (and its idempotency key may have
    expired since): reconcile finds it by its metadata among the intent's refunds."""
    payment = paid(10000)
    sandbox.inject_fault("slow", path="/v1/refunds", delay=HOLD)

    refund = refund_create(payment=payment, amount=1500, idempotency_key="slow", by=staff)
    assert (refund.status, refund.stripe_id) == (Refund.Status.PENDING, None)
    sandbox.release_held()  # Stripe finishes making it
    wait_for(lambda: len(stripe_refunds(payment)) == 1, what="Stripe to make the refund")
    sandbox.app.idempotency.clear()  # as if 24 h passed: Stripe forgot the key

    later = timezone.now() + timedelta(minutes=2)
    assert refunds_submit_unanswered(older_than=timedelta(minutes=1), now=later) == 1

    refund.refresh_from_db()
    assert refund.status == Refund.Status.SUCCEEDED
    assert [r.id for r in stripe_refunds(payment)] == [refund.stripe_id]


# --- Many at once -------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_ten_concurrent_partial_refunds_never_exceed_what_was_received(sandbox, staff):
    payment = paid(10000)
    outcomes: list[str] = []
    barrier = threading.Barrier(10)

    def ask(n: int) -> None:
        barrier.wait()
        try:
            refund = refund_create(payment=payment, amount=1500, idempotency_key=f"c{n}",
                                   by=staff)
            outcomes.append(refund.status)
        except PaymentError:
            outcomes.append("refused")
        finally:
            connection.close()

    threads = [threading.Thread(target=ask, args=(n,)) for n in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    payment.refresh_from_db()
    assert sorted(outcomes) == ["refused"] * 4 + ["succeeded"] * 6
    assert payment.amount_refunded == 9000 and payment.amount_refund_reserved == 0
    at_stripe = stripe_refunds(payment)
    assert len(at_stripe) == 6 and sum(r.amount for r in at_stripe) == 9000
    assert payment.events.filter(kind=PaymentEvent.Kind.REFUND_SUCCEEDED).count() == 6


# --- The ledger is append-only in PostgreSQL itself ------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("sql", [
    "UPDATE payments_paymentevent SET message = 'rewritten'",
    "DELETE FROM payments_paymentevent",
])
def test_the_database_refuses_to_change_or_delete_ledger_rows(sandbox, sql):
    paid(10000)
    with pytest.raises(Exception, match="append_only"), transaction.atomic(), \
            connection.cursor() as cursor:
        cursor.execute(sql)
