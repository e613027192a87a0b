"""bench/recovery: due recovery cases drained per second by 1 and by 2 Celery workers, against
the sandbox's own PaymentIntent create+confirm rate measured in the same run.

Starts, with Paydesk's production settings (DEBUG off) on a fresh PostgreSQL database
(paydesk_bench_recovery) and Redis (--redis-url, db 8, flushed): the Stripe sandbox as its own
process. Then:

1. **Sandbox rate.** N cards attached to one Stripe Customer, then N PaymentIntents created and
   confirmed off-session on them (`POST /v1/payment_intents` with `confirm=true`,
   `off_session=true`: the call a retry makes) straight at the sandbox with the SDK from
   --sdk-threads threads. Calls per second, from the first to the last answer.
2. **For 1, then 2 workers** (`celery worker --pool solo` each, their own processes, the
   recovery queue only; `--concurrency N`: a prefork pool of N processes each): N due cases
   made at once (tests/support/due_cases.py: bulk_create, one card each, --decline-share of
   them failing again), then beat's task `recovery.tasks.recoveries_run_due` sent twice per
   worker process; every run claims batches of 10
   with skip_locked until nothing is due. Timed from the first send until every case's retry
   has its outcome (recovered, or failed with its next slot planned) and every dunning e-mail
   the failures queued is sent (Django's file backend, in a temporary folder).
   Double attempts: retries beyond one per case in the database, and charges beyond one per
   case in the sandbox's request log (`/_sandbox/requests`). Both must be 0.

Reports cases/s per worker count and its ratio to the sandbox's rate.

Usage: .venv/bin/python bench/recovery/run.py [--cases 1000] [--workers 1,2] [--concurrency 1]
       [--decline-share 0.3] [--sdk-threads 4] [--redis-url redis://127.0.0.1:6379/8] [--json FILE]
Goal (issue 12): 2 workers at least 0.8 of the sandbox's rate, zero double attempts.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.common import (
    machine,
    machine_cpu,
    process_cpu,
    results_write,
    sandbox_bench,
    start,
    stop,
)

DATABASE = "paydesk_bench_recovery"
SANDBOX_KEY = "sk_test_sandbox"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=1000)
    parser.add_argument("--workers", default="1,2", help="worker counts to measure, in order")
    parser.add_argument("--decline-share", type=float, default=0.3,
                        help="share of cases whose retry declines again (a dunning e-mail)")
    parser.add_argument("--concurrency", type=int, default=1,
                        help="processes per worker: 1 is the solo pool, more a prefork pool")
    parser.add_argument("--sdk-threads", type=int, default=4,
                        help="threads calling the sandbox directly for its own rate")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/8")
    parser.add_argument("--timeout", type=float, default=600.0)
    parser.add_argument("--json", type=Path)
    return parser.parse_args()


def sandbox_requests(url: str) -> dict[str, int]:
    with urllib.request.urlopen(f"{url}/_sandbox/requests", timeout=10) as answer:
        return json.load(answer)["requests"]


def sandbox_rate(*, sandbox_url: str, cases: int, threads: int) -> dict:
    """N create+confirm calls on attached cards straight at the sandbox: calls per second."""
    import stripe

    from tests.support.due_cases import GOOD_CARD, cards_attach

    sdk = stripe.StripeClient(SANDBOX_KEY, base_addresses={"api": sandbox_url},
                              max_network_retries=0)
    customer = sdk.v1.customers.create(params={"email": "rate@example.com"})
    cards = cards_attach(sandbox_url=sandbox_url, customer=customer.id,
                         test_cards=[GOOD_CARD] * cases)

    def charge(n: int) -> str:
        intent = sdk.v1.payment_intents.create(
            params={"amount": 1500, "currency": "usd", "customer": customer.id,
                    "payment_method": cards[n]["id"], "payment_method_types": ["card"],
                    "confirm": True, "off_session": True},
            options={"idempotency_key": f"rate:{n}"})
        return intent.status

    started = time.monotonic()
    with ThreadPoolExecutor(threads) as pool:
        statuses = list(pool.map(charge, range(cases)))
    elapsed = time.monotonic() - started
    return {"calls": cases, "threads": threads, "seconds": round(elapsed, 2),
            "calls_per_second": round(cases / elapsed, 1),
            "succeeded": statuses.count("succeeded")}


def drain(*, workers: int, args, env: dict[str, str], work: Path, sandbox_url: str,
          sandbox_pid: int, round_number: int) -> dict:
    """N due cases drained by `workers` solo workers; cases/s and double attempts."""
    from django.contrib.auth import get_user_model
    from django.db.models import Count
    from django.utils import timezone

    from recovery import tasks
    from recovery.models import DunningMessage, Plan, RecoveryAttempt, RecoveryCase
    from tests.support.due_cases import FAILING_CARD, GOOD_CARD, due_cases_create

    user = get_user_model().objects.create_user(
        f"bench{round_number}", email=f"bench{round_number}@example.com")
    plan = Plan.objects.get(slug="bench")
    every = round(1 / args.decline_share) if args.decline_share else 0
    cards = [FAILING_CARD if every and n % every == 0 else GOOD_CARD
             for n in range(args.cases)]
    cases = due_cases_create(user=user, plan=plan, test_cards=cards, sandbox_url=sandbox_url,
                             now=timezone.now())
    ids = [case.pk for case in cases]
    failing = cards.count(FAILING_CARD)
    before = sandbox_requests(sandbox_url)

    logs = [work / f"round{round_number}-worker{n}.log" for n in range(workers)]
    processes = [
        start([str(Path(sys.executable).parent / "celery"), "-A", "config", "worker",
               *(["--pool", "solo"] if args.concurrency == 1 else
                 ["--pool", "prefork", "--concurrency", str(args.concurrency)]),
               "--queues", env.get("CELERY_RECOVERY_QUEUE", "recovery"),
               "--without-gossip", "--without-mingle", "--without-heartbeat",
               "--loglevel", "INFO", "--hostname", f"bench{round_number}-{n}@%h"],
              env=env, log=log)
        for n, log in enumerate(logs)
    ]
    try:
        deadline = time.monotonic() + 60
        while not all(" ready." in log.read_text(errors="replace") for log in logs):
            if any(p.poll() is not None for p in processes) or time.monotonic() > deadline:
                raise SystemExit("a worker did not start:\n"
                                 + logs[0].read_text(errors="replace")[-3000:])
            time.sleep(0.2)
        cpu_before = [process_cpu(p.pid) for p in processes], process_cpu(sandbox_pid)
        machine_before = machine_cpu()
        started = time.monotonic()
        for _ in range(2 * workers * args.concurrency):
            tasks.recoveries_run_due.delay()
        deadline = time.monotonic() + args.timeout
        retries = RecoveryAttempt.objects.filter(case_id__in=ids, number=2)
        while True:
            done = (retries.exclude(outcome="pending").count() == args.cases
                    and DunningMessage.objects.filter(case_id__in=ids, status="sent").count()
                    == failing)
            if done:
                break
            if time.monotonic() > deadline:
                raise SystemExit(f"not drained in {args.timeout:.0f} s:\n"
                                 + logs[0].read_text(errors="replace")[-3000:])
            time.sleep(0.05)
        elapsed = time.monotonic() - started
        workers_cpu = sum(process_cpu(p.pid) for p in processes) - sum(cpu_before[0])
        sandbox_cpu = process_cpu(sandbox_pid) - cpu_before[1]
        machine_after = machine_cpu()
    finally:
        for process in processes:
            stop(process)

    after = sandbox_requests(sandbox_url)
    charges = after.get("/v1/payment_intents", 0) - before.get("/v1/payment_intents", 0)
    confirms = sum(n - before.get(path, 0) for path, n in after.items()
                   if path.endswith("/confirm"))
    per_case = (RecoveryAttempt.objects.filter(case_id__in=ids, number__gte=2)
                .values("case_id").annotate(n=Count("id")))
    double_attempts = sum(row["n"] - 1 for row in per_case if row["n"] > 1)
    return {
        "workers": workers,
        "processes_per_worker": args.concurrency,
        "cases": args.cases,
        "seconds": round(elapsed, 2),
        "cases_per_second": round(args.cases / elapsed, 1),
        "recovered": RecoveryCase.objects.filter(pk__in=ids, status="recovered").count(),
        "failed_again": failing,
        "emails_sent": DunningMessage.objects.filter(case_id__in=ids, status="sent").count(),
        "double_attempts": double_attempts,
        "cases_retried": len(per_case),
        "charges_at_sandbox": charges + confirms,
        "double_charges_at_sandbox": charges + confirms - args.cases,
        # CPU spent during the drain, per case: the workers' own, the sandbox's, and the whole
        # machine's (PostgreSQL, Redis, this script, and whatever else runs on it meanwhile).
        "worker_cpu_ms_per_case": round(workers_cpu / args.cases * 1e3, 2),
        "sandbox_cpu_ms_per_case": round(sandbox_cpu / args.cases * 1e3, 2),
        "machine_cpu_ms_per_case": round((machine_after[0] - machine_before[0])
                                         / args.cases * 1e3, 2),
        "machine_busy_share": round((machine_after[0] - machine_before[0])
                                    / max(machine_after[1] - machine_before[1], 1e-9), 2),
    }


def main() -> None:
    args = parse_args()
    with sandbox_bench(database=DATABASE, redis_url=args.redis_url,
                       prefix="paydesk-bench-recovery-") as (env, work, sandbox_url, sandbox_pid):
        logging.getLogger("stripe").setLevel(logging.WARNING)  # not a line per SDK call
        from orders.models import Price, Product
        from recovery.models import Plan

        price = Price.objects.create(
            product=Product.objects.create(name="Bench club", slug="bench-club"),
            currency="USD", unit_amount=1500)
        Plan.objects.create(name="Bench club", slug="bench", price=price)

        rate = sandbox_rate(sandbox_url=sandbox_url, cases=args.cases,
                            threads=args.sdk_threads)
        rounds = [drain(workers=int(n), args=args, env=env, work=work,
                        sandbox_url=sandbox_url, sandbox_pid=sandbox_pid, round_number=i)
                  for i, n in enumerate(args.workers.split(","))]
    for result in rounds:
        result["ratio_to_sandbox"] = round(result["cases_per_second"]
                                           / rate["calls_per_second"], 2)
    result = {
        "sandbox": rate,
        "drains": rounds,
        "decline_share": args.decline_share,
        "machine": machine(),
        "logs": str(work),
    }
    print(json.dumps(result, indent=2))
    if args.json:
        results_write(args.json, result)


if __name__ == "__main__":
    main()
