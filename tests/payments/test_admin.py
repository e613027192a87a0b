"""The back office shows a payment with its ledger, lets staff reprocess webhook events, and
never lets anyone edit money state by hand."""

import pytest
from django.contrib.auth.models import Permission

from orders.models import Order
from payments.models import Payment, PaymentEvent, WebhookEvent
from payments.services import payment_confirm, payment_start
from tests.factories import UserFactory, make_order

pytestmark = pytest.mark.django_db
RETURN_URL = "http://testserver/checkout/return/"


def test_payment_page_shows_the_ledger_timeline(sandbox, staff_client):
    payment = payment_confirm(
        payment=payment_start(order=make_order(unit_amount=1450)),
        payment_method="pm_card_visa",
        return_url=RETURN_URL,
    )

    page = staff_client.get(f"/admin/payments/payment/{payment.pk}/change/")

    assert page.status_code == 200
    html = page.content.decode()
    assert "Timeline (ledger)" in html
    assert "Payment requested" in html and "Payment succeeded" in html
    assert "$14.50" in html and payment.stripe_charge_id in html
    assert 'name="_save"' not in html  # read-only: money changes only through services


def test_payment_list_pins_its_queries(sandbox, staff_client, django_assert_max_num_queries):
    for _ in range(5):
        payment_start(order=make_order())

    with django_assert_max_num_queries(8):
        assert staff_client.get("/admin/payments/payment/").status_code == 200


def test_mirrors_cannot_be_added_or_deleted_by_hand(staff_client):
    assert staff_client.get("/admin/payments/payment/add/").status_code == 403
    assert staff_client.get("/admin/orders/order/add/").status_code == 403
    assert staff_client.get("/admin/payments/paymentevent/add/").status_code == 403


def test_ledger_rows_cannot_be_changed_or_deleted(sandbox):
    payment = payment_start(order=make_order())
    entry = payment.events.get()

    with pytest.raises(Exception, match="append-only"):
        entry.save()
    with pytest.raises(Exception, match="append-only"):
        entry.delete()
    assert PaymentEvent.objects.filter(pk=entry.pk).exists()


def test_reprocess_action_queues_events_again(staff_client, django_capture_on_commit_callbacks):
    event = WebhookEvent.objects.create(
        stripe_id="evt_failed", type="payment_intent.succeeded", payload={"id": "evt_failed"},
        status=WebhookEvent.Status.FAILED, last_error="GatewayUnavailable: down",
    )

    with django_capture_on_commit_callbacks() as callbacks:
        response = staff_client.post(
            "/admin/payments/webhookevent/",
            {"action": "reprocess", "_selected_action": [event.pk]},
            follow=True,
        )

    assert "1 event(s) queued for processing." in response.content.decode()
    assert len(callbacks) == 1
    event.refresh_from_db()
    assert event.status == WebhookEvent.Status.PENDING


def test_reprocess_needs_the_change_permission(client):
    viewer = UserFactory(username="viewer", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_webhookevent"))
    client.force_login(viewer)
    event = WebhookEvent.objects.create(
        stripe_id="evt_x", type="charge.succeeded", payload={}, status="failed"
    )

    listing = client.get("/admin/payments/webhookevent/")
    client.post("/admin/payments/webhookevent/",
                {"action": "reprocess", "_selected_action": [event.pk]})

    assert listing.status_code == 200
    assert "reprocess" not in listing.content.decode()
    assert WebhookEvent.objects.get(pk=event.pk).status == "failed"


def test_order_admin_shows_lines_and_payments(sandbox, staff_client):
    payment = payment_start(order=make_order(unit_amount=999, quantity=3))

    page = staff_client.get(f"/admin/orders/order/{payment.order_id}/change/")

    assert page.status_code == 200
    html = page.content.decode()
    assert "$29.97" in html and payment.stripe_id in html
    assert Payment.objects.count() == 1


# --- Finding 4 of issue 7: a staff Save reverted a paid order ----------------------------------


def test_order_page_has_no_save_and_a_stale_form_cannot_revert_a_paid_order(sandbox, staff_client):
    payment = payment_start(order=make_order(unit_amount=1200))
    url = f"/admin/orders/order/{payment.order_id}/change/"
    page = staff_client.get(url)  # staff opens the order while the customer is paying
    payment_confirm(payment=payment, payment_method="pm_card_visa", return_url=RETURN_URL)
    assert Order.objects.get(pk=payment.order_id).status == Order.Status.PAID

    # What the browser's Save would post back: the form as it was loaded.
    saved = staff_client.post(url, {"_save": "Save", **_form_fields(page)})

    assert 'name="_save"' not in page.content.decode()
    assert saved.status_code == 403
    order = Order.objects.get(pk=payment.order_id)
    assert (order.status, order.paid_at is not None) == (Order.Status.PAID, True)


def _form_fields(page) -> dict:
    import re

    html = page.content.decode()
    return dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', html))


def test_webhook_event_page_has_no_save_even_with_the_change_permission(staff_client):
    event = WebhookEvent.objects.create(
        stripe_id="evt_view", type="charge.succeeded", payload={"id": "evt_view"},
        status=WebhookEvent.Status.PENDING,
    )
    url = f"/admin/payments/webhookevent/{event.pk}/change/"
    page = staff_client.get(url)
    WebhookEvent.objects.filter(pk=event.pk).update(status="processed")  # a worker meanwhile

    saved = staff_client.post(url, {"_save": "Save"})

    assert page.status_code == 200 and 'name="_save"' not in page.content.decode()
    assert saved.status_code == 403
    assert WebhookEvent.objects.get(pk=event.pk).status == "processed"
