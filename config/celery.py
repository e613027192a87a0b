"""The Celery app: settings under the CELERY_ namespace, tasks autodiscovered from the apps.

Tasks that are safe to run twice declare `acks_late=True` themselves (see IDEMPOTENT_TASK);
receipts' PDF rendering has its own `pdf` queue so heavy rendering never delays payment work.
"""

import os

from celery import Celery
from celery.signals import setup_logging, task_postrun, task_prerun
from django.db import close_old_connections

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.base")

app = Celery("paydesk")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# Celery's Django fixup closes every database connection before and after every task unless
# CELERY_DB_REUSE_MAX is set: a new PostgreSQL connection (a forked backend) per webhook event,
# which cost more than applying it. Connections are kept as Django keeps them for requests
# (DATABASE_CONN_MAX_AGE, with health checks), by the handler below; the fixup only recycles
# them after this many tasks. The fixup reads the old-style name, hence the upper case here.
app.conf.CELERY_DB_REUSE_MAX = 1000


@task_prerun.connect
@task_postrun.connect
def _close_old_database_connections(task=None, **kwargs):
    """Drops a connection that is broken, or older than CONN_MAX_AGE, as a request would. Not
    for a task run eagerly in the caller's process: that connection is the caller's."""
    if task is not None and not getattr(task.request, "is_eager", False):
        close_old_connections()


@setup_logging.connect
def _use_paydesk_logging(**kwargs):
    """Worker and beat log through Paydesk's LOGGING (scrubbed, at DJANGO_LOG_LEVEL; `--loglevel`
    is not used): with a receiver here Celery neither replaces the root logger's handlers nor
    gives task loggers an unscrubbed handler of its own."""
    from django.conf import settings
    from django.utils.log import configure_logging

    configure_logging(settings.LOGGING_CONFIG, settings.LOGGING)


@app.on_after_configure.connect
def _create_filesystem_broker_folders(sender, **kwargs):
    """kombu's filesystem transport (the zero-setup default) needs its folders to exist."""
    options = sender.conf.broker_transport_options or {}
    for key in ("data_folder_in", "data_folder_out", "processed_folder", "control_folder"):
        if options.get(key):
            os.makedirs(options[key], exist_ok=True)

# Options for tasks that are idempotent: acknowledged only after they ran, and redelivered if the
# worker dies mid-task. Use as `@shared_task(**IDEMPOTENT_TASK)`.
IDEMPOTENT_TASK = {"acks_late": True, "reject_on_worker_lost": True}
