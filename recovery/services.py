"""Writes to subscriptions and recovery: sign-up, renewals, retries, and their outcomes.

Beat's tasks claim due rows with `select_for_update(skip_locked=True)` in small batches and a
lease (`claimed_until`): any number of workers never take the same row at once, and a crashed
worker's claim is taken over when its lease ends. Every charge's idempotency key
(renewal:<subscription>:<period>:<attempt>) is stored before Stripe is called, so a claim taken
over replays the same charge at Stripe instead of making another.

Outcomes arrive through payments' signals (receivers.py), in the transaction that applies them,
whether the charge answered at once or a webhook told us later. Every `now` is injected; tasks
pass recovery.clock.now().
"""

from __future__ import annotations

import calendar
import logging
import uuid
from datetime import datetime, timedelta

from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.db.models import Q

from orders.models import Order
from orders.services import order_create
from payments import gateway
from payments.models import Payment, PaymentMethod
from payments.services import (
    PaymentError,
    customer_ensure,
    payment_charge_off_session,
    payment_method_save,
    payment_method_save_from_payment,
    payment_off_session_confirm,
    payment_off_session_prepare,
    payments_off_session_prepare,
    setup_intent_start,
)
from recovery import dunning, policy
from recovery.models import (
    DEFAULT_HARD_DECLINES,
    DEFAULT_NETWORK_ERRORS,
    DEFAULT_NETWORK_RETRY_MINUTES,
    DEFAULT_RETRY_HOURS,
    CardSetup,
    Plan,
    RecoveryAttempt,
    RecoveryCase,
    Renewal,
    RetryPolicy,
    Subscription,
)

logger = logging.getLogger(__name__)

CLAIM_BATCH = 10
LEASE = timedelta(minutes=5)

PLAN_NOT_AVAILABLE = "This plan is not available."
CARD_NOT_YOURS = "Choose one of your saved cards."
ALREADY_CANCELED = "This subscription is already canceled."
ALREADY_SUBSCRIBED = (
    "You already subscribe to this plan: see your subscription to change its card or resume it."
)
NOT_RESUMABLE = "Only a subscription set to cancel at the end of its period can be resumed."
CASE_NOT_OPEN = "This case is already closed."


class SubscriptionError(ValueError):
    """A subscription service refused; the message is safe to show."""


def add_interval(start: datetime, interval: str) -> datetime:
    """One month or year after `start`, on the same day where the month has it (Jan 31 + 1
    month = Feb 28 or 29)."""
    months = 12 if interval == Plan.Interval.YEAR else 1
    month_index = start.month - 1 + months
    year, month = start.year + month_index // 12, month_index % 12 + 1
    day = min(start.day, calendar.monthrange(year, month)[1])
    return start.replace(year=year, month=month, day=day)


def default_policy() -> RetryPolicy:
    """The policy new cases follow: the admin's default, or (if none is marked) the built-in
    one that migration 0002 also makes."""
    found = RetryPolicy.objects.filter(is_default=True).first()
    if found is not None:
        return found
    made, _ = RetryPolicy.objects.get_or_create(
        name="Default",
        defaults={"is_default": True, "retry_hours": DEFAULT_RETRY_HOURS,
                  "network_retry_minutes": DEFAULT_NETWORK_RETRY_MINUTES,
                  "hard_decline_codes": DEFAULT_HARD_DECLINES,
                  "network_error_codes": DEFAULT_NETWORK_ERRORS},
    )
    return made


def rules_of(retry_policy: RetryPolicy) -> policy.Rules:
    return policy.Rules(
        retry_hours=[int(h) for h in retry_policy.retry_hours],
        network_retry_minutes=[int(m) for m in retry_policy.network_retry_minutes],
        hard_decline_codes=list(retry_policy.hard_decline_codes),
        network_error_codes=list(retry_policy.network_error_codes),
        do_not_honor_limit=retry_policy.do_not_honor_limit,
    )


# --- Sign-up, cancel, resume, card update -----------------------------------------------


def subscription_create(
    *, user: AbstractBaseUser, plan: Plan, payment_method: PaymentMethod, now: datetime,
    phone: str = "", card_setup: CardSetup | None = None,
) -> Subscription:
    """Subscribes `user` to `plan`, paying with one of their saved cards (saved by a
    SetupIntent, with 3-D Secure where the card asked for it). A trial starts the first period
    after `plan.trial_days`; without one, the first period is charged now (off-session: the card
    was just set up for it). With the form's `card_setup`, a submission subscribes once: its
    row is locked, and a subscription it made already is returned."""
    if not plan.active or not plan.price.active:
        raise SubscriptionError(PLAN_NOT_AVAILABLE)
    customer = customer_ensure(user=user)
    if payment_method.customer_id != customer.pk or payment_method.detached_at is not None:
        raise SubscriptionError(CARD_NOT_YOURS)
    with transaction.atomic():
        if card_setup is not None:
            card_setup = CardSetup.objects.select_for_update().get(pk=card_setup.pk)
            if card_setup.subscription_id is not None:
                return card_setup.subscription
        live = Subscription.objects.filter(customer=user, plan=plan).exclude(
            status=Subscription.Status.CANCELED)
        if live.exists():
            raise SubscriptionError(ALREADY_SUBSCRIBED)
        try:
            with transaction.atomic():
                subscription = _subscription_start(user=user, plan=plan,
                                                   payment_method=payment_method, phone=phone,
                                                   now=now)
        except IntegrityError:
            # A concurrent request subscribed first (subscription_one_live_per_plan).
            raise SubscriptionError(ALREADY_SUBSCRIBED) from None
        if card_setup is not None:
            card_setup.subscription = subscription
            card_setup.save(update_fields=["subscription"])
        renewal = subscription.renewals.first()
    if renewal is not None:
        renewal_charge(renewal=renewal, now=now)
        subscription.refresh_from_db()
    return subscription


