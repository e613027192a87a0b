"""Logging pieces: a filter that scrubs secrets from every record, and a JSON-lines formatter.

Card numbers and CVCs never reach Paydesk by design (Stripe collects them); this filter is the
second line of defence for whatever a library or a careless message might still log.
"""

import logging
import re
from urllib.parse import unquote_plus

from pythonjsonlogger.json import JsonEncoder as _JsonEncoder
from pythonjsonlogger.json import JsonFormatter as _JsonFormatter

REDACTED = "[REDACTED]"

_CARD_CANDIDATE = re.compile(r"(?<![\d])(?:\d[ -]?){12,18}\d(?![\d])")
_SECRET_KEY = re.compile(r"\b(?:sk|rk)_(?:test|live)_[A-Za-z0-9]+|\bwhsec_[A-Za-z0-9]+")
# A PaymentIntent's or SetupIntent's client secret (`pi_..._secret_...`), and whatever value a
# `client_secret` key carries (`payment_intent_client_secret=` on the 3-D Secure return URL).
_CLIENT_SECRET = re.compile(r"\b(?:pi|seti)_[A-Za-z0-9]+_secret_[A-Za-z0-9]+")
_CLIENT_SECRET_FIELD = re.compile(
    r"(\b\w*client_secret['\"]?\s*[:=]\s*['\"]?)[^\s&'\",}]+", re.IGNORECASE
)
_AUTHORIZATION = re.compile(
    r"((?:HTTP_)?Authorization['\"]?\s*[:=]\s*['\"]?)(?:Bearer|Basic|Token)?\s*[^\s'\",}]+",
    re.IGNORECASE,
)
_CVC = re.compile(
    r"((?:card\[)?(?:cvc|cvv|cvv2|cvc2|security_code)\]?['\"]?\s*[:=]\s*['\"]?)\d{3,4}",
    re.IGNORECASE,
)

# A token of a URL or form body with percent-escapes or `+` (`card%5Bcvc%5D=314`,
# `number=4242+4242+4242+4242`): scrubbed once more in its decoded form.
_ENCODED_TOKEN = re.compile(r"[^\s'\"]*(?:%[0-9A-Fa-f]{2}|\+)[^\s'\"]*")

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


def _scrub_plain(text: str) -> str:
    text = _AUTHORIZATION.sub(lambda m: m.group(1) + REDACTED, text)
    text = _CLIENT_SECRET.sub(REDACTED, text)
    text = _CLIENT_SECRET_FIELD.sub(lambda m: m.group(1) + REDACTED, text)
    text = _SECRET_KEY.sub(REDACTED, text)
    text = _CVC.sub(lambda m: m.group(1) + REDACTED, text)
    text = _PASSWORD.sub(_redact_password, text)
    return _CARD_CANDIDATE.sub(_redact_card, text)


def _scrub_encoded(match: re.Match) -> str:
    token = match.group(0)
    decoded = unquote_plus(token)
    scrubbed = _scrub_plain(decoded)
    return token if scrubbed == decoded else scrubbed


def scrub(text: str) -> str:
    """`text` with card numbers (Luhn-valid 13-19 digits), CVCs, passwords, Stripe secret keys,
    client secrets, webhook secrets and Authorization header values replaced by [REDACTED].
    A URL or form token that hides one behind percent-escapes or `+` is written decoded, with
    the secret replaced."""
    return _ENCODED_TOKEN.sub(_scrub_encoded, _scrub_plain(text))


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


def _scrubbed(value, encode):
    """`value` with every string in it scrubbed; an object JSON cannot hold is first turned into
    what the JSON encoder would write for it (a request's repr carries its query string)."""
    if isinstance(value, str):
        return scrub(value)
    if value is None or isinstance(value, (bool, int, float)):
        return value
    if isinstance(value, dict):
        return {key: _scrubbed(item, encode) for key, item in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_scrubbed(item, encode) for item in value]
    encoded = encode(value)
    if encoded is None or isinstance(encoded, (str, bool, int, float, dict, list, tuple)):
        return _scrubbed(encoded, encode)
    return scrub(str(encoded))


class JsonFormatter(_JsonFormatter):
    """One JSON object per line, every field scrubbed: the message, a traceback (in `exc_info`,
    as text) and the extras that Django adds (`request`, whose repr has the query string)."""

    def formatException(self, ei) -> str:
        return scrub(super().formatException(ei))

    def process_log_record(self, log_data):
        return _scrubbed(super().process_log_record(log_data), _JsonEncoder().default)

