"""Celery tasks of recovery, on the recovery queue (CELERY_RECOVERY_QUEUE): thin, take ids, safe
to run twice, delegate to services. Beat runs the two `*_run_due` tasks (rows made by the data
migration 0002, editable in the admin); each claims small batches with skip_locked until nothing
is due, so any number of workers share the work and never take the same row twice."""

from celery import shared_task

from config.celery import IDEMPOTENT_TASK
from recovery import clock, dunning, services

# One run works through at most this many batches, then leaves the rest to the next run (or to
# another worker running meanwhile): no task runs unbounded.
MAX_BATCHES = 100


@shared_task(**IDEMPOTENT_TASK)
def renewals_run_due() -> int:
    """Opens the next period of every subscription that is due and charges it; also charges
    renewals whose worker crashed (their lease ended). Returns how many were charged."""
    charged = 0
    for _ in range(MAX_BATCHES):
        now = clock.now()
        batch = services.renewals_open_due(now=now) + services.renewals_claim_uncharged(now=now)
        if not batch:
            break
        for renewal in batch:
            services.renewal_charge(renewal=renewal, now=now)
            charged += 1
    return charged


@shared_task(**IDEMPOTENT_TASK)
def recoveries_run_due() -> int:
    """Runs every due recovery action (a retry, or the end of a schedule), and sends dunning
    messages whose own task never ran. Returns how many cases were run."""
    ran = 0
    for _ in range(MAX_BATCHES):
        now = clock.now()
        ids = services.cases_claim_due(now=now)
        if not ids:
            break
        ran += services.cases_run(case_ids=ids, now=now)
    dunning.messages_deliver_pending(now=clock.now())
    return ran


@shared_task(**IDEMPOTENT_TASK)
def dunning_deliver(message_id: int) -> bool:
    """Sends one dunning message (at most once, whatever runs it twice)."""
    return dunning.message_deliver(message_id=message_id, now=clock.now())


@shared_task(**IDEMPOTENT_TASK)
def dunning_deliver_many(message_ids: list[int]) -> int:
    """Sends a batch's messages, each at most once; returns how many this run sent."""
    return sum(dunning.message_deliver(message_id=i, now=clock.now()) for i in message_ids)
