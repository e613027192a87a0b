"""Two real Celery workers (prefork, two processes each) drain 1,000 due recovery cases on
PostgreSQL and Redis, the sandbox serving the charges: every case is attempted exactly once in
its due slot, and every dunning e-mail goes out once."""

import email
import re
from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from recovery import dunning, tasks
from recovery.models import DunningMessage, Plan, RecoveryAttempt, RecoveryCase
from tests.conftest import start_celery_worker, wait_for
from tests.factories import PriceFactory
from tests.support.due_cases import FAILING_CARD, GOOD_CARD, OPENED_BEFORE, due_cases_create

CASES = 1000
PAY_LINK = re.compile(r"/subscriptions/pay/([^/\s\"]+)/")
RUN = re.compile(r"recoveries_run_due\[[^\]]+\] succeeded in [^:]+: (\d+)")


def _mail_messages(folder) -> list[email.message.Message]:
    """Every message Django's file backend wrote (one file may hold several, split by a line
    of dashes)."""
    messages = []
    for path in folder.iterdir():
        for chunk in path.read_text().split("-" * 79 + "\n"):
            if chunk.strip():
                messages.append(email.message_from_string(chunk))
    return messages


def _text_of(message: email.message.Message) -> str:
    return next(part.get_payload(decode=True).decode() for part in message.walk()
                if part.get_content_type() == "text/plain")


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_two_workers_attempt_each_due_case_once_and_email_once(
    sandbox, customer, tmp_path, django_db_blocker
):
    plan = Plan.objects.create(name="Coffee club", slug="coffee-club",
                               price=PriceFactory(currency="USD", unit_amount=1500))
    cards = [FAILING_CARD if n % 2 else GOOD_CARD for n in range(CASES)]
    now = timezone.now()
    cases = due_cases_create(user=customer, plan=plan, test_cards=cards,
                             sandbox_url=sandbox.url, now=now)
    failing = {case.pk for case, card in zip(cases, cards, strict=True) if card == FAILING_CARD}
    before = sandbox.requests()
    mail = tmp_path / "mail"
    # A recovery queue of their own: the session's worker (tests' celery_worker fixture) also
    # consumes the suite's recovery queue, and must not take a share here.
    queue = f"{settings.CELERY_RECOVERY_QUEUE}-two-workers"
    workers = [
        start_celery_worker(sandbox_server=sandbox, log_path=tmp_path / f"worker{n}.log",
                            pool="prefork", concurrency=2, queues=[queue],
                            extra_env={"EMAIL_URL": f"filemail:///{mail}",
                                       "CELERY_RECOVERY_QUEUE": queue})
        for n in (1, 2)
    ]
    try:
        # Beat's task, sent more often than beat would and more times than there are worker
        # processes: every run claims batches until nothing is due, all at the same time.
        for _ in range(6):
            tasks.recoveries_run_due.apply_async(queue=queue)

        def drained() -> bool:
            return (not RecoveryAttempt.objects.filter(outcome="pending").exists()
                    and RecoveryAttempt.objects.count() == 2 * CASES
                    and not DunningMessage.objects.exclude(status="sent").exists()
                    and DunningMessage.objects.count() == len(failing))

        wait_for(drained, timeout=240, interval=0.5, what="1,000 cases drained")
        for _ in range(2):  # more runs once drained: nothing more is due
            tasks.recoveries_run_due.apply_async(queue=queue)
        wait_for(lambda: sum(len(RUN.findall(w.log())) for w in workers) == 8,
                 timeout=60, what="every run of the task ended")
    finally:
        for worker in workers:
            worker.stop()

    ran = [[int(n) for n in RUN.findall(worker.log())] for worker in workers]
    assert sum(map(sum, ran)) == CASES  # what the runs report: no case run twice
    assert all(sum(runs) > 0 for runs in ran)  # both workers took a share

    retries = RecoveryAttempt.objects.filter(number=2)
    assert retries.count() == CASES
    assert set(retries.values_list("case_id", flat=True)) == {case.pk for case in cases}
    assert not RecoveryAttempt.objects.filter(number__gt=2).exists()
    assert len(set(retries.values_list("idempotency_key", flat=True))) == CASES
    statuses = dict(RecoveryCase.objects.values_list("pk", "status"))
    assert {pk for pk, status in statuses.items() if status == "open"} == failing
    assert {pk for pk, status in statuses.items() if status == "recovered"} == (
        {case.pk for case in cases} - failing)
    # A case that failed again waits for its next slot (72 h after it opened).
    next_slots = set(RecoveryCase.objects.filter(status="open")
                     .values_list("next_action", "next_action_at"))
    assert next_slots == {("retry", now - OPENED_BEFORE + timedelta(hours=72))}

    after = sandbox.requests()
    charges = {path: after.get(path, 0) - before.get(path, 0) for path in after}
    assert charges.pop("/v1/payment_intents") == CASES  # one create-and-confirm per case
    assert not any(path.endswith("/confirm") and n for path, n in charges.items())

    messages = DunningMessage.objects.filter(kind=DunningMessage.Kind.FAILED, attempt_number=2)
    assert set(messages.values_list("case_id", flat=True)) == failing
    sent = _mail_messages(mail)
    assert len(sent) == len(failing)
    cases_mailed = [dunning.pay_link_case_id(PAY_LINK.search(_text_of(m)).group(1),
                                             max_age=timedelta(days=1), now=timezone.now())
                    for m in sent]
    assert sorted(cases_mailed) == sorted(failing)  # signed links: one e-mail per case
