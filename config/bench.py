"""Views that exist only for benchmarks (bench/), routed only when PAYDESK_BENCH_VIEWS is true.

`manage.py check --deploy` warns if they are enabled: they accept unauthenticated writes."""

import uuid

from django.conf import settings
from django.core.checks import Tags, Warning, register
from django.db import connection
from django.http import HttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST


@csrf_exempt
@require_POST
def insert_only(request):
    """The floor for bench/webhook_ingest: one INSERT of the raw body, nothing else (no
    signature, no parsing, no broker). The real endpoint cannot be faster than this."""
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO payments_webhookevent"
            " (stripe_id, type, subject, lane, payload, status, attempts, last_error,"
            " received_at) VALUES (%s, 'bench.floor', '', 0, %s, 'ignored', 0, '', now())",
            [f"bench_{uuid.uuid4().hex}", request.body.decode()],
        )
    return HttpResponse(b'{"received": true}', content_type="application/json")


@register(Tags.security, deploy=True)
def bench_views_disabled(app_configs, **kwargs):
    if getattr(settings, "PAYDESK_BENCH_VIEWS", False):
        return [
            Warning(
                "PAYDESK_BENCH_VIEWS is on: benchmark-only views accept unauthenticated writes.",
                hint="Unset PAYDESK_BENCH_VIEWS outside benchmarks.",
                id="paydesk.W001",
            )
        ]
    return []
