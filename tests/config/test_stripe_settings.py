"""Stripe settings with DEBUG off: a Stripe key never falls back to the sandbox's public values,
a missing secret stops every process before it starts, mixtures of sandbox values and Stripe
keys fail `check` (so `migrate` and `runserver` refuse them), and the sandbox alone fails
`check --deploy`. DEBUG on (`make run`) keeps the sandbox defaults."""

import os
import subprocess
import sys

import pytest

from config import checks
from config.settings.base import MISSING_STRIPE_MESSAGE
from tests.config.test_settings import PASSED_THROUGH, PRODUCTION_ENV, run_manage
from tests.conftest import REPO_ROOT

STRIPE_VARIABLES = ("STRIPE_SECRET_KEY", "STRIPE_PUBLISHABLE_KEY", "STRIPE_WEBHOOK_SECRET")
# PRODUCTION_ENV without any Stripe variable: what a deployment that forgot them all runs.
NO_STRIPE_ENV = {k: v for k, v in PRODUCTION_ENV.items() if k not in STRIPE_VARIABLES}
PRINT_STRIPE_SETTINGS = (
    "from django.conf import settings as s; "
    "print(repr((s.STRIPE_API_BASE, s.STRIPE_WEBHOOK_SECRET, s.STRIPE_PUBLISHABLE_KEY)))"
)


def without(*names: str) -> dict[str, str]:
    return {k: v for k, v in PRODUCTION_ENV.items() if k not in names}


def test_production_keys_talk_to_stripe_with_their_own_secrets():
    result = run_manage("shell", "-c", PRINT_STRIPE_SETTINGS, env=PRODUCTION_ENV)

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == repr(
        (None, PRODUCTION_ENV["STRIPE_WEBHOOK_SECRET"], PRODUCTION_ENV["STRIPE_PUBLISHABLE_KEY"])
    )


@pytest.mark.parametrize(
    "missing",
    [("STRIPE_WEBHOOK_SECRET",), ("STRIPE_PUBLISHABLE_KEY",),
     ("STRIPE_WEBHOOK_SECRET", "STRIPE_PUBLISHABLE_KEY")],
)
def test_a_stripe_key_without_its_secrets_refuses_to_start(missing):
    result = run_manage("check", "--deploy", env=without(*missing))

    assert result.returncode != 0
    message = MISSING_STRIPE_MESSAGE.format(names=" and ".join(missing))
    assert result.stderr.strip() == f"paydesk: configuration error: {message}"


@pytest.mark.parametrize(
    "command",
    [["-c", "import config.wsgi"], ["-m", "celery", "-A", "config", "report"]],
    ids=["gunicorn-wsgi-import", "celery"],
)
def test_gunicorn_and_celery_refuse_a_missing_webhook_secret_too(command):
    """They load the settings without Django's checks and must stop all the same."""
    base = {k: v for k, v in os.environ.items() if k in PASSED_THROUGH}
    result = subprocess.run(
        [sys.executable, *command], cwd=REPO_ROOT,
        env={**base, **without("STRIPE_WEBHOOK_SECRET")},
        capture_output=True, text=True, timeout=120,
    )

    assert result.returncode != 0
    message = MISSING_STRIPE_MESSAGE.format(names="STRIPE_WEBHOOK_SECRET")
    assert f"ImproperlyConfigured: {message}" in result.stderr, result.stderr


LIVE = {"STRIPE_SECRET_KEY": "sk_live_example", "STRIPE_PUBLISHABLE_KEY": "pk_live_example"}
REAL_TEST = {"STRIPE_SECRET_KEY": "sk_test_example", "STRIPE_PUBLISHABLE_KEY": "pk_test_example"}


