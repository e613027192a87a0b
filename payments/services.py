"""Writes to payments: the only code that changes money state.

Each service runs in a transaction, locks the rows it changes (the order first, then its payment:
one order everywhere, so two services never deadlock), records what happened in the PaymentEvent
ledger and leaves side effects to `transaction.on_commit`. Stripe is the source of truth: state
read from Stripe is applied only if it moves the local mirror forward. A Stripe call made while
rows are locked is bounded by the time budget (gateway.time_budget: STRIPE_REQUEST_BUDGET at
most), so a slow Stripe cannot pin locks and connections for longer.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import Sum
from django.utils import timezone

from orders.models import Order
from orders.services import order_refresh_status
from payments import gateway
from payments.gateway import PaymentIntentData
from payments.models import Customer, Dispute, Payment, PaymentEvent, PaymentMethod, Refund
from payments.selectors import payment_live_for

logger = logging.getLogger(__name__)

ORDER_NOT_PAYABLE = "This order cannot be paid: it is already paid, refunded or canceled."
PAYMENT_FINISHED = "This payment is already finished."
PAYMENT_NOT_STARTED = "This payment has not been started yet. Please open the checkout again."
ABANDONED_REASON = "abandoned"


class PaymentError(Exception):
    """A payment service refused; the message is safe to show."""


# --- Locks and the ledger -----------------------------------------------------------------------


def _lock(payment_id: int) -> tuple[Order, Payment]:
    """Locks a payment's order, then the payment (always in this order)."""
    order_id = Payment.objects.values_list("order_id", flat=True).get(pk=payment_id)
    order = Order.objects.select_for_update().get(pk=order_id)
    return order, Payment.objects.select_for_update().get(pk=payment_id)


def _record(
    payment: Payment,
    kind: str,
    *,
    source: str,
    amount: int | None = None,
    reference: str = "",
    message: str = "",
    actor: AbstractBaseUser | None = None,
    stripe_event_id: str = "",
) -> PaymentEvent | None:
    """Appends to the ledger; a fact with a reference is written once (the payment is locked,
    so checking first is safe and keeps the transaction clean)."""
    if reference and PaymentEvent.objects.filter(
        payment=payment, kind=kind, reference=reference
    ).exists():
        return None
    return PaymentEvent.objects.create(
        payment=payment,
        kind=kind,
        amount=amount,
        reference=reference,
        message=message[:500],
        actor=actor if actor is not None and actor.is_authenticated else None,
        source=source,
        stripe_event_id=stripe_event_id,
    )


# --- Customers --------------------------------------------------------------------------------


def customer_ensure(*, user: AbstractBaseUser) -> Customer:
    """The user's Stripe Customer, created once. The idempotency key is committed before Stripe
    is called, so a crash between the two reuses the same Customer on the next try."""
    customer, _ = Customer.objects.get_or_create(
        user=user, defaults={"idempotency_key": f"customer:{user.pk}"}
    )
    if customer.stripe_id:
        return customer
    with transaction.atomic():
        customer = Customer.objects.select_for_update().get(pk=customer.pk)
        if not customer.stripe_id:
            customer.stripe_id = gateway.customer_create(
                email=user.email,
                name=user.get_full_name() or user.get_username(),
                user_id=user.pk,
                idempotency_key=customer.idempotency_key,
            )
            customer.save(update_fields=["stripe_id"])
    return customer


# --- Payments ---------------------------------------------------------------------------------


def payment_start(*, order: Order, by: AbstractBaseUser | None = None) -> Payment:
    """The order's live PaymentIntent: reused if there is one, else created. Never two live
    intents for one order (a database constraint too); a paid order cannot be paid again."""
    with transaction.atomic():
        order = Order.objects.select_for_update().get(pk=order.pk)
        if not order.is_payable():
            raise PaymentError(ORDER_NOT_PAYABLE)
        payment = payment_live_for(order=order)
        if payment is None:
            attempt = order.payments.count() + 1
            payment = Payment.objects.create(
                order=order,
                amount=order.total_amount,
                currency=order.currency,
                idempotency_key=f"payment:{order.pk}:{attempt}",
            )
            _record(
                payment,
                PaymentEvent.Kind.REQUESTED,
                source="checkout",
                amount=payment.amount,
                reference=payment.idempotency_key,
                actor=by,
            )
    if payment.stripe_id:
        return payment

    customer = customer_ensure(user=order.customer)
    with transaction.atomic():
        order, payment = _lock(payment.pk)
        if payment.stripe_id:
            return payment
        intent = gateway.payment_intent_create(
            amount=payment.amount,
            currency=payment.currency,
            customer=customer.stripe_id,
            metadata={"order_number": order.number, "paydesk_payment_id": str(payment.pk)},
            description=f"Order {order.number}",
            idempotency_key=payment.idempotency_key,
        )
        payment.stripe_id = intent.id
        _apply_intent(order, payment, intent, source="checkout")
    return payment


