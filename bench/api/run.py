"""bench/api: what a mobile client waits for: create an order, pay it, read the payment history.

Starts the production stack on this machine, each part a real process with Paydesk's production
settings (DEBUG off): PostgreSQL (a fresh database), the Stripe sandbox, gunicorn (--workers,
--worker-class sync or gthread, --threads). Then, with N concurrent clients (threads, one
keep-alive connection and one user each, every request carrying a token and an
Idempotency-Key as an app sends them):
1. each client creates orders (POST /api/v1/orders/) and pays each (POST .../pay/: a
   PaymentIntent, the Stripe Customer on a user's first pay, an ephemeral key) in a loop for
   --duration seconds;
2. then reads the first page of the payment history (GET /api/v1/payments/) of one user who
   has --history payments, in a loop for --duration seconds;
3. then the same history read by wrk (-t2 -c<clients>, --duration seconds): a load generator in
   C that takes far less of the shared CPU than the Python threads (skipped without wrk).
Reports p50/p99 of each, end to end, and from the Server-Timing header Paydesk's own part of each
request: `app` (wall time minus Stripe's), `cpu` (CPU time of the request in the gunicorn
worker, Stripe calls included) and `stripe` (the wall time of its Stripe calls). Rate limits are
raised out of the way.

The load generator runs on the same cores as gunicorn, PostgreSQL and the sandbox: latencies
include that contention (the report names the machine).

Usage: .venv/bin/python bench/api/run.py [--clients 50] [--duration 30] [--history 10000]
       [--workers 4] [--worker-class sync] [--threads 1] [--database paydesk_bench_api]
       [--json FILE]
Needs PostgreSQL on 127.0.0.1 (or DATABASE_URL naming a PostgreSQL server; the database named
by --database is dropped and created) and Redis for the rate limits (BENCH_CACHE_URL, default
rediscache://127.0.0.1:6379/9).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

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
    wait_http,
)

DATABASE = "paydesk_bench_api"
LOGS = REPO / "var" / "bench-api"
WRK_SCRIPT = Path(__file__).with_name("server_timing.lua")
SDK_STRIPE_VERSION = "2026-10-28.endive"
TIMING = re.compile(r"(\w+);dur=([0-9.]+)")


def summary(values: list[float]) -> dict[str, float]:
    if not values:
        return {"n": 0}
    return {"n": len(values), "p50_ms": round(percentile(values, 0.50), 2),
            "p99_ms": round(percentile(values, 0.99), 2),
            "mean_ms": round(statistics.fmean(values), 2)}


class Client:
    """One app: a keep-alive connection and a token."""

    def __init__(self, port: int, token: str):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        self.headers = {"Authorization": f"Token {token}", "Content-Type": "application/json"}

    def send(self, method: str, path: str, body: dict | None = None, **headers: str):
        started = time.perf_counter()
        self.conn.request(method, path, body=json.dumps(body) if body is not None else None,
                          headers={**self.headers, **headers})
        response = self.conn.getresponse()
        data = response.read()
        elapsed = (time.perf_counter() - started) * 1000
        timing = dict(TIMING.findall(response.getheader("Server-Timing") or ""))
        return response.status, json.loads(data or b"null"), elapsed, timing


def setup_data(env: dict[str, str], clients: int, history: int) -> dict:
    """Users with tokens, a price, and one user with `history` payments (rows, as Paydesk's
    mirror holds them; made here in bulk, not through Stripe)."""
    script = f"""
import json, django
django.setup()
from django.contrib.auth import get_user_model
from rest_framework.authtoken.models import Token
from orders.models import Order, Price, Product
from payments.models import Payment
User = get_user_model()
product = Product.objects.create(name="Bench", slug="bench")
price = Price.objects.create(product=product, currency="USD", unit_amount=1500)
tokens = []
for n in range({clients}):
    user = User.objects.create_user(f"bench{{n}}", f"bench{{n}}@example.com", "x")
    tokens.append(Token.objects.create(user=user).key)
reader = User.objects.create_user("history", "history@example.com", "x")
orders = Order.objects.bulk_create(
    Order(customer=reader, currency="USD", total_amount=1500, status="paid")
    for _ in range({history}))
