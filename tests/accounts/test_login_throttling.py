"""Login throttling (django-axes), run for real: after AXES_FAILURE_LIMIT wrong passwords for one
username from one address, even the right password is refused with the lockout page until the
cool-off has passed; at the site's login and at the admin's."""

import logging
from datetime import UTC, datetime

import pytest
import time_machine
from axes.models import AccessAttempt
from django.conf import settings
from django.http import HttpRequest

from config.client_ip import client_ip
from config.lockout import LOCKED_OUT_MESSAGE, LOCKED_OUT_STATUS
from config.logging import scrub
from tests.factories import UserFactory

PASSWORD = "right-horse-battery-staple"
WRONG = "wrong-horse-battery-staple"
SITE_LOGIN = "/accounts/login/"
ADMIN_LOGIN = "/admin/login/"
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)

pytestmark = pytest.mark.django_db


@pytest.fixture
def user():
    """Staff, so that a right password succeeds at the admin's login too."""
    return UserFactory(username="ada", is_staff=True, password=PASSWORD)


def post_login(client, url, username, password, **extra):
    return client.post(url, {"username": username, "password": password}, **extra)


def logged_in(client) -> bool:
    return "_auth_user_id" in client.session


def fail(client, url, times, username="ada", **extra):
    for _ in range(times):
        response = post_login(client, url, username, WRONG, **extra)
        assert not logged_in(client)
    return response


@pytest.mark.parametrize(("url", "wrong"), [(SITE_LOGIN, 50), (ADMIN_LOGIN, 30)])
def test_after_many_wrong_passwords_the_right_one_is_refused_with_the_lockout_page(
    client, user, url, wrong
):
    fail(client, url, wrong)

    response = post_login(client, url, "ada", PASSWORD)

    assert response.status_code == LOCKED_OUT_STATUS == 429
    assert LOCKED_OUT_MESSAGE in response.content.decode()
    assert response["Retry-After"] == str(int(settings.AXES_COOLOFF_TIME.total_seconds()))
    assert not logged_in(client)


@pytest.mark.parametrize("url", [SITE_LOGIN, ADMIN_LOGIN])
def test_the_lockout_starts_at_the_failure_limit(client, user, url):
    assert settings.AXES_FAILURE_LIMIT == 5
    first = fail(client, url, settings.AXES_FAILURE_LIMIT - 1)
    assert first.status_code == 200  # the form again, with its error

    last = fail(client, url, 1)

    assert last.status_code == 429
    assert LOCKED_OUT_MESSAGE in last.content.decode()


def test_one_failure_short_of_the_limit_the_right_password_logs_in(client, user):
    fail(client, SITE_LOGIN, settings.AXES_FAILURE_LIMIT - 1)

    response = post_login(client, SITE_LOGIN, "ada", PASSWORD)

    assert response.status_code == 302
    assert logged_in(client)


def test_a_successful_login_resets_the_count(client, user):
    fail(client, SITE_LOGIN, settings.AXES_FAILURE_LIMIT - 1)
    assert post_login(client, SITE_LOGIN, "ada", PASSWORD).status_code == 302
    client.logout()

    # Without the reset these would make 2 * (limit - 1) failures: a lockout.
    fail(client, SITE_LOGIN, settings.AXES_FAILURE_LIMIT - 1)

    assert post_login(client, SITE_LOGIN, "ada", PASSWORD).status_code == 302
    assert logged_in(client)


def test_the_lockout_is_per_username_and_address(client, user):
    UserFactory(username="grace", password=PASSWORD)
    fail(client, SITE_LOGIN, settings.AXES_FAILURE_LIMIT)
    assert post_login(client, SITE_LOGIN, "ada", PASSWORD).status_code == 429

    # Another user at the attacker's address, and the victim at her own, still log in.
    assert post_login(client, SITE_LOGIN, "grace", PASSWORD).status_code == 302
    client.logout()
    assert post_login(
        client, SITE_LOGIN, "ada", PASSWORD, REMOTE_ADDR="198.51.100.23"
    ).status_code == 302


def test_after_the_cool_off_the_right_password_works(client, user):
    cool_off = settings.AXES_COOLOFF_TIME
    with time_machine.travel(T0, tick=False) as clock:
        fail(client, SITE_LOGIN, settings.AXES_FAILURE_LIMIT)

        clock.move_to(T0 + cool_off - (cool_off / 60))
        assert post_login(client, SITE_LOGIN, "ada", PASSWORD).status_code == 429
        # That refused attempt restarted the cool-off.
        restarted = T0 + cool_off - (cool_off / 60)

        clock.move_to(restarted + cool_off / 2)
        assert post_login(client, SITE_LOGIN, "ada", PASSWORD).status_code == 429
        restarted += cool_off / 2

        clock.move_to(restarted + cool_off + (cool_off / 60))
        assert post_login(client, SITE_LOGIN, "ada", PASSWORD).status_code == 302
        # Inside the travel: the session expires by the clock too.
        assert logged_in(client)


