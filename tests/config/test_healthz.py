"""/healthz answers 200 when the database and broker answer, 503 naming the part that does not."""

import json
import os
import subprocess
import sys

import pytest

from config.celery import app as celery_app
from tests.conftest import REPO_ROOT

UNREACHABLE_REDIS = "redis://127.0.0.1:1/0"
UNREACHABLE_POSTGRES = "postgres://postgres@127.0.0.1:1/paydesk"


@pytest.fixture
def unreachable_broker(monkeypatch):
    # Celery reads CELERY_BROKER_URL from the environment before its configuration.
    monkeypatch.setenv("CELERY_BROKER_URL", UNREACHABLE_REDIS)
    monkeypatch.setattr(celery_app.conf, "broker_url", UNREACHABLE_REDIS)


@pytest.mark.django_db
def test_healthy_when_database_and_broker_answer(client):
    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok", "checks": {"database": "ok", "broker": "ok"}}
    assert "no-cache" in response["Cache-Control"]


@pytest.mark.django_db
def test_unreachable_broker_is_a_503_naming_the_broker(client, unreachable_broker):
    response = client.get("/healthz")

    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "error"
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["broker"].startswith("error: ")


def test_unreachable_database_is_a_503_naming_the_database():
    # A separate process, so this one's database connection stays as pytest-django set it up.
    script = (
        "import django, json; django.setup()\n"
        "from django.test import Client\n"
        "r = Client().get('/healthz')\n"
        "print(json.dumps({'status_code': r.status_code, 'body': r.json()}))\n"
    )
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": UNREACHABLE_POSTGRES,
        "DATABASE_CONN_MAX_AGE": "0",
    }
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO_ROOT, env=env,
        capture_output=True, text=True, timeout=60, check=True,
    )
    answer = json.loads(result.stdout.strip().splitlines()[-1])

    assert answer["status_code"] == 503
    assert answer["body"]["checks"]["database"].startswith("error: OperationalError")
    assert answer["body"]["checks"]["broker"] == "ok"


def test_healthz_only_answers_get(client):
    assert client.post("/healthz").status_code == 405
