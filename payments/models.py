"""Paydesk's faithful local mirror of Stripe's objects, and the append-only payment ledger.

Stripe is the source of truth. Every money-changing row is written by payments/services.py under a
row lock; the invariants below are database constraints so they hold for any number of processes.
"""

import pgtrigger
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import F, Q

from money import Money
from orders.models import CURRENCY_CODE, Order


class Customer(models.Model):
    """A Paydesk user's Stripe Customer. The key is stored before Stripe is called."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="stripe_customer"
    )
    stripe_id = models.CharField(max_length=255, unique=True, null=True, blank=True)
    idempotency_key = models.CharField(max_length=255, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.stripe_id or f"customer of {self.user}"


class PaymentMethod(models.Model):
    """A saved card: what Stripe tells us about it, never the number or the CVC."""

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="payment_methods")
    stripe_id = models.CharField(max_length=255, unique=True)
    brand = models.CharField(max_length=32, blank=True)
    last4 = models.CharField(max_length=4, blank=True)
    exp_month = models.PositiveSmallIntegerField(null=True, blank=True)
    exp_year = models.PositiveSmallIntegerField(null=True, blank=True)
    fingerprint = models.CharField(max_length=64, blank=True)
    detached_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.brand} •••• {self.last4}"


class Payment(models.Model):
    """Mirrors one PaymentIntent. `amount_refunded` is derived from succeeded Refund rows."""

    class Status(models.TextChoices):
        REQUIRES_PAYMENT_METHOD = "requires_payment_method", "Requires payment method"
        REQUIRES_CONFIRMATION = "requires_confirmation", "Requires confirmation"
        REQUIRES_ACTION = "requires_action", "Requires action (3-D Secure)"
        PROCESSING = "processing", "Processing"
        REQUIRES_CAPTURE = "requires_capture", "Requires capture"
        CANCELED = "canceled", "Canceled"
        SUCCEEDED = "succeeded", "Succeeded"

    TERMINAL = (Status.SUCCEEDED, Status.CANCELED)

    order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="payments")
    # The order's customer, copied when the payment starts (an order's customer never changes):
    # a customer's payment history is then one index scan (payment_customer_newest), not a join
    # that sorts every payment of theirs to show the newest page.
    customer = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="payments",
        help_text="The order's customer",
    )
    idempotency_key = models.CharField(max_length=255, unique=True)
    stripe_id = models.CharField(max_length=255, unique=True, null=True, blank=True)
    amount = models.PositiveBigIntegerField()
    currency = models.CharField(max_length=3)
    status = models.CharField(
        max_length=32, choices=Status.choices, default=Status.REQUIRES_PAYMENT_METHOD
    )
    amount_received = models.PositiveBigIntegerField(default=0)
    amount_refunded = models.PositiveBigIntegerField(default=0)
    amount_refund_reserved = models.PositiveBigIntegerField(
        default=0,
        help_text="Refunds asked for but not yet succeeded or given up (awaiting approval, "
        "pending at Stripe): what cannot be refunded again meanwhile",
    )
    dispute_status = models.CharField(
        max_length=40, blank=True, help_text="The status of the payment's latest dispute, if any"
    )
    confirm_attempts = models.PositiveIntegerField(default=0)
    failure_code = models.CharField(max_length=64, blank=True)
    decline_code = models.CharField(max_length=64, blank=True)
    failure_message = models.CharField(max_length=500, blank=True)
    card_brand = models.CharField(max_length=32, blank=True)
    card_last4 = models.CharField(max_length=4, blank=True)
    card_exp_month = models.PositiveSmallIntegerField(null=True, blank=True)
    card_exp_year = models.PositiveSmallIntegerField(null=True, blank=True)
    stripe_charge_id = models.CharField(max_length=255, blank=True)
    stripe_object = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    succeeded_at = models.DateTimeField(null=True, blank=True)
    stripe_checked_at = models.DateTimeField(
        null=True, blank=True, help_text="When Paydesk last read this PaymentIntent from Stripe"
    )

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(condition=CURRENCY_CODE, name="payment_currency_iso"),
            models.CheckConstraint(condition=Q(amount__gt=0), name="payment_amount_positive"),
            models.CheckConstraint(
                condition=Q(amount_received__lte=F("amount")), name="payment_received_le_amount"
            ),
            models.CheckConstraint(
                condition=Q(amount_refunded__gte=0, amount_refunded__lte=F("amount_received")),
                name="payment_refunded_within_received",
            ),
            # The running total: what is refunded plus what is asked for never exceeds what
            # was received, however many refunds are requested at once.
            models.CheckConstraint(
                condition=Q(
                    amount_refund_reserved__lte=F("amount_received") - F("amount_refunded")
                ),
                name="payment_refunds_asked_within_received",
            ),
            # One live PaymentIntent per order: a new one only after the last was canceled.
            models.UniqueConstraint(
                fields=["order"],
                condition=~Q(status="canceled"),
                name="payment_one_live_intent_per_order",
            ),
        ]
        indexes = [
            models.Index(fields=["-created_at", "-id"], name="payment_newest"),
            models.Index(fields=["status", "-created_at"], name="payment_status_newest"),
            models.Index(fields=["currency", "-created_at"], name="payment_currency_newest"),
            models.Index(fields=["card_last4", "-created_at"], name="payment_last4_newest"),
            models.Index(fields=["customer", "-created_at", "-id"],
                         name="payment_customer_newest"),
            # The back office's searches and filters (payments/admin/), at a million payments:
            # a charge id, refunded and disputed payments, and when payments succeeded.
            models.Index(
                fields=["stripe_charge_id"], condition=~Q(stripe_charge_id=""),
                name="payment_charge_id",
            ),
            models.Index(
                fields=["-created_at"], condition=Q(amount_refunded__gt=0),
                name="payment_refunded_newest",
            ),
            models.Index(
                fields=["dispute_status", "-created_at"], condition=~Q(dispute_status=""),
                name="payment_disputed_newest",
            ),
            models.Index(
                fields=["-succeeded_at"], condition=Q(succeeded_at__isnull=False),
                name="payment_succeeded_newest",
            ),
        ]
        permissions = [
            ("refund_payment", "Can request refunds of payments"),
        ]

    def __str__(self) -> str:
        return self.stripe_id or f"payment {self.pk} (not yet at Stripe)"

    @property
    def money(self) -> Money:
        return Money(self.amount, self.currency)

    def is_terminal(self) -> bool:
        return self.status in self.TERMINAL

    @property
    def amount_refundable(self) -> int:
        """What may still be asked for: received, less refunded, less refunds under way."""
        if self.status != self.Status.SUCCEEDED:
            return 0
        return max(self.amount_received - self.amount_refunded - self.amount_refund_reserved, 0)

    def can_refund(self) -> bool:
        return self.amount_refundable > 0


class Refund(models.Model):
    """One row per refund: asked for by staff (then created at Stripe, perhaps after approval)
    or made elsewhere and mirrored. Never overwritten by another refund.

    Before Stripe: `awaiting_approval` (four-eyes), then `rejected`, or `pending` once approved
    (the row and its idempotency key are stored before Stripe is called, so `pending` without a
    `stripe_id` is a call whose answer is not known yet). After: Stripe's statuses, forward only.
    """

    class Status(models.TextChoices):
        AWAITING_APPROVAL = "awaiting_approval", "Awaiting approval"
        REJECTED = "rejected", "Rejected"
        PENDING = "pending", "Pending"
        REQUIRES_ACTION = "requires_action", "Requires action"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        CANCELED = "canceled", "Canceled"

    class Reason(models.TextChoices):
        """Stripe's refund reasons (none is allowed too)."""

        REQUESTED_BY_CUSTOMER = "requested_by_customer", "Requested by the customer"
        DUPLICATE = "duplicate", "Duplicate payment"
        FRAUDULENT = "fraudulent", "Fraudulent"

    OPEN = (Status.PENDING, Status.REQUIRES_ACTION)
    # Holds part of the payment's refundable amount until it succeeds or is given up.
    RESERVING = (Status.AWAITING_APPROVAL, Status.PENDING, Status.REQUIRES_ACTION)
    BEFORE_STRIPE = (Status.AWAITING_APPROVAL, Status.REJECTED)

    payment = models.ForeignKey(Payment, on_delete=models.PROTECT, related_name="refunds")
    idempotency_key = models.CharField(max_length=255, unique=True, null=True, blank=True)
    stripe_id = models.CharField(max_length=255, unique=True, null=True, blank=True)
    amount = models.PositiveBigIntegerField()
    currency = models.CharField(max_length=3)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING)
    reason = models.CharField(max_length=40, blank=True)
    failure_reason = models.CharField(max_length=64, blank=True)
    note = models.CharField(max_length=500, blank=True, help_text="Staff's note with the request")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
        related_name="refunds_requested", help_text="Who asked for it (none: made elsewhere)",
    )
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
        related_name="refunds_decided", help_text="Who approved or rejected it",
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_note = models.CharField(max_length=500, blank=True)
    stripe_object = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    stripe_checked_at = models.DateTimeField(
        null=True, blank=True, help_text="When Paydesk last read this Refund from Stripe"
    )

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="refund_amount_positive"),
            # Four eyes: whoever asked for a refund never decides on it.
            models.CheckConstraint(
                condition=Q(decided_by__isnull=True) | ~Q(decided_by=F("created_by")),
                name="refund_decided_by_another",
            ),
            models.CheckConstraint(
                condition=~Q(status__in=["awaiting_approval", "rejected"])
                | Q(stripe_id__isnull=True),
                name="refund_not_at_stripe_before_approval",
            ),
        ]
        indexes = [
            models.Index(fields=["status", "-created_at"], name="refund_status_newest"),
            # The refunds list, newest first, without sorting every refund.
            models.Index(fields=["-created_at", "-id"], name="refund_newest"),
        ]
        permissions = [
            ("approve_refund", "Can approve or reject refunds awaiting approval"),
        ]

    def __str__(self) -> str:
        return self.stripe_id or f"refund {self.pk}"

    @property
    def money(self) -> Money:
        return Money(self.amount, self.currency)

    @property
    def reason_display(self) -> str:
        """Stripe's reason in words ("" when none was given)."""
        if self.reason in Refund.Reason.values:
            return Refund.Reason(self.reason).label
        return self.reason.replace("_", " ").capitalize()


