"""Helpers shared by the benchmarks: a throwaway PostgreSQL database, Paydesk's production
environment, Stripe's webhook signature, and subprocesses that are always stopped.

Imported by bench/*/run.py, which put the repository on sys.path first."""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import math
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def postgres_urls(database: str) -> tuple[str, str]:
    """(admin URL, URL of `database`) on the server named by DATABASE_URL (default local)."""
    base_url = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/paydesk")
    if not base_url.startswith("postgres"):
        raise SystemExit(
            "DATABASE_URL must name PostgreSQL: the benchmarks measure the production stack"
        )
    server = base_url.rsplit("/", 1)[0]
    return f"{server}/postgres", f"{server}/{database}"


def psql(admin_url: str, sql: str) -> None:
    subprocess.run(["psql", admin_url, "-qc", sql], check=True, capture_output=True)


def database_recreate(admin_url: str, database: str) -> None:
    psql(admin_url, f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")
    psql(admin_url, f"CREATE DATABASE {database}")


def production_env(*, database_url: str, broker_url: str, webhook_secret: str,
                   **extra: str) -> dict[str, str]:
    """Paydesk's production settings module with DEBUG off, as a deployment sets them."""
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.base",
        "DJANGO_DEBUG": "false",
        "DJANGO_SECRET_KEY": "bench-" + "k" * 50,
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
        "DJANGO_SECURE_SSL_REDIRECT": "false",
        "DJANGO_LOG_LEVEL": "WARNING",
        "DATABASE_URL": database_url,
        "CELERY_BROKER_URL": broker_url,
        "STRIPE_WEBHOOK_SECRET": webhook_secret,
        **extra,
    }


def worker_bench_env(*, database: str, redis_url: str, prefix: str,
                     **extra: str) -> tuple[dict[str, str], Path]:
    """What the worker benchmarks start from: the PostgreSQL database dropped and made again,
    the Redis database flushed, a new work folder, and Paydesk's production environment on them
    with e-mail written to files and media stored in that folder. Returns (env, work)."""
    admin_url, database_url = postgres_urls(database)
    database_recreate(admin_url, database)
    subprocess.run(["redis-cli", "-u", redis_url, "flushdb"], check=True, capture_output=True)
    work = Path(tempfile.mkdtemp(prefix=prefix))
    env = production_env(
        database_url=database_url, broker_url=redis_url, webhook_secret="whsec_bench",
        DJANGO_LOG_LEVEL="INFO", DJANGO_LOG_FORMAT="text",
        # django-environ drops the first "/" of a filemail:// path: three, then the absolute path.
        EMAIL_URL="filemail:///" + str(work / "mail"), PAYDESK_MEDIA_ROOT=str(work / "media"),
        **extra,
    )
    return env, work


def django_setup_migrated(env: dict[str, str]) -> None:
    """Migrates the database `env` names, then sets Django up in this process on `env`."""
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v0"], cwd=REPO,
                   env=env, check=True)
    os.environ.update(env)
    import django

    django.setup()


@contextmanager
def sandbox_bench(*, database: str, redis_url: str,
                  prefix: str) -> Iterator[tuple[dict[str, str], Path, str, int]]:
    """worker_bench_env with the Stripe sandbox as its own process, the database migrated and
    Django set up in this process: yields (env, work, sandbox_url, sandbox_pid); the sandbox is
    stopped at the end."""
    port = free_port()
    sandbox_url = f"http://127.0.0.1:{port}"
    env, work = worker_bench_env(database=database, redis_url=redis_url, prefix=prefix,
                                 STRIPE_API_BASE=sandbox_url, STRIPE_SECRET_KEY="sk_test_sandbox")
    sandbox = start([sys.executable, "-m", "payments.sandbox", "--port", str(port)], env=env,
                    log=work / "sandbox.log")
    try:
        wait_http(port, "/_sandbox/health")
        django_setup_migrated(env)
        yield env, work, sandbox_url, sandbox.pid
    finally:
        stop(sandbox)


def stripe_signature(secret: str, body: str, timestamp: int) -> str:
    """Stripe's `Stripe-Signature` header: t=<time>,v1=HMAC-SHA256(secret, "<time>.<body>")."""
    digest = hmac.new(secret.encode(), f"{timestamp}.{body}".encode(), hashlib.sha256)
    return f"t={timestamp},v1={digest.hexdigest()}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_http(port: int, path: str, *, timeout: float = 30.0) -> None:
    """Waits until GET path on 127.0.0.1:port answers 200."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", path)
            if conn.getresponse().status == 200:
                return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise SystemExit(f"nothing answered 200 on 127.0.0.1:{port}{path} in {timeout:.0f} s")
        time.sleep(0.2)


def start(command: list[str], *, env: dict[str, str], log: Path | None = None
          ) -> subprocess.Popen:
    """Starts a process in its own process group (stopped with its children by `stop`)."""
    out = log.open("ab") if log else None
    try:
        return subprocess.Popen(command, cwd=REPO, env=env, start_new_session=True,
                                stdout=out, stderr=subprocess.STDOUT if out else None)
    finally:
        if out:
            out.close()


def stop(process: subprocess.Popen, *, timeout: float = 30.0) -> None:
    """SIGTERM to the process group, SIGKILL if it is still there after `timeout`."""
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
    except ProcessLookupError:
        pass


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system) of a process and its live descendants (Linux /proc)."""
    total = 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        for task in Path(f"/proc/{pid}/task").iterdir():
            for child in (task / "children").read_text().split():
                total += process_cpu(int(child))
    except (FileNotFoundError, ProcessLookupError):
        pass
    return total


def machine_cpu() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine so far, every process's (/proc/stat)."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    ticks = os.sysconf("SC_CLK_TCK")
    idle = values[3] + values[4]
    return (sum(values) - idle) / ticks, sum(values) / ticks


# --- Reporting ------------------------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float | None:
    """Nearest rank: the smallest value with at least the share `q` (0 to 1) of the values at
    or below it; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(math.ceil(q * len(ordered)) - 1, 0)]


def machine() -> str:
    """The machine a result was measured on, as every benchmark reports it."""
    return f"{os.cpu_count()} cores, {platform.platform()}"


def results_write(path: Path, results: dict) -> None:
    """Writes a benchmark's results as JSON (the folder is made if needed)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2, default=str))
