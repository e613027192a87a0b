"""`manage.py reconcile [--since YYYY-MM-DD] [--limit N]`: compares non-final payments, refunds
and disputes with Stripe, repairs what Stripe settled and prints one line per drift found."""

from datetime import datetime, time

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from payments.reconcile import reconcile

BAD_SINCE = "--since must be a date as YYYY-MM-DD, not {value!r}"
BAD_LIMIT = "--limit must be a positive number of rows"


class Command(BaseCommand):
    help = (
        "Compares every non-final payment, refund and dispute with Stripe, repairs what Stripe "
        "settled and prints the drift found."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--since", help="only rows created on or after this day (YYYY-MM-DD, local time)"
        )
        parser.add_argument(
            "--limit", type=int, help="at most N rows of each kind, those read longest ago first"
        )

    def handle(self, *args, since: str | None = None, limit: int | None = None, **options):
        if limit is not None and limit < 1:
            raise CommandError(BAD_LIMIT)
        report = reconcile(since=_start_of(since) if since else None, limit=limit)
        for drift in report.drift:
            self.stdout.write(str(drift))
        for error in report.errors:
            self.stderr.write(f"error: {error}")
        self.stdout.write(report.summary())


def _start_of(day: str) -> datetime:
    try:
        date = datetime.strptime(day, "%Y-%m-%d").date()
    except ValueError:
        raise CommandError(BAD_SINCE.format(value=day)) from None
    return timezone.make_aware(datetime.combine(date, time.min))
