"""The idempotency layer of every API view: Stripe's semantics around the view's own work.

Runs after authentication, permissions and throttling (keys are scoped per user): begins the
request's row (api/idempotency.py), replays a finished one, and after the view stores its
response, or forgets the row when the request was refused before any work.
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.http import Http404
from rest_framework import exceptions
from rest_framework.response import Response

from api.idempotency import (
    idempotency_key_begin,
    idempotency_key_finish,
    idempotency_key_forget,
    request_fingerprint,
)
from api.models import IdempotencyKey

IDEMPOTENT_METHODS = ("POST", "DELETE")
REPLAYED_HEADER = "Idempotent-Replayed"

# Refusals before any work: not stored, so the corrected request may reuse the key (Stripe).
_REFUSED_BEFORE_WORK = (
    exceptions.ValidationError,
    exceptions.ParseError,
    exceptions.NotFound,
    Http404,
    exceptions.PermissionDenied,
    PermissionDenied,
    exceptions.UnsupportedMediaType,
)


class _Replay(Exception):
    def __init__(self, row: IdempotencyKey):
        super().__init__(row.pk)
        self.row = row


class Idempotent:
    """Mixin for DRF views: `self.idempotency` is the running request's row (POST, DELETE)."""

    idempotency: IdempotencyKey | None = None
    _refused_before_work = False

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        if request.method not in IDEMPOTENT_METHODS or not request.user.is_authenticated:
            return
        row = idempotency_key_begin(
            user=request.user,
            key=request.headers.get("Idempotency-Key"),
            method=request.method,
            path=request.path,
            fingerprint=request_fingerprint(
                method=request.method, path=request.path, data=request.data
            ),
        )
        if row.is_finished():
            raise _Replay(row)
        self.idempotency = row

    def handle_exception(self, exc):
        if isinstance(exc, _Replay):
            return Response(exc.row.response_body, status=exc.row.response_status,
                            headers={REPLAYED_HEADER: "true"})
        self._refused_before_work = isinstance(exc, _REFUSED_BEFORE_WORK)
        return super().handle_exception(exc)

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        row, self.idempotency = self.idempotency, None
        if row is not None:
            if self._refused_before_work:
                idempotency_key_forget(row=row)
            else:
                idempotency_key_finish(row=row, status=response.status_code,
                                       body=getattr(response, "data", None))
        return response
