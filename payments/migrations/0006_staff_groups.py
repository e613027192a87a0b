"""The Support and Finance staff groups (payments/staff_groups.py says what each may do).

Permissions are created by post_migrate, after every migration has run; on a fresh database they
do not exist yet, so staff_groups_ensure creates the ones it needs first."""

from django.db import migrations

from payments.staff_groups import GROUPS, staff_groups_ensure


def create_groups(apps, schema_editor):
    staff_groups_ensure(apps)


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
