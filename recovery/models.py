"""Subscriptions (Plan, Subscription, one Renewal per paid period) and failed-payment recovery
(RetryPolicy, RecoveryCase, RecoveryAttempt, DunningMessage), plus the development clock.

Paydesk owns the renewal and retry schedule (Stripe Billing is not used): each renewal is an
Order paid by an off-session PaymentIntent. Invariants are database constraints, so they hold for
any number of workers.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from money import Money
from orders.models import Order, Price
from payments.models import PaymentMethod

# Stripe's hard declines: retrying cannot succeed (https://docs.stripe.com/declines/codes);
# the customer is asked for another card instead.
DEFAULT_HARD_DECLINES = [
    "lost_card", "stolen_card", "pickup_card", "fraudulent", "restricted_card",
    "invalid_account", "expired_card", "incorrect_number", "invalid_number", "incorrect_cvc",
    "invalid_cvc", "card_not_supported", "currency_not_supported", "do_not_try_again",
    "merchant_blacklist", "security_violation", "revocation_of_all_authorizations",
    "revocation_of_authorization", "stop_payment_order", "transaction_not_allowed",
    "new_account_information_available", "invalid_expiry_year", "invalid_expiry_month",
]
# Network and processing errors: the bank did not decide; retried sooner, with backoff.
DEFAULT_NETWORK_ERRORS = ["processing_error", "issuer_not_available", "try_again_later",
                          "reenter_transaction"]
# About 8 tries within 14 days (hours after the failure that opened the case).
DEFAULT_RETRY_HOURS = [24, 72, 120, 168, 216, 264, 312, 336]
DEFAULT_NETWORK_RETRY_MINUTES = [30, 120, 480]


class Plan(models.Model):
    """What a subscription pays each interval: one catalogue price (product, amount, currency)."""

    class Interval(models.TextChoices):
        MONTH = "month", "Monthly"
        YEAR = "year", "Yearly"

    name = models.CharField(max_length=200)
    slug = models.SlugField(unique=True)
    price = models.ForeignKey(Price, on_delete=models.PROTECT, related_name="plans")
    interval = models.CharField(max_length=5, choices=Interval.choices, default=Interval.MONTH)
    trial_days = models.PositiveSmallIntegerField(default=0)
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(condition=Q(trial_days__lte=365), name="plan_trial_le_year"),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def money(self) -> Money:
        return Money(self.price.unit_amount, self.price.currency)


class Subscription(models.Model):
    """A customer's subscription to a plan, renewed off-session on its saved card."""

    class Status(models.TextChoices):
        TRIALING = "trialing", "Trialing"
        ACTIVE = "active", "Active"
        PAST_DUE = "past_due", "Past due"
        UNPAID = "unpaid", "Unpaid"
        CANCELED = "canceled", "Canceled"

    RENEWABLE = (Status.TRIALING, Status.ACTIVE)

    customer = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="subscriptions"
    )
    plan = models.ForeignKey(Plan, on_delete=models.PROTECT, related_name="subscriptions")
    payment_method = models.ForeignKey(
        PaymentMethod, null=True, blank=True, on_delete=models.SET_NULL,
        related_name="subscriptions",
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.ACTIVE)
    period = models.PositiveIntegerField(
        default=0, help_text="The number of the current period (0: the trial)"
    )
    current_period_start = models.DateTimeField()
    current_period_end = models.DateTimeField(
        help_text="When the next period starts and is charged"
    )
    cancel_at_period_end = models.BooleanField(default=False)
    canceled_at = models.DateTimeField(null=True, blank=True)
    phone = models.CharField(max_length=32, blank=True, help_text="For SMS reminders (E.164)")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(current_period_end__gt=models.F("current_period_start")),
                name="subscription_period_forward",
            ),
            # One live subscription per customer and plan: subscribing twice (a second device,
            # a request sent again with a new Idempotency-Key) must not charge twice.
            models.UniqueConstraint(
                fields=["customer", "plan"], condition=~Q(status="canceled"),
                name="subscription_one_live_per_plan",
            ),
        ]
        indexes = [
            models.Index(fields=["current_period_end"],
                         condition=Q(status__in=["trialing", "active"]),
                         name="subscription_renewal_due"),
        ]

    def __str__(self) -> str:
        return f"{self.plan} for {self.customer}"

    def is_live(self) -> bool:
        return self.status != self.Status.CANCELED

    def can_resume(self) -> bool:
        return self.cancel_at_period_end and self.status != self.Status.CANCELED


