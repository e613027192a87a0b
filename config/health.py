"""`/healthz`: is this process able to serve? The database and the broker must both answer."""

from django.conf import settings
from django.db import connections
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from config.celery import app as celery_app

BROKER_TIMEOUT_SECONDS = 2.0


def check_database() -> None:
    with connections["default"].cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()


def check_broker() -> None:
    with celery_app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, timeout=BROKER_TIMEOUT_SECONDS)
        conn.default_channel  # noqa: B018  (opens a channel: the broker really answers)


CHECKS = {"database": check_database, "broker": check_broker}


@never_cache
@require_GET
def healthz(request):
    """200 with every check "ok", or 503 naming each failing part and its error."""
    results = {}
    for name, check in CHECKS.items():
        try:
            check()
        except Exception as exc:  # any failure of the dependency means "not healthy"
            results[name] = f"error: {type(exc).__name__}: {exc}"[:300]
        else:
            results[name] = "ok"
    healthy = all(v == "ok" for v in results.values())
    body = {"status": "ok" if healthy else "error", "checks": results}
    if settings.DEBUG:
        body["broker_url"] = celery_app.conf.broker_url.split("@")[-1]
    return JsonResponse(body, status=200 if healthy else 503)
