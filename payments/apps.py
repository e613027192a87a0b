from django.apps import AppConfig
from django.db.models.signals import post_migrate


class PaymentsConfig(AppConfig):
    name = "payments"
    verbose_name = "Payments"

    def ready(self) -> None:
        post_migrate.connect(_staff_groups_ensure, sender=self)


def _staff_groups_ensure(sender, apps=None, **kwargs) -> None:
    """After migrate or flush (which sends no `apps`): the staff groups exist with their
    permissions."""
    from django.apps import apps as global_apps

    from payments.staff_groups import staff_groups_ensure

    staff_groups_ensure(apps or global_apps)
