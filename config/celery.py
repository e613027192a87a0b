"""The Celery app: settings under the CELERY_ namespace, tasks autodiscovered from the apps.

Tasks that are safe to run twice declare `acks_late=True` themselves (see IDEMPOTENT_TASK);
receipts' PDF rendering has its own `pdf` queue so heavy rendering never delays payment work.
"""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.base")

app = Celery("paydesk")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


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
