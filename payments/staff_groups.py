"""The two staff groups the back office is run with (issue 9):

- Support: sees orders, payments, refunds, disputes and webhooks, and asks for refunds (those
  above the approval threshold then wait for Finance).
- Finance: what Support can, and approves or rejects refunds, answers and accepts disputes, and
  reprocesses webhook events.

Created by the data migration 0006_staff_groups, and made whole again after every migrate or
flush (post_migrate), so a group whose permissions were lost (a test database flushed between
tests, a permission removed by hand) has them again. Permissions added by hand are kept."""

from django.contrib.auth.management import create_permissions

_VIEW = {
    "orders": ("order", "orderline", "product", "price"),
    "payments": ("payment", "refund", "dispute", "paymentevent", "webhookevent", "customer",
                 "paymentmethod"),
}
SUPPORT = [
    (app_label, f"view_{model}") for app_label, models in _VIEW.items() for model in models
] + [("payments", "refund_payment")]
FINANCE = [
    *SUPPORT,
    ("payments", "approve_refund"),
    ("payments", "respond_dispute"),
    ("payments", "change_webhookevent"),
]
GROUPS = {"Support": SUPPORT, "Finance": FINANCE}


def staff_groups_ensure(apps) -> None:
    """Creates the groups and gives them their permissions; `apps` is a migration's state or
    django.apps.apps."""
    for app_label in _VIEW:
        app_config = apps.get_app_config(app_label)
        if not getattr(app_config, "models_module", None):
            # A migration's app config is a stub without models_module, which
            # create_permissions reads only to skip apps that have no models.
            app_config.models_module = True
            create_permissions(app_config, apps=apps, verbosity=0)
            app_config.models_module = None
        else:
            create_permissions(app_config, apps=apps, verbosity=0)
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for name, wanted in GROUPS.items():
        group, _ = Group.objects.get_or_create(name=name)
        for app_label, codename in wanted:
            group.permissions.add(
                Permission.objects.get(content_type__app_label=app_label, codename=codename)
            )
