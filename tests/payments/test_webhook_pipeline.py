"""The webhook pipeline under traffic and faults: input that can never be stored, events applied
per subject with one Stripe read, permanent errors, the webhook that overtakes payment_start,
queues with a real worker, and a worker killed half-way."""

import json
import os
import signal
import threading
import time
from datetime import timedelta

import pytest
from django.conf import settings as django_settings
from django.db import connection
from django.utils import timezone

from config.celery import app as celery_app
from orders.models import Order
from payments import gateway
from payments.models import Payment, PaymentEvent, WebhookEvent, WebhookLane
from payments.services import _lock, payment_start
from payments.webhooks import handlers, ingest, processing
from payments.webhooks.ingest import (
    DRAIN_TASK,
    NOT_HANDLED,
    STALE_PENDING,
    drain_publish,
    lane_of,
    lane_ring,
    subject_of,
    webhook_event_store,
)
from payments.webhooks.processing import (
    GAVE_UP,
    MAX_ATTEMPTS,
    webhook_event_process,
    webhook_events_retry_due,
    webhook_lane_drain,
)
from payments.webhooks.views import NUL_CHARACTER, TOO_DEEP
from tests.conftest import HOLD, start_celery_worker, wait_for
from tests.factories import make_order
from tests.payments.test_webhooks import RETURN_URL, event_body, post, signed


def confirmed_at_stripe(payment: Payment, card: str = "pm_card_visa") -> gateway.PaymentIntentData:
    """Confirms the intent at Stripe only, as Stripe.js would in the browser: Paydesk learns
    the outcome from events."""
    return gateway.payment_intent_confirm(
        payment.stripe_id, payment_method=card, return_url=RETURN_URL,
        idempotency_key=f"test-confirm-{payment.pk}",
    )


def store(event_id: str, event_type: str, obj: dict) -> WebhookEvent:
    body = json.dumps(
        {"id": event_id, "object": "event", "type": event_type, "data": {"object": obj}}
    ).encode()
    stored = webhook_event_store(
        event_id=event_id, event_type=event_type, subject=subject_of(event_type, obj), body=body
    )
    return WebhookEvent.objects.get(pk=stored.id)


class ReadCounter:
    """Counts PaymentIntent reads from Stripe while still making them (a spy, not a mock)."""

    def __init__(self, monkeypatch):
        self.intent_ids: list[str] = []
        real = gateway.payment_intent_retrieve

        def counting(intent_id):
            self.intent_ids.append(intent_id)
            return real(intent_id)

        monkeypatch.setattr(gateway, "payment_intent_retrieve", counting)


# --- Finding 7: what can never be stored is a 400, not a 500 that Stripe retries for days ----


@pytest.mark.django_db
def test_nul_character_in_a_string_is_refused_and_nothing_stored(client, settings):
    body = event_body(obj={"id": "pi_1", "object": "payment_intent", "description": "a\u0000b"})
    assert b"\\u0000" in body

    response = post(client, body, signed(body, settings.STRIPE_WEBHOOK_SECRET))

    assert response.status_code == 400
    assert response.json() == {"error": NUL_CHARACTER}
    assert not WebhookEvent.objects.exists()


@pytest.mark.django_db
def test_nul_character_in_a_key_is_refused(client, settings):
    body = event_body(obj={"id": "pi_1", "metadata": {"k\u0000": "v"}})

    response = post(client, body, signed(body, settings.STRIPE_WEBHOOK_SECRET))

    assert (response.status_code, response.json()) == (400, {"error": NUL_CHARACTER})


@pytest.mark.django_db
@pytest.mark.parametrize("depth", [100_000, 40])
def test_absurd_nesting_is_refused_and_nothing_stored(client, settings, depth):
    nested = "[" * depth + "]" * depth
    body = (
        '{"id": "evt_deep", "object": "event", "type": "payment_intent.succeeded",'
        f' "data": {{"object": {{"id": "pi_1", "x": {nested}}}}}}}'
    ).encode()

    response = post(client, body, signed(body, settings.STRIPE_WEBHOOK_SECRET))

    assert (response.status_code, response.json()) == (400, {"error": TOO_DEEP})
    assert not WebhookEvent.objects.exists()


