"""The database cache table (settings CACHES, "dbcache://..."): API rate limits are counted
there, shared by every process. `migrate` alone sets Paydesk up, so it is created here;
createcachetable skips caches that are not in the database and tables that exist."""

from django.core.management import call_command
from django.db import migrations


def cache_table_create(apps, schema_editor):
    call_command("createcachetable", database=schema_editor.connection.alias)


class Migration(migrations.Migration):
    dependencies = [("api", "0001_initial")]

    operations = [migrations.RunPython(cache_table_create, migrations.RunPython.noop)]
