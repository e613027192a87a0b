"""What the API itself stores: one row per unsafe request, Stripe-style idempotency.

A row is the request's recovery point (Brandur Leach, "Implementing Stripe-like Idempotency Keys
in Postgres"): it is committed before any work starts, everything the request creates (an order,
a Stripe object) is keyed by it, and the finished response is stored on it in one last atomic
phase. A request killed half-way is resumed by its retry from what the row and the keys derived
from it say was already done, so a retry never charges twice.
"""

import uuid

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.db.models import Q


class IdempotencyKey(models.Model):
    """One unsafe API request (POST or DELETE) of one user.

    `key` is the client's Idempotency-Key header, unique per user; a request sent without one
    gets a row all the same (key NULL, never replayable), so that whatever it creates at Stripe
    carries an idempotency key stored before the call. `operation` is the stable id those keys
    are derived from (see `stripe_key`)."""

    class RecoveryPoint(models.TextChoices):
        STARTED = "started", "Started"
        FINISHED = "finished", "Finished (response stored)"

    MAX_KEY_LENGTH = 255

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_idempotency_keys"
    )
    # NULL, not "", for requests without a key: the unique constraint skips them.
    key = models.CharField(max_length=MAX_KEY_LENGTH, null=True, blank=True)  # noqa: DJ001
    operation = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    request_method = models.CharField(max_length=10)
    request_path = models.CharField(max_length=500)
    request_fingerprint = models.CharField(
        max_length=64, help_text="SHA-256 of the request's method, path and parameters"
    )
    recovery_point = models.CharField(
        max_length=20, choices=RecoveryPoint.choices, default=RecoveryPoint.STARTED
    )
    locked_at = models.DateTimeField(
        null=True, blank=True,
        help_text="Set while a request is running with this key (a retry meanwhile gets 409); "
        "a lock older than PAYDESK_API_IDEMPOTENCY_LOCK_SECONDS was left by a killed process",
    )
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    response_body = models.JSONField(null=True, blank=True, encoder=DjangoJSONEncoder)
    created_at = models.DateTimeField()
    last_run_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["user", "key"], condition=Q(key__isnull=False),
                name="api_idempotency_key_once_per_user",
            ),
            models.CheckConstraint(
                condition=Q(recovery_point="started") | Q(response_status__isnull=False),
                name="api_idempotency_finished_has_response",
            ),
        ]
        indexes = [models.Index(fields=["created_at"], name="api_idempotency_created")]

    def __str__(self) -> str:
        return f"{self.request_method} {self.request_path} ({self.key or 'no key'})"

    def stripe_key(self, purpose: str) -> str:
        """The idempotency key for what this request asks Stripe to create (`purpose`: one per
        Stripe call of the request); the same on every retry of the request."""
        return f"api:{self.operation}:{purpose}"

    def is_finished(self) -> bool:
        return self.recovery_point == self.RecoveryPoint.FINISHED