def test_behind_a_proxy_forged_forwarded_addresses_do_not_dodge_the_lockout(
    client, user, settings
):
    settings.PAYDESK_PROXY_COUNT = 1
    # The client makes up a new left-hand entry each time; the proxy appends the real address.
    for i in range(settings.AXES_FAILURE_LIMIT):
        post_login(
            client, SITE_LOGIN, "ada", WRONG,
            REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR=f"192.0.2.{i}, 203.0.113.7",
        )

    refused = post_login(
        client, SITE_LOGIN, "ada", PASSWORD,
        REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="192.0.2.99, 203.0.113.7",
    )
    other_client = post_login(
        client, SITE_LOGIN, "ada", PASSWORD,
        REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="198.51.100.23",
    )

    assert refused.status_code == 429
    assert other_client.status_code == 302
    assert set(AccessAttempt.objects.values_list("ip_address", flat=True)) == {"203.0.113.7"}


def test_no_password_is_logged_or_stored(client, user, caplog):
    secret = "hunter2-never-in-logs"
    caplog.set_level(logging.INFO)
    for _ in range(settings.AXES_FAILURE_LIMIT):
        post_login(client, SITE_LOGIN, "ada", secret)
    post_login(client, SITE_LOGIN, "ada", PASSWORD)

    axes_records = [r for r in caplog.records if r.name.startswith("axes")]
    assert any("Locking out" in r.getMessage() for r in axes_records)
    assert secret not in caplog.text and PASSWORD not in caplog.text
    attempt = AccessAttempt.objects.get()
    assert attempt.failures_since_start == settings.AXES_FAILURE_LIMIT + 1
    assert "password=" in attempt.post_data
    assert secret not in attempt.post_data and PASSWORD not in attempt.post_data


def test_the_test_client_logs_in_when_given_a_request(client, user):
    """Axes needs the request: tests call `client.login(request=HttpRequest(), ...)`."""
    assert client.login(request=HttpRequest(), username="ada", password=PASSWORD)


def _request(remote_addr=None, forwarded=None) -> HttpRequest:
    request = HttpRequest()
    if remote_addr:
        request.META["REMOTE_ADDR"] = remote_addr
    if forwarded is not None:
        request.META["HTTP_X_FORWARDED_FOR"] = forwarded
    return request


def test_client_ip_without_a_proxy_ignores_x_forwarded_for(settings):
    settings.PAYDESK_PROXY_COUNT = 0

    assert client_ip(_request("203.0.113.7", "192.0.2.1")) == "203.0.113.7"
    assert client_ip(_request()) is None


@pytest.mark.parametrize(
    ("proxies", "forwarded", "expected"),
    [
        (1, "203.0.113.7", "203.0.113.7"),
        (1, "192.0.2.1, 203.0.113.7", "203.0.113.7"),
        (2, "192.0.2.1, 203.0.113.7, 10.0.0.9", "203.0.113.7"),
        (2, "203.0.113.7", "203.0.113.7"),
        (1, "", "10.0.0.2"),
    ],
)
def test_client_ip_behind_proxies_counts_from_the_right(settings, proxies, forwarded, expected):
    settings.PAYDESK_PROXY_COUNT = proxies

    assert client_ip(_request("10.0.0.2", forwarded)) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("username=ada&password=hunter2&next=/", "username=ada&password=[REDACTED]&next=/"),
        ('{"new_password1": "two words", "n": 1}', '{"new_password1": "[REDACTED]", "n": 1}'),
        ("{'password': 'hunter2'}", "{'password': '[REDACTED]'}"),
    ],
)
def test_the_log_filter_scrubs_password_fields(text, expected):
    """The second line of defence, for whatever else might log a login form's body."""
    assert scrub(text) == expected


def test_login_records_are_read_only_in_the_back_office(client, staff_client):
    for _ in range(2):
        post_login(client, SITE_LOGIN, "nobody", "wrong")
    attempt = AccessAttempt.objects.get()

    page = staff_client.get(f"/admin/axes/accessattempt/{attempt.pk}/change/")

    html = page.content.decode()
    assert page.status_code == 200
    assert "View access attempt" in html and 'name="_save"' not in html
