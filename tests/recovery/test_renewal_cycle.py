"""A full renewal cycle against the sandbox, with time moved forward (time-machine)."""

import re
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.core import mail

from orders.models import Order
from recovery import dunning, services, tasks
from recovery.models import (
    DunningMessage,
    RecoveryAttempt,
    RecoveryCase,
    RetryPolicy,
    Subscription,
)
from tests.recovery.conftest import save_card

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
pytestmark = pytest.mark.django_db


def deliver_messages():
    dunning.messages_deliver_pending(now=datetime.now(UTC), older_than=timedelta(0))


def test_a_good_card_renews_every_period(sandbox, customer, plan):
    with time_machine.travel(T0, tick=False) as traveller:
        card = save_card(customer, "pm_card_visa")
        subscription = services.subscription_create(user=customer, plan=plan,
                                                    payment_method=card, now=T0)
        assert subscription.status == Subscription.Status.ACTIVE
        assert subscription.current_period_end == datetime(2026, 4, 1, 9, 0, tzinfo=UTC)
        assert tasks.renewals_run_due() == 0  # nothing due yet

        traveller.move_to(datetime(2026, 4, 1, 9, 0, 1, tzinfo=UTC))
        assert tasks.renewals_run_due() == 1
        assert tasks.renewals_run_due() == 0  # once per period
        subscription.refresh_from_db()
        assert (subscription.period, subscription.status) == (2, Subscription.Status.ACTIVE)
        assert subscription.current_period_end == datetime(2026, 5, 1, 9, 0, tzinfo=UTC)
        orders = [r.order for r in subscription.renewals.order_by("period")]
        assert [o.status for o in orders] == [Order.Status.PAID, Order.Status.PAID]
        keys = [o.payments.get().idempotency_key for o in orders]
        assert keys == [f"renewal:{subscription.pk}:1:1", f"renewal:{subscription.pk}:2:1"]
        assert all(o.payments.get().receipt for o in orders)  # receipts come for free
    assert not RecoveryCase.objects.exists()


def test_a_failing_card_retries_on_schedule_and_the_pay_link_recovers(
    sandbox, customer, plan, client
):
    with time_machine.travel(T0, tick=False) as traveller:
        card = save_card(customer, "pm_card_chargeCustomerFail")
        subscription = services.subscription_create(user=customer, plan=plan,
                                                    payment_method=card, now=T0)
        assert subscription.status == Subscription.Status.PAST_DUE
        case = RecoveryCase.objects.get()
        assert (case.next_action, case.next_action_at) == ("retry", T0 + timedelta(hours=24))
        assert case.deadline == T0 + timedelta(days=14)
        deliver_messages()
        assert len(mail.outbox) == 1 and "did not go through" in mail.outbox[0].subject
        assert mail.outbox[0].alternatives[0][1] == "text/html"

        traveller.move_to(T0 + timedelta(hours=23))
        assert tasks.recoveries_run_due() == 0  # not due yet
        traveller.move_to(T0 + timedelta(hours=24, seconds=1))
        assert tasks.recoveries_run_due() == 1
        assert tasks.recoveries_run_due() == 0  # once per due slot
        case.refresh_from_db()
        attempts = list(case.attempts.values_list("number", "outcome", "decline_code"))
        assert attempts == [(1, "failed", "generic_decline"), (2, "failed", "generic_decline")]
        assert case.next_action_at == T0 + timedelta(hours=72)
        assert case.attempts.get(number=2).idempotency_key == f"renewal:{subscription.pk}:1:2"
        deliver_messages()
        deliver_messages()  # a second run sends nothing more
        assert len(mail.outbox) == 2
        assert DunningMessage.objects.filter(status="sent").count() == 2

        pay_url = re.search(r"Pay now: (\S+)", mail.outbox[-1].body).group(1)
        client.force_login(customer)
        to_checkout = client.get(pay_url.replace("http://127.0.0.1:8000", ""))
        assert to_checkout.status_code == 302
        assert to_checkout.url == case.order.get_checkout_url()
        paid = client.post(to_checkout.url, {"payment_method": "pm_card_visa"})
        assert paid.status_code == 303

        case.refresh_from_db()
        subscription.refresh_from_db()
        assert case.status == RecoveryCase.Status.RECOVERED
        assert (case.next_action, case.next_action_at) == ("", None)
        assert subscription.status == Subscription.Status.ACTIVE
        traveller.move_to(T0 + timedelta(days=5))
        assert tasks.recoveries_run_due() == 0  # the remaining attempts are canceled


