"""A worker killed while it charges a retry: the attempt and its key were committed (the case
says CONFIRM until its lease ends), the answer was not. When the lease ends the case is due
again and the same attempt is charged with the same key: Stripe answers a charge it made with
that charge, and makes one it did not. One attempt, one PaymentIntent, whatever the crash."""

from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from payments import gateway
from payments.models import Payment
from recovery import services
from recovery.models import RecoveryAttempt, RecoveryCase
from tests.support.due_cases import GOOD_CARD, due_cases_create

pytestmark = pytest.mark.django_db


class WorkerKilled(BaseException):
    """What a killed worker's process shows of itself: nothing catches it, nothing commits."""


def intents_at_stripe() -> list[str]:
    return [intent.id for intent in
            gateway.client().v1.payment_intents.list(params={"limit": 100}).data]


def run_again_after_the_lease(case_ids: list[int], *, now) -> list[int]:
    later = now + services.LEASE + timedelta(seconds=1)
    claimed = services.cases_claim_due(now=later)
    services.cases_run(case_ids=claimed, now=later)
    return claimed


@pytest.mark.parametrize("killed", ["before Stripe is called", "after Stripe answered"])
def test_a_retry_whose_worker_was_killed_is_charged_once_when_its_lease_ends(
    sandbox, customer, plan, monkeypatch, killed
):
    now = timezone.now()
    cases = due_cases_create(user=customer, plan=plan, test_cards=[GOOD_CARD] * 2,
                             sandbox_url=sandbox.url, now=now)
    ids = [case.pk for case in cases]
    confirm = services.payment_off_session_confirm

    def killed_worker(**kwargs):
        if killed == "after Stripe answered":
            with transaction.atomic():  # what the worker would have committed: rolled back
                confirm(**kwargs)
                raise WorkerKilled
        raise WorkerKilled

    monkeypatch.setattr(services, "payment_off_session_confirm", killed_worker)
    with pytest.raises(WorkerKilled):
        services.cases_run(case_ids=services.cases_claim_due(now=now), now=now)
    monkeypatch.setattr(services, "payment_off_session_confirm", confirm)

    stranded = RecoveryCase.objects.get(pk=ids[0])
    assert stranded.next_action == RecoveryCase.NextAction.CONFIRM
    assert stranded.next_action_at == now + services.LEASE
    assert services.cases_claim_due(now=now + timedelta(minutes=1)) == []  # not before
    charged_before = intents_at_stripe()
    assert len(charged_before) == (1 if killed == "after Stripe answered" else 0)

    assert sorted(run_again_after_the_lease(ids, now=now)) == sorted(ids)

    assert set(RecoveryCase.objects.filter(pk__in=ids).values_list("status", flat=True)) == {
        RecoveryCase.Status.RECOVERED}
    retries = RecoveryAttempt.objects.filter(case__in=ids, number__gte=2)
    assert sorted(retries.values_list("number", "outcome")) == [(2, "succeeded")] * 2
    paid = list(Payment.objects.filter(order__recovery_case__in=ids)
                .values_list("stripe_id", "amount_received"))
    assert sorted(paid) == sorted((intent, 1500) for intent in intents_at_stripe())
    assert set(charged_before) <= {stripe_id for stripe_id, _ in paid}
    assert len(intents_at_stripe()) == 2


def test_a_retry_that_stripe_answered_processing_is_not_charged_again(
    sandbox, customer, plan, monkeypatch
):
    """An answer that is not final (processing) waits for its webhook: the case is not due."""
    now = timezone.now()
    (case,) = due_cases_create(user=customer, plan=plan, test_cards=[GOOD_CARD],
                               sandbox_url=sandbox.url, now=now)

    def processing(*, payment, **kwargs):
        Payment.objects.filter(pk=payment.pk).update(status=Payment.Status.PROCESSING)
        return payment

    monkeypatch.setattr(services, "payment_off_session_confirm", processing)
    services.cases_run(case_ids=services.cases_claim_due(now=now), now=now)

    case.refresh_from_db()
    assert (case.status, case.next_action, case.next_action_at) == (
        RecoveryCase.Status.OPEN, RecoveryCase.NextAction.NONE, None)
    assert services.cases_claim_due(now=now + timedelta(days=1)) == []
    assert case.attempts.get(number=2).outcome == RecoveryAttempt.Outcome.PENDING
