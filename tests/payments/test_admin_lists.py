"""The back office's lists at scale and what staff see in them: a constant number of queries
whatever the number of payments, searches routed to an index by the shape of the term, filters,
the CSV export, badges, formatted amounts, the ledger timeline, read-only pages, and webhook
events linked to their payment and reprocessed with an audit trail."""

import csv
import io
import re
from datetime import UTC, datetime

import pytest
from django.contrib.admin.models import CHANGE, LogEntry
from django.db import connection
from django.test.utils import CaptureQueriesContext

from orders.admin_lists import COUNT_LIMIT, BoundedCountPaginator
from payments.models import (
    Customer,
    Dispute,
    Payment,
    PaymentEvent,
    PaymentMethod,
    Refund,
    WebhookEvent,
)
from payments.webhooks.processing import REPROCESSED
from tests.factories import UserFactory
from tests.payments.rows import make_payment, make_payments, staff_group

pytestmark = pytest.mark.django_db

PAYMENTS = "/admin/payments/payment/"


def listed(response) -> list[str]:
    """The Stripe ids of the payments on a list page, in order."""
    assert response.status_code == 200, response.content[:500]
    html = response.content.decode()
    return re.findall(r'class="field-__str__"><a href="[^"]+">([^<]+)</a>', html)


def queries(client, url: str) -> int:
    with CaptureQueriesContext(connection) as captured:
        assert client.get(url).status_code == 200
    return len(captured)


# --- Queries do not grow with the table --------------------------------------------------------

LIST_URLS = [
    PAYMENTS,
    PAYMENTS + "?q=4242",
    PAYMENTS + "?q=ada@example.com",
    PAYMENTS + "?q=pi_test00000001",
    PAYMENTS + "?q=something",
    PAYMENTS + "?status__exact=succeeded&currency=USD",
    PAYMENTS + "?refunded=partially&disputed=any",
    "/admin/payments/paymentevent/",
    "/admin/payments/webhookevent/",
    "/admin/orders/order/",
]


@pytest.mark.parametrize("url", LIST_URLS)
def test_a_list_costs_the_same_queries_for_10_and_500_payments(staff_client, customer, url):
    def add(count):
        for payment in make_payments(count, customer=customer):
            PaymentEvent.objects.create(payment=payment, kind="succeeded", source="webhook",
                                        amount=payment.amount)
            WebhookEvent.objects.create(
                stripe_id=f"evt_{payment.stripe_id}", type="payment_intent.succeeded",
                subject=f"payment_intent:{payment.stripe_id}", payload={}, status="processed",
            )

    add(10)
    with_10 = queries(staff_client, url)
    add(490)
    with_500 = queries(staff_client, url)

    assert with_10 == with_500
    assert with_500 <= 10


def test_the_payments_list_pins_its_queries(staff_client, django_assert_num_queries):
    make_payments(150)

    # Session, user, the count (bounded), the page with its orders and customers, and the
    # currencies the filter offers.
    with django_assert_num_queries(5):
        staff_client.get(PAYMENTS)


def test_the_count_stops_at_the_limit(monkeypatch, staff_client):
    monkeypatch.setattr(BoundedCountPaginator, "count_limit", 5)
    make_payments(8)

    page = staff_client.get(PAYMENTS).content.decode()
    searched = staff_client.get(PAYMENTS + "?q=4242").content.decode()

    # Unfiltered: PostgreSQL's estimate of the table when it has one (the test database was
    # never analyzed), else "more than".
    assert "more than 5 payments" in page or "about" in page
    assert "more than 5 results" in searched
    assert COUNT_LIMIT == 10_000


# --- Searches: each shape of term goes to its index --------------------------------------------


@pytest.fixture
def three_payments():
    ada = UserFactory(username="ada-search", email="Ada.Lovelace@Example.com")
    first = make_payment(customer=ada, last4="1111")
    second = make_payment(last4="2222")
    third = make_payment(last4="1111", status=Payment.Status.REQUIRES_PAYMENT_METHOD)
    return first, second, third


