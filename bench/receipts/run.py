"""bench/receipts: receipts rendered (WeasyPrint) and e-mailed per second by ONE pdf worker.

Starts, with Paydesk's production settings (DEBUG off) on a fresh PostgreSQL database
(paydesk_bench_receipts) and Redis (--redis-url, flushed): one Celery worker consuming only the
`pdf` queue (solo pool: one process, as compose's worker-pdf runs). Then issues N receipts the
way payments do (receipts.services.receipt_issue inside the transaction that records the
payment's success; each one's delivery task is published on commit), and waits until the worker
has rendered and e-mailed every one. E-mail goes through Django's file backend into a temporary
folder (real messages with the PDF attached, no network).

Reports: receipts per second from the first issue to the last e-mail sent (the outcome a
customer waits for), and the render time of each PDF (median, p99, max) as the worker logs it
("rendered R-... in X ms": WeasyPrint only, without the database and the e-mail).

Usage: .venv/bin/python bench/receipts/run.py [--receipts 1000] [--lines 3]
       [--redis-url redis://127.0.0.1:6379/7] [--json FILE]
Goal (issue 11): median render under 100 ms; 1,000 receipts in under 3 minutes per worker.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.common import (
    django_setup_migrated,
    machine,
    percentile,
    results_write,
    start,
    stop,
    worker_bench_env,
)

DATABASE = "paydesk_bench_receipts"
RENDERED = re.compile(r"rendered (R-\d{4}-\d{6}) in ([\d.]+) ms")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--receipts", type=int, default=1000)
    parser.add_argument("--lines", type=int, default=3, help="order lines per receipt")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/7")
    parser.add_argument("--timeout", type=float, default=900.0)
    parser.add_argument("--json", type=Path)
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    env, work = worker_bench_env(database=DATABASE, redis_url=args.redis_url,
                                 prefix="paydesk-bench-receipts-")
    django_setup_migrated(env)
    from django.contrib.auth import get_user_model
    from django.db import transaction

    from orders.models import Price, Product
    from orders.services import order_create
    from payments.models import Payment
    from receipts.models import Receipt
    from receipts.services import receipt_issue

    customer = get_user_model().objects.create_user(
        "bench", email="bench@example.com", first_name="Bench", last_name="Customer")
    prices = [
        Price.objects.create(
            product=Product.objects.create(name=f"Product {n}", slug=f"product-{n}",
                                           tax_rate="20.00" if n % 2 else "0"),
            currency="USD", unit_amount=1000 + 250 * n)
        for n in range(args.lines)
    ]
    orders = [order_create(customer=customer, items=[(price, 1 + n % 3) for price in prices])
              for n in range(args.receipts)]
    payments = [
        Payment.objects.create(
            order=order, customer=customer, idempotency_key=f"bench:{order.pk}",
            stripe_id=f"pi_bench_{order.pk}",
            amount=order.total_amount, currency=order.currency, status="succeeded",
            amount_received=order.total_amount, card_brand="visa", card_last4="4242")
        for order in orders
    ]

    log = work / "worker.log"
    worker = start(
        [str(Path(sys.executable).parent / "celery"), "-A", "config", "worker", "--pool", "solo",
         "--queues", env.get("CELERY_PDF_QUEUE", "pdf"), "--without-gossip", "--without-mingle",
         "--without-heartbeat", "--loglevel", "INFO"],
        env=env, log=log,
    )
    try:
        deadline = time.monotonic() + 60
        while " ready." not in log.read_text(errors="replace"):
            if worker.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the worker did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.2)
        started = time.monotonic()
        for payment in payments:
            with transaction.atomic():
                receipt_issue(payment=payment)
        issued = time.monotonic() - started
        deadline = time.monotonic() + args.timeout
        while Receipt.objects.filter(email_status="sent").count() < args.receipts:
            if time.monotonic() > deadline or worker.poll() is not None:
                raise SystemExit(f"not all sent in {args.timeout:.0f} s:\n"
                                 f"{log.read_text()[-3000:]}")
            time.sleep(0.2)
        elapsed = time.monotonic() - started
    finally:
        stop(worker)

    renders = [float(ms) for _, ms in RENDERED.findall(log.read_text(errors="replace"))]
    mails = len(list((work / "mail").iterdir())) if (work / "mail").exists() else 0
    result = {
        "receipts": args.receipts,
        "lines_per_receipt": args.lines,
        "issue_seconds": round(issued, 2),
        "all_sent_seconds": round(elapsed, 1),
        "receipts_per_second": round(args.receipts / elapsed, 1),
        "render_ms_median": round(statistics.median(renders), 1),
        "render_ms_p99": round(percentile(renders, 0.99), 1),
        "render_ms_max": round(max(renders), 1),
        "renders_logged": len(renders),
        "mail_files": mails,  # the file backend may write two messages of one instant to one file
        "machine": machine(),
    }
    print(json.dumps(result, indent=2))
    if args.json:
        results_write(args.json, result)


if __name__ == "__main__":
    main()
