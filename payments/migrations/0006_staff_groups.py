"""The two staff groups the back office is run with (issue 9):

- Support: sees orders, payments, refunds, disputes and webhooks, and asks for refunds (those
  above the approval threshold then wait for Finance).
- Finance: what Support can, and approves or rejects refunds, answers and accepts disputes, and
  reprocesses webhook events.

Permissions are created by post_migrate, after every migration has run; on a fresh database they
do not exist yet, so this migration creates the ones it needs first."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

VIEW = [
    ("orders", "order"), ("orders", "orderline"), ("orders", "product"), ("orders", "price"),
    ("payments", "payment"), ("payments", "refund"), ("payments", "dispute"),
    ("payments", "paymentevent"), ("payments", "webhookevent"), ("payments", "customer"),
    ("payments", "paymentmethod"),
]
SUPPORT = [("payments", f"view_{model}") for app, model in VIEW if app == "payments"] + [
    ("orders", f"view_{model}") for app, model in VIEW if app == "orders"
] + [("payments", "refund_payment")]
FINANCE = SUPPORT + [
    ("payments", "approve_refund"),
    ("payments", "respond_dispute"),
    ("payments", "change_webhookevent"),
]
GROUPS = {"Support": SUPPORT, "Finance": FINANCE}


def create_groups(apps, schema_editor):
    for app_label in ("orders", "payments"):
        app_config = apps.get_app_config(app_label)
        # A migration's app config is a stub without models_module, which create_permissions
        # reads only to skip apps that have no models.
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for name, wanted in GROUPS.items():
        group, _ = Group.objects.get_or_create(name=name)
        for app_label, codename in wanted:
            group.permissions.add(
                Permission.objects.get(content_type__app_label=app_label, codename=codename)
            )


def remove_groups(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=GROUPS).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("orders", "0003_order_submission_token"),
        ("payments", "0005_staff_operations"),
    ]

    operations = [migrations.RunPython(create_groups, remove_groups)]
