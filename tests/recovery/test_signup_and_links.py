"""The sign-up form posted twice makes one SetupIntent and one subscription; a subscription that
ends unpaid is told so by e-mail; dunning links expire on recovery's clock (the dev clock too)."""

import re
from datetime import UTC, datetime, timedelta

import pytest
import requests
import time_machine
from django.core import mail

from recovery import clock, dunning, services, tasks
from recovery.models import CardSetup, DunningMessage, RecoveryCase, RetryPolicy, Subscription
from tests.recovery.conftest import save_card

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
pytestmark = pytest.mark.django_db


def test_the_sign_up_form_posted_twice_sets_up_one_card_and_subscribes_once(
    sandbox, customer_client, customer, plan
):
    page = customer_client.get(f"/subscriptions/plans/{plan.slug}/").content.decode()
    token = re.search(r'name="submission_token" value="([^"]+)"', page).group(1)
    form = {"payment_method": "pm_card_visa", "submission_token": token}

    first = customer_client.post(f"/subscriptions/plans/{plan.slug}/", form)
    again = customer_client.post(f"/subscriptions/plans/{plan.slug}/", form)

    assert first.status_code == again.status_code == 303
    assert first.url == again.url
    subscription = Subscription.objects.get()
    assert first.url == f"/subscriptions/{subscription.pk}/"
    assert sandbox.requests()["/v1/setup_intents"] == 1
    setup = CardSetup.objects.get()
    assert (setup.idempotency_key, setup.subscription) == (f"setup:{customer.pk}:{token}",
                                                           subscription)


def test_a_retried_setup_after_a_lost_answer_reuses_the_stored_key(sandbox, customer):
    setup = services.card_setup_begin(user=customer,
                                      submission_token="6f1c1c1e-0000-4000-8000-000000000001")
    again = services.card_setup_begin(user=customer,
                                      submission_token="6f1c1c1e-0000-4000-8000-000000000001")

    first_intent, _ = services.card_setup(user=customer, test_payment_method="pm_card_visa",
                                          return_url="https://example.com/r",
                                          idempotency_key=setup.idempotency_key)
    second_intent, _ = services.card_setup(user=customer, test_payment_method="pm_card_visa",
                                           return_url="https://example.com/r",
                                           idempotency_key=again.idempotency_key)

    assert again.pk == setup.pk
    assert first_intent.id == second_intent.id


def test_a_subscription_that_ends_unpaid_is_told_by_email(sandbox, customer, plan):
    services.default_policy()
    RetryPolicy.objects.filter(is_default=True).update(final_action="unpaid")
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
        dunning.messages_deliver_pending(now=datetime.now(UTC), older_than=timedelta(0))

    subscription.refresh_from_db()
    assert subscription.status == Subscription.Status.UNPAID
    ended = DunningMessage.objects.get(kind="ended", channel="email")
    assert ended.status == "sent"
    [email] = [m for m in mail.outbox if "has ended" in m.subject]
    assert email.to == [customer.email]
    assert "suspended until it is paid" in email.body
    assert "/subscriptions/pay/" in email.body


def test_the_pay_link_expires_on_recoverys_clock(sandbox, customer, customer_client, plan,
                                                 settings):
    settings.DEBUG = True  # the development clock counts only with DEBUG on
    with time_machine.travel(T0, tick=False):
        card = save_card(customer, "pm_card_chargeCustomerFail")
        services.subscription_create(user=customer, plan=plan, payment_method=card, now=T0)
        case = RecoveryCase.objects.get()
        link = f"/subscriptions/pay/{dunning.pay_link_token(case, now=clock.now())}/"

        fresh = customer_client.get(link)
        clock.clock_advance(by=timedelta(days=case.policy.pay_link_days, hours=1))
        expired = customer_client.get(link)

    assert fresh.status_code == 302 and fresh.url == case.order.get_checkout_url()
    assert expired.status_code == 404


def test_the_3ds_return_loaded_twice_subscribes_once(sandbox, customer_client, plan):
    page = customer_client.get(f"/subscriptions/plans/{plan.slug}/").content.decode()
    token = re.search(r'name="submission_token" value="([^"]+)"', page).group(1)
    to_3ds = customer_client.post(f"/subscriptions/plans/{plan.slug}/", {
        "payment_method": "pm_card_authenticationRequiredOnSetup", "submission_token": token})
    assert to_3ds.status_code == 303 and "/_sandbox/3ds/seti_" in to_3ds.url
    completed = requests.post(to_3ds.url.rstrip("/") + "/complete", allow_redirects=False,
                              timeout=10)
    back = completed.headers["Location"]
    back = back[back.index("/subscriptions/"):]

    first = customer_client.get(back)
    again = customer_client.get(back)

    subscription = Subscription.objects.get()
    assert first.status_code == again.status_code == 303
    assert first.url == again.url == f"/subscriptions/{subscription.pk}/"
    assert CardSetup.objects.get().subscription == subscription
