"""Payment.customer: the order's customer, copied onto the payment so a customer's history is
one index scan. Added empty, filled from each payment's order, then required."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

# Standard SQL that PostgreSQL and SQLite both run.
FILL = """
UPDATE payments_payment SET customer_id = (
    SELECT customer_id FROM orders_order WHERE orders_order.id = payments_payment.order_id
) WHERE customer_id IS NULL
"""


class Migration(migrations.Migration):
    dependencies = [
        ("orders", "0005_tax_rates"),
        ("payments", "0007_admin_lists"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name="payment",
            name="customer",
            field=models.ForeignKey(
                null=True, help_text="The order's customer",
                on_delete=django.db.models.deletion.PROTECT, related_name="payments",
                to=settings.AUTH_USER_MODEL,
            ),
        ),
        migrations.RunSQL(FILL, reverse_sql=migrations.RunSQL.noop),
        migrations.AlterField(
            model_name="payment",
            name="customer",
            field=models.ForeignKey(
                help_text="The order's customer",
                on_delete=django.db.models.deletion.PROTECT, related_name="payments",
                to=settings.AUTH_USER_MODEL,
            ),
        ),
    ]
