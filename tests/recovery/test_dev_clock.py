"""The development clock: refused without DEBUG; with it, every process reads the same offset."""

from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command

from recovery import clock
from recovery.models import Plan

pytestmark = pytest.mark.django_db


def test_advance_clock_is_refused_unless_debug(settings):
    settings.DEBUG = False
    with pytest.raises(CommandError, match="DEBUG"):
        call_command("advance_clock", days=3)


def test_advance_clock_moves_recoverys_clock_only_in_debug(settings):
    settings.DEBUG = True
    before = clock.now()
    call_command("advance_clock", days=3)
    assert clock.now() - before >= timedelta(days=3)
    settings.DEBUG = False
    assert clock.now() - before < timedelta(days=1)


def test_seed_demo_plans_is_idempotent():
    call_command("seed_demo_plans")
    call_command("seed_demo_plans")
    assert Plan.objects.count() == 2