def payment_confirm(
    *,
    payment: Payment,
    payment_method: str,
    return_url: str,
    by: AbstractBaseUser | None = None,
) -> Payment:
    """Confirms the intent with a payment method (server-side: sandbox and test-card mode).

    Returns the synced payment (succeeded, requires_action with a redirect, processing...).
    A decline is synced too, then re-raised as gateway.CardDeclined for the page to show."""
    with transaction.atomic():
        order, payment = _lock(payment.pk)
        if payment.is_terminal() or not order.is_payable():
            raise PaymentError(PAYMENT_FINISHED)
        if not payment.stripe_id:
            raise PaymentError(PAYMENT_NOT_STARTED)
        payment.confirm_attempts += 1
        payment.save(update_fields=["confirm_attempts", "updated_at"])
    key = f"confirm:{payment.pk}:{payment.confirm_attempts}"
    try:
        intent = gateway.payment_intent_confirm(
            payment.stripe_id,
            payment_method=payment_method,
            return_url=return_url,
            idempotency_key=key,
        )
    except gateway.CardDeclined as declined:
        if declined.payment_intent:
            intent = gateway.payment_intent_from(declined.payment_intent)
            if not intent.failure_code:  # some SDK shapes omit the error on the nested intent
                intent = replace(
                    intent,
                    failure_code=declined.code,
                    decline_code=declined.decline_code,
                    failure_message=declined.message,
                )
        else:
            intent = gateway.payment_intent_retrieve(payment.stripe_id)
        payment_sync(payment=payment, intent=intent, source="checkout", actor=by)
        raise
    return payment_sync(payment=payment, intent=intent, source="checkout", actor=by)


def payment_sync(
    *,
    payment: Payment,
    intent: PaymentIntentData,
    source: str,
    stripe_event_id: str = "",
    actor: AbstractBaseUser | None = None,
) -> Payment:
    """Applies a PaymentIntent as Stripe reported it, if it moves the payment forward."""
    with transaction.atomic():
        order, payment = _lock(payment.pk)
        _apply_intent(order, payment, intent, source=source, stripe_event_id=stripe_event_id,
                      actor=actor)
    return payment


def payment_refresh(
    *,
    payment: Payment,
    source: str,
    stripe_event_id: str = "",
    max_age: timedelta | None = None,
) -> Payment:
    """Re-reads the PaymentIntent from Stripe while holding the row lock, then applies it.

    Reading under the lock serialises concurrent refreshes: whichever applies last also read
    last, so out-of-order webhooks can never leave the mirror older than Stripe. The lock is held
    for at most the Stripe time budget (gateway.time_budget).

    With `max_age`, a payment read from Stripe within that time is returned as it is, without a
    call: checked before the lock (cheap) and again under it, so concurrent callers (a page
    reloaded in a loop) make one Stripe read between them."""
    if max_age is not None and _checked_within(payment, max_age):
        return payment
    with transaction.atomic():
        order, payment = _lock(payment.pk)
        if max_age is not None and _checked_within(payment, max_age):
            return payment
        if payment.stripe_id:
            intent = gateway.payment_intent_retrieve(payment.stripe_id)
            _apply_intent(order, payment, intent, source=source, stripe_event_id=stripe_event_id)
    return payment


def _checked_within(payment: Payment, max_age: timedelta) -> bool:
    checked_at = payment.stripe_checked_at
    return checked_at is not None and checked_at > timezone.now() - max_age


