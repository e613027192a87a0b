"""Server-Timing on every API response: Paydesk's own time apart from Stripe's.

`Server-Timing: app;dur=3.1, cpu;dur=2.4, stripe;dur=41.7;desc="2 calls"` (milliseconds):
`stripe` is the wall time spent in Stripe calls (waiting for Stripe's answers, and the SDK's
own work around them), `app` everything else the request took here (wall time: it includes
waiting for PostgreSQL and for the CPU when the machine is busy), and `cpu` the CPU time the
request used in this process, Stripe calls included (the thread's CPU clock: time waiting for
the database, Stripe or another thread is not counted). Clients and the benchmark (bench/api)
read it; it says nothing an API client could not time itself."""

import time
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from payments import gateway


def server_timing(
    get_response: Callable[[HttpRequest], HttpResponse],
) -> Callable[[HttpRequest], HttpResponse]:
    def middleware(request: HttpRequest) -> HttpResponse:
        if not request.path.startswith("/api/"):
            return get_response(request)
        started = time.perf_counter()
        cpu_started = time.thread_time()
        with gateway.stripe_time_measured() as stripe_calls:
            response = get_response(request)
        cpu = time.thread_time() - cpu_started
        total = time.perf_counter() - started
        stripe = sum(stripe_calls)
        response["Server-Timing"] = (
            f"app;dur={(total - stripe) * 1000:.2f}, cpu;dur={cpu * 1000:.2f}, "
            f'stripe;dur={stripe * 1000:.2f};desc="{len(stripe_calls)} calls"'
        )
        return response

    return middleware