def _subscription_start(*, user: AbstractBaseUser, plan: Plan, payment_method: PaymentMethod,
                        phone: str, now: datetime) -> Subscription:
    """The subscription's row, and its first period's renewal unless it starts with a trial."""
    if plan.trial_days:
        return Subscription.objects.create(
            customer=user, plan=plan, payment_method=payment_method, phone=phone,
            status=Subscription.Status.TRIALING, period=0, current_period_start=now,
            current_period_end=now + timedelta(days=plan.trial_days),
        )
    subscription = Subscription.objects.create(
        customer=user, plan=plan, payment_method=payment_method, phone=phone,
        status=Subscription.Status.ACTIVE, period=0, current_period_start=now,
        current_period_end=now + timedelta(microseconds=1),
    )
    _renewal_open(subscription, now=now)
    return subscription


def subscription_cancel(
    *, subscription: Subscription, at_period_end: bool = True, now: datetime
) -> Subscription:
    """Cancels at the end of the paid period (the default: resumable until then), or at once
    (an open recovery case is canceled with it)."""
    with transaction.atomic():
        subscription = Subscription.objects.select_for_update().get(pk=subscription.pk)
        if subscription.status == Subscription.Status.CANCELED:
            raise SubscriptionError(ALREADY_CANCELED)
        if at_period_end and subscription.status in Subscription.RENEWABLE:
            subscription.cancel_at_period_end = True
            subscription.save(update_fields=["cancel_at_period_end", "updated_at"])
            return subscription
        subscription.status = Subscription.Status.CANCELED
        subscription.canceled_at = now
        subscription.save(update_fields=["status", "canceled_at", "updated_at"])
        for case in RecoveryCase.objects.select_for_update().filter(
            subscription=subscription, status__in=RecoveryCase.OPEN_STATUSES
        ):
            _close(case, RecoveryCase.Status.CANCELED, now=now)
    return subscription


def subscription_resume(*, subscription: Subscription) -> Subscription:
    """Undoes a cancellation at period end."""
    with transaction.atomic():
        subscription = Subscription.objects.select_for_update().get(pk=subscription.pk)
        if not subscription.can_resume():
            raise SubscriptionError(NOT_RESUMABLE)
        subscription.cancel_at_period_end = False
        subscription.save(update_fields=["cancel_at_period_end", "updated_at"])
    return subscription


def subscription_card_update(
    *, subscription: Subscription, payment_method: PaymentMethod, now: datetime
) -> Subscription:
    """Pays future renewals with another saved card. A case waiting for payment is retried at
    once with it (here, after the card is stored: the customer sees the outcome), also after
    its schedule ended while the subscription is unpaid."""
    case_id = None
    if (payment_method.customer.user_id != subscription.customer_id
            or payment_method.detached_at is not None):
        raise SubscriptionError(CARD_NOT_YOURS)
    with transaction.atomic():
        subscription = Subscription.objects.select_for_update().get(pk=subscription.pk)
        if subscription.status == Subscription.Status.CANCELED:
            raise SubscriptionError(ALREADY_CANCELED)
        subscription.payment_method = payment_method
        subscription.save(update_fields=["payment_method", "updated_at"])
        case = (
            RecoveryCase.objects.select_for_update(of=("self",))
            .filter(subscription=subscription)
            .filter(Q(status__in=RecoveryCase.OPEN_STATUSES)
                    | Q(status=RecoveryCase.Status.LOST,
                        subscription__status=Subscription.Status.UNPAID))
            .order_by("-opened_at").first()
        )
        if case is not None:
            if case.status == RecoveryCase.Status.LOST:
                case.closed_at = None
            case.status = RecoveryCase.Status.OPEN
            case.waiting_for = RecoveryCase.Waiting.NOTHING
            case.next_action = RecoveryCase.NextAction.RETRY
            case.next_action_at = now
            case.claimed_until = now + LEASE
            case.save()
            case_id = case.pk
    if case_id is not None:
        case_run(case_id=case_id, now=now, trigger=RecoveryAttempt.Trigger.CARD_UPDATE)
        subscription.refresh_from_db()
    return subscription


# --- Renewals ------------------------------------------------------------------------------------


def _renewal_open(subscription: Subscription, *, now: datetime) -> Renewal:
    """Starts the subscription's next period: its order and Renewal row (the charge follows,
    outside this transaction). The caller holds the subscription's lock."""
    plan = subscription.plan
    start = subscription.current_period_end
    end = add_interval(start if subscription.period else now, plan.interval)
    if subscription.period == 0:
        start = now
    order = order_create(customer=subscription.customer, items=[(plan.price, 1)])
    period = subscription.period + 1
    renewal = Renewal.objects.create(
        subscription=subscription, period=period, order=order, period_start=start,
        period_end=end, claimed_until=now + LEASE,
    )
    subscription.period = period
    subscription.current_period_start = start
    subscription.current_period_end = end
    if subscription.status == Subscription.Status.TRIALING:
        subscription.status = Subscription.Status.ACTIVE
    subscription.save(update_fields=["period", "current_period_start", "current_period_end",
                                     "status", "updated_at"])
    return renewal


