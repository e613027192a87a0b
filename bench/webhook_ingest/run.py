"""bench/webhook_ingest: signed Stripe events/s accepted by POST /webhooks/stripe/.

Runs gunicorn (2 sync workers) on PostgreSQL and Redis, as production does, and measures:
1. peak throughput with wrk (closed loop) of the real endpoint and of the floor, a bench-only view
   that only INSERTs the body (config/bench.py), in the same run;
2. latency p50/p99 at half of each peak, with an open-loop client (latency counted from each
   request's scheduled time, so a stall is not hidden).

Every event is distinct and signed like Stripe (the real endpoint verifies each). Nothing is
mocked; no worker runs, so the dispatch tasks wait in the queue, which is purged at the end.

Usage: .venv/bin/python bench/webhook_ingest/run.py [--seconds 10] [--connections 16]
Needs: wrk (apt-get install wrk), PostgreSQL and Redis on 127.0.0.1 (or DATABASE_URL /
CELERY_BROKER_URL naming a server; the database paydesk_bench is created and dropped).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from statistics import quantiles

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from bench.common import (
    REPO,
    database_recreate,
    machine,
    postgres_urls,
    production_env,
    psql,
    results_write,
    start,
    stop,
    stripe_signature,
    wait_http,
)

LUA = Path(__file__).with_name("events.lua")
PORT = 8765
SECRET = "whsec_bench_" + "0" * 24
BENCH_DB = "paydesk_bench"
QUEUE = "paydesk-bench"
FIXTURES = REPO / "vendor" / "stripe" / "fixtures3.json"


def fail(reason: str) -> None:
    sys.exit(f"webhook_ingest: {reason}")


def event_template() -> dict:
    """A realistic payment_intent.succeeded event: Stripe's published PaymentIntent fixture."""
    intent = json.loads(FIXTURES.read_text())["resources"]["payment_intent"]
    return {
        "id": "evt_x", "object": "event", "api_version": "2026-10-28.endive",
        "created": int(time.time()), "livemode": False, "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
        "type": "payment_intent.succeeded", "data": {"object": intent},
    }


def write_events(path: Path, count: int, prefix: str) -> None:
    template = event_template()
    timestamp = int(time.time())
    with path.open("w") as out:
        for i in range(count):
            template["id"] = f"evt_{prefix}_{i:08d}"
            body = json.dumps(template, separators=(",", ":"))
            out.write(f"{stripe_signature(SECRET, body, timestamp)}\t{body}\n")


def wrk(path: str, events: Path, seconds: int, connections: int, threads: int) -> dict:
    env = {**os.environ, "PAYDESK_BENCH_EVENTS": str(events),
           "PAYDESK_BENCH_THREADS": str(threads)}
    result = subprocess.run(
        ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency",
         "-s", str(LUA), f"http://127.0.0.1:{PORT}{path}"],
        env=env, capture_output=True, text=True, check=True,
    )
    out = result.stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    wrapped = int(re.search(r"WRAPPED (\d+)", out).group(1))
    non2xx = int(re.search(r"NON2XX (\d+)", out).group(1))
    errors = re.search(r"Socket errors:.*", out)
    if wrapped:
        fail(f"{path}: ran out of distinct events ({wrapped} wraps): raise --events")
    if non2xx or errors:
        fail(f"{path}: {non2xx} non-2xx answers, {errors.group(0) if errors else ''}\n{out}")
    return {"rate": rate, "raw": out}


