"""Fixtures shared by the whole suite: real services, started by the suite itself."""

import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.error import HTTPError
from urllib.parse import quote
from urllib.request import urlopen

import pytest

# Playwright's sync API keeps an event loop running in the test thread; Django would otherwise
# refuse database work during test-database setup and teardown.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

REPO_ROOT = Path(__file__).resolve().parent.parent
WORKER_READY_TIMEOUT = 60
# A `slow` or `timeout` fault's delay that no client ever waits out: the sandbox keeps the request
# until the test calls `sandbox.release_held()` (or the next reset), so a test asserts what
# happened while Stripe had not answered, never how long something took.
HOLD = 600.0


def database_url_for(settings_dict: dict) -> str:
    """A DATABASE_URL naming the same database as `settings_dict` (the test database)."""
    engine = settings_dict["ENGINE"]
    if engine.endswith("sqlite3"):
        return f"sqlite:///{settings_dict['NAME']}"
    user = quote(settings_dict.get("USER") or "")
    password = quote(settings_dict.get("PASSWORD") or "")
    auth = f"{user}:{password}@" if password else (f"{user}@" if user else "")
    host = settings_dict.get("HOST") or "127.0.0.1"
    port = settings_dict.get("PORT") or 5432
    return f"postgres://{auth}{host}:{port}/{settings_dict['NAME']}"


class CeleryWorker:
    """A real `celery worker` process consuming this test run's queues on the test database."""

    def __init__(self, process: subprocess.Popen, log_path: Path, queues: list[str]):
        self.process = process
        self.log_path = log_path
        self.queues = queues

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        stop_process(self.process)


def start_celery_worker(
    *, sandbox_server, log_path: Path, pool: str = "solo", concurrency: int = 1,
    pdf: bool = False, extra_env: dict[str, str] | None = None, queues: list[str] | None = None,
) -> CeleryWorker:
    """Starts `celery -A config worker` against the test database, the broker in
    CELERY_BROKER_URL and `sandbox_server`, in its own process group, and waits until it is
    ready. The caller must have unblocked database access.

    It consumes the webhooks, default and recovery queues; the pdf queue (receipts' rendering
    and e-mail) only with `pdf=True`, so receipts issued by other tests' payments are not
    rendered while those tests end and their data is flushed. `extra_env` adds to (or
    overrides) the worker's environment, e.g. EMAIL_URL to see what it sends; `queues` replaces
    the queues it consumes (e.g. a recovery queue of its own, away from the session's worker)."""
    from django.conf import settings
    from django.db import connection

    from payments.gateway import SANDBOX_TEST_KEY

    queues = queues or [settings.CELERY_WEBHOOKS_QUEUE, settings.CELERY_TASK_DEFAULT_QUEUE,
                        settings.CELERY_RECOVERY_QUEUE,
                        *([settings.CELERY_PDF_QUEUE] if pdf else [])]
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": database_url_for(connection.settings_dict),
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        "CELERY_TASK_DEFAULT_QUEUE": settings.CELERY_TASK_DEFAULT_QUEUE,
        "CELERY_PDF_QUEUE": settings.CELERY_PDF_QUEUE,
        "CELERY_WEBHOOKS_QUEUE": settings.CELERY_WEBHOOKS_QUEUE,
        "CELERY_RECOVERY_QUEUE": settings.CELERY_RECOVERY_QUEUE,
        "STRIPE_API_BASE": sandbox_server.url,
        "STRIPE_SECRET_KEY": SANDBOX_TEST_KEY,
        "STRIPE_WEBHOOK_SECRET": sandbox_server.webhook_secret,
        "PYTHONUNBUFFERED": "1",
        **(extra_env or {}),
    }
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [
                sys.executable, "-m", "celery", "-A", "config", "worker",
                "--pool", pool, "--concurrency", str(concurrency),
                "--queues", ",".join(queues),
                "--include", "tests.support.tasks",
                "--without-gossip", "--without-mingle", "--without-heartbeat",
                "--loglevel", "INFO",
                "--hostname", f"test-{os.getpid()}-{log_path.parent.name}-{log_path.stem}@%h",
            ],
            cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    worker = CeleryWorker(process, log_path, queues)
    deadline = time.monotonic() + WORKER_READY_TIMEOUT
    while " ready." not in worker.log():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"the Celery worker did not start:\n{worker.log()[-3000:]}")
        time.sleep(0.1)
    return worker