@pytest.mark.django_db
def test_timestamp_beyond_the_tolerance_in_the_future_is_refused(client, settings):
    body = event_body()
    future = int(time.time()) + settings.STRIPE_WEBHOOK_TOLERANCE + 3600

    response = post(client, body, signed(body, settings.STRIPE_WEBHOOK_SECRET, timestamp=future))

    assert response.status_code == 400
    assert not WebhookEvent.objects.exists()


@pytest.mark.django_db
def test_timestamp_slightly_ahead_within_the_tolerance_is_accepted(client, settings):
    body = event_body()
    ahead = int(time.time()) + 30  # clocks drift: Stripe's and ours need not agree exactly

    assert post(client, body, signed(body, settings.STRIPE_WEBHOOK_SECRET, timestamp=ahead)
                ).status_code == 200


def test_webhook_verify_takes_an_injected_clock(settings):
    body = event_body()
    header = signed(body, settings.STRIPE_WEBHOOK_SECRET, timestamp=1_000_000)

    assert gateway.webhook_verify(body, header, now=1_000_000)["id"] == "evt_test_1"
    with pytest.raises(gateway.SignatureInvalid):
        gateway.webhook_verify(
            body, header, now=1_000_000 - settings.STRIPE_WEBHOOK_TOLERANCE - 1
        )


@pytest.mark.django_db
def test_event_type_paydesk_does_not_act_on_is_stored_ignored_and_not_enqueued(
    client, settings, django_capture_on_commit_callbacks
):
    body = event_body("evt_customer", "customer.updated", {"id": "cus_1", "object": "customer"})
    with django_capture_on_commit_callbacks() as callbacks:
        response = post(client, body, signed(body, settings.STRIPE_WEBHOOK_SECRET))

    assert response.status_code == 200
    event = WebhookEvent.objects.get()
    assert (event.status, event.last_error, event.subject) == ("ignored", NOT_HANDLED, "")
    assert callbacks == []


@pytest.mark.django_db
def test_stored_event_names_its_subject_and_is_handed_over_on_commit(
    client, settings, django_capture_on_commit_callbacks
):
    charge = {"id": "ch_1", "object": "charge", "payment_intent": "pi_9"}
    body = event_body("evt_charge", "charge.succeeded", charge)
    with django_capture_on_commit_callbacks() as callbacks:
        post(client, body, signed(body, settings.STRIPE_WEBHOOK_SECRET))

    event = WebhookEvent.objects.get()
    assert (event.subject, event.status) == ("payment_intent:pi_9", "pending")
    assert event.lane == lane_of("payment_intent:pi_9")
    assert event.next_attempt_at == event.received_at + STALE_PENDING
    assert len(callbacks) == 1


@pytest.mark.parametrize(
    ("event_type", "obj", "subject"),
    [
        ("payment_intent.succeeded", {"id": "pi_1"}, "payment_intent:pi_1"),
        ("charge.succeeded", {"id": "ch_1", "payment_intent": "pi_1"}, "payment_intent:pi_1"),
        ("charge.refunded", {"id": "ch_1", "payment_intent": {"id": "pi_1"}},
         "payment_intent:pi_1"),
        ("charge.succeeded", {"id": "ch_1", "payment_intent": None}, "charge:ch_1"),
        ("charge.dispute.created", {"id": "dp_1", "payment_intent": "pi_1"}, "dispute:dp_1"),
        ("charge.refund.updated", {"id": "re_1"}, "refund:re_1"),
        ("refund.created", {"id": "re_1"}, "refund:re_1"),
        ("setup_intent.succeeded", {"id": "seti_1"}, "setup_intent:seti_1"),
        ("customer.created", {"id": "cus_1"}, ""),
        ("payment_intent.succeeded", {"no": "id"}, ""),
        ("payment_intent.succeeded", "not an object", ""),
    ],
)
def test_subject_of(event_type, obj, subject):
    assert subject_of(event_type, obj) == subject


# --- Permanent errors stop retrying and show as failed -----------------------------------------


@pytest.mark.django_db
def test_an_object_stripe_does_not_have_fails_permanently_and_is_not_swept(sandbox):
    event = store("evt_missing", "refund.updated", {"id": "re_missing", "payment_intent": ""})

    processed = webhook_event_process(event_id=event.pk)

    assert processed.status == WebhookEvent.Status.FAILED_PERMANENTLY
    assert "No such refund" in processed.last_error
    assert processed.next_attempt_at is None
    assert webhook_events_retry_due(now=timezone.now() + timedelta(days=30)) == 0


