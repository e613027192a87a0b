"""What time it is for renewals and recovery: the real time, or in development (DEBUG) the real
time plus the offset `manage.py advance_clock` stored in the database (DevClock), so `make run`'s
worker, beat and web process all see the same moved clock without any in-process state."""

from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone

from recovery.models import DevClock

CLOCK_REFUSED = "The development clock can only be moved with DEBUG on."


def now() -> datetime:
    """timezone.now(), plus the development offset when DEBUG is on."""
    real = timezone.now()
    if not settings.DEBUG:
        return real
    offset = DevClock.objects.filter(pk=1).values_list("offset_seconds", flat=True).first()
    return real + timedelta(seconds=offset or 0)


def clock_advance(*, by: timedelta) -> timedelta:
    """Moves the development clock forward by `by`; returns the total offset. Refused (a
    RuntimeError) unless DEBUG is on: a deployment's clock is the real one."""
    if not settings.DEBUG:
        raise RuntimeError(CLOCK_REFUSED)
    clock, _ = DevClock.objects.get_or_create(pk=1)
    clock.offset_seconds += int(by.total_seconds())
    clock.save(update_fields=["offset_seconds"])
    return timedelta(seconds=clock.offset_seconds)