@pytest.mark.parametrize(
    ("term", "expected"),
    [
        ("1111", [2, 0]),  # card's last 4, newest first
        ("pi_test{0}", [0]),  # a PaymentIntent id
        ("ch_test{0}", [0]),  # a charge id
        ("ada.lovelace@example.COM", [0]),  # the customer's e-mail, any case
        ("{order}", [1]),  # an order number
        ("{order_lower}", [1]),  # typed in lower case
        ("search", [0]),  # anything else: icontains over the newest payments (the username)
        ("9999", []),
    ],
)
def test_each_search_route_finds_its_payments(staff_client, three_payments, term, expected):
    first, second, _ = three_payments
    term = term.format(first.stripe_id.removeprefix("pi_test"), order=second.order.number,
                       order_lower=second.order.number.lower())

    found = listed(staff_client.get(PAYMENTS, {"q": term}))

    assert found == [three_payments[i].stripe_id for i in expected]


def test_each_search_route_is_an_exact_indexed_lookup(staff_client, three_payments):
    first, second, _ = three_payments
    routes = {
        "1111": '"payments_payment"."card_last4" = ',
        first.stripe_id: '"payments_payment"."stripe_id" = ',
        first.stripe_charge_id: '"payments_payment"."stripe_charge_id" = ',
        "ada.lovelace@example.com": 'UPPER("auth_user"."email"::text) = UPPER(',
        second.order.number: '"orders_order"."number" = ',
    }
    for term, condition in routes.items():
        with CaptureQueriesContext(connection) as captured:
            staff_client.get(PAYMENTS, {"q": term})
        sql = "\n".join(q["sql"] for q in captured)
        assert condition in sql, term
        assert "LIKE" not in sql, term


def test_an_unknown_term_is_looked_for_among_the_newest_payments_only(
    monkeypatch, staff_client, three_payments
):
    monkeypatch.setattr("payments.admin.payments.PaymentAdmin.search_fallback_window", 2)
    oldest = three_payments[0]

    assert listed(staff_client.get(PAYMENTS, {"q": "search"})) == []
    assert listed(staff_client.get(PAYMENTS, {"q": oldest.stripe_id})) == [oldest.stripe_id]


# --- Filters and badges ------------------------------------------------------------------------


@pytest.fixture
def flagged():
    plain = make_payment()
    partly = make_payment(refunded=1000)
    fully = make_payment(refunded=3600)
    disputed = make_payment(dispute_status="needs_response")
    lost = make_payment(dispute_status="lost", currency="EUR")
    failed = make_payment(status=Payment.Status.REQUIRES_PAYMENT_METHOD, currency="JPY",
                          amount=1500)
    return {"plain": plain, "partly": partly, "fully": fully, "disputed": disputed,
            "lost": lost, "failed": failed}


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("refunded=none", {"plain", "disputed", "lost", "failed"}),
        ("refunded=partially", {"partly"}),
        ("refunded=fully", {"fully"}),
        ("disputed=any", {"disputed", "lost"}),
        ("disputed=open", {"disputed"}),
        ("disputed=lost", {"lost"}),
        ("disputed=none", {"plain", "partly", "fully", "failed"}),
        ("status__exact=requires_payment_method", {"failed"}),
        ("currency=EUR", {"lost"}),
        ("currency=JPY&status__exact=succeeded", set()),
    ],
)
def test_filters(staff_client, flagged, query, expected):
    found = set(listed(staff_client.get(f"{PAYMENTS}?{query}")))

    assert found == {flagged[name].stripe_id for name in expected}


def test_the_currency_filter_offers_the_currencies_of_the_payments(staff_client, flagged):
    page = staff_client.get(PAYMENTS).content.decode()
    filters = page[page.index('id="changelist-filter"'):]

    for currency in ("EUR", "JPY", "USD"):
        assert f"?currency={currency}" in filters


def test_the_date_filters(staff_client):
    old = make_payment(created_at=datetime(2026, 10, 3, 9, tzinfo=UTC))
    new = make_payment(created_at=datetime(2026, 11, 20, 9, tzinfo=UTC),
                       succeeded_at=datetime(2026, 11, 21, 9, tzinfo=UTC))

    october = listed(staff_client.get(
        PAYMENTS, {"created_at__gte": "2026-10-01 00:00:00+00:00",
         "created_at__lt": "2026-11-01 00:00:00+00:00"}))
    succeeded_21st = listed(staff_client.get(
        PAYMENTS, {"succeeded_at__gte": "2026-11-21 00:00:00+00:00",
         "succeeded_at__lt": "2026-11-22 00:00:00+00:00"}))

    assert october == [old.stripe_id]
    assert succeeded_21st == [new.stripe_id]