@pytest.fixture(scope="session")
def celery_worker(django_db_setup, django_db_blocker, tmp_path_factory, sandbox_server):
    """A solo-pool worker for the session, on the test database, the broker in
    CELERY_BROKER_URL (Redis under `make test`) and the session's Stripe sandbox. Tests that use
    it must commit their data: mark them `django_db(transaction=True)`."""
    with django_db_blocker.unblock():
        worker = start_celery_worker(
            sandbox_server=sandbox_server,
            log_path=tmp_path_factory.mktemp("celery") / "worker.log",
        )
    yield worker
    worker.stop()


def stop_process(process: subprocess.Popen, *, timeout: float = 15.0) -> None:
    """SIGTERM, then SIGKILL if the process is still running after `timeout` seconds."""
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_web_process(
    command: list[str], *, env: dict[str, str], port: int, log_path: Path, probe: str = "/healthz"
) -> subprocess.Popen:
    """Runs a web server `command` from the repo root with `env`, its output in `log_path`, and
    returns it once `probe` on `port` answers (any status); fails the test if it exits first."""
    with log_path.open("w") as log:
        process = subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=log,
                                   stderr=subprocess.STDOUT)

    def answering():
        if process.poll() is not None:
            pytest.fail(f"{' '.join(command[:4])} exited:\n{log_path.read_text()[-3000:]}")
        try:
            urlopen(f"http://127.0.0.1:{port}{probe}", timeout=2).close()
        except HTTPError:
            return True
        except OSError:
            return False
        return True

    wait_for(answering, timeout=30, interval=0.1, what=f"{command[2]} to answer")
    return process


def wait_for(predicate, *, timeout: float = 20.0, interval: float = 0.05, what: str = "condition"):
    """Polls `predicate` until it returns a truthy value (returned) or fails the test on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


# --- The suite's users: one set, for the test client and the browser alike ---------------------


@pytest.fixture
def password() -> str:
    """The password of every user the fixtures and UserFactory make."""
    from tests.factories import PASSWORD

    return PASSWORD


@pytest.fixture
def make_user(db):
    """Creates a user who can log in with `password`: `make_user("bob", first_name="Bob")`;
    `staff=True` makes a superuser who can use the whole admin. (Tests that need committed
    data, such as browser tests, get the transactional database instead of `db`.)"""
    from tests.factories import UserFactory

    def make(username: str, *, staff: bool = False, **fields):
        fields.setdefault("is_staff", staff)
        fields.setdefault("is_superuser", staff)
        return UserFactory(username=username, **fields)

    return make


@pytest.fixture
def customer(make_user):
    return make_user("ada", first_name="Ada", last_name="Lovelace")


@pytest.fixture
def other_customer(make_user):
    return make_user("bob", first_name="Bob", last_name="Bobson")


@pytest.fixture
def staff(make_user):
    return make_user("grace", staff=True, first_name="Grace", last_name="Hopper")


@pytest.fixture
def customer_client(client, customer):
    """Django's test client, logged in as `customer`."""
    client.force_login(customer)
    return client


@pytest.fixture
def staff_client(staff):
    """A test client of its own, logged in as `staff` (a superuser)."""
    from django.test import Client

    staff_client = Client()
    staff_client.force_login(staff)
    return staff_client


# --- The offline Stripe, over real HTTP, for the Django side's tests ---------------------------


@pytest.fixture(scope="session")
def sandbox_server():
    """The suite's one sandbox, for the session, on a free port, with short delays for tests:
    async transitions run on `advance()`, deliveries retry quickly and give up after 4 tries.
    Webhooks are not delivered anywhere until a test configures an endpoint (see `sandbox`)."""
    from payments.sandbox.server import start_in_thread

    server = start_in_thread(
        port=0,
        async_delay=None,
        webhook_backoff=(0.05, 0.1, 0.2),
        webhook_max_attempts=4,
        webhook_timeout=5.0,
        reorder_window=0.3,
        fault_delay=1.0,
    )
    yield server
    server.stop()


@pytest.fixture
def sandbox(sandbox_server, settings):
    """The session's sandbox, reset (faults, held requests, webhooks and objects gone), with
    Paydesk's settings pointing the SDK at it."""
    from payments.gateway import SANDBOX_TEST_KEY

    sandbox_server.reset()
    sandbox_server.configure_webhooks([], mode="normal")
    settings.STRIPE_API_BASE = sandbox_server.url
    settings.STRIPE_SECRET_KEY = SANDBOX_TEST_KEY
    settings.STRIPE_WEBHOOK_SECRET = sandbox_server.webhook_secret
    settings.PAYDESK_CHECKOUT_MODE = "test_cards"
    yield sandbox_server
    sandbox_server.configure_webhooks([], mode="normal")
