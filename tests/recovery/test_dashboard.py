"""Recovery's part of the admin index dashboard: rate, recovered amount, attempts per recovery
and open cases, linking to the cases list; only for staff who may view cases."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from recovery import services
from recovery.models import RecoveryCase
from tests.recovery.conftest import save_card

pytestmark = pytest.mark.django_db
T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


def test_a_recovered_case_shows_on_the_admin_index(sandbox, customer, plan, staff_client):
    with time_machine.travel(T0, tick=False):
        failing = save_card(customer, "pm_card_chargeCustomerFail")
        subscription = services.subscription_create(user=customer, plan=plan,
                                                    payment_method=failing, now=T0)
        services.subscription_card_update(subscription=subscription,
                                          payment_method=save_card(customer, "pm_card_visa"),
                                          now=T0 + timedelta(hours=1))
        assert RecoveryCase.objects.get().status == RecoveryCase.Status.RECOVERED

    with time_machine.travel(T0 + timedelta(days=1), tick=False):
        page = staff_client.get("/admin/").content.decode()

    section = page[page.index('id="recovery-dashboard"'):]
    assert "100%" in section and "1 recovered of 1 closed" in section
    assert "$15.00" in section
    assert "Attempts per recovery</th><td>2.0" in section
    assert "/admin/recovery/recoverycase/?status__exact=recovered" in section


def test_staff_who_cannot_view_cases_do_not_see_it(client, make_user):
    viewer = make_user("vic", is_staff=True)
    client.force_login(viewer)
    assert 'id="recovery-dashboard"' not in client.get("/admin/").content.decode()