def renewals_open_due(*, now: datetime, limit: int = CLAIM_BATCH) -> list[Renewal]:
    """Starts the next period of up to `limit` subscriptions whose period ended (or cancels
    those set to cancel at period end). Rows another worker holds are skipped. Returns the
    renewals opened (claimed by this worker for their charge)."""
    opened = []
    with transaction.atomic():
        due = list(
            Subscription.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("plan__price")
            .filter(status__in=Subscription.RENEWABLE, current_period_end__lte=now)
            .order_by("current_period_end")[:limit]
        )
        for subscription in due:
            if subscription.cancel_at_period_end:
                subscription.status = Subscription.Status.CANCELED
                subscription.canceled_at = subscription.current_period_end
                subscription.save(update_fields=["status", "canceled_at", "updated_at"])
                continue
            opened.append(_renewal_open(subscription, now=now))
    return opened


def renewals_claim_uncharged(*, now: datetime, limit: int = CLAIM_BATCH) -> list[Renewal]:
    """Claims renewals whose charge has no answer yet and whose lease ended (a crashed worker's)."""
    with transaction.atomic():
        claimed = list(
            Renewal.objects.select_for_update(skip_locked=True)
            .filter(charged_at__isnull=True)
            .filter(Q(claimed_until__isnull=True) | Q(claimed_until__lte=now))
            .order_by("created_at")[:limit]
        )
        Renewal.objects.filter(pk__in=[r.pk for r in claimed]).update(claimed_until=now + LEASE)
    return claimed


def renewal_charge(*, renewal: Renewal, now: datetime) -> Payment | None:
    """Charges a renewal's order off-session on the subscription's card (attempt 1). A failure
    opens a RecoveryCase (receivers.py); no card, or an error without an answer, too."""
    renewal = Renewal.objects.select_related("subscription__payment_method__customer",
                                             "order").get(pk=renewal.pk)
    subscription = renewal.subscription
    card = subscription.payment_method
    payment = None
    try:
        if card is None or card.detached_at is not None:
            raise PaymentError("no card")
        payment = payment_charge_off_session(
            order=renewal.order, payment_method=card, idempotency_key=renewal.charge_key(1)
        )
    except (PaymentError, gateway.GatewayError) as exc:
        logger.warning("renewal %s: charge not made: %s", renewal.pk, exc)
        if isinstance(exc, gateway.GatewayUnavailable):
            return None  # the lease ends and the same charge is replayed
        case_open_without_charge(renewal=renewal, now=now, reason=str(exc))
    Renewal.objects.filter(pk=renewal.pk).update(charged_at=now, claimed_until=None)
    return payment


# --- Recovery cases --------------------------------------------------------------------------


def case_open(*, renewal: Renewal, payment: Payment, now: datetime) -> RecoveryCase:
    """The case for a renewal whose charge failed, opened once (the order is unique). The
    caller holds the payment's lock (a payments signal). The subscription goes past due."""
    retry_policy = default_policy()
    case, created = RecoveryCase.objects.select_for_update().get_or_create(
        order=renewal.order,
        defaults={
            "subscription": renewal.subscription, "policy": retry_policy,
            "amount": payment.amount, "currency": payment.currency, "opened_at": now,
            "deadline": now + rules_of(retry_policy).schedule_length,
        },
    )
    if created:
        Subscription.objects.filter(
            pk=renewal.subscription_id, status__in=Subscription.RENEWABLE
        ).update(status=Subscription.Status.PAST_DUE)
        method = renewal.subscription.payment_method
        RecoveryAttempt.objects.create(
            case=case, number=1, trigger=RecoveryAttempt.Trigger.RENEWAL,
            idempotency_key=renewal.charge_key(1), payment_method=method,
            card_brand=method.brand if method else "",
            card_fingerprint=_card_identity(method), attempted_at=now,
        )
    return case


def case_open_without_charge(*, renewal: Renewal, now: datetime, reason: str) -> None:
    """A renewal that could not be charged at all (no usable card): a case waiting for a card."""
    order = renewal.order
    with transaction.atomic():
        retry_policy = default_policy()
        case, created = RecoveryCase.objects.get_or_create(
            order=order,
            defaults={
                "subscription": renewal.subscription, "policy": retry_policy,
                "amount": order.total_amount, "currency": order.currency, "opened_at": now,
                "deadline": now + rules_of(retry_policy).schedule_length,
                "waiting_for": RecoveryCase.Waiting.CARD_UPDATE,
                "last_failure_code": "no_card",
            },
        )
        if created:
            case.next_action = RecoveryCase.NextAction.EXPIRE
            case.next_action_at = case.deadline
            case.save(update_fields=["next_action", "next_action_at"])
            Subscription.objects.filter(pk=renewal.subscription_id).update(
                status=Subscription.Status.PAST_DUE)
            dunning.messages_queue(case, kind=dunning.Kind.FAILED, attempt_number=1)


