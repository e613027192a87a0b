"""The back office's lists in a real browser at 1280 px: no horizontal scrolling beside the
filters, even with Stripe's longest ids and a long e-mail address; badges and the dashboard
under the site's Content-Security-Policy."""

import pytest
from playwright.sync_api import expect

from payments.models import Dispute, PaymentEvent, Refund, WebhookEvent
from tests.factories import UserFactory
from tests.payments.rows import make_payment

LISTS = [
    "/admin/payments/payment/",
    "/admin/payments/refund/",
    "/admin/payments/dispute/",
    "/admin/payments/webhookevent/",
    "/admin/payments/paymentevent/",
    "/admin/orders/order/",
]


@pytest.fixture
def long_rows():
    customer = UserFactory(username="a-customer-with-a-rather-long-name",
                           email="someone.with.a.very.long.address@subdomain.example.com")
    payment = make_payment(customer=customer, refunded=1000, dispute_status="needs_response",
                           status="succeeded")
    long_id = "x" * 24
    Refund.objects.create(payment=payment, stripe_id=f"re_{long_id}", amount=1000,
                          currency="USD", status="succeeded", reason="requested_by_customer")
    Dispute.objects.create(payment=payment, stripe_id=f"du_{long_id}", amount=3600,
                           currency="USD", status="needs_response", reason="fraudulent")
    PaymentEvent.objects.create(payment=payment, kind="refund_succeeded", amount=1000,
                                source="webhook", reference=f"re_{long_id}")
    WebhookEvent.objects.create(stripe_id=f"evt_{long_id}", type="charge.dispute.funds_withdrawn",
                                subject=f"payment_intent:{payment.stripe_id}", payload={},
                                status="failed_permanently")
    return payment


@pytest.mark.parametrize("url", LISTS)
def test_a_list_fits_a_1280_px_screen(page, login, staff, long_rows, screenshot, url):
    violations = []
    page.on("console", lambda m: "Content Security Policy" in m.text and violations.append(m.text))
    login(staff)

    page.goto(url)
    expect(page.locator("#result_list")).to_be_visible()

    overflow = page.evaluate(
        """() => {
            const results = document.querySelector('#changelist .results');
            return {page: document.documentElement.scrollWidth - window.innerWidth,
                    results: results.scrollWidth - results.clientWidth};
        }"""
    )
    screenshot(url.strip("/").replace("/", "-"))
    assert overflow == {"page": 0, "results": 0}
    assert violations == []


def test_badges_and_the_dashboard_are_styled(page, login, staff, long_rows):
    login(staff)

    page.goto("/admin/payments/payment/")
    badge = page.locator(".badge-disputed").first
    expect(badge).to_have_text("disputed")
    # The stylesheet loaded (a border: the CSP allows no inline style, only our file).
    assert badge.evaluate("b => getComputedStyle(b).borderTopStyle") == "solid"

    page.goto("/admin/")
    expect(page.locator("#dashboard-volume")).to_be_visible()
    expect(page.locator("#dashboard-disputes")).to_contain_text("Open disputes 1")