def payment_cancel(
    *, payment: Payment, reason: str = ABANDONED_REASON, by: AbstractBaseUser | None = None
) -> Payment:
    """Cancels an unfinished intent (an abandoned checkout), at Stripe first."""
    with transaction.atomic():
        order, payment = _lock(payment.pk)
        if payment.is_terminal():
            return payment
        if not payment.stripe_id:
            payment.status = Payment.Status.CANCELED
            payment.save(update_fields=["status", "updated_at"])
            _record(payment, PaymentEvent.Kind.CANCELED, source="system", actor=by,
                    reference=payment.idempotency_key)
            order_refresh_status(order=order)
            return payment
        intent = gateway.payment_intent_cancel(
            payment.stripe_id, reason=reason, idempotency_key=f"cancel:{payment.pk}"
        )
        _apply_intent(order, payment, intent, source="system", actor=by)
    return payment


def _apply_intent(
    order: Order,
    payment: Payment,
    intent: PaymentIntentData,
    *,
    source: str,
    stripe_event_id: str = "",
    actor: AbstractBaseUser | None = None,
) -> None:
    """Moves a locked payment to the intent's state, writing the ledger for each transition.

    Succeeded and canceled are final: a stale object that says otherwise is ignored."""
    if intent.id != payment.stripe_id:
        raise PaymentError(f"intent {intent.id} is not payment {payment.pk}'s")
    if payment.is_terminal() and intent.status != payment.status:
        logger.info(
            "ignored %s for %s: payment is already %s", intent.status, intent.id, payment.status
        )
        return
    before = (payment.status, payment.failure_code, payment.decline_code, payment.failure_message)
    log = {"source": source, "stripe_event_id": stripe_event_id, "actor": actor}

    payment.status = intent.status
    payment.amount_received = intent.amount_received
    payment.failure_code = intent.failure_code
    payment.decline_code = intent.decline_code
    payment.failure_message = intent.failure_message[:500]
    payment.stripe_charge_id = intent.charge_id or payment.stripe_charge_id
    if intent.card.last4:
        payment.card_brand = intent.card.brand
        payment.card_last4 = intent.card.last4
        payment.card_exp_month = intent.card.exp_month
        payment.card_exp_year = intent.card.exp_year
    payment.stripe_object = intent.raw
    payment.stripe_checked_at = timezone.now()
    status_changed = payment.status != before[0]

    if intent.status == Payment.Status.SUCCEEDED:
        payment.succeeded_at = payment.succeeded_at or timezone.now()
        _record(payment, PaymentEvent.Kind.SUCCEEDED, amount=intent.amount_received,
                reference=intent.charge_id or intent.id, **log)
    elif intent.status == Payment.Status.CANCELED:
        _record(payment, PaymentEvent.Kind.CANCELED, reference=intent.id, **log)
    elif intent.status == Payment.Status.REQUIRES_ACTION and status_changed:
        _record(payment, PaymentEvent.Kind.ACTION_REQUIRED, **log)
    if intent.failure_code and (status_changed or before[1:] != (
        intent.failure_code, intent.decline_code, intent.failure_message[:500]
    )):
        _record(
            payment,
            PaymentEvent.Kind.FAILED,
            message=f"{intent.failure_code}"
            + (f"/{intent.decline_code}" if intent.decline_code else "")
            + f": {intent.failure_message}",
            **log,
        )
    payment.save(update_fields=_INTENT_FIELDS)
    order_refresh_status(order=order)


# What applying a PaymentIntent may change: never the whole row, so a concurrent writer of another
# field (a refund total, a confirm counter) is never overwritten with a stale value.
_INTENT_FIELDS = [
    "stripe_id", "status", "amount_received", "failure_code", "decline_code", "failure_message",
    "stripe_charge_id", "card_brand", "card_last4", "card_exp_month", "card_exp_year",
    "stripe_object", "stripe_checked_at", "succeeded_at", "updated_at",
]


def payments_cancel_abandoned(*, older_than: timedelta) -> int:
    """Cancels intents nobody finished within `older_than`; returns how many."""
    cutoff = timezone.now() - older_than
    stale = Payment.objects.filter(
        created_at__lt=cutoff,
        status__in=[
            Payment.Status.REQUIRES_PAYMENT_METHOD,
            Payment.Status.REQUIRES_CONFIRMATION,
            Payment.Status.REQUIRES_ACTION,
        ],
    ).values_list("pk", flat=True)
    canceled = 0
    for payment_id in stale:
        try:
            payment_cancel(payment=Payment(pk=payment_id))
        except gateway.GatewayError:
            logger.exception("could not cancel abandoned payment %s", payment_id)
        else:
            canceled += 1
    return canceled


