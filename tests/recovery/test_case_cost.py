"""What one due case's retry costs in queries, pinned: a retry is what beat runs thousands of
times (bench/recovery), so a query added to its path (the attempt, the payment and its ledger,
the outcome's receivers, the receipt's number, the dunning message) should fail a test, not
only slow the benchmark down. The counts are inside the test's transaction, where every atomic
block is a savepoint (two statements); docs/benchmarks.md lists a case's queries as they run."""

import pytest
from django.utils import timezone

from payments.models import PaymentEvent
from receipts.models import Receipt
from recovery import services
from recovery.models import DunningMessage, RecoveryAttempt, RecoveryCase
from tests.support.due_cases import FAILING_CARD, GOOD_CARD, due_cases_create

pytestmark = pytest.mark.django_db

# The attempt's transaction: order and case locked, the card locked and its retries read for
# Visa's cap, the last attempt, the new one, the case, the payment and its `requested` row (10).
# The outcome's: order and payment locked, the ledger, the payment, the order's status (6 for a
# success, 5 for a failure: its ledger row has no reference to look for first), then the
# receivers: recovery's and the receipt's (4 + 4), or recovery's next slot and its dunning
# message (7), and the case's `confirm` cleared if nothing replaced it (1: an answer that is not
# final waits for its webhook). Plus the 2 transactions' savepoints here (2 statements each);
# and this success takes the year's first receipt number, which makes the series' row (2 more,
# once a year).
SUCCEEDED_QUERIES = 10 + 6 + 8 + 4 + 2
FAILED_AGAIN_QUERIES = 10 + 5 + 7 + 1 + 4


def due_case(*, customer, plan, sandbox, card: str) -> RecoveryCase:
    return due_cases_create(user=customer, plan=plan, test_cards=[card], sandbox_url=sandbox.url,
                            now=timezone.now())[0]


def test_a_retry_that_succeeds_is_pinned_in_queries(
    sandbox, customer, plan, django_assert_num_queries, django_capture_on_commit_callbacks
):
    case = due_case(customer=customer, plan=plan, sandbox=sandbox, card=GOOD_CARD)

    with django_capture_on_commit_callbacks() as callbacks, \
            django_assert_num_queries(SUCCEEDED_QUERIES):
        assert services.case_run(case_id=case.pk, now=timezone.now()) == "retried"

    case.refresh_from_db()
    assert case.status == RecoveryCase.Status.RECOVERED
    assert case.attempts.get(number=2).outcome == RecoveryAttempt.Outcome.SUCCEEDED
    payment = case.order.payments.get()
    assert list(payment.events.values_list("kind", flat=True).order_by("id")) == [
        PaymentEvent.Kind.REQUESTED, PaymentEvent.Kind.SUCCEEDED]
    assert Receipt.objects.get(payment=payment).sequence == 1
    assert len(callbacks) == 1  # the receipt's delivery


def test_a_retry_that_fails_again_is_pinned_in_queries(
    sandbox, customer, plan, django_assert_num_queries, django_capture_on_commit_callbacks
):
    case = due_case(customer=customer, plan=plan, sandbox=sandbox, card=FAILING_CARD)

    with django_capture_on_commit_callbacks() as callbacks, \
            django_assert_num_queries(FAILED_AGAIN_QUERIES):
        assert services.case_run(case_id=case.pk, now=timezone.now()) == "retried"

    case.refresh_from_db()
    assert (case.status, case.next_action) == (RecoveryCase.Status.OPEN, "retry")
    assert case.attempts.get(number=2).outcome == RecoveryAttempt.Outcome.FAILED
    assert DunningMessage.objects.filter(case=case, attempt_number=2).count() == 1
    assert len(callbacks) == 1  # the dunning e-mail's delivery