def test_the_schedule_ends_and_dunning_cancels_the_subscription(sandbox, customer, plan):
    with time_machine.travel(T0, tick=False) as traveller:
        card = save_card(customer, "pm_card_chargeCustomerFail")
        subscription = services.subscription_create(user=customer, plan=plan,
                                                    payment_method=card, now=T0)
        case = RecoveryCase.objects.get()
        for _ in range(20):
            case.refresh_from_db()
            if not case.next_action:
                break
            traveller.move_to(case.next_action_at + timedelta(seconds=1))
            tasks.recoveries_run_due()
        case.refresh_from_db()
        subscription.refresh_from_db()
        # The renewal charge and 3 generic declines, then do_not_honor_limit makes it hard:
        # the customer is asked for another card until the schedule ends.
        assert case.attempts.count() == 4
        assert case.status == RecoveryCase.Status.LOST
        assert subscription.status == Subscription.Status.CANCELED
        deliver_messages()
        kinds = set(DunningMessage.objects.values_list("kind", flat=True))
        assert {"failed", "ended", "staff_ended"} <= kinds
        assert any(m.to == ["billing@example.com"] for m in mail.outbox)


def test_a_hard_decline_is_never_retried(sandbox, customer, plan):
    with time_machine.travel(T0, tick=False) as traveller:
        card = save_card(customer, "pm_card_visa")
        subscription = services.subscription_create(user=customer, plan=plan,
                                                    payment_method=card, now=T0)
        # The card is reported lost before the next renewal.
        lost = save_card(customer, "pm_card_visa")
        lost.stripe_id = "pm_card_visa_chargeDeclinedLostCard"
        lost.save()
        Subscription.objects.filter(pk=subscription.pk).update(payment_method=lost)
        traveller.move_to(subscription.current_period_end + timedelta(seconds=1))
        tasks.renewals_run_due()
        case = RecoveryCase.objects.get()
        assert case.last_decline_code == "lost_card"
        assert case.waiting_for == RecoveryCase.Waiting.CARD_UPDATE
        assert case.next_action == RecoveryCase.NextAction.EXPIRE
        traveller.move_to(T0 + timedelta(days=40))
        tasks.recoveries_run_due()
        assert case.attempts.count() == 1


def test_authentication_required_goes_to_the_pay_link(sandbox, customer, plan, client):
    with time_machine.travel(T0, tick=False):
        card = save_card(customer, "pm_card_visa")
        subscription = services.subscription_create(user=customer, plan=plan,
                                                    payment_method=card, now=T0)
        needs_3ds = save_card(customer, "pm_card_visa")
        needs_3ds.stripe_id = "pm_card_authenticationRequired"
        needs_3ds.save()
        Subscription.objects.filter(pk=subscription.pk).update(payment_method=needs_3ds)
    with time_machine.travel(subscription.current_period_end + timedelta(seconds=1), tick=False):
        tasks.renewals_run_due()
        case = RecoveryCase.objects.get()
        assert case.last_decline_code == "authentication_required"
        assert case.waiting_for == RecoveryCase.Waiting.AUTHENTICATION
        assert case.next_action == RecoveryCase.NextAction.EXPIRE  # no off-session retry
        deliver_messages()
        assert "confirm this payment yourself" in mail.outbox[-1].body
        pay_url = re.search(r"Pay now: (\S+)", mail.outbox[-1].body).group(1)
        client.force_login(customer)
        response = client.get(pay_url.replace("http://127.0.0.1:8000", ""))
        assert response.url == case.order.get_checkout_url()
        three_ds = client.post(response.url, {"payment_method": "pm_card_authenticationRequired"})
        assert three_ds.status_code == 303 and "/_sandbox/3ds/" in three_ds.url


def test_updating_the_card_retries_at_once_even_after_the_schedule_ended(sandbox, customer,
                                                                          plan):
    services.default_policy()
    RetryPolicy.objects.filter(is_default=True).update(final_action="unpaid")
    with time_machine.travel(T0, tick=False) as traveller:
        card = save_card(customer, "pm_card_chargeCustomerFail")
        subscription = services.subscription_create(user=customer, plan=plan,
                                                    payment_method=card, now=T0)
        traveller.move_to(T0 + timedelta(days=15))
        case = RecoveryCase.objects.get()
        RecoveryCase.objects.filter(pk=case.pk).update(next_action="expire",
                                                       next_action_at=case.deadline)
        tasks.recoveries_run_due()
        subscription.refresh_from_db()
        assert subscription.status == Subscription.Status.UNPAID
        now = T0 + timedelta(days=15)
        services.subscription_card_update(subscription=subscription,
                                          payment_method=save_card(customer, "pm_card_visa"),
                                          now=now)
        case.refresh_from_db()
        subscription.refresh_from_db()
        assert case.status == RecoveryCase.Status.RECOVERED
        assert subscription.status == Subscription.Status.ACTIVE
        retry = case.attempts.order_by("number").last()
        assert (retry.trigger, retry.outcome, retry.attempted_at) == (
            RecoveryAttempt.Trigger.CARD_UPDATE, "succeeded", now)