# --- Refunds and disputes, as Stripe reports them -----------------------------------------------


def _payment_id_for_intent(intent_id: str) -> int | None:
    return Payment.objects.filter(stripe_id=intent_id).values_list("pk", flat=True).first()

_REFUND_FINAL = {Refund.Status.FAILED, Refund.Status.CANCELED}


def refund_sync(
    *, refund: gateway.RefundData, source: str, stripe_event_id: str = ""
) -> Refund | None:
    """Mirrors a Stripe Refund (ours or made elsewhere, e.g. the Stripe dashboard) and updates
    the payment's refunded total from its succeeded refunds. None if the payment is not ours."""
    payment_id = _payment_id_for_intent(refund.payment_intent)
    if payment_id is None:
        return None
    with transaction.atomic():
        order, payment = _lock(payment_id)
        row = Refund.objects.filter(stripe_id=refund.id).first()
        if row is None:
            row = Refund(payment=payment, stripe_id=refund.id, amount=refund.amount,
                         currency=refund.currency, status=Refund.Status.PENDING)
        was = row.status
        if was in _REFUND_FINAL and refund.status != was:
            return row
        row.status = refund.status
        row.reason = refund.reason
        row.failure_reason = refund.failure_reason
        row.stripe_object = refund.raw
        row.save()
        log = {"source": source, "stripe_event_id": stripe_event_id}
        if refund.status == Refund.Status.SUCCEEDED:
            _record(payment, PaymentEvent.Kind.REFUND_SUCCEEDED, amount=refund.amount,
                    reference=refund.id, **log)
        elif refund.status == Refund.Status.FAILED:
            # A refund that had succeeded and then failed gives its amount back to the total.
            reversed_amount = -refund.amount if was == Refund.Status.SUCCEEDED else None
            _record(payment, PaymentEvent.Kind.REFUND_FAILED, amount=reversed_amount,
                    reference=refund.id, message=refund.failure_reason, **log)
        payment.amount_refunded = (
            payment.refunds.filter(status=Refund.Status.SUCCEEDED).aggregate(t=Sum("amount"))["t"]
            or 0
        )
        payment.save(update_fields=["amount_refunded", "updated_at"])
        order_refresh_status(order=order)
    return row


_DISPUTE_OUTCOMES = {"won": PaymentEvent.Kind.DISPUTE_WON, "lost": PaymentEvent.Kind.DISPUTE_LOST}


def dispute_sync(
    *, dispute: gateway.DisputeData, source: str, stripe_event_id: str = ""
) -> Dispute | None:
    """Mirrors a Stripe Dispute; the ledger gets opened, then won or lost. None if not ours."""
    payment_id = _payment_id_for_intent(dispute.payment_intent)
    if payment_id is None:
        return None
    with transaction.atomic():
        _, payment = _lock(payment_id)
        due = dispute.evidence_due_by
        row, _ = Dispute.objects.update_or_create(
            stripe_id=dispute.id,
            defaults={
                "payment": payment,
                "amount": dispute.amount,
                "currency": dispute.currency,
                "status": dispute.status,
                "reason": dispute.reason,
                "evidence_due_by": datetime.fromtimestamp(due, tz=UTC) if due else None,
                "stripe_object": dispute.raw,
            },
        )
        log = {"source": source, "stripe_event_id": stripe_event_id, "reference": dispute.id}
        _record(payment, PaymentEvent.Kind.DISPUTE_OPENED, amount=dispute.amount,
                message=dispute.reason, **log)
        if dispute.status in _DISPUTE_OUTCOMES:
            _record(payment, _DISPUTE_OUTCOMES[dispute.status], amount=dispute.amount, **log)
    return row


def payment_method_save(
    *, setup_intent: gateway.SetupIntentData
) -> PaymentMethod | None:
    """Saves the card a succeeded SetupIntent collected for one of our customers."""
    customer = Customer.objects.filter(stripe_id=setup_intent.customer).first()
    if customer is None or not setup_intent.payment_method_id:
        return None
    card = setup_intent.card
    method, _ = PaymentMethod.objects.update_or_create(
        stripe_id=setup_intent.payment_method_id,
        defaults={
            "customer": customer,
            "brand": card.brand,
            "last4": card.last4,
            "exp_month": card.exp_month,
            "exp_year": card.exp_year,
            "fingerprint": card.fingerprint,
            "detached_at": None,
        },
    )
    return method
