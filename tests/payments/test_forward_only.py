"""Refund and dispute mirrors only move forward (issue 7, finding 5), and refund_refresh /
dispute_refresh read Stripe under the payment's row lock."""

import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

import pytest
from django.db import connection
from django.db.models import Sum

from payments import gateway, services
from payments.models import Dispute, Payment, PaymentEvent, Refund
from payments.services import (
    dispute_refresh,
    dispute_sync,
    payment_confirm,
    payment_start,
    refund_refresh,
    refund_sync,
)
from tests.conftest import wait_for
from tests.factories import make_order

RETURN_URL = "http://testserver/checkout/return/"


def paid_payment(card: str = "pm_card_visa", amount: int = 4200) -> Payment:
    payment = payment_start(order=make_order(unit_amount=amount))
    return payment_confirm(payment=payment, payment_method=card, return_url=RETURN_URL)


def refund_at_stripe(payment: Payment, amount: int) -> str:
    return gateway.client().v1.refunds.create(
        params={"payment_intent": payment.stripe_id, "amount": amount}
    ).id


def ledger_refunded(payment: Payment) -> int:
    kinds = [PaymentEvent.Kind.REFUND_SUCCEEDED, PaymentEvent.Kind.REFUND_FAILED]
    return payment.events.filter(kind__in=kinds).aggregate(t=Sum("amount"))["t"] or 0


def dispute_of(payment: Payment, sandbox) -> str:
    sandbox.advance()  # the sandbox opens the dispute shortly after the payment, as Stripe does
    disputes = gateway.client().v1.disputes.list(params={"payment_intent": payment.stripe_id})
    return disputes.data[0].id


def dispute_ledger(payment: Payment) -> list[str]:
    return list(payment.events.filter(kind__startswith="dispute").values_list("kind", flat=True))


def submit_evidence(dispute_id: str, text: str) -> None:
    gateway.client().v1.disputes.update(
        dispute_id, params={"evidence": {"uncategorized_text": text}, "submit": True}
    )


@pytest.mark.django_db
def test_a_stale_pending_refund_read_does_not_undo_a_succeeded_refund(sandbox):
    payment = paid_payment()
    refund_id = refund_at_stripe(payment, 1000)
    settled = gateway.refund_retrieve(refund_id)
    # What a read taken before Stripe settled the refund says, applied after the fresh one.
    stale = replace(settled, status="pending")

    refund_sync(refund=settled, source="webhook")
    checked_first = Refund.objects.get(stripe_id=refund_id).stripe_checked_at
    events_before = payment.events.count()
    refund_sync(refund=stale, source="webhook")

    row = Refund.objects.get(stripe_id=refund_id)
    payment.refresh_from_db()
    assert row.status == Refund.Status.SUCCEEDED
    assert payment.amount_refunded == 1000 == ledger_refunded(payment)
    assert payment.events.count() == events_before
    assert row.stripe_checked_at > checked_first


@pytest.mark.django_db
def test_a_stale_under_review_dispute_read_does_not_overwrite_won(sandbox):
    payment = paid_payment(card="pm_card_createDispute")
    dispute_id = dispute_of(payment, sandbox)
    submit_evidence(dispute_id, "winning_evidence")
    stale = gateway.dispute_retrieve(dispute_id)
    sandbox.advance()  # the bank decides
    won = gateway.dispute_retrieve(dispute_id)
    assert (stale.status, won.status) == ("under_review", "won")

    dispute_sync(dispute=won, source="webhook")
    checked_first = Dispute.objects.get(stripe_id=dispute_id).stripe_checked_at
    dispute_sync(dispute=stale, source="webhook")

    row = Dispute.objects.get(stripe_id=dispute_id)
    assert row.status == "won"
    assert row.stripe_checked_at > checked_first
    assert dispute_ledger(payment) == [
        PaymentEvent.Kind.DISPUTE_OPENED, PaymentEvent.Kind.DISPUTE_WON
    ]


@pytest.mark.django_db
def test_an_inquiry_may_escalate_to_a_chargeback_but_never_back(sandbox):
    payment = paid_payment(card="pm_card_createDispute")
    chargeback = gateway.dispute_retrieve(dispute_of(payment, sandbox))
    inquiry = replace(chargeback, status="warning_under_review")  # what it was before escalating

    dispute_sync(dispute=inquiry, source="webhook")
    dispute_sync(dispute=chargeback, source="webhook")
    assert Dispute.objects.get(stripe_id=chargeback.id).status == "needs_response"

    dispute_sync(dispute=inquiry, source="webhook")
    assert Dispute.objects.get(stripe_id=chargeback.id).status == "needs_response"
    assert payment.events.filter(kind=PaymentEvent.Kind.DISPUTE_OPENED).count() == 1


@pytest.mark.django_db
def test_a_refund_that_fails_after_succeeding_gives_the_amount_back_once(sandbox):
    payment = paid_payment(card="pm_card_refundFail")
    refund_id = refund_at_stripe(payment, 4200)
    succeeded = gateway.refund_retrieve(refund_id)

    refund_refresh(stripe_id=refund_id, source="webhook")
    payment.refresh_from_db()
    assert payment.amount_refunded == 4200

    sandbox.advance()  # Stripe fails the refund some time later
    row = refund_refresh(stripe_id=refund_id, source="webhook")
    refund_sync(refund=succeeded, source="webhook")  # a stale read arriving last changes nothing

    payment.refresh_from_db()
    row.refresh_from_db()
    assert row.status == Refund.Status.FAILED and row.failure_reason == "expired_or_canceled_card"
    assert payment.amount_refunded == 0 == ledger_refunded(payment)
    failed = payment.events.get(kind=PaymentEvent.Kind.REFUND_FAILED)
    assert (failed.amount, failed.reference) == (-4200, refund_id)


