"""Beat's batch (services.cases_run): plain retries start together in one transaction whose
queries do not grow with the batch, network caps count the retries the batch itself makes, and
any other case is left to case_run."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from recovery import services, tasks
from recovery.models import DunningMessage, RecoveryAttempt, RecoveryCase
from tests.support.due_cases import FAILING_CARD, GOOD_CARD, due_cases_create

pytestmark = pytest.mark.django_db


def start_queries(*, customer, plan, sandbox, cases: int) -> int:
    """Queries of the batch's first transaction (up to the first call to the sandbox)."""
    made = due_cases_create(user=customer, plan=plan, test_cards=[GOOD_CARD] * cases,
                            sandbox_url=sandbox.url, now=timezone.now())
    with CaptureQueriesContext(connection) as queries:
        started, alone = services._retries_start(case_ids=[c.pk for c in made],
                                                 now=timezone.now())
    assert (len(started), alone) == (cases, [])
    return len(queries)


def test_a_batch_starts_its_retries_in_the_same_queries_for_one_case_or_ten(
    sandbox, customer, plan
):
    # A savepoint (2), orders, cases, attempts, cards locked, their retries, attempts inserted,
    # cases updated, live payments, payments and their ledger rows inserted.
    assert start_queries(customer=customer, plan=plan, sandbox=sandbox, cases=1) == 12
    plan.slug = "again"
    assert start_queries(customer=customer, plan=plan, sandbox=sandbox, cases=10) == 12


def test_a_network_cap_counts_the_retries_of_the_batch_itself(sandbox, customer, plan):
    """Visa: 15 retries in 30 days per card. With 14 made, two due cases on the same card in
    one batch: one is retried, the other waits for the window, as case_run alone would."""
    now = timezone.now()
    first, second, past = due_cases_create(user=customer, plan=plan, test_cards=[GOOD_CARD] * 3,
                                           sandbox_url=sandbox.url, now=now)
    card = first.subscription.payment_method
    second.subscription.payment_method = card
    second.subscription.save(update_fields=["payment_method"])
    RecoveryCase.objects.filter(pk=past.pk).update(status=RecoveryCase.Status.LOST,
                                                   next_action="", next_action_at=None)
    RecoveryAttempt.objects.bulk_create([
        RecoveryAttempt(case=past, number=n, trigger="schedule", idempotency_key=f"past:{n}",
                        payment_method=card, card_brand="visa",
                        card_fingerprint=card.fingerprint,
                        attempted_at=now - timedelta(days=20, hours=n))
        for n in range(2, 16)
    ])

    assert services.cases_run(case_ids=[first.pk, second.pk], now=now) == 2

    retried = RecoveryAttempt.objects.filter(case__in=[first, second], number=2)
    assert retried.count() == 1
    waiting = RecoveryCase.objects.get(pk=({first.pk, second.pk}
                                           - {retried.get().case_id}).pop())
    assert waiting.next_action == RecoveryCase.NextAction.RETRY
    assert waiting.next_action_at > now + timedelta(days=9)  # the oldest leaves the window


def test_one_retry_that_breaks_does_not_leave_the_batchs_others_uncharged(
    sandbox, customer, plan, monkeypatch
):
    """The batch's attempts are committed before any charge: a bug in one case's charge is
    raised after the others are charged, not instead of charging them."""
    cases = due_cases_create(user=customer, plan=plan, test_cards=[GOOD_CARD] * 3,
                             sandbox_url=sandbox.url, now=timezone.now())
    confirm = services.payment_off_session_confirm
    calls = []

    def breaks_first(**kwargs):
        calls.append(kwargs["payment"].order_id)
        if len(calls) == 1:
            raise RuntimeError("a bug in one case")
        return confirm(**kwargs)

    monkeypatch.setattr(services, "payment_off_session_confirm", breaks_first)

    with pytest.raises(RuntimeError, match="a bug in one case"):
        services.cases_run(case_ids=[c.pk for c in cases], now=timezone.now())

    assert len(calls) == 3
    statuses = sorted(RecoveryCase.objects.filter(pk__in=[c.pk for c in cases])
                      .values_list("status", flat=True))
    assert statuses == ["open", "recovered", "recovered"]


@pytest.mark.django_db(transaction=True)
def test_a_batchs_dunning_emails_go_to_one_task_and_a_lone_cases_to_its_own(
    sandbox, customer, plan, monkeypatch
):
    """Committed for real (a transactional test): on-commit callbacks run as in a worker."""
    sent_alone, sent_batched = [], []
    monkeypatch.setattr(tasks.dunning_deliver, "delay", sent_alone.append)
    monkeypatch.setattr(tasks.dunning_deliver_many, "delay", sent_batched.append)
    cases = due_cases_create(user=customer, plan=plan,
                             test_cards=[FAILING_CARD, GOOD_CARD, FAILING_CARD, FAILING_CARD],
                             sandbox_url=sandbox.url, now=timezone.now())

    services.cases_run(case_ids=[c.pk for c in cases[:3]], now=timezone.now())
    services.case_run(case_id=cases[3].pk, now=timezone.now())

    batch_messages = set(DunningMessage.objects.filter(case__in=[cases[0], cases[2]])
                         .values_list("pk", flat=True))
    assert [set(ids) for ids in sent_batched] == [batch_messages]
    assert sent_alone == [DunningMessage.objects.get(case=cases[3]).pk]
