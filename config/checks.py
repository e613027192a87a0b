"""System checks on how Paydesk is served."""

from django.conf import settings
from django.core.checks import Error, Tags, register

from payments.models import WebhookLane


@register(Tags.compatibility)
def stripe_budget_below_web_timeout(app_configs, **kwargs):
    """A web request's Stripe budget must end before gunicorn kills the worker, or a slow
    Stripe shows the customer a bare error while their card may be charged."""
    if settings.STRIPE_REQUEST_BUDGET >= settings.WEB_TIMEOUT:
        return [
            Error(
                f"STRIPE_REQUEST_BUDGET ({settings.STRIPE_REQUEST_BUDGET:g} s) is not below "
                f"WEB_TIMEOUT ({settings.WEB_TIMEOUT} s), the web server's worker timeout.",
                hint="Lower STRIPE_REQUEST_BUDGET or raise WEB_TIMEOUT (gunicorn.conf.py "
                "reads it), leaving a few seconds for the rest of the request.",
                id="paydesk.E001",
            )
        ]
    return []


@register(Tags.compatibility)
def webhook_lanes_in_range(app_configs, **kwargs):
    """Lanes are numbered 0 to MAX_LANES - 1 (a small integer column and a doorbell row each)."""
    if not 1 <= settings.PAYDESK_WEBHOOK_LANES <= WebhookLane.MAX_LANES:
        return [
            Error(
                f"PAYDESK_WEBHOOK_LANES is {settings.PAYDESK_WEBHOOK_LANES}; it must be from 1 "
                f"to {WebhookLane.MAX_LANES}.",
                id="paydesk.E002",
            )
        ]
    return []
