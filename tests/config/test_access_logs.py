"""Access logs and worker logs, from the real processes: gunicorn (as gunicorn.conf.py sets it
up), runserver (as `make run` starts it) and a Celery worker write a request line or a task's
record with its card number, CVC, secret key and client secret as [REDACTED]."""

import os
import sys

import pytest
import requests
from django.db import connection

from tests.config.test_logging import SECRET_QUERY, assert_scrubbed
from tests.conftest import (
    database_url_for,
    free_port,
    start_web_process,
    stop_process,
    wait_for,
)
from tests.support.tasks import log_text

pytestmark = pytest.mark.django_db(transaction=True)

SECRET_PATH = f"/checkout/no-such-token/return/4000000000000002/?{SECRET_QUERY}"
SECRET_REFERER = f"https://shop.example/pay?{SECRET_QUERY}"


def _serve(command: list[str], port: int, log_path):
    """Runs `command` from the repo root on the test database; returns it once it answers."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": database_url_for(connection.settings_dict),
        "PYTHONUNBUFFERED": "1",
    }
    return start_web_process(command, env=env, port=port, log_path=log_path,
                             probe="/no-such-page/")


def _request_with_secrets(port: int) -> None:
    response = requests.get(f"http://127.0.0.1:{port}{SECRET_PATH}",
                            headers={"Referer": SECRET_REFERER}, timeout=10)
    assert response.status_code == 404


def _access_lines(log_path, marker: str) -> list[str]:
    return [line for line in log_path.read_text().splitlines()
            if marker in line and "GET /checkout/no-such-token/return/" in line]


def test_gunicorn_access_and_error_logs_are_scrubbed(tmp_path):
    port = free_port()
    log_path = tmp_path / "gunicorn.log"
    # No --access-logfile: gunicorn.conf.py turns the access log on.
    process = _serve([sys.executable, "-m", "gunicorn", "config.wsgi",
                      "--bind", f"127.0.0.1:{port}", "--workers", "1"], port, log_path)
    try:
        _request_with_secrets(port)
        wait_for(lambda: _access_lines(log_path, '" 404 '), what="gunicorn's access line")
    finally:
        stop_process(process)

    log = log_path.read_text()
    (access_line,) = _access_lines(log_path, '" 404 ')
    assert_scrubbed(access_line)
    assert "payment_intent_client_secret=[REDACTED]" in access_line
    assert "shop.example/pay?" in access_line  # the Referer, scrubbed too
    assert_scrubbed(log)


def test_runserver_access_lines_are_scrubbed(tmp_path):
    port = free_port()
    log_path = tmp_path / "runserver.log"
    process = _serve([sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}",
                      "--noreload", "--skip-checks"], port, log_path)
    try:
        _request_with_secrets(port)
        wait_for(lambda: _access_lines(log_path, "django.server"), what="runserver's access line")
    finally:
        stop_process(process)

    log = log_path.read_text()
    (access_line,) = _access_lines(log_path, "django.server")
    assert "payment_intent_client_secret=[REDACTED]" in access_line
    assert_scrubbed(access_line)
    assert_scrubbed(log)


@pytest.mark.worker
def test_celery_worker_task_logs_are_scrubbed(celery_worker, tmp_path):
    marker = tmp_path / "logged.txt"
    log_text.delay(f"card 4242424242424242 key sk_live_51HxAbCdEfGh {SECRET_QUERY}", str(marker))

    wait_for(marker.exists, what="the worker to run the task")
    wait_for(lambda: "task logged" in celery_worker.log(), what="the task's log line")
    (line,) = [line for line in celery_worker.log().splitlines() if "task logged" in line]
    assert_scrubbed(line)
    assert_scrubbed(celery_worker.log())