def _card_identity(method: PaymentMethod | None) -> str:
    if method is None:
        return ""
    return method.fingerprint or method.stripe_id


def case_record_failure(*, case: RecoveryCase, payment: Payment, now: datetime) -> None:
    """Applies a failed charge to its case (locked by the caller): the attempt's outcome, then
    what comes next by the policy, then the dunning messages. A failure that is no attempt of
    ours (the customer paying on the pay link with a card that failed) changes nothing."""
    if not case.is_open():
        return
    # Every attempt at once: the one to record, and the history the schedule reads.
    attempts = list(case.attempts.order_by("number"))
    attempt = next((a for a in reversed(attempts) if a.outcome in (
        RecoveryAttempt.Outcome.PENDING, RecoveryAttempt.Outcome.ERROR)), None)
    if attempt is None:
        return
    attempt.outcome = RecoveryAttempt.Outcome.FAILED
    attempt.failure_code = payment.failure_code
    attempt.decline_code = payment.decline_code
    attempt.save(update_fields=["outcome", "failure_code", "decline_code"])
    case.last_failure_code = payment.failure_code
    case.last_decline_code = payment.decline_code
    _schedule_next(case, failed_at=max(now, attempt.attempted_at), now=now, attempts=attempts)


_FAILED_OUTCOMES = (RecoveryAttempt.Outcome.FAILED, RecoveryAttempt.Outcome.ERROR)


def _schedule_next(case: RecoveryCase, *, failed_at: datetime, now: datetime,
                   attempts: list[RecoveryAttempt] | None = None) -> None:
    """What comes after a failure by the policy, and its dunning messages. `attempts`: the
    case's attempts by number, as they are now (read here if not given)."""
    rules = rules_of(case.policy)
    if attempts is None:
        attempts = list(case.attempts.order_by("number"))
    failed = [a for a in attempts if a.outcome in _FAILED_OUTCOMES]
    last = failed[-1]
    generic_before = sum(
        1 for a in failed[:-1] if (a.decline_code or a.failure_code) in policy.GENERIC_DECLINES
    )
    kind = policy.classify(rules, failure_code=last.failure_code, decline_code=last.decline_code,
                           generic_declines_before=generic_before)
    in_a_row = 0
    for attempt in reversed(failed):
        if policy.classify(rules, failure_code=attempt.failure_code,
                           decline_code=attempt.decline_code,
                           generic_declines_before=0) != policy.FailureKind.NETWORK:
            break
        in_a_row += 1
    case.waiting_for = {
        policy.FailureKind.HARD: RecoveryCase.Waiting.CARD_UPDATE,
        policy.FailureKind.AUTHENTICATION: RecoveryCase.Waiting.AUTHENTICATION,
    }.get(kind, RecoveryCase.Waiting.NOTHING)
    at = policy.next_retry_at(rules, kind=kind, opened_at=case.opened_at, failed_at=failed_at,
                              network_errors_in_a_row=in_a_row)
    if at is not None and policy.has_network_cap(last.card_brand):
        at = policy.capped(last.card_brand, at=at,
                           retries_on_card=_retries_on_card(last.card_fingerprint))
    if at is not None and at > case.deadline:
        at = None
    if at is None:
        case.next_action = RecoveryCase.NextAction.EXPIRE
        case.next_action_at = max(case.deadline, now)
    else:
        case.next_action = RecoveryCase.NextAction.RETRY
        case.next_action_at = at
    case.claimed_until = None
    case.save(update_fields=["waiting_for", "next_action", "next_action_at", "claimed_until",
                             "last_failure_code", "last_decline_code"])
    dunning.messages_queue(case, kind=dunning.Kind.FAILED, attempt_number=last.number)
    if (at is not None and case.policy.email_before_last_try
            and policy.is_last_retry(rules, opened_at=case.opened_at, at=at)):
        dunning.messages_queue(case, kind=dunning.Kind.LAST_TRY, attempt_number=last.number + 1)


def _retries_on_card(identity: str) -> list[datetime]:
    if not identity:
        return []
    # No ordering: the model's (by case) would join the cases for nothing.
    return list(RecoveryAttempt.objects.filter(card_fingerprint=identity, number__gt=1)
                .order_by().values_list("attempted_at", flat=True))


def case_record_success(*, case: RecoveryCase, now: datetime) -> None:
    """The order was paid (an attempt, the pay link, or a webhook): the case is recovered, the
    remaining attempts are canceled and the subscription is active again."""
    case.attempts.filter(outcome__in=(RecoveryAttempt.Outcome.PENDING,
                                      RecoveryAttempt.Outcome.ERROR)).update(
        outcome=RecoveryAttempt.Outcome.SUCCEEDED)
    if case.status in (*RecoveryCase.OPEN_STATUSES, RecoveryCase.Status.LOST):
        _close(case, RecoveryCase.Status.RECOVERED, now=now)
        if case.subscription_id:
            Subscription.objects.filter(
                pk=case.subscription_id,
                status__in=(Subscription.Status.PAST_DUE, Subscription.Status.UNPAID),
            ).update(status=Subscription.Status.ACTIVE)


