"""A real worker on the real broker: on_commit enqueues after commit; a rollback, nothing."""

import pytest
from django.contrib.auth import get_user_model
from django.db import transaction

from tests.conftest import wait_for
from tests.support.tasks import record_username

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def test_worker_runs_a_task_enqueued_on_commit(celery_worker, tmp_path):
    marker = tmp_path / "committed.txt"
    with transaction.atomic():
        user = get_user_model().objects.create(username="committed-customer")
        transaction.on_commit(lambda: record_username.delay(user.pk, str(marker)))
        assert not marker.exists()

    wait_for(marker.exists, what="the worker to run the task")
    assert marker.read_text() == "committed-customer"


def test_rolled_back_transaction_enqueues_nothing(celery_worker, tmp_path):
    ghost_marker = tmp_path / "rolled-back.txt"
    later_marker = tmp_path / "later.txt"

    class Abort(Exception):
        pass

    with pytest.raises(Abort), transaction.atomic():
        ghost = get_user_model().objects.create(username="ghost")
        transaction.on_commit(lambda: record_username.delay(ghost.pk, str(ghost_marker)))
        raise Abort

    # The solo worker takes tasks in order: once a task enqueued after the rollback has run, a
    # task from the rolled-back transaction, had one been sent, would have run too.
    with transaction.atomic():
        later = get_user_model().objects.create(username="later")
        transaction.on_commit(lambda: record_username.delay(later.pk, str(later_marker)))
    wait_for(later_marker.exists, what="the task enqueued after the rollback")

    assert not ghost_marker.exists()
    assert not get_user_model().objects.filter(username="ghost").exists()
    assert "record_username" in celery_worker.log()
    assert "DoesNotExist" not in celery_worker.log()
