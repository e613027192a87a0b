"""Paying a failed renewal through the dunning pay link saves that card on the subscription, so
the next renewal charges it (issue 12), against the sandbox: test cards on the checkout page,
and the Payment Element's flow (confirmed in the browser with the publishable key)."""

import json
import re
from datetime import UTC, datetime, timedelta

import pytest
import requests
import time_machine
from django.core import mail

from orders.models import Order
from payments.models import PaymentMethod
from recovery import dunning, services, tasks
from recovery.models import RecoveryCase, Subscription
from tests.factories import make_order
from tests.recovery.conftest import RETURN_URL, save_card

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
SAVES_CARD = "The card you pay with is saved"
pytestmark = pytest.mark.django_db


def failed_renewal(customer, plan):
    """A subscription whose first charge failed (a card every charge declines), its open case
    and the pay link of the e-mail that says so."""
    failing = save_card(customer, "pm_card_chargeCustomerFail")
    subscription = services.subscription_create(user=customer, plan=plan,
                                                payment_method=failing, now=T0)
    assert subscription.status == Subscription.Status.PAST_DUE
    dunning.messages_deliver_pending(now=T0, older_than=timedelta(0))
    body = mail.outbox[-1].body
    assert SAVES_CARD in body
    pay_url = re.search(r"Pay now: (\S+)", body).group(1).replace("http://127.0.0.1:8000", "")
    return subscription, failing, RecoveryCase.objects.get(), pay_url


def browser_confirm(sandbox, payment, test_card):
    """What Stripe.js does for the Payment Element: confirms the intent with the publishable
    key and the client secret."""
    answer = requests.post(
        f"{sandbox.url}/v1/payment_intents/{payment.stripe_id}/confirm",
        auth=("pk_test_sandbox", ""),
        data={"client_secret": payment.stripe_object["client_secret"],
              "payment_method": test_card, "return_url": "https://example.com/return"},
        timeout=10,
    )
    assert answer.status_code == 200, answer.text


def test_paying_the_pay_link_with_a_new_card_makes_it_the_card_of_the_next_renewals(
    sandbox, customer, plan, client
):
    with time_machine.travel(T0, tick=False) as traveller:
        subscription, failing, case, pay_url = failed_renewal(customer, plan)
        client.force_login(customer)
        to_checkout = client.get(pay_url)
        assert to_checkout.url == case.order.get_checkout_url()
        page = client.get(to_checkout.url)
        assert SAVES_CARD in page.content.decode()
        paid = client.post(to_checkout.url, {"payment_method": "pm_card_visa"})
        assert paid.status_code == 303

        payment = case.order.payments.get()
        assert payment.stripe_object["setup_future_usage"] == "off_session"
        paid_with = payment.stripe_object["payment_method"]["id"]
        new_card = PaymentMethod.objects.get(stripe_id=paid_with)
        subscription.refresh_from_db()
        case.refresh_from_db()
        assert case.status == RecoveryCase.Status.RECOVERED
        assert subscription.status == Subscription.Status.ACTIVE
        assert subscription.payment_method == new_card != failing
        assert (new_card.customer.user, new_card.brand, new_card.last4) == (customer, "visa",
                                                                            "4242")
        # Stripe (here the sandbox) attached the card to the customer, as setup_future_usage asks.
        at_stripe = sandbox.app.store.get("payment_methods", new_card.stripe_id)
        assert at_stripe["customer"] == new_card.customer.stripe_id
        page = client.get(f"/subscriptions/{subscription.pk}/").content.decode()
        assert "visa •••• 4242" in page

        traveller.move_to(subscription.current_period_end + timedelta(seconds=1))
        assert tasks.renewals_run_due() == 1
        subscription.refresh_from_db()
        renewal = subscription.renewals.get(period=2)
        charge = renewal.order.payments.get()
        assert renewal.order.status == Order.Status.PAID
        assert charge.stripe_object["payment_method"]["id"] == new_card.stripe_id
        assert (subscription.status, RecoveryCase.objects.count()) == (
            Subscription.Status.ACTIVE, 1)


