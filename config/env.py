"""The one place settings read the environment (12-factor, django-environ)."""

from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"

env = environ.Env()


def database_config(url: str) -> dict:
    """Django's DATABASES entry for a URL; SQLite gets the options that let web, worker and
    beat share one file without "database is locked" (see docs/architecture.md)."""
    config = env.db_url_config(url)
    if config["ENGINE"] == "django.db.backends.sqlite3":
        config.setdefault("OPTIONS", {}).update(
            {
                "transaction_mode": "IMMEDIATE",
                "timeout": 20,
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            }
        )
    else:
        config["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=60)
        config["CONN_HEALTH_CHECKS"] = True
    return config


def refund_approval_thresholds(text: str) -> dict[str, int]:
    """PAYDESK_REFUND_APPROVAL_THRESHOLDS, "USD:500,EUR:500,JPY:50000" (major units, parsed
    exactly for each currency), as {currency: minor units}. Refunds above a currency's threshold
    wait for approval; a currency not listed needs none. Bad text stops start-up with the reason."""
    from django.core.exceptions import ImproperlyConfigured

    from money import Money

    thresholds: dict[str, int] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        currency, _, amount = item.partition(":")
        currency = currency.strip().upper()
        try:
            thresholds[currency] = Money.from_decimal(amount.strip(), currency).amount
        except (TypeError, ValueError) as exc:
            raise ImproperlyConfigured(
                f"PAYDESK_REFUND_APPROVAL_THRESHOLDS: {item!r} is not CURRENCY:AMOUNT ({exc})"
            ) from None
    return thresholds
