"""POST /webhooks/stripe/ and event processing, with real signatures, the real sandbox, real
PostgreSQL and (for delivery-order tests) a real Celery worker."""

import hashlib
import hmac
import json
import os
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from urllib.request import Request, urlopen

import pytest
from django.conf import settings
from django.db import connection
from django.utils import timezone

from orders.models import Order
from payments import gateway
from payments.models import Payment, PaymentEvent, WebhookEvent
from payments.services import payment_start
from payments.webhooks.ingest import STALE_PENDING
from payments.webhooks.processing import webhook_event_process, webhook_events_retry_due
from payments.webhooks.views import BAD_PAYLOAD, BAD_SIGNATURE
from tests.conftest import REPO_ROOT, wait_for
from tests.factories import make_order

WEBHOOK_PATH = "/webhooks/stripe/"
RETURN_URL = "http://testserver/checkout/return/"


def signed(payload: bytes, secret: str, *, timestamp: int | None = None, extra_v1=()) -> str:
    """A Stripe-Signature header for `payload`, as Stripe computes it."""
    t = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"{t}.".encode() + payload, hashlib.sha256).hexdigest()
    return ",".join([f"t={t}", *(f"v1={v}" for v in extra_v1), f"v1={digest}"])


def event_body(event_id="evt_test_1", event_type="payment_intent.succeeded", obj=None) -> bytes:
    obj = obj or {"id": "pi_unknown", "object": "payment_intent"}
    return json.dumps(
        {"id": event_id, "object": "event", "type": event_type, "data": {"object": obj}}
    ).encode()


def post(client, body: bytes, signature: str | None):
    headers = {"HTTP_STRIPE_SIGNATURE": signature} if signature is not None else {}
    return client.post(WEBHOOK_PATH, data=body, content_type="application/json", **headers)


# --- The view: verify, store once, enqueue on commit ----------------------------------------


@pytest.mark.django_db
def test_valid_event_is_stored_and_processing_enqueued_on_commit(
    client, settings, django_capture_on_commit_callbacks
):
    body = event_body()
    with django_capture_on_commit_callbacks() as callbacks:
        response = post(client, body, signed(body, settings.STRIPE_WEBHOOK_SECRET))

    assert response.status_code == 200
    stored = WebhookEvent.objects.get()
    assert (stored.stripe_id, stored.type, stored.status) == (
        "evt_test_1", "payment_intent.succeeded", WebhookEvent.Status.PENDING
    )
    assert len(callbacks) == 1


@pytest.mark.django_db
def test_any_of_several_v1_signatures_may_match(client, settings):
    body = event_body()
    header = signed(body, settings.STRIPE_WEBHOOK_SECRET, extra_v1=["0" * 64])

    assert post(client, body, header).status_code == 200


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("wrong secret", BAD_SIGNATURE),
        ("stale timestamp", BAD_SIGNATURE),
        ("no header", BAD_SIGNATURE),
        ("tampered body", BAD_SIGNATURE),
        ("malformed json", BAD_PAYLOAD),
        ("json but not an event", BAD_PAYLOAD),
    ],
)
def test_bad_deliveries_are_rejected_with_400_and_store_nothing(client, settings, case, expected):
    secret = settings.STRIPE_WEBHOOK_SECRET
    body = event_body()
    header = signed(body, secret)
    if case == "wrong secret":
        header = signed(body, "whsec_someone_else")
    elif case == "stale timestamp":
        stale = int(time.time()) - settings.STRIPE_WEBHOOK_TOLERANCE - 1
        header = signed(body, secret, timestamp=stale)
    elif case == "no header":
        header = None
    elif case == "tampered body":
        body = body.replace(b"evt_test_1", b"evt_test_2")
    elif case == "malformed json":
        body = b'{"id": "evt_1", "type": '
        header = signed(body, secret)
    elif case == "json but not an event":
        body = b'["not", "an", "event"]'
        header = signed(body, secret)

    response = post(client, body, header)

    assert response.status_code == 400
    assert response.json() == {"error": expected}
    assert not WebhookEvent.objects.exists()


@pytest.mark.django_db
def test_get_is_not_allowed(client):
    assert client.get(WEBHOOK_PATH).status_code == 405


