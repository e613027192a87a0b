"""`manage.py seed_demo_plans`: the demo subscription plans (after seed_demo). Idempotent."""

from django.core.management.base import BaseCommand
from django.db import transaction

from orders.models import Price, Product
from recovery.models import Plan

# (slug, name, currency, amount in minor units, interval, trial days)
DEMO_PLANS = [
    ("coffee-club-monthly", "Coffee club (monthly)", "USD", 1900, "month", 0),
    ("coffee-club-yearly", "Coffee club (yearly, 14-day trial)", "USD", 19000, "year", 14),
]


class Command(BaseCommand):
    help = "Creates (or refreshes) the demo subscription plans."

    @transaction.atomic
    def handle(self, *args, **options):
        for slug, name, currency, amount, interval, trial_days in DEMO_PLANS:
            product, _ = Product.objects.update_or_create(
                slug=slug, defaults={"name": name, "description": "A demo subscription."})
            price, _ = Price.objects.get_or_create(product=product, currency=currency,
                                                   unit_amount=amount)
            Plan.objects.update_or_create(
                slug=slug, defaults={"name": name, "price": price, "interval": interval,
                                     "trial_days": trial_days, "active": True})
        self.stdout.write(f"{len(DEMO_PLANS)} demo plans ready.")
