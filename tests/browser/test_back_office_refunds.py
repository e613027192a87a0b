"""Staff refund in a real browser (issue 9): a Support member finds a payment by its card's last
four digits, refunds part of it through the confirmation page and sees the refund in the
timeline; a refund above the approval threshold waits, is not approvable by Support, and a
Finance member approves it; Stripe (the sandbox) then holds exactly one refund for it."""

import re

import pytest
from django.contrib.auth.models import Group
from playwright.sync_api import expect

from payments import gateway
from payments.models import Refund
from payments.services import payment_confirm, payment_start
from tests.factories import make_order

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
RETURN_URL = "http://testserver/checkout/return/"


def paid(amount: int, card: str):
    payment = payment_start(order=make_order(unit_amount=amount))
    return payment_confirm(payment=payment, payment_method=card, return_url=RETURN_URL)


@pytest.fixture
def team(make_user):
    support = make_user("sam", is_staff=True, first_name="Sam")
    support.groups.add(Group.objects.get(name="Support"))
    finance = make_user("fran", is_staff=True, first_name="Fran")
    finance.groups.add(Group.objects.get(name="Finance"))
    return support, finance


def test_support_refunds_part_and_finance_approves_a_large_refund(
    sandbox, settings, team, login, page, new_context, screenshot
):
    settings.PAYDESK_REFUND_APPROVAL_THRESHOLDS = {"USD": 5000}
    support, finance = team
    small = paid(4000, "pm_card_mastercard")  # •••• 4444
    large = paid(12000, "pm_card_visa")  # •••• 4242

    login(support)
    page.goto("/admin/payments/payment/")
    page.get_by_role("textbox", name="Search").fill("4444")
    page.get_by_role("button", name="Search").click()
    rows = page.locator("#result_list tbody tr")
    expect(rows).to_have_count(1)
    rows.first.get_by_role("link", name=small.stripe_id).click()

    page.get_by_role("link", name="Refund", exact=True).click()
    expect(page.get_by_role("heading", name="Refund this payment?")).to_be_visible()
    expect(page.get_by_label("Amount (USD)")).to_have_value("40.00")
    screenshot("refund-confirmation")
    page.get_by_label("Amount (USD)").fill("12.50")
    page.get_by_label("Reason").select_option("requested_by_customer")
    page.get_by_label("Note").fill("Chipped on arrival")
    page.get_by_role("button", name="Refund", exact=True).click()

    expect(page.get_by_text(f"Payment {small.stripe_id}: $12.50 refunded.")).to_be_visible()
    timeline = page.locator("#events-group")
    expect(timeline.get_by_text("Refund requested", exact=True)).to_be_visible()
    expect(timeline.get_by_text("Refund succeeded", exact=True)).to_be_visible()
    screenshot("refunded")

    page.goto(f"/admin/payments/payment/{large.pk}/change/")
    page.get_by_role("link", name="Refund", exact=True).click()
    expect(page.get_by_text("Waits for approval by another member of staff")).to_be_visible()
    page.get_by_label("Amount (USD)").fill("80.00")
    page.get_by_role("button", name="Refund", exact=True).click()
    expect(page.get_by_text(re.compile("awaiting approval by another member of staff"))
           ).to_be_visible()
    waiting = Refund.objects.get(payment=large)
    page.goto(f"/admin/payments/refund/{waiting.pk}/change/")
    expect(page.get_by_role("link", name="Approve")).to_have_count(0)
    assert gateway.refund_list_for_intent(large.stripe_id) == []

    finance_page = new_context(viewport={"width": 1280, "height": 800}).new_page()
    login(finance, page=finance_page)
    finance_page.goto("/admin/payments/refund/?approval=awaiting")
    finance_page.get_by_role("link", name=str(waiting)).click()
    finance_page.get_by_role("link", name="Approve").click()
    expect(finance_page.get_by_role("heading", name="Approve this refund?")).to_be_visible()
    finance_page.get_by_label("Note").fill("Customer called; agreed")
    finance_page.get_by_role("button", name="Approve").click()
    expect(finance_page.get_by_text(f"Payment {large.stripe_id}: $80.00 refunded.")).to_be_visible()
    screenshot("approved", of=finance_page)

    [at_stripe] = gateway.refund_list_for_intent(large.stripe_id)
    assert at_stripe.amount == 8000
    waiting.refresh_from_db()
    assert (waiting.status, waiting.decided_by, waiting.created_by) == (
        "succeeded", finance, support)