def open_loop(path: str, events: Path, rate: float, seconds: int, workers: int = 16) -> dict:
    """Sends `rate` requests/s for `seconds`, each at its scheduled time; returns latencies
    measured from the scheduled time (coordinated omission corrected)."""
    lines = events.read_text().splitlines()
    total = int(rate * seconds)
    if total > len(lines):
        fail(f"open loop needs {total} events, have {len(lines)}")
    interval = 1.0 / rate
    start = time.perf_counter() + 0.2
    latencies: list[float] = []
    statuses: list[int] = []
    lock = threading.Lock()

    def worker(k: int) -> None:
        mine_lat, mine_status = [], []
        for i in range(k, total, workers):
            scheduled = start + i * interval
            delay = scheduled - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            signature, body = lines[i].split("\t", 1)
            conn = http.client.HTTPConnection("127.0.0.1", PORT, timeout=10)
            conn.request("POST", path, body=body, headers={
                "Content-Type": "application/json", "Stripe-Signature": signature})
            response = conn.getresponse()
            response.read()
            conn.close()
            mine_lat.append(time.perf_counter() - scheduled)
            mine_status.append(response.status)
        with lock:
            latencies.extend(mine_lat)
            statuses.extend(mine_status)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    bad = sum(1 for s in statuses if not 200 <= s < 300)
    if bad:
        fail(f"{path}: {bad} non-2xx answers in the open-loop run")
    cuts = quantiles(latencies, n=100)
    return {"rate": rate, "achieved": len(latencies) / elapsed,
            "p50_ms": cuts[49] * 1000, "p99_ms": cuts[98] * 1000}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--events", type=int, default=40000, help="distinct events per run")
    args = parser.parse_args()

    if not shutil.which("wrk"):
        fail("wrk is not installed: apt-get install -y wrk")
    admin_url, database_url = postgres_urls(BENCH_DB)
    broker_url = os.environ.get("CELERY_BROKER_URL", "redis://127.0.0.1:6379/0")
    if not broker_url.startswith("redis"):
        fail("CELERY_BROKER_URL must name Redis: the benchmark measures the production stack")

    database_recreate(admin_url, BENCH_DB)
    env = production_env(database_url=database_url, broker_url=broker_url, webhook_secret=SECRET,
                         CELERY_TASK_DEFAULT_QUEUE=QUEUE, PAYDESK_BENCH_VIEWS="true")
    py = sys.executable
    subprocess.run([py, "manage.py", "migrate", "-v0"], cwd=REPO, env=env, check=True)

    work = Path(tempfile.mkdtemp(prefix="paydesk-bench-"))
    # gunicorn writes its (scrubbed) access log as production does; to a file, not the terminal.
    log_dir = REPO / "var" / "bench"
    log_dir.mkdir(parents=True, exist_ok=True)
    server = start(
        [str(Path(py).with_name("gunicorn")), "config.wsgi:application", "--workers", "2",
         "--worker-class", "sync", "--bind", f"127.0.0.1:{PORT}", "--log-level", "warning"],
        env=env, log=log_dir / "webhook_ingest-gunicorn.log",
    )
    try:
        wait_http(PORT, "/healthz")
        results: dict[str, dict] = {}
        for name, path in (("floor", "/bench/insert-only/"), ("webhook", "/webhooks/stripe/")):
            warm = work / f"{name}-warm.txt"
            write_events(warm, 10000, f"{name}warm")
            wrk(path, warm, 2, args.connections, args.threads)
            peak_events = work / f"{name}-peak.txt"
            write_events(peak_events, args.events, f"{name}peak")
            peak = wrk(path, peak_events, args.seconds, args.connections, args.threads)
            half = peak["rate"] / 2
            half_events = work / f"{name}-half.txt"
            write_events(half_events, int(half * args.seconds) + 10, f"{name}half")
            latency = open_loop(path, half_events, half, args.seconds)
            results[name] = {"peak_rps": round(peak["rate"], 1), **{
                k: round(v, 2) for k, v in latency.items()}}
            print(f"{name}: peak {peak['rate']:.0f} req/s; at {half:.0f} req/s "
                  f"p50 {latency['p50_ms']:.2f} ms, p99 {latency['p99_ms']:.2f} ms")
        ratio = results["webhook"]["peak_rps"] / results["floor"]["peak_rps"]
        summary = {
            "machine": machine(),
            "gunicorn": "2 sync workers", "wrk": f"-t{args.threads} -c{args.connections} "
            f"-d{args.seconds}s", "results": results, "ratio_webhook_to_floor": round(ratio, 3),
        }
        print(json.dumps(summary, indent=2))
        out = REPO / "var" / "bench" / "webhook_ingest.json"
        results_write(out, summary)
        print(f"ratio webhook/floor: {ratio:.2f}; results in {out.relative_to(REPO)}")
    finally:
        stop(server)
        shutil.rmtree(work, ignore_errors=True)
        subprocess.run(["redis-cli", "-u", broker_url, "DEL", QUEUE], capture_output=True)
        psql(admin_url, f"DROP DATABASE IF EXISTS {BENCH_DB}")


if __name__ == "__main__":
    main()
