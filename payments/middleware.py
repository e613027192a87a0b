"""Every web request's Stripe calls share one time budget, STRIPE_REQUEST_BUDGET seconds, so a
slow Stripe ends in a page of ours before the web server's timeout (WEB_TIMEOUT) kills the
worker (see gateway.time_budget)."""

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse

from payments import gateway


def stripe_time_budget(
    get_response: Callable[[HttpRequest], HttpResponse],
) -> Callable[[HttpRequest], HttpResponse]:
    def middleware(request: HttpRequest) -> HttpResponse:
        with gateway.time_budget(settings.STRIPE_REQUEST_BUDGET):
            return get_response(request)

    return middleware