class Renewal(models.Model):
    """One paid period of a subscription: its order and the off-session charge's key."""

    subscription = models.ForeignKey(Subscription, on_delete=models.PROTECT,
                                     related_name="renewals")
    period = models.PositiveIntegerField()
    order = models.OneToOneField(Order, on_delete=models.PROTECT, related_name="renewal")
    period_start = models.DateTimeField()
    period_end = models.DateTimeField()
    charged_at = models.DateTimeField(
        null=True, blank=True, help_text="When Stripe answered the renewal charge"
    )
    claimed_until = models.DateTimeField(
        null=True, blank=True,
        help_text="A worker is charging it until then; after that another may take it over",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-period"]
        constraints = [
            models.UniqueConstraint(fields=["subscription", "period"],
                                    name="renewal_once_per_period"),
        ]
        indexes = [
            models.Index(fields=["created_at"], condition=Q(charged_at__isnull=True),
                         name="renewal_charge_due"),
        ]

    def __str__(self) -> str:
        return f"{self.subscription} period {self.period}"

    def charge_key(self, attempt: int) -> str:
        """The off-session charge's idempotency key: subscription, period, attempt."""
        return f"renewal:{self.subscription_id}:{self.period}:{attempt}"


class RetryPolicy(models.Model):
    """The retry schedule and what happens to the subscription, editable in the admin. The
    default one (is_default) applies to every new case. Card-network caps (Visa, Mastercard)
    hold whatever it says (recovery/policy.py)."""

    class FinalAction(models.TextChoices):
        UNPAID = "unpaid", "Mark the subscription unpaid (kept, not renewed)"
        CANCELED = "canceled", "Cancel the subscription"

    name = models.CharField(max_length=100, unique=True)
    is_default = models.BooleanField(default=False)
    retry_hours = models.JSONField(
        default=list,
        help_text="Soft declines: hours after the first failure of each retry, ascending",
    )
    network_retry_minutes = models.JSONField(
        default=list,
        help_text="Network and processing errors: minutes after the failed attempt, one per "
        "consecutive error (backoff); afterwards the schedule applies",
    )
    hard_decline_codes = models.JSONField(
        default=list, help_text="Never retried: the customer is asked to update the card"
    )
    network_error_codes = models.JSONField(default=list)
    do_not_honor_limit = models.PositiveSmallIntegerField(
        default=3, help_text="Generic declines (do_not_honor, generic_decline) retried this "
        "many times at most, then treated as hard",
    )
    final_action = models.CharField(max_length=10, choices=FinalAction.choices,
                                    default=FinalAction.CANCELED)
    email_before_last_try = models.BooleanField(default=True)
    sms_enabled = models.BooleanField(default=False)
    pay_link_days = models.PositiveSmallIntegerField(
        default=15, help_text="How long a dunning message's pay and update-card links work"
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "retry policies"
        constraints = [
            models.UniqueConstraint(fields=["is_default"], condition=Q(is_default=True),
                                    name="retry_policy_one_default"),
        ]

    def __str__(self) -> str:
        return self.name


class RecoveryCase(models.Model):
    """A failed renewal (an off-session charge) being recovered: retries on the policy's
    schedule, dunning messages, and the outcome."""

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        PAUSED = "paused", "Paused"
        RECOVERED = "recovered", "Recovered"
        LOST = "lost", "Lost"
        CANCELED = "canceled", "Canceled"

    class NextAction(models.TextChoices):
        RETRY = "retry", "Retry the charge"
        EXPIRE = "expire", "Give up (end of the schedule)"
        # A retry was started (its attempt and key committed) and is being charged. Its outcome
        # replaces this; if none is recorded by next_action_at (the worker stopped before or
        # during the charge), the same attempt is charged again with the same key.
        CONFIRM = "confirm", "Confirm the started retry"
        NONE = "", "Nothing scheduled"

    class Waiting(models.TextChoices):
        NOTHING = "", "Nothing"
        CARD_UPDATE = "card_update", "A new card (hard decline)"
        AUTHENTICATION = "authentication", "The customer to authenticate (pay link)"

    OPEN_STATUSES = (Status.OPEN, Status.PAUSED)

    order = models.OneToOneField(Order, on_delete=models.PROTECT, related_name="recovery_case")
    subscription = models.ForeignKey(Subscription, null=True, blank=True,
                                     on_delete=models.PROTECT, related_name="recovery_cases")
    policy = models.ForeignKey(RetryPolicy, on_delete=models.PROTECT, related_name="cases")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN)
    amount = models.PositiveBigIntegerField()
    currency = models.CharField(max_length=3)
    opened_at = models.DateTimeField()
    deadline = models.DateTimeField(help_text="When the schedule ends")
    next_action = models.CharField(max_length=10, choices=NextAction.choices, blank=True)
    next_action_at = models.DateTimeField(null=True, blank=True)
    waiting_for = models.CharField(max_length=20, choices=Waiting.choices, blank=True)
    last_failure_code = models.CharField(max_length=64, blank=True)
    last_decline_code = models.CharField(max_length=64, blank=True)
    claimed_until = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-opened_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(next_action="") | Q(next_action_at__isnull=False),
                name="recovery_case_next_action_has_time",
            ),
            models.CheckConstraint(
                condition=Q(status__in=["open", "paused"]) | Q(next_action=""),
                name="recovery_case_closed_has_nothing_next",
            ),
        ]
        indexes = [
            models.Index(fields=["next_action_at"], condition=Q(status="open"),
                         name="recovery_case_due"),
        ]
        permissions = [("manage_recoverycase", "Can retry, pause, cancel or close cases")]

    def __str__(self) -> str:
        return f"case {self.pk} ({self.order})"

    @property
    def money(self) -> Money:
        return Money(self.amount, self.currency)

    def is_open(self) -> bool:
        return self.status in self.OPEN_STATUSES