@pytest.mark.django_db(transaction=True)
def test_same_event_delivered_five_times_concurrently_takes_effect_once(sandbox, live_server):
    order = make_order(unit_amount=4200)
    payment = payment_start(order=order)
    intent = gateway.payment_intent_confirm(
        payment.stripe_id, payment_method="pm_card_visa", return_url=RETURN_URL,
        idempotency_key="test-confirm",
    )
    body = event_body("evt_concurrent", "payment_intent.succeeded", intent.raw)
    header = signed(body, sandbox.webhook_secret)
    barrier = threading.Barrier(5)

    def deliver(_):
        barrier.wait()
        request = Request(live_server.url + WEBHOOK_PATH, data=body, method="POST",
                          headers={"Stripe-Signature": header,
                                   "Content-Type": "application/json"})
        with urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())

    with ThreadPoolExecutor(5) as pool:
        answers = list(pool.map(deliver, range(5)))

    assert [status for status, _ in answers] == [200] * 5
    assert sum(1 for _, body in answers if body.get("duplicate")) == 4
    stored = WebhookEvent.objects.get(stripe_id="evt_concurrent")

    # Processing the one stored event five times at once applies it once: the others find it
    # applied, or being applied by another worker, and leave it alone.
    def process(_):
        try:
            return webhook_event_process(event_id=stored.pk).status
        finally:
            connection.close()

    with ThreadPoolExecutor(5) as pool:
        statuses = list(pool.map(process, range(5)))

    assert set(statuses) <= {WebhookEvent.Status.PENDING, WebhookEvent.Status.PROCESSED}
    # The view also handed it to the suite's worker, if one is running: whoever got it first.
    wait_for(lambda: WebhookEvent.objects.get(pk=stored.pk).status == "processed",
             what="the event to be applied")
    stored.refresh_from_db()
    assert stored.attempts == 1
    payment.refresh_from_db()
    assert payment.status == "succeeded" and payment.amount_received == 4200
    assert payment.events.filter(kind=PaymentEvent.Kind.SUCCEEDED).count() == 1
    assert Order.objects.get(pk=order.pk).status == Order.Status.PAID


# --- Delivery order: the sandbox delivers newest first, a real worker processes --------------


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_events_delivered_in_reverse_order_leave_the_payment_equal_to_stripe(
    sandbox, live_server, celery_worker
):
    sandbox.configure_webhooks(
        [live_server.url + WEBHOOK_PATH], mode="reverse", reorder_window=60
    )
    order = make_order(unit_amount=3100)
    payment = payment_start(order=order)
    # Drive the intent at Stripe only: the local mirror learns everything from webhooks.
    with pytest.raises(gateway.CardDeclined):
        gateway.payment_intent_confirm(
            payment.stripe_id, payment_method="pm_card_visa_chargeDeclinedInsufficientFunds",
            return_url=RETURN_URL, idempotency_key="test-confirm-1",
        )
    gateway.payment_intent_confirm(
        payment.stripe_id, payment_method="pm_card_visa", return_url=RETURN_URL,
        idempotency_key="test-confirm-2",
    )

    sandbox.app.dispatcher.flush()
    log = sandbox.wait_for_webhooks_idle(timeout=20)
    delivered = [r["event_type"] for r in log if r["ok"]]
    assert delivered.index("payment_intent.succeeded") < delivered.index(
        "payment_intent.payment_failed"
    )
    wait_for(
        lambda: not WebhookEvent.objects.filter(status=WebhookEvent.Status.PENDING).exists()
        and WebhookEvent.objects.count() == len(delivered),
        timeout=30,
        what="the worker to process every delivered event",
    )

    stripe_now = gateway.payment_intent_retrieve(payment.stripe_id)
    payment.refresh_from_db()
    assert not WebhookEvent.objects.filter(status=WebhookEvent.Status.FAILED).exists()
    assert payment.status == stripe_now.status == "succeeded"
    assert payment.amount_received == stripe_now.amount_received == 3100
    assert payment.stripe_charge_id == stripe_now.charge_id
    assert payment.stripe_object["status"] == "succeeded"
    assert payment.events.filter(kind=PaymentEvent.Kind.SUCCEEDED).count() == 1
    assert Order.objects.get(pk=order.pk).status == Order.Status.PAID


# --- Failures are recorded and retried -------------------------------------------------------


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_processing_error_is_recorded_and_retried_with_backoff(sandbox, celery_worker):
    payment = payment_start(order=make_order())
    gateway.payment_intent_confirm(
        payment.stripe_id, payment_method="pm_card_visa", return_url=RETURN_URL,
        idempotency_key="test-confirm",
    )
    event = WebhookEvent.objects.create(
        stripe_id="evt_retry",
        type="payment_intent.succeeded",
        payload=json.loads(event_body("evt_retry", obj={"id": payment.stripe_id})),
    )
    # Stripe answers 500 to every try the SDK makes (1 + its network retries).
    sandbox.inject_fault(
        "500", count=1 + settings.STRIPE_MAX_NETWORK_RETRIES, path="/v1/payment_intents"
    )

    failed = webhook_event_process(event_id=event.pk)

    assert failed.status == WebhookEvent.Status.FAILED
    assert failed.attempts == 1
    assert failed.last_error.startswith("GatewayUnavailable")
    assert failed.next_attempt_at > timezone.now()
    assert Payment.objects.get(pk=payment.pk).status == "requires_payment_method"
    assert webhook_events_retry_due() == 0  # not due yet

    WebhookEvent.objects.filter(pk=event.pk).update(
        next_attempt_at=timezone.now() - timedelta(seconds=1)
    )
    assert webhook_events_retry_due() == 1  # claimed, and enqueued for the worker on commit

    wait_for(
        lambda: WebhookEvent.objects.get(pk=event.pk).status == WebhookEvent.Status.PROCESSED,
        what="the worker to reprocess the event",
    )
    event.refresh_from_db()
    assert event.attempts == 2 and event.last_error == ""
    assert Payment.objects.get(pk=payment.pk).status == "succeeded"


