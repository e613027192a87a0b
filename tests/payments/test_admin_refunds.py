"""Refunds from the back office, as Support and Finance use them: the confirmation page, its
one-time token, permissions, bulk refunds and four-eyes decisions. Django's test client, the
real services and the sandbox."""

import re

import pytest
from django.contrib.auth.models import Group
from django.contrib.messages import get_messages
from django.test import Client
from django.urls import reverse

from payments import gateway
from payments.admin.refunds import NO_PERMISSION, TOKEN_EXPIRED
from payments.models import Payment, Refund
from payments.services import payment_confirm, payment_start
from tests.factories import make_order

pytestmark = pytest.mark.django_db
RETURN_URL = "http://testserver/checkout/return/"


def paid(amount: int = 10000, currency: str = "USD") -> Payment:
    payment = payment_start(order=make_order(unit_amount=amount, currency=currency))
    return payment_confirm(payment=payment, payment_method="pm_card_visa", return_url=RETURN_URL)


def member(make_user, username: str, group: str | None) -> Client:
    user = make_user(username, is_staff=True)
    if group:
        user.groups.add(Group.objects.get(name=group))
    client = Client()
    client.force_login(user)
    client.user = user
    return client


@pytest.fixture
def support(make_user):
    return member(make_user, "sam", "Support")


@pytest.fixture
def finance(make_user):
    return member(make_user, "fran", "Finance")


@pytest.fixture
def viewer(make_user):
    user_client = member(make_user, "vic", None)
    from django.contrib.auth.models import Permission

    user_client.user.user_permissions.add(Permission.objects.get(codename="view_payment"))
    return user_client


@pytest.fixture
def approvals(settings):
    settings.PAYDESK_REFUND_APPROVAL_THRESHOLDS = {"USD": 5000}


def refund_url(payment: Payment) -> str:
    return reverse("admin:payments_payment_actions", kwargs={"pk": payment.pk, "tool": "refund"})


def change_url(payment: Payment) -> str:
    return reverse("admin:payments_payment_change", args=[payment.pk])


def token_of(page) -> str:
    return re.search(r'name="token" value="([^"]+)"', page.content.decode()).group(1)