class RecoveryAttempt(models.Model):
    """One charge of a case: number 0 is the renewal charge that failed, 1.. are retries. The
    key is stored before Stripe is called; the outcome comes from payments' signals."""

    class Outcome(models.TextChoices):
        PENDING = "pending", "Pending"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        ERROR = "error", "Not answered (will be retried)"

    class Trigger(models.TextChoices):
        RENEWAL = "renewal", "Renewal"
        SCHEDULE = "schedule", "Schedule"
        CARD_UPDATE = "card_update", "Card updated"
        STAFF = "staff", "Staff (retry now)"

    case = models.ForeignKey(RecoveryCase, on_delete=models.CASCADE, related_name="attempts")
    number = models.PositiveSmallIntegerField()
    trigger = models.CharField(max_length=12, choices=Trigger.choices)
    idempotency_key = models.CharField(max_length=255, unique=True)
    payment_method = models.ForeignKey(PaymentMethod, null=True, on_delete=models.SET_NULL,
                                       related_name="recovery_attempts")
    card_brand = models.CharField(max_length=32, blank=True)
    card_fingerprint = models.CharField(max_length=64, blank=True)
    attempted_at = models.DateTimeField()
    outcome = models.CharField(max_length=10, choices=Outcome.choices, default=Outcome.PENDING)
    failure_code = models.CharField(max_length=64, blank=True)
    decline_code = models.CharField(max_length=64, blank=True)

    class Meta:
        ordering = ["case", "number"]
        constraints = [
            models.UniqueConstraint(fields=["case", "number"], name="recovery_attempt_once"),
        ]
        indexes = [
            models.Index(fields=["card_fingerprint", "attempted_at"],
                         name="recovery_attempt_card_time"),
        ]

    def __str__(self) -> str:
        return f"attempt {self.number} of {self.case}"


class DunningMessage(models.Model):
    """A message to the customer about a case, at most one per case, kind, attempt and
    channel (a unique constraint): a task that runs twice never sends twice."""

    class Kind(models.TextChoices):
        FAILED = "failed", "Payment failed"
        LAST_TRY = "last_try", "Before the last try"
        ENDED = "ended", "Subscription canceled or suspended"
        STAFF_ENDED = "staff_ended", "Staff told of the cancellation"

    class Channel(models.TextChoices):
        EMAIL = "email", "E-mail"
        SMS = "sms", "SMS"

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SENDING = "sending", "Sending"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed"

    case = models.ForeignKey(RecoveryCase, on_delete=models.CASCADE, related_name="messages")
    kind = models.CharField(max_length=12, choices=Kind.choices)
    attempt_number = models.PositiveSmallIntegerField()
    channel = models.CharField(max_length=5, choices=Channel.choices)
    to = models.CharField(max_length=254)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.PENDING)
    error = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["case", "kind", "attempt_number", "channel"],
                                    name="dunning_once_per_case_attempt"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} ({self.channel}) for {self.case}"


class CardSetup(models.Model):
    """One submission of a card form (sign-up or card update): the SetupIntent's idempotency
    key, committed before Stripe is called, so the same form posted twice (a double click, a
    retry) reuses the same SetupIntent; and the subscription it made, so it subscribes once,
    also when the 3-D Secure return is loaded twice."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                             related_name="card_setups")
    submission_token = models.UUIDField()
    idempotency_key = models.CharField(max_length=255, unique=True)
    setup_intent_id = models.CharField(
        max_length=255, blank=True, db_index=True,
        help_text="The SetupIntent made with the key: the 3-D Secure return finds its row by it",
    )
    subscription = models.ForeignKey(Subscription, null=True, blank=True,
                                     on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "submission_token"],
                                    name="card_setup_once_per_submission"),
        ]

    def __str__(self) -> str:
        return self.idempotency_key


class DevClock(models.Model):
    """Development only: how far `make run`'s clock is ahead of the real one (manage.py
    advance_clock). recovery.clock.now() adds it only when DEBUG is on; one row, id 1."""

    offset_seconds = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return f"+{self.offset_seconds} s"