@pytest.mark.django_db
def test_refund_refresh_finds_the_payment_from_the_row_the_intent_or_one_read(sandbox):
    payment = paid_payment()
    first, second, third = (refund_at_stripe(payment, amount) for amount in (100, 200, 300))

    by_read = refund_refresh(stripe_id=first, source="webhook")
    by_intent = refund_refresh(
        stripe_id=second, payment_intent_id=payment.stripe_id, source="webhook"
    )
    Refund.objects.filter(stripe_id=third).delete()
    refund_refresh(stripe_id=third, payment_intent_id=payment.stripe_id, source="webhook")
    by_row = refund_refresh(stripe_id=third, source="reconcile")

    assert {by_read.payment_id, by_intent.payment_id, by_row.payment_id} == {payment.pk}
    payment.refresh_from_db()
    assert payment.amount_refunded == 600 == ledger_refunded(payment)
    assert by_row.stripe_checked_at is not None


@pytest.mark.django_db
def test_refresh_of_an_object_paydesk_does_not_track_returns_none(sandbox):
    client = gateway.client()
    elsewhere = client.v1.payment_intents.create(
        params={"amount": 900, "currency": "usd", "payment_method": "pm_card_createDispute",
                "confirm": True, "return_url": RETURN_URL}
    )
    refund = client.v1.refunds.create(params={"payment_intent": elsewhere.id, "amount": 100})
    sandbox.advance()
    dispute = client.v1.disputes.list(params={"payment_intent": elsewhere.id}).data[0]

    assert refund_refresh(stripe_id=refund.id, source="webhook") is None
    assert refund_refresh(stripe_id=refund.id, payment_intent_id=elsewhere.id,
                          source="webhook") is None
    assert dispute_refresh(stripe_id=dispute.id, source="webhook") is None
    assert not Refund.objects.exists() and not Dispute.objects.exists()


@pytest.mark.django_db
def test_dispute_refresh_follows_the_dispute_to_its_outcome(sandbox):
    payment = paid_payment(card="pm_card_createDispute")
    dispute_id = dispute_of(payment, sandbox)

    opened = dispute_refresh(stripe_id=dispute_id, payment_intent_id=payment.stripe_id,
                             source="webhook")
    assert (opened.status, opened.payment_id, opened.amount) == ("needs_response", payment.pk, 4200)
    submit_evidence(dispute_id, "losing_evidence")
    sandbox.advance()
    closed = dispute_refresh(stripe_id=dispute_id, source="webhook")
    again = dispute_refresh(stripe_id=dispute_id, source="reconcile")

    assert closed.status == again.status == "lost"
    assert dispute_ledger(payment) == [
        PaymentEvent.Kind.DISPUTE_OPENED, PaymentEvent.Kind.DISPUTE_LOST
    ]


@pytest.mark.django_db(transaction=True)
def test_concurrent_refund_refreshes_read_stripe_one_at_a_time(sandbox, monkeypatch):
    """Each refresh reads Stripe while it holds the payment's lock: the second waits for the
    first to commit before it reads, so whichever applies last also read last."""
    if connection.vendor != "postgresql":
        pytest.fail("concurrency guarantees are proven on PostgreSQL: set DATABASE_URL")
    payment = paid_payment()
    refund_id = refund_at_stripe(payment, 1500)
    real_retrieve = gateway.refund_retrieve
    guard = threading.Lock()
    reading: list[str] = []
    overlaps: list[int] = []
    start = threading.Barrier(2)

    def another_session_waits_on_a_lock() -> bool:
        with connection.cursor() as cursor:
            # pg_stat_activity is a snapshot kept for the whole transaction unless cleared.
            cursor.execute("SELECT pg_stat_clear_snapshot()")
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                " AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
            )
            return cursor.fetchone()[0] > 0

    def observed_retrieve(stripe_id: str):
        with guard:
            reading.append(threading.current_thread().name)
            overlaps.append(len(reading))
            first = len(overlaps) == 1
        try:
            if first:
                # Hold this read open until the other refresh is seen blocked on the lock.
                wait_for(another_session_waits_on_a_lock, what="the second refresh to wait")
            return real_retrieve(stripe_id)
        finally:
            with guard:
                reading.remove(threading.current_thread().name)

    monkeypatch.setattr(services.gateway, "refund_retrieve", observed_retrieve)

    def refresh(_):
        start.wait()
        try:
            return refund_refresh(
                stripe_id=refund_id, payment_intent_id=payment.stripe_id, source="webhook"
            ).status
        finally:
            connection.close()

    with ThreadPoolExecutor(2) as pool:
        statuses = list(pool.map(refresh, range(2)))

    assert statuses == ["succeeded", "succeeded"]
    assert overlaps == [1, 1]
    payment.refresh_from_db()
    assert payment.amount_refunded == 1500 == ledger_refunded(payment)
    assert payment.events.filter(kind=PaymentEvent.Kind.REFUND_SUCCEEDED).count() == 1
