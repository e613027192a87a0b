"""Guarantees under concurrency, proven on PostgreSQL with real threads and real processes."""

import os
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection

from payments import gateway
from payments.models import Payment
from payments.services import payment_start
from tests.conftest import REPO_ROOT, database_url_for
from tests.factories import make_order

pytestmark = pytest.mark.django_db(transaction=True)


def intents_at_stripe_for(order) -> list[str]:
    raw = gateway.client().v1.payment_intents.list(params={"limit": 100})
    return [
        pi.id
        for pi in raw.data
        if pi.to_dict(recursive=True)["metadata"].get("order_number") == order.number
    ]


def test_twenty_concurrent_payment_starts_leave_exactly_one_intent(sandbox):
    if connection.vendor != "postgresql":
        pytest.fail("concurrency guarantees are proven on PostgreSQL: set DATABASE_URL")
    order = make_order()
    barrier = threading.Barrier(20)

    def start(_):
        barrier.wait()
        try:
            return payment_start(order=order).stripe_id
        finally:
            connection.close()

    with ThreadPoolExecutor(20) as pool:
        intent_ids = set(pool.map(start, range(20)))

    assert len(intent_ids) == 1
    assert Payment.objects.filter(order=order).count() == 1
    assert intents_at_stripe_for(order) == list(intent_ids)


def test_payment_start_from_several_processes_leaves_exactly_one_intent(sandbox):
    """The same guarantee across processes: nothing relies on in-process state."""
    order = make_order()
    script = (
        "import django; django.setup()\n"
        "from orders.models import Order\n"
        "from payments.services import payment_start\n"
        f"print(payment_start(order=Order.objects.get(pk={order.pk})).stripe_id)\n"
    )
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": database_url_for(connection.settings_dict),
        "STRIPE_API_BASE": sandbox.url,
        "STRIPE_SECRET_KEY": gateway.SANDBOX_TEST_KEY,
    }
    processes = [
        subprocess.Popen([sys.executable, "-c", script], cwd=REPO_ROOT, env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(4)
    ]
    outputs = [p.communicate(timeout=120) for p in processes]

    assert [p.returncode for p in processes] == [0] * 4, [err for _, err in outputs]
    intent_ids = {out.strip().splitlines()[-1] for out, _ in outputs}
    assert len(intent_ids) == 1
    assert Payment.objects.filter(order=order).count() == 1
    assert intents_at_stripe_for(order) == list(intent_ids)