class Dispute(models.Model):
    """One row per Stripe Dispute (an inquiry, `warning_*`, or a chargeback), in Stripe's status."""

    # Stripe's final statuses: an inquiry closed without a chargeback, a chargeback decided, or
    # one prevented before it became a chargeback.
    CLOSED = ("warning_closed", "won", "lost", "prevented")
    # The bank waits for the business's answer: evidence, or accepting the dispute.
    AWAITING_RESPONSE = ("warning_needs_response", "needs_response")

    payment = models.ForeignKey(Payment, on_delete=models.PROTECT, related_name="disputes")
    stripe_id = models.CharField(max_length=255, unique=True)
    amount = models.PositiveBigIntegerField()
    currency = models.CharField(max_length=3)
    status = models.CharField(max_length=40)
    reason = models.CharField(max_length=64, blank=True)
    evidence_due_by = models.DateTimeField(null=True, blank=True)
    evidence = models.JSONField(
        default=dict, blank=True,
        help_text="The evidence Paydesk last sent to Stripe (text fields and file ids)",
    )
    evidence_saved_at = models.DateTimeField(null=True, blank=True)
    evidence_submitted_at = models.DateTimeField(null=True, blank=True)
    stripe_object = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    stripe_checked_at = models.DateTimeField(
        null=True, blank=True, help_text="When Paydesk last read this Dispute from Stripe"
    )

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["status", "evidence_due_by"], name="dispute_status_due"),
            # The disputes list, newest first, without sorting every dispute.
            models.Index(fields=["-created_at", "-id"], name="dispute_newest"),
        ]
        permissions = [
            ("respond_dispute", "Can save and submit dispute evidence and accept disputes"),
        ]

    def __str__(self) -> str:
        return self.stripe_id

    def needs_response(self) -> bool:
        """Waiting for Paydesk's answer, and none was submitted yet."""
        return self.status in self.AWAITING_RESPONSE and self.evidence_submitted_at is None