def _close(case: RecoveryCase, status: str, *, now: datetime) -> None:
    case.status = status
    case.closed_at = now
    case.next_action = RecoveryCase.NextAction.NONE
    case.next_action_at = None
    case.waiting_for = RecoveryCase.Waiting.NOTHING
    case.claimed_until = None
    case.save(update_fields=["status", "closed_at", "next_action", "next_action_at",
                             "waiting_for", "claimed_until"])


def cases_claim_due(*, now: datetime, limit: int = CLAIM_BATCH) -> list[int]:
    """Claims up to `limit` open cases whose next action is due and whose lease (if any) ended;
    returns their ids. Rows another worker holds are skipped."""
    with transaction.atomic():
        ids = list(
            RecoveryCase.objects.select_for_update(skip_locked=True)
            .filter(status=RecoveryCase.Status.OPEN, next_action_at__lte=now)
            .exclude(next_action="")
            .filter(Q(claimed_until__isnull=True) | Q(claimed_until__lte=now))
            .order_by("next_action_at")
            .values_list("pk", flat=True)[:limit]
        )
        RecoveryCase.objects.filter(pk__in=ids).update(claimed_until=now + LEASE)
    return ids


def case_run(*, case_id: int, now: datetime,
             trigger: str = RecoveryAttempt.Trigger.SCHEDULE) -> str:
    """Runs a claimed case's due action: a retry, or the end of the schedule. Returns what it
    did: "retried", "deferred" (a network cap), "expired" or "skipped".

    A retry is two transactions: the attempt row (its idempotency key) and the order's payment
    are committed first, then Stripe is called and the outcome applied under the payment's lock
    (payments.services.payment_off_session_confirm; receivers.py answers its signals)."""
    payment = refused = None
    with transaction.atomic():
        # The order first, then the case: payments and its signals' receivers lock in that
        # order too (order, payment, case), so a retry and a payment on the pay link cannot
        # deadlock.
        order = (Order.objects.select_for_update(of=("self",))
                 .select_related("customer", "renewal").get(recovery_case__pk=case_id))
        case = RecoveryCase.objects.select_for_update(of=("self",)).select_related(
            "subscription__payment_method__customer", "policy").get(pk=case_id)
        case.order = order
        if case.status != RecoveryCase.Status.OPEN or not case.next_action:
            return "skipped"
        if case.next_action == RecoveryCase.NextAction.EXPIRE:
            case_expire(case=case, now=now)
            return "expired"
        if case.next_action == RecoveryCase.NextAction.CONFIRM:
            attempt = _attempt_unanswered(case)
            if attempt is None:
                case.next_action = RecoveryCase.NextAction.NONE
                case.next_action_at = None
                case.claimed_until = None
                case.save(update_fields=["next_action", "next_action_at", "claimed_until"])
                return "skipped"
            card = attempt.payment_method
        else:
            started = _attempt_start(case=case, order=order, now=now, trigger=trigger)
            if started is None:
                return "deferred"
            attempt, card = started
        case.next_action = RecoveryCase.NextAction.CONFIRM
        case.next_action_at = now + LEASE
        case.save(update_fields=["next_action", "next_action_at"])
        try:
            payment = payment_off_session_prepare(order=order,
                                                  idempotency_key=attempt.idempotency_key)
        except PaymentError as exc:  # the order is paid or canceled meanwhile
            refused = exc
    _retry_charge(case_id=case.pk, attempt=attempt, payment=payment, card=card, now=now,
                  refused=refused)
    return "retried"


def _attempt_start(*, case: RecoveryCase, order: Order, now: datetime, trigger: str
                   ) -> tuple[RecoveryAttempt, PaymentMethod] | None:
    """case_run's new attempt (or the replay of one Stripe did not answer) and its card, or
    None when the retry is deferred: no usable card, or the card's network cap. The caller
    holds the order's and the case's locks."""
    card = case.subscription.payment_method if case.subscription else None
    if card is None or card.detached_at is not None:
        case.waiting_for = RecoveryCase.Waiting.CARD_UPDATE
        case.next_action = RecoveryCase.NextAction.EXPIRE
        case.next_action_at = max(case.deadline, now)
        case.claimed_until = None
        case.save(update_fields=["waiting_for", "next_action", "next_action_at",
                                 "claimed_until"])
        return None
    if policy.has_network_cap(card.brand):
        # The card's row lock serialises retries on one card, so the cap holds across
        # cases. A brand without a cap needs neither the lock nor the card's history.
        PaymentMethod.objects.select_for_update().filter(pk=card.pk).exists()
        allowed_at = policy.capped(card.brand, at=now,
                                   retries_on_card=_retries_on_card(_card_identity(card)))
        if allowed_at > now:
            case.next_action_at = allowed_at
            if (allowed_at > case.deadline
                    and trigger == RecoveryAttempt.Trigger.SCHEDULE):
                case.next_action = RecoveryCase.NextAction.EXPIRE
                case.next_action_at = case.deadline if case.deadline > now else now
            case.claimed_until = None
            case.save(update_fields=["next_action", "next_action_at", "claimed_until"])
            return None
    last = case.attempts.order_by("-number").first()
    if last is not None and last.outcome == RecoveryAttempt.Outcome.ERROR:
        attempt = last  # no answer last time: the same key replays that charge
        attempt.outcome = RecoveryAttempt.Outcome.PENDING
        attempt.save(update_fields=["outcome"])
    else:
        attempt = _attempt_next(case, order=order, after=last, card=card, trigger=trigger,
                                now=now)
        attempt.save(force_insert=True)
    return attempt, card


