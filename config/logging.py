"""Logging pieces: a filter that scrubs secrets from every record, and a JSON-lines formatter.

Card numbers and CVCs never reach Paydesk by design (Stripe collects them); this filter is the
second line of defence for whatever a library or a careless message might still log.
"""

import logging
import re

from pythonjsonlogger.json import JsonFormatter as _JsonFormatter

REDACTED = "[REDACTED]"

_CARD_CANDIDATE = re.compile(r"(?<![\d])(?:\d[ -]?){12,18}\d(?![\d])")
_SECRET_KEY = re.compile(r"\b(?:sk|rk)_(?:test|live)_[A-Za-z0-9]+|\bwhsec_[A-Za-z0-9]+")
_AUTHORIZATION = re.compile(
    r"((?:HTTP_)?Authorization['\"]?\s*[:=]\s*['\"]?)(?:Bearer|Basic|Token)?\s*[^\s'\",}]+",
    re.IGNORECASE,
)
_CVC = re.compile(
    r"((?:card\[)?(?:cvc|cvv|cvv2|cvc2|security_code)\]?['\"]?\s*[:=]\s*['\"]?)\d{3,4}",
    re.IGNORECASE,
)

# A password field's value in a form body, query string, JSON or repr: `password=...`,
# `"new_password1": "..."`, `passwd: ...`.
_PASSWORD = re.compile(
    r"(\b\w*passw(?:or)?d\w*['\"]?\s*[:=]\s*)(?:\"[^\"]*\"|'[^']*'|[^\s&'\",}]+)",
    re.IGNORECASE,
)


def _luhn_valid(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _redact_card(match: re.Match) -> str:
    digits = re.sub(r"\D", "", match.group(0))
    return REDACTED if 13 <= len(digits) <= 19 and _luhn_valid(digits) else match.group(0)


def _redact_password(match: re.Match) -> str:
    quote = match.group(0)[len(match.group(1))]
    return match.group(1) + (quote + REDACTED + quote if quote in "'\"" else REDACTED)


def scrub(text: str) -> str:
    """`text` with card numbers (Luhn-valid 13-19 digits), CVCs, passwords, Stripe secret keys,
    webhook secrets and Authorization header values replaced by [REDACTED]."""
    text = _AUTHORIZATION.sub(lambda m: m.group(1) + REDACTED, text)
    text = _SECRET_KEY.sub(REDACTED, text)
    text = _CVC.sub(lambda m: m.group(1) + REDACTED, text)
    text = _PASSWORD.sub(_redact_password, text)
    return _CARD_CANDIDATE.sub(_redact_card, text)


class ScrubSecretsFilter(logging.Filter):
    """Rewrites a record's message (with its arguments merged in) and traceback, scrubbed."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = scrub(record.getMessage())
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = scrub(record.exc_text)
        return True


class JsonFormatter(_JsonFormatter):
    """One JSON object per line; a traceback goes in `exc_info` as text, scrubbed."""

    def formatException(self, ei) -> str:
        return scrub(super().formatException(ei))