class PaymentEvent(models.Model):
    """The append-only ledger of what happened to a payment. Rows are never updated or deleted.

    `reference` names the Stripe object an entry is about (charge, refund, dispute id); with the
    kind it is unique, so a duplicated webhook can never write the same fact twice."""

    class Kind(models.TextChoices):
        REQUESTED = "requested", "Payment requested"
        ACTION_REQUIRED = "action_required", "Authentication required"
        SUCCEEDED = "succeeded", "Payment succeeded"
        FAILED = "failed", "Payment failed"
        CANCELED = "canceled", "Payment canceled"
        REFUND_REQUESTED = "refund_requested", "Refund requested"
        REFUND_SUCCEEDED = "refund_succeeded", "Refund succeeded"
        REFUND_FAILED = "refund_failed", "Refund failed"
        REFUND_AWAITING_APPROVAL = "refund_awaiting_approval", "Refund awaiting approval"
        REFUND_APPROVED = "refund_approved", "Refund approved"
        REFUND_REJECTED = "refund_rejected", "Refund rejected"
        DISPUTE_OPENED = "dispute_opened", "Dispute opened"
        DISPUTE_EVIDENCE_SAVED = "dispute_evidence_saved", "Dispute evidence saved (draft)"
        DISPUTE_EVIDENCE_SUBMITTED = "dispute_evidence_submitted", "Dispute evidence submitted"
        DISPUTE_ACCEPTED = "dispute_accepted", "Dispute accepted"
        DISPUTE_WON = "dispute_won", "Dispute won"
        DISPUTE_LOST = "dispute_lost", "Dispute lost"
        DISPUTE_CLOSED = "dispute_closed", "Inquiry closed"
        WEBHOOK_REPROCESSED = "webhook_reprocessed", "Webhook event reprocessed"

    payment = models.ForeignKey(Payment, on_delete=models.PROTECT, related_name="events")
    kind = models.CharField(max_length=32, choices=Kind.choices)
    amount = models.BigIntegerField(
        null=True, blank=True, help_text="Minor units, when the entry moves money"
    )
    reference = models.CharField(max_length=255, blank=True)
    message = models.CharField(max_length=500, blank=True)
    # PROTECT: a ledger row is never rewritten, not even to forget a deleted user (deactivate
    # staff instead).
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT
    )
    source = models.CharField(max_length=32, help_text="checkout, webhook, admin, api, system")
    stripe_event_id = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["payment", "kind", "reference"],
                condition=~Q(reference=""),
                name="payment_event_once_per_reference",
            ),
        ]
        indexes = [
            models.Index(fields=["payment", "created_at", "id"], name="payment_event_timeline"),
            # The ledger list's filters (payments/admin/payments.py).
            models.Index(fields=["kind", "-created_at"], name="payment_event_kind_newest"),
            models.Index(fields=["source", "-created_at"], name="payment_event_source_newest"),
        ]
        # Append-only in the database itself: any UPDATE or DELETE of a row, from any code or
        # SQL, is refused by PostgreSQL (pgtrigger; SQLite keeps only the save()/delete() guard).
        triggers = [
            pgtrigger.Protect(
                name="append_only", operation=pgtrigger.Update | pgtrigger.Delete
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} ({self.created_at:%Y-%m-%d %H:%M:%S})"

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise ValidationError("Payment events are append-only: they cannot be changed.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise ValidationError("Payment events are append-only: they cannot be deleted.")


class WebhookEvent(models.Model):
    """A Stripe event as received, stored once (unique Stripe id) and processed by a worker.

    `subject` names the Stripe object the event is about, as processing re-reads it
    ("payment_intent:pi_123", "refund:re_123", ...): events waiting for the same subject are
    applied together, with one read from Stripe."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        PROCESSED = "processed", "Processed"
        FAILED = "failed", "Failed (will retry)"
        FAILED_PERMANENTLY = "failed_permanently", "Failed (not retried)"
        IGNORED = "ignored", "Ignored (not Paydesk's)"

    RETRYABLE = (Status.PENDING, Status.FAILED)

    stripe_id = models.CharField(max_length=255, unique=True)
    type = models.CharField(max_length=100, db_index=True)
    subject = models.CharField(max_length=300, blank=True)
    lane = models.PositiveSmallIntegerField(
        default=0, help_text="The WebhookLane whose drain applies this event (from its subject)"
    )
    payload = models.JSONField()
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    received_at = models.DateTimeField(auto_now_add=True)
    processed_at = models.DateTimeField(null=True, blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-received_at"]
        indexes = [
            models.Index(
                fields=["next_attempt_at", "received_at"],
                condition=Q(status__in=["failed", "pending"]),
                name="webhook_event_retry_due",
            ),
            models.Index(
                fields=["subject", "received_at"],
                condition=Q(status__in=["failed", "pending"]),
                name="webhook_event_open_subject",
            ),
            models.Index(
                fields=["lane", "received_at"],
                condition=Q(status="pending"),
                name="webhook_event_lane_pending",
            ),
            # The webhook log (payments/admin/webhooks.py): newest first, by status (processed
            # events, nearly all of them, are left out: the newest-first index finds them), and
            # every event about one Stripe object.
            models.Index(fields=["-received_at", "-id"], name="webhook_event_newest"),
            models.Index(
                fields=["status", "-received_at"], condition=~Q(status="processed"),
                name="webhook_event_status_newest",
            ),
            models.Index(fields=["subject", "-received_at"], name="webhook_event_subject"),
        ]

    def __str__(self) -> str:
        return f"{self.type} {self.stripe_id}"


class WebhookLane(models.Model):
    """A doorbell for one lane of webhook subjects. Ingest rings it (sets `drain_requested`)
    after storing an event, and asks a worker to drain the lane only when it was not rung yet;
    the drain unsets it before it looks for events. So a burst of events costs one task per
    lane, not one per event, and no event is left without a drain on its way (see
    payments/webhooks/ingest.py). A lane's row is created the first time it is rung."""

    MAX_LANES = 64

    number = models.PositiveSmallIntegerField(primary_key=True)
    drain_requested = models.BooleanField(default=False)

    def __str__(self) -> str:
        return f"lane {self.number}"
