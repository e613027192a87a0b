"""SMS for dunning, through a pluggable backend (settings.RECOVERY_SMS_BACKEND, a dotted path).

A backend is a class with one method, `send(self, *, to: str, body: str) -> None`, that raises
on failure (any exception: the message is then marked failed and not sent again). The default,
ConsoleSmsBackend, writes the message to the log; a provider (Twilio, MessageBird, ...) is a
small class calling its API, named in the setting.
"""

import logging
from typing import Protocol

from django.conf import settings
from django.utils.module_loading import import_string

logger = logging.getLogger(__name__)


class SmsBackend(Protocol):
    def send(self, *, to: str, body: str) -> None: ...


class ConsoleSmsBackend:
    """Writes each SMS to the log (development, tests)."""

    def send(self, *, to: str, body: str) -> None:
        logger.info("SMS to %s: %s", to, body)


def sms_backend() -> SmsBackend:
    return import_string(settings.RECOVERY_SMS_BACKEND)()
