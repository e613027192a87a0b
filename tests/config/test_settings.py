"""Production settings: deploy checks pass with a real deployment's environment; no secret key,
no start."""

import os
import secrets
import subprocess
import sys

from config.settings.base import MISSING_KEY_MESSAGE
from tests.conftest import REPO_ROOT

PRODUCTION_ENV = {
    "DJANGO_SETTINGS_MODULE": "config.settings.base",
    "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
    "DJANGO_ALLOWED_HOSTS": "pay.example.com",
    "DATABASE_URL": "postgres://paydesk:secret@db.internal:5432/paydesk",
    "CELERY_BROKER_URL": "redis://redis.internal:6379/0",
    "STRIPE_SECRET_KEY": "sk_live_example",
    "STRIPE_PUBLISHABLE_KEY": "pk_live_example",
    "STRIPE_WEBHOOK_SECRET": "whsec_example",
    "EMAIL_URL": "smtp+tls://paydesk:secret@smtp.internal:587",
    "CACHE_URL": "rediscache://redis.internal:6379/1",
}
PASSED_THROUGH = ("PATH", "HOME", "LANG", "PYTHONPATH", "VIRTUAL_ENV")


def run_manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if k in PASSED_THROUGH}
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=REPO_ROOT, env={**base, **env},
        capture_output=True, text=True, timeout=120,
    )


def test_production_settings_pass_the_deploy_check_with_no_warnings():
    result = run_manage("check", "--deploy", "--fail-level", "WARNING", env=PRODUCTION_ENV)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_without_a_mail_server_the_deploy_check_warns_that_receipts_are_not_sent():
    env = {k: v for k, v in PRODUCTION_ENV.items() if k != "EMAIL_URL"}

    result = run_manage("check", "--deploy", "--fail-level", "WARNING", env=env)

    assert result.returncode != 0
    assert "paydesk.W009" in result.stderr + result.stdout


def test_the_database_cache_in_production_is_a_deploy_warning():
    env = {k: v for k, v in PRODUCTION_ENV.items() if k != "CACHE_URL"}

    result = run_manage("check", "--deploy", "--fail-level", "WARNING", env=env)

    assert result.returncode != 0
    assert "paydesk.W010" in result.stderr + result.stdout


def test_debug_off_without_a_secret_key_refuses_to_start_with_a_clear_message():
    env = {k: v for k, v in PRODUCTION_ENV.items() if k != "DJANGO_SECRET_KEY"}

    result = run_manage("check", env=env)

    assert result.returncode != 0
    assert result.stderr.strip() == f"paydesk: configuration error: {MISSING_KEY_MESSAGE}"


def test_debug_on_runs_without_a_secret_key():
    env = {k: v for k, v in PRODUCTION_ENV.items() if k != "DJANGO_SECRET_KEY"}
    env |= {"DJANGO_DEBUG": "true", "DATABASE_URL": "sqlite:///:memory:"}

    result = run_manage("check", env=env)

    assert result.returncode == 0, result.stderr
