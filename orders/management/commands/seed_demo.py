"""`manage.py seed_demo`: the demo staff users (a superuser, and one Support and one Finance
member of staff), demo customer and demo catalogue. Idempotent: running it again changes nothing
that is already there (passwords are reset to the demo ones)."""

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand
from django.db import transaction

from orders.models import Price, Product

DEMO_STAFF = {"username": "admin", "password": "paydesk-admin", "email": "admin@example.com"}
DEMO_CUSTOMER = {"username": "demo", "password": "paydesk-demo", "email": "demo@example.com"}
# Staff in the groups created by payments' migration 0006_staff_groups.
DEMO_TEAM = [
    {"username": "support", "password": "paydesk-support", "email": "support@example.com",
     "first_name": "Sam", "last_name": "Support", "group": "Support"},
    {"username": "finance", "password": "paydesk-finance", "email": "finance@example.com",
     "first_name": "Fran", "last_name": "Finance", "group": "Finance"},
]
# The demo shop: (slug, name, description, [(currency, unit amount in minor units)]).
DEMO_CATALOGUE = [
    ("coffee-beans", "Coffee beans, 1 kg", "Single-origin, roasted this week.", [("USD", 2400)]),
    ("ceramic-mug", "Ceramic mug", "Holds 350 ml; dishwasher safe.", [("USD", 1450)]),
    ("sticker-pack", "Sticker pack", "Ten vinyl stickers.", [("USD", 499)]),
    ("pour-over-kit", "Pour-over kit", "Dripper, filters and a scale (EUR).", [("EUR", 4900)]),
    ("matcha-tin", "Matcha tin", "Ceremonial grade, 30 g (JPY: no minor unit).", [("JPY", 1800)]),
]


class Command(BaseCommand):
    help = "Creates (or refreshes) the demo staff users, demo customer and demo catalogue."

    @transaction.atomic
    def handle(self, *args, **options):
        User = get_user_model()
        staff, created = User.objects.get_or_create(
            username=DEMO_STAFF["username"],
            defaults={"email": DEMO_STAFF["email"], "is_staff": True, "is_superuser": True},
        )
        staff.set_password(DEMO_STAFF["password"])
        staff.save(update_fields=["password"])
        self.stdout.write(f"staff user {staff.username}: {'created' if created else 'exists'}")
        for member in DEMO_TEAM:
            user, created = User.objects.get_or_create(
                username=member["username"],
                defaults={"email": member["email"], "first_name": member["first_name"],
                          "last_name": member["last_name"], "is_staff": True},
            )
            user.set_password(member["password"])
            user.save(update_fields=["password"])
            user.groups.add(Group.objects.get(name=member["group"]))
            self.stdout.write(
                f"{member['group']} user {user.username}: {'created' if created else 'exists'}"
            )

        customer, created = User.objects.get_or_create(
            username=DEMO_CUSTOMER["username"],
            defaults={
                "email": DEMO_CUSTOMER["email"],
                "first_name": "Demo",
                "last_name": "Customer",
            },
        )
        customer.set_password(DEMO_CUSTOMER["password"])
        customer.save(update_fields=["password"])
        self.stdout.write(f"customer {customer.username}: {'created' if created else 'exists'}")
        self._seed_catalogue()

    def _seed_catalogue(self) -> None:
        """Creates the demo products and prices that are missing; never duplicates or edits one."""
        for slug, name, description, prices in DEMO_CATALOGUE:
            product, created = Product.objects.get_or_create(
                slug=slug, defaults={"name": name, "description": description}
            )
            for currency, unit_amount in prices:
                Price.objects.get_or_create(
                    product=product, currency=currency, unit_amount=unit_amount
                )
            self.stdout.write(f"product {slug}: {'created' if created else 'exists'}")
