"""A confirmation that outlives the Stripe time budget (finding 3 of issue 7): the customer is
sent to the waiting page, never a 500 nor an invitation to pay again, and the page shows the
outcome once Stripe finishes. Proven with Django's test client and with the real gunicorn."""

import os
import re
import sys

import pytest
import requests
from django.conf import settings as django_settings
from django.db import connection
from django.test import Client
from django.urls import reverse

from orders.models import Order
from payments import gateway
from payments.checkout import CONFIRMING_PAYMENT, CONFIRMING_PAYMENT_DETAIL
from payments.models import Payment
from payments.views import UNKNOWN_CONFIRMATION_SESSION_KEY
from tests.conftest import (
    HOLD,
    database_url_for,
    free_port,
    start_web_process,
    stop_process,
    wait_for,
)
from tests.factories import make_order

PAID_PAGE = "Payment received"


@pytest.fixture
def order(customer):
    return make_order(customer=customer, unit_amount=1999)


def checkout_url(order) -> str:
    return reverse("payments:checkout", kwargs={"token": order.checkout_token})


def return_url(order) -> str:
    return reverse("payments:checkout-return", kwargs={"token": order.checkout_token})


def intent_status(payment: Payment) -> str:
    return gateway.payment_intent_retrieve(payment.stripe_id).status


@pytest.mark.django_db
def test_a_confirmation_slower_than_the_budget_shows_the_waiting_page_then_the_outcome(
    sandbox, customer_client, order, settings
):
    settings.STRIPE_REQUEST_BUDGET = 1.0
    settings.PAYDESK_RETURN_PAGE_STRIPE_INTERVAL = 0  # this test is not about the throttle
    customer_client.get(checkout_url(order))
    payment = Payment.objects.get(order=order)
    sandbox.inject_fault("slow", path="/v1/payment_intents/", delay=HOLD)

    response = customer_client.post(checkout_url(order), {"payment_method": "pm_card_visa"})

    assert response.status_code == 303
    assert response["Location"] == f"http://testserver{return_url(order)}"
    waiting = customer_client.get(return_url(order))
    html = waiting.content.decode()
    assert waiting.status_code == 200
    assert f"<h1>{CONFIRMING_PAYMENT}</h1>" in html and CONFIRMING_PAYMENT_DETAIL in html
    assert '<meta http-equiv="refresh" content="2">' in html
    assert "try again" not in html.lower()
    assert sandbox.held_requests() == 1  # Stripe has still not answered

    sandbox.release_held()
    wait_for(lambda: intent_status(payment) == "succeeded", timeout=15, interval=0.2,
             what="the sandbox to finish the slow confirmation")
    done = customer_client.get(return_url(order))

    assert done.status_code == 200 and PAID_PAGE in done.content.decode()
    assert Payment.objects.get(pk=payment.pk).status == "succeeded"
    assert Order.objects.get(pk=order.pk).status == Order.Status.PAID


@pytest.mark.django_db
def test_stripe_failing_during_the_confirmation_shows_the_waiting_page_for_a_while(
    sandbox, customer_client, order, settings
):
    """A 500 after every retry: Stripe may or may not have confirmed. The waiting page, until
    UNKNOWN_CONFIRMATION_WAIT has passed with no outcome; then back to the checkout (paying
    again confirms the same PaymentIntent, which can succeed only once)."""
    customer_client.get(checkout_url(order))
    sandbox.inject_fault("500", count=1 + settings.STRIPE_MAX_NETWORK_RETRIES,
                         path="/v1/payment_intents/")

    response = customer_client.post(checkout_url(order), {"payment_method": "pm_card_visa"})

    assert response.status_code == 303
    assert response["Location"] == f"http://testserver{return_url(order)}"
    waiting = customer_client.get(return_url(order))
    assert waiting.status_code == 200 and CONFIRMING_PAYMENT in waiting.content.decode()

    session = customer_client.session
    session[UNKNOWN_CONFIRMATION_SESSION_KEY] = {
        **session[UNKNOWN_CONFIRMATION_SESSION_KEY], "until": 0
    }
    session.save()
    later = customer_client.get(return_url(order))
    assert later.status_code == 302 and later["Location"] == checkout_url(order)


