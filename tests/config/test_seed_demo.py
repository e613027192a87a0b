import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.http import HttpRequest

from orders.management.commands.seed_demo import DEMO_CUSTOMER, DEMO_STAFF


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
