import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.http import HttpRequest

from orders.management.commands.seed_demo import DEMO_CUSTOMER, DEMO_STAFF, DEMO_TEAM


@pytest.mark.django_db
def test_seed_demo_is_idempotent_and_logins_work(client):
    call_command("seed_demo")
    call_command("seed_demo")

    User = get_user_model()
    assert User.objects.filter(username=DEMO_STAFF["username"], is_superuser=True).count() == 1
    assert User.objects.filter(username=DEMO_CUSTOMER["username"], is_staff=False).count() == 1
    assert client.login(
        request=HttpRequest(), username=DEMO_STAFF["username"], password=DEMO_STAFF["password"]
    )
    assert client.get("/admin/").status_code == 200


@pytest.mark.django_db
def test_seed_demo_gives_one_support_and_one_finance_member_of_staff(client):
    call_command("seed_demo")
    call_command("seed_demo")

    for member in DEMO_TEAM:
        user = get_user_model().objects.get(username=member["username"])
        assert (user.is_staff, user.is_superuser) == (True, False)
        assert list(user.groups.values_list("name", flat=True)) == [member["group"]]
    support = get_user_model().objects.get(username="support")
    finance = get_user_model().objects.get(username="finance")
    assert support.has_perm("payments.refund_payment")
    assert not support.has_perm("payments.approve_refund")
    assert finance.has_perm("payments.approve_refund")
    assert finance.has_perm("payments.respond_dispute")
    assert client.login(request=HttpRequest(), username="support", password="paydesk-support")
    assert client.get("/admin/payments/payment/").status_code == 200