@pytest.mark.django_db
def test_retries_stop_after_the_last_backoff(sandbox):
    payment = payment_start(order=make_order())
    event = store("evt_flaky", "payment_intent.succeeded",
                  {"id": payment.stripe_id, "object": "payment_intent"})
    WebhookEvent.objects.filter(pk=event.pk).update(attempts=MAX_ATTEMPTS - 1, status="failed")
    sandbox.inject_fault("500", count=10, path="/v1/payment_intents")

    processed = webhook_event_process(event_id=event.pk)

    assert processed.status == WebhookEvent.Status.FAILED_PERMANENTLY
    assert processed.attempts == MAX_ATTEMPTS
    assert processed.last_error.startswith(GAVE_UP.format(attempts=MAX_ATTEMPTS))
    assert processed.next_attempt_at is None


# --- One Stripe read for every waiting event of one object ------------------------------------


@pytest.mark.django_db
def test_waiting_events_of_one_payment_are_applied_together_with_one_read(sandbox, monkeypatch):
    payment = payment_start(order=make_order(unit_amount=1500))
    intent = confirmed_at_stripe(payment)
    charge = {"id": intent.charge_id, "object": "charge", "payment_intent": intent.id}
    events = [
        store("evt_a", "payment_intent.created",
              {**intent.raw, "status": "requires_payment_method"}),
        store("evt_b", "charge.succeeded", charge),
        store("evt_c", "payment_intent.succeeded", intent.raw),
        store("evt_d", "charge.updated", charge),
    ]
    reads = ReadCounter(monkeypatch)

    first = webhook_event_process(event_id=events[2].pk)
    for event in events:  # the tasks of the others find nothing left to do
        webhook_event_process(event_id=event.pk)

    assert reads.intent_ids == [intent.id]
    assert first.status == WebhookEvent.Status.PROCESSED
    assert set(WebhookEvent.objects.values_list("status", "attempts")) == {("processed", 1)}
    payment.refresh_from_db()
    assert (payment.status, payment.amount_received) == ("succeeded", 1500)
    assert payment.events.filter(kind=PaymentEvent.Kind.SUCCEEDED).count() == 1


@pytest.mark.django_db
def test_events_of_other_payments_are_not_taken_into_the_group(sandbox, monkeypatch):
    one, two = (payment_start(order=make_order()) for _ in range(2))
    first = store("evt_one", "payment_intent.succeeded", confirmed_at_stripe(one).raw)
    second = store("evt_two", "payment_intent.succeeded", confirmed_at_stripe(two).raw)

    webhook_event_process(event_id=first.pk)

    second.refresh_from_db()
    assert second.status == WebhookEvent.Status.PENDING
    assert Payment.objects.get(pk=two.pk).status == "requires_payment_method"


@pytest.mark.django_db
def test_event_stored_before_subjects_existed_is_still_grouped(sandbox):
    payment = payment_start(order=make_order())
    intent = confirmed_at_stripe(payment)
    old = WebhookEvent.objects.create(
        stripe_id="evt_old", type="payment_intent.succeeded",
        payload=json.loads(event_body("evt_old", obj=intent.raw)),
    )

    assert webhook_event_process(event_id=old.pk).status == WebhookEvent.Status.PROCESSED
    assert WebhookEvent.objects.get(pk=old.pk).subject == f"payment_intent:{intent.id}"
    assert Payment.objects.get(pk=payment.pk).status == "succeeded"