def _attempt_next(case: RecoveryCase, *, order: Order, after: RecoveryAttempt | None,
                  card: PaymentMethod, trigger: str, now: datetime) -> RecoveryAttempt:
    """The case's attempt after `after` (its last one), not saved yet, on `card`, with the
    renewal's charge key for its number."""
    number = (after.number if after else 0) + 1
    return RecoveryAttempt(
        case=case, number=number, trigger=trigger,
        idempotency_key=order.renewal.charge_key(number),
        payment_method=card, card_brand=card.brand, card_fingerprint=_card_identity(card),
        attempted_at=now,
    )


def _attempt_unanswered(case: RecoveryCase) -> RecoveryAttempt | None:
    """The started attempt that has no recorded answer by its lease's end (CONFIRM): the worker
    stopped before or while charging it. It is charged again with its key and card, so Stripe
    answers a charge it made with that charge, and makes one it did not; the network caps
    counted it when it started. None if it was answered meanwhile."""
    attempt = (case.attempts.filter(outcome=RecoveryAttempt.Outcome.PENDING)
               .select_related("payment_method__customer").order_by("-number").first())
    if attempt is None or attempt.payment_method is None:
        return None
    logger.warning("case %s: attempt %s has no recorded answer; charging it again with its key",
                   case.pk, attempt.number)
    return attempt


def _retry_charge(*, case_id: int, attempt: RecoveryAttempt, payment: Payment | None,
                  card: PaymentMethod, now: datetime, refused: Exception | None = None) -> None:
    """The charge of a committed attempt; its outcome comes through payments' signals. Without
    an answer (or refused before Stripe), the attempt is an error and the case scheduled on."""
    try:
        if refused is not None:
            raise refused
        payment = payment_off_session_confirm(payment=payment, payment_method=card,
                                              idempotency_key=attempt.idempotency_key)
    except (PaymentError, gateway.GatewayError) as exc:
        logger.warning("case %s: attempt %s has no answer: %s", case_id, attempt.number, exc)
        with transaction.atomic():
            case = RecoveryCase.objects.select_for_update().get(pk=case_id)
            RecoveryAttempt.objects.filter(pk=attempt.pk,
                                           outcome=RecoveryAttempt.Outcome.PENDING).update(
                outcome=RecoveryAttempt.Outcome.ERROR, failure_code="processing_error")
            if case.status == RecoveryCase.Status.OPEN and case.next_action in (
                    RecoveryCase.NextAction.NONE, RecoveryCase.NextAction.CONFIRM):
                _schedule_next(case, failed_at=now, now=now)
        return
    # Stripe answered. A success closed the case (its receiver, under the payment's lock); a
    # decline scheduled what comes next in place of CONFIRM; an answer that is not final yet
    # (processing) waits for its webhook, with nothing to confirm again.
    if payment.status != Payment.Status.SUCCEEDED:
        RecoveryCase.objects.filter(pk=case_id,
                                    next_action=RecoveryCase.NextAction.CONFIRM).update(
            next_action=RecoveryCase.NextAction.NONE, next_action_at=None)


def cases_run(*, case_ids: list[int], now: datetime) -> int:
    """Runs claimed cases (beat's batch): plain retries start together, in one transaction of
    about ten queries whatever their number (orders, cases and capped cards locked, attempts,
    payments and their ledger rows inserted at once), then each is charged as case_run charges
    it. Any other case (an end of schedule, no usable card, a network cap, a charge to replay,
    an order paid meanwhile) is run by case_run alone. The dunning messages the batch queues
    are sent by one task after it. Returns how many cases were run."""
    started, alone = _retries_start(case_ids=case_ids, now=now)
    failures = []
    with dunning.deliveries_batched():  # one task for the batch's e-mails, not one each
        for case, attempt, payment in started:
            try:
                _retry_charge(case_id=case.pk, attempt=attempt, payment=payment,
                              card=case.subscription.payment_method, now=now)
            except Exception as exc:
                # The batch's other retries are committed already: one case's failure must not
                # leave them uncharged. Charge them all, run the rest, then fail the task.
                logger.exception("case %s: attempt %s failed", case.pk, attempt.number)
                failures.append(exc)
        for case_id in alone:
            case_run(case_id=case_id, now=now)
    if failures:
        raise failures[0]
    return len(case_ids)


