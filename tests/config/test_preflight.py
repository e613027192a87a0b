"""`make test` stops before the suite, saying what to install, when a service is unreachable."""

import os
import subprocess
import sys

from tests.conftest import REPO_ROOT, database_url_for


def preflight(database_url: str, broker_url: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "DATABASE_URL": database_url, "CELERY_BROKER_URL": broker_url}
    return subprocess.run([sys.executable, "tests/preflight.py"], cwd=REPO_ROOT, env=env,
                          capture_output=True, text=True, timeout=30)


def test_unreachable_services_stop_the_run_with_install_instructions():
    result = preflight("postgres://postgres@127.0.0.1:1/paydesk", "redis://127.0.0.1:1/0")

    assert result.returncode == 1
    assert "PostgreSQL is not reachable at 127.0.0.1:1" in result.stderr
    assert "apt-get install -y postgresql" in result.stderr
    assert "Redis is not reachable at 127.0.0.1:1" in result.stderr
    assert "apt-get install -y redis-server" in result.stderr


def test_reachable_services_pass(settings):
    from django.db import connection

    result = preflight(database_url_for(connection.settings_dict), settings.CELERY_BROKER_URL)

    assert result.returncode == 0, result.stderr