# --- Finding 6: our own event overtakes payment_start ------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_event_that_overtakes_payment_start_waits_for_it_and_is_applied(sandbox):
    payment = payment_start(order=make_order(unit_amount=2100))
    intent = confirmed_at_stripe(payment)
    Payment.objects.filter(pk=payment.pk).update(stripe_id=None)
    event = store("evt_early", "payment_intent.succeeded", intent.raw)
    holding, release, result = threading.Event(), threading.Event(), []

    def payment_start_committing_late():
        # As payment_start does: the payment's lock is held while Stripe creates the intent,
        # and its id is committed after the webhook has already arrived.
        from django.db import transaction

        try:
            with transaction.atomic():
                _, locked = _lock(payment.pk)
                holding.set()
                release.wait(10)
                Payment.objects.filter(pk=locked.pk).update(stripe_id=intent.id)
        finally:
            connection.close()

    def process():
        try:
            result.append(webhook_event_process(event_id=event.pk).status)
        finally:
            connection.close()

    starter = threading.Thread(target=payment_start_committing_late)
    starter.start()
    holding.wait(10)
    worker = threading.Thread(target=process)
    worker.start()
    worker.join(0.5)
    assert worker.is_alive()  # waiting for the payment's lock, not ignoring the event
    release.set()
    starter.join(10)
    worker.join(10)

    assert result == [WebhookEvent.Status.PROCESSED]
    payment.refresh_from_db()
    assert (payment.stripe_id, payment.status) == (intent.id, "succeeded")
    assert Order.objects.get(pk=payment.order_id).status == Order.Status.PAID


@pytest.mark.django_db
def test_intent_whose_payment_start_was_lost_is_attached_from_its_metadata(sandbox):
    payment = payment_start(order=make_order(unit_amount=2100))
    intent = confirmed_at_stripe(payment)
    Payment.objects.filter(pk=payment.pk).update(stripe_id=None)  # the commit never happened
    charge = {"id": intent.charge_id, "object": "charge", "payment_intent": intent.id}
    event = store("evt_charge_first", "charge.succeeded", charge)

    assert webhook_event_process(event_id=event.pk).status == WebhookEvent.Status.PROCESSED
    payment.refresh_from_db()
    assert (payment.stripe_id, payment.status, payment.amount_received) == (
        intent.id, "succeeded", 2100
    )


@pytest.mark.django_db
def test_metadata_naming_a_payment_of_another_amount_is_not_attached(sandbox):
    payment = payment_start(order=make_order(unit_amount=2100))
    other = gateway.payment_intent_create(
        amount=999, currency="usd", customer=None, description="elsewhere",
        metadata={handlers.PAYMENT_ID_METADATA: str(payment.pk)}, idempotency_key="other",
    )
    Payment.objects.filter(pk=payment.pk).update(stripe_id=None)
    event = store("evt_other", "payment_intent.created", other.raw)

    assert webhook_event_process(event_id=event.pk).status == WebhookEvent.Status.IGNORED
    assert Payment.objects.get(pk=payment.pk).stripe_id is None


# --- The hand-off: one drain per lane, not one task per event ---------------------------------


@pytest.fixture
def published(monkeypatch):
    """Records the lanes whose drain was published (and still publishes them)."""
    lanes: list[int] = []
    real = ingest.drain_publish

    def recording(lane):
        lanes.append(lane)
        real(lane)

    monkeypatch.setattr(ingest, "drain_publish", recording)
    monkeypatch.setattr(processing, "drain_publish", recording)
    return lanes


@pytest.mark.django_db
def test_ringing_a_silent_lane_publishes_one_drain_until_the_drain_silences_it(published):
    lane_ring(3)
    lane_ring(3)
    lane_ring(3)
    assert published == [3]
    assert WebhookLane.objects.get(number=3).drain_requested

    webhook_lane_drain(lane=3)  # nothing waiting; it silenced the lane first
    lane_ring(3)

    assert published == [3, 3]


@pytest.mark.django_db
def test_a_burst_of_events_costs_one_drain_per_lane(
    client, settings, published, django_capture_on_commit_callbacks
):
    settings.PAYDESK_WEBHOOK_LANES = 2
    secret = settings.STRIPE_WEBHOOK_SECRET
    for n in range(30):
        body = event_body(f"evt_burst_{n}", obj={"id": f"pi_{n}", "object": "payment_intent"})
        with django_capture_on_commit_callbacks(execute=True):  # the view runs in autocommit
            assert post(client, body, signed(body, secret)).status_code == 200

    assert sorted(published) == sorted({lane_of(f"payment_intent:pi_{n}") for n in range(30)})
    assert set(WebhookEvent.objects.values_list("lane", flat=True)) == {0, 1}