def _retries_start(*, case_ids: list[int], now: datetime
                   ) -> tuple[list[tuple[RecoveryCase, RecoveryAttempt, Payment]], list[int]]:
    """case_run's first transaction for the plain retries among `case_ids`: (case, attempt,
    payment) of each retry started, and the ids left for case_run."""
    with transaction.atomic():
        # Orders first, then cases, then cards, as case_run (and payments' receivers) lock them;
        # by id, so two batches never wait on each other in opposite orders.
        orders = {order.pk: order for order in
                  Order.objects.select_for_update(of=("self",)).select_related("customer",
                                                                                "renewal")
                  .filter(recovery_case__pk__in=case_ids).order_by("pk")}
        cases = list(RecoveryCase.objects.select_for_update(of=("self",)).select_related(
            "subscription__payment_method__customer", "policy")
            .filter(pk__in=case_ids).order_by("pk"))
        # Each case's last attempt (a case has a handful: all of them is one simple query).
        last = {attempt.case_id: attempt for attempt in
                RecoveryAttempt.objects.filter(case_id__in=case_ids).order_by("case_id", "number")}
        plain = []
        for case in cases:
            case.order = orders[case.order_id]
            card = case.subscription.payment_method if case.subscription else None
            previous = last.get(case.pk)
            if (case.status == RecoveryCase.Status.OPEN
                    and case.next_action == RecoveryCase.NextAction.RETRY
                    and card is not None and card.detached_at is None
                    and case.order.is_payable()
                    and (previous is None or previous.outcome != RecoveryAttempt.Outcome.ERROR)):
                plain.append(case)
        plain = _within_network_caps(plain, now=now)
        attempts = RecoveryAttempt.objects.bulk_create([
            _attempt_next(case, order=case.order, after=last.get(case.pk),
                          card=case.subscription.payment_method,
                          trigger=RecoveryAttempt.Trigger.SCHEDULE, now=now)
            for case in plain
        ])
        RecoveryCase.objects.filter(pk__in=[case.pk for case in plain]).update(
            next_action=RecoveryCase.NextAction.CONFIRM, next_action_at=now + LEASE)
        payments = payments_off_session_prepare(
            orders=[case.order for case in plain],
            idempotency_keys={case.order_id: attempt.idempotency_key
                              for case, attempt in zip(plain, attempts, strict=True)})
    started = [(case, attempt, payments[case.order_id])
               for case, attempt in zip(plain, attempts, strict=True)]
    chosen = {case.pk for case in plain}
    return started, [case_id for case_id in case_ids if case_id not in chosen]


def _within_network_caps(cases: list[RecoveryCase], *, now: datetime) -> list[RecoveryCase]:
    """The cases whose card's network cap allows a retry now, counting the retries this batch
    makes before each; their cards are locked (capped brands only), as case_run locks one."""
    capped = [case for case in cases
              if policy.has_network_cap(case.subscription.payment_method.brand)]
    if not capped:
        return cases
    cards = sorted({case.subscription.payment_method.pk for case in capped})
    list(PaymentMethod.objects.select_for_update().filter(pk__in=cards).order_by("pk")
         .values_list("pk", flat=True))
    retries: dict[str, list[datetime]] = {}
    identities = {_card_identity(case.subscription.payment_method) for case in capped} - {""}
    for identity, at in (RecoveryAttempt.objects
                         .filter(card_fingerprint__in=identities, number__gt=1)
                         .order_by().values_list("card_fingerprint", "attempted_at")):
        retries.setdefault(identity, []).append(at)
    allowed = []
    for case in cases:
        card = case.subscription.payment_method
        identity = _card_identity(card)
        if policy.has_network_cap(card.brand) and identity:
            if policy.capped(card.brand, at=now, retries_on_card=retries.get(identity, [])) > now:
                continue  # case_run defers it
            retries.setdefault(identity, []).append(now)
        allowed.append(case)
    return allowed


def case_expire(*, case: RecoveryCase, now: datetime) -> None:
    """The schedule ended unpaid (the case is locked by the caller): the case is lost and the
    subscription unpaid or canceled, as the policy says; customer and staff are told."""
    _close(case, RecoveryCase.Status.LOST, now=now)
    subscription = case.subscription
    if subscription is None:
        return
    final = case.policy.final_action
    Subscription.objects.filter(pk=subscription.pk).exclude(
        status=Subscription.Status.CANCELED
    ).update(
        status=final,
        canceled_at=now if final == RetryPolicy.FinalAction.CANCELED else None,
    )
    number = case.attempts.count()
    dunning.messages_queue(case, kind=dunning.Kind.ENDED, attempt_number=number)
    dunning.messages_queue(case, kind=dunning.Kind.STAFF_ENDED, attempt_number=number)


# --- Staff ------------------------------------------------------------------------------------


def case_retry_now(*, case: RecoveryCase, now: datetime) -> RecoveryCase:
    """Staff: the next retry is due now (a worker makes it within the beat interval)."""
    with transaction.atomic():
        case = RecoveryCase.objects.select_for_update().get(pk=case.pk)
        if not case.is_open():
            raise SubscriptionError(CASE_NOT_OPEN)
        case.status = RecoveryCase.Status.OPEN
        if case.next_action != RecoveryCase.NextAction.CONFIRM:
            case.next_action = RecoveryCase.NextAction.RETRY
        # else: a started retry has no answer yet: it is charged again now, with its key.
        case.next_action_at = now
        case.save()
    return case


def case_pause(*, case: RecoveryCase) -> RecoveryCase:
    with transaction.atomic():
        case = RecoveryCase.objects.select_for_update().get(pk=case.pk)
        if case.status != RecoveryCase.Status.OPEN:
            raise SubscriptionError(CASE_NOT_OPEN)
        case.status = RecoveryCase.Status.PAUSED
        case.save(update_fields=["status"])
    return case


def case_cancel(*, case: RecoveryCase, now: datetime) -> RecoveryCase:
    with transaction.atomic():
        case = RecoveryCase.objects.select_for_update().get(pk=case.pk)
        if not case.is_open():
            raise SubscriptionError(CASE_NOT_OPEN)
        _close(case, RecoveryCase.Status.CANCELED, now=now)
    return case


