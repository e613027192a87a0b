"""The benchmark floor (config/bench.py) must keep working as the webhook table changes:
bench/webhook_ingest compares the real endpoint with it."""

import json

import pytest
from django.test import RequestFactory

from config.bench import insert_only
from payments.models import WebhookEvent


@pytest.mark.django_db
def test_the_floor_stores_the_body_as_one_row():
    body = json.dumps({"id": "evt_floor", "type": "payment_intent.succeeded"})
    request = RequestFactory().post(
        "/bench/insert-only/", data=body, content_type="application/json"
    )

    response = insert_only(request)

    assert response.status_code == 200
    row = WebhookEvent.objects.get()
    assert (row.type, row.subject, row.status) == ("bench.floor", "", "ignored")
    assert row.payload == {"id": "evt_floor", "type": "payment_intent.succeeded"}
