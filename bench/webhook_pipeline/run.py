"""bench/webhook_pipeline: Stripe events APPLIED per second, end to end, and how long each waits.

Starts the production stack on this machine, each part a real process with Paydesk's production
settings (DEBUG off): PostgreSQL (a fresh database), Redis, the Stripe sandbox (delivering no
webhooks: this script posts the events), gunicorn (2 sync workers), a Celery worker (prefork)
and celery beat. For each rate it:
1. creates real payments through Paydesk's services (orders.services.order_create,
   payments.services.payment_start), then confirms each at the sandbox directly, as Stripe.js
   does in the browser (some cards decline; some payments are then refunded at the sandbox), so
   only the events can tell Paydesk what happened;
2. lists those payments' events at the sandbox (payment_intent.*, charge.*, refund.*) and
   schedules them: each payment's events in Stripe's order, payments interleaved, a share of
   payments with their events shuffled, a share of events posted twice;
3. posts them, signed at send time as Stripe signs, to POST /webhooks/stripe/ open loop at a
   fixed rate (each send at start + i/rate, whatever the answers take);
4. waits (bounded) for the backlog to drain and reports from PostgreSQL: events applied per
   second during the traffic, lag from received to applied (p50/p99/max), backlog when the
   traffic ended and at the end, Stripe reads made while processing (the sandbox's request log),
   and whether every payment ends as the sandbox says, with its ledger written exactly once.

An event counts when a worker has APPLIED it (WebhookEvent.processed_at), not when it is stored.
Rates run in increasing order on the same stack, each on new payments; the run stops after the
first rate that is not sustained (--keep-going runs them all).

Usage: .venv/bin/python bench/webhook_pipeline/run.py [--rates 50,100,150,200,250,300]
       [--duration 60] [--payments N] [--worker-concurrency 4] [--queues webhooks,celery]
       [--quick] [--json FILE]
Needs PostgreSQL and Redis on 127.0.0.1 (or DATABASE_URL naming a PostgreSQL server; the
database paydesk_bench_pipeline is dropped and created; --redis-url's database is flushed).
"""

from __future__ import annotations

import argparse
import http.client
import itertools
import json
import math
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import redis
import stripe

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from bench.common import (
    REPO,
    database_recreate,
    free_port,
    machine,
    percentile,
    postgres_urls,
    production_env,
    psql,
    results_write,
    start,
    stop,
    stripe_signature,
    wait_http,
)

NAME = "webhook_pipeline"
DATABASE = "paydesk_bench_pipeline"
SECRET = "whsec_bench_pipeline_" + "0" * 16
SECRET_KEY = "sk_test_bench_pipeline"
PUBLISHABLE_KEY = "pk_test_bench_pipeline"
EVENT_TYPES = ["payment_intent.*", "charge.*", "refund.*"]
SUCCEEDING_CARDS = ["pm_card_visa", "pm_card_mastercard", "pm_card_visa_debit", "pm_card_amex"]
DECLINING_CARD = "pm_card_visa_chargeDeclinedInsufficientFunds"
CUSTOMERS = 20
SUSTAINED_P99_SECONDS = 2.0
RETURN_URL = "http://127.0.0.1/checkout/return/"
LOGS = REPO / "var" / "bench" / "webhook_pipeline-logs"

# Events per payment as the sandbox emits them: created, charge.succeeded/failed, then
# succeeded/payment_failed; a refund adds refund.created and charge.refunded.
EVENTS_PER_PAYMENT = 3
EVENTS_PER_REFUND = 2


