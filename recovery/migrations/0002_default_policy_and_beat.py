"""The default RetryPolicy, and beat's two recovery tasks as django-celery-beat rows (editable
in the admin: Periodic tasks)."""

from django.db import migrations

from recovery.models import (
    DEFAULT_HARD_DECLINES,
    DEFAULT_NETWORK_ERRORS,
    DEFAULT_NETWORK_RETRY_MINUTES,
    DEFAULT_RETRY_HOURS,
)

EVERY_MINUTES = 2
TASKS = {
    "recovery-renewals-run-due": "recovery.tasks.renewals_run_due",
    "recovery-recoveries-run-due": "recovery.tasks.recoveries_run_due",
}


def forwards(apps, schema_editor):
    RetryPolicy = apps.get_model("recovery", "RetryPolicy")
    RetryPolicy.objects.get_or_create(
        name="Default",
        defaults={
            "is_default": True,
            "retry_hours": DEFAULT_RETRY_HOURS,
            "network_retry_minutes": DEFAULT_NETWORK_RETRY_MINUTES,
            "hard_decline_codes": DEFAULT_HARD_DECLINES,
            "network_error_codes": DEFAULT_NETWORK_ERRORS,
            "do_not_honor_limit": 3,
            "final_action": "canceled",
        },
    )
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    every, _ = IntervalSchedule.objects.get_or_create(every=EVERY_MINUTES, period="minutes")
    for name, task in TASKS.items():
        PeriodicTask.objects.get_or_create(name=name, defaults={"task": task, "interval": every})


def backwards(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name__in=TASKS).delete()
    apps.get_model("recovery", "RetryPolicy").objects.filter(name="Default").delete()


class Migration(migrations.Migration):
    dependencies = [
        ("recovery", "0001_subscriptions_and_recovery"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(forwards, backwards)]
