"""Tasks that exist only for the test suite's worker (loaded with `celery worker --include`)."""

from pathlib import Path

from celery import shared_task
from celery.utils.log import get_task_logger
from django.contrib.auth import get_user_model


@shared_task
def record_username(user_id: int, marker_path: str) -> None:
    """Reads a user the enqueuing transaction wrote and writes its name to `marker_path`:
    it can only succeed if the transaction committed before the task ran."""
    user = get_user_model().objects.get(pk=user_id)
    Path(marker_path).write_text(user.username)


@shared_task
def log_text(text: str, marker_path: str) -> None:
    """Logs `text` through a task logger, then writes `marker_path`: the worker's log has the
    line once the marker exists."""
    get_task_logger(__name__).warning("task logged %s", text)
    Path(marker_path).write_text("logged")