def case_mark_recovered(*, case: RecoveryCase, now: datetime) -> RecoveryCase:
    """Staff: the customer paid another way. The case closes as recovered; no charge is made."""
    with transaction.atomic():
        case = RecoveryCase.objects.select_for_update().get(pk=case.pk)
        if not case.is_open():
            raise SubscriptionError(CASE_NOT_OPEN)
        case_record_success(case=case, now=now)
    return case


# --- Saving a card on our pages (test-card mode), with 3-D Secure where the card asks ----------


def card_setup_begin(*, user: AbstractBaseUser, submission_token: uuid.UUID) -> CardSetup:
    """The card form's submission, with its SetupIntent key (setup:<user>:<token>), committed
    before Stripe is called: the same submission again gets the same row and key."""
    setup, _ = CardSetup.objects.get_or_create(
        user=user, submission_token=submission_token,
        defaults={"idempotency_key": f"setup:{user.pk}:{submission_token}"},
    )
    return setup


def card_setup(
    *, user: AbstractBaseUser, test_payment_method: str, return_url: str, idempotency_key: str,
    record: CardSetup | None = None,
) -> tuple[gateway.SetupIntentData, PaymentMethod | None]:
    """Saves a card for off-session renewals with a SetupIntent confirmed on the server. Returns
    the SetupIntent and the saved card (None while it waits for 3-D Secure: the browser goes
    to `raw["next_action"]` and comes back to `return_url`, then card_setup_finish).
    `idempotency_key` is the caller's stored key; `record`, its CardSetup row, is given the
    SetupIntent's id."""
    _, setup_intent = setup_intent_start(user=user, idempotency_key=idempotency_key)
    if record is not None:
        CardSetup.objects.filter(pk=record.pk).update(setup_intent_id=setup_intent.id)
    setup_intent = gateway.setup_intent_confirm(
        setup_intent.id, payment_method=test_payment_method, return_url=return_url,
        idempotency_key=f"{idempotency_key}:confirm",
    )
    if setup_intent.status != "succeeded":
        return setup_intent, None
    return setup_intent, payment_method_save(setup_intent=setup_intent)


def card_setup_finish(*, user: AbstractBaseUser, setup_intent_id: str) -> PaymentMethod | None:
    """After 3-D Secure: the card, if the customer's SetupIntent succeeded."""
    setup_intent = gateway.setup_intent_retrieve(setup_intent_id)
    customer = customer_ensure(user=user)
    if setup_intent.customer != customer.stripe_id or setup_intent.status != "succeeded":
        return None
    return payment_method_save(setup_intent=setup_intent)


# --- Paying a renewal on the checkout (the pay link) saves the card for the next renewals -------

# The PaymentIntent's metadata (payments.signals.payment_card_saving): the subscription, and the
# card it had when the payment started. Stripe drops a metadata key set to "": NO_CARD instead.
SUBSCRIPTION_KEY = "paydesk_subscription_id"
CARD_BEFORE_KEY = "paydesk_card_before"
NO_CARD = "none"


def renewal_card_saving(*, order_id: int) -> dict[str, str] | None:
    """What a payment of a live subscription's renewal order writes on its PaymentIntent so
    that the card it is paid with is saved (None for any other order): the subscription and the
    card it has now, which subscription_card_from_payment compares when the payment succeeds.
    Asked each time the payment starts (the checkout page loads), so it is always the card the
    customer saw last."""
    row = (Renewal.objects.filter(order_id=order_id)
           .exclude(subscription__status=Subscription.Status.CANCELED)
           .values_list("subscription_id", "subscription__payment_method__stripe_id").first())
    if row is None:
        return None
    subscription_id, card = row
    return {SUBSCRIPTION_KEY: str(subscription_id), CARD_BEFORE_KEY: card or NO_CARD}


def subscription_card_from_payment(*, payment: Payment) -> PaymentMethod | None:
    """The card a renewal's order was paid with by its customer (checkout page, Payment Element
    or PaymentSheet), which Stripe saved for off-session payments, is mirrored and becomes the
    subscription's card, in the transaction that records the success (a payments signal: the
    payment is locked). Returns the card if the subscription's card changed.

    Unless the customer chose a card deliberately after the payment started: if the
    subscription's card is no longer the one it had then (the intent's metadata,
    CARD_BEFORE_KEY), the customer's choice stands and the paid card is only mirrored (Stripe
    saved it). A compare-and-set on the card, not a comparison of clocks: Stripe's, the web
    server's and the development clock (recovery.clock) need not agree."""
    card = payment_method_save_from_payment(payment=payment)
    if card is None:
        return None
    before = (payment.stripe_object.get("metadata") or {}).get(CARD_BEFORE_KEY)
    subscription = (Subscription.objects.select_for_update()
                    .filter(renewals__order_id=payment.order_id).first())
    if (subscription is None or before is None
            or subscription.status == Subscription.Status.CANCELED
            or card.customer.user_id != subscription.customer_id):
        return None
    current = subscription.payment_method
    if (current.stripe_id if current else NO_CARD) != before or current == card:
        return None
    subscription.payment_method = card
    subscription.save(update_fields=["payment_method", "updated_at"])
    return card
