"""bench/recovery/profile_case.py: where one recovery case's retry spends its time, in-process.

The same setup as bench/recovery/run.py (production settings, a fresh PostgreSQL database of its
own, the sandbox as its own process, due cases from tests/support/due_cases.py, --decline-share
of them failing again), but no Celery worker: this process claims and runs the cases itself
(recovery.tasks.recoveries_run_due's loop), then delivers the dunning e-mails the failures
queued (what dunning_deliver runs), so cProfile sees every layer: the claim, case_run,
payments.services.payment_charge_off_session, the SDK and its HTTP, the signal receivers
(recovery, receipts), receipt numbering, dunning, Celery publishes on commit, logging.

Prints: per case, the process's CPU (ms) and wall time, queries and transactions (PostgreSQL's
xact_commit for the database: autocommit statements count as one each); every query of one
succeeded and one failed-again case; the profile's top functions (cumulative and own time).

Usage: .venv/bin/python bench/recovery/profile_case.py [--cases 300] [--decline-share 0.3]
       [--redis-url redis://127.0.0.1:6379/8] [--top 40] [--pstats FILE]
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.common import (
    process_cpu,
    sandbox_bench,
)

DATABASE = "paydesk_bench_recovery_profile"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=300)
    parser.add_argument("--decline-share", type=float, default=0.3)
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/8")
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--pstats", type=Path, help="also write the raw profile here")
    parser.add_argument("--no-cprofile", action="store_true",
                        help="every case without cProfile (for a sampling profiler outside)")
    return parser.parse_args()


def commits(connection) -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_force_next_flush()")
        cursor.execute("SELECT xact_commit FROM pg_stat_database "
                       "WHERE datname = current_database()")
        return cursor.fetchone()[0]


class QueryCounter:
    """Counts the queries run on a connection (CaptureQueriesContext keeps only the last 9,000)."""

    def __init__(self):
        self.count = 0

    def __call__(self, execute, sql, params, many, context):
        self.count += 1
        return execute(sql, params, many, context)


def one_case_queries(case_id: int, now) -> list[str]:
    """Every query of running one case (claimed already), with its dunning e-mail if any."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from recovery import dunning, services
    from recovery.models import DunningMessage

    with CaptureQueriesContext(connection) as run:
        services.case_run(case_id=case_id, now=now)
    with CaptureQueriesContext(connection) as deliver:
        for message_id in DunningMessage.objects.filter(
                case_id=case_id, status="pending").values_list("pk", flat=True):
            dunning.message_deliver(message_id=message_id, now=now)
    return ([q["sql"] for q in run.captured_queries]
            + ["-- dunning delivery"] + [q["sql"] for q in deliver.captured_queries])


def main() -> None:
    args = parse_args()
    with sandbox_bench(database=DATABASE, redis_url=args.redis_url,
                       prefix="paydesk-profile-recovery-") as (_, _, sandbox_url, sandbox_pid):
        profile(args, sandbox_url, sandbox_pid)


def profile(args, sandbox_url: str, sandbox_pid: int) -> None:
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.utils import timezone

    from orders.models import Price, Product
    from recovery import dunning, services
    from recovery.models import DunningMessage, Plan
    from tests.support.due_cases import FAILING_CARD, GOOD_CARD, due_cases_create

    price = Price.objects.create(
        product=Product.objects.create(name="Bench club", slug="bench-club"),
        currency="USD", unit_amount=1500)
    plan = Plan.objects.create(name="Bench club", slug="bench", price=price)
    user = get_user_model().objects.create_user("bench", email="bench@example.com")
    every = round(1 / args.decline_share) if args.decline_share else 0
    warm = 4  # two of each kind: imports, the SDK's session, Django's caches
    cards = ([GOOD_CARD, FAILING_CARD] * 2 + [GOOD_CARD, FAILING_CARD]
             + [FAILING_CARD if every and n % every == 0 else GOOD_CARD
                for n in range(args.cases)])
    now = timezone.now()
    cases = due_cases_create(user=user, plan=plan, test_cards=cards, sandbox_url=sandbox_url,
                             now=now)
    for case in cases[:warm]:
        services.case_run(case_id=case.pk, now=now)
    for message in DunningMessage.objects.filter(status="pending"):
        dunning.message_deliver(message_id=message.pk, now=now)
    shown = {
        "succeeded": one_case_queries(cases[warm].pk, now),
        "failed again": one_case_queries(cases[warm + 1].pk, now),
    }
    measured = len(cases) - warm - 2

    def drain(limit: int) -> tuple[int, int]:
        """Claims and runs `limit` cases as the beat task does, then sends their e-mails."""
        ran = 0
        while ran < limit:
            ids = services.cases_claim_due(now=now, limit=min(services.CLAIM_BATCH,
                                                               limit - ran))
            if not ids:
                break
            ran += services.cases_run(case_ids=ids, now=now)
        sent = 0
        for message_id in DunningMessage.objects.filter(status="pending").values_list(
                "pk", flat=True):
            sent += dunning.message_deliver(message_id=message_id, now=now)
        return ran, sent

    # Half without the profiler (CPU, queries, transactions), then half with it.
    half = measured if args.no_cprofile else measured // 2
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        backend = cursor.fetchone()[0]
    others_before = process_cpu(backend), process_cpu(sandbox_pid)
    commits_before = commits(connection)
    cpu, wall = time.process_time(), time.perf_counter()
    queries = QueryCounter()
    with connection.execute_wrapper(queries):
        ran, sent = drain(half)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    transactions = commits(connection) - commits_before - 1  # the stats read
    backend_cpu = process_cpu(backend) - others_before[0]
    sandbox_cpu = process_cpu(sandbox_pid) - others_before[1]
    assert ran == half, (ran, half)

    for kind, sql in shown.items():
        print(f"\n=== one case, {kind}: {len(sql) - 1} queries ===")
        for n, statement in enumerate(sql, 1):
            print(f"{n:3} {statement[:220]}")
    print(f"\n=== {ran} cases ({sent} dunning e-mails), this process, no profiler ===")
    print(f"CPU {cpu / ran * 1e3:.2f} ms/case, "
          f"wall {wall / ran * 1e3:.2f} ms/case, {queries.count / ran:.1f} queries/case, "
          f"{transactions / ran:.1f} transactions/case")
    print(f"PostgreSQL (this connection's backend) {backend_cpu / ran * 1e3:.2f} ms/case, "
          f"the sandbox {sandbox_cpu / ran * 1e3:.2f} ms/case")
    if args.no_cprofile:
        return
    # cProfile's clock is the wall's (cheap): time waiting on PostgreSQL and the sandbox shows
    # in psycopg's wait() and the socket's recv.
    profiler = cProfile.Profile()
    profiler.enable()
    profiled, _ = drain(measured - half)
    profiler.disable()
    for order in ("cumulative", "tottime"):
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats(order).print_stats(args.top)
        print(f"\n=== {profiled} cases profiled: top {args.top} by {order} ===")
        print("\n".join(line for line in out.getvalue().splitlines() if line.strip()))
    if args.pstats:
        profiler.dump_stats(str(args.pstats))

if __name__ == "__main__":
    main()
