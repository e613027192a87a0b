"""`manage.py seed_demo`: the demo staff user, demo customer and demo catalogue. Idempotent:
running it again changes nothing that is already there (passwords are reset to the demo ones)."""

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction

DEMO_STAFF = {"username": "admin", "password": "paydesk-admin", "email": "admin@example.com"}
DEMO_CUSTOMER = {"username": "demo", "password": "paydesk-demo", "email": "demo@example.com"}


class Command(BaseCommand):
    help = "Creates (or refreshes) the demo staff user, demo customer and demo catalogue."

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