def test_badges_and_amounts_in_the_list(staff_client, flagged):
    html = staff_client.get(PAYMENTS).content.decode()
    rows = {sid: row for sid, row in re.findall(
        r'<tr>.*?>(pi_test\d+)</a>(.*?)</tr>', html, re.DOTALL)}

    assert 'badge-partially-refunded' in rows[flagged["partly"].stripe_id]
    assert ">partially refunded<" in rows[flagged["partly"].stripe_id]
    assert ">refunded<" in rows[flagged["fully"].stripe_id]
    assert ">disputed<" in rows[flagged["disputed"].stripe_id]
    assert 'title="Dispute: lost"' in rows[flagged["lost"].stripe_id]
    assert "badge" not in rows[flagged["plain"].stripe_id]
    assert "$36.00" in rows[flagged["plain"].stripe_id]
    assert "¥1,500" in rows[flagged["failed"].stripe_id]


def test_only_indexed_columns_sort(staff_client, flagged):
    html = staff_client.get(PAYMENTS).content.decode()

    assert re.search(r'class="sortable[^"]*column-created_at', html)
    assert not re.search(r'class="sortable[^"]*column-amount_display', html)


# --- CSV export --------------------------------------------------------------------------------


def export(client, query: str = "") -> list[dict]:
    response = client.get(PAYMENTS + "export.csv" + query)
    assert response.status_code == 200
    assert response.streaming
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="payments-')
    text = b"".join(response.streaming_content).decode()
    return list(csv.DictReader(io.StringIO(text)))


def test_csv_has_decimal_amounts_in_each_currency(staff_client):
    usd = make_payment(currency="USD", amount=3600, refunded=1050)
    jpy = make_payment(currency="JPY", amount=1500)
    kwd = make_payment(currency="KWD", amount=12340, dispute_status="under_review")

    rows = {row["payment"]: row for row in export(staff_client)}

    assert {k: rows[usd.stripe_id][k] for k in
            ("currency", "amount", "amount_received", "amount_refunded", "refunded")} == {
        "currency": "USD", "amount": "36.00", "amount_received": "36.00",
        "amount_refunded": "10.50", "refunded": "partially refunded"}
    assert (rows[jpy.stripe_id]["amount"], rows[jpy.stripe_id]["amount_refunded"]) == (
        "1500", "0")
    assert (rows[kwd.stripe_id]["amount"], rows[kwd.stripe_id]["dispute_status"]) == (
        "12.340", "under_review")
    assert rows[usd.stripe_id]["order"] == usd.order.number
    assert rows[usd.stripe_id]["charge"] == usd.stripe_charge_id
    assert rows[usd.stripe_id]["card_last4"] == "4242"


def test_csv_holds_exactly_the_filtered_and_searched_list(staff_client, flagged):
    refunded = export(staff_client, "?refunded=partially")
    searched = export(staff_client, f"?q={flagged['lost'].stripe_id}")
    everything = export(staff_client)

    assert [r["payment"] for r in refunded] == [flagged["partly"].stripe_id]
    assert [r["payment"] for r in searched] == [flagged["lost"].stripe_id]
    # In the list's order, newest first, across pages.
    assert [r["payment"] for r in everything] == [
        p.stripe_id for p in Payment.objects.order_by("-created_at", "-id")]


def test_the_list_links_its_export_with_the_current_filters(staff_client, flagged):
    html = staff_client.get(PAYMENTS + "?refunded=fully&q=4242").content.decode()

    link = re.search(r'href="([^"]*export\.csv[^"]*)"', html)[1].replace("&amp;", "&")
    assert link.startswith(PAYMENTS + "export.csv?")
    assert set(link.split("?", 1)[1].split("&")) == {"refunded=fully", "q=4242"}


