"""The admin index's dashboard: today's and this month's volume and refunds per currency, open
disputes, refunds awaiting approval and failed webhook events, each figure a link to the list of
the rows it counts; at a fixed clock."""

import re
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext

from payments import selectors
from payments.admin.dashboard import dashboard_for
from payments.models import Dispute, Refund, WebhookEvent
from tests.factories import UserFactory
from tests.payments.rows import make_payment, staff_group

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 26, 15, 30, tzinfo=UTC)
TODAY = datetime(2026, 11, 26, 9, tzinfo=UTC)
EARLIER_THIS_MONTH = datetime(2026, 11, 2, 9, tzinfo=UTC)
LAST_MONTH = datetime(2026, 10, 31, 23, 59, tzinfo=UTC)


@pytest.fixture
def clock():
    with time_machine.travel(NOW, tick=False):
        yield


@pytest.fixture
def month(clock):
    """A month of payments, refunds, disputes and webhook events around NOW."""
    rows = {
        "usd_today": make_payment(currency="USD", amount=3600, succeeded_at=TODAY),
        "usd_today_2": make_payment(currency="USD", amount=1450, succeeded_at=TODAY),
        "usd_month": make_payment(currency="USD", amount=10000, succeeded_at=EARLIER_THIS_MONTH),
        "jpy_today": make_payment(currency="JPY", amount=1500, succeeded_at=TODAY),
        "kwd_month": make_payment(currency="KWD", amount=12340,
                                  succeeded_at=EARLIER_THIS_MONTH),
        # Not counted: last month, created this month but not succeeded.
        "usd_last_month": make_payment(currency="USD", amount=9900, succeeded_at=LAST_MONTH),
        "usd_failed": make_payment(currency="USD", amount=5000, status="requires_payment_method",
                                   created_at=TODAY),
    }
    refunds = [
        ("usd_today", 1000, "succeeded", TODAY),
        ("usd_month", 2500, "succeeded", EARLIER_THIS_MONTH),
        ("jpy_today", 500, "succeeded", TODAY),
        ("usd_month", 700, "failed", TODAY),
        ("usd_last_month", 900, "succeeded", LAST_MONTH),
        ("usd_today_2", 1450, "awaiting_approval", TODAY),
        ("kwd_month", 2000, "awaiting_approval", TODAY),
    ]
    for i, (name, amount, status, when) in enumerate(refunds):
        refund = Refund.objects.create(payment=rows[name], amount=amount,
                                       currency=rows[name].currency, status=status,
                                       stripe_id=None if status == "awaiting_approval"
                                       else f"re_{i}")
        Refund.objects.filter(pk=refund.pk).update(created_at=when)
    disputes = [
        ("du_overdue", "needs_response", NOW - timedelta(days=1)),
        ("du_soon", "warning_needs_response", NOW + timedelta(days=2)),
        ("du_later", "under_review", NOW + timedelta(days=9)),
        ("du_won", "won", NOW - timedelta(days=5)),
    ]
    for stripe_id, status, due in disputes:
        rows[stripe_id] = Dispute.objects.create(
            payment=rows["usd_month"], stripe_id=stripe_id, amount=100, currency="USD",
            status=status, evidence_due_by=due)
    for i, status in enumerate(["failed", "failed", "failed_permanently", "processed",
                                "pending"]):
        WebhookEvent.objects.create(stripe_id=f"evt_{i}", type="charge.succeeded", payload={},
                                    status=status)
    return rows


def test_selectors_sum_per_currency_today_and_this_month(month):
    volume = {t.currency: t for t in selectors.payment_volume_by_currency(now=NOW)}
    refunds = {t.currency: t for t in selectors.refund_volume_by_currency(now=NOW)}

    assert {c: (t.today, t.today_count, t.month, t.month_count) for c, t in volume.items()} == {
        "JPY": (1500, 1, 1500, 1),
        "KWD": (0, 0, 12340, 1),
        "USD": (3600 + 1450, 2, 3600 + 1450 + 10000, 3),
    }
    assert {c: (t.today, t.month) for c, t in refunds.items()} == {
        "JPY": (500, 500), "USD": (1000, 1000 + 2500)}
    assert selectors.disputes_open(now=NOW) == selectors.OpenDisputes(
        count=3, overdue=1, nearest_id=month["du_overdue"].pk,
        nearest_due=NOW - timedelta(days=1))
    assert [(r.currency, r.count, r.amount) for r in selectors.refunds_awaiting_approval()] == [
        ("KWD", 1, 2000), ("USD", 1, 1450)]
    assert selectors.webhook_events_failed() == {"failed": 2, "failed_permanently": 1}


def test_the_day_and_month_follow_the_clock_in_the_sites_time_zone(settings):
    settings.TIME_ZONE = "America/New_York"

    periods = selectors.calendar_periods(now=datetime(2026, 12, 1, 3, tzinfo=UTC))

    # 3 a.m. UTC on 1 December is still 30 November in New York.
    assert periods.today.isoformat() == "2026-11-30T00:00:00-05:00"
    assert periods.month.isoformat() == "2026-11-01T00:00:00-04:00"
    assert periods.next_month.isoformat() == "2026-12-01T00:00:00-05:00"


