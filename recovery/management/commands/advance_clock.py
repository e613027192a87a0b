"""`manage.py advance_clock --days N [--hours H] [--run]`: development only (DEBUG). Moves the
clock that renewals and recovery read (recovery.clock: a DevClock row, seen by every process)
forward, then with --run makes beat's two recovery tasks run at once instead of within a few
minutes. Refused unless DEBUG is on."""

from datetime import timedelta

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from recovery import clock, tasks


class Command(BaseCommand):
    help = "Development only: moves renewals' and recovery's clock forward."

    def add_arguments(self, parser):
        parser.add_argument("--days", type=int, default=0)
        parser.add_argument("--hours", type=int, default=0)
        parser.add_argument("--run", action="store_true",
                            help="run renewals and recovery now, in this process")

    def handle(self, *args, days, hours, run, **options):
        if not settings.DEBUG:
            raise CommandError(clock.CLOCK_REFUSED)
        if days < 0 or hours < 0:
            raise CommandError("The clock only moves forward.")
        offset = clock.clock_advance(by=timedelta(days=days, hours=hours))
        self.stdout.write(f"Clock is now {clock.now():%Y-%m-%d %H:%M %Z} (+{offset}).")
        if run:
            renewed = tasks.renewals_run_due()
            recovered = tasks.recoveries_run_due()
            self.stdout.write(f"Renewals charged: {renewed}; recovery actions run: {recovered}.")
