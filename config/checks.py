"""System checks on how Paydesk is served."""

import ipaddress
from urllib.parse import urlsplit

from django.conf import settings
from django.core.checks import Error, Tags, Warning, register

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


# --- Stripe settings with DEBUG off -------------------------------------------------------------
# Mixtures of the sandbox's public values and a Stripe key never work and some let anyone sign
# webhook events: with DEBUG off they are errors, so `check`, `migrate` and `runserver` refuse
# them (a missing secret is refused earlier, by config/settings/base.py, before anything starts).
# The sandbox alone is coherent (the test suite and the docker-compose demo run it with DEBUG off)
# but takes no payments: `check --deploy` refuses it too.
SANDBOX_KEY_TO_STRIPE_MESSAGE = (
    "STRIPE_SECRET_KEY is the offline sandbox's key (sk_test_sandbox) but STRIPE_API_BASE is "
    "empty, so Paydesk would call Stripe with a key Stripe refuses."
)
SANDBOX_KEY_TO_STRIPE_HINT = (
    "Set STRIPE_SECRET_KEY to your Stripe secret key, or STRIPE_API_BASE to the sandbox's URL."
)
LIVE_KEY_TO_SANDBOX_MESSAGE = (
    "STRIPE_SECRET_KEY is a live key but STRIPE_API_BASE points at a local sandbox ({base}): "
    "the live key would be sent there and no payment would reach Stripe."
)
LIVE_KEY_TO_SANDBOX_HINT = "Set STRIPE_API_BASE= (empty) to talk to Stripe."
WHSEC_SANDBOX_MESSAGE = (
    "STRIPE_WEBHOOK_SECRET is the sandbox's public whsec_sandbox while STRIPE_SECRET_KEY is a "
    "Stripe key: anyone can sign webhook events, and Stripe's own events are refused."
)
WHSEC_SANDBOX_HINT = (
    "Set STRIPE_WEBHOOK_SECRET to your webhook endpoint's signing secret (whsec_...) from the "
    "Stripe Dashboard."
)
SANDBOX_PUBLISHABLE_KEY_MESSAGE = (
    "STRIPE_PUBLISHABLE_KEY is the sandbox's pk_test_sandbox while STRIPE_SECRET_KEY is a Stripe "
    "key: Stripe.js and the mobile PaymentSheet cannot load."
)
SANDBOX_PUBLISHABLE_KEY_HINT = (
    "Set STRIPE_PUBLISHABLE_KEY to the publishable key (pk_...) of the same Stripe account "
    "and mode."
)
KEY_MODES_DIFFER_MESSAGE = (
    "STRIPE_SECRET_KEY is a {secret_mode} key but STRIPE_PUBLISHABLE_KEY is a {publishable_mode} "
    "key: payments created with one cannot be confirmed with the other."
)
KEY_MODES_DIFFER_HINT = (
    "Set STRIPE_SECRET_KEY and STRIPE_PUBLISHABLE_KEY to keys of the same mode "
    "(sk_live_ with pk_live_, or sk_test_ with pk_test_)."
)
SANDBOX_IN_PRODUCTION_MESSAGE = (
    "Paydesk is set up for the offline sandbox (STRIPE_SECRET_KEY {key}, STRIPE_API_BASE {base}): "
    "it takes no real payments."
)
SANDBOX_IN_PRODUCTION_HINT = (
    "Set STRIPE_SECRET_KEY, STRIPE_PUBLISHABLE_KEY and STRIPE_WEBHOOK_SECRET to your Stripe "
    "account's and STRIPE_API_BASE= (empty)."
)


def _stripe_key_mode(key: str) -> str | None:
    """"live" or "test" for Stripe's secret, restricted and publishable keys, else None."""
    for mode in ("live", "test"):
        if key.startswith((f"sk_{mode}_", f"rk_{mode}_", f"pk_{mode}_")):
            return mode
    return None


