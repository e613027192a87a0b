"""Logging in for a token: throttled and locked out like the login pages, and log out."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.conf import settings
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from config.lockout import LOCKED_OUT_MESSAGE

pytestmark = pytest.mark.django_db
TOKEN = "/api/v1/auth/token/"
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def log_in(client, username="ada", password="wrong-horse"):
    return client.post(TOKEN, {"username": username, "password": password})


def test_the_right_password_gets_a_token_that_authenticates(anonymous, customer, password):
    response = log_in(anonymous, password=password)

    assert response.status_code == 200
    token = response.json()["token"]
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert client.get("/api/v1/orders/").status_code == 200


def test_a_wrong_password_is_refused_without_saying_which_part(anonymous, customer):
    response = log_in(anonymous)

    assert response.status_code == 400
    assert response.json()["error"] == {
        "type": "authentication_error", "code": "invalid_credentials", "param": None,
        "message": "Unable to log in with the provided username and password."}
    assert log_in(anonymous, username="nobody").json() == response.json()


def test_after_the_failure_limit_even_the_right_password_is_locked_out(anonymous, customer,
                                                                         password):
    for _ in range(settings.AXES_FAILURE_LIMIT):
        log_in(anonymous)

    response = log_in(anonymous, password=password)

    assert response.status_code == 429
    assert response.json()["error"] == {"type": "rate_limit_error", "code": "login_locked_out",
                                        "message": LOCKED_OUT_MESSAGE, "param": None}
    assert response["Retry-After"] == str(int(settings.AXES_COOLOFF_TIME.total_seconds()))
    assert not Token.objects.exists()


def test_the_lockout_ends_after_the_cool_off(anonymous, customer, password):
    with time_machine.travel(T0, tick=False):
        for _ in range(settings.AXES_FAILURE_LIMIT):
            log_in(anonymous)
    with time_machine.travel(T0 + settings.AXES_COOLOFF_TIME + timedelta(seconds=1), tick=False):
        response = log_in(anonymous, password=password)

    assert response.status_code == 200


def test_logging_in_is_rate_limited_per_address(anonymous, customer, password, settings):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {
        **settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "auth": "3/min"}}

    with time_machine.travel(T0, tick=False):
        statuses = [log_in(anonymous, password=password).status_code for _ in range(4)]

    assert statuses == [200, 200, 200, 429]


def test_delete_logs_out(api, customer):
    response = api.delete(TOKEN)

    assert response.status_code == 204
    assert not Token.objects.filter(user=customer).exists()
    assert api.get("/api/v1/orders/").status_code == 401


def test_unauthenticated_is_401_in_the_one_shape(anonymous):
    response = anonymous.get("/api/v1/payments/")

    assert response.status_code == 401
    assert response.json()["error"]["type"] == "authentication_error"
    assert response.json()["error"]["code"] == "authentication_required"
    assert response["WWW-Authenticate"] == "Token"


def test_a_bad_token_is_401(anonymous):
    anonymous.credentials(HTTP_AUTHORIZATION="Token nope")

    response = anonymous.get("/api/v1/payments/")

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_credentials"