def test_the_payment_element_flow_saves_the_card_too(sandbox, customer, plan, client, settings):
    settings.PAYDESK_CHECKOUT_MODE = "payment_element"
    settings.PAYDESK_RETURN_PAGE_STRIPE_INTERVAL = 0  # the return page reads Stripe each time
    with time_machine.travel(T0, tick=False):
        subscription, _, case, pay_url = failed_renewal(customer, plan)
        client.force_login(customer)
        page = client.get(client.get(pay_url).url)
        config = json.loads(re.search(r'id="stripe-config" type="application/json">(.*?)<',
                                      page.content.decode()).group(1))
        payment = case.order.payments.get()
        assert config["clientSecret"] == payment.stripe_object["client_secret"]
        assert payment.stripe_object["setup_future_usage"] == "off_session"
        browser_confirm(sandbox, payment, "pm_card_mastercard")
        returned = client.get(f"{case.order.get_checkout_url()}return/")
        assert returned.templates[0].name == "payments/checkout_success.html"

        subscription.refresh_from_db()
        assert subscription.status == Subscription.Status.ACTIVE
        assert (subscription.payment_method.brand, subscription.payment_method.last4) == (
            "mastercard", "4444")


def test_a_card_the_customer_chose_after_the_payment_started_stands(
    sandbox, customer, plan, client, settings
):
    """The checkout page was opened (the payment started, with the subscription's card then),
    the customer set another card on the card page, then paid on the page still open: the card
    set deliberately stays the subscription's card; the paid one is saved all the same."""
    settings.PAYDESK_CHECKOUT_MODE = "payment_element"
    settings.PAYDESK_RETURN_PAGE_STRIPE_INTERVAL = 0  # the return page reads Stripe each time
    with time_machine.travel(T0, tick=False):
        subscription, failing, case, pay_url = failed_renewal(customer, plan)
        client.force_login(customer)
        client.get(client.get(pay_url).url)
        _, chosen = services.card_setup(user=customer,
                                        test_payment_method="pm_card_chargeCustomerFail",
                                        return_url=RETURN_URL, idempotency_key="setup:chosen")
        services.subscription_card_update(subscription=subscription, payment_method=chosen,
                                          now=T0)  # retried at once, declined again
        payment = case.order.payments.get()
        payment.refresh_from_db()
        browser_confirm(sandbox, payment, "pm_card_visa")
        client.get(f"{case.order.get_checkout_url()}return/")

        subscription.refresh_from_db()
        case.refresh_from_db()
        assert case.status == RecoveryCase.Status.RECOVERED
        assert subscription.payment_method == chosen != failing
        paid_with = case.order.payments.get().stripe_object["payment_method"]["id"]
        assert PaymentMethod.objects.filter(stripe_id=paid_with,
                                            customer__user=customer).exists()


def test_an_ordinary_order_does_not_save_the_card(sandbox, customer, customer_client):
    order = make_order(customer=customer)
    page = customer_client.get(order.get_checkout_url())
    assert SAVES_CARD not in page.content.decode()
    customer_client.post(order.get_checkout_url(), {"payment_method": "pm_card_visa"})
    payment = order.payments.get()
    assert payment.status == "succeeded"
    assert not payment.stripe_object.get("setup_future_usage")
    assert not PaymentMethod.objects.exists()


def test_a_card_authenticated_on_the_pay_link_pays_the_next_renewal_off_session(
    sandbox, customer, plan, client, settings
):
    """3-D Secure on the pay link's checkout sets the card up for off-session payments (as
    Stripe does with setup_future_usage): the next renewal charges it without the customer."""
    settings.PAYDESK_RETURN_PAGE_STRIPE_INTERVAL = 0
    with time_machine.travel(T0, tick=False) as traveller:
        subscription, _, case, pay_url = failed_renewal(customer, plan)
        client.force_login(customer)
        checkout = client.get(pay_url).url
        assert checkout == case.order.get_checkout_url()
        to_3ds = client.post(checkout,
                             {"payment_method": "pm_card_authenticationRequiredOnSetup"})
        assert to_3ds.status_code == 303 and "/_sandbox/3ds/pi_" in to_3ds.url
        completed = requests.post(to_3ds.url.rstrip("/") + "/complete", allow_redirects=False,
                                  timeout=10)
        back = completed.headers["Location"]
        returned = client.get(back[back.index("/checkout/"):])
        assert returned.templates[0].name == "payments/checkout_success.html"
        subscription.refresh_from_db()
        assert subscription.payment_method.last4 == "3155"

        traveller.move_to(subscription.current_period_end + timedelta(seconds=1))
        assert tasks.renewals_run_due() == 1
        assert subscription.renewals.get(period=2).order.status == Order.Status.PAID
        assert RecoveryCase.objects.count() == 1