def _is_loopback(url: str | None) -> bool:
    host = urlsplit(url or "").hostname or ""
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@register(Tags.security)
def stripe_settings_consistent(app_configs, **kwargs):
    """With DEBUG off, the Stripe key, API base, webhook secret and publishable key must belong
    together: no sandbox value beside a Stripe key, no live key sent to the sandbox."""
    if settings.DEBUG:
        return []
    key = settings.STRIPE_SECRET_KEY
    sandbox_key = key == settings.SANDBOX_SECRET_KEY
    errors = []
    if sandbox_key and not settings.STRIPE_API_BASE:
        errors.append(Error(SANDBOX_KEY_TO_STRIPE_MESSAGE, hint=SANDBOX_KEY_TO_STRIPE_HINT,
                            id="paydesk.E003"))
    if _stripe_key_mode(key) == "live" and _is_loopback(settings.STRIPE_API_BASE):
        errors.append(Error(LIVE_KEY_TO_SANDBOX_MESSAGE.format(base=settings.STRIPE_API_BASE),
                            hint=LIVE_KEY_TO_SANDBOX_HINT, id="paydesk.E004"))
    if not sandbox_key and settings.STRIPE_WEBHOOK_SECRET == settings.SANDBOX_WEBHOOK_SECRET:
        errors.append(Error(WHSEC_SANDBOX_MESSAGE, hint=WHSEC_SANDBOX_HINT,
                            id="paydesk.E005"))
    if not sandbox_key and settings.STRIPE_PUBLISHABLE_KEY == settings.SANDBOX_PUBLISHABLE_KEY:
        errors.append(Error(SANDBOX_PUBLISHABLE_KEY_MESSAGE, hint=SANDBOX_PUBLISHABLE_KEY_HINT,
                            id="paydesk.E006"))
    secret_mode = _stripe_key_mode(key)
    publishable_mode = _stripe_key_mode(settings.STRIPE_PUBLISHABLE_KEY)
    if secret_mode and publishable_mode and secret_mode != publishable_mode:
        errors.append(Error(
            KEY_MODES_DIFFER_MESSAGE.format(secret_mode=secret_mode,
                                            publishable_mode=publishable_mode),
            hint=KEY_MODES_DIFFER_HINT, id="paydesk.E007",
        ))
    return errors


@register(Tags.security, deploy=True)
def stripe_not_the_sandbox(app_configs, **kwargs):
    """A deployment with DEBUG off takes real payments: the sandbox's key or a loopback
    STRIPE_API_BASE fails `check --deploy`."""
    if settings.DEBUG:
        return []
    key, base = settings.STRIPE_SECRET_KEY, settings.STRIPE_API_BASE
    if key == settings.SANDBOX_SECRET_KEY or _is_loopback(base):
        return [Error(
            SANDBOX_IN_PRODUCTION_MESSAGE.format(key=key, base=base or "(empty)"),
            hint=SANDBOX_IN_PRODUCTION_HINT, id="paydesk.E008",
        )]
    return []


CONSOLE_EMAIL_MESSAGE = (
    "EMAIL_URL is not set (or is consolemail://): receipts and credit notes are written to the "
    "pdf worker's output instead of being e-mailed to customers."
)
CONSOLE_EMAIL_HINT = (
    "Set EMAIL_URL to your mail server, e.g. smtp+tls://user:password@smtp.example.com:587, "
    "and DEFAULT_FROM_EMAIL to the address receipts come from."
)


@register(Tags.compatibility, deploy=True)
def email_is_delivered(app_configs, **kwargs):
    """A deployment should e-mail receipts, not print them."""
    if settings.DEBUG or settings.EMAIL_BACKEND != "django.core.mail.backends.console.EmailBackend":
        return []
    return [Warning(CONSOLE_EMAIL_MESSAGE, hint=CONSOLE_EMAIL_HINT, id="paydesk.W009")]


DATABASE_CACHE_MESSAGE = (
    "CACHE_URL is the database cache: each write (every API request's rate limit) counts the "
    "whole cache table, which grows with the number of clients."
)
DATABASE_CACHE_HINT = "Set CACHE_URL to Redis, e.g. rediscache://redis.internal:6379/1."


@register(Tags.caches, deploy=True)
def cache_is_not_the_database(app_configs, **kwargs):
    """A deployment keeps API rate limits in Redis, not in a table counted on every write."""
    backend = settings.CACHES["default"]["BACKEND"]
    if settings.DEBUG or backend != "django.core.cache.backends.db.DatabaseCache":
        return []
    return [Warning(DATABASE_CACHE_MESSAGE, hint=DATABASE_CACHE_HINT, id="paydesk.W010")]
