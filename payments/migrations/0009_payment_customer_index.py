"""The index behind a customer's payment history, built without blocking writes."""

from django.db import migrations, models

from config.schema import AddIndexWithoutBlocking


class Migration(migrations.Migration):
    # CREATE INDEX CONCURRENTLY (PostgreSQL) cannot run in a transaction.
    atomic = False

    dependencies = [
        ("payments", "0008_payment_customer"),
    ]

    operations = [
        AddIndexWithoutBlocking(
            model_name="payment",
            index=models.Index(fields=["customer", "-created_at", "-id"],
                               name="payment_customer_newest"),
        ),
    ]
