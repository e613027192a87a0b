from django.apps import AppConfig


class PaydeskConfig(AppConfig):
    """The project package as an app, so its system checks are registered at start-up."""

    name = "config"
    label = "paydesk"
    verbose_name = "Paydesk"

    def ready(self) -> None:
        from config import bench, checks  # noqa: F401  (register their system checks)