def texts(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def test_support_refunds_part_of_a_payment_through_the_confirmation_page(sandbox, support):
    payment = paid(10000)
    page = support.get(change_url(payment))
    assert refund_url(payment) in page.content.decode()  # the Refund button

    confirmation = support.get(refund_url(payment))
    html = confirmation.content.decode()
    assert confirmation.status_code == 200
    assert 'name="amount" value="100.00"' in html  # all that is left, in major units
    assert "Sent to Stripe now" in html and "cannot be undone" in html

    done = support.post(refund_url(payment), {
        "amount": "12.50", "reason": "requested_by_customer", "note": "Chipped mug",
        "token": token_of(confirmation), "post": "yes",
    }, follow=True)

    assert f"Payment {payment}: $12.50 refunded." in texts(done)
    refund = Refund.objects.get()
    assert (refund.amount, refund.reason, refund.note, refund.created_by) == (
        1250, "requested_by_customer", "Chipped mug", support.user)
    assert [r.amount for r in gateway.refund_list_for_intent(payment.stripe_id)] == [1250]


def test_a_resubmitted_confirmation_page_refunds_once(sandbox, support):
    payment = paid(10000)
    form = {"amount": "10.00", "reason": "", "note": "", "post": "yes",
            "token": token_of(support.get(refund_url(payment)))}

    support.post(refund_url(payment), form)
    support.post(refund_url(payment), form)

    assert Refund.objects.count() == 1
    assert len(gateway.refund_list_for_intent(payment.stripe_id)) == 1


@pytest.mark.parametrize(("amount", "error"), [
    ("12.345", "more decimal places"),
    ("twelve", "not an amount"),
    ("0", "more than zero"),
    ("100.01", "At most $100.00 is left to refund."),
])
def test_a_bad_amount_is_a_form_error_and_nothing_is_refunded(sandbox, support, amount, error):
    payment = paid(10000)
    token = token_of(support.get(refund_url(payment)))

    page = support.post(refund_url(payment), {"amount": amount, "token": token, "post": "yes"})

    assert page.status_code == 200
    assert error in page.content.decode()
    assert not Refund.objects.exists()


def test_an_altered_token_is_refused(sandbox, support):
    payment = paid(10000)
    page = support.post(refund_url(payment), {"amount": "1.00", "token": "made-up", "post": "yes"})
    assert TOKEN_EXPIRED in page.content.decode()
    assert not Refund.objects.exists()


def test_staff_without_the_refund_permission_get_no_button_and_cannot_refund(sandbox, viewer):
    payment = paid(10000)

    page = viewer.get(change_url(payment))
    attempt = viewer.post(refund_url(payment), {"amount": "1.00", "post": "yes", "token": "x"},
                          follow=True)

    assert page.status_code == 200 and refund_url(payment) not in page.content.decode()
    assert NO_PERMISSION in texts(attempt)
    assert not Refund.objects.exists()
    changelist = viewer.get(reverse("admin:payments_payment_changelist"))
    assert "refund_selected" not in changelist.content.decode()


def test_bulk_refund_confirms_then_refunds_each_payment_in_full(sandbox, support):
    first, second = paid(1000), paid(2000)
    unpaid = payment_start(order=make_order())
    changelist = reverse("admin:payments_payment_changelist")
    chosen = {"action": "refund_selected", "_selected_action": [first.pk, second.pk, unpaid.pk]}

    confirmation = support.post(changelist, chosen)
    html = confirmation.content.decode()
    assert "Refund the selected payments?" in html and "Refund 2 payments" in html
    assert f"Not refundable, left out: {unpaid}" in html

    done = support.post(changelist, {**chosen, "post": "yes", "reason": "duplicate",
                                     "note": "", "token": token_of(confirmation)}, follow=True)

    assert {f"Payment {first}: $10.00 refunded.",
            f"Payment {second}: $20.00 refunded."} <= set(texts(done))
    assert sorted(Refund.objects.values_list("amount", flat=True)) == [1000, 2000]


def test_above_the_threshold_finance_approves_and_support_is_not_offered_to(
    sandbox, support, finance, approvals
):
    payment = paid(10000)
    confirmation = support.get(refund_url(payment))
    assert "Waits for approval by another member of staff (above $50.00)" in (
        confirmation.content.decode())
    asked = support.post(refund_url(payment), {"amount": "80.00", "token": token_of(confirmation),
                                               "post": "yes"}, follow=True)
    assert any("awaiting approval" in text for text in texts(asked))
    refund = Refund.objects.get()
    approve_url = reverse("admin:payments_refund_actions",
                          kwargs={"pk": refund.pk, "tool": "approve"})
    refund_page = reverse("admin:payments_refund_change", args=[refund.pk])

    assert approve_url not in support.get(refund_page).content.decode()
    assert "approve_selected" not in support.get(
        reverse("admin:payments_refund_changelist")).content.decode()
    support.post(approve_url, {"post": "yes"})
    assert Refund.objects.get().status == Refund.Status.AWAITING_APPROVAL
    assert gateway.refund_list_for_intent(payment.stripe_id) == []

    assert approve_url in finance.get(refund_page).content.decode()
    finance.post(approve_url, {"post": "yes", "note": "OK with the customer"})

    refund.refresh_from_db()
    assert (refund.status, refund.decided_by) == (Refund.Status.SUCCEEDED, finance.user)
    assert len(gateway.refund_list_for_intent(payment.stripe_id)) == 1


def test_finance_cannot_approve_its_own_refund(sandbox, finance, approvals):
    payment = paid(10000)
    confirmation = finance.get(refund_url(payment))
    finance.post(refund_url(payment), {"amount": "80.00", "token": token_of(confirmation),
                                       "post": "yes"})
    refund = Refund.objects.get()
    approve_url = reverse("admin:payments_refund_actions",
                          kwargs={"pk": refund.pk, "tool": "approve"})

    assert approve_url not in finance.get(
        reverse("admin:payments_refund_change", args=[refund.pk])).content.decode()
    result = finance.post(approve_url, {"post": "yes"}, follow=True)

    assert any("someone other than who asked" in text for text in texts(result))
    assert Refund.objects.get().status == Refund.Status.AWAITING_APPROVAL


def test_finance_rejects_selected_refunds(sandbox, support, finance, approvals):
    payment = paid(10000)
    confirmation = support.get(refund_url(payment))
    support.post(refund_url(payment), {"amount": "90.00", "token": token_of(confirmation),
                                       "post": "yes"})
    refund = Refund.objects.get()
    changelist = reverse("admin:payments_refund_changelist")
    chosen = {"action": "reject_selected", "_selected_action": [refund.pk]}

    page = finance.post(changelist, chosen)
    assert "Reject the selected refunds?" in page.content.decode()
    finance.post(changelist, {**chosen, "post": "yes", "note": "Outside policy"})

    refund.refresh_from_db()
    payment.refresh_from_db()
    assert (refund.status, refund.decision_note) == (Refund.Status.REJECTED, "Outside policy")
    assert payment.amount_refund_reserved == 0 and payment.amount_refundable == 10000


def test_bulk_refund_refuses_more_than_a_page_of_payments_at_once(sandbox, support, monkeypatch):
    from payments.admin import refunds

    monkeypatch.setattr(refunds, "MAX_BULK_REFUND", 2)
    payments = [paid(1000), paid(1000), paid(1000)]
    changelist = reverse("admin:payments_payment_changelist")

    page = support.post(changelist, {"action": "refund_selected",
                                     "_selected_action": [p.pk for p in payments]}, follow=True)

    assert "refund at most 2 at a time" in " ".join(texts(page))
    assert not Refund.objects.exists()