def test_the_dashboard_shows_the_figures(staff_client, month):
    html = staff_client.get("/admin/").content.decode()
    volume = section(html, "dashboard-volume")
    refunds = section(html, "dashboard-refunds")

    assert "Payments back office" in html
    assert row(volume, "USD") == ["$50.50 (2)", "$150.50 (3)"]
    assert row(volume, "JPY") == ["¥1,500 (1)", "¥1,500 (1)"]
    assert row(volume, "KWD") == ["KWD0.000 (0)", "KWD12.340 (1)"]
    assert row(refunds, "USD") == ["$10.00 (1)", "$35.00 (2)"]
    assert "$99.00" not in html  # last month's payment
    assert text(section(html, "dashboard-disputes")) == (
        "Open disputes 3, 1 overdue; evidence due first: 2026-11-25 15:30")
    assert text(section(html, "dashboard-awaiting-approval")) == (
        "Refunds awaiting approval 1 (KWD2.000), 1 ($14.50)")
    assert text(section(html, "dashboard-webhooks")) == (
        "Failed webhook events 2 retrying, 1 given up")


def test_each_figure_links_to_the_list_of_what_it_counts(staff_client, month):
    html = staff_client.get("/admin/").content.decode()

    def follow(fragment: str) -> str:
        return staff_client.get(fragment.replace("&amp;", "&")).content.decode()

    usd_today, usd_month = links(section(html, "dashboard-volume"), "USD")
    assert listed_ids(follow(usd_today)) == {month["usd_today"].stripe_id,
                                             month["usd_today_2"].stripe_id}
    assert listed_ids(follow(usd_month)) == {month[n].stripe_id for n in
                                             ("usd_today", "usd_today_2", "usd_month")}
    # The list's own date filter shows the period as chosen.
    assert re.search(r'<li class="selected">\s*<a href="[^"]*">Today</a>', follow(usd_today))
    assert re.search(r'<li class="selected">\s*<a href="[^"]*">This month</a>',
                     follow(usd_month))

    _, refunds_usd_month = links(section(html, "dashboard-refunds"), "USD")
    assert listed_refunds(follow(refunds_usd_month)) == {"re_0", "re_1"}

    disputes, overdue, nearest = re.findall(r'href="([^"]+)"',
                                            section(html, "dashboard-disputes"))
    assert listed_disputes(follow(disputes)) == {"du_overdue", "du_soon", "du_later"}
    assert listed_disputes(follow(overdue)) == {"du_overdue"}
    assert nearest == f"/admin/payments/dispute/{month['du_overdue'].pk}/change/"

    kwd, usd = re.findall(r'href="([^"]+)"', section(html, "dashboard-awaiting-approval"))
    assert "awaiting_approval" in kwd and "currency=KWD" in kwd
    assert len(listed_refunds(follow(usd))) == 1

    failed, given_up = re.findall(r'href="([^"]+)"', section(html, "dashboard-webhooks"))
    assert follow(failed).count('class="field-stripe_id"') == 2
    assert follow(given_up).count('class="field-stripe_id"') == 1


def test_the_dashboard_costs_a_fixed_number_of_queries(staff_client, month):
    with CaptureQueriesContext(connection) as few:
        staff_client.get("/admin/")
    for _ in range(20):
        make_payment(currency="EUR", succeeded_at=TODAY)
        make_payment(currency="GBP", succeeded_at=TODAY)
    with CaptureQueriesContext(connection) as more:
        staff_client.get("/admin/")

    assert len(few) == len(more)
    assert "€" in staff_client.get("/admin/").content.decode()


def test_support_sees_the_dashboard(client, month):
    support = UserFactory(username="support-agent", is_staff=True)
    support.groups.add(staff_group("Support"))
    client.force_login(support)

    html = client.get("/admin/").content.decode()

    for part in ("dashboard-volume", "dashboard-refunds", "dashboard-disputes",
                 "dashboard-awaiting-approval", "dashboard-webhooks"):
        assert f'id="{part}"' in html


def test_staff_see_only_the_parts_they_may_view(month):
    clerk = UserFactory(username="clerk", is_staff=True)

    dashboard = dashboard_for(user=clerk, now=NOW)

    assert dashboard.volume is None and dashboard.refunds is None
    assert dashboard.attention.disputes is None and dashboard.attention.webhooks_failed is None


# --- Reading the page --------------------------------------------------------------------------


def section(html: str, element_id: str) -> str:
    start = html.index(f'id="{element_id}"')
    tag = html.rfind("<", 0, start)
    name = re.match(r"<(\w+)", html[tag:])[1]
    return html[tag:html.index(f"</{name}>", start)]


def text(fragment: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", fragment)).replace(" ,", ",").replace(
        " ;", ";").strip()


def row(table: str, currency: str) -> list[str]:
    cells = re.search(rf"<th scope=\"row\">{currency}</th>(.*?)</tr>", table, re.DOTALL)[1]
    return [text(cell) for cell in re.findall(r"<td>(.*?)</td>", cells, re.DOTALL)]


def links(table: str, currency: str) -> list[str]:
    cells = re.search(rf"<th scope=\"row\">{currency}</th>(.*?)</tr>", table, re.DOTALL)[1]
    return re.findall(r'href="([^"]+)"', cells)


def listed_ids(html: str) -> set[str]:
    return set(re.findall(r'class="field-__str__"><a href="[^"]+">([^<]+)</a>', html))


def listed_refunds(html: str) -> set[str]:
    return listed_ids(html)


def listed_disputes(html: str) -> set[str]:
    return set(re.findall(r'class="field-stripe_id"><a href="[^"]+">([^<]+)</a>', html))