def test_csv_needs_the_view_permission(client, flagged):
    clerk = UserFactory(username="clerk", is_staff=True)
    client.force_login(clerk)

    assert client.get(PAYMENTS + "export.csv").status_code == 403


def test_csv_cells_are_not_spreadsheet_formulas(staff_client):
    customer = UserFactory(username="mallory", email="=HYPERLINK(1)@example.com")
    make_payment(customer=customer)

    (row,) = export(staff_client)

    assert row["customer_email"] == "'=HYPERLINK(1)@example.com"


# --- The payment's page, the order's page, the ledger list -------------------------------------


def test_the_timeline_shows_each_entry_once(staff_client, staff):
    payment = make_payment()
    for kind in ("requested", "succeeded"):
        PaymentEvent.objects.create(payment=payment, kind=kind, source="checkout",
                                    amount=3600 if kind == "succeeded" else None)
    PaymentEvent.objects.create(payment=payment, kind="refund_succeeded", source="admin",
                                amount=1050, actor=staff, reference="re_1")

    html = staff_client.get(f"{PAYMENTS}{payment.pk}/change/").content.decode()
    timeline = html[html.index("Timeline (ledger)"):]
    timeline = timeline[:timeline.index("</table>")]

    assert timeline.count("Payment requested") == 1
    assert timeline.count("Payment succeeded") == 1
    assert timeline.count("Refund succeeded") == 1
    assert 'class="original"' not in timeline
    assert "$10.50" in timeline and "$36.00" in timeline


def test_the_payment_page_loads_its_timeline_in_a_constant_number_of_queries(staff_client, staff):
    payment = make_payment()

    def page_queries():
        return queries(staff_client, f"{PAYMENTS}{payment.pk}/change/")

    PaymentEvent.objects.create(payment=payment, kind="requested", source="checkout")
    one = page_queries()
    for i in range(20):
        PaymentEvent.objects.create(payment=payment, kind="refund_succeeded", source="admin",
                                    amount=10, actor=staff, reference=f"re_{i}")

    assert page_queries() == one


def test_the_payment_page_formats_its_refunds_and_disputes(staff_client):
    payment = make_payment(currency="KWD", amount=12340, refunded=2000)
    Refund.objects.create(payment=payment, stripe_id="re_kwd", amount=2000, currency="KWD",
                          status="succeeded")
    Dispute.objects.create(payment=payment, stripe_id="du_kwd", amount=10340, currency="KWD",
                           status="needs_response")

    html = staff_client.get(f"{PAYMENTS}{payment.pk}/change/").content.decode()
    refunds = html[html.index('id="refunds-group"'):]
    disputes = html[html.index('id="disputes-group"'):]

    assert "KWD2.000" in refunds[:refunds.index("</table>")]
    assert "KWD10.340" in disputes[:disputes.index("</table>")]
    assert ">2000<" not in html and ">10340<" not in html


def test_the_order_page_formats_lines_and_payments(staff_client):
    payment = make_payment(currency="JPY", amount=1500, refunded=500)

    html = staff_client.get(f"/admin/orders/order/{payment.order_id}/change/").content.decode()

    lines = html[html.index('id="lines-group"'):]
    payments = html[html.index('id="payments-group"'):]
    assert "¥1,500" in lines[:lines.index("</table>")]
    assert ">1500<" not in html
    assert "¥500" in payments[:payments.index("</table>")]
    assert f"{PAYMENTS}{payment.pk}/change/" in payments


def test_the_ledger_list_formats_amounts_in_their_currency(staff_client):
    payment = make_payment(currency="KWD", amount=12340)
    PaymentEvent.objects.create(payment=payment, kind="succeeded", source="webhook",
                                amount=12340)

    html = staff_client.get("/admin/payments/paymentevent/").content.decode()

    assert "KWD" in html and "12.340" in html
    assert ">12340<" not in html


# --- Read-only pages: "View", never "Change", never Save ---------------------------------------