def fail(reason: str) -> None:
    raise SystemExit(f"{NAME}: {reason}")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rates", default="50,100,150,200,250,300",
                        help="events/s to offer, comma-separated (default %(default)s)")
    parser.add_argument("--duration", type=float, default=60.0,
                        help="seconds of traffic per rate, at least (default %(default)s)")
    parser.add_argument("--payments", type=int, default=None,
                        help="payments per rate (default: enough for rate x duration events)")
    parser.add_argument("--worker-concurrency", type=int, default=4)
    parser.add_argument("--queues", default="webhooks,celery",
                        help="queues the Celery worker consumes (default %(default)s)")
    parser.add_argument("--shuffled-share", type=float, default=0.30,
                        help="share of payments whose events are posted in random order")
    parser.add_argument("--duplicate-share", type=float, default=0.05,
                        help="share of events posted twice")
    parser.add_argument("--decline-share", type=float, default=0.10,
                        help="share of payments whose card is declined")
    parser.add_argument("--refund-share", type=float, default=0.10,
                        help="share of succeeded payments then refunded at the sandbox")
    parser.add_argument("--senders", type=int, default=32, help="sender threads")
    parser.add_argument("--setup-threads", type=int, default=12,
                        help="threads creating payments before each rate")
    parser.add_argument("--drain-timeout", type=float, default=120.0,
                        help="seconds to wait for the backlog after the traffic")
    parser.add_argument("--keep-going", action="store_true",
                        help="run every rate, even after one was not sustained")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/5",
                        help="broker (flushed at start and end; default %(default)s)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", type=Path, default=REPO / "var" / "bench" / f"{NAME}.json",
                        help=f"write the results here (default var/bench/{NAME}.json)")
    parser.add_argument("--keep-db", action="store_true",
                        help=f"keep the database {DATABASE} at the end, to inspect it")
    parser.add_argument("--quick", action="store_true",
                        help="smoke test: one 10 s run at 20 events/s")
    args = parser.parse_args()
    if args.quick:
        args.rates, args.duration = "20", 10.0
    args.rates = sorted(float(r) for r in args.rates.split(",") if r.strip())
    if not args.rates or min(args.rates) <= 0 or args.duration <= 0:
        fail("--rates must be positive numbers and --duration positive")
    if not args.redis_url.startswith("redis://"):
        fail("--redis-url must name Redis: the benchmark measures the production stack")
    return args


# --- The stack --------------------------------------------------------------------------------


class Stack:
    """PostgreSQL database, Redis, sandbox, gunicorn, Celery worker and beat; `stop()` ends
    every process it started, whatever happened."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.admin_url, self.database_url = postgres_urls(DATABASE)
        self.sandbox_port = free_port()
        self.web_port = free_port()
        self.sandbox_url = f"http://127.0.0.1:{self.sandbox_port}"
        self.processes: dict[str, subprocess.Popen] = {}
        self.env = production_env(
            database_url=self.database_url,
            broker_url=args.redis_url,
            webhook_secret=SECRET,
            STRIPE_SECRET_KEY=SECRET_KEY,
            STRIPE_PUBLISHABLE_KEY=PUBLISHABLE_KEY,
            STRIPE_API_BASE=self.sandbox_url,
        )
        self.env.pop("SANDBOX_WEBHOOK_URL", None)
        self.env.pop("CELERY_TASK_DEFAULT_QUEUE", None)

    def log(self, name: str) -> Path:
        return LOGS / f"{name}.log"

    def start(self) -> None:
        LOGS.mkdir(parents=True, exist_ok=True)
        for old in LOGS.glob("*.log"):
            old.unlink()
        redis.Redis.from_url(self.args.redis_url).flushdb()
        database_recreate(self.admin_url, DATABASE)
        py = sys.executable
        bin_dir = Path(py).parent
        # -v: the sandbox logs every request, so the Stripe reads of processing can be counted.
        self.processes["sandbox"] = start(
            [py, "-m", "payments.sandbox", "--port", str(self.sandbox_port), "-v"],
            env=self.env, log=self.log("sandbox"))
        for command in (["migrate", "-v0"], ["seed_demo"]):
            start_and_wait([py, "manage.py", *command], self.env, self.log("setup"))
        self.processes["gunicorn"] = start(
            [str(bin_dir / "gunicorn"), "config.wsgi:application", "--workers", "2",
             "--worker-class", "sync", "--bind", f"127.0.0.1:{self.web_port}",
             "--log-level", "warning"],
            env=self.env, log=self.log("gunicorn"))
        self.processes["worker"] = start(
            [str(bin_dir / "celery"), "-A", "config", "worker", "--pool", "prefork",
             "--concurrency", str(self.args.worker_concurrency), "--queues", self.args.queues,
             "--hostname", "bench-pipeline@%h", "--loglevel", "WARNING"],
            env=self.env, log=self.log("worker"))
        self.processes["beat"] = start(
            [str(bin_dir / "celery"), "-A", "config", "beat", "--loglevel", "WARNING"],
            env=self.env, log=self.log("beat"))
        wait_http(self.sandbox_port, "/_sandbox/health")
        wait_http(self.web_port, "/healthz")

    def check_running(self) -> None:
        for name, process in self.processes.items():
            if process.poll() is not None:
                fail(f"{name} exited ({process.returncode}); see {self.log(name)}")

    def stop(self) -> None:
        for name in ("gunicorn", "beat", "worker", "sandbox"):
            if name in self.processes:
                stop(self.processes[name])
        try:
            redis.Redis.from_url(self.args.redis_url).flushdb()
        except Exception as exc:  # the stack is going away; say so, stop the rest anyway
            print(f"could not flush {self.args.redis_url}: {exc}")


def start_and_wait(command: list[str], env: dict[str, str], log: Path) -> None:
    process = start(command, env=env, log=log)
    if process.wait() != 0:
        fail(f"{' '.join(command[1:])} failed; see {log}")


def django_setup(stack: Stack) -> None:
    """This process uses Paydesk's own code, with the same settings as the servers."""
    os.environ.update(stack.env)
    import django

    django.setup()


