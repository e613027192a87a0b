"""Stripe's idempotency for Paydesk's own API, in PostgreSQL, in atomic phases.

1. `idempotency_key_begin` (committed before the view runs): the request's row is inserted
   (one statement: INSERT ... ON CONFLICT DO NOTHING, the usual case), or, when its key is
   taken, found and locked in one transaction. A finished row is replayed; a row of another
   method, path or body is an idempotency_error; a row whose lock is still held (a request in
   flight) is a 409; a row left locked by a process that died is taken over, and the request
   resumes from it.
2. The view does its work. Everything it creates is keyed by the row: orders by
   `row.operation`, Stripe objects by `row.stripe_key(...)`, services by their own stored keys.
   So however often step 2 is cut short and run again, it creates each thing once.
3. `idempotency_key_finish` (one statement) stores the response and releases the lock; a
   request refused before any work (validation, not found) is instead forgotten with
   `idempotency_key_forget`, so the corrected request can use the same key.

Keys are scoped per user and expire after PAYDESK_API_IDEMPOTENCY_TTL_HOURS (Stripe: 24 h):
`idempotency_keys_expire` (a beat task) deletes them.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import connections, router, transaction
from django.utils import timezone

from api.models import IdempotencyKey

KEY_TOO_LONG = (
    f"The Idempotency-Key header must be at most {IdempotencyKey.MAX_KEY_LENGTH} characters."
)
KEY_EMPTY = "The Idempotency-Key header must not be empty."
KEY_MISMATCH = (
    "Keys for idempotent requests can only be used with the same parameters they were first "
    "used with. Try using a key other than '{key}' if you meant to execute a different request."
)
KEY_IN_FLIGHT = (
    "There is currently another in-progress request using this Idempotency-Key (that probably "
    "means you submitted twice, and the other request is still going through): '{key}'. Please "
    "try again later."
)


class IdempotencyRefused(Exception):
    """The request cannot run with this key; `message` is safe to show."""

    status = 400
    code = ""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class KeyInvalid(IdempotencyRefused):
    code = "idempotency_key_invalid"


class KeyMismatch(IdempotencyRefused):
    code = "idempotency_key_mismatch"


class KeyInFlight(IdempotencyRefused):
    status = 409
    code = "idempotency_key_in_use"


def request_fingerprint(*, method: str, path: str, data: Any) -> str:
    """What makes two requests "the same": method, path and parameters (in any key order)."""
    if hasattr(data, "lists"):  # a QueryDict (form-encoded body)
        data = {name: values for name, values in data.lists()}
    text = json.dumps([method.upper(), path, data], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def key_check(key: str | None) -> None:
    if key is None:
        return
    if not key.strip():
        raise KeyInvalid(KEY_EMPTY)
    if len(key) > IdempotencyKey.MAX_KEY_LENGTH:
        raise KeyInvalid(KEY_TOO_LONG)


def _ttl() -> timedelta:
    return timedelta(hours=settings.PAYDESK_API_IDEMPOTENCY_TTL_HOURS)


def _lock_lease() -> timedelta:
    return timedelta(seconds=settings.PAYDESK_API_IDEMPOTENCY_LOCK_SECONDS)


def idempotency_key_begin(
    *,
    user: AbstractBaseUser,
    key: str | None,
    method: str,
    path: str,
    fingerprint: str,
    now: datetime | None = None,
) -> IdempotencyKey:
    """The first atomic phase: the locked row this request runs under, committed.

    A finished row is returned as it is (the caller replays its response). Raises KeyMismatch
    (same key, another request) or KeyInFlight (the key's request is still running)."""
    key_check(key)
    now = now or timezone.now()
    fields = {"request_method": method.upper(), "request_path": path,
              "request_fingerprint": fingerprint}
    row = IdempotencyKey(user=user, key=key, locked_at=now, created_at=now, last_run_at=now,
                         **fields)
    if key is None:
        row.save(force_insert=True)
        return row
    if _inserted(row):
        return row
    with transaction.atomic(durable=True):
        # The key is taken: by a finished request (replayed), another one in flight, or one whose
        # process died. Its row is locked until this phase commits.
        row = IdempotencyKey.objects.select_for_update().filter(user=user, key=key).first()
        if row is None or row.created_at <= now - _ttl():
            # Expired (deleted since, or not yet): as good as a new key.
            IdempotencyKey.objects.filter(user=user, key=key).delete()
            return IdempotencyKey.objects.create(
                user=user, key=key, locked_at=now, created_at=now, last_run_at=now, **fields
            )
        if (row.request_method, row.request_path, row.request_fingerprint) != (
            fields["request_method"], path, fingerprint
        ):
            raise KeyMismatch(KEY_MISMATCH.format(key=key))
        if row.is_finished():
            return row
        if row.locked_at is not None and row.locked_at > now - _lock_lease():
            raise KeyInFlight(KEY_IN_FLIGHT.format(key=key))
        # Left locked by a request that never finished (its process died): resume it.
        row.locked_at = now
        row.last_run_at = now
        row.save(update_fields=["locked_at", "last_run_at"])
        return row


def _inserted(row: IdempotencyKey) -> bool:
    """Inserts `row` unless its user already has its key: one statement, committed at once
    (autocommit), no transaction and no savepoint. True (and `row.pk` set) if it was inserted.

    A first request, the common case, is then one round trip. A concurrent first request with
    the same key waits here on the unique index until the one that inserted first commits, then
    finds its row taken."""
    meta = IdempotencyKey._meta
    connection = connections[router.db_for_write(IdempotencyKey)]
    quote = connection.ops.quote_name
    columns = [f for f in meta.concrete_fields if not f.primary_key]
    table, names = quote(meta.db_table), ", ".join(quote(f.column) for f in columns)
    # Identifiers come from the model (quoted), every value is a bound parameter. The conflict
    # target is the partial unique index api_idempotency_key_once_per_user.
    sql = (
        f"INSERT INTO {table} ({names}) VALUES ({', '.join(['%s'] * len(columns))}) "  # noqa: S608
        f"ON CONFLICT ({quote('user_id')}, {quote('key')}) WHERE {quote('key')} IS NOT NULL "
        f"DO NOTHING RETURNING {quote(meta.pk.column)}"
    )
    params = [f.get_db_prep_save(getattr(row, f.attname), connection) for f in columns]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        inserted = cursor.fetchone()
    if inserted is None:
        return False
    row.pk = inserted[0]
    row._state.adding = False
    row._state.db = connection.alias
    return True


def idempotency_key_finish(*, row: IdempotencyKey, status: int, body: Any) -> IdempotencyKey:
    """The last atomic phase: stores the response to replay and releases the lock."""
    row.recovery_point = IdempotencyKey.RecoveryPoint.FINISHED
    row.response_status = status
    row.response_body = body
    row.locked_at = None
    row.save(update_fields=["recovery_point", "response_status", "response_body", "locked_at"])
    return row


def idempotency_key_forget(*, row: IdempotencyKey) -> None:
    """Drops the row of a request refused before it did anything (a validation error), so the
    same key can be used again for the corrected request, as Stripe allows."""
    IdempotencyKey.objects.filter(pk=row.pk, recovery_point=IdempotencyKey.RecoveryPoint.STARTED
                                  ).delete()


def idempotency_keys_expire(*, now: datetime | None = None) -> int:
    """Deletes keys older than the TTL; returns how many."""
    cutoff = (now or timezone.now()) - _ttl()
    deleted, _ = IdempotencyKey.objects.filter(created_at__lte=cutoff).delete()
    return deleted
