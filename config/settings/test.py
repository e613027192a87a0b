"""Settings for the test suite: production settings with a fixed key and fast hashing.

The database and broker still come from DATABASE_URL / CELERY_BROKER_URL (`make test` points them
at the local PostgreSQL and Redis), so what is tested is what runs in production.
"""

import os
import uuid

os.environ.setdefault("DJANGO_SECRET_KEY", "test-only-secret-key-not-for-production-use-0123456789")
os.environ.setdefault("DJANGO_SECURE_SSL_REDIRECT", "false")
os.environ.setdefault("DJANGO_ALLOWED_HOSTS", "testserver,localhost,127.0.0.1")
# One queue per test run, so two suites sharing one Redis never take each other's tasks; the
# worker the suite starts inherits the name through the environment.
os.environ.setdefault("CELERY_TASK_DEFAULT_QUEUE", f"paydesk-test-{uuid.uuid4().hex[:12]}")
os.environ.setdefault("CELERY_PDF_QUEUE", os.environ["CELERY_TASK_DEFAULT_QUEUE"] + "-pdf")
os.environ.setdefault(
    "CELERY_WEBHOOKS_QUEUE", os.environ["CELERY_TASK_DEFAULT_QUEUE"] + "-webhooks"
)
os.environ.setdefault(
    "CELERY_RECOVERY_QUEUE", os.environ["CELERY_TASK_DEFAULT_QUEUE"] + "-recovery"
)

from config.settings.base import *  # noqa: F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
STORAGES = {
    **STORAGES,  # noqa: F405
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
WHITENOISE_AUTOREFRESH = True
LOG_FORMAT = "text"
LOGGING["handlers"]["console"]["formatter"] = "text"  # noqa: F405