@pytest.mark.django_db
def test_event_for_an_unknown_payment_is_ignored_with_the_reason(sandbox):
    event = WebhookEvent.objects.create(
        stripe_id="evt_other", type="payment_intent.succeeded",
        payload=json.loads(event_body("evt_other")),
    )

    processed = webhook_event_process(event_id=event.pk)

    assert processed.status == WebhookEvent.Status.IGNORED
    assert "pi_unknown" in processed.last_error


@pytest.mark.django_db
def test_unhandled_event_type_is_ignored(sandbox):
    event = WebhookEvent.objects.create(
        stripe_id="evt_customer", type="customer.updated",
        payload=json.loads(event_body("evt_customer", "customer.updated")),
    )

    assert webhook_event_process(event_id=event.pk).status == WebhookEvent.Status.IGNORED


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_sweeper_enqueues_a_pending_event_whose_enqueue_was_lost(sandbox, celery_worker):
    payment = payment_start(order=make_order())
    gateway.payment_intent_confirm(
        payment.stripe_id, payment_method="pm_card_visa", return_url=RETURN_URL,
        idempotency_key="test-confirm",
    )
    # Stored by the view, but the broker never got the task (it was down, or a worker died).
    lost = WebhookEvent.objects.create(
        stripe_id="evt_lost", type="payment_intent.succeeded",
        payload=json.loads(event_body("evt_lost", obj={"id": payment.stripe_id})),
    )
    fresh = WebhookEvent.objects.create(
        stripe_id="evt_fresh", type="payment_intent.succeeded",
        payload=json.loads(event_body("evt_fresh", obj={"id": payment.stripe_id})),
    )
    WebhookEvent.objects.filter(pk=lost.pk).update(
        next_attempt_at=timezone.now() - timedelta(seconds=1)
    )
    WebhookEvent.objects.filter(pk=fresh.pk).update(next_attempt_at=timezone.now() + STALE_PENDING)

    assert webhook_events_retry_due() == 1  # the fresh one may still be on its way
    assert webhook_events_retry_due() == 0  # claimed events are not swept twice

    wait_for(
        lambda: WebhookEvent.objects.get(pk=lost.pk).status == WebhookEvent.Status.PROCESSED,
        what="the worker to process the swept event",
    )
    # The fresh event is waiting in the same lane: the drain that the sweep rang applies it too
    # (right after the swept one), though it is not due for the sweeper yet.
    wait_for(
        lambda: WebhookEvent.objects.get(pk=fresh.pk).status == WebhookEvent.Status.PROCESSED,
        what="the same drain to apply the fresh event",
    )
    assert Payment.objects.get(pk=payment.pk).status == "succeeded"


def test_ingest_statement_also_works_on_sqlite_the_make_run_default(tmp_path):
    """`make run` stores webhooks in SQLite; the raw upsert has a statement for it too."""
    script = (
        "import django; django.setup()\n"
        "from django.core.management import call_command\n"
        "call_command('migrate', verbosity=0)\n"
        "from payments.webhooks.ingest import webhook_event_store as store\n"
        "from payments.models import WebhookEvent\n"
        "body = b'{\"id\": \"evt_1\", \"type\": \"charge.succeeded\", \"data\": {}}'\n"
        "kw = dict(event_type='charge.succeeded', subject='payment_intent:pi_1', body=body)\n"
        "print(store(event_id='evt_1', **kw).id)\n"
        "print(store(event_id='evt_1', **kw))\n"
        "event = WebhookEvent.objects.get()\n"
        "print(event.payload['type'], event.subject, event.status)\n"
    )
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'paydesk.sqlite3'}",
    }
    result = subprocess.run([sys.executable, "-c", script], cwd=REPO_ROOT, env=env,
                            capture_output=True, text=True, timeout=120, check=True)

    assert result.stdout.split() == [
        "1", "None", "charge.succeeded", "payment_intent:pi_1", "pending"
    ]