# --- The real web server -----------------------------------------------------------------------

WEB_TIMEOUT = 6
REQUEST_BUDGET = 3


@pytest.fixture
def gunicorn(sandbox, tmp_path):
    """`gunicorn config.wsgi` from the repo root (so it reads gunicorn.conf.py), one sync worker,
    on the test database and the session's sandbox, with WEB_TIMEOUT and the budget small."""
    port = free_port()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": database_url_for(connection.settings_dict),
        "STRIPE_API_BASE": sandbox.url,
        "STRIPE_SECRET_KEY": gateway.SANDBOX_TEST_KEY,
        "STRIPE_WEBHOOK_SECRET": sandbox.webhook_secret,
        "PAYDESK_CHECKOUT_MODE": "test_cards",
        "WEB_TIMEOUT": str(WEB_TIMEOUT),
        "STRIPE_REQUEST_BUDGET": str(REQUEST_BUDGET),
        "PYTHONUNBUFFERED": "1",
    }
    log_path = tmp_path / "gunicorn.log"
    process = start_web_process(
        # Sync, not gunicorn.conf.py's gthread: a sync worker busy past the timeout is killed,
        # so the budget must answer first (a gthread worker's request would just run on).
        [sys.executable, "-m", "gunicorn", "config.wsgi", "--bind", f"127.0.0.1:{port}",
         "--workers", "1", "--worker-class", "sync"],
        env=env, port=port, log_path=log_path,
    )
    yield f"http://127.0.0.1:{port}", log_path
    stop_process(process, timeout=10)


@pytest.mark.django_db(transaction=True)
def test_under_gunicorn_a_confirmation_slower_than_its_timeout_shows_the_waiting_page(
    gunicorn, sandbox, customer, order
):
    base, log_path = gunicorn
    client = Client()
    client.force_login(customer)
    cookies = {django_settings.SESSION_COOKIE_NAME: client.cookies[
        django_settings.SESSION_COOKIE_NAME].value}
    browser = requests.Session()

    def get(path):
        # Cookies are Secure outside DEBUG: send them by hand over this plain-HTTP test server.
        header = "; ".join(f"{k}={v}" for k, v in cookies.items())
        return browser.get(f"{base}{path}", headers={"Cookie": header}, allow_redirects=False,
                           timeout=30)

    page = get(checkout_url(order))
    assert page.status_code == 200, page.text[-2000:]
    cookies[django_settings.CSRF_COOKIE_NAME] = page.cookies[django_settings.CSRF_COOKIE_NAME]
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
    # Stripe answers only when released: without the budget gunicorn would kill the worker.
    sandbox.inject_fault("slow", path="/v1/payment_intents/", delay=HOLD)

    posted = browser.post(
        f"{base}{checkout_url(order)}",
        data={"csrfmiddlewaretoken": token, "payment_method": "pm_card_visa"},
        headers={"Cookie": "; ".join(f"{k}={v}" for k, v in cookies.items())},
        allow_redirects=False, timeout=30,
    )

    assert posted.status_code == 303, posted.text[-2000:]
    assert posted.headers["Location"] == f"{base}{return_url(order)}"
    waiting = get(return_url(order))
    assert waiting.status_code == 200 and CONFIRMING_PAYMENT in waiting.text
    assert sandbox.held_requests() == 1

    sandbox.release_held()

    def paid_page_shown():
        page = get(return_url(order))
        return page.status_code == 200 and PAID_PAGE in page.text

    wait_for(paid_page_shown, timeout=30, interval=0.5,
             what="the return page to show the payment once the sandbox finished")
    assert Payment.objects.get(order=order).status == "succeeded"
    assert "WORKER TIMEOUT" not in log_path.read_text()