Payment.objects.bulk_create(
    Payment(order=o, customer=reader, amount=1500, currency="USD", status="succeeded",
            amount_received=1500,
            idempotency_key=f"payment:{{o.pk}}:1", stripe_id=f"pi_bench_{{o.pk}}",
            card_brand="visa", card_last4="4242")
    for o in orders)
print(json.dumps({{"price": price.pk, "tokens": tokens,
                  "history_token": Token.objects.create(user=reader).key}}))
"""
    out = subprocess.run([sys.executable, "-c", script], cwd=REPO, env=env, check=True,
                         capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def run_phase(clients: list[Client], duration: float, work) -> dict[str, list]:
    results: dict[str, list] = {}
    lock = threading.Lock()
    barrier = threading.Barrier(len(clients))
    deadline_box: list[float] = []

    def loop(client: Client) -> None:
        barrier.wait()
        if not deadline_box:
            deadline_box.append(time.monotonic() + duration)
        mine: dict[str, list] = {}
        while time.monotonic() < deadline_box[0]:
            work(client, mine)
        with lock:
            for name, values in mine.items():
                results.setdefault(name, []).extend(values)

    threads = [threading.Thread(target=loop, args=(c,)) for c in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def order_and_pay(price: int):
    def work(client: Client, out: dict[str, list]) -> None:
        status, order, elapsed, _ = client.send(
            "POST", "/api/v1/orders/", {"lines": [{"price": price, "quantity": 1}]},
            **{"Idempotency-Key": str(uuid.uuid4())})
        out.setdefault("order_status", []).append(status)
        out.setdefault("order_ms", []).append(elapsed)
        if status != 201:
            return
        status, _, elapsed, timing = client.send(
            "POST", f"/api/v1/orders/{order['number']}/pay/",
            **{"Idempotency-Key": str(uuid.uuid4()), "Stripe-Version": SDK_STRIPE_VERSION})
        out.setdefault("pay_status", []).append(status)
        out.setdefault("pay_ms", []).append(elapsed)
        if "app" in timing:
            out.setdefault("pay_app_ms", []).append(float(timing["app"]))
            out.setdefault("pay_stripe_ms", []).append(float(timing["stripe"]))


        if "cpu" in timing:
            out.setdefault("pay_cpu_ms", []).append(float(timing["cpu"]))
    return work


def read_history(client: Client, out: dict[str, list]) -> None:
    status, _, elapsed, timing = client.send("GET", "/api/v1/payments/")
    out.setdefault("history_status", []).append(status)
    out.setdefault("history_ms", []).append(elapsed)
    if "app" in timing:
        out.setdefault("history_app_ms", []).append(float(timing["app"]))
    if "cpu" in timing:
        out.setdefault("history_cpu_ms", []).append(float(timing["cpu"]))


_WRK_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def wrk_history(port: int, token: str, connections: int, duration: float) -> dict:
    """GET /api/v1/payments/ by wrk: its latency distribution (p50, p99) and requests/s, and
    Server-Timing's app and cpu of every answer (bench/api/server_timing.lua)."""
    threads = min(2, connections)  # wrk needs a connection per thread
    result = subprocess.run(
        ["wrk", f"-t{threads}", f"-c{connections}", f"-d{max(1, round(duration))}s", "--latency",
         "-s", str(WRK_SCRIPT), "-H", f"Authorization: Token {token}",
         f"http://127.0.0.1:{port}/api/v1/payments/"],
        capture_output=True, text=True, check=True,
    )
    out = result.stdout
    latency = {
        f"p{percent}_ms": round(float(value) * _WRK_UNITS[unit], 2)
        for percent, value, unit in re.findall(r"^\s+(50|99)%\s+([\d.]+)(us|ms|s)\s*$", out,
                                               re.MULTILINE)
    }
    timings: dict[str, list[float]] = {"app": [], "cpu": []}
    for name, value in re.findall(r"^TIMING (app|cpu) ([\d.]+)$", out, re.MULTILINE):
        timings[name].append(float(value))
    errors = re.search(r"Socket errors:.*", out)
    return {
        "wrk": f"-t{threads} -c{connections} -d{max(1, round(duration))}s",
        "requests_per_s": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        "latency": latency,
        "non_2xx": int(re.search(r"^NON2XX (\d+)$", out, re.MULTILINE).group(1)),
        "socket_errors": errors.group(0) if errors else None,
        "history_app_ms": summary(timings["app"]),
        "history_cpu_ms": summary(timings["cpu"]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--duration", type=float, default=30.0)
    parser.add_argument("--history", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--worker-class", choices=["sync", "gthread"], default="sync")
    parser.add_argument("--threads", type=int, default=1,
                        help="threads per gunicorn worker (gthread)")
    parser.add_argument("--database", default=DATABASE,
                        help="the PostgreSQL database to drop, create and use")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    admin_url, database_url = postgres_urls(args.database)
    sandbox_port, web_port = free_port(), free_port()
    env = production_env(
        database_url=database_url, broker_url="memory://", webhook_secret="whsec_sandbox",
        STRIPE_SECRET_KEY="sk_test_sandbox", STRIPE_PUBLISHABLE_KEY="pk_test_sandbox",
        STRIPE_API_BASE=f"http://127.0.0.1:{sandbox_port}",
        PAYDESK_API_PAY_RATE="1000000/min", PAYDESK_API_AUTH_RATE="1000000/min",
        # As production runs it: the rate limits count in Redis, not in a database table.
        CACHE_URL=os.environ.get("BENCH_CACHE_URL", "rediscache://127.0.0.1:6379/9"),
    )
    env.pop("SANDBOX_WEBHOOK_URL", None)
    LOGS.mkdir(parents=True, exist_ok=True)
    database_recreate(admin_url, args.database)
    processes: dict[str, subprocess.Popen] = {}
    try:
        processes["sandbox"] = start([sys.executable, "-m", "payments.sandbox", "--port",
                                      str(sandbox_port)], env=env, log=LOGS / "sandbox.log")
        subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=REPO, env=env,
                       check=True)
        data = setup_data(env, args.clients, args.history)
        # The planner's statistics as autovacuum keeps them in production: without this, right
        # after the bulk load it still counts the user's payments as 3 and sorts all 10,000 for
        # each page (12 ms a query here instead of 0.2 ms).
        psql(database_url, "ANALYZE")
        processes["gunicorn"] = start(
            # This interpreter's gunicorn (a copied venv's scripts may name another's python).
            [sys.executable, "-m", "gunicorn", "config.wsgi:application",
             "--workers", str(args.workers), "--worker-class", args.worker_class,
             "--threads", str(args.threads),
             "--bind", f"127.0.0.1:{web_port}",
             "--log-level", "warning", "--access-logfile", "/dev/null"],
            env=env, log=LOGS / "gunicorn.log")
        wait_http(sandbox_port, "/_sandbox/health")
        wait_http(web_port, "/healthz")

        clients = [Client(web_port, token) for token in data["tokens"]]
        pay_results = run_phase(clients, args.duration, order_and_pay(data["price"]))
        readers = [Client(web_port, data["history_token"]) for _ in range(args.clients)]
        history_results = run_phase(readers, args.duration, read_history)
        wrk = (wrk_history(web_port, data["history_token"], args.clients, args.duration)
               if shutil.which("wrk") else {"skipped": "wrk is not installed"})
    finally:
        for name in ("gunicorn", "sandbox"):
            if name in processes:
                stop(processes[name])

    results = {**pay_results, **history_results}
    report = {
        "machine": machine(),
        "clients": args.clients, "duration_s": args.duration, "history_rows": args.history,
        "gunicorn": f"{args.workers} {args.worker_class} workers"
                    + (f" x {args.threads} threads" if args.worker_class == "gthread" else ""),
        "statuses": {name: {str(s): results[name].count(s) for s in set(results[name])}
                     for name in ("order_status", "pay_status", "history_status")
                     if name in results},
        **{name: summary(results.get(name, [])) for name in (
            "order_ms", "pay_ms", "pay_app_ms", "pay_cpu_ms", "pay_stripe_ms", "history_ms",
            "history_app_ms", "history_cpu_ms")},
        "history_wrk": wrk,
    }
    print(json.dumps(report, indent=2))
    if args.json:
        results_write(args.json, report)


if __name__ == "__main__":
    main()