def worker_wait_ready(stack: Stack, timeout: float = 60.0) -> None:
    from config.celery import app

    deadline = time.monotonic() + timeout
    while not app.control.ping(timeout=1.0):
        stack.check_running()
        if time.monotonic() > deadline:
            fail(f"the Celery worker did not answer in {timeout:.0f} s; see {stack.log('worker')}")


# --- Payments at the sandbox --------------------------------------------------------------------


def sandbox_client(sandbox_url: str, key: str) -> stripe.StripeClient:
    """The SDK as the customer's browser (publishable key) or the business's dashboard (secret
    key) uses it: another client than Paydesk's, with a connection per request (urllib)."""
    return stripe.StripeClient(key, base_addresses={"api": sandbox_url},
                               http_client=stripe.UrllibClient(), max_network_retries=2)


@dataclass
class PaymentPlan:
    intent_id: str = ""
    amount: int = 0
    card: str = ""
    refund: int = 0  # minor units refunded at the sandbox after success (0: none)
    outcome: str = ""


def customers_ensure() -> None:
    """The benchmark's customers, each with its Stripe Customer (once, before any payment)."""
    from django.contrib.auth import get_user_model

    from payments.services import customer_ensure

    User = get_user_model()
    for i in range(CUSTOMERS):
        user, _ = User.objects.get_or_create(
            username=f"bench-customer-{i}", defaults={"email": f"bench{i}@example.com"})
        customer_ensure(user=user)