@pytest.mark.django_db
def test_drain_applies_its_lane_with_one_read_per_payment(sandbox, settings, monkeypatch):
    settings.PAYDESK_WEBHOOK_LANES = 1
    payments = [payment_start(order=make_order(unit_amount=500 + n)) for n in range(3)]
    for payment in payments:
        intent = confirmed_at_stripe(payment)
        charge = {"id": intent.charge_id, "object": "charge", "payment_intent": intent.id}
        store(f"evt_pi_{payment.pk}", "payment_intent.succeeded", intent.raw)
        store(f"evt_ch_{payment.pk}", "charge.succeeded", charge)
    reads = ReadCounter(monkeypatch)

    assert webhook_lane_drain(lane=0) == 6

    assert sorted(reads.intent_ids) == sorted(p.stripe_id for p in payments)
    assert set(WebhookEvent.objects.values_list("status", flat=True)) == {"processed"}
    assert set(Payment.objects.values_list("status", flat=True)) == {"succeeded"}


@pytest.mark.django_db
def test_drain_stops_after_its_bound_and_rings_its_lane_again(
    sandbox, settings, monkeypatch, published
):
    settings.PAYDESK_WEBHOOK_LANES = 1
    monkeypatch.setattr(processing, "DRAIN_SUBJECTS", 2)
    payments = [payment_start(order=make_order()) for _ in range(3)]
    for payment in payments:
        store(f"evt_{payment.pk}", "payment_intent.succeeded", confirmed_at_stripe(payment).raw)

    assert webhook_lane_drain(lane=0) == 2
    assert published == [0]  # the rest is left to the next drain, not to this one
    assert webhook_lane_drain(lane=0) == 1
    assert published == [0]
    assert set(Payment.objects.values_list("status", flat=True)) == {"succeeded"}


@pytest.mark.django_db
def test_sweeper_drains_the_lanes_of_events_whose_drain_was_lost(
    sandbox, settings, published, django_capture_on_commit_callbacks
):
    settings.PAYDESK_WEBHOOK_LANES = 4
    payment = payment_start(order=make_order())
    event = store("evt_lost", "payment_intent.succeeded", confirmed_at_stripe(payment).raw)
    WebhookLane.objects.update_or_create(number=event.lane, defaults={"drain_requested": True})

    assert webhook_events_retry_due(now=timezone.now()) == 0  # not stale yet
    with django_capture_on_commit_callbacks(execute=True):
        assert webhook_events_retry_due(now=timezone.now() + STALE_PENDING) == 1

    assert published == [event.lane]  # although the lane was rung: its drain was the lost one
    webhook_lane_drain(lane=event.lane)
    assert Payment.objects.get(pk=payment.pk).status == "succeeded"


@pytest.mark.django_db
def test_lowering_the_number_of_lanes_moves_swept_events_into_range(
    sandbox, settings, published, django_capture_on_commit_callbacks
):
    settings.PAYDESK_WEBHOOK_LANES = 64
    payment = payment_start(order=make_order())
    event = store("evt_far", "payment_intent.succeeded", confirmed_at_stripe(payment).raw)
    WebhookEvent.objects.filter(pk=event.pk).update(lane=63)
    settings.PAYDESK_WEBHOOK_LANES = 2

    with django_capture_on_commit_callbacks(execute=True):
        webhook_events_retry_due(now=timezone.now() + STALE_PENDING)

    event.refresh_from_db()
    assert event.lane == lane_of(event.subject) < 2
    assert published == [event.lane]


# --- Queues -------------------------------------------------------------------------------------


def test_processing_is_routed_to_the_webhooks_queue_and_beat_jobs_are_not():
    route = celery_app.amqp.router.route
    queue = django_settings.CELERY_WEBHOOKS_QUEUE

    assert route({}, DRAIN_TASK)["queue"].name == queue
    for other in ("payments.tasks.webhook_events_retry_due",
                  "payments.tasks.payments_cancel_abandoned"):
        assert route({}, other)["queue"].name == django_settings.CELERY_TASK_DEFAULT_QUEUE


