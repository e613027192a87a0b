"""Refunds and disputes made at Stripe are mirrored from their webhooks, once, with the ledger
summing to the payment's totals."""

import pytest
from django.db.models import Sum

from orders.models import Order
from payments import gateway
from payments.models import Dispute, Payment, PaymentEvent, Refund, WebhookEvent
from payments.services import payment_confirm, payment_start
from payments.webhooks.processing import webhook_event_process
from tests.factories import make_order

pytestmark = pytest.mark.django_db
RETURN_URL = "http://testserver/checkout/return/"


def paid_payment(card: str = "pm_card_visa", amount: int = 4200) -> Payment:
    payment = payment_start(order=make_order(unit_amount=amount))
    return payment_confirm(payment=payment, payment_method=card, return_url=RETURN_URL)


def deliver(event_id: str, event_type: str, object_id: str) -> WebhookEvent:
    """Stores an event as the webhook view would and processes it (processing re-reads the
    object from Stripe, so the payload needs only the object's id)."""
    event, _ = WebhookEvent.objects.get_or_create(
        stripe_id=event_id,
        defaults={
            "type": event_type,
            "payload": {"id": event_id, "type": event_type, "data": {"object": {"id": object_id}}},
        },
    )
    return webhook_event_process(event_id=event.pk)


def refund_at_stripe(payment: Payment, amount: int) -> str:
    refund = gateway.client().v1.refunds.create(
        params={"payment_intent": payment.stripe_id, "amount": amount}
    )
    return refund.id


def ledger_refunded(payment: Payment) -> int:
    kinds = [PaymentEvent.Kind.REFUND_SUCCEEDED, PaymentEvent.Kind.REFUND_FAILED]
    return payment.events.filter(kind__in=kinds).aggregate(t=Sum("amount"))["t"] or 0


def test_partial_then_full_refund_is_mirrored_once_each(sandbox):
    payment = paid_payment(amount=4200)
    first = refund_at_stripe(payment, 1000)

    assert deliver("evt_r1", "refund.created", first).status == WebhookEvent.Status.PROCESSED
    assert deliver("evt_r1_again", "charge.refund.updated", first).status == "processed"

    payment.refresh_from_db()
    assert payment.amount_refunded == 1000 == ledger_refunded(payment)
    assert payment.order.status == Order.Status.PARTIALLY_REFUNDED
    assert payment.events.filter(kind=PaymentEvent.Kind.REFUND_SUCCEEDED).count() == 1

    second = refund_at_stripe(payment, 3200)
    deliver("evt_r2", "refund.created", second)

    payment.refresh_from_db()
    assert payment.amount_refunded == 4200 == ledger_refunded(payment)
    assert Order.objects.get(pk=payment.order_id).status == Order.Status.REFUNDED
    assert set(Refund.objects.values_list("stripe_id", "status")) == {
        (first, "succeeded"), (second, "succeeded")
    }


def test_refund_that_fails_later_gives_the_amount_back(sandbox):
    payment = paid_payment(card="pm_card_refundFail")
    refund_id = refund_at_stripe(payment, 4200)
    deliver("evt_rf1", "refund.created", refund_id)
    payment.refresh_from_db()
    assert payment.amount_refunded == 4200

    sandbox.advance()  # the sandbox fails the refund, as Stripe does some time later
    deliver("evt_rf2", "refund.failed", refund_id)

    payment.refresh_from_db()
    refund = Refund.objects.get(stripe_id=refund_id)
    assert refund.status == Refund.Status.FAILED and refund.failure_reason
    assert payment.amount_refunded == 0 == ledger_refunded(payment)
    assert Order.objects.get(pk=payment.order_id).status == Order.Status.PAID


def test_charge_refunded_event_mirrors_the_charges_refunds(sandbox):
    payment = paid_payment()
    refund_id = refund_at_stripe(payment, 500)

    deliver("evt_ch_refunded", "charge.refunded", payment.stripe_charge_id)

    assert Refund.objects.get(stripe_id=refund_id).amount == 500
    assert Payment.objects.get(pk=payment.pk).amount_refunded == 500


def test_dispute_is_mirrored_and_its_outcome_recorded(sandbox):
    payment = paid_payment(card="pm_card_createDispute")
    sandbox.advance()
    disputes = gateway.client().v1.disputes.list(params={"payment_intent": payment.stripe_id})
    dispute_id = disputes.data[0].id

    deliver("evt_dp1", "charge.dispute.created", dispute_id)
    deliver("evt_dp1_dup", "charge.dispute.created", dispute_id)

    dispute = Dispute.objects.get(stripe_id=dispute_id)
    assert (dispute.payment_id, dispute.amount, dispute.status) == (
        payment.pk, 4200, "needs_response"
    )
    assert payment.events.filter(kind=PaymentEvent.Kind.DISPUTE_OPENED).count() == 1

    gateway.client().v1.disputes.update(
        dispute_id,
        params={"evidence": {"uncategorized_text": "winning_evidence"}, "submit": True},
    )
    sandbox.advance()
    deliver("evt_dp2", "charge.dispute.closed", dispute_id)

    assert Dispute.objects.get(stripe_id=dispute_id).status == "won"
    assert payment.events.filter(kind=PaymentEvent.Kind.DISPUTE_WON).count() == 1
