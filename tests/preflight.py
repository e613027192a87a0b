"""Before the suite: are the real services the tests need reachable? If not, say exactly what to
install or start, and stop (exit 1) — the suite never silently skips what needs them."""

import os
import socket
import sys
from urllib.parse import urlparse

HELP = {
    "postgres": (
        "PostgreSQL is not reachable at {where} (DATABASE_URL={url}).\n"
        "  Install and start it:  sudo apt-get install -y postgresql && "
        "sudo pg_ctlcluster $(ls /etc/postgresql) main start\n"
        "  (trust auth for user postgres on 127.0.0.1), or point DATABASE_URL at a server you have."
    ),
    "rabbitmq": (
        "RabbitMQ is not reachable at {where} (CELERY_BROKER_URL={url}).\n"
        "  Install and start it:  sudo apt-get install -y rabbitmq-server && "
        "sudo rabbitmq-server -detached\n"
        "  or point CELERY_BROKER_URL at a broker you have."
    ),
    "redis": (
        "Redis is not reachable at {where} (CELERY_BROKER_URL={url}).\n"
        "  Install and start it:  sudo apt-get install -y redis-server && "
        "redis-server --daemonize yes --bind 127.0.0.1 --port 6379\n"
        "  or point CELERY_BROKER_URL at a broker you have."
    ),
}
DEFAULT_PORTS = {"postgres": 5432, "postgresql": 5432, "redis": 6379, "amqp": 5672}


def reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


def check(kind: str, url: str) -> str | None:
    parsed = urlparse(url)
    if parsed.scheme not in DEFAULT_PORTS:
        return None  # sqlite, filesystem://: nothing to reach
    if parsed.scheme == "amqp":
        kind = "rabbitmq"
    host = parsed.hostname or "127.0.0.1"
    port = parsed.port or DEFAULT_PORTS[parsed.scheme]
    if reachable(host, port):
        return None
    return HELP[kind].format(where=f"{host}:{port}", url=url)


def main() -> int:
    problems = [
        p
        for p in (
            check("postgres", os.environ.get("DATABASE_URL", "")),
            check("redis", os.environ.get("CELERY_BROKER_URL", "")),
        )
        if p
    ]
    for problem in problems:
        print(f"make test: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