def _queue_length(name: str) -> int:
    with celery_app.connection_for_write() as conn:
        try:
            return conn.default_channel.queue_declare(queue=name, passive=True).message_count
        except conn.channel_errors:  # Redis drops a list once it is empty
            return 0


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_burst_of_webhook_tasks_does_not_starve_other_work(celery_worker, tmp_path):
    from django.contrib.auth import get_user_model

    from tests.support.tasks import record_username

    for _ in range(1500):  # each a real drain task, of a lane with nothing waiting
        drain_publish(0)
    user = get_user_model().objects.create(username="not-starved")
    marker = tmp_path / "marker"
    record_username.delay(user.pk, str(marker))

    wait_for(marker.exists, timeout=30, interval=0.01, what="the default-queue task")
    assert _queue_length(django_settings.CELERY_WEBHOOKS_QUEUE) > 0
    wait_for(lambda: _queue_length(django_settings.CELERY_WEBHOOKS_QUEUE) == 0, timeout=60,
             what="the burst to drain")


# --- Finding 1: processing keeps up while events keep arriving ---------------------------------
# A rate and a lag are speeds: bench/webhook_pipeline measures them (events applied per second
# under open-loop traffic, lag p99; docs/benchmarks.md). The suite proves the mechanisms that
# make them possible without timing anything: one drain per lane for a burst, the doorbell, the
# drain's bound, the sweeper, the webhooks queue of its own (above).


# --- A worker killed half-way: every event applied exactly once --------------------------------


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(p) for p in f.read().split()]
    except FileNotFoundError:
        return []


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("kill", ["pool child", "whole worker"])
def test_worker_killed_mid_processing_applies_every_event_exactly_once(
    sandbox, sandbox_server, tmp_path, kill
):
    payments = [payment_start(order=make_order(unit_amount=700 + n)) for n in range(6)]
    events = [
        store(f"evt_kill_{p.pk}", "payment_intent.succeeded", confirmed_at_stripe(p).raw)
        for p in payments
    ]
    # Stripe holds the first reads unanswered: the worker is killed while it waits on them.
    sandbox.inject_fault("slow", count=2, path="/v1/payment_intents/", delay=HOLD)
    worker = start_celery_worker(
        sandbox_server=sandbox_server, log_path=tmp_path / "worker.log", pool="prefork",
        concurrency=2,
    )
    try:
        for lane in {event.lane for event in events}:
            drain_publish(lane)
        wait_for(lambda: sandbox.held_requests() == 2, timeout=20,
                 what="the worker to be inside its Stripe reads")
        if kill == "pool child":
            for child in _children(worker.process.pid):
                os.kill(child, signal.SIGKILL)
            # The pool replaces its processes; acks_late + reject_on_worker_lost redeliver.
        else:
            os.killpg(worker.process.pid, signal.SIGKILL)
            worker.process.wait(10)
            worker = start_celery_worker(
                sandbox_server=sandbox_server, log_path=tmp_path / "worker-2.log",
                pool="prefork", concurrency=2,
            )
            # The killed worker's messages are gone with it; the sweeper hands them over again
            # once they are due (the clock is moved, not waited for).
            assert webhook_events_retry_due(now=timezone.now() + STALE_PENDING) >= 2
        wait_for(
            lambda: not WebhookEvent.objects.filter(status__in=["pending", "failed"]).exists(),
            timeout=60, what="every event to be applied",
        )
    finally:
        worker.stop()

    assert set(WebhookEvent.objects.values_list("status", flat=True)) == {"processed"}
    for payment in payments:
        payment.refresh_from_db()
        assert payment.status == "succeeded"
        assert payment.events.filter(kind=PaymentEvent.Kind.SUCCEEDED).count() == 1
        assert Order.objects.get(pk=payment.order_id).status == Order.Status.PAID


@pytest.mark.django_db
def test_refund_event_that_overtakes_the_payments_own_events_is_applied(sandbox):
    payment = payment_start(order=make_order(unit_amount=3000))
    intent = confirmed_at_stripe(payment)
    refund = gateway.client().v1.refunds.create(
        params={"payment_intent": intent.id, "amount": 1000}
    )
    early = store("evt_refund_first", "refund.created",
                  {"id": refund.id, "object": "refund", "payment_intent": intent.id})

    assert webhook_event_process(event_id=early.pk).status == WebhookEvent.Status.PROCESSED
    payment.refresh_from_db()
    assert (payment.status, payment.amount_received, payment.amount_refunded) == (
        "succeeded", 3000, 1000
    )
    assert Order.objects.get(pk=payment.order_id).status == Order.Status.PARTIALLY_REFUNDED
    kinds = list(payment.events.values_list("kind", flat=True))
    assert kinds.index("succeeded") < kinds.index("refund_succeeded")