@pytest.fixture
def one_of_each(staff):
    payment = make_payment()
    event = PaymentEvent.objects.create(payment=payment, kind="requested", source="checkout")
    webhook = WebhookEvent.objects.create(stripe_id="evt_one", type="payment_intent.succeeded",
                                          subject=f"payment_intent:{payment.stripe_id}",
                                          payload={"id": "evt_one"}, status="failed")
    customer = Customer.objects.create(user=payment.order.customer, stripe_id="cus_1",
                                       idempotency_key="customer:1")
    method = PaymentMethod.objects.create(customer=customer, stripe_id="pm_1", brand="visa",
                                          last4="4242")
    return {"payment": payment, "paymentevent": event, "webhookevent": webhook,
            "customer": customer, "paymentmethod": method, "order": payment.order}


@pytest.mark.parametrize("model", ["payment", "paymentevent", "webhookevent", "customer",
                                   "paymentmethod", "order"])
@pytest.mark.parametrize("who", ["superuser", "finance", "support"])
def test_mirrors_are_viewed_never_changed(client, staff, one_of_each, model, who):
    user = staff if who == "superuser" else UserFactory(username=who, is_staff=True)
    if who != "superuser":
        user.groups.add(staff_group(who.capitalize()))
    client.force_login(user)
    app = "orders" if model == "order" else "payments"
    obj = one_of_each[model]

    page = client.get(f"/admin/{app}/{model}/{obj.pk}/change/").content.decode()
    listing = client.get(f"/admin/{app}/{model}/").content.decode()
    title = re.search(r"<title>(.*?)</title>", page)[1]

    assert title.split(" | ")[1].startswith("View "), title
    assert 'name="_save"' not in page and 'name="_continue"' not in page
    assert "<h1>Select " in listing and " to view</h1>" in listing
    assert " to change</h1>" not in listing


# --- Webhook events: their payment, and reprocessing -------------------------------------------


@pytest.fixture
def webhook(sandbox):
    payment = make_payment()
    Refund.objects.create(payment=payment, stripe_id="re_linked", amount=100, currency="USD",
                          status="succeeded")
    Dispute.objects.create(payment=payment, stripe_id="du_linked", amount=3600, currency="USD",
                           status="needs_response")
    event = WebhookEvent.objects.create(
        stripe_id="evt_linked", type="payment_intent.payment_failed",
        subject=f"payment_intent:{payment.stripe_id}", payload={"id": "evt_linked"},
        status=WebhookEvent.Status.FAILED_PERMANENTLY, last_error="gave up",
    )
    return payment, event


def test_an_event_links_to_its_payment_in_the_list_and_on_its_page(staff_client, webhook):
    payment, event = webhook
    others = [
        WebhookEvent.objects.create(stripe_id=f"evt_{subject}", type="x", subject=subject,
                                    payload={})
        for subject in (f"charge:{payment.stripe_charge_id}", "refund:re_linked",
                        "dispute:du_linked", "refund:re_unknown", "")
    ]
    link = f'href="{PAYMENTS}{payment.pk}/change/"'

    listing = staff_client.get("/admin/payments/webhookevent/").content.decode()
    page = staff_client.get(f"/admin/payments/webhookevent/{event.pk}/change/").content.decode()

    assert listing.count(link) == 4  # intent, charge, refund and dispute; not the unknown
    assert link in page and payment.stripe_id in page
    assert len(others) == 5


def test_the_payment_page_links_to_its_webhook_events(staff_client, webhook):
    payment, event = webhook

    page = staff_client.get(f"{PAYMENTS}{payment.pk}/change/").content.decode()
    url = re.search(r'href="(/admin/payments/webhookevent/\?q=[^"]+)"', page)[1]

    assert event.stripe_id in staff_client.get(url).content.decode()


def test_reprocess_button_queues_the_event_and_audits_it(
    staff_client, staff, webhook, django_capture_on_commit_callbacks
):
    payment, event = webhook
    page = staff_client.get(f"/admin/payments/webhookevent/{event.pk}/change/").content.decode()
    action = f"/admin/payments/webhookevent/{event.pk}/actions/reprocess_event/"

    with django_capture_on_commit_callbacks() as callbacks:
        response = staff_client.post(action, follow=True)

    assert f'action="{action}"' in page and ">Reprocess</button>" in page
    assert "1 event(s) queued for processing." in response.content.decode()
    assert len(callbacks) == 1
    event.refresh_from_db()
    assert event.status == WebhookEvent.Status.PENDING
    audit = PaymentEvent.objects.get(payment=payment, kind=PaymentEvent.Kind.WEBHOOK_REPROCESSED)
    assert (audit.actor, audit.source, audit.stripe_event_id) == (staff, "admin", "evt_linked")
    assert audit.message == REPROCESSED.format(
        stripe_id="evt_linked", type="payment_intent.payment_failed",
        status="failed_permanently")
    history = LogEntry.objects.get(object_id=str(event.pk))
    assert (history.user, history.action_flag) == (staff, CHANGE)
    assert "evt_linked" in history.get_change_message()