def payments_create(stack: Stack, count: int, *, seed: int, args: argparse.Namespace
                    ) -> list[PaymentPlan]:
    """`count` payments started by Paydesk's services and finished at the sandbox behind
    Paydesk's back, on --setup-threads threads (they mostly wait on the network)."""
    from django.contrib.auth import get_user_model
    from django.db import connection

    from orders.models import Price
    from orders.services import order_create
    from payments.services import payment_start

    users = list(get_user_model().objects.filter(username__startswith="bench-customer-"))
    prices = list(Price.objects.filter(currency="USD", active=True).select_related("product"))
    if not users or not prices:
        fail("no bench customers or no USD prices (did seed_demo run?)")
    browser = sandbox_client(stack.sandbox_url, PUBLISHABLE_KEY)
    shop = sandbox_client(stack.sandbox_url, SECRET_KEY)
    plans = [PaymentPlan() for _ in range(count)]
    errors: list[str] = []

    def create(index: int) -> None:
        rng = random.Random(seed * 1_000_003 + index)
        plan = plans[index]
        items = [(price, rng.randint(1, 3)) for price in rng.sample(prices, rng.randint(1, 2))]
        order = order_create(customer=users[index % len(users)], items=items)
        payment = payment_start(order=order)
        plan.intent_id, plan.amount = payment.stripe_id, payment.amount
        plan.card = DECLINING_CARD if rng.random() < args.decline_share else rng.choice(
            SUCCEEDING_CARDS)
        try:
            intent = browser.v1.payment_intents.confirm(payment.stripe_id, params={
                "payment_method": plan.card, "return_url": RETURN_URL,
                "client_secret": payment.stripe_object["client_secret"]})
            plan.outcome = intent.status
        except stripe.CardError:
            plan.outcome = "declined"
        if plan.outcome == "succeeded" and rng.random() < args.refund_share:
            plan.refund = plan.amount if rng.random() < 0.5 else plan.amount // 2
            shop.v1.refunds.create(params={"payment_intent": plan.intent_id,
                                           "amount": plan.refund})

    def run(indexes: range) -> None:
        try:
            for index in indexes:
                create(index)
        except Exception as exc:
            errors.append(f"{type(exc).__name__}: {exc}")
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(range(k, count, args.setup_threads),),
                                daemon=True) for k in range(args.setup_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        fail(f"creating payments failed: {errors[0]}")
    return plans


def intent_of(event: dict) -> str:
    obj = event["data"]["object"]
    return obj["id"] if obj.get("object") == "payment_intent" else obj.get("payment_intent") or ""


def events_collect(stack: Stack, since: int, intent_ids: set[str]) -> dict[str, list[dict]]:
    """The events of these payments as the sandbox keeps them, each payment's in Stripe's order."""
    shop = sandbox_client(stack.sandbox_url, SECRET_KEY)
    listing = shop.v1.events.list(params={
        "types": EVENT_TYPES, "created": {"gte": since}, "limit": 100})
    by_intent: dict[str, list[dict]] = defaultdict(list)
    for event in listing.auto_paging_iter():  # newest first
        data = event.to_dict(recursive=True)
        if intent_of(data) in intent_ids:
            by_intent[intent_of(data)].append(data)
    for events in by_intent.values():
        events.reverse()
    return by_intent


def schedule_build(by_intent: dict[str, list[dict]], order: list[str], *, rng: random.Random,
                   shuffled_share: float, duplicate_share: float, window: int = 16
                   ) -> list[tuple[str, str]]:
    """(event id, body) in posting order: a sliding window of `window` payments interleaved,
    each payment's events in Stripe's order (or shuffled, for `shuffled_share` of payments),
    and `duplicate_share` of events posted again a little later, as Stripe retries."""
    queues = []
    for intent_id in order:
        events = list(by_intent.get(intent_id, []))
        if rng.random() < shuffled_share:
            rng.shuffle(events)
        if events:
            queues.append(events)
    base: list[dict] = []
    active = queues[:window]
    waiting = iter(queues[window:])
    while active:
        k = rng.randrange(len(active))
        base.append(active[k].pop(0))
        if not active[k]:
            nxt = next(waiting, None)
            if nxt is None:
                active.pop(k)
            else:
                active[k] = nxt
    keyed = [(float(i), e) for i, e in enumerate(base)]
    keyed += [(i + rng.randint(1, 200) + 0.5, e) for i, e in enumerate(base)
              if rng.random() < duplicate_share]
    keyed.sort(key=lambda pair: pair[0])
    return [(e["id"], json.dumps(e, separators=(",", ":"))) for _, e in keyed]


def expected_events(args: argparse.Namespace) -> float:
    succeeded = 1 - args.decline_share
    per_payment = EVENTS_PER_PAYMENT + succeeded * args.refund_share * EVENTS_PER_REFUND
    return per_payment * (1 + args.duplicate_share)


# --- Traffic ------------------------------------------------------------------------------------


def traffic(port: int, schedule: list[tuple[str, str]], rate: float, senders: int,
            grace: float = 30.0, on_tick=None) -> dict:
    """Posts the schedule open loop: send i at start + i/rate, signed at send time, by whichever
    sender is free (a slow answer delays no other send unless every sender is busy); nothing is
    sent after the schedule's end plus `grace`. Calls on_tick() about once a second."""
    total = len(schedule)
    interval = 1.0 / rate
    start_at = time.perf_counter() + 0.2
    deadline = start_at + total * interval + grace
    sent_at: list[float] = []
    late: list[float] = []
    statuses: Counter[int] = Counter()
    accepted: set[str] = set()
    first_error: list[str] = []
    lock = threading.Lock()
    next_send = itertools.count()

    def sender() -> None:
        mine_sent, mine_late, mine_status, mine_ok = [], [], Counter(), set()
        while True:
            with lock:
                i = next(next_send)
            if i >= total:
                break
            scheduled = start_at + i * interval
            now = time.perf_counter()
            if now < scheduled:
                time.sleep(scheduled - now)
            elif now > deadline:
                break
            event_id, body = schedule[i]
            begun = time.perf_counter()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            try:
                conn.request("POST", "/webhooks/stripe/", body=body.encode(), headers={
                    "Content-Type": "application/json",
                    "Stripe-Signature": stripe_signature(SECRET, body, int(time.time())),
                })
                response = conn.getresponse()
                status, answer = response.status, response.read()
            except OSError as exc:
                status, answer = 0, repr(exc).encode()
            finally:
                conn.close()
            mine_status[status] += 1
            if 200 <= status < 300:
                mine_ok.add(event_id)
            elif not first_error:
                text = " ".join(answer.decode(errors="replace").split())
                first_error.append(f"{status} {text[:200]}")
            mine_sent.append(begun)
            mine_late.append(begun - scheduled)
        with lock:
            sent_at.extend(mine_sent)
            late.extend(mine_late)
            statuses.update(mine_status)
            accepted.update(mine_ok)

    wall_start = time.time() + (start_at - time.perf_counter())
    threads = [threading.Thread(target=sender, daemon=True) for _ in range(senders)]
    for t in threads:
        t.start()
    while alive := [t for t in threads if t.is_alive()]:
        alive[0].join(timeout=1.0)
        if on_tick:
            on_tick()
    wall_end = time.time()
    sent = len(sent_at)
    span = (max(sent_at) - start_at + interval) if sent_at else 0.0
    return {
        "start": wall_start, "end": wall_end, "scheduled": total, "sent": sent,
        "not_sent": total - sent, "sent_rate": sent / span if span else 0.0,
        "ok": sum(n for s, n in statuses.items() if 200 <= s < 300),
        "non_2xx": sum(n for s, n in statuses.items() if not 200 <= s < 300),
        "statuses": {str(s): n for s, n in sorted(statuses.items())},
        "accepted": accepted, "first_error": first_error[0] if first_error else "",
        "late_p99_ms": round((percentile(late, 0.99) or 0.0) * 1000, 1),
    }


# --- Measurements -------------------------------------------------------------------------------

OPEN = ("pending", "failed")


def event_counts(since: float) -> dict[str, int]:
    """WebhookEvent rows received since `since` (epoch seconds), by status."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT status, count(*) FROM payments_webhookevent WHERE received_at >= %s"
            " GROUP BY status", [datetime.fromtimestamp(since, tz=UTC)])
        return dict(cursor.fetchall())


def backlog(counts: dict[str, int]) -> int:
    return sum(counts.get(s, 0) for s in OPEN)


def event_rows(since: float) -> list[tuple[str, str, datetime, datetime | None]]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT stripe_id, status, received_at, processed_at FROM payments_webhookevent"
            " WHERE received_at >= %s", [datetime.fromtimestamp(since, tz=UTC)])
        return cursor.fetchall()


class RequestLog:
    """The sandbox's request log (its -v output): Stripe calls made between two marks."""

    LINE = re.compile(r'"(GET|POST|DELETE) (/v1/[^ ?"]*)')

    def __init__(self, path: Path) -> None:
        self.path = path

    def mark(self) -> int:
        return self.path.stat().st_size

    def calls(self, start: int, end: int) -> Counter[str]:
        with self.path.open("rb") as log:
            log.seek(start)
            text = log.read(end - start).decode(errors="replace")
        return Counter(m.group(1) for m in self.LINE.finditer(text))


def correctness(stack: Stack, plans: list[PaymentPlan], since: int) -> dict:
    """Every payment's mirror against the sandbox, and its ledger: a success and each succeeded
    refund written exactly once."""
    from django.db.models import Count

    from payments.models import Payment, PaymentEvent

    ids = {p.intent_id for p in plans}
    shop = sandbox_client(stack.sandbox_url, SECRET_KEY)
    remote: dict[str, dict] = {}
    for intent in shop.v1.payment_intents.list(
            params={"created": {"gte": since}, "limit": 100}).auto_paging_iter():
        if intent.id in ids:
            remote[intent.id] = {"status": intent.status,
                                 "amount_received": intent.amount_received or 0,
                                 "amount_refunded": 0, "refunds_succeeded": 0}
    for refund in shop.v1.refunds.list(
            params={"created": {"gte": since}, "limit": 100}).auto_paging_iter():
        if refund.payment_intent in remote and refund.status == "succeeded":
            remote[refund.payment_intent]["amount_refunded"] += refund.amount
            remote[refund.payment_intent]["refunds_succeeded"] += 1
    local = {row["stripe_id"]: row for row in Payment.objects.filter(stripe_id__in=ids).values(
        "stripe_id", "status", "amount_received", "amount_refunded")}
    ledger: Counter[tuple[str, str]] = Counter()
    for row in (PaymentEvent.objects.filter(
            payment__stripe_id__in=ids,
            kind__in=[PaymentEvent.Kind.SUCCEEDED, PaymentEvent.Kind.REFUND_SUCCEEDED])
            .values("payment__stripe_id", "kind").annotate(n=Count("id"))):
        ledger[(row["payment__stripe_id"], row["kind"])] = row["n"]

    problems: list[str] = []
    for intent_id in sorted(ids):
        theirs, ours = remote.get(intent_id), local.get(intent_id)
        if theirs is None or ours is None:
            where = "at the sandbox" if theirs is None else "here"
            problems.append(f"{intent_id}: missing {where}")
            continue
        wrong = [f"{field} {ours[field]} != {theirs[field]}"
                 for field in ("status", "amount_received", "amount_refunded")
                 if ours[field] != theirs[field]]
        succeeded = ledger[(intent_id, PaymentEvent.Kind.SUCCEEDED)]
        if succeeded != (1 if theirs["status"] == "succeeded" else 0):
            wrong.append(f"{succeeded} 'succeeded' ledger rows")
        refunded = ledger[(intent_id, PaymentEvent.Kind.REFUND_SUCCEEDED)]
        if refunded != theirs["refunds_succeeded"]:
            wrong.append(f"{refunded} 'refund succeeded' ledger rows for "
                         f"{theirs['refunds_succeeded']} refunds")
        if wrong:
            problems.append(f"{intent_id}: " + ", ".join(wrong))
    outcomes = Counter(r["status"] for r in remote.values())
    return {"payments": len(ids), "outcomes": dict(outcomes),
            "refunded": sum(1 for r in remote.values() if r["refunds_succeeded"]),
            "mismatches": len(problems), "examples": problems[:5]}


def seconds(delta) -> float:
    return delta.total_seconds()


def _rounded(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds, 3)


def run_rate(stack: Stack, args: argparse.Namespace, rate: float, index: int,
             requests: RequestLog) -> dict:
    rng = random.Random(args.seed + index)
    needed = math.ceil(rate * args.duration)
    count = args.payments or math.ceil(needed / expected_events(args) * 1.02)
    since = int(time.time()) - 1
    t0 = time.monotonic()
    plans = payments_create(stack, count, seed=args.seed + index, args=args)
    by_intent = events_collect(stack, since, {p.intent_id for p in plans})
    schedule = schedule_build(by_intent, [p.intent_id for p in plans], rng=rng,
                              shuffled_share=args.shuffled_share,
                              duplicate_share=args.duplicate_share)
    while args.payments is None and len(schedule) < needed:  # top up; never cut a payment short
        more = payments_create(stack, math.ceil((needed - len(schedule)) / 2) + 1,
                               seed=args.seed + 1000 * (index + 1) + len(plans), args=args)
        plans += more
        by_intent = events_collect(stack, since, {p.intent_id for p in plans})
        schedule = schedule_build(by_intent, [p.intent_id for p in plans], rng=rng,
                                  shuffled_share=args.shuffled_share,
                                  duplicate_share=args.duplicate_share)
    setup_s = time.monotonic() - t0
    distinct = len({event_id for event_id, _ in schedule})
    print(f"\n{rate:g} events/s: {len(plans)} payments, {distinct} events "
          f"({len(schedule)} posts with duplicates) ready in {setup_s:.0f} s; "
          f"posting for {len(schedule) / rate:.0f} s", flush=True)
    earlier = backlog(event_counts(0))
    if earlier:
        print(f"  note: {earlier} events of earlier rates are still waiting and load the workers")

    timeline: list[tuple[float, int, int]] = []
    traffic_start = time.time()

    def tick() -> None:
        counts = event_counts(traffic_start - 1)
        timeline.append((round(time.time() - traffic_start, 1), backlog(counts),
                         sum(counts.values())))
        stack.check_running()

    mark_start = requests.mark()
    sent = traffic(stack.web_port, schedule, rate, args.senders, on_tick=tick)
    window_start = sent["start"]
    end_counts = event_counts(window_start - 1)
    backlog_at_end_of_traffic = backlog(end_counts)
    print(f"  traffic ended after {sent['end'] - window_start:.1f} s: {sent['sent']} sent "
          f"({sent['sent_rate']:.1f}/s, sender late p99 {sent['late_p99_ms']} ms), "
          f"{sent['non_2xx']} non-2xx; "
          f"{backlog_at_end_of_traffic} of {sum(end_counts.values())} stored events not yet "
          f"applied", flush=True)
    if sent["first_error"]:
        print(f"  first non-2xx answer: {sent['first_error']} (see {stack.log('gunicorn')})",
              flush=True)

    drained_by = None
    deadline = time.monotonic() + args.drain_timeout
    while True:
        counts = event_counts(window_start - 1)
        if backlog(counts) == 0 and sum(counts.values()) >= len(sent["accepted"]):
            drained_by = time.time() - sent["end"]
            break
        if time.monotonic() > deadline:
            break
        stack.check_running()
        time.sleep(0.5)
        timeline.append((round(time.time() - traffic_start, 1), backlog(counts),
                         sum(counts.values())))
    final_counts = event_counts(window_start - 1)
    calls = requests.calls(mark_start, requests.mark())

    rows = event_rows(window_start - 1)
    done = [r for r in rows if r[3] is not None]
    lags = sorted(seconds(r[3] - r[2]) for r in done)
    start_dt = datetime.fromtimestamp(window_start, tz=UTC)
    end_dt = datetime.fromtimestamp(sent["end"], tz=UTC)
    applied_during = sum(1 for r in done if start_dt <= r[3] <= end_dt)
    check = correctness(stack, plans, since)
    result = {
        "rate_offered": rate,
        "rate_sent": round(sent["sent_rate"], 1),
        "traffic_seconds": round(sent["end"] - window_start, 1),
        "payments": len(plans),
        "events_distinct": distinct,
        "posts": len(schedule),
        "applied_per_s": round(applied_during / (sent["end"] - window_start), 1),
        "applied_during_traffic": applied_during,
        "lag_p50_s": _rounded(percentile(lags, 0.50)),
        "lag_p99_s": _rounded(percentile(lags, 0.99)),
        "lag_max_s": _rounded(percentile(lags, 1.0)),
        "not_applied": len(rows) - len(done) + max(len(sent["accepted"]) - len(rows), 0),
        "backlog_at_end_of_traffic": backlog_at_end_of_traffic,
        "backlog_at_end": backlog(final_counts),
        "drained_by_s": round(drained_by, 1) if drained_by is not None else None,
        "statuses": final_counts,
        "stripe_reads": calls.get("GET", 0),
        "stripe_writes": calls.get("POST", 0) + calls.get("DELETE", 0),
        "stripe_reads_per_event": round(calls.get("GET", 0) / max(len(done), 1), 2),
        "sender": {k: sent[k] for k in ("scheduled", "sent", "not_sent", "non_2xx",
                                         "statuses", "first_error", "late_p99_ms")},
        "correctness": check,
        "setup_seconds": round(setup_s, 1),
        "timeline": timeline,
    }
    result["sustained"] = bool(
        result["drained_by_s"] is not None and result["not_applied"] == 0
        and lags and result["lag_p99_s"] < SUSTAINED_P99_SECONDS and sent["non_2xx"] == 0
        and sent["not_sent"] == 0 and sent["sent_rate"] >= 0.95 * rate
        and check["mismatches"] == 0
    )
    print(f"  applied {result['applied_per_s']}/s during the traffic; lag p50 "
          f"{shown(result['lag_p50_s'])}, p99 {shown(result['lag_p99_s'])}, max "
          f"{shown(result['lag_max_s'])}; "
          + (f"drained {result['drained_by_s']} s after the traffic" if drained_by is not None
             else f"NOT drained {args.drain_timeout:.0f} s after the traffic "
                  f"({result['backlog_at_end']} left)")
          + f"; {check['mismatches']} of {check['payments']} payments differ from the sandbox"
          + f"; {result['stripe_reads']} Stripe reads", flush=True)
    if final_counts.get("ignored") or final_counts.get("failed_permanently"):
        print(f"  statuses: {final_counts} (every event posted here is about a Paydesk payment)")
    for example in check["examples"]:
        print(f"    {example}")
    return result


# --- Report -------------------------------------------------------------------------------------


def shown(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f} s"


def table(results: list[dict]) -> str:
    head = ("rate offered", "sent/s", "applied/s", "lag p50", "lag p99", "lag max",
            "backlog end of traffic", "drained by", "mismatches", "Stripe reads/event")
    lines = [head]
    for r in results:
        lines.append((
            f"{r['rate_offered']:g}", f"{r['rate_sent']:g}", f"{r['applied_per_s']:g}",
            shown(r["lag_p50_s"]), shown(r["lag_p99_s"]), shown(r["lag_max_s"]),
            f"{r['backlog_at_end_of_traffic']}",
            f"{r['drained_by_s']:.1f} s" if r["drained_by_s"] is not None
            else f"no ({r['backlog_at_end']} left)",
            f"{r['correctness']['mismatches']}/{r['correctness']['payments']}",
            f"{r['stripe_reads_per_event']:g}",
        ))
    widths = [max(len(line[i]) for line in lines) for i in range(len(head))]
    out = [" | ".join(cell.rjust(w) for cell, w in zip(line, widths, strict=True))
           for line in lines]
    out.insert(1, "-+-".join("-" * w for w in widths))
    return "\n".join(out)


def main() -> None:
    args = parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(f"{NAME}: terminated"))
    stack = Stack(args)
    results: list[dict] = []
    try:
        stack.start()
        django_setup(stack)
        worker_wait_ready(stack)
        customers_ensure()
        requests = RequestLog(stack.log("sandbox"))
        print(f"stack up: gunicorn :{stack.web_port} (2 sync workers), celery prefork "
              f"x{args.worker_concurrency} on {args.queues}, beat, sandbox :{stack.sandbox_port}"
              f", PostgreSQL {DATABASE}, {args.redis_url}; logs in {LOGS.relative_to(REPO)}",
              flush=True)
        for index, rate in enumerate(args.rates):
            results.append(run_rate(stack, args, rate, index, requests))
            if not results[-1]["sustained"] and not args.keep_going and rate != args.rates[-1]:
                print(f"  {rate:g} events/s not sustained: higher rates not run (--keep-going "
                      "runs them)")
                break
    finally:
        if "django.db" in sys.modules:
            sys.modules["django.db"].connections.close_all()
        stack.stop()
        if not args.keep_db:
            psql(stack.admin_url, f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
    sustained = [r["rate_offered"] for r in results if r["sustained"]]
    best = max(sustained) if sustained else None
    print("\n" + table(results))
    print(f"\nhighest rate sustained with p99 lag under {SUSTAINED_P99_SECONDS:g} s (drained, "
          f"all posted, nothing lost or applied twice): "
          + (f"{best:g} events/s" if best is not None else "none of the rates tried"))
    summary = {
        "machine": machine(),
        "stack": {"gunicorn": "2 sync workers",
                  "celery": f"prefork x{args.worker_concurrency}, queues {args.queues}",
                  "beat": True, "broker": args.redis_url},
        "options": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "results": results,
        "highest_sustained_rate": best,
    }
    results_write(args.json, summary)
    print(f"results in {args.json}")


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit(f"{NAME}: interrupted")