@pytest.mark.parametrize(
    ("stripe_env", "check_id", "message"),
    [
        pytest.param({**NO_STRIPE_ENV, "STRIPE_API_BASE": ""}, "paydesk.E003",
                     checks.SANDBOX_KEY_TO_STRIPE_MESSAGE, id="sandbox-key-to-stripe"),
        pytest.param({**PRODUCTION_ENV, "STRIPE_API_BASE": "http://127.0.0.1:12111"},
                     "paydesk.E004",
                     checks.LIVE_KEY_TO_SANDBOX_MESSAGE.format(base="http://127.0.0.1:12111"),
                     id="live-key-to-sandbox"),
        pytest.param({**PRODUCTION_ENV, "STRIPE_SECRET_KEY": "rk_live_example",
                      "STRIPE_API_BASE": "http://localhost:12111"}, "paydesk.E004",
                     checks.LIVE_KEY_TO_SANDBOX_MESSAGE.format(base="http://localhost:12111"),
                     id="restricted-live-key-to-localhost"),
        pytest.param({**PRODUCTION_ENV, "STRIPE_WEBHOOK_SECRET": "whsec_sandbox"},
                     "paydesk.E005", checks.WHSEC_SANDBOX_MESSAGE, id="live-key-sandbox-whsec"),
        pytest.param({**PRODUCTION_ENV, **REAL_TEST, "STRIPE_WEBHOOK_SECRET": "whsec_sandbox"},
                     "paydesk.E005", checks.WHSEC_SANDBOX_MESSAGE, id="test-key-sandbox-whsec"),
        pytest.param({**PRODUCTION_ENV, "STRIPE_PUBLISHABLE_KEY": "pk_test_sandbox"},
                     "paydesk.E006", checks.SANDBOX_PUBLISHABLE_KEY_MESSAGE,
                     id="live-key-sandbox-publishable"),
        pytest.param({**PRODUCTION_ENV, "STRIPE_PUBLISHABLE_KEY": "pk_test_example"},
                     "paydesk.E007",
                     checks.KEY_MODES_DIFFER_MESSAGE.format(secret_mode="live",
                                                            publishable_mode="test"),
                     id="live-secret-test-publishable"),
        pytest.param({**PRODUCTION_ENV, "STRIPE_SECRET_KEY": "sk_test_example"},
                     "paydesk.E007",
                     checks.KEY_MODES_DIFFER_MESSAGE.format(secret_mode="test",
                                                            publishable_mode="live"),
                     id="test-secret-live-publishable"),
        pytest.param(NO_STRIPE_ENV, "paydesk.E008",
                     checks.SANDBOX_IN_PRODUCTION_MESSAGE.format(
                         key="sk_test_sandbox", base="http://127.0.0.1:12111"),
                     id="all-sandbox-defaults"),
        pytest.param({**PRODUCTION_ENV, **REAL_TEST,
                      "STRIPE_API_BASE": "http://127.0.0.1:12111"}, "paydesk.E008",
                     checks.SANDBOX_IN_PRODUCTION_MESSAGE.format(
                         key="sk_test_example", base="http://127.0.0.1:12111"),
                     id="test-key-to-sandbox"),
    ],
)
def test_unsafe_stripe_settings_fail_the_deploy_check(stripe_env, check_id, message):
    result = run_manage("check", "--deploy", env=stripe_env)

    assert result.returncode != 0, result.stdout + result.stderr
    assert f"({check_id}) {message}" in result.stderr, result.stderr


def test_mixtures_fail_the_plain_check_that_migrate_and_runserver_run():
    result = run_manage(
        "check", env={**PRODUCTION_ENV, "STRIPE_WEBHOOK_SECRET": "whsec_sandbox"}
    )

    assert result.returncode != 0
    assert f"(paydesk.E005) {checks.WHSEC_SANDBOX_MESSAGE}" in result.stderr, result.stderr


def test_migrate_refuses_a_mixture_before_touching_the_database():
    env = {**PRODUCTION_ENV, "STRIPE_WEBHOOK_SECRET": "whsec_sandbox",
           "DATABASE_URL": "sqlite:///:memory:"}

    result = run_manage("migrate", "--noinput", env=env)

    assert result.returncode != 0
    assert "paydesk.E005" in result.stderr
    assert "Applying" not in result.stdout


def test_the_sandbox_alone_with_debug_off_passes_the_plain_check():
    """What the test suite and the docker-compose demo run: coherent, so it starts; only
    `check --deploy` refuses it (paydesk.E008 above)."""
    result = run_manage("check", env=NO_STRIPE_ENV)

    assert result.returncode == 0, result.stderr


def test_make_run_environment_has_no_errors():
    """`make run`: DEBUG on, no secret key, every Stripe default, the sandbox's URL."""
    env = {k: v for k, v in NO_STRIPE_ENV.items() if k != "DJANGO_SECRET_KEY"}
    env |= {"DJANGO_DEBUG": "true", "DATABASE_URL": "sqlite:///:memory:",
            "STRIPE_API_BASE": "http://127.0.0.1:12111"}

    result = run_manage("check", "--deploy", env=env)

    assert result.returncode == 0, result.stderr
    assert "paydesk.E" not in result.stdout + result.stderr