def test_reprocessing_an_event_about_no_payment_is_audited_in_the_admin_history(
    staff_client, staff
):
    event = WebhookEvent.objects.create(stripe_id="evt_lone", type="customer.created",
                                        payload={}, status=WebhookEvent.Status.IGNORED)

    staff_client.post(f"/admin/payments/webhookevent/{event.pk}/actions/reprocess_event/")

    assert LogEntry.objects.filter(object_id=str(event.pk), user=staff).count() == 1
    assert not PaymentEvent.objects.filter(kind=PaymentEvent.Kind.WEBHOOK_REPROCESSED).exists()


def test_the_list_action_audits_each_event(staff_client, staff, webhook):
    payment, event = webhook

    staff_client.post("/admin/payments/webhookevent/",
                      {"action": "reprocess", "_selected_action": [event.pk]})

    assert payment.events.filter(kind="webhook_reprocessed", actor=staff).count() == 1
    assert LogEntry.objects.filter(object_id=str(event.pk)).count() == 1


def test_reprocess_is_a_post_by_staff_who_may(client, webhook):
    _, event = webhook
    support = UserFactory(username="support-agent", is_staff=True)
    support.groups.add(staff_group("Support"))
    client.force_login(support)
    action = f"/admin/payments/webhookevent/{event.pk}/actions/reprocess_event/"

    page = client.get(f"/admin/payments/webhookevent/{event.pk}/change/").content.decode()
    refused = client.post(action)

    assert "Reprocess" not in page
    assert refused.status_code == 403
    assert WebhookEvent.objects.get(pk=event.pk).status == WebhookEvent.Status.FAILED_PERMANENTLY
    assert not LogEntry.objects.exists()


def test_reprocess_is_never_a_get(staff_client, webhook):
    _, event = webhook

    response = staff_client.get(f"/admin/payments/webhookevent/{event.pk}/actions/reprocess_event/")

    assert response.status_code == 405
    assert WebhookEvent.objects.get(pk=event.pk).status == WebhookEvent.Status.FAILED_PERMANENTLY


@pytest.mark.parametrize(
    ("term", "expected"),
    [("evt_linked", 1), ("pi_test{n}", 1), ("ch_test{n}", 2), ("re_linked", 1),
     ("du_linked", 1)],
)
def test_webhook_search_routes(staff_client, webhook, term, expected):
    payment, _ = webhook
    n = payment.stripe_id.removeprefix("pi_test")
    for subject in (f"charge:ch_test{n}", "refund:re_linked", "dispute:du_linked"):
        WebhookEvent.objects.create(stripe_id=f"evt_{subject}", type="x", subject=subject,
                                    payload={})

    html = staff_client.get("/admin/payments/webhookevent/",
                            {"q": term.format(n=n)}).content.decode()

    assert len(re.findall(r'class="field-stripe_id"', html)) == expected


# --- Support: view-only, and a refund permission -----------------------------------------------


def test_support_sees_the_lists(client, flagged, webhook):
    support = UserFactory(username="support-agent", is_staff=True)
    support.groups.add(staff_group("Support"))
    client.force_login(support)

    for url in (PAYMENTS, PAYMENTS + "?q=4242", "/admin/payments/refund/",
                "/admin/payments/dispute/", "/admin/payments/webhookevent/",
                "/admin/payments/paymentevent/", "/admin/orders/order/"):
        assert client.get(url).status_code == 200, url
    assert len(export(client)) == Payment.objects.count()
    assert "reprocess" not in client.get("/admin/payments/webhookevent/").content.decode()
