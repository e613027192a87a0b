"""Reconciliation: `manage.py reconcile` and the beat task re-read Stripe for non-final rows,
repair what Stripe settled and report the drift (issue 7: nothing is left pending because a
webhook was lost)."""

import os
import subprocess
import sys
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from io import StringIO

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.db import connection
from django.utils import timezone

from orders.models import Order
from payments import gateway
from payments.management.commands.reconcile import BAD_SINCE
from payments.models import Dispute, Payment, PaymentEvent
from payments.reconcile import reconcile, reconcile_stale
from payments.services import dispute_sync, refund_sync
from payments.tasks import payments_reconcile_stale
from tests.conftest import REPO_ROOT, database_url_for
from tests.payments.test_abandoned import authenticate_at_stripe, awaiting_3ds
from tests.payments.test_forward_only import dispute_of, paid_payment, submit_evidence

pytestmark = pytest.mark.django_db


def stranded(sandbox) -> Payment:
    """Succeeded at Stripe, `requires_action` here: its webhooks were lost."""
    payment = awaiting_3ds(sandbox)
    authenticate_at_stripe(payment)
    return payment


def status_of(payment: Payment) -> str:
    return Payment.objects.values_list("status", flat=True).get(pk=payment.pk)


def run(*args: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("reconcile", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_the_command_repairs_a_charge_whose_webhooks_were_lost(sandbox):
    payment = stranded(sandbox)

    out, err = run()

    assert out.splitlines() == [
        f"payment {payment.stripe_id}: requires_action -> succeeded",
        "checked 1 (payments 1, refunds 0, disputes 0), repaired 1, errors 0",
    ]
    assert err == ""
    payment.refresh_from_db()
    assert payment.status == Payment.Status.SUCCEEDED
    assert Order.objects.get(pk=payment.order_id).status == Order.Status.PAID
    assert payment.events.filter(kind=PaymentEvent.Kind.SUCCEEDED).count() == 1

    out, _ = run()
    assert out.splitlines() == [
        "checked 0 (payments 0, refunds 0, disputes 0), repaired 0, errors 0"
    ]


def test_refunds_and_disputes_left_behind_are_repaired(sandbox):
    refunded = paid_payment()
    refund = gateway.client().v1.refunds.create(
        params={"payment_intent": refunded.stripe_id, "amount": 700}
    )
    # The only read that arrived was taken before Stripe settled the refund.
    refund_sync(refund=replace(gateway.refund_retrieve(refund.id), status="pending"),
                source="webhook")
    disputed = paid_payment(card="pm_card_createDispute")
    dispute_id = dispute_of(disputed, sandbox)
    dispute_sync(dispute=gateway.dispute_retrieve(dispute_id), source="webhook")
    submit_evidence(dispute_id, "winning_evidence")
    sandbox.advance()

    report = reconcile()

    assert sorted(str(d) for d in report.drift) == [
        f"dispute {dispute_id}: needs_response -> won",
        f"refund {refund.id}: pending -> succeeded",
    ]
    assert (report.checked, report.repaired, report.errors) == (2, 2, [])
    refunded.refresh_from_db()
    assert refunded.amount_refunded == 700
    assert Dispute.objects.get(stripe_id=dispute_id).status == "won"
    assert disputed.events.filter(kind=PaymentEvent.Kind.DISPUTE_WON).count() == 1


def test_since_checks_only_rows_created_from_that_day(sandbox):
    old, new = stranded(sandbox), stranded(sandbox)
    Payment.objects.filter(pk=old.pk).update(created_at=datetime(2024, 3, 1, tzinfo=UTC))

    out, _ = run("--since", "2024-03-02")

    assert out.splitlines()[0] == f"payment {new.stripe_id}: requires_action -> succeeded"
    assert (status_of(old), status_of(new)) == ("requires_action", "succeeded")

    out, _ = run("--since", "2024-03-01")
    assert out.splitlines()[0] == f"payment {old.stripe_id}: requires_action -> succeeded"


def test_limit_takes_the_rows_checked_longest_ago_first(sandbox):
    recent, never, oldest = stranded(sandbox), stranded(sandbox), stranded(sandbox)
    now = timezone.now()
    Payment.objects.filter(pk=never.pk).update(stripe_checked_at=None)
    Payment.objects.filter(pk=oldest.pk).update(stripe_checked_at=now - timedelta(days=2))
    Payment.objects.filter(pk=recent.pk).update(stripe_checked_at=now - timedelta(days=1))

    report = reconcile(limit=2)

    assert [d.stripe_id for d in report.drift] == [never.stripe_id, oldest.stripe_id]
    assert status_of(recent) == "requires_action"
    assert reconcile(limit=2).checked == 1  # the rest, on the next run


def test_a_stripe_error_on_one_row_is_reported_and_the_others_are_repaired(sandbox):
    first, broken, last = stranded(sandbox), stranded(sandbox), stranded(sandbox)
    sandbox.inject_fault("500", count=10, path=f"/v1/payment_intents/{broken.stripe_id}")

    out, err = run()

    assert (status_of(first), status_of(broken), status_of(last)) == (
        "succeeded", "requires_action", "succeeded"
    )
    assert out.splitlines()[-1] == (
        "checked 3 (payments 3, refunds 0, disputes 0), repaired 2, errors 1"
    )
    [error_line] = err.splitlines()
    assert error_line.startswith(f"error: payment {broken.stripe_id}: ")


def test_a_bad_since_is_refused_with_a_one_line_reason(sandbox):
    with pytest.raises(CommandError, match="must be a date"):
        run("--since", "2024-02-30")

    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": database_url_for(connection.settings_dict),
    }
    done = subprocess.run(
        [sys.executable, "manage.py", "reconcile", "--since", "last week"],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=60,
    )
    assert done.returncode != 0
    assert done.stderr.strip().splitlines() == [
        "CommandError: " + BAD_SINCE.format(value="last week")
    ]
    assert done.stdout == ""


def test_the_beat_job_reconciles_only_rows_not_read_for_a_while(sandbox):
    never, stale, fresh = stranded(sandbox), stranded(sandbox), stranded(sandbox)
    now = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
    Payment.objects.filter(pk=never.pk).update(stripe_checked_at=None)
    Payment.objects.filter(pk=stale.pk).update(stripe_checked_at=now - timedelta(minutes=11))
    Payment.objects.filter(pk=fresh.pk).update(stripe_checked_at=now - timedelta(minutes=9))

    report = reconcile_stale(now=now)

    assert sorted(d.stripe_id for d in report.drift) == sorted([never.stripe_id, stale.stripe_id])
    assert status_of(fresh) == "requires_action"


def test_the_beat_task_runs_every_five_minutes_on_stale_rows(sandbox):
    stale, fresh = stranded(sandbox), stranded(sandbox)
    Payment.objects.filter(pk=stale.pk).update(
        stripe_checked_at=timezone.now() - timedelta(hours=1)
    )

    assert payments_reconcile_stale.apply().get() == 1

    assert (status_of(stale), status_of(fresh)) == ("succeeded", "requires_action")
    assert settings.CELERY_BEAT_SCHEDULE["payments-reconcile-stale"] == {
        "task": "payments.tasks.payments_reconcile_stale", "schedule": 300.0
    }


def test_the_beat_task_reads_its_batch_size_from_settings(sandbox, settings):
    first, second = stranded(sandbox), stranded(sandbox)
    Payment.objects.update(stripe_checked_at=None)
    settings.PAYDESK_RECONCILE_BATCH = 1

    assert payments_reconcile_stale.apply().get() == 1
    assert sorted([status_of(first), status_of(second)]) == ["requires_action", "succeeded"]
